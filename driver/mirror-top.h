/*
 * driver/mirror-top.h - the `mirror_top` filter: a pass-through filter that
 * a mirror job inserts above its source so that it sees every guest write.
 *
 * The driver knows nothing of jobs. An owner (jobs/mirror.c) registers
 * itself with bd_mirror_top_set_owner(); from then on every write-like
 * request (write, write-zeroes, discard) that reaches the filter is handed
 * to the owner's callback, which performs it on the filtered child with
 * bd_mirror_top_forward() and does its own bookkeeping around it (dirty
 * bitmap, synchronous copy to the target in write-blocking mode). Reads,
 * flushes and block status always go straight to the child. Without an
 * owner the filter is a plain pass-through.
 *
 * The owner is only changed inside a drained section of the filter, so no
 * request observes the change half-way.
 */
#ifndef BLKRIG_MIRROR_TOP_H
#define BLKRIG_MIRROR_TOP_H

#include <stdint.h>

#include "driver/block.h"

enum bd_mirror_top_op {
    BD_MT_WRITE,        /* pwritev (qiov valid) */
    BD_MT_ZEROES,       /* pwrite_zeroes (qiov NULL) */
    BD_MT_DISCARD,      /* pdiscard (qiov NULL, flags 0) */
};

typedef int bd_mirror_top_write_fn(void *opaque, struct bd_node *filter,
                                   enum bd_mirror_top_op op, int64_t off,
                                   int64_t bytes, struct bd_qiov *qiov,
                                   int flags);

/* Name of the driver ("mirror_top", as in QEMU's query output). */
#define BD_MIRROR_TOP_DRIVER "mirror_top"

/* Install (fn != NULL) or remove (fn == NULL) the owner of a mirror_top
 * node. Returns -EINVAL when bs is not a mirror_top node. */
int bd_mirror_top_set_owner(struct bd_node *bs, bd_mirror_top_write_fn *fn,
                            void *opaque);
/* Perform a write-like request on the filter's child (for the owner). */
int bd_mirror_top_forward(struct bd_node *bs, enum bd_mirror_top_op op,
                          int64_t off, int64_t bytes, struct bd_qiov *qiov,
                          int flags);
bool bd_node_is_mirror_top(const struct bd_node *bs);

#endif
