/*
 * driver/snapshot-access.c - the point-in-time view of a copy-before-write
 * filter, for fleecing (specs/jobs.md §5.4): `file` names the filter;
 * reads return the data as it was when the filter was opened - from the
 * source where it was not overwritten yet, else from the filter's target.
 *
 * Only clusters in the filter's access set may be read (EACCES
 * otherwise); after the filter lost the snapshot (on-cbw-error=
 * break-snapshot) every read and block-status fails with EACCES. Writes
 * are not supported; discard drops whole clusters from the snapshot (no
 * more copy-before-write there) and discards them on the target. The
 * node takes no permissions on the filter.
 */
#include "common/config.h"

#include <errno.h>
#include <string.h>

#include "common/cutils.h"
#include "driver/block-int.h"
#include "driver/drivers.h"
#include "jobs/block-copy.h"

struct snap_state {
    /* Set in open, immutable. */
    struct bd_node *cbw;
    struct block_copy *bcs;
};

static int snap_open(struct bd_node *bs, json_t *options, int flags,
                     struct bd_error **errp)
{
    struct snap_state *s = bs->opaque;

    (void)flags;
    if (!bd_open_child(bs, options, "file", NULL,
                       BD_ROLE_DATA | BD_ROLE_PRIMARY, false, errp)) {
        return -EINVAL;
    }
    if (!cbw_is_filter(bs->file->node)) {
        bd_error_setg(errp, "File child is not a copy-before-write filter");
        return -EINVAL;
    }
    s->cbw = bs->file->node;
    s->bcs = cbw_block_copy(s->cbw);
    return 0;
}

static int snap_refresh_limits(struct bd_node *bs, struct bd_error **errp)
{
    (void)errp;
    bs->bl.request_alignment = BD_MAX(bs->file->node->bl.request_alignment,
                                      1u);
    return 0;
}

static int64_t snap_getlength(struct bd_node *bs)
{
    return bd_getlength(bs->file->node);
}

static int snap_check(struct snap_state *s, int64_t off, int64_t bytes)
{
    if (cbw_snapshot_error(s->cbw) ||
        !block_copy_access_ok(s->bcs, off, bytes)) {
        return -EACCES;
    }
    return 0;
}

static int snap_preadv(struct bd_node *bs, int64_t off, int64_t bytes,
                       struct bd_qiov *qiov, int flags)
{
    struct snap_state *s = bs->opaque;
    int ret = snap_check(s, off, bytes);

    (void)flags;
    if (ret < 0) {
        return ret;
    }
    ret = block_copy_snapshot_read(s->bcs, off, bytes, qiov);
    /* The snapshot may have broken while we read from the source. */
    return ret < 0 ? ret : snap_check(s, off, bytes);
}

static int snap_pwritev(struct bd_node *bs, int64_t off, int64_t bytes,
                        struct bd_qiov *qiov, int flags)
{
    (void)bs;
    (void)off;
    (void)bytes;
    (void)qiov;
    (void)flags;
    return -ENOTSUP;
}

static int snap_pwrite_zeroes(struct bd_node *bs, int64_t off, int64_t bytes,
                              int flags)
{
    (void)bs;
    (void)off;
    (void)bytes;
    (void)flags;
    return -ENOTSUP;
}

static int snap_pdiscard(struct bd_node *bs, int64_t off, int64_t bytes)
{
    struct snap_state *s = bs->opaque;
    int64_t cs = block_copy_cluster_size(s->bcs);
    int64_t len = block_copy_len(s->bcs);
    int64_t a = BD_ROUND_UP(off, cs);
    int64_t b = off + bytes >= len ? len : (off + bytes) / cs * cs;
    struct bd_child *target = bd_node_child(s->cbw, "target");

    if (b <= a) {
        return 0;
    }
    block_copy_access_remove(s->bcs, a, b - a);
    return target ? bd_child_pdiscard(target, a, b - a) : 0;
}

static int snap_flush(struct bd_node *bs)
{
    (void)bs;
    return 0;
}

static int snap_block_status(struct bd_node *bs, bool want_zero, int64_t off,
                             int64_t bytes, int64_t *pnum, int64_t *map,
                             struct bd_node **file)
{
    struct snap_state *s = bs->opaque;
    int ret = snap_check(s, off, bytes);

    (void)want_zero;
    (void)map;
    (void)file;
    if (ret < 0) {
        return ret;
    }
    *pnum = bytes;
    return BD_BLOCK_DATA | BD_BLOCK_ALLOCATED;
}

static void snap_child_perm(struct bd_node *bs, struct bd_child *c,
                            unsigned role, uint64_t parent_perm,
                            uint64_t parent_shared, uint64_t *nperm,
                            uint64_t *nshared)
{
    (void)bs;
    (void)c;
    (void)role;
    (void)parent_perm;
    (void)parent_shared;
    *nperm = 0;
    *nshared = BD_PERM_ALL;
}

/* BlockdevOptionsGenericFormat, as blockdev-add validates it. */
static const struct qapi_member snap_qapi_members[] = {
    { "file", &bd_qapi_blockdev_ref, false },
    { NULL, NULL, false },
};
static const struct qapi_type snap_qapi_options = {
    .kind = QAPI_STRUCT, .name = "BlockdevOptionsGenericFormat",
    .members = snap_qapi_members,
};

static const struct bd_driver snap_driver = {
    .struct_size = sizeof(struct bd_driver),
    .name = "snapshot-access",
    .qapi_options = &snap_qapi_options,
    .instance_size = sizeof(struct snap_state),
    .open = snap_open,
    .refresh_limits = snap_refresh_limits,
    .getlength = snap_getlength,
    .preadv = snap_preadv,
    .pwritev = snap_pwritev,
    .pwrite_zeroes = snap_pwrite_zeroes,
    .pdiscard = snap_pdiscard,
    .flush_to_os = snap_flush,
    .flush_to_disk = snap_flush,
    .block_status = snap_block_status,
    .child_perm = snap_child_perm,
};

BD_DRIVER_EXPORT(snap_driver, bd_driver_snapshot_access)
