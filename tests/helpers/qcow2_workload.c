/*
 * tests/helpers/qcow2_workload.c - see qcow2_workload.h.
 */
#include "common/config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/cutils.h"
#include "common/rng.h"
#include "tests/helpers/qcow2_workload.h"

struct qw_thread {
    struct bd_blk *img, *ref;
    const struct qw_opts *o;
    int tid;
    int ret;
};

static int both_write(struct qw_thread *t, int64_t off, int64_t len,
                      const void *buf, int flags)
{
    int r = bd_blk_pwrite(t->img, off, len, buf, flags);

    if (r == 0) {
        r = bd_blk_pwrite(t->ref, off, len, buf, 0);
    }
    return r;
}

static int both_zero(struct qw_thread *t, int64_t off, int64_t len)
{
    int r = bd_blk_pwrite_zeroes(t->img, off, len, BD_REQ_MAY_UNMAP);

    if (r == 0) {
        r = bd_blk_pwrite_zeroes(t->ref, off, len, 0);
    }
    return r;
}

static void fill(struct bd_rng *r, uint8_t *buf, size_t len)
{
    size_t i;
    uint64_t v = bd_rng_next(r);

    /* Compressible but distinct: runs of a byte with a changing value. */
    for (i = 0; i < len; i++) {
        if (i % 64 == 0) {
            v = bd_rng_next(r);
        }
        buf[i] = (uint8_t)(v >> ((i / 64) % 8));
    }
}

static void *qw_thread_fn(void *opaque)
{
    struct qw_thread *t = opaque;
    const struct qw_opts *o = t->o;
    int64_t size = bd_blk_getlength(t->img);
    int64_t sectors = size / 512;
    uint32_t cl = o->cluster ? o->cluster : 65536;
    struct bd_rng r;
    uint8_t *buf = bd_memalign(4096, BD_MAX(cl, 256u * 1024));
    int i;

    bd_rng_seed(&r, o->seed * 1000003 + (uint64_t)t->tid);
    for (i = 0; i < o->ops && t->ret == 0; i++) {
        uint64_t kind = bd_rng_next(&r) % 10;
        int64_t off, len;

        if (o->threads > 1) {
            /* One owned sector. */
            int64_t s = (int64_t)(bd_rng_next(&r) %
                                  (uint64_t)(sectors / o->threads));
            off = (s * o->threads + t->tid) * 512;
            len = 512;
            if (o->zeroes && kind == 0) {
                memset(buf, 0, 512);
                t->ret = both_write(t, off, len, buf, 0);
            } else {
                fill(&r, buf, 512);
                t->ret = both_write(t, off, len, buf, 0);
            }
            continue;
        }
        off = (int64_t)(bd_rng_next(&r) % (uint64_t)size);
        len = (int64_t)(bd_rng_next(&r) % (256 * 1024)) + 1;
        if (bd_rng_next(&r) % 2) {
            /* Sector-aligned half the time: the common guest pattern. */
            off &= ~(int64_t)511;
            len = BD_ROUND_UP(len, 512);
        }
        len = BD_MIN(len, size - off);
        if (len <= 0) {
            continue;
        }
        if (o->compress && kind == 0) {
            int64_t c = off / cl * cl;
            int64_t clen = BD_MIN((int64_t)cl, size - c);
            int64_t pnum = 0;

            if (clen == (int64_t)cl &&
                bd_node_is_allocated(bd_blk_node(t->img), c, cl, &pnum) == 0
                && pnum >= (int64_t)cl) {
                fill(&r, buf, cl);
                t->ret = both_write(t, c, cl, buf, BD_REQ_WRITE_COMPRESSED);
                continue;
            }
        }
        if (o->zeroes && kind == 1) {
            t->ret = both_zero(t, off, len);
        } else if (o->discard && kind == 2) {
            /* Whole clusters only, so the result is defined. */
            int64_t c0 = BD_ROUND_UP(off, (int64_t)cl);
            int64_t c1 = (off + len) / cl * cl;

            if (c1 > c0) {
                t->ret = bd_blk_pdiscard(t->img, c0, c1 - c0);
                if (t->ret == 0) {
                    t->ret = bd_blk_pwrite_zeroes(t->ref, c0, c1 - c0, 0);
                }
            }
        } else {
            fill(&r, buf, (size_t)len);
            t->ret = both_write(t, off, len, buf, 0);
        }
    }
    free(buf);
    return NULL;
}

int qw_run(struct bd_blk *img, struct bd_blk *ref, const struct qw_opts *o)
{
    int n = o->threads > 1 ? o->threads : 1;
    struct qw_thread *t = bd_malloc0(sizeof(*t) * (size_t)n);
    pthread_t *th = bd_malloc0(sizeof(*th) * (size_t)n);
    int i, ret = 0;

    for (i = 0; i < n; i++) {
        t[i].img = img;
        t[i].ref = ref;
        t[i].o = o;
        t[i].tid = i;
        pthread_create(&th[i], NULL, qw_thread_fn, &t[i]);
    }
    for (i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        if (t[i].ret && !ret) {
            ret = t[i].ret;
        }
    }
    free(t);
    free(th);
    return ret;
}

int qw_verify(struct bd_blk *img, struct bd_blk *ref, int64_t *bad)
{
    int64_t size = bd_blk_getlength(img);
    size_t chunk = 1 << 20;
    uint8_t *a = bd_memalign(4096, chunk);
    uint8_t *b = bd_memalign(4096, chunk);
    int64_t off;
    int ret = 0;

    for (off = 0; off < size && ret == 0; off += (int64_t)chunk) {
        int64_t n = BD_MIN((int64_t)chunk, size - off);
        int64_t i;

        ret = bd_blk_pread(img, off, n, a, 0);
        if (ret == 0) {
            ret = bd_blk_pread(ref, off, n, b, 0);
        }
        if (ret < 0) {
            break;
        }
        for (i = 0; i < n; i++) {
            if (a[i] != b[i]) {
                *bad = off + i;
                ret = 1;
                break;
            }
        }
    }
    free(a);
    free(b);
    return ret;
}
