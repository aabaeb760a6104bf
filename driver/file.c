/*
 * driver/file.c - the `file` protocol driver: a host file or block device.
 *
 * Options (QEMU's BlockdevOptionsFile): filename, aio=threads|native,
 * locking=auto|on|off, drop-cache, x-check-cache-dropped, aio-max-batch,
 * plus the generic cache.direct / cache.no-flush handled by the core.
 *
 * I/O: aio=threads does preadv/pwritev in the calling thread (the caller is
 * already a worker thread); aio=native submits through libaio, each caller
 * on a context of its own taken from the node's pool and reaping its own
 * completion, so O_DIRECT requests from many threads overlap in the kernel
 * with no hand-over between threads. Short transfers are continued,
 * EINTR/EAGAIN retried (a bounded number of times). With O_DIRECT, buffers
 * the kernel would refuse go through an aligned bounce buffer, and a short
 * read in the file's last, partial block zero-fills the rest of the
 * (sector-rounded) node. Discard punches holes, write-zeroes uses fallocate
 * (zero range, or punch hole when unmapping is allowed), block status uses
 * SEEK_DATA/SEEK_HOLE.
 *
 * Locking follows QEMU's byte-range protocol so blkrig and QEMU processes
 * see each other: with open file description (OFD) locks, byte 100+i is
 * held while permission bit i is taken and byte 200+i while bit i is not
 * shared. Conflicts give QEMU's "Failed to get "write" lock" message.
 *
 * Every syscall goes through the node's struct bd_file_sys (file-sys.h).
 */
#include "common/config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cutils.h"
#include "common/log.h"
#include "driver/block-int.h"
#include "driver/drivers.h"
#include "driver/file-sys.h"

#define LOCK_PERM_BASE 100
#define LOCK_SHARED_BASE 200

enum file_aio { FILE_AIO_THREADS, FILE_AIO_NATIVE, FILE_AIO_IO_URING };
enum file_locking { FILE_LOCK_AUTO, FILE_LOCK_ON, FILE_LOCK_OFF };

/* Contexts a node creates at most: one per request in flight (the FUSE
 * export runs 64 worker threads, a backup 64 chunks). Past that, callers
 * wait for a context to come back. */
#define FILE_AIO_CTX_MAX 128

struct file_state {
    /* Set in open, immutable. */
    const struct bd_file_sys *sys;
    int fd;
    bool use_locks;
    enum file_aio aio;
    bool has_discard;               /* cleared after EOPNOTSUPP */
    bool has_zero_range;
    bool is_blockdev;
    bool direct;                    /* opened with O_DIRECT */

    /* aio=native: a pool of libaio contexts. A caller takes one, submits
     * its request on it and reaps the completion itself: a completion
     * thread waking the caller cost a thread hand-over per request, which
     * made a FUSE export of a file slower than qemu-storage-daemon's (0.85x
     * at 4k random reads). ctx_all/nctx: every context created (for
     * close); ctx_free/nfree: the ones not in use. */
    pthread_mutex_t aio_lock;
    pthread_cond_t aio_done;        /* a context came back */
    io_context_t ctx_all[FILE_AIO_CTX_MAX];
    io_context_t ctx_free[FILE_AIO_CTX_MAX];
    int nctx;
    int nfree;
    bool aio_ready;                 /* aio_lock and aio_done exist */
    /* Write submissions go one at a time. An O_DIRECT write that
     * allocates (past EOF, into a hole) holds the inode lock exclusively
     * for its whole duration inside io_submit; many threads submitting
     * such writes at once spin on that lock in the kernel, which burnt
     * half the CPU of a backup into a qcow2 target. Waiting here sleeps
     * instead. Overwrites return from io_submit at once, so the order
     * costs them nothing measurable. */
    pthread_mutex_t submit_lock;

    /* Locks held (bit masks), protected by the graph lock via perm calls. */
    uint64_t locked_perm;
    uint64_t locked_shared_neg;
};

static const char *const aio_names[] = { "threads", "native", "io_uring",
                                         NULL };
static const char *const locking_names[] = { "auto", "on", "off", NULL };

/* ------------------------------------------------------------------ */
/* libaio                                                               */

/* Events one context holds: one request at a time uses it. */
#define FILE_AIO_CTX_EVENTS 1

/* A context for the caller's exclusive use; 0 or -errno from io_setup. */
static int aio_ctx_get(struct file_state *s, io_context_t *ctx)
{
    int ret = 0;

    pthread_mutex_lock(&s->aio_lock);
    while (!s->nfree && s->nctx >= FILE_AIO_CTX_MAX) {
        pthread_cond_wait(&s->aio_done, &s->aio_lock);
    }
    if (s->nfree) {
        *ctx = s->ctx_free[--s->nfree];
    } else {
        *ctx = 0;
        ret = s->sys->io_setup(FILE_AIO_CTX_EVENTS, ctx);
        if (ret == 0) {
            s->ctx_all[s->nctx++] = *ctx;
        }
    }
    pthread_mutex_unlock(&s->aio_lock);
    return ret;
}

static void aio_ctx_put(struct file_state *s, io_context_t ctx)
{
    pthread_mutex_lock(&s->aio_lock);
    s->ctx_free[s->nfree++] = ctx;
    pthread_cond_signal(&s->aio_done);
    pthread_mutex_unlock(&s->aio_lock);
}

static ssize_t file_aio_rw(struct file_state *s, bool write,
                           const struct iovec *iov, int niov, off_t off)
{
    struct iocb iocb;
    struct iocb *cbs[1] = { &iocb };
    struct io_event ev;
    io_context_t ctx;
    int ret;
    int tries = 0;

    ret = aio_ctx_get(s, &ctx);
    if (ret < 0) {
        return ret;
    }
    memset(&iocb, 0, sizeof(iocb));
    if (write) {
        io_prep_pwritev(&iocb, s->fd, iov, niov, off);
    } else {
        io_prep_preadv(&iocb, s->fd, iov, niov, off);
    }
    for (;;) {
        if (write) {
            pthread_mutex_lock(&s->submit_lock);
        }
        ret = s->sys->io_submit(ctx, 1, cbs);
        if (write) {
            pthread_mutex_unlock(&s->submit_lock);
        }
        if (ret == 1) {
            break;
        }
        if (ret == -EAGAIN && tries++ < 1000) {
            /* Out of kernel AIO resources: let others finish, retry. */
            bd_sleep_ns(50 * 1000);
            continue;
        }
        aio_ctx_put(s, ctx);
        return ret < 0 ? ret : -EIO;
    }
    /* The request is in the kernel and owns the buffers: we must see its
     * completion before returning, whatever io_getevents says. */
    for (;;) {
        ret = s->sys->io_getevents(ctx, 1, 1, &ev, NULL);
        if (ret == 1) {
            break;
        }
        if (ret != -EINTR) {
            bd_log(BD_LOG_ERROR, "io_getevents failed: %s",
                   bd_strerror(ret < 0 ? -ret : EIO));
            bd_sleep_ns(1000 * 1000);
        }
    }
    aio_ctx_put(s, ctx);
    return (ssize_t)(long)ev.res;
}

/* ------------------------------------------------------------------ */
/* Data path                                                            */

/* Consecutive EAGAIN/EINTR results tolerated before giving up: a file
 * that keeps saying "try again" (a full queue that never drains, a fault
 * injected by a test) must end in an error, not a hung request. */
#define FILE_RETRY_MAX 1000

/* Can this qiov go to an O_DIRECT descriptor as it is? Every buffer must
 * start on the memory alignment and every length be a multiple of the
 * request alignment. */
static bool qiov_direct_ok(const struct bd_qiov *q, size_t mem_align,
                           size_t len_align)
{
    int i;

    for (i = 0; i < q->niov; i++) {
        if ((uintptr_t)q->iov[i].iov_base % mem_align ||
            q->iov[i].iov_len % len_align) {
            return false;
        }
    }
    return true;
}

static ssize_t file_sys_rw(struct file_state *s, bool write,
                           const struct iovec *iov, int niov, int64_t off)
{
    ssize_t n;

    if (s->aio == FILE_AIO_NATIVE) {
        return file_aio_rw(s, write, iov, niov, off);
    }
    n = write ? s->sys->pwritev(s->fd, iov, niov, off)
              : s->sys->preadv(s->fd, iov, niov, off);
    return n < 0 ? -errno : n;
}

/* Transfer [off, off+bytes) between the file and qiov, continuing after
 * short transfers. A read that hits the end of the file zero-fills the
 * rest (the node length is rounded up to whole sectors). */
static int file_rw_direct(struct bd_node *bs, bool write, int64_t off,
                          int64_t bytes, struct bd_qiov *qiov)
{
    struct file_state *s = bs->opaque;
    uint32_t align = bs->bl.request_alignment;
    int64_t done = 0;
    int retries = 0;

    while (done < bytes) {
        struct bd_qiov part;
        ssize_t n;

        if (s->direct && (off + done) % align) {
            /* A short transfer left us mid-block, where O_DIRECT cannot
             * continue. For a read that is the end of the file (the
             * partial last block); anything else is an I/O error. */
            struct stat st;

            if (!write && s->sys->fstat(s->fd, &st) == 0 &&
                off + done >= (int64_t)st.st_size) {
                bd_qiov_memset(qiov, (size_t)done, 0,
                               (size_t)(bytes - done));
                return 0;
            }
            return -EIO;
        }
        bd_qiov_slice(&part, qiov, (size_t)done, (size_t)(bytes - done));
        n = file_sys_rw(s, write, part.iov, part.niov, off + done);
        bd_qiov_destroy(&part);
        if (n == -EINTR || n == -EAGAIN) {
            if (++retries > FILE_RETRY_MAX) {
                return (int)n;
            }
            if (n == -EAGAIN) {
                bd_sleep_ns(10 * 1000);
            }
            continue;
        }
        if (n < 0) {
            return (int)n;
        }
        if (n == 0) {
            if (write) {
                return -EIO;
            }
            bd_qiov_memset(qiov, (size_t)done, 0, (size_t)(bytes - done));
            return 0;
        }
        retries = 0;
        done += n;
    }
    return 0;
}

/* With O_DIRECT, buffers the kernel would refuse (unaligned memory or
 * lengths: a FUSE buffer, a stack array, a sliced qiov) go through one
 * aligned bounce buffer instead of failing with EINVAL. */
static int file_rw(struct bd_node *bs, bool write, int64_t off,
                   int64_t bytes, struct bd_qiov *qiov)
{
    struct file_state *s = bs->opaque;
    struct bd_qiov bq;
    void *bounce = NULL;
    size_t blen;
    int ret;

    if (!s->direct ||
        qiov_direct_ok(qiov, bs->bl.min_mem_alignment,
                       bs->bl.request_alignment)) {
        return file_rw_direct(bs, write, off, bytes, qiov);
    }
    /* The core pads every request to the request alignment, so only the
     * pieces are misaligned, never the whole. */
    assert(bytes % bs->bl.request_alignment == 0);
    blen = (size_t)bytes;
    bounce = bd_memalign(BD_MAX(bs->bl.min_mem_alignment, (size_t)4096),
                         blen);
    if (write) {
        bd_qiov_to_buf(qiov, 0, bounce, blen);
    }
    bd_qiov_init_buf(&bq, bounce, blen);
    ret = file_rw_direct(bs, write, off, (int64_t)blen, &bq);
    if (ret == 0 && !write) {
        bd_qiov_from_buf(qiov, 0, bounce, (size_t)bytes);
    }
    bd_qiov_destroy(&bq);
    free(bounce);
    return ret;
}

static int file_preadv(struct bd_node *bs, int64_t off, int64_t bytes,
                       struct bd_qiov *qiov, int flags)
{
    (void)flags;
    return file_rw(bs, false, off, bytes, qiov);
}

static int file_pwritev(struct bd_node *bs, int64_t off, int64_t bytes,
                        struct bd_qiov *qiov, int flags)
{
    (void)flags;
    return file_rw(bs, true, off, bytes, qiov);
}

static int file_flush_to_disk(struct bd_node *bs)
{
    struct file_state *s = bs->opaque;

    if (s->sys->fdatasync(s->fd) < 0) {
        return -errno;
    }
    return 0;
}

static int file_pdiscard(struct bd_node *bs, int64_t off, int64_t bytes)
{
    struct file_state *s = bs->opaque;

    if (!s->has_discard || s->is_blockdev) {
        return -ENOTSUP;
    }
    if (s->sys->fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                          off, bytes) < 0) {
        int e = errno;
        if (e == EOPNOTSUPP || e == ENOSYS) {
            s->has_discard = false;
            return -ENOTSUP;
        }
        return -e;
    }
    return 0;
}

static int file_pwrite_zeroes(struct bd_node *bs, int64_t off, int64_t bytes,
                              int flags)
{
    struct file_state *s = bs->opaque;
    int64_t len = bd_getlength(bs);

    if (s->is_blockdev) {
        return -ENOTSUP;
    }
    /* Punching keeps the size, so only inside the file; reads of a hole
     * return zeroes on every Linux file system. */
    if ((flags & BD_REQ_MAY_UNMAP) && s->has_discard && off + bytes <= len) {
        if (s->sys->fallocate(s->fd, FALLOC_FL_PUNCH_HOLE |
                              FALLOC_FL_KEEP_SIZE, off, bytes) == 0) {
            return 0;
        }
    }
    if (s->has_zero_range) {
        if (s->sys->fallocate(s->fd, FALLOC_FL_ZERO_RANGE, off, bytes) == 0) {
            return 0;
        }
        if (errno != EOPNOTSUPP && errno != ENOSYS && errno != EINVAL) {
            return -errno;
        }
        s->has_zero_range = false;
    }
    return -ENOTSUP;
}

static int file_block_status(struct bd_node *bs, bool want_zero, int64_t off,
                             int64_t bytes, int64_t *pnum, int64_t *map,
                             struct bd_node **file)
{
    struct file_state *s = bs->opaque;
    off_t data;
    off_t hole;

    *map = off;
    *file = bs;
    if (!want_zero || s->is_blockdev) {
        *pnum = bytes;
        return BD_BLOCK_DATA | BD_BLOCK_OFFSET_VALID;
    }
    data = s->sys->lseek(s->fd, off, SEEK_DATA);
    if (data < 0) {
        if (errno == ENXIO) {
            /* No data at or after off: a hole to the end. */
            *pnum = bytes;
            return BD_BLOCK_ZERO | BD_BLOCK_OFFSET_VALID;
        }
        *pnum = bytes;
        return BD_BLOCK_DATA | BD_BLOCK_OFFSET_VALID;
    }
    if (data > off) {
        *pnum = BD_MIN(bytes, (int64_t)(data - off));
        return BD_BLOCK_ZERO | BD_BLOCK_OFFSET_VALID;
    }
    hole = s->sys->lseek(s->fd, off, SEEK_HOLE);
    if (hole < 0 || hole <= off) {
        *pnum = bytes;
    } else {
        *pnum = BD_MIN(bytes, (int64_t)(hole - off));
    }
    return BD_BLOCK_DATA | BD_BLOCK_OFFSET_VALID;
}

static int64_t file_getlength(struct bd_node *bs)
{
    struct file_state *s = bs->opaque;
    struct stat st;

    if (s->is_blockdev) {
        off_t end = s->sys->lseek(s->fd, 0, SEEK_END);
        return end < 0 ? -errno : (int64_t)end;
    }
    if (s->sys->fstat(s->fd, &st) < 0) {
        return -errno;
    }
    return (int64_t)st.st_size;
}

static int file_truncate(struct bd_node *bs, int64_t size, bool exact,
                         enum bd_prealloc prealloc, int flags,
                         struct bd_error **errp)
{
    struct file_state *s = bs->opaque;
    int64_t cur = file_getlength(bs);

    (void)flags;
    if (s->is_blockdev) {
        if (size > cur || (exact && size != cur)) {
            bd_error_setg(errp, "Cannot grow device files");
            return -ENOTSUP;
        }
        return 0;
    }
    if (size < cur && prealloc != BD_PREALLOC_OFF) {
        bd_error_setg(errp, "Cannot use preallocation for shrinking files");
        return -ENOTSUP;
    }
    if (prealloc == BD_PREALLOC_METADATA) {
        bd_error_setg(errp, "Unsupported preallocation mode: metadata");
        return -ENOTSUP;
    }
    if (s->sys->ftruncate(s->fd, size) < 0) {
        int e = errno;
        bd_error_setg_errno(errp, e, "Failed to resize the file");
        return -e;
    }
    if (size > cur && prealloc == BD_PREALLOC_FALLOC) {
        if (s->sys->fallocate(s->fd, 0, cur, size - cur) < 0) {
            int e = errno;
            bd_error_setg_errno(errp, e,
                                "Could not preallocate new data");
            return -e;
        }
    } else if (size > cur && prealloc == BD_PREALLOC_FULL) {
        int64_t pos = cur;
        size_t chunk = 1 << 20;
        void *zero = bd_malloc0(chunk);

        while (pos < size) {
            struct iovec iov = { zero, (size_t)BD_MIN((int64_t)chunk,
                                                       size - pos) };
            ssize_t n = s->sys->pwritev(s->fd, &iov, 1, pos);
            if (n < 0) {
                int e = errno;
                free(zero);
                bd_error_setg_errno(errp, e, "Could not write zeros for "
                                    "preallocation");
                return -e;
            }
            pos += n;
        }
        free(zero);
    }
    return 0;
}

static int file_has_zero_init(struct bd_node *bs)
{
    struct file_state *s = bs->opaque;

    return !s->is_blockdev;
}

/* ------------------------------------------------------------------ */
/* Locking                                                              */

static int lock_byte(struct file_state *s, int byte, bool lock)
{
    struct flock fl = {
        .l_type = lock ? F_RDLCK : F_UNLCK,
        .l_whence = SEEK_SET,
        .l_start = byte,
        .l_len = 1,
    };

    if (s->sys->fcntl_lock(s->fd, F_OFD_SETLK, &fl) < 0) {
        return -errno;
    }
    return 0;
}

/* Is some other open file description holding a lock on byte? */
static int byte_taken_by_other(struct file_state *s, int byte)
{
    struct flock fl = {
        .l_type = F_WRLCK,
        .l_whence = SEEK_SET,
        .l_start = byte,
        .l_len = 1,
    };

    if (s->sys->fcntl_lock(s->fd, F_OFD_GETLK, &fl) < 0) {
        return -errno;
    }
    return fl.l_type != F_UNLCK;
}

static int file_check_perm(struct bd_node *bs, uint64_t perm, uint64_t shared,
                           struct bd_error **errp)
{
    struct file_state *s = bs->opaque;
    unsigned i;

    if (!s->use_locks) {
        return 0;
    }
    for (i = 0; i < BD_PERM__COUNT; i++) {
        uint64_t bit = 1ULL << i;
        int r;

        if ((perm & bit) && !(s->locked_perm & bit)) {
            r = byte_taken_by_other(s, LOCK_SHARED_BASE + (int)i);
            if (r > 0) {
                bd_error_setg(errp, "Failed to get \"%s\" lock",
                              bd_perm_name(i));
                bd_error_append_hint(errp, "Is another process using the "
                                     "image [%s]?\n", bs->filename);
                return -EAGAIN;
            }
        }
        if (!(shared & bit) && !(s->locked_shared_neg & bit)) {
            r = byte_taken_by_other(s, LOCK_PERM_BASE + (int)i);
            if (r > 0) {
                bd_error_setg(errp, "Failed to get shared \"%s\" lock",
                              bd_perm_name(i));
                bd_error_append_hint(errp, "Is another process using the "
                                     "image [%s]?\n", bs->filename);
                return -EAGAIN;
            }
        }
    }
    return 0;
}

static void file_set_perm(struct bd_node *bs, uint64_t perm, uint64_t shared)
{
    struct file_state *s = bs->opaque;
    uint64_t unshared = BD_PERM_ALL & ~shared;
    unsigned i;

    if (!s->use_locks) {
        return;
    }
    for (i = 0; i < BD_PERM__COUNT; i++) {
        uint64_t bit = 1ULL << i;

        if ((perm & bit) != (s->locked_perm & bit)) {
            lock_byte(s, LOCK_PERM_BASE + (int)i, perm & bit);
        }
        if ((unshared & bit) != (s->locked_shared_neg & bit)) {
            lock_byte(s, LOCK_SHARED_BASE + (int)i, unshared & bit);
        }
    }
    s->locked_perm = perm;
    s->locked_shared_neg = unshared;
}

/* ------------------------------------------------------------------ */
/* Open / close                                                         */

/* Find the smallest transfer alignment O_DIRECT accepts on this file. */
static uint32_t probe_alignment(struct file_state *s)
{
    static const uint32_t cand[] = { 1, 512, 1024, 2048, 4096 };
    unsigned logical = 0;
    void *buf = bd_memalign(4096, 4096 * 2);
    uint32_t found = 4096;
    size_t i;

    if (s->is_blockdev && ioctl(s->fd, BLKSSZGET, &logical) == 0 &&
        logical) {
        free(buf);
        return logical;
    }
    for (i = 0; i < BD_ARRAY_SIZE(cand); i++) {
        struct iovec iov = { buf, cand[i] };
        ssize_t n = s->sys->preadv(s->fd, &iov, 1, 0);

        if (n >= 0) {
            found = cand[i] < 512 ? 512 : cand[i];
            break;
        }
    }
    free(buf);
    return found;
}

static int file_parse_filename(const char *filename, json_t *options,
                               struct bd_error **errp)
{
    (void)errp;
    if (!strncmp(filename, "file:", 5)) {
        filename += 5;
    }
    json_object_set_new(options, "filename", json_string(filename));
    return 0;
}

static int file_open(struct bd_node *bs, json_t *options, int flags,
                     struct bd_error **errp)
{
    struct file_state *s = bs->opaque;
    char *filename = NULL;
    int aio = (flags & BD_O_NATIVE_AIO) ? FILE_AIO_NATIVE : FILE_AIO_THREADS;
    int locking = FILE_LOCK_AUTO;
    bool b;
    uint64_t u;
    int oflags;
    struct stat st;
    int ret;

    s->sys = bd_graph_file_sys(bs->graph);
    s->fd = -1;
    if (bd_opts_take_str(options, "filename", &filename) <= 0) {
        bd_error_setg(errp, "The 'file' block driver requires a file name");
        return -EINVAL;
    }
    if (!strncmp(filename, "file:", 5)) {
        memmove(filename, filename + 5, strlen(filename + 5) + 1);
    }
    free(bs->filename);
    bs->filename = bd_strdup(filename);
    {
        /* QEMU's runtime option parser reports enum errors this way. */
        char *v = NULL;
        if (bd_opts_take_str(options, "aio", &v) > 0) {
            int i;
            for (i = 0; aio_names[i] && strcmp(aio_names[i], v); i++) {
            }
            if (!aio_names[i]) {
                bd_error_setg(errp, "invalid parameter value: %s", v);
                free(v);
                ret = -EINVAL;
                goto fail;
            }
            aio = i;
            free(v);
        }
        if (bd_opts_take_str(options, "locking", &v) > 0) {
            int i;
            for (i = 0; locking_names[i] && strcmp(locking_names[i], v); i++) {
            }
            if (!locking_names[i]) {
                bd_error_setg(errp, "invalid parameter value: %s", v);
                free(v);
                ret = -EINVAL;
                goto fail;
            }
            locking = i;
            free(v);
        }
    }
    if (bd_opts_take_bool(options, "drop-cache", &b, errp) < 0 ||
        bd_opts_take_bool(options, "x-check-cache-dropped", &b, errp) < 0 ||
        bd_opts_take_number(options, "aio-max-batch", &u, errp) < 0) {
        ret = -EINVAL;
        goto fail;
    }
    if (aio == FILE_AIO_IO_URING) {
        bd_error_setg(errp, "aio=io_uring was specified, but is not "
                      "supported in this build.");
        ret = -EINVAL;
        goto fail;
    }
    if (aio == FILE_AIO_NATIVE && !(flags & BD_O_NOCACHE)) {
        bd_error_setg(errp, "aio=native was specified, but it requires "
                      "cache.direct=on, which was not specified.");
        ret = -EINVAL;
        goto fail;
    }
    s->aio = aio;

    oflags = O_CLOEXEC | ((flags & BD_O_RDWR) ? O_RDWR : O_RDONLY);
    if (flags & BD_O_NOCACHE) {
        oflags |= O_DIRECT;
    }
    s->fd = s->sys->open(filename, oflags, 0644);
    if (s->fd < 0 && (flags & BD_O_AUTO_RDONLY) && (flags & BD_O_RDWR) &&
        (errno == EACCES || errno == EROFS || errno == EPERM)) {
        oflags = (oflags & ~O_RDWR) | O_RDONLY;
        bs->read_only = true;
        bs->open_flags &= ~BD_O_RDWR;
        s->fd = s->sys->open(filename, oflags, 0644);
    }
    if (s->fd < 0) {
        ret = -errno;
        bd_error_setg_errno(errp, -ret, "Could not open '%s'", filename);
        goto fail;
    }
    if (s->sys->fstat(s->fd, &st) == 0) {
        s->is_blockdev = S_ISBLK(st.st_mode);
        if (S_ISDIR(st.st_mode)) {
            bd_error_setg(errp, "'%s' is not a file", filename);
            ret = -EISDIR;
            goto fail;
        }
    }
    s->direct = (flags & BD_O_NOCACHE) != 0;
    s->use_locks = locking != FILE_LOCK_OFF &&
                   !(flags & BD_O_FORCE_SHARE);
    s->has_discard = true;
    s->has_zero_range = true;

    bs->bl.request_alignment = (flags & BD_O_NOCACHE) ? probe_alignment(s)
                                                      : 1;
    bs->bl.min_mem_alignment = (flags & BD_O_NOCACHE) ? 4096 : 1;
    bs->supported_zero_flags = BD_REQ_MAY_UNMAP | BD_REQ_NO_FALLBACK;

    if (aio == FILE_AIO_NATIVE) {
        io_context_t ctx = 0;

        /* The first context, now: a system without native AIO fails the
         * open with QEMU's message rather than the first request. */
        ret = s->sys->io_setup(FILE_AIO_CTX_EVENTS, &ctx);
        if (ret < 0) {
            bd_error_setg_errno(errp, -ret, "Unable to use native AIO");
            goto fail;
        }
        pthread_mutex_init(&s->aio_lock, NULL);
        pthread_mutex_init(&s->submit_lock, NULL);
        pthread_cond_init(&s->aio_done, NULL);
        s->ctx_all[0] = s->ctx_free[0] = ctx;
        s->nctx = s->nfree = 1;
        s->aio_ready = true;
    }
    free(filename);
    return 0;

fail:
    if (s->fd >= 0) {
        s->sys->close(s->fd);
        s->fd = -1;
    }
    free(filename);
    return ret;
}

static void file_close(struct bd_node *bs)
{
    struct file_state *s = bs->opaque;

    if (s->aio_ready) {
        int i;

        /* No request is in flight at close: every context is back. */
        for (i = 0; i < s->nctx; i++) {
            s->sys->io_destroy(s->ctx_all[i]);
        }
        pthread_mutex_destroy(&s->aio_lock);
        pthread_mutex_destroy(&s->submit_lock);
        pthread_cond_destroy(&s->aio_done);
        s->aio_ready = false;
    }
    if (s->fd >= 0) {
        s->sys->close(s->fd);   /* also drops every OFD lock */
        s->fd = -1;
    }
}

int bd_driver_file_create(const char *filename, json_t *options,
                          struct bd_error **errp)
{
    uint64_t size = 0;
    int prealloc = BD_PREALLOC_OFF;
    int fd;
    int ret = 0;

    if (bd_opts_take_size(options, "size", &size, errp) < 0 ||
        bd_opts_take_enum(options, "preallocation", bd_prealloc_names,
                          &prealloc, errp) < 0) {
        return -EINVAL;
    }
    fd = open(filename, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        ret = -errno;
        bd_error_setg_errno(errp, -ret, "Could not create '%s'", filename);
        return ret;
    }
    if (ftruncate(fd, (off_t)size) < 0) {
        ret = -errno;
        bd_error_setg_errno(errp, -ret, "Could not resize file");
    } else if (prealloc == BD_PREALLOC_FALLOC && size &&
               fallocate(fd, 0, 0, (off_t)size) < 0) {
        ret = -errno;
        bd_error_setg_errno(errp, -ret, "Could not preallocate data for the "
                            "new file");
    } else if (prealloc == BD_PREALLOC_FULL) {
        char *zero = bd_malloc0(1 << 20);
        uint64_t pos = 0;

        while (pos < size && ret == 0) {
            ssize_t n = pwrite(fd, zero, (size_t)BD_MIN(size - pos,
                                                        (uint64_t)(1 << 20)),
                               (off_t)pos);
            if (n < 0) {
                ret = -errno;
                bd_error_setg_errno(errp, -ret, "Could not write zeros for "
                                    "preallocation");
            } else {
                pos += (uint64_t)n;
            }
        }
        free(zero);
    }
    close(fd);
    return ret;
}

/* BlockdevOptionsFile, as blockdev-add validates it. */
static const struct qapi_type file_aio_qapi = {
    .kind = QAPI_ENUM, .name = "BlockdevAioOptions", .enum_values = aio_names,
};
static const struct qapi_type file_locking_qapi = {
    .kind = QAPI_ENUM, .name = "OnOffAuto", .enum_values = locking_names,
};
static const struct qapi_member file_qapi_members[] = {
    { "filename", &qapi_type_str, false },
    { "locking", &file_locking_qapi, true },
    { "aio", &file_aio_qapi, true },
    { "aio-max-batch", &qapi_type_int, true },
    { "drop-cache", &qapi_type_bool, true },
    { "x-check-cache-dropped", &qapi_type_bool, true },
    { NULL, NULL, false },
};
static const struct qapi_type file_qapi_options = {
    .kind = QAPI_STRUCT, .name = "BlockdevOptionsFile",
    .members = file_qapi_members,
};

static const struct bd_driver file_driver = {
    .struct_size = sizeof(struct bd_driver),
    .name = "file",
    .qapi_options = &file_qapi_options,
    .protocol_name = "file",
    .instance_size = sizeof(struct file_state),
    .parse_filename = file_parse_filename,
    .open = file_open,
    .close = file_close,
    .getlength = file_getlength,
    .preadv = file_preadv,
    .pwritev = file_pwritev,
    .pwrite_zeroes = file_pwrite_zeroes,
    .pdiscard = file_pdiscard,
    .flush_to_disk = file_flush_to_disk,
    .block_status = file_block_status,
    .truncate = file_truncate,
    .check_perm = file_check_perm,
    .set_perm = file_set_perm,
    .create = bd_driver_file_create,
    .has_zero_init = file_has_zero_init,
};

BD_DRIVER_EXPORT(file_driver, bd_driver_file)
