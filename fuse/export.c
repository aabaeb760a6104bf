/*
 * fuse/export.c - a block node as a regular file, served with libfuse's
 * low-level API and its multithreaded loop (contract in fuse/export.h).
 *
 * Shape of one export:
 *  - one session, mounted on the canonical (absolute) mountpoint, so that a
 *    daemon that later changes directory still unmounts the right path;
 *  - one "loop" thread running fuse_session_loop_mt(); libfuse starts the
 *    worker threads and each request runs synchronously on its worker:
 *    the block layer's calls are synchronous and thread-safe, so a request
 *    needs no state beyond its own stack and its own data buffer;
 *  - removal: fuse_session_exit() + a signal to the loop thread. libfuse
 *    then cancels the workers that sit in read(2) (no request taken) and
 *    joins the others after they replied, which is "stop intake, finish
 *    in-flight". Then we flush the node, unmount, close /dev/fuse (the
 *    kernel fails whatever was queued but never read) and detach the node.
 */
#include "common/config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <fuse_lowlevel.h>

#include "common/bufpool.h"
#include "common/cutils.h"
#include "common/list.h"
#include "driver/block.h"
#include "driver/block-int.h"
#include "fuse/export.h"
#include "fuse/fx-int.h"

/* The kernel caps a request at FUSE_MAX_MAX_PAGES (256) pages; libfuse
 * 3.14 sizes its buffers the same way. Ask for that much. */
#define FX_MAX_WRITE (1u << 20)
/* Advertised to the kernel as the read cap (it clamps it to the same 1 MiB
 * per request; the mount option is what qemu-storage-daemon passes). */
#define FX_MAX_READ_OPT 67108864u
/* Enough workers for queue depth 32 plus slack; a synchronous worker per
 * outstanding request is what keeps a 1 ms injected delay from becoming
 * the throughput limit (see docs/fuse.md). */
#define FX_MAX_THREADS 64
/* Alignment of the export's buffers: O_DIRECT's (the file driver bounces
 * a buffer less aligned than its node needs). */
#define FX_BUF_ALIGN 4096u
/* Wake the loop thread with this signal when an export is removed. */
#define FX_WAKE_SIGNAL SIGUSR2

struct fx_export {
    /* Immutable after fx_export_add. */
    struct fx_exports *owner;
    char *id;
    char *node_name;
    char *mountpoint;         /* canonical, absolute */
    bool writable;
    bool growable;
    bool flush_on_close;
    size_t mem_align;         /* > 1: the node wants aligned buffers */
    struct bd_bufpool bufs;   /* read and bounce buffers, kept for reuse */
    struct bd_blk *blk;
    struct fuse_session *se;
    pthread_t loop_thread;
    struct stat mp_stat;      /* times and owner of the original file */

    /* Changed by setattr (chmod/chown), read by getattr. */
    pthread_mutex_t attr_lock;
    mode_t mode;
    uid_t uid;
    gid_t gid;

    /* Protected by owner->lock. */
    bool shutting_down;
    struct bd_list link;

    atomic_bool loop_done;
};

struct fx_exports {
    struct bd_graph *graph;
    pthread_mutex_t lock;
    struct bd_list exports;   /* struct fx_export.link */
};

/* ------------------------------------------------------------------ */
/* Request handlers: each runs on a libfuse worker thread.              */

static struct fx_export *req_export(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

static void fill_stat(struct fx_export *e, struct stat *st)
{
    int64_t len = bd_blk_getlength(e->blk);

    memset(st, 0, sizeof(*st));
    st->st_ino = FUSE_ROOT_ID;
    pthread_mutex_lock(&e->attr_lock);
    st->st_mode = S_IFREG | e->mode;
    st->st_uid = e->uid;
    st->st_gid = e->gid;
    pthread_mutex_unlock(&e->attr_lock);
    st->st_nlink = 1;
    st->st_size = len < 0 ? 0 : len;
    st->st_blksize = 4096;
    st->st_blocks = (st->st_size + 511) / 512;
    st->st_atim = e->mp_stat.st_atim;
    st->st_mtim = e->mp_stat.st_mtim;
    st->st_ctim = e->mp_stat.st_ctim;
}

static void fx_init(void *userdata, struct fuse_conn_info *conn)
{
    (void)userdata;
    conn->max_write = FX_MAX_WRITE;
    conn->max_read = FX_MAX_READ_OPT;   /* must match the mount option */
    conn->max_readahead = 0;
    /* O_DIRECT aio arrives as background requests, of which the kernel
     * keeps only max_background (default 12) in flight: that, not the
     * client's queue depth, would bound the requests we see at once (a
     * 1 ms injected delay would cap at 12k IOPS). */
    conn->max_background = FX_MAX_THREADS;
    conn->congestion_threshold = FX_MAX_THREADS * 3 / 4;
    /* Several reads of one file run at once; without this the kernel
     * serialises them per file. */
    if (conn->capable & FUSE_CAP_ASYNC_READ) {
        conn->want |= FUSE_CAP_ASYNC_READ;
    }
    /* Splice would bypass our per-request buffers and gains nothing for
     * direct I/O of this size. */
    conn->want &= ~(unsigned)(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE |
                              FUSE_CAP_SPLICE_MOVE);
}

static void fx_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    (void)parent;
    (void)name;
    /* The mountpoint is a file: there is nothing below it. */
    fuse_reply_err(req, ENOENT);
}

static void fx_getattr(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi)
{
    struct stat st;

    (void)fi;
    if (ino != FUSE_ROOT_ID) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    fill_stat(req_export(req), &st);
    fuse_reply_attr(req, &st, 1.0);
}

/* Grow or shrink the node (truncate, growing writes, fallocate). */
static int do_truncate(struct fx_export *e, int64_t size,
                       enum bd_prealloc prealloc)
{
    struct bd_error *err = NULL;
    int ret;

    ret = bd_blk_truncate(e->blk, size, true, prealloc, &err);
    if (ret < 0) {
        bd_error_free(err);
        return ret;
    }
    return 0;
}

static void fx_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
                       int to_set, struct fuse_file_info *fi)
{
    struct fx_export *e = req_export(req);
    const int supported = FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_MODE |
                          FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID |
                          FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
                          FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW |
                          FUSE_SET_ATTR_CTIME;
    struct stat st;
    int ret;

    (void)ino;
    (void)fi;
    if (to_set & ~supported) {
        fuse_reply_err(req, ENOTSUP);
        return;
    }
    if (to_set & FUSE_SET_ATTR_SIZE) {
        int64_t len = bd_blk_getlength(e->blk);

        if (!e->writable) {
            fuse_reply_err(req, EACCES);
            return;
        }
        if (len < 0) {
            fuse_reply_err(req, (int)-len);
            return;
        }
        /* As in qsd, growable only concerns writes past the end: an
         * explicit truncate resizes any writable export. */
        if (attr->st_size != len) {
            ret = do_truncate(e, attr->st_size, BD_PREALLOC_OFF);
            if (ret < 0) {
                fuse_reply_err(req, -ret);
                return;
            }
        }
    }
    pthread_mutex_lock(&e->attr_lock);
    if (to_set & FUSE_SET_ATTR_MODE) {
        e->mode = attr->st_mode & 07777;
    }
    if (to_set & FUSE_SET_ATTR_UID) {
        e->uid = attr->st_uid;
    }
    if (to_set & FUSE_SET_ATTR_GID) {
        e->gid = attr->st_gid;
    }
    pthread_mutex_unlock(&e->attr_lock);
    fill_stat(e, &st);
    fuse_reply_attr(req, &st, 1.0);
}

static void fx_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    /* Every read and write reaches us: no page cache between the client
     * and the fault injector, and requests keep the client's sizes. */
    fi->direct_io = 1;
    fi->keep_cache = 0;
    fuse_reply_open(req, fi);
}

/* Small buffers come from malloc's per-thread caches, faster than any
 * shared pool; large ones from the export's pool (see fx_read). */
#define FX_POOL_MIN (64 * 1024)

static void *fx_buf_get(struct fx_export *e, size_t size)
{
    if (size >= FX_POOL_MIN) {
        return bd_bufpool_get(&e->bufs, size);
    }
    return bd_memalign(BD_MAX(e->mem_align, (size_t)64), size ? size : 1);
}

static void fx_buf_put(struct fx_export *e, void *buf, size_t size)
{
    if (size >= FX_POOL_MIN) {
        bd_bufpool_put(&e->bufs, buf, size);
    } else {
        free(buf);
    }
}

static void fx_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    struct fx_export *e = req_export(req);
    int64_t len = bd_blk_getlength(e->blk);
    void *buf = NULL;
    int ret;

    (void)ino;
    (void)fi;
    if (len < 0) {
        fuse_reply_err(req, (int)-len);
        return;
    }
    if (off >= len || size == 0) {
        fuse_reply_buf(req, NULL, 0);
        return;
    }
    if ((int64_t)size > len - off) {
        size = (size_t)(len - off);
    }
    /* A buffer of our own per request (workers never share one), from the
     * export's pool: a fresh 1 MiB one made the kernel fault its pages in
     * while copying the reply, a third of the daemon's CPU at 1M reads. */
    buf = fx_buf_get(e, size);
    ret = bd_blk_pread(e->blk, off, (int64_t)size, buf, 0);
    if (ret < 0) {
        fuse_reply_err(req, -ret);
    } else {
        fuse_reply_buf(req, buf, size);
    }
    fx_buf_put(e, buf, size);
}

static void fx_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
                     size_t size, off_t off, struct fuse_file_info *fi)
{
    struct fx_export *e = req_export(req);
    int64_t len;
    void *bounce = NULL;
    const void *data = buf;
    int ret;

    (void)ino;
    (void)fi;
    if (!e->writable) {
        fuse_reply_err(req, EACCES);
        return;
    }
    if (off < 0 || size > INT64_MAX - (uint64_t)off) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    len = bd_blk_getlength(e->blk);
    if (len < 0) {
        fuse_reply_err(req, (int)-len);
        return;
    }
    if (off + (int64_t)size > len) {
        if (e->growable) {
            ret = do_truncate(e, off + (int64_t)size, BD_PREALLOC_OFF);
            if (ret < 0) {
                fuse_reply_err(req, -ret);
                return;
            }
        } else if (off >= len) {
            /* A fixed-size device: nothing can be written past its end
             * (qsd answers EIO too). */
            fuse_reply_err(req, EIO);
            return;
        } else {
            size = (size_t)(len - off);
        }
    }
    /* The data sits in libfuse's per-worker receive buffer, after the
     * request header: never aligned for O_DIRECT. Copy only when the node
     * needs it. */
    if (e->mem_align > 1 && ((uintptr_t)buf % e->mem_align)) {
        bounce = fx_buf_get(e, size);
        memcpy(bounce, buf, size);
        data = bounce;
    }
    ret = bd_blk_pwrite(e->blk, off, (int64_t)size, data, 0);
    if (bounce) {
        fx_buf_put(e, bounce, size);
    }
    if (ret < 0) {
        fuse_reply_err(req, -ret);
    } else {
        fuse_reply_write(req, size);
    }
}

static void fx_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct fx_export *e = req_export(req);
    int ret = 0;

    (void)ino;
    (void)fi;
    /* FLUSH comes with every close(2) of every descriptor, a forked
     * child's inherited copies included. It is not a durability request
     * (fsync is), so by default it does not reach the node; flush-on-close
     * restores qemu-storage-daemon's behaviour. */
    if (e->flush_on_close) {
        ret = bd_blk_flush(e->blk);
    }
    fuse_reply_err(req, ret < 0 ? -ret : 0);
}

static void fx_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
                     struct fuse_file_info *fi)
{
    int ret;

    (void)ino;
    (void)datasync;
    (void)fi;
    ret = bd_blk_flush(req_export(req)->blk);
    fuse_reply_err(req, ret < 0 ? -ret : 0);
}

static void fx_fallocate(fuse_req_t req, fuse_ino_t ino, int mode,
                         off_t off, off_t length, struct fuse_file_info *fi)
{
    struct fx_export *e = req_export(req);
    int64_t len;
    int ret;

    (void)ino;
    (void)fi;
    if (!e->writable) {
        fuse_reply_err(req, EACCES);
        return;
    }
    if (off < 0 || length <= 0 || length > INT64_MAX - off) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    len = bd_blk_getlength(e->blk);
    if (len < 0) {
        fuse_reply_err(req, (int)-len);
        return;
    }
    if (mode & FALLOC_FL_PUNCH_HOLE) {
        /* The kernel insists on KEEP_SIZE with PUNCH_HOLE. */
        if (!(mode & FALLOC_FL_KEEP_SIZE) ||
            (mode & ~(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE))) {
            fuse_reply_err(req, EOPNOTSUPP);
            return;
        }
        if (off >= len) {
            fuse_reply_err(req, 0);
            return;
        }
        ret = bd_blk_pdiscard(e->blk, off, BD_MIN(length, len - off));
    } else if (mode & FALLOC_FL_ZERO_RANGE) {
        if (mode & ~(FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE)) {
            fuse_reply_err(req, EOPNOTSUPP);
            return;
        }
        if (off + length > len && !(mode & FALLOC_FL_KEEP_SIZE) &&
            e->growable) {
            ret = do_truncate(e, off + length, BD_PREALLOC_OFF);
            if (ret < 0) {
                fuse_reply_err(req, -ret);
                return;
            }
            len = off + length;
        }
        if (off >= len) {
            fuse_reply_err(req, 0);
            return;
        }
        ret = bd_blk_pwrite_zeroes(e->blk, off, BD_MIN(length, len - off),
                                   0);
    } else if (mode == 0) {
        /* Plain allocation: only growth can be done honestly (truncate
         * with preallocation); space inside the node cannot be reserved
         * through the block layer. */
        if (off + length <= len) {
            fuse_reply_err(req, EOPNOTSUPP);
            return;
        }
        ret = do_truncate(e, off + length, BD_PREALLOC_FALLOC);
    } else {
        ret = -EOPNOTSUPP;
    }
    fuse_reply_err(req, ret < 0 ? -ret : 0);
}

/* Is [off, ...) a hole (reads as zeroes, no data) per block status? */
static int block_status_at(struct fx_export *e, int64_t off, int64_t len,
                           bool *hole, int64_t *pnum)
{
    int ret = bd_node_block_status(bd_blk_node(e->blk), off, len - off, pnum,
                                   NULL, NULL);

    if (ret < 0) {
        return ret;
    }
    if (*pnum <= 0) {
        *pnum = len - off;
    }
    *hole = (ret & BD_BLOCK_ZERO) && !(ret & BD_BLOCK_DATA);
    return 0;
}

static void fx_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
                     struct fuse_file_info *fi)
{
    struct fx_export *e = req_export(req);
    int64_t len = bd_blk_getlength(e->blk);

    (void)ino;
    (void)fi;
    if (len < 0) {
        fuse_reply_err(req, (int)-len);
        return;
    }
    if (whence != SEEK_DATA && whence != SEEK_HOLE) {
        /* The kernel handles SEEK_SET/CUR/END itself. */
        fuse_reply_err(req, EINVAL);
        return;
    }
    if (off < 0 || off >= len) {
        fuse_reply_err(req, ENXIO);
        return;
    }
    while (off < len) {
        int64_t pnum = 0;
        bool hole = false;
        int ret = block_status_at(e, off, len, &hole, &pnum);

        if (ret < 0) {
            fuse_reply_err(req, -ret);
            return;
        }
        if ((whence == SEEK_DATA) != hole) {
            fuse_reply_lseek(req, off);
            return;
        }
        off += pnum;
    }
    if (whence == SEEK_HOLE) {
        /* The end of the file is a hole by definition. */
        fuse_reply_lseek(req, len);
    } else {
        fuse_reply_err(req, ENXIO);
    }
}

static void fx_statfs(fuse_req_t req, fuse_ino_t ino)
{
    struct statvfs sv;

    (void)ino;
    memset(&sv, 0, sizeof(sv));
    sv.f_bsize = 4096;
    sv.f_frsize = 4096;
    sv.f_namemax = 255;
    fuse_reply_statfs(req, &sv);
}

static const struct fuse_lowlevel_ops fx_ops = {
    .init = fx_init,
    .lookup = fx_lookup,
    .getattr = fx_getattr,
    .setattr = fx_setattr,
    .open = fx_open,
    .read = fx_read,
    .write = fx_write,
    .flush = fx_flush,
    .fsync = fx_fsync,
    .fallocate = fx_fallocate,
    .lseek = fx_lseek,
    .statfs = fx_statfs,
};

/* ------------------------------------------------------------------ */
/* Loop thread and its wake-up                                          */

static void wake_handler(int sig)
{
    (void)sig;   /* only there to interrupt sem_wait/read with EINTR */
}

static void install_wake_handler(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = wake_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;   /* no SA_RESTART: the wait must return EINTR */
    sigaction(FX_WAKE_SIGNAL, &sa, NULL);
}

static pthread_once_t wake_once = PTHREAD_ONCE_INIT;

static void *loop_thread_fn(void *opaque)
{
    struct fx_export *e = opaque;
    struct fuse_loop_config *cfg = fuse_loop_cfg_create();
    sigset_t set;

    /* The daemon blocks its shutdown signals in every thread; the wake
     * signal must get through to this thread (and the workers it
     * spawns, which inherit the mask). */
    sigemptyset(&set);
    sigaddset(&set, FX_WAKE_SIGNAL);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    /* Injected delays sleep in the worker; the default 50 us timer slack
     * would add 5% to a 1 ms delay. Workers inherit the setting. */
    prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);

    fuse_loop_cfg_set_clone_fd(cfg, 0);
    fuse_loop_cfg_set_max_threads(cfg, FX_MAX_THREADS);
    fuse_loop_cfg_set_idle_threads(cfg, FX_MAX_THREADS);
    fuse_session_loop_mt(e->se, cfg);
    fuse_loop_cfg_destroy(cfg);
    atomic_store(&e->loop_done, true);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Mountpoint checks                                                    */

/*
 * Canonical absolute path of the mountpoint. realpath(3) cannot be used on
 * the file itself: on a dead FUSE mount stat fails with ENOTCONN. The
 * directory part is resolved instead.
 */
char *fx_canonical_path(const char *path)
{
    char *copy = bd_strdup(path);
    char *slash = strrchr(copy, '/');
    const char *dir = ".";
    const char *base = copy;
    char *rdir = NULL;
    char *out = NULL;

    while (slash && slash > copy && slash[1] == '\0') {
        *slash = '\0';       /* "file/" -> "file" */
        slash = strrchr(copy, '/');
    }
    if (slash) {
        *slash = '\0';
        dir = slash == copy ? "/" : copy;
        base = slash + 1;
    }
    rdir = realpath(dir, NULL);
    if (rdir) {
        out = bd_strdup_printf("%s%s%s", rdir,
                               strcmp(rdir, "/") ? "/" : "", base);
    }
    free(rdir);
    free(copy);
    return out;
}

/* mountinfo escapes ' ', '\t', '\n' and '\\' as octal. */
static void unescape_mountinfo(char *s)
{
    char *w = s;

    while (*s) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] >= '0' &&
            s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
            *w++ = (char)(((s[1] - '0') << 6) | ((s[2] - '0') << 3) |
                          (s[3] - '0'));
            s += 4;
        } else {
            *w++ = *s++;
        }
    }
    *w = '\0';
}

/*
 * Is path a mount point (in our mount namespace)? Sets *fstype to the
 * filesystem type ("fuse", ...) when it is. Looks at the last mount on
 * the path, the one that is visible.
 */
bool fx_path_is_mountpoint(const char *path, char *fstype, size_t fslen)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    char *line = NULL;
    size_t cap = 0;
    bool found = false;

    if (!f) {
        return false;
    }
    while (getline(&line, &cap, f) > 0) {
        char mnt[PATH_MAX + 1];
        char type[64];
        char *sep = strstr(line, " - ");

        /* id parent major:minor root mountpoint ... - fstype source */
        if (!sep || sscanf(line, "%*s %*s %*s %*s %4096s", mnt) != 1 ||
            sscanf(sep + 3, "%63s", type) != 1) {
            continue;
        }
        unescape_mountinfo(mnt);
        if (!strcmp(mnt, path)) {
            found = true;
            if (fstype) {
                snprintf(fstype, fslen, "%s", type);
            }
        }
    }
    free(line);
    fclose(f);
    return found;
}

/*
 * Check the mountpoint as qemu-storage-daemon does (it must exist and be
 * a regular file), plus the messes it does not handle: a FUSE mount left by
 * a killed daemon is unmounted (and said so); a live mount is refused.
 */
static int check_mountpoint(const char *given, const char *canon,
                            struct stat *st, struct bd_error **errp)
{
    char fstype[64] = "";

    if (stat(canon, st) < 0) {
        int err = errno;

        if (err == ENOTCONN && fx_path_is_mountpoint(canon, fstype,
                                                     sizeof(fstype)) &&
            !strncmp(fstype, "fuse", 4)) {
            /* The daemon behind it is gone; nobody can use it. */
            if (umount2(canon, MNT_DETACH) < 0) {
                bd_error_setg_errno(errp, errno,
                                    "'%s' is a dead FUSE mount and "
                                    "unmounting it failed", given);
                return -errno;
            }
            fprintf(stderr, "warning: '%s' was left mounted by a FUSE "
                    "daemon that is gone; unmounted it\n", given);
            if (stat(canon, st) == 0) {
                goto check_type;
            }
            err = errno;
        }
        bd_error_setg_errno(errp, err, "Failed to stat '%s'", given);
        return -err;
    }
    if (fx_path_is_mountpoint(canon, fstype, sizeof(fstype))) {
        bd_error_setg(errp, "'%s' is already in use as the mount point of "
                      "a %s file system", given, fstype);
        return -EBUSY;
    }
check_type:
    if (!S_ISREG(st->st_mode)) {
        bd_error_setg(errp, "'%s' is not a regular file", given);
        return -EINVAL;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Options                                                              */

static const char *const export_types[] = {
    "nbd", "vhost-user-blk", "fuse", "vduse-blk", NULL
};
static const char *const allow_other_values[] = { "off", "on", "auto", NULL };

enum { ALLOW_OTHER_OFF, ALLOW_OTHER_ON, ALLOW_OTHER_AUTO };

/*
 * The options being validated: the caller's object (values are read from
 * it, so strings stay valid) and a working copy from which each visited
 * member is removed, so that what is left at the end is unexpected.
 */
struct opts_visit {
    json_t *orig;
    json_t *rest;
    bool keyval;
    struct bd_error **errp;
};

/* A string member (an enum when values is not NULL), as QAPI checks it.
 * Returns 1 present, 0 absent (an error when required), -1 error. */
static int visit_str(struct opts_visit *v, const char *key, bool required,
                     const char *const *values, const char **out, int *idx)
{
    json_t *val = json_object_get(v->orig, key);
    int i;

    if (!val) {
        if (required) {
            bd_error_setg(v->errp, "Parameter '%s' is missing", key);
            return -1;
        }
        return 0;
    }
    json_object_del(v->rest, key);
    if (!json_is_string(val)) {
        bd_error_setg(v->errp, "Invalid parameter type for '%s', expected: "
                      "string", key);
        return -1;
    }
    *out = json_string_value(val);
    for (i = 0; values && values[i]; i++) {
        if (!strcmp(values[i], *out)) {
            *idx = i;
            return 1;
        }
    }
    if (values) {
        bd_error_setg(v->errp, "Parameter '%s' does not accept value '%s'",
                      key, *out);
        return -1;
    }
    return 1;
}

/* An optional bool member: a JSON boolean, or on/off (yes/no, true/false)
 * text from key=value syntax. Returns 1, 0 or -1 as visit_str. */
static int visit_bool(struct opts_visit *v, const char *key, bool *out)
{
    json_t *val = json_object_get(v->orig, key);

    if (!val) {
        return 0;
    }
    json_object_del(v->rest, key);
    if (v->keyval && json_is_string(val)) {
        if (!bd_parse_bool(json_string_value(val), out)) {
            bd_error_setg(v->errp, "Parameter '%s' expects 'on' or 'off'",
                          key);
            return -1;
        }
        return 1;
    }
    if (!v->keyval && json_is_boolean(val)) {
        *out = json_is_true(val);
        return 1;
    }
    bd_error_setg(v->errp, "Invalid parameter type for '%s', expected: "
                  "boolean", key);
    return -1;
}

struct export_opts {
    const char *id;
    const char *node_name;
    const char *mountpoint;
    bool writable;
    bool writethrough;
    bool growable;
    bool flush_on_close;
    int allow_other;
};

/*
 * Validate BlockExportOptions (type=fuse) in QAPI's member order, so the
 * first problem reported is the one qemu-storage-daemon reports.
 */
static int parse_export_opts(json_t *opts, bool keyval, struct export_opts *o,
                             struct bd_error **errp)
{
    struct opts_visit v = { opts, NULL, keyval, errp };
    const char *type = NULL;
    const char *ignored = NULL;
    bool ignored_b = false;
    int type_idx = 0;
    int ret = -1;

    memset(o, 0, sizeof(*o));
    o->allow_other = ALLOW_OTHER_AUTO;
    if (!json_is_object(opts)) {
        bd_error_setg(errp, "Invalid parameter type for 'options', "
                      "expected: object");
        return -EINVAL;
    }
    v.rest = json_deep_copy(opts);
    /* Base members. */
    if (visit_str(&v, "type", true, export_types, &type, &type_idx) < 0) {
        goto out;
    }
    if (strcmp(type, "fuse")) {
        bd_error_setg(errp, "Export type '%s' is not supported by blkrig "
                      "(only 'fuse' is)", type);
        goto out;
    }
    if (visit_str(&v, "id", true, NULL, &o->id, NULL) < 0 ||
        visit_bool(&v, "fixed-iothread", &ignored_b) < 0 ||
        visit_str(&v, "iothread", false, NULL, &ignored, NULL) < 0 ||
        visit_str(&v, "node-name", true, NULL, &o->node_name, NULL) < 0 ||
        visit_bool(&v, "writable", &o->writable) < 0 ||
        visit_bool(&v, "writethrough", &o->writethrough) < 0) {
        goto out;
    }
    /* FUSE members. */
    if (visit_str(&v, "mountpoint", true, NULL, &o->mountpoint, NULL) < 0 ||
        visit_bool(&v, "growable", &o->growable) < 0 ||
        visit_str(&v, "allow-other", false, allow_other_values, &ignored,
                  &o->allow_other) < 0 ||
        visit_bool(&v, "flush-on-close", &o->flush_on_close) < 0) {
        goto out;
    }
    if (json_object_size(v.rest) > 0) {
        bd_error_setg(errp, "Parameter '%s' is unexpected",
                      json_object_iter_key(json_object_iter(v.rest)));
        goto out;
    }
    ret = 0;
out:
    json_decref(v.rest);
    return ret < 0 ? -EINVAL : 0;
}

/* ------------------------------------------------------------------ */
/* Exports                                                              */

struct fx_exports *fx_exports_new(struct bd_graph *g)
{
    struct fx_exports *ex = bd_malloc0(sizeof(*ex));

    ex->graph = g;
    pthread_mutex_init(&ex->lock, NULL);
    bd_list_init(&ex->exports);
    return ex;
}

static struct fx_export *find_export(struct fx_exports *ex, const char *id)
{
    struct bd_list *p;

    bd_list_for_each(p, &ex->exports) {
        struct fx_export *e = BD_LIST_ENTRY(p, struct fx_export, link);

        if (!strcmp(e->id, id)) {
            return e;
        }
    }
    return NULL;
}

static void export_free(struct fx_export *e)
{
    if (e->blk) {
        bd_blk_remove(e->blk);
        bd_blk_free(e->blk);
    }
    pthread_mutex_destroy(&e->attr_lock);
    bd_bufpool_destroy(&e->bufs);
    free(e->id);
    free(e->node_name);
    free(e->mountpoint);
    free(e);
}

/* Create and mount the session; falls back from allow_other for auto. */
static int mount_session(struct fx_export *e, int allow_other,
                         struct bd_error **errp)
{
    char opts[128];
    int attempt;

    for (attempt = 0; attempt < 2; attempt++) {
        bool other = allow_other == ALLOW_OTHER_ON ||
                     (allow_other == ALLOW_OTHER_AUTO && attempt == 0);
        char *argv[] = { (char *)"blkrig", (char *)"-o", opts, NULL };
        struct fuse_args args = FUSE_ARGS_INIT(3, argv);

        snprintf(opts, sizeof(opts), "max_read=%u,default_permissions%s",
                 FX_MAX_READ_OPT, other ? ",allow_other" : "");
        e->se = fuse_session_new(&args, &fx_ops, sizeof(fx_ops), e);
        fuse_opt_free_args(&args);
        if (!e->se) {
            bd_error_setg(errp, "Failed to set up FUSE session");
            return -EIO;
        }
        if (fuse_session_mount(e->se, e->mountpoint) == 0) {
            return 0;
        }
        fuse_session_destroy(e->se);
        e->se = NULL;
        if (allow_other != ALLOW_OTHER_AUTO) {
            break;
        }
    }
    bd_error_setg(errp, "Failed to mount FUSE session to export");
    return -EIO;
}

/* Stop the loop thread: see the comment at the top of the file. */
static void stop_loop(struct fx_export *e)
{
    fuse_session_exit(e->se);
    /* The loop thread may be between checking the exit flag and waiting;
     * keep poking until it has left. */
    while (!atomic_load(&e->loop_done)) {
        pthread_kill(e->loop_thread, FX_WAKE_SIGNAL);
        bd_sleep_ns(2 * 1000 * 1000);
    }
    pthread_join(e->loop_thread, NULL);
}

/* Everything after the loop stopped: flush, unmount, detach. */
static void export_teardown(struct fx_export *e)
{
    stop_loop(e);
    bd_blk_flush(e->blk);
    fuse_session_unmount(e->se);
    fuse_session_destroy(e->se);
    e->se = NULL;
}

static int find_mountpoint_user(struct fx_exports *ex, const char *canon)
{
    struct bd_list *p;

    bd_list_for_each(p, &ex->exports) {
        struct fx_export *o = BD_LIST_ENTRY(p, struct fx_export, link);

        if (!strcmp(o->mountpoint, canon)) {
            return 1;
        }
    }
    return 0;
}

int fx_export_add(struct fx_exports *ex, json_t *opts, bool keyval,
                  struct bd_error **errp)
{
    struct export_opts o;
    struct fx_export *e = NULL;
    struct bd_node *node = NULL;
    uint64_t perm = BD_PERM_CONSISTENT_READ;
    int ret;

    ret = parse_export_opts(opts, keyval, &o, errp);
    if (ret < 0) {
        return ret;
    }
    pthread_once(&wake_once, install_wake_handler);

    /* The registry lock is held for the whole setup so that two QMP
     * clients cannot race for one id or one mountpoint. */
    pthread_mutex_lock(&ex->lock);
    if (find_export(ex, o.id)) {
        bd_error_setg(errp, "Block export id '%s' is already in use", o.id);
        ret = -EEXIST;
        goto out_unlock;
    }
    node = bd_graph_find_node(ex->graph, o.node_name);
    if (!node) {
        bd_error_setg(errp, "Cannot find device='' nor node-name='%s'",
                      o.node_name);
        ret = -ENOENT;
        goto out_unlock;
    }
    if (o.writable && bd_is_read_only(node)) {
        bd_error_setg(errp, "Cannot export read-only node as writable");
        ret = -EACCES;
        goto out_unlock;
    }

    e = bd_malloc0(sizeof(*e));
    e->owner = ex;
    e->id = bd_strdup(o.id);
    e->node_name = bd_strdup(o.node_name);
    e->writable = o.writable;
    e->growable = o.growable;
    e->flush_on_close = o.flush_on_close;
    pthread_mutex_init(&e->attr_lock, NULL);
    /* At most 32 kept: a queue depth of 32 reuses them all. */
    bd_bufpool_init(&e->bufs, FX_MAX_WRITE, FX_BUF_ALIGN, 32);
    bd_list_init(&e->link);

    e->mountpoint = fx_canonical_path(o.mountpoint);
    if (!e->mountpoint) {
        bd_error_setg_errno(errp, errno, "Failed to stat '%s'", o.mountpoint);
        ret = -ENOENT;
        goto out_free;
    }
    if (find_mountpoint_user(ex, e->mountpoint)) {
        bd_error_setg(errp, "There already is a FUSE export on '%s'",
                      o.mountpoint);
        ret = -EEXIST;
        goto out_free;
    }
    ret = check_mountpoint(o.mountpoint, e->mountpoint, &e->mp_stat, errp);
    if (ret < 0) {
        goto out_free;
    }
    e->mode = o.writable ? 0600 : 0400;
    e->uid = getuid();
    e->gid = getgid();

    if (o.writable) {
        perm |= BD_PERM_WRITE;
    }
    if (o.writable) {
        /* truncate(2) and fallocate(2) resize any writable export. */
        perm |= BD_PERM_RESIZE;
    }
    e->blk = bd_blk_new(ex->graph, NULL, perm, BD_PERM_ALL);
    ret = bd_blk_insert(e->blk, node, errp);
    if (ret < 0) {
        goto out_free;
    }
    bd_blk_set_write_cache(e->blk, !o.writethrough);
    e->mem_align = node->bl.min_mem_alignment;

    ret = mount_session(e, o.allow_other, errp);
    if (ret < 0) {
        goto out_free;
    }
    ret = pthread_create(&e->loop_thread, NULL, loop_thread_fn, e);
    if (ret != 0) {
        bd_error_setg_errno(errp, ret, "Failed to start the FUSE threads");
        fuse_session_unmount(e->se);
        fuse_session_destroy(e->se);
        e->se = NULL;
        ret = -ret;
        goto out_free;
    }
    bd_list_add_tail(&ex->exports, &e->link);
    pthread_mutex_unlock(&ex->lock);
    return 0;

out_free:
    export_free(e);
out_unlock:
    pthread_mutex_unlock(&ex->lock);
    return ret;
}

int fx_export_del(struct fx_exports *ex, const char *id, bool hard,
                  struct bd_error **errp)
{
    struct fx_export *e = NULL;

    /* FUSE exports hold no client references that a safe removal could
     * wait for (the kernel owns the open files), so, as in
     * qemu-storage-daemon, safe and hard remove alike. */
    (void)hard;
    pthread_mutex_lock(&ex->lock);
    e = find_export(ex, id);
    if (!e) {
        pthread_mutex_unlock(&ex->lock);
        bd_error_setg(errp, "Export '%s' is not found", id);
        return -ENOENT;
    }
    if (e->shutting_down) {
        pthread_mutex_unlock(&ex->lock);
        bd_error_setg(errp, "Export '%s' is already shutting down", id);
        return -EBUSY;
    }
    e->shutting_down = true;
    pthread_mutex_unlock(&ex->lock);

    export_teardown(e);

    pthread_mutex_lock(&ex->lock);
    bd_list_del(&e->link);
    pthread_mutex_unlock(&ex->lock);
    {
        json_t *data = json_pack("{s:s}", "id", e->id);

        export_free(e);
        bd_graph_emit_qevent(ex->graph, "BLOCK_EXPORT_DELETED", data);
    }
    return 0;
}

/* The node the export serves now: a mirror's pivot moves the backend to
 * the target, and QEMU reports the backend's node, not the one named at
 * block-export-add. Call with ex->lock held. */
static const char *export_node_name(struct fx_export *e)
{
    struct bd_node *n = e->blk ? bd_blk_node(e->blk) : NULL;

    return n ? bd_node_name(n) : e->node_name;
}

json_t *fx_export_query(struct fx_exports *ex)
{
    json_t *list = json_array();
    struct bd_list *p;

    pthread_mutex_lock(&ex->lock);
    bd_list_for_each(p, &ex->exports) {
        struct fx_export *e = BD_LIST_ENTRY(p, struct fx_export, link);

        json_array_append_new(list, json_pack("{s:s,s:s,s:s,s:b}",
                                              "type", "fuse",
                                              "id", e->id,
                                              "node-name",
                                              export_node_name(e),
                                              "shutting-down",
                                              e->shutting_down));
    }
    pthread_mutex_unlock(&ex->lock);
    return list;
}

bool fx_exports_any(struct fx_exports *ex)
{
    bool any;

    pthread_mutex_lock(&ex->lock);
    any = !bd_list_empty(&ex->exports);
    pthread_mutex_unlock(&ex->lock);
    return any;
}

bool fx_exports_use_node(struct fx_exports *ex, const char *node_name)
{
    struct bd_list *p;
    bool used = false;

    pthread_mutex_lock(&ex->lock);
    bd_list_for_each(p, &ex->exports) {
        struct fx_export *e = BD_LIST_ENTRY(p, struct fx_export, link);

        if (!strcmp(e->node_name, node_name) ||
            !strcmp(export_node_name(e), node_name)) {
            used = true;
            break;
        }
    }
    pthread_mutex_unlock(&ex->lock);
    return used;
}

void fx_exports_shutdown(struct fx_exports *ex)
{
    for (;;) {
        char *id = NULL;
        struct bd_list *p;

        pthread_mutex_lock(&ex->lock);
        bd_list_for_each(p, &ex->exports) {
            struct fx_export *e = BD_LIST_ENTRY(p, struct fx_export, link);

            if (!e->shutting_down) {
                id = bd_strdup(e->id);
                break;
            }
        }
        pthread_mutex_unlock(&ex->lock);
        if (!id) {
            break;
        }
        fx_export_del(ex, id, true, NULL);
        free(id);
    }
    /* Removals started elsewhere (QMP) finish on their own thread. */
    for (;;) {
        bool empty;

        pthread_mutex_lock(&ex->lock);
        empty = bd_list_empty(&ex->exports);
        pthread_mutex_unlock(&ex->lock);
        if (empty) {
            break;
        }
        bd_sleep_ns(5 * 1000 * 1000);
    }
}

void fx_exports_free(struct fx_exports *ex)
{
    if (!ex) {
        return;
    }
    fx_exports_shutdown(ex);
    pthread_mutex_destroy(&ex->lock);
    free(ex);
}
