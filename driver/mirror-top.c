/*
 * driver/mirror-top.c - the `mirror_top` filter (contract in mirror-top.h).
 *
 * Per-node state is only the owner callback and its opaque pointer. They
 * are read by request threads under a read lock and changed under the write
 * lock; owners change only inside drained sections, so the lock is never
 * contended in practice and costs one uncontended rwlock round per write.
 */
#include "common/config.h"

#include <errno.h>
#include <pthread.h>

#include "driver/block-int.h"
#include "driver/drivers.h"
#include "driver/mirror-top.h"

struct mirror_top_state {
    pthread_rwlock_t lock;          /* protects fn and opaque */
    bd_mirror_top_write_fn *fn;
    void *opaque;
};

static int mirror_top_open(struct bd_node *bs, json_t *options, int flags,
                           struct bd_error **errp)
{
    struct mirror_top_state *s = bs->opaque;

    (void)flags;
    if (!bd_open_child(bs, options, "file", NULL,
                       BD_ROLE_FILTERED | BD_ROLE_PRIMARY, false, errp)) {
        return -EINVAL;
    }
    pthread_rwlock_init(&s->lock, NULL);
    /* Whatever the child honours, the filter passes on. */
    bs->supported_write_flags = BD_REQ_FUA;
    bs->supported_zero_flags = BD_REQ_FUA | BD_REQ_MAY_UNMAP |
                               BD_REQ_NO_FALLBACK;
    return 0;
}

static void mirror_top_close(struct bd_node *bs)
{
    struct mirror_top_state *s = bs->opaque;

    pthread_rwlock_destroy(&s->lock);
}

bool bd_node_is_mirror_top(const struct bd_node *bs)
{
    return bs && bs->drv == bd_driver_mirror_top();
}

int bd_mirror_top_set_owner(struct bd_node *bs, bd_mirror_top_write_fn *fn,
                            void *opaque)
{
    struct mirror_top_state *s = NULL;

    if (!bd_node_is_mirror_top(bs)) {
        return -EINVAL;
    }
    s = bs->opaque;
    pthread_rwlock_wrlock(&s->lock);
    s->fn = fn;
    s->opaque = fn ? opaque : NULL;
    pthread_rwlock_unlock(&s->lock);
    return 0;
}

int bd_mirror_top_forward(struct bd_node *bs, enum bd_mirror_top_op op,
                          int64_t off, int64_t bytes, struct bd_qiov *qiov,
                          int flags)
{
    struct bd_child *c = bd_filter_child(bs);

    if (!c) {
        return -ENOMEDIUM;
    }
    switch (op) {
    case BD_MT_WRITE:
        return bd_child_pwritev(c, off, bytes, qiov, flags);
    case BD_MT_ZEROES:
        return bd_child_pwrite_zeroes(c, off, bytes, flags);
    case BD_MT_DISCARD:
    default:
        return bd_child_pdiscard(c, off, bytes);
    }
}

static int mirror_top_write(struct bd_node *bs, enum bd_mirror_top_op op,
                            int64_t off, int64_t bytes, struct bd_qiov *qiov,
                            int flags)
{
    struct mirror_top_state *s = bs->opaque;
    int ret;

    pthread_rwlock_rdlock(&s->lock);
    if (s->fn) {
        ret = s->fn(s->opaque, bs, op, off, bytes, qiov, flags);
    } else {
        ret = bd_mirror_top_forward(bs, op, off, bytes, qiov, flags);
    }
    pthread_rwlock_unlock(&s->lock);
    return ret;
}

static int mirror_top_pwritev(struct bd_node *bs, int64_t off, int64_t bytes,
                              struct bd_qiov *qiov, int flags)
{
    return mirror_top_write(bs, BD_MT_WRITE, off, bytes, qiov, flags);
}

static int mirror_top_pwrite_zeroes(struct bd_node *bs, int64_t off,
                                    int64_t bytes, int flags)
{
    return mirror_top_write(bs, BD_MT_ZEROES, off, bytes, NULL, flags);
}

static int mirror_top_pdiscard(struct bd_node *bs, int64_t off, int64_t bytes)
{
    return mirror_top_write(bs, BD_MT_DISCARD, off, bytes, NULL, 0);
}

/* The job's bitmap, its copies and the target all have the source's size:
 * while an owner is attached, the node must not change size. (QEMU's job
 * unshares the resize permission instead, which makes a mirror of a
 * writable FUSE export impossible; see docs/compat.md.) */
static int mirror_top_truncate(struct bd_node *bs, int64_t size, bool exact,
                               enum bd_prealloc prealloc, int flags,
                               struct bd_error **errp)
{
    struct mirror_top_state *s = bs->opaque;
    struct bd_child *c = bd_filter_child(bs);
    bool owned;

    pthread_rwlock_rdlock(&s->lock);
    owned = s->fn != NULL;
    pthread_rwlock_unlock(&s->lock);
    if (owned) {
        bd_error_setg(errp, "Cannot resize node '%s' while a mirror job "
                      "copies it", bs->node_name);
        return -EBUSY;
    }
    if (!c) {
        bd_error_setg(errp, "Node '%s' has no child", bs->node_name);
        return -ENOMEDIUM;
    }
    return bd_child_truncate(c, size, exact, prealloc, flags, errp);
}

static const struct bd_driver mirror_top_driver = {
    .struct_size = sizeof(struct bd_driver),
    .name = BD_MIRROR_TOP_DRIVER,
    .is_filter = true,
    .instance_size = sizeof(struct mirror_top_state),
    .open = mirror_top_open,
    .close = mirror_top_close,
    .pwritev = mirror_top_pwritev,
    .pwrite_zeroes = mirror_top_pwrite_zeroes,
    .pdiscard = mirror_top_pdiscard,
    .block_status = bd_block_status_passthrough,
    .truncate = mirror_top_truncate,
};

BD_DRIVER_EXPORT(mirror_top_driver, bd_driver_mirror_top)
