/*
 * driver/qcow2.h - what the qcow2 driver offers outside the block layer's
 * ops table: image creation with qemu-img's options, the consistency check
 * behind `blkrig img check`, header facts for `blkrig img info`, and the
 * persistent dirty bitmap directory (the bitmaps header extension).
 *
 * Every function taking a node returns -ENOTSUP (or NULL/false) when the
 * node is not a qcow2 node. Nothing here may be called while the caller
 * holds a request on the node in flight from the same thread.
 */
#ifndef BLKRIG_QCOW2_H
#define BLKRIG_QCOW2_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "driver/block.h"

struct qcow2_create_opts {
    uint64_t size;              /* virtual size, multiple of 512 */
    uint32_t cluster_size;      /* 0: 64 KiB */
    int version;                /* 2 (compat=0.10) or 3 (1.1); 0: 3 */
    uint32_t refcount_bits;     /* 0: 16 */
    bool lazy_refcounts;
    enum bd_prealloc prealloc;
    char *backing_file;         /* NULL: none (written as given) */
    char *backing_fmt;          /* NULL: none */
};

/* Create filename (truncating it) as a qcow2 image. */
int qcow2_create_file(const char *filename, const struct qcow2_create_opts *o,
                      struct bd_error **errp);
/* Allocate every cluster of an open, empty image (preallocation modes
 * metadata, falloc and full). */
int qcow2_preallocate(struct bd_node *bs, enum bd_prealloc mode,
                      struct bd_error **errp);

bool qcow2_is_node(const struct bd_node *n);
const char *qcow2_node_backing_file(struct bd_node *n);
const char *qcow2_node_backing_format(struct bd_node *n);
/* 1 if the cluster at off is compressed, 0 if not, -errno; *count is the
 * run of bytes (from off, at most bytes) with the same answer. */
int qcow2_node_compressed_at(struct bd_node *n, uint64_t off, uint64_t bytes,
                             uint64_t *count);

/* Consistency check; fix is a mask of QCOW2_FIX_LEAKS / QCOW2_FIX_ERRORS.
 * Per-problem lines go to stderr exactly as qemu-img prints them. */
struct qcow2_check_result;
int qcow2_node_check(struct bd_node *n, struct qcow2_check_result *res,
                     int fix);

/* error_report-style line "<prefix>: <msg>" on stderr. */
void qcow2_report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ------------------------------------------------------------------ */
/* Persistent dirty bitmaps (qcow2 bitmaps extension)                   */

#define QCOW2_BITMAP_IN_USE 0x1u
#define QCOW2_BITMAP_AUTO 0x2u

struct qcow2_bitmap_info {
    char *name;
    uint32_t granularity;       /* bytes */
    uint32_t flags;             /* QCOW2_BITMAP_* */
};

/* List the bitmaps of the image (*list is allocated, free with
 * qcow2_bitmap_list_free). Returns the count or -errno. */
int qcow2_bitmap_list(struct bd_node *n, struct qcow2_bitmap_info **list,
                      struct bd_error **errp);
void qcow2_bitmap_list_free(struct qcow2_bitmap_info *list, int count);
/*
 * Load bitmap `name`: *bits (malloc'd, free() it) holds *nbits bits, one
 * per *granularity bytes of the disk, bit i in byte i / 8 at position
 * i % 8 (the qcow2 layout). A bitmap flagged in use is loaded as stored;
 * callers decide whether to trust it. -ENOENT when there is no such
 * bitmap.
 */
int qcow2_bitmap_load(struct bd_node *n, const char *name, uint8_t **bits,
                      uint64_t *nbits, uint32_t *granularity,
                      struct bd_error **errp);
/*
 * Stored bitmaps become persistent node bitmaps on open (marked in use in
 * the image when opened read-write, as QEMU does). qcow2_bitmaps_store
 * replaces the stored bitmaps with the node's persistent named ones:
 * close does it with in_use false (data written, flags "auto" when
 * recording); block-dirty-bitmap-remove with in_use true (entries flagged
 * in use, no data, because the image stays open). 0 on a read-only node;
 * -ENOTSUP for qcow2 v2 with bitmaps to store. Do not call with the
 * node's bitmaps_lock held.
 */
int qcow2_bitmaps_store(struct bd_node *bs, bool in_use);
/* Whether a new persistent bitmap `name` can be stored in qcow2 node bs;
 * false with QEMU's "Can't make bitmap '<name>' persistent in '<node>':
 * <reason>" otherwise (v2 images, more than 65535 bitmaps). */
bool qcow2_can_store_new_bitmap(struct bd_node *bs, const char *name,
                                struct bd_error **errp);

#endif
