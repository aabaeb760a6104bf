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

/* ------------------------------------------------------------------ */
/* Usage rules and job successors (QMP bitmap commands, backup).        */

/* What an operation needs of a bitmap (QEMU's BdrvDirtyBitmap checks). */
#define BD_BITMAP_BUSY          0x1 /* refuse busy bitmaps */
#define BD_BITMAP_RO            0x2 /* refuse read-only bitmaps */
#define BD_BITMAP_INCONSISTENT  0x4 /* refuse inconsistent bitmaps */
#define BD_BITMAP_DEFAULT       (BD_BITMAP_BUSY | BD_BITMAP_RO | \
                                 BD_BITMAP_INCONSISTENT)
#define BD_BITMAP_ALLOW_RO      (BD_BITMAP_BUSY | BD_BITMAP_INCONSISTENT)

/* 0 if bm may be used as flags say, else -EBUSY/-EPERM/-EINVAL with QEMU's
 * message ("Bitmap '%s' is currently in use by another operation and
 * cannot be used", "... is readonly and cannot be modified", "... is
 * inconsistent and cannot be used" plus a hint). */
int bd_dirty_bitmap_check(struct bd_dirty_bitmap *bm, unsigned flags,
                          struct bd_error **errp);
/* Recording: enabled, or an enabled successor records for it. */
bool bd_dirty_bitmap_recording(struct bd_dirty_bitmap *bm);
void bd_dirty_bitmap_set_enabled(struct bd_dirty_bitmap *bm, bool enabled);
/* Size of the bitmap in bytes (the node length when it was sized). */
int64_t bd_dirty_bitmap_size(struct bd_dirty_bitmap *bm);

/*
 * A job freezes bm: an anonymous successor records the writes made from
 * now on (it inherits bm's enabled state), bm stops recording and becomes
 * busy. Fails if bm is busy or already has a successor.
 */
int bd_dirty_bitmap_create_successor(struct bd_dirty_bitmap *bm,
                                     struct bd_error **errp);
/* End of the freeze. abdicate: bm := successor's bits (the old content
 * is dropped). reclaim: bm |= successor's bits. Both release the
 * successor, give bm its enabled state back and clear busy. */
void bd_dirty_bitmap_abdicate(struct bd_dirty_bitmap *bm);
void bd_dirty_bitmap_reclaim(struct bd_dirty_bitmap *bm);

/* BlockDirtyBitmap ({node, name}), the schema type every command and
 * option naming a bitmap uses. */
struct qapi_type;
extern const struct qapi_type bd_qapi_block_dirty_bitmap;

#endif
