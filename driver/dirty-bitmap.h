/*
 * driver/dirty-bitmap.h - dirty bitmaps: which granules of a node were
 * written since the bitmap was created or cleared.
 *
 * A bitmap belongs to one node and is listed in node->bitmaps (protected by
 * node->bitmaps_lock). Every successful write, write-zeroes and discard that
 * reaches the node marks the granules it touches in every enabled bitmap
 * (bd_dirty_bitmaps_mark, called by io.c). A node without bitmaps pays one
 * list-empty test per write.
 *
 * Names are unique per node; anonymous bitmaps (name NULL) are internal
 * (job copy bitmaps, successors). count is in bytes: set granules times the
 * granularity, the last granule counting fully.
 */
#ifndef BLKRIG_DIRTY_BITMAP_H
#define BLKRIG_DIRTY_BITMAP_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "common/error.h"
#include "common/list.h"

struct bd_node;

struct bd_dirty_bitmap {
    struct bd_list link;            /* in node->bitmaps */
    struct bd_node *node;
    char *name;                     /* NULL: anonymous */
    uint64_t granularity;           /* power of two >= 512 */
    int64_t size;                   /* node length in bytes */
    uint64_t nbits;
    uint64_t *bits;
    uint64_t set_bits;              /* number of set granules */
    bool enabled;                   /* recording writes */
    bool busy;                      /* in use by a job/export */
    bool readonly;
    bool persistent;
    bool inconsistent;
    struct bd_dirty_bitmap *successor;
};

/* Called by io.c on every successful write-like request. */
void bd_dirty_bitmaps_mark(struct bd_node *bs, int64_t off, int64_t bytes);
/* Called by io.c after a resize. */
void bd_dirty_bitmaps_truncate(struct bd_node *bs, int64_t size);

/* Create a bitmap; name NULL for an anonymous one. granularity must be a
 * power of two >= 512 (checked by the caller for QEMU's message). */
struct bd_dirty_bitmap *bd_dirty_bitmap_create(struct bd_node *bs,
                                               uint64_t granularity,
                                               const char *name,
                                               struct bd_error **errp);
void bd_dirty_bitmap_release(struct bd_dirty_bitmap *bm);
struct bd_dirty_bitmap *bd_dirty_bitmap_find(struct bd_node *bs,
                                             const char *name);
/* Byte-range operations (ranges are widened to whole granules). */
void bd_dirty_bitmap_set(struct bd_dirty_bitmap *bm, int64_t off,
                         int64_t bytes);
void bd_dirty_bitmap_reset(struct bd_dirty_bitmap *bm, int64_t off,
                           int64_t bytes);
void bd_dirty_bitmap_clear(struct bd_dirty_bitmap *bm);
bool bd_dirty_bitmap_get(struct bd_dirty_bitmap *bm, int64_t off);
uint64_t bd_dirty_bitmap_count(struct bd_dirty_bitmap *bm);
/* Next dirty byte offset >= off, or -1. */
int64_t bd_dirty_bitmap_next_dirty(struct bd_dirty_bitmap *bm, int64_t off);
/* dst |= src (granularities may differ: a set source granule sets every
 * overlapping destination granule). Sizes must match. */
void bd_dirty_bitmap_merge(struct bd_dirty_bitmap *dst,
                           struct bd_dirty_bitmap *src);
/* Copy of the bits (for transaction rollback); restore puts them back. */
uint64_t *bd_dirty_bitmap_backup(struct bd_dirty_bitmap *bm);
void bd_dirty_bitmap_restore(struct bd_dirty_bitmap *bm, uint64_t *backup);
/* The node's bitmaps as QMP's BlockDirtyInfo list (query-named-block-nodes
 * "dirty-bitmaps"): name, recording, persistent, busy, count, granularity,
 * and inconsistent only when true. Caller owns the array. */
json_t *bd_dirty_bitmap_query(struct bd_node *bs);

#endif
