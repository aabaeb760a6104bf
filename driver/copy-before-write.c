/*
 * driver/copy-before-write.c - the copy-before-write filter
 * (specs/jobs.md §5): before a write, write-zeroes or discard reaches the
 * source ("file"), the clusters it touches that were not saved yet are
 * copied to "target". The backup job inserts one above its source; users
 * add one with blockdev-add for fleecing (with snapshot-access on top).
 *
 * Options: file, target, bitmap {node, name} (only those clusters are
 * protected), on-cbw-error (break-guest-write | break-snapshot),
 * cbw-timeout (seconds, 0 = none), min-cluster-size.
 *
 * on-cbw-error=break-guest-write fails the guest request with the copy's
 * error and writes nothing; break-snapshot lets the guest write through,
 * latches the error and from then on skips every copy (the snapshot is
 * gone: snapshot reads fail with EACCES and a backup job using this
 * filter fails).
 */
#include "common/config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cutils.h"
#include "driver/block-int.h"
#include "driver/dirty-bitmap.h"
#include "driver/drivers.h"
#include "jobs/block-copy.h"

#define CBW_MIN_CLUSTER (64 * 1024)

const char *const cbw_on_error_names[] = {
    "break-guest-write", "break-snapshot", NULL,
};

struct cbw_state {
    /* Set in open, immutable. */
    struct bd_child *target;
    struct block_copy *bcs;
    int on_cbw_error;               /* index in cbw_on_error_names */
    uint64_t timeout_s;             /* 0: no limit */

    /* First copy error under break-snapshot (negative errno), else 0. */
    atomic_int snapshot_error;

    /* Copies that outlived a timed-out guest write (close waits). */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int detached;
};

bool cbw_is_filter(struct bd_node *n)
{
    return n && !strcmp(n->drv->name, "copy-before-write");
}

struct block_copy *cbw_block_copy(struct bd_node *cbw)
{
    return cbw_is_filter(cbw) ? ((struct cbw_state *)cbw->opaque)->bcs : NULL;
}

int cbw_snapshot_error(struct bd_node *cbw)
{
    if (!cbw_is_filter(cbw)) {
        return 0;
    }
    return atomic_load(&((struct cbw_state *)cbw->opaque)->snapshot_error);
}

static int cbw_open(struct bd_node *bs, json_t *options, int flags,
                    struct bd_error **errp)
{
    struct cbw_state *s = bs->opaque;
    char *bm_node = NULL;
    char *bm_name = NULL;
    uint64_t min_cluster = 0;
    struct bd_node_info info;
    int64_t len;
    int64_t cluster;
    int idx = 0;
    int ret = -EINVAL;

    (void)flags;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    if (bd_opts_take_enum(options, "on-cbw-error", cbw_on_error_names, &idx,
                          errp) < 0) {
        goto out;
    }
    s->on_cbw_error = idx;
    if (bd_opts_take_number(options, "cbw-timeout", &s->timeout_s, errp) < 0) {
        goto out;
    }
    if (s->timeout_s > UINT32_MAX) {
        bd_error_setg(errp, "Parameter 'cbw-timeout' expects uint32_t");
        goto out;
    }
    if (bd_opts_take_size(options, "min-cluster-size", &min_cluster,
                          errp) < 0) {
        goto out;
    }
    if (min_cluster && !bd_is_power_of_2(min_cluster)) {
        bd_error_setg(errp, "Cannot create block-copy-state: "
                      "min-cluster-size needs to be a power of 2");
        goto out;
    }
    if (min_cluster > (1ULL << 30)) {
        bd_error_setg(errp, "min-cluster-size must not exceed 1 GiB");
        goto out;
    }
    bd_opts_take_str(options, "bitmap.node", &bm_node);
    bd_opts_take_str(options, "bitmap.name", &bm_name);
    if (!bd_open_child(bs, options, "file", NULL,
                       BD_ROLE_FILTERED | BD_ROLE_PRIMARY, false, errp)) {
        goto out;
    }
    s->target = bd_open_child(bs, options, "target", NULL, BD_ROLE_DATA,
                              false, errp);
    if (!s->target) {
        goto out;
    }
    bs->supported_write_flags = bs->file->node->supported_write_flags;
    bs->supported_zero_flags = bs->file->node->supported_zero_flags;

    len = bd_getlength(bs->file->node);
    if (len < 0) {
        bd_error_setg_errno(errp, (int)-len, "Could not get image size");
        ret = (int)len;
        goto out;
    }
    memset(&info, 0, sizeof(info));
    cluster = CBW_MIN_CLUSTER;
    if (bd_get_info(s->target->node, &info) == 0 && info.cluster_size > 0) {
        cluster = BD_MAX(cluster, info.cluster_size);
    }
    json_decref(info.format_specific);
    cluster = BD_MAX(cluster, (int64_t)min_cluster);
    s->bcs = block_copy_new(bs->file, s->target, len, cluster);

    if (bm_node || bm_name) {
        struct bd_node *bn = bm_node ? bd_graph_find_node(bs->graph, bm_node)
                                     : NULL;
        struct bd_dirty_bitmap *bm;
        int64_t off;

        if (!bn) {
            bd_error_setg(errp, "Node '%s' not found", bm_node ? bm_node : "");
            goto out;
        }
        bm = bm_name ? bd_dirty_bitmap_find(bn, bm_name) : NULL;
        if (!bm) {
            bd_error_setg(errp, "Dirty bitmap '%s' not found",
                          bm_name ? bm_name : "");
            goto out;
        }
        if (bd_dirty_bitmap_size(bm) != len) {
            bd_error_setg(errp, "Bitmap size (%" PRId64 ") does not match "
                          "the source size (%" PRId64 ")",
                          bd_dirty_bitmap_size(bm), len);
            goto out;
        }
        /* Only what the bitmap has now is protected; later changes to it
         * do not matter. */
        block_copy_reset_all(s->bcs);
        for (off = bd_dirty_bitmap_next_dirty(bm, 0); off >= 0;
             off = bd_dirty_bitmap_next_dirty(bm, off +
                                              (int64_t)bm->granularity)) {
            block_copy_set_dirty(s->bcs, off, (int64_t)bm->granularity);
        }
    }
    block_copy_init_access(s->bcs);
    ret = 0;
out:
    free(bm_node);
    free(bm_name);
    if (ret < 0 && s->bcs) {
        block_copy_free(s->bcs);
        s->bcs = NULL;
    }
    return ret;
}

static void cbw_close(struct bd_node *bs)
{
    struct cbw_state *s = bs->opaque;

    pthread_mutex_lock(&s->lock);
    while (s->detached > 0) {
        pthread_cond_wait(&s->cond, &s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    block_copy_free(s->bcs);
    s->bcs = NULL;
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
}

/* A copy run on its own thread so that a guest write can stop waiting
 * for it after cbw-timeout; the copy itself goes on. */
struct timed_copy {
    struct cbw_state *s;
    int64_t off;
    int64_t bytes;
    bool is_read;
    int ret;
    bool done;
    bool abandoned;
};

static void *timed_copy_thread(void *opaque)
{
    struct timed_copy *tc = opaque;
    struct cbw_state *s = tc->s;
    int r = block_copy(s->bcs, tc->off, tc->bytes, &tc->is_read);
    bool free_it;

    pthread_mutex_lock(&s->lock);
    tc->ret = r;
    tc->done = true;
    free_it = tc->abandoned;
    if (free_it) {
        s->detached--;
    }
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    if (free_it) {
        free(tc);
    }
    return NULL;
}

static int copy_with_timeout(struct cbw_state *s, int64_t off, int64_t bytes)
{
    struct timed_copy *tc;
    struct timespec ts;
    pthread_t th;
    pthread_attr_t attr;
    int ret;
    bool is_read = false;

    if (!s->timeout_s) {
        return block_copy(s->bcs, off, bytes, &is_read);
    }
    tc = bd_malloc0(sizeof(*tc));
    tc->s = s;
    tc->off = off;
    tc->bytes = bytes;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &attr, timed_copy_thread, tc) != 0) {
        pthread_attr_destroy(&attr);
        free(tc);
        return block_copy(s->bcs, off, bytes, &is_read);
    }
    pthread_attr_destroy(&attr);
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)s->timeout_s;
    pthread_mutex_lock(&s->lock);
    while (!tc->done) {
        if (pthread_cond_timedwait(&s->cond, &s->lock, &ts) == ETIMEDOUT) {
            break;
        }
    }
    if (tc->done) {
        ret = tc->ret;
        pthread_mutex_unlock(&s->lock);
        free(tc);
        return ret;
    }
    tc->abandoned = true;
    s->detached++;
    pthread_mutex_unlock(&s->lock);
    return -ETIMEDOUT;
}

/* Save the old data of [off, off+bytes) before a guest change. */
static int cbw_do_cbw(struct bd_node *bs, int64_t off, int64_t bytes,
                      int flags)
{
    struct cbw_state *s = bs->opaque;
    int ret;

    if ((flags & BD_REQ_WRITE_UNCHANGED) ||
        atomic_load(&s->snapshot_error)) {
        return 0;
    }
    ret = copy_with_timeout(s, off, bytes);
    if (ret < 0 && s->on_cbw_error == 1) {
        /* break-snapshot: the guest wins, the snapshot is invalid. */
        int expected = 0;

        atomic_compare_exchange_strong(&s->snapshot_error, &expected, ret);
        return 0;
    }
    return ret;
}

static int cbw_pwritev(struct bd_node *bs, int64_t off, int64_t bytes,
                       struct bd_qiov *qiov, int flags)
{
    int ret = cbw_do_cbw(bs, off, bytes, flags);

    if (ret < 0) {
        return ret;
    }
    return bd_child_pwritev(bs->file, off, bytes, qiov, flags);
}

static int cbw_pwrite_zeroes(struct bd_node *bs, int64_t off, int64_t bytes,
                             int flags)
{
    int ret = cbw_do_cbw(bs, off, bytes, flags);

    if (ret < 0) {
        return ret;
    }
    return bd_child_pwrite_zeroes(bs->file, off, bytes, flags);
}

static int cbw_pdiscard(struct bd_node *bs, int64_t off, int64_t bytes)
{
    int ret = cbw_do_cbw(bs, off, bytes, 0);

    if (ret < 0) {
        return ret;
    }
    return bd_child_pdiscard(bs->file, off, bytes);
}

static void cbw_child_perm(struct bd_node *bs, struct bd_child *c,
                           unsigned role, uint64_t parent_perm,
                           uint64_t parent_shared, uint64_t *nperm,
                           uint64_t *nshared)
{
    struct cbw_state *s = bs->opaque;

    if (c == s->target || !(role & BD_ROLE_FILTERED)) {
        /* Old data is written there and read back by snapshot-access. */
        *nperm = BD_PERM_WRITE | BD_PERM_CONSISTENT_READ;
        *nshared = BD_PERM_ALL;
        return;
    }
    /* The source: whatever our parents need, plus reading for the copies
     * and writing for discard-source. */
    *nperm = parent_perm | BD_PERM_CONSISTENT_READ;
    *nshared = parent_shared;
}

/* BlockdevOptionsCbw, as blockdev-add validates it (before any node is
 * looked at, so a bad value is reported ahead of a duplicate node name). */
const struct qapi_type cbw_on_error_type = {
    .kind = QAPI_ENUM, .name = "OnCbwError", .enum_values = cbw_on_error_names,
};
static const struct qapi_member cbw_qapi_members[] = {
    { "file", &bd_qapi_blockdev_ref, false },
    { "target", &bd_qapi_blockdev_ref, false },
    { "bitmap", &bd_qapi_block_dirty_bitmap, true },
    { "on-cbw-error", &cbw_on_error_type, true },
    { "cbw-timeout", &qapi_type_uint32, true },
    { "min-cluster-size", &qapi_type_size, true },
    { NULL, NULL, false },
};
static const struct qapi_type cbw_qapi_options = {
    .kind = QAPI_STRUCT, .name = "BlockdevOptionsCbw",
    .members = cbw_qapi_members,
};

static const struct bd_driver cbw_driver = {
    .struct_size = sizeof(struct bd_driver),
    .name = "copy-before-write",
    .qapi_options = &cbw_qapi_options,
    .is_filter = true,
    .instance_size = sizeof(struct cbw_state),
    .open = cbw_open,
    .close = cbw_close,
    .pwritev = cbw_pwritev,
    .pwrite_zeroes = cbw_pwrite_zeroes,
    .pdiscard = cbw_pdiscard,
    .child_perm = cbw_child_perm,
};

BD_DRIVER_EXPORT(cbw_driver, bd_driver_copy_before_write)
