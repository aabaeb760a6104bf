/*
 * jobs/block-copy.c - cluster copies with a copy bitmap and in-flight
 * exclusion (see block-copy.h).
 *
 * One mutex guards both bit arrays; a condition variable is broadcast
 * whenever a claim ends. Claims are whole runs of clusters, so a 1 MiB
 * background chunk is one read and one write.
 */
#include "common/config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/bufpool.h"
#include "common/cutils.h"
#include "driver/block-int.h"
#include "jobs/block-copy.h"

#define BLOCK_COPY_MAX_CHUNK (1 << 20)
/* As many as a backup runs chunks at once (its BACKUP_WORKERS). */
#define BLOCK_COPY_SPARE 64

struct block_copy {
    /* Immutable after creation. */
    struct bd_child *source;
    struct bd_child *target;
    int64_t len;
    int64_t cluster;
    uint64_t nclusters;
    bool compress;
    bool discard_source;
    void (*progress)(void *opaque, int64_t bytes);
    void *progress_opaque;

    /* (lock) */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint64_t *dirty;
    uint64_t *inflight;
    uint64_t *access;           /* NULL until block_copy_init_access */
    uint64_t ndirty;
    int users;                  /* claims in progress */
    /* Copy buffers of BLOCK_COPY_MAX_CHUNK bytes kept for reuse: a fresh
     * 1 MiB buffer per chunk is an mmap, 256 zeroed page faults and a
     * munmap, which took a tenth of a backup's CPU. */
    struct bd_bufpool bufs;
};

static bool bit(const uint64_t *a, uint64_t i)
{
    return (a[i / 64] >> (i % 64)) & 1;
}

static void bit_set(uint64_t *a, uint64_t i)
{
    a[i / 64] |= 1ULL << (i % 64);
}

static void bit_clear(uint64_t *a, uint64_t i)
{
    a[i / 64] &= ~(1ULL << (i % 64));
}

struct block_copy *block_copy_new(struct bd_child *source,
                                  struct bd_child *target, int64_t len,
                                  int64_t cluster_size)
{
    struct block_copy *s = bd_malloc0(sizeof(*s));
    size_t words;

    s->source = source;
    s->target = target;
    s->len = len;
    s->cluster = cluster_size;
    s->nclusters = (uint64_t)BD_DIV_ROUND_UP(len, cluster_size);
    words = (size_t)BD_DIV_ROUND_UP(s->nclusters, 64) + 1;
    s->dirty = bd_malloc0(words * sizeof(uint64_t));
    s->inflight = bd_malloc0(words * sizeof(uint64_t));
    pthread_mutex_init(&s->lock, NULL);
    bd_bufpool_init(&s->bufs, BLOCK_COPY_MAX_CHUNK, 4096, BLOCK_COPY_SPARE);
    pthread_cond_init(&s->cond, NULL);
    block_copy_set_dirty(s, 0, len);
    return s;
}

void block_copy_free(struct block_copy *s)
{
    if (!s) {
        return;
    }
    pthread_mutex_lock(&s->lock);
    while (s->users > 0) {
        pthread_cond_wait(&s->cond, &s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    bd_bufpool_destroy(&s->bufs);
    free(s->dirty);
    free(s->inflight);
    free(s->access);
    free(s);
}

int64_t block_copy_cluster_size(struct block_copy *s)
{
    return s->cluster;
}

int64_t block_copy_len(struct block_copy *s)
{
    return s->len;
}

/* Cluster range [*first, *end) of a byte range, clamped to the disk. */
static bool range_of(struct block_copy *s, int64_t off, int64_t bytes,
                     uint64_t *first, uint64_t *end)
{
    if (bytes <= 0 || off >= s->len || off < 0) {
        return false;
    }
    *first = (uint64_t)off / (uint64_t)s->cluster;
    *end = (uint64_t)BD_DIV_ROUND_UP(BD_MIN(off + bytes, s->len), s->cluster);
    return true;
}

void block_copy_set_dirty(struct block_copy *s, int64_t off, int64_t bytes)
{
    uint64_t i;
    uint64_t end;

    if (!range_of(s, off, bytes, &i, &end)) {
        return;
    }
    pthread_mutex_lock(&s->lock);
    for (; i < end; i++) {
        if (!bit(s->dirty, i)) {
            bit_set(s->dirty, i);
            s->ndirty++;
        }
    }
    pthread_mutex_unlock(&s->lock);
}

static void reset_locked(struct block_copy *s, uint64_t i, uint64_t end)
{
    for (; i < end; i++) {
        if (bit(s->dirty, i)) {
            bit_clear(s->dirty, i);
            s->ndirty--;
        }
    }
}

void block_copy_reset_dirty(struct block_copy *s, int64_t off, int64_t bytes)
{
    uint64_t i;
    uint64_t end;

    if (!range_of(s, off, bytes, &i, &end)) {
        return;
    }
    pthread_mutex_lock(&s->lock);
    reset_locked(s, i, end);
    pthread_mutex_unlock(&s->lock);
}

void block_copy_reset_all(struct block_copy *s)
{
    pthread_mutex_lock(&s->lock);
    reset_locked(s, 0, s->nclusters);
    pthread_mutex_unlock(&s->lock);
}

bool block_copy_is_dirty(struct block_copy *s, int64_t off)
{
    uint64_t i = (uint64_t)off / (uint64_t)s->cluster;
    bool r;

    pthread_mutex_lock(&s->lock);
    r = i < s->nclusters && bit(s->dirty, i);
    pthread_mutex_unlock(&s->lock);
    return r;
}

int64_t block_copy_next_dirty(struct block_copy *s, int64_t off)
{
    uint64_t i = off < 0 ? 0 : (uint64_t)off / (uint64_t)s->cluster;
    int64_t r = -1;

    pthread_mutex_lock(&s->lock);
    while (i < s->nclusters) {
        uint64_t w = s->dirty[i / 64] >> (i % 64);

        if (w) {
            i += (uint64_t)__builtin_ctzll(w);
            if (i < s->nclusters) {
                r = (int64_t)i * s->cluster;
            }
            break;
        }
        i = (i / 64 + 1) * 64;
    }
    pthread_mutex_unlock(&s->lock);
    return r >= 0 && r < off ? off : r;
}

int64_t block_copy_dirty_bytes(struct block_copy *s)
{
    int64_t r;

    pthread_mutex_lock(&s->lock);
    r = (int64_t)s->ndirty * s->cluster;
    pthread_mutex_unlock(&s->lock);
    return r;
}

void block_copy_set_compress(struct block_copy *s, bool compress)
{
    s->compress = compress;
}

void block_copy_set_discard_source(struct block_copy *s, bool discard)
{
    s->discard_source = discard;
}

void block_copy_set_progress(struct block_copy *s,
                             void (*cb)(void *opaque, int64_t bytes),
                             void *opaque)
{
    s->progress = cb;
    s->progress_opaque = opaque;
}

/* Read [off, off+bytes) from the source and write it to the target. */
static int copy_data(struct block_copy *s, int64_t off, int64_t bytes,
                     bool *error_is_read)
{
    struct bd_qiov q;
    void *buf = bd_bufpool_get(&s->bufs, (size_t)bytes);
    int ret;

    bd_qiov_init_buf(&q, buf, (size_t)bytes);
    ret = bd_child_preadv(s->source, off, bytes, &q, 0);
    if (ret < 0) {
        *error_is_read = true;
        goto out;
    }
    if (!s->compress && bd_buffer_is_zero(buf, (size_t)bytes)) {
        ret = bd_child_pwrite_zeroes(s->target, off, bytes, BD_REQ_MAY_UNMAP);
    } else {
        ret = bd_child_pwritev(s->target, off, bytes, &q,
                               s->compress ? BD_REQ_WRITE_COMPRESSED : 0);
    }
    if (ret < 0) {
        *error_is_read = false;
    }
out:
    bd_qiov_destroy(&q);
    bd_bufpool_put(&s->bufs, buf, (size_t)bytes);
    return ret;
}

/*
 * Length of the run at off that reads as zero on the source: whole
 * clusters, or up to off+bytes when the run reaches it; 0 for data or
 * when the status is unknown.
 */
static int64_t source_zero_run(struct block_copy *s, int64_t off,
                               int64_t bytes)
{
    int64_t pnum = 0;
    int st = bd_node_block_status(s->source->node, off, bytes, &pnum,
                                  NULL, NULL);

    if (st < 0 || !(st & BD_BLOCK_ZERO) || pnum <= 0) {
        return 0;
    }
    if (pnum >= bytes) {
        return bytes;
    }
    return BD_ROUND_DOWN(pnum, s->cluster);
}

/*
 * Compressed copies take their zeroes from the source's block status, as
 * QEMU's block-copy does: a region that reads as zero there becomes a
 * plain write-zeroes on the target (a zero cluster in qcow2, not a
 * compressed one), while zeroes stored as data are compressed like any
 * other data. The buffer check of copy_data cannot tell the two apart.
 */
static int copy_compressed(struct block_copy *s, int64_t off, int64_t bytes,
                           bool *error_is_read)
{
    int64_t done = 0;
    int ret = 0;

    while (done < bytes && ret == 0) {
        int64_t n = source_zero_run(s, off + done, bytes - done);

        if (n > 0) {
            ret = bd_child_pwrite_zeroes(s->target, off + done, n, 0);
            if (ret < 0) {
                *error_is_read = false;
            }
        } else {
            /* Data clusters up to the next zero run. */
            n = BD_MIN(s->cluster, bytes - done);
            while (done + n < bytes &&
                   source_zero_run(s, off + done + n, bytes - done - n) == 0) {
                n = BD_MIN(n + s->cluster, bytes - done);
            }
            ret = copy_data(s, off + done, n, error_is_read);
        }
        done += n;
    }
    return ret;
}

/* Copy one claimed run; no lock held. */
static int do_copy(struct block_copy *s, int64_t off, int64_t bytes,
                   bool *error_is_read)
{
    int ret = s->compress ? copy_compressed(s, off, bytes, error_is_read)
                          : copy_data(s, off, bytes, error_is_read);

    if (ret == 0 && s->discard_source) {
        /* Advisory, as in QEMU: a failed discard does not fail the copy. */
        bd_child_pdiscard(s->source, off, bytes);
    }
    return ret;
}

/*
 * Claim the run of clusters starting at i that are (want_dirty ? dirty :
 * anything) and not in flight, up to end and max clusters. Returns the
 * count (0: cluster i is in flight). Lock held.
 */
static uint64_t claim(struct block_copy *s, uint64_t i, uint64_t end,
                      uint64_t max, bool want_dirty)
{
    uint64_t n = 0;

    while (i + n < end && n < max && !bit(s->inflight, i + n) &&
           (!want_dirty || bit(s->dirty, i + n))) {
        bit_set(s->inflight, i + n);
        n++;
    }
    if (n) {
        s->users++;
    }
    return n;
}

static void unclaim(struct block_copy *s, uint64_t i, uint64_t n)
{
    uint64_t k;

    for (k = 0; k < n; k++) {
        bit_clear(s->inflight, i + k);
    }
    s->users--;
    pthread_cond_broadcast(&s->cond);
}

int block_copy(struct block_copy *s, int64_t off, int64_t bytes,
               bool *error_is_read)
{
    uint64_t max = (uint64_t)BD_MAX(BLOCK_COPY_MAX_CHUNK / s->cluster, 1);
    uint64_t i;
    uint64_t end;
    int ret = 0;

    if (!range_of(s, off, bytes, &i, &end)) {
        return 0;
    }
    pthread_mutex_lock(&s->lock);
    while (i < end) {
        uint64_t n;
        int64_t start;
        int64_t len;
        int r;

        if (bit(s->inflight, i)) {
            /* Somebody copies (or snapshot-reads) it: wait, then look
             * again - their copy may have failed. */
            pthread_cond_wait(&s->cond, &s->lock);
            continue;
        }
        if (!bit(s->dirty, i)) {
            i++;
            continue;
        }
        n = claim(s, i, end, max, true);
        pthread_mutex_unlock(&s->lock);
        start = (int64_t)i * s->cluster;
        len = BD_MIN((int64_t)n * s->cluster, s->len - start);
        r = do_copy(s, start, len, error_is_read);
        pthread_mutex_lock(&s->lock);
        if (r == 0) {
            reset_locked(s, i, i + n);
        }
        unclaim(s, i, n);
        if (r < 0) {
            ret = r;
            break;
        }
        if (s->progress) {
            s->progress(s->progress_opaque, len);
        }
        i += n;
    }
    pthread_mutex_unlock(&s->lock);
    return ret;
}

int block_copy_snapshot_read(struct block_copy *s, int64_t off, int64_t bytes,
                             struct bd_qiov *qiov)
{
    uint64_t i;
    uint64_t end;
    uint64_t first;
    uint64_t n = 0;
    int64_t done = 0;
    int ret = 0;

    if (!range_of(s, off, bytes, &first, &end)) {
        return 0;
    }
    /* Hold every touched cluster so that no guest write changes the
     * source under the read and no copy changes which side is valid. */
    pthread_mutex_lock(&s->lock);
    for (;;) {
        uint64_t k;
        bool busy = false;

        for (k = first; k < end; k++) {
            if (bit(s->inflight, k)) {
                busy = true;
                break;
            }
        }
        if (!busy) {
            break;
        }
        pthread_cond_wait(&s->cond, &s->lock);
    }
    n = claim(s, first, end, end - first, false);
    pthread_mutex_unlock(&s->lock);

    for (i = first; i < end && ret == 0; i++) {
        int64_t cstart = (int64_t)i * s->cluster;
        int64_t a = BD_MAX(cstart, off);
        int64_t b = BD_MIN(cstart + s->cluster, off + bytes);
        struct bd_qiov part;
        bool dirty;

        pthread_mutex_lock(&s->lock);
        dirty = bit(s->dirty, i);
        pthread_mutex_unlock(&s->lock);
        bd_qiov_slice(&part, qiov, (size_t)(a - off), (size_t)(b - a));
        ret = bd_child_preadv(dirty ? s->source : s->target, a, b - a,
                              &part, 0);
        bd_qiov_destroy(&part);
        done += b - a;
    }
    pthread_mutex_lock(&s->lock);
    unclaim(s, first, n);
    pthread_mutex_unlock(&s->lock);
    (void)done;
    return ret;
}

void block_copy_init_access(struct block_copy *s)
{
    size_t words = (size_t)BD_DIV_ROUND_UP(s->nclusters, 64) + 1;

    pthread_mutex_lock(&s->lock);
    free(s->access);
    s->access = bd_malloc(words * sizeof(uint64_t));
    memcpy(s->access, s->dirty, words * sizeof(uint64_t));
    pthread_mutex_unlock(&s->lock);
}

bool block_copy_access_ok(struct block_copy *s, int64_t off, int64_t bytes)
{
    uint64_t i;
    uint64_t end;
    bool ok = true;

    if (!range_of(s, off, bytes, &i, &end)) {
        return true;
    }
    pthread_mutex_lock(&s->lock);
    for (; i < end && ok; i++) {
        ok = !s->access || bit(s->access, i);
    }
    pthread_mutex_unlock(&s->lock);
    return ok;
}

void block_copy_access_remove(struct block_copy *s, int64_t off,
                              int64_t bytes)
{
    int64_t a = BD_ROUND_UP(off, s->cluster);
    int64_t b = off + bytes >= s->len ? s->len
                                      : (off + bytes) / s->cluster * s->cluster;
    uint64_t i;

    if (b <= a) {
        return;
    }
    pthread_mutex_lock(&s->lock);
    for (i = (uint64_t)(a / s->cluster);
         i < (uint64_t)BD_DIV_ROUND_UP(b, s->cluster); i++) {
        if (s->access) {
            bit_clear(s->access, i);
        }
        if (bit(s->dirty, i)) {
            bit_clear(s->dirty, i);
            s->ndirty--;
        }
    }
    pthread_mutex_unlock(&s->lock);
}
