/*
 * cli/io-cmds.c - the commands of `blkrig io`, with qemu-io's syntax,
 * output lines, message streams and return values (checked against
 * qemu-io 10.0.2; deliberate differences are listed in docs/compat.md).
 *
 * Each command returns 0 or a negative errno; a negative value makes the
 * program's exit status 1. Option parsing uses getopt with optind reset,
 * as qemu-io does, so "read 0 -5" is an invalid option '5' there too.
 */
#include "common/config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/io-int.h"
#include "common/cutils.h"
#include "common/iofmt.h"
#include "common/opts.h"
#include "driver/block-int.h"

/* Largest request qemu-io accepts: INT_MAX rounded down to 512 bytes. */
#define IO_MAX_BYTES 2147483136LL

#define IO_CMD_NOFILE_OK 0x01   /* runs without an open image */

struct io_cmd {
    const char *name;
    const char *altname;
    int (*fn)(struct io_ctx *ctx, int argc, char **argv);
    int argmin;
    int argmax;              /* -1: no limit */
    unsigned flags;
    uint64_t perm;           /* permissions the command needs */
    const char *args;
    const char *oneline;
    const char *help;        /* extended help text, may be NULL */
};

static const struct io_cmd *find_cmd(const char *name);

static void usage_line(const struct io_cmd *ct)
{
    /* No argument text: one space ("quit -- ..."); an empty one gives
     * qemu-io's two ("map  -- ..."). */
    if (ct->args) {
        printf("%s %s -- %s\n", ct->name, ct->args, ct->oneline);
    } else {
        printf("%s -- %s\n", ct->name, ct->oneline);
    }
}

static int usage_of(const char *name)
{
    usage_line(find_cmd(name));
    return -EINVAL;
}

/* Parse a number argument, printing qemu-io's message on failure. */
static int parse_num(const char *arg, int64_t *out)
{
    int ret = bd_iofmt_cvtnum(arg, out);

    if (ret < 0) {
        bd_iofmt_cvtnum_err(stdout, ret, arg);
    }
    return ret;
}

static int parse_pattern_arg(const char *arg, int *pattern)
{
    int p = bd_iofmt_pattern(arg);

    if (p < 0) {
        printf("%s is not a valid pattern byte\n", arg);
        return -EINVAL;
    }
    *pattern = p;
    return 0;
}

static int check_len(int64_t count, const char *arg)
{
    if (count > IO_MAX_BYTES) {
        printf("length cannot exceed %" PRIu64 ", given %s\n",
               (uint64_t)IO_MAX_BYTES, arg);
        return -EINVAL;
    }
    return 0;
}

static void *io_alloc(size_t len, int pattern)
{
    /* 4 KiB alignment serves O_DIRECT (-n, cache=none) on every device. */
    void *buf = bd_memalign(4096, len ? len : 1);

    memset(buf, pattern, len);
    return buf;
}

/* Fill len bytes of buf by repeating the contents of a file (write -s). */
static int fill_from_file(void *buf, size_t len, const char *path)
{
    char *p = buf;
    size_t done = 0;
    int fd = open(path, O_RDONLY);

    if (fd < 0) {
        fprintf(stderr, "%s: %s\n", path, bd_strerror(errno));
        return -EINVAL;
    }
    while (done < len) {
        ssize_t r = read(fd, p + done, len - done);

        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            fprintf(stderr, "%s: %s\n", path, bd_strerror(errno));
            close(fd);
            return -EINVAL;
        }
        if (r == 0) {
            if (done == 0) {
                /* Nothing to repeat: an empty file gives zeroes. */
                memset(p, 0, len);
                break;
            }
            /* Repeat what was read so far over the rest. */
            while (done < len) {
                size_t n = BD_MIN(done, len - done);
                memcpy(p + done, p, n);
                done += n;
            }
            break;
        }
        done += (size_t)r;
    }
    close(fd);
    return 0;
}

/* ------------------------------------------------------------------ */
/* aio                                                                  */

struct io_aio {
    struct io_aio *next;
    struct io_ctx *ctx;
    pthread_t thread;
    bool write;
    bool zero;
    bool done;
    int flags;
    int64_t offset;
    struct bd_qiov qiov;
    int64_t bytes;
    void *buf;
    int64_t t0;
    int64_t t1;
    int ret;
    /* report options */
    bool Cflag;
    bool qflag;
    bool vflag;
    bool Pflag;
    int pattern;
};

static void *aio_worker(void *opaque)
{
    struct io_aio *a = opaque;
    struct io_ctx *ctx = a->ctx;
    int ret;

    if (a->zero) {
        ret = bd_blk_pwrite_zeroes(ctx->blk, a->offset, a->bytes, a->flags);
    } else if (a->write) {
        ret = bd_blk_pwritev(ctx->blk, a->offset, a->bytes, &a->qiov,
                             a->flags);
    } else {
        ret = bd_blk_preadv(ctx->blk, a->offset, a->bytes, &a->qiov,
                            a->flags);
    }
    pthread_mutex_lock(&ctx->aio_lock);
    a->ret = ret;
    a->t1 = bd_clock_ns();
    a->done = true;
    pthread_cond_broadcast(&ctx->aio_cond);
    pthread_mutex_unlock(&ctx->aio_lock);
    return NULL;
}

/* True while some submitted aio request has not finished. */
static bool io_aio_pending_locked(struct io_ctx *ctx)
{
    struct io_aio *a;

    for (a = ctx->aio_head; a; a = a->next) {
        if (!a->done) {
            return true;
        }
    }
    return false;
}

bool io_aio_pending(struct io_ctx *ctx)
{
    bool r;

    pthread_mutex_lock(&ctx->aio_lock);
    r = io_aio_pending_locked(ctx);
    pthread_mutex_unlock(&ctx->aio_lock);
    return r;
}

static void aio_report(struct io_aio *a)
{
    if (a->ret < 0) {
        /* qemu-io 10.0 names a failed aio_read after readv. */
        printf("%s failed: %s\n", a->write ? "aio_write" : "readv",
               bd_strerror(-a->ret));
        return;
    }
    if (!a->write && a->Pflag) {
        char *cmp = bd_malloc(a->bytes ? (size_t)a->bytes : 1);

        memset(cmp, a->pattern, (size_t)a->bytes);
        if (memcmp(a->buf, cmp, (size_t)a->bytes)) {
            printf("Pattern verification failed at offset %" PRId64 ", %"
                   PRId64 " bytes\n", a->offset, a->bytes);
        }
        free(cmp);
    }
    if (a->qflag) {
        return;
    }
    if (!a->write && a->vflag) {
        bd_iofmt_hexdump(stdout, a->buf, a->offset, a->bytes);
    }
    bd_iofmt_report(stdout, a->write ? "wrote" : "read", a->t1 - a->t0,
                    a->offset, a->bytes, a->bytes, 1, a->Cflag);
}

static void aio_free(struct io_aio *a)
{
    bd_qiov_destroy(&a->qiov);
    free(a->buf);
    free(a);
}

/*
 * A request suspended at a breakpoint can only be resumed by the main
 * thread, which is waiting for it: resume it with a warning rather than
 * wait forever (qemu-io hangs there). Only tags set by `break` can hold a
 * request.
 */
static void resume_stuck(struct io_ctx *ctx)
{
    struct bd_node *n = ctx->blk ? bd_blk_node(ctx->blk) : NULL;
    int i;

    for (i = 0; n && i < ctx->n_bp_tags; i++) {
        while (bd_debug_is_suspended(n, ctx->bp_tags[i])) {
            fprintf(stderr, "%s: request '%s' is suspended at a breakpoint "
                    "and nothing can resume it; resuming it\n", ctx->prog,
                    ctx->bp_tags[i]);
            if (bd_debug_resume(n, ctx->bp_tags[i]) < 0) {
                break;
            }
        }
    }
}

void io_aio_poll(struct io_ctx *ctx, bool wait)
{
    struct io_aio *ready = NULL;
    struct io_aio **rtail = &ready;
    struct io_aio **pp;

    pthread_mutex_lock(&ctx->aio_lock);
    /* Drain first when asked, then report in submission order: results of
     * concurrent requests come out in a fixed order. */
    while (wait && io_aio_pending_locked(ctx)) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        if (pthread_cond_timedwait(&ctx->aio_cond, &ctx->aio_lock,
                                   &ts) == ETIMEDOUT) {
            pthread_mutex_unlock(&ctx->aio_lock);
            resume_stuck(ctx);
            pthread_mutex_lock(&ctx->aio_lock);
        }
    }
    pp = &ctx->aio_head;
    ctx->aio_tail = NULL;
    while (*pp) {
        struct io_aio *a = *pp;

        if (a->done) {
            *pp = a->next;
            a->next = NULL;
            *rtail = a;
            rtail = &a->next;
        } else {
            ctx->aio_tail = a;
            pp = &a->next;
        }
    }
    pthread_mutex_unlock(&ctx->aio_lock);
    while (ready) {
        struct io_aio *a = ready;

        ready = a->next;
        pthread_join(a->thread, NULL);
        aio_report(a);
        aio_free(a);
    }
}

static int aio_submit(struct io_ctx *ctx, struct io_aio *a)
{
    int ret;

    a->ctx = ctx;
    a->t0 = bd_clock_ns();
    pthread_mutex_lock(&ctx->aio_lock);
    if (ctx->aio_tail) {
        ctx->aio_tail->next = a;
    } else {
        ctx->aio_head = a;
    }
    ctx->aio_tail = a;
    ret = pthread_create(&a->thread, NULL, aio_worker, a);
    if (ret != 0) {
        /* Treat a failed spawn as a failed request, reported in order. */
        a->ret = -ret;
        a->done = true;
        a->t1 = a->t0;
        a->thread = pthread_self();
    }
    pthread_mutex_unlock(&ctx->aio_lock);
    return 0;
}

/* ------------------------------------------------------------------ */
/* iovec arguments (readv, writev, aio_*)                               */

/* Parse lengths argv[0..n) into a qiov over one buffer filled with
 * pattern; returns the buffer or NULL after printing the error. */
static void *build_iovec(char **argv, int n, int pattern, struct bd_qiov *q,
                         int64_t *total)
{
    int64_t *sizes = bd_malloc0(sizeof(*sizes) * (size_t)n);
    int64_t count = 0;
    char *buf = NULL;
    char *p;
    int i;

    for (i = 0; i < n; i++) {
        int64_t len;

        if (parse_num(argv[i], &len) < 0) {
            goto out;
        }
        if (len > IO_MAX_BYTES) {
            printf("Argument '%s' exceeds maximum size %" PRIu64 "\n",
                   argv[i], (uint64_t)IO_MAX_BYTES);
            goto out;
        }
        if (count > IO_MAX_BYTES - len) {
            printf("The total number of bytes exceed the maximum size %"
                   PRIu64 "\n", (uint64_t)IO_MAX_BYTES);
            goto out;
        }
        sizes[i] = len;
        count += len;
    }
    buf = io_alloc((size_t)count, pattern);
    bd_qiov_init(q);
    for (i = 0, p = buf; i < n; i++) {
        bd_qiov_add(q, p, (size_t)sizes[i]);
        p += sizes[i];
    }
    *total = count;
out:
    free(sizes);
    return buf;
}

/* ------------------------------------------------------------------ */
/* read / write                                                         */

/*
 * -b: the VM state area. Like QEMU's blk_load/save_vmstate this goes to
 * the node directly (offsets are in the state area, not the disk, so the
 * backend's range check does not apply) and, in writethrough mode, a save
 * is followed by a flush rather than carrying FUA.
 */
static int vmstate_rw(struct io_ctx *ctx, int64_t offset, int64_t count,
                      void *buf, bool write)
{
    struct bd_node *n = bd_blk_node(ctx->blk);
    struct bd_qiov q;
    int ret;

    bd_qiov_init_buf(&q, buf, (size_t)count);
    if (!write) {
        return bd_node_preadv(n, offset, count, &q, BD_REQ_VMSTATE);
    }
    ret = bd_node_pwritev(n, offset, count, &q, BD_REQ_VMSTATE);
    if (ret == 0 && !bd_blk_write_cache(ctx->blk)) {
        ret = bd_blk_flush(ctx->blk);
    }
    return ret;
}

static int read_f(struct io_ctx *ctx, int argc, char **argv)
{
    bool Cflag = false, qflag = false, vflag = false, bflag = false;
    bool Pflag = false, sflag = false, lflag = false;
    int pattern = 0;
    int64_t poff = 0, pcount = 0, offset, count;
    int64_t t0, t1;
    char *buf;
    int ret;
    int c;

    while ((c = getopt(argc, argv, "bCl:pP:qrs:v")) != -1) {
        switch (c) {
        case 'b':
            bflag = true;
            break;
        case 'C':
            Cflag = true;
            break;
        case 'l':
            lflag = true;
            if (parse_num(optarg, &pcount) < 0) {
                return -EINVAL;
            }
            break;
        case 'p':
        case 'r':
            /* -p: ignored for compatibility; -r: buffer registration has
             * no meaning without a VM. */
            break;
        case 'P':
            Pflag = true;
            if (parse_pattern_arg(optarg, &pattern) < 0) {
                return -EINVAL;
            }
            break;
        case 'q':
            qflag = true;
            break;
        case 's':
            sflag = true;
            if (parse_num(optarg, &poff) < 0) {
                return -EINVAL;
            }
            break;
        case 'v':
            vflag = true;
            break;
        default:
            return usage_of("read");
        }
    }
    if (optind != argc - 2) {
        return usage_of("read");
    }
    if (parse_num(argv[optind], &offset) < 0) {
        return -EINVAL;
    }
    optind++;
    if (parse_num(argv[optind], &count) < 0) {
        return -EINVAL;
    }
    if (check_len(count, argv[optind]) < 0) {
        return -EINVAL;
    }
    if (!Pflag && (lflag || sflag)) {
        return usage_of("read");
    }
    if (!lflag) {
        pcount = count - poff;
    }
    if (pcount < 0 || poff > count - pcount) {
        printf("pattern verification range exceeds end of read data\n");
        return -EINVAL;
    }
    if (bflag) {
        if (offset & 511) {
            printf("%" PRId64 " is not a sector-aligned value for 'offset'\n",
                   offset);
            return -EINVAL;
        }
        if (count & 511) {
            printf("%" PRId64 " is not a sector-aligned value for 'count'\n",
                   count);
            return -EINVAL;
        }
    }
    io_aio_poll(ctx, false);
    buf = io_alloc((size_t)count, 0xab);
    t0 = bd_clock_ns();
    if (bflag) {
        ret = vmstate_rw(ctx, offset, count, buf, false);
    } else {
        ret = bd_blk_pread(ctx->blk, offset, count, buf, 0);
    }
    t1 = bd_clock_ns();
    io_aio_poll(ctx, false);
    if (ret < 0) {
        printf("read failed: %s\n", bd_strerror(-ret));
        goto out;
    }
    ret = 0;
    if (Pflag) {
        char *cmp = io_alloc((size_t)pcount, pattern);

        if (memcmp(buf + poff, cmp, (size_t)pcount)) {
            printf("Pattern verification failed at offset %" PRId64 ", %"
                   PRId64 " bytes\n", offset + poff, pcount);
            ret = -EINVAL;
        }
        free(cmp);
    }
    if (qflag) {
        goto out;
    }
    if (vflag) {
        bd_iofmt_hexdump(stdout, buf, offset, count);
    }
    bd_iofmt_report(stdout, "read", t1 - t0, offset, count, count, 1, Cflag);
out:
    free(buf);
    return ret;
}

static int write_f(struct io_ctx *ctx, int argc, char **argv)
{
    bool Cflag = false, qflag = false, bflag = false, cflag = false;
    bool zflag = false, Pflag = false, sflag = false;
    const char *source = NULL;
    int pattern = 0xcd;
    int flags = 0;
    int64_t offset, count;
    int64_t t0, t1;
    char *buf = NULL;
    int ret;
    int c;

    while ((c = getopt(argc, argv, "bcCfnpP:qrs:uz")) != -1) {
        switch (c) {
        case 'b':
            bflag = true;
            break;
        case 'c':
            cflag = true;
            break;
        case 'C':
            Cflag = true;
            break;
        case 'f':
            flags |= BD_REQ_FUA;
            break;
        case 'n':
            flags |= BD_REQ_NO_FALLBACK;
            break;
        case 'p':
        case 'r':
            break;
        case 'P':
            Pflag = true;
            if (parse_pattern_arg(optarg, &pattern) < 0) {
                return -EINVAL;
            }
            break;
        case 'q':
            qflag = true;
            break;
        case 's':
            sflag = true;
            source = optarg;
            break;
        case 'u':
            flags |= BD_REQ_MAY_UNMAP;
            break;
        case 'z':
            zflag = true;
            break;
        default:
            return usage_of("write");
        }
    }
    if (optind != argc - 2) {
        return usage_of("write");
    }
    if (bflag && zflag) {
        printf("-b and -z cannot be specified at the same time\n");
        return -EINVAL;
    }
    if ((flags & BD_REQ_FUA) && (bflag || cflag)) {
        printf("-f and -b or -c cannot be specified at the same time\n");
        return -EINVAL;
    }
    if ((flags & BD_REQ_NO_FALLBACK) && !zflag) {
        printf("-n requires -z to be specified\n");
        return -EINVAL;
    }
    if ((flags & BD_REQ_MAY_UNMAP) && !zflag) {
        printf("-u requires -z to be specified\n");
        return -EINVAL;
    }
    if ((int)zflag + (int)Pflag + (int)sflag > 1) {
        printf("Only one of -z, -P, and -s can be specified at the same "
               "time\n");
        return -EINVAL;
    }
    if (parse_num(argv[optind], &offset) < 0) {
        return -EINVAL;
    }
    optind++;
    if (parse_num(argv[optind], &count) < 0) {
        return -EINVAL;
    }
    if (count > IO_MAX_BYTES && !(flags & BD_REQ_NO_FALLBACK)) {
        /* Only a write-zeroes that may not fall back has no buffer limit. */
        printf("length cannot exceed %" PRIu64 " without -n, given %s\n",
               (uint64_t)IO_MAX_BYTES, argv[optind]);
        return -EINVAL;
    }
    if (bflag || cflag) {
        if (offset & 511) {
            printf("%" PRId64 " is not a sector-aligned value for 'offset'\n",
                   offset);
            return -EINVAL;
        }
        if (count & 511) {
            printf("%" PRId64 " is not a sector-aligned value for 'count'\n",
                   count);
            return -EINVAL;
        }
    }
    if (!zflag) {
        buf = io_alloc((size_t)count, pattern);
        if (sflag && fill_from_file(buf, (size_t)count, source) < 0) {
            free(buf);
            return -EINVAL;
        }
    }
    io_aio_poll(ctx, false);
    t0 = bd_clock_ns();
    if (zflag) {
        ret = bd_blk_pwrite_zeroes(ctx->blk, offset, count, flags);
    } else if (bflag) {
        ret = vmstate_rw(ctx, offset, count, buf, true);
    } else {
        if (cflag) {
            flags |= BD_REQ_WRITE_COMPRESSED;
        }
        ret = bd_blk_pwrite(ctx->blk, offset, count, buf, flags);
    }
    t1 = bd_clock_ns();
    io_aio_poll(ctx, false);
    if (ret < 0) {
        printf("write failed: %s\n", bd_strerror(-ret));
        goto out;
    }
    ret = 0;
    if (!qflag) {
        bd_iofmt_report(stdout, "wrote", t1 - t0, offset, count, count, 1,
                        Cflag);
    }
out:
    free(buf);
    return ret;
}

static int readv_f(struct io_ctx *ctx, int argc, char **argv)
{
    bool Cflag = false, qflag = false, vflag = false, Pflag = false;
    int pattern = 0;
    int64_t offset, total = 0;
    int64_t t0, t1;
    struct bd_qiov q;
    char *buf;
    int ret;
    int c;

    while ((c = getopt(argc, argv, "CP:qrv")) != -1) {
        switch (c) {
        case 'C':
            Cflag = true;
            break;
        case 'P':
            Pflag = true;
            if (parse_pattern_arg(optarg, &pattern) < 0) {
                return -EINVAL;
            }
            break;
        case 'q':
            qflag = true;
            break;
        case 'r':
            break;
        case 'v':
            vflag = true;
            break;
        default:
            return usage_of("readv");
        }
    }
    if (optind > argc - 2) {
        return usage_of("readv");
    }
    if (parse_num(argv[optind], &offset) < 0) {
        return -EINVAL;
    }
    optind++;
    buf = build_iovec(argv + optind, argc - optind, 0xab, &q, &total);
    if (!buf) {
        return -EINVAL;
    }
    io_aio_poll(ctx, false);
    t0 = bd_clock_ns();
    ret = bd_blk_preadv(ctx->blk, offset, total, &q, 0);
    t1 = bd_clock_ns();
    io_aio_poll(ctx, false);
    if (ret < 0) {
        printf("readv failed: %s\n", bd_strerror(-ret));
        goto out;
    }
    ret = 0;
    if (Pflag) {
        char *cmp = io_alloc((size_t)total, pattern);

        if (memcmp(buf, cmp, (size_t)total)) {
            printf("Pattern verification failed at offset %" PRId64 ", %"
                   PRId64 " bytes\n", offset, total);
            ret = -EINVAL;
        }
        free(cmp);
    }
    if (qflag) {
        goto out;
    }
    if (vflag) {
        bd_iofmt_hexdump(stdout, buf, offset, total);
    }
    bd_iofmt_report(stdout, "read", t1 - t0, offset, total, total, 1, Cflag);
out:
    bd_qiov_destroy(&q);
    free(buf);
    return ret;
}

static int writev_f(struct io_ctx *ctx, int argc, char **argv)
{
    bool Cflag = false, qflag = false;
    int pattern = 0xcd;
    int flags = 0;
    int64_t offset, total = 0;
    int64_t t0, t1;
    struct bd_qiov q;
    char *buf;
    int ret;
    int c;

    while ((c = getopt(argc, argv, "CfqrP:")) != -1) {
        switch (c) {
        case 'C':
            Cflag = true;
            break;
        case 'f':
            flags |= BD_REQ_FUA;
            break;
        case 'q':
            qflag = true;
            break;
        case 'r':
            break;
        case 'P':
            if (parse_pattern_arg(optarg, &pattern) < 0) {
                return -EINVAL;
            }
            break;
        default:
            return usage_of("writev");
        }
    }
    if (optind > argc - 2) {
        return usage_of("writev");
    }
    if (parse_num(argv[optind], &offset) < 0) {
        return -EINVAL;
    }
    optind++;
    buf = build_iovec(argv + optind, argc - optind, pattern, &q, &total);
    if (!buf) {
        return -EINVAL;
    }
    io_aio_poll(ctx, false);
    t0 = bd_clock_ns();
    ret = bd_blk_pwritev(ctx->blk, offset, total, &q, flags);
    t1 = bd_clock_ns();
    io_aio_poll(ctx, false);
    if (ret < 0) {
        printf("writev failed: %s\n", bd_strerror(-ret));
        goto out;
    }
    ret = 0;
    if (!qflag) {
        bd_iofmt_report(stdout, "wrote", t1 - t0, offset, total, total, 1,
                        Cflag);
    }
out:
    bd_qiov_destroy(&q);
    free(buf);
    return ret;
}

static int aio_rw(struct io_ctx *ctx, int argc, char **argv, bool write)
{
    const char *name = write ? "aio_write" : "aio_read";
    struct io_aio *a = bd_malloc0(sizeof(*a));
    bool iflag = false;
    int c;

    a->write = write;
    a->pattern = write ? 0xcd : 0;
    while ((c = getopt(argc, argv, write ? "CfiqrP:uz" : "CiP:qrv")) != -1) {
        switch (c) {
        case 'C':
            a->Cflag = true;
            break;
        case 'f':
            a->flags |= BD_REQ_FUA;
            break;
        case 'i':
            iflag = true;
            break;
        case 'q':
            a->qflag = true;
            break;
        case 'r':
            break;
        case 'v':
            a->vflag = true;
            break;
        case 'P':
            a->Pflag = true;
            if (parse_pattern_arg(optarg, &a->pattern) < 0) {
                free(a);
                return -EINVAL;
            }
            break;
        case 'u':
            a->flags |= BD_REQ_MAY_UNMAP;
            break;
        case 'z':
            a->zero = true;
            break;
        default:
            free(a);
            return usage_of(name);
        }
    }
    if (optind > argc - 2) {
        free(a);
        return usage_of(name);
    }
    if ((a->flags & BD_REQ_MAY_UNMAP) && !a->zero) {
        printf("-u requires -z to be specified\n");
        free(a);
        return -EINVAL;
    }
    if (parse_num(argv[optind], &a->offset) < 0) {
        free(a);
        return -EINVAL;
    }
    optind++;
    if (a->zero) {
        if (optind != argc - 1) {
            printf("-z supports only a single length parameter\n");
            free(a);
            return -EINVAL;
        }
        if (parse_num(argv[optind], &a->bytes) < 0) {
            free(a);
            return -EINVAL;
        }
        bd_qiov_init(&a->qiov);
    } else {
        a->buf = build_iovec(argv + optind, argc - optind,
                             write ? a->pattern : 0xab, &a->qiov, &a->bytes);
        if (!a->buf) {
            free(a);
            return -EINVAL;
        }
    }
    if (iflag) {
        /* qemu-io -i counts an invalid request in the statistics without
         * issuing it; an out-of-range request is counted exactly so. */
        if (write) {
            bd_blk_pwrite(ctx->blk, -1, 0, NULL, 0);
        } else {
            bd_blk_pread(ctx->blk, -1, 0, NULL, 0);
        }
        aio_free(a);
        return 0;
    }
    return aio_submit(ctx, a);
}

static int aio_read_f(struct io_ctx *ctx, int argc, char **argv)
{
    return aio_rw(ctx, argc, argv, false);
}

static int aio_write_f(struct io_ctx *ctx, int argc, char **argv)
{
    return aio_rw(ctx, argc, argv, true);
}

static int aio_flush_f(struct io_ctx *ctx, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    io_aio_poll(ctx, true);
    return 0;
}

static int flush_f(struct io_ctx *ctx, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    io_aio_poll(ctx, false);
    /* qemu-io prints nothing when a flush fails; only the status tells. */
    return bd_blk_flush(ctx->blk);
}

static int discard_f(struct io_ctx *ctx, int argc, char **argv)
{
    bool Cflag = false, qflag = false;
    int64_t offset, bytes;
    int64_t t0, t1;
    int ret;
    int c;

    while ((c = getopt(argc, argv, "Cq")) != -1) {
        switch (c) {
        case 'C':
            Cflag = true;
            break;
        case 'q':
            qflag = true;
            break;
        default:
            return usage_of("discard");
        }
    }
    if (optind != argc - 2) {
        return usage_of("discard");
    }
    if (parse_num(argv[optind], &offset) < 0) {
        return -EINVAL;
    }
    optind++;
    if (parse_num(argv[optind], &bytes) < 0) {
        return -EINVAL;
    }
    if (check_len(bytes, argv[optind]) < 0) {
        return -EINVAL;
    }
    io_aio_poll(ctx, false);
    t0 = bd_clock_ns();
    ret = bd_blk_pdiscard(ctx->blk, offset, bytes);
    t1 = bd_clock_ns();
    if (ret < 0) {
        printf("discard failed: %s\n", bd_strerror(-ret));
        return ret;
    }
    if (!qflag) {
        bd_iofmt_report(stdout, "discard", t1 - t0, offset, bytes, bytes, 1,
                        Cflag);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Allocation                                                           */

static int alloc_f(struct io_ctx *ctx, int argc, char **argv)
{
    struct bd_node *n = bd_blk_node(ctx->blk);
    int64_t offset, start, remaining, count = 512, sum = 0;
    char s1[64];
    int ret;

    if (parse_num(argv[1], &offset) < 0) {
        return -EINVAL;
    }
    if (argc == 3 && parse_num(argv[2], &count) < 0) {
        return -EINVAL;
    }
    io_aio_poll(ctx, false);
    start = offset;
    remaining = count;
    while (remaining) {
        int64_t num = 0;

        ret = bd_node_is_allocated(n, offset, remaining, &num);
        if (ret < 0) {
            printf("is_allocated failed: %s\n", bd_strerror(-ret));
            return ret;
        }
        offset += num;
        remaining -= num;
        if (ret) {
            sum += num;
        }
        if (num == 0) {
            /* End of the image: report only what exists. */
            count -= remaining;
            remaining = 0;
        }
    }
    bd_iofmt_size((double)start, s1, sizeof(s1));
    printf("%" PRId64 "/%" PRId64 " bytes allocated at offset %s\n", sum,
           count, s1);
    return 0;
}

/* One run of equal allocation status from offset, merging adjacent runs
 * the way qemu-io's map does. */
static int map_run(struct bd_node *n, int64_t offset, int64_t bytes,
                   int64_t *pnum)
{
    int64_t num = 0;
    int first;
    int ret;

    ret = bd_is_allocated_above(n, NULL, offset, bytes, &num);
    if (ret < 0) {
        return ret;
    }
    first = ret;
    *pnum = num;
    while (num > 0 && bytes > num) {
        int64_t more = 0;

        offset += num;
        bytes -= num;
        ret = bd_is_allocated_above(n, NULL, offset, bytes, &more);
        if (ret < 0) {
            return ret;
        }
        if (ret != first || more == 0) {
            break;
        }
        *pnum += more;
        num = more;
    }
    return first;
}

static int map_f(struct io_ctx *ctx, int argc, char **argv)
{
    struct bd_node *n = bd_blk_node(ctx->blk);
    int64_t offset = 0, length, bytes;
    char s1[64], s2[64];

    (void)argc;
    (void)argv;
    io_aio_poll(ctx, false);
    length = bd_blk_getlength(ctx->blk);
    if (length < 0) {
        fprintf(stderr, "%s: Failed to query image length: %s\n", ctx->prog,
                bd_strerror((int)-length));
        return (int)length;
    }
    bytes = length;
    do {
        int64_t num = 0;
        int ret = map_run(n, offset, bytes, &num);

        if (ret < 0) {
            fprintf(stderr, "%s: Failed to get allocation status: %s\n",
                    ctx->prog, bd_strerror(-ret));
            return ret;
        }
        if (!num) {
            fprintf(stderr, "%s: Unexpected end of image\n", ctx->prog);
            return -EIO;
        }
        bd_iofmt_size((double)num, s1, sizeof(s1));
        bd_iofmt_size((double)offset, s2, sizeof(s2));
        printf("%s (0x%" PRIx64 ") bytes %s allocated at offset %s (0x%"
               PRIx64 ")\n", s1, (uint64_t)num, ret ? "   " : "not", s2,
               (uint64_t)offset);
        offset += num;
        bytes -= num;
    } while (offset < length);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Image information                                                    */

static int length_f(struct io_ctx *ctx, int argc, char **argv)
{
    int64_t size = bd_blk_getlength(ctx->blk);
    char s1[64];

    (void)argc;
    (void)argv;
    if (size < 0) {
        printf("getlength: %s\n", bd_strerror((int)-size));
        return (int)size;
    }
    bd_iofmt_size((double)size, s1, sizeof(s1));
    printf("%s\n", s1);
    return 0;
}

/*
 * Whether the node can describe itself. raw and filters (blkdebug) forward
 * the question to their child in QEMU, and of the protocols only file
 * answers; null-co has nothing to say, so `info` fails on it (exit 1).
 */
static bool info_supported(struct bd_node *n)
{
    struct bd_node *child = NULL;

    if (!strcmp(n->drv->name, "file")) {
        return true;
    }
    if (!strcmp(n->drv->name, "raw") || n->drv->is_filter) {
        child = n->file ? n->file->node : bd_node_filtered(n);
        return child && info_supported(child);
    }
    return n->drv->get_info != NULL;
}

/*
 * The human form of a format's specific information, as qemu-io and
 * qemu-img info print it: one "key: value" per line in the driver's order,
 * '-' in keys shown as ' ', nested objects and lists indented by four
 * spaces per level, list entries as "[i]:".
 */
static void dump_specific_value(const json_t *v, int indent);

static void dump_specific(const json_t *obj, int indent)
{
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)obj, key, v) {
        char *k = bd_strdup(key);
        char *p;

        for (p = k; *p; p++) {
            if (*p == '-') {
                *p = ' ';
            }
        }
        printf("%*s%s:%c", indent * 4, "", k,
               json_is_object(v) || json_is_array(v) ? '\n' : ' ');
        free(k);
        dump_specific_value(v, indent + 1);
    }
}

static void dump_specific_value(const json_t *v, int indent)
{
    size_t i;

    switch (json_typeof(v)) {
    case JSON_OBJECT:
        dump_specific(v, indent);
        break;
    case JSON_ARRAY:
        for (i = 0; i < json_array_size(v); i++) {
            const json_t *e = json_array_get(v, i);

            printf("%*s[%zu]:%c", indent * 4, "", i,
                   json_is_object(e) || json_is_array(e) ? '\n' : ' ');
            dump_specific_value(e, indent + 1);
        }
        break;
    case JSON_STRING:
        printf("%s\n", json_string_value(v));
        break;
    case JSON_INTEGER:
        printf("%" JSON_INTEGER_FORMAT "\n", json_integer_value(v));
        break;
    case JSON_REAL:
        printf("%f\n", json_real_value(v));
        break;
    case JSON_TRUE:
        printf("true\n");
        break;
    case JSON_FALSE:
        printf("false\n");
        break;
    case JSON_NULL:
        printf("null\n");
        break;
    }
}

static int info_f(struct io_ctx *ctx, int argc, char **argv)
{
    struct bd_node *n = bd_blk_node(ctx->blk);
    struct bd_node_info info;
    char s1[64], s2[64];
    int ret;

    (void)argc;
    (void)argv;
    printf("format name: %s\n", bd_node_driver_name(n));
    if (!n->drv->is_format) {
        /* qemu-io 10.0 names a protocol or filter node twice. */
        printf("format name: %s\n", bd_node_driver_name(n));
    }
    if (!info_supported(n)) {
        return -ENOTSUP;
    }
    ret = bd_get_info(n, &info);
    if (ret < 0) {
        return ret;
    }
    bd_iofmt_size((double)info.cluster_size, s1, sizeof(s1));
    bd_iofmt_size((double)info.vm_state_offset, s2, sizeof(s2));
    printf("cluster size: %s\n", s1);
    printf("vm state offset: %s\n", s2);
    if (info.format_specific) {
        printf("Format specific information:\n");
        dump_specific(info.format_specific, 1);
        json_decref(info.format_specific);
    }
    return 0;
}

static int truncate_f(struct io_ctx *ctx, int argc, char **argv)
{
    struct bd_error *err = NULL;
    enum bd_prealloc prealloc = BD_PREALLOC_OFF;
    int64_t offset;
    int ret;
    int c;

    while ((c = getopt(argc, argv, "m:")) != -1) {
        switch (c) {
        case 'm': {
            int i;
            for (i = 0; i < BD_PREALLOC__MAX; i++) {
                if (!strcmp(optarg, bd_prealloc_names[i])) {
                    break;
                }
            }
            if (i == BD_PREALLOC__MAX) {
                fprintf(stderr, "%s: Invalid preallocation mode '%s'\n",
                        ctx->prog, optarg);
                return -EINVAL;
            }
            prealloc = (enum bd_prealloc)i;
            break;
        }
        default:
            return usage_of("truncate");
        }
    }
    if (optind != argc - 1) {
        return usage_of("truncate");
    }
    if (parse_num(argv[optind], &offset) < 0) {
        return -EINVAL;
    }
    io_aio_poll(ctx, false);
    ret = bd_blk_truncate(ctx->blk, offset, false, prealloc, &err);
    if (ret < 0) {
        bd_error_report_err(ctx->prog, err);
        return ret;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* open / close                                                         */

static int open_f(struct io_ctx *ctx, int argc, char **argv)
{
    struct io_open_args oa;
    struct bd_error *err = NULL;
    json_t *opts = NULL;
    int c;

    memset(&oa, 0, sizeof(oa));
    oa.writethrough = true;
    oa.flags = BD_O_UNMAP;
    while ((c = getopt(argc, argv, "snCro:kt:d:i:U")) != -1) {
        switch (c) {
        case 's':
        case 'C':
            /* snapshot and copy-on-read need a backing-file format */
            break;
        case 'n':
            oa.flags |= BD_O_NOCACHE;
            oa.writethrough = false;
            break;
        case 'r':
            oa.read_only = true;
            break;
        case 'k':
            oa.flags |= BD_O_NATIVE_AIO;
            break;
        case 't':
            if (io_parse_cache(optarg, &oa.flags, &oa.writethrough) < 0) {
                fprintf(stderr, "%s: Invalid cache option: %s\n", ctx->prog,
                        optarg);
                json_decref(opts);
                return -EINVAL;
            }
            break;
        case 'd':
            if (io_parse_discard(optarg, &oa.flags) < 0) {
                fprintf(stderr, "%s: Invalid discard option: %s\n",
                        ctx->prog, optarg);
                json_decref(opts);
                return -EINVAL;
            }
            break;
        case 'i':
            if (io_parse_aio(optarg, &oa.flags) < 0) {
                fprintf(stderr, "%s: Invalid aio option: %s\n", ctx->prog,
                        optarg);
                json_decref(opts);
                return -EINVAL;
            }
            break;
        case 'o': {
            json_t *more;

            if (!strcmp(optarg, "help")) {
                printf("Supported options are given by each driver; see "
                       "docs/io.md.\n");
                json_decref(opts);
                return 0;
            }
            more = bd_opts_parse(optarg, NULL, &err);
            if (!more) {
                bd_error_report_err(ctx->prog, err);
                json_decref(opts);
                return -EINVAL;
            }
            if (!opts) {
                opts = json_object();
            }
            json_object_update(opts, more);
            json_decref(more);
            break;
        }
        case 'U':
            oa.force_share = true;
            break;
        default:
            json_decref(opts);
            return usage_of("open");
        }
    }
    if (optind == argc - 1) {
        oa.filename = argv[optind];
    } else if (optind == argc && opts) {
        oa.filename = NULL;
    } else {
        json_decref(opts);
        return usage_of("open");
    }
    oa.opts = opts;
    return io_open_image(ctx, &oa);
}

static int close_f(struct io_ctx *ctx, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    io_close_image(ctx);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Misc                                                                 */

static int sleep_f(struct io_ctx *ctx, int argc, char **argv)
{
    char *end = NULL;
    long ms;

    (void)argc;
    errno = 0;
    ms = strtol(argv[1], &end, 0);
    if (errno || end == argv[1] || *end != '\0' || ms < 0) {
        printf("%s is not a valid number\n", argv[1]);
        return -EINVAL;
    }
    bd_sleep_ns((int64_t)ms * 1000000);
    io_aio_poll(ctx, false);
    return 0;
}

static int abort_f(struct io_ctx *ctx, int argc, char **argv)
{
    (void)ctx;
    (void)argc;
    (void)argv;
    /* Simulates a crash on purpose: scripts test recovery with it. */
    fflush(stdout);
    abort();
}

static int sigraise_f(struct io_ctx *ctx, int argc, char **argv)
{
    int64_t sig;

    (void)ctx;
    (void)argc;
    if (parse_num(argv[1], &sig) < 0) {
        return -EINVAL;
    }
    if (sig > NSIG) {
        printf("signal argument '%s' is too large to be a valid signal\n",
               argv[1]);
        return -EINVAL;
    }
    /* Output so far must not be lost if the signal kills us. */
    fflush(stdout);
    raise((int)sig);
    return 0;
}

static int quit_f(struct io_ctx *ctx, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    ctx->quit = true;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Breakpoints (blkdebug)                                               */

/* Tags that may hold suspended requests, for resume_stuck(). */
static void io_remember_tag(struct io_ctx *ctx, const char *tag)
{
    int i;

    for (i = 0; i < ctx->n_bp_tags; i++) {
        if (!strcmp(ctx->bp_tags[i], tag)) {
            return;
        }
    }
    ctx->bp_tags = bd_realloc(ctx->bp_tags, sizeof(*ctx->bp_tags) *
                              (size_t)(ctx->n_bp_tags + 1));
    ctx->bp_tags[ctx->n_bp_tags++] = bd_strdup(tag);
}

static int break_f(struct io_ctx *ctx, int argc, char **argv)
{
    int ret;

    (void)argc;
    ret = bd_debug_breakpoint(bd_blk_node(ctx->blk), argv[1], argv[2]);
    if (ret < 0) {
        printf("Could not set breakpoint: %s\n", bd_strerror(-ret));
        return ret;
    }
    io_remember_tag(ctx, argv[2]);
    return 0;
}

static int remove_break_f(struct io_ctx *ctx, int argc, char **argv)
{
    int ret;

    (void)argc;
    ret = bd_debug_remove_breakpoint(bd_blk_node(ctx->blk), argv[1]);
    if (ret < 0) {
        printf("Could not remove breakpoint %s: %s\n", argv[1],
               bd_strerror(-ret));
        return ret;
    }
    return 0;
}

static int resume_f(struct io_ctx *ctx, int argc, char **argv)
{
    int ret;

    (void)argc;
    ret = bd_debug_resume(bd_blk_node(ctx->blk), argv[1]);
    if (ret < 0) {
        printf("Could not resume request: %s\n", bd_strerror(-ret));
        return ret;
    }
    return 0;
}

static int wait_break_f(struct io_ctx *ctx, int argc, char **argv)
{
    struct bd_node *n = bd_blk_node(ctx->blk);
    json_t *probe;

    (void)argc;
    /* qemu-io waits forever without a blkdebug node; we refuse instead of
     * hanging (docs/compat.md). */
    probe = bd_debug_query(n);
    if (!probe) {
        printf("Could not wait for breakpoint: %s\n", bd_strerror(ENOTSUP));
        return -ENOTSUP;
    }
    json_decref(probe);
    while (!bd_debug_is_suspended(n, argv[1])) {
        bool pending;

        /* Only our aio requests can reach a breakpoint while this thread
         * waits; once none is left, nothing ever will (qemu-io would hang
         * here forever). A suspended request stays in flight, so the
         * re-check after seeing none pending is conclusive. */
        pthread_mutex_lock(&ctx->aio_lock);
        pending = io_aio_pending_locked(ctx);
        pthread_mutex_unlock(&ctx->aio_lock);
        if (!pending) {
            if (bd_debug_is_suspended(n, argv[1])) {
                break;
            }
            io_aio_poll(ctx, false);
            printf("Could not wait for breakpoint %s: no request in "
                   "flight\n", argv[1]);
            return -ENOENT;
        }
        io_aio_poll(ctx, false);
        bd_sleep_ns(1000000);
    }
    return 0;
}

static int blkdebug_info_f(struct io_ctx *ctx, int argc, char **argv)
{
    json_t *j;
    char *txt;

    (void)argc;
    (void)argv;
    j = bd_debug_query(bd_blk_node(ctx->blk));
    if (!j) {
        printf("Could not query blkdebug: %s\n", bd_strerror(ENOTSUP));
        return -ENOTSUP;
    }
    txt = json_dumps(j, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
    printf("%s\n", txt ? txt : "null");
    free(txt);
    json_decref(j);
    return 0;
}

static int help_f(struct io_ctx *ctx, int argc, char **argv);

/* ------------------------------------------------------------------ */
/* Table (sorted by name, as `help` lists it)                           */

static const struct io_cmd cmds[] = {
    { "abort", NULL, abort_f, 0, 0, IO_CMD_NOFILE_OK, 0, NULL,
      "simulate a program crash using abort(3)", NULL },
    { "aio_flush", NULL, aio_flush_f, 0, 0, 0, 0, NULL,
      "completes all outstanding aio requests", NULL },
    { "aio_read", NULL, aio_read_f, 2, -1, 0, 0,
      "[-Ciqrv] [-P pattern] off len [len..]",
      "asynchronously reads a number of bytes",
      " Reads len bytes (several lengths: several buffers) at off in the\n"
      " background; the result is printed when the request completes and\n"
      " qemu-io runs its loop (next I/O command, aio_flush, sleep, exit).\n"
      " The command succeeds once the request is submitted.\n"
      " -C, -- print statistics as CSV\n"
      " -i, -- count an invalid request in the statistics, issue nothing\n"
      " -P, -- verify that the data read is the pattern byte\n"
      " -q, -- print no statistics\n"
      " -r, -- accepted, no effect\n"
      " -v, -- hex dump of the data read\n" },
    { "aio_write", NULL, aio_write_f, 2, -1, 0, BD_PERM_WRITE,
      "[-Cfiqruz] [-P pattern] off len [len..]",
      "asynchronously writes a number of bytes",
      " Writes len bytes (0xcd unless -P) at off in the background; see\n"
      " aio_read for when results are printed.\n"
      " -C, -- print statistics as CSV\n"
      " -f, -- force unit access\n"
      " -i, -- count an invalid request in the statistics, issue nothing\n"
      " -P, -- fill the buffer with this pattern byte\n"
      " -q, -- print no statistics\n"
      " -r, -- accepted, no effect\n"
      " -u, -- with -z, the zeroed range may be deallocated\n"
      " -z, -- write zeroes without a data buffer\n" },
    { "alloc", NULL, alloc_f, 1, 2, 0, 0, "offset [count]",
      "checks if offset is allocated in the file", NULL },
    { "blkdebug_info", NULL, blkdebug_info_f, 0, 0, 0, 0, NULL,
      "prints the blkdebug rules, state and suspended requests as JSON",
      NULL },
    { "break", NULL, break_f, 2, 2, 0, 0, "event tag",
      "sets a breakpoint on event and tags the stopped request as tag",
      NULL },
    { "close", "c", close_f, 0, 0, 0, 0, NULL,
      "close the current open file", NULL },
    { "discard", "d", discard_f, 2, -1, 0, BD_PERM_WRITE, "[-Cq] off len",
      "discards a number of bytes at a specified offset",
      " Discards (unmaps) len bytes at off.\n"
      " -C, -- print statistics as CSV\n"
      " -q, -- print no statistics\n" },
    { "flush", "f", flush_f, 0, 0, 0, 0, NULL,
      "flush all in-core file state to disk", NULL },
    { "help", "?", help_f, 0, 1, IO_CMD_NOFILE_OK, 0, "[command]",
      "help for one or all commands", NULL },
    { "info", "i", info_f, 0, 0, 0, 0, NULL,
      "prints information about the current file", NULL },
    { "length", "l", length_f, 0, 0, 0, 0, NULL,
      "gets the length of the current file", NULL },
    { "map", NULL, map_f, 0, 0, 0, 0, "",
      "prints the allocated areas of a file", NULL },
    { "open", "o", open_f, 1, -1, IO_CMD_NOFILE_OK, 0,
      "[-rsCnkU] [-t cache] [-d discard] [-o options] [path]",
      "open the file specified by path",
      " Opens an image for the other commands, as the command line does.\n"
      " -r, -- read-only\n"
      " -s, -- accepted, no effect\n"
      " -C, -- accepted, no effect\n"
      " -n, -- bypass the host cache (-t none)\n"
      " -U, -- take no locks, share every permission\n"
      " -k, -- native AIO (same as -i native)\n"
      " -i, -- AIO mode: threads or native\n"
      " -t, -- cache mode\n"
      " -d, -- discard mode\n"
      " -o, -- key=value options for the image (repeatable)\n" },
    { "quit", "q", quit_f, 0, 0, IO_CMD_NOFILE_OK, 0, NULL,
      "exit the program", NULL },
    { "read", "r", read_f, 2, -1, 0, 0,
      "[-abCqrv] [-P pattern [-s off] [-l len]] off len",
      "reads a number of bytes at a specified offset",
      " Reads len bytes at off.\n"
      " -b, -- read from the VM state area\n"
      " -C, -- print statistics as CSV\n"
      " -l, -- length of the pattern check (only with -P)\n"
      " -p, -- accepted, no effect\n"
      " -P, -- verify that the data read is the pattern byte\n"
      " -q, -- print no statistics\n"
      " -r, -- accepted, no effect\n"
      " -s, -- start of the pattern check (only with -P)\n"
      " -v, -- hex dump of the data read\n" },
    { "readv", NULL, readv_f, 2, -1, 0, 0,
      "[-Cqrv] [-P pattern] off len [len..]",
      "reads a number of bytes at a specified offset",
      " Reads into one buffer per length, in one request.\n"
      " -C, -- print statistics as CSV\n"
      " -P, -- verify that the data read is the pattern byte\n"
      " -q, -- print no statistics\n"
      " -r, -- accepted, no effect\n"
      " -v, -- hex dump of the data read\n" },
    { "remove_break", NULL, remove_break_f, 1, 1, 0, 0, "tag",
      "remove a breakpoint by tag", NULL },
    { "resume", NULL, resume_f, 1, 1, 0, 0, "tag",
      "resumes the request tagged as tag", NULL },
    { "sigraise", NULL, sigraise_f, 1, 1, IO_CMD_NOFILE_OK, 0, "signal",
      "raises a signal", " Calls raise(signal) with the signal number given.\n" },
    { "sleep", NULL, sleep_f, 1, 1, IO_CMD_NOFILE_OK, 0, NULL,
      "waits for the given value in milliseconds", NULL },
    { "truncate", "t", truncate_f, 1, 3, 0, BD_PERM_WRITE | BD_PERM_RESIZE,
      "[-m prealloc_mode] off",
      "truncates the current file at the given offset", NULL },
    { "wait_break", NULL, wait_break_f, 1, 1, 0, 0, "tag",
      "waits for the suspension of a request", NULL },
    { "write", "w", write_f, 2, -1, 0, BD_PERM_WRITE,
      "[-bcCfnqruz] [-P pattern | -s source_file] off len",
      "writes a number of bytes at a specified offset",
      " Writes len bytes at off, filled with 0xcd unless -P, -s or -z.\n"
      " -b, -- write to the VM state area\n"
      " -c, -- compressed write\n"
      " -C, -- print statistics as CSV\n"
      " -f, -- force unit access\n"
      " -n, -- with -z, fail rather than write a zero buffer\n"
      " -p, -- accepted, no effect\n"
      " -P, -- fill the buffer with this pattern byte\n"
      " -q, -- print no statistics\n"
      " -r, -- accepted, no effect\n"
      " -s, -- fill the buffer by repeating this file's contents\n"
      " -u, -- with -z, the zeroed range may be deallocated\n"
      " -z, -- write zeroes without a data buffer\n" },
    { "writev", NULL, writev_f, 2, -1, 0, BD_PERM_WRITE,
      "[-Cfqr] [-P pattern] off len [len..]",
      "writes a number of bytes at a specified offset",
      " Writes from one buffer per length, in one request.\n"
      " -C, -- print statistics as CSV\n"
      " -f, -- force unit access\n"
      " -P, -- fill the buffers with this pattern byte\n"
      " -q, -- print no statistics\n"
      " -r, -- accepted, no effect\n" },
};

#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

static const struct io_cmd *find_cmd(const char *name)
{
    size_t i;

    for (i = 0; i < NCMDS; i++) {
        if (!strcmp(cmds[i].name, name) ||
            (cmds[i].altname && !strcmp(cmds[i].altname, name))) {
            return &cmds[i];
        }
    }
    return NULL;
}

static int help_f(struct io_ctx *ctx, int argc, char **argv)
{
    const struct io_cmd *ct;
    size_t i;

    (void)ctx;
    if (argc == 1) {
        for (i = 0; i < NCMDS; i++) {
            usage_line(&cmds[i]);
        }
        printf("\nUse 'help commandname' for extended help.\n");
        return 0;
    }
    ct = find_cmd(argv[1]);
    if (!ct) {
        printf("command %s not found\n", argv[1]);
        return -EINVAL;
    }
    usage_line(ct);
    if (ct->help) {
        printf("\n%s\n", ct->help);
    }
    return 0;
}

char **io_breakline(char *buf, int *argc)
{
    char **v = bd_malloc(sizeof(*v));
    int n = 0;
    char *p;

    v[0] = NULL;
    while ((p = strsep(&buf, " ")) != NULL) {
        if (!*p) {
            continue;
        }
        v = bd_realloc(v, sizeof(*v) * (size_t)(n + 2));
        v[n++] = p;
        v[n] = NULL;
    }
    *argc = n;
    return v;
}

static int run_cmd(struct io_ctx *ctx, const struct io_cmd *ct, int argc,
                   char **argv)
{
    if (!(ct->flags & IO_CMD_NOFILE_OK) && !ctx->blk) {
        fprintf(stderr, "no file open, try 'help open'\n");
        return -EINVAL;
    }
    if (argc - 1 < ct->argmin ||
        (ct->argmax != -1 && argc - 1 > ct->argmax)) {
        if (ct->argmax == -1) {
            fprintf(stderr, "bad argument count %d to %s, expected at least "
                    "%d arguments\n", argc - 1, argv[0], ct->argmin);
        } else if (ct->argmin == ct->argmax) {
            fprintf(stderr, "bad argument count %d to %s, expected %d "
                    "arguments\n", argc - 1, argv[0], ct->argmin);
        } else {
            fprintf(stderr, "bad argument count %d to %s, expected between "
                    "%d and %d arguments\n", argc - 1, argv[0], ct->argmin,
                    ct->argmax);
        }
        return -EINVAL;
    }
    if (ctx->blk && (ct->perm & ~ctx->perm)) {
        /* Ask for what the command needs when it runs, as qemu-io does:
         * a read-only image fails writes here with the layer's message.
         * Permissions change only with no aio request in flight. */
        struct bd_error *err = NULL;
        uint64_t perm = ctx->perm | ct->perm;
        int ret;

        io_aio_poll(ctx, true);
        ret = bd_blk_set_perm(ctx->blk, perm, BD_PERM_ALL, &err);
        if (ret < 0) {
            bd_error_report_err(ctx->prog, err);
            return ret;
        }
        ctx->perm = perm;
    }
    optind = 0;
    return ct->fn(ctx, argc, argv);
}

int io_command(struct io_ctx *ctx, const char *line)
{
    char *buf = bd_strdup(line);
    const struct io_cmd *ct;
    char **argv;
    int argc;
    int ret = 0;

    argv = io_breakline(buf, &argc);
    if (argc > 0) {
        ct = find_cmd(argv[0]);
        if (ct) {
            ret = run_cmd(ctx, ct, argc, argv);
        } else {
            fprintf(stderr, "command \"%s\" not found\n", argv[0]);
            ret = -EINVAL;
        }
    }
    fflush(stdout);
    free(argv);
    free(buf);
    return ret;
}
