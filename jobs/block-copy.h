/*
 * jobs/block-copy.h - copy clusters from a source child to a target child
 * once each, shared by the copy-before-write filter (guest writes copy the
 * old data first) and the backup job (background copy) - specs/jobs.md
 * §3.3-§3.4, §5.
 *
 * The copy bitmap says which clusters still have to be copied. A cluster
 * being copied is "in flight": anybody else who needs it (a guest write,
 * the background loop, a snapshot read) waits until that copy ended and
 * then looks again, so every cluster reaches the target exactly as it was
 * when the bitmap was set up - the point-in-time guarantee. All functions
 * are thread-safe.
 */
#ifndef BLKRIG_BLOCK_COPY_H
#define BLKRIG_BLOCK_COPY_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"

struct bd_child;
struct bd_node;
struct bd_qiov;
struct block_copy;

/* All clusters start dirty. len: the source length. */
struct block_copy *block_copy_new(struct bd_child *source,
                                  struct bd_child *target, int64_t len,
                                  int64_t cluster_size);
/* Waits for copies in flight. */
void block_copy_free(struct block_copy *s);

int64_t block_copy_cluster_size(struct block_copy *s);
int64_t block_copy_len(struct block_copy *s);

/* Copy bitmap (byte ranges are widened to whole clusters). */
void block_copy_set_dirty(struct block_copy *s, int64_t off, int64_t bytes);
void block_copy_reset_dirty(struct block_copy *s, int64_t off, int64_t bytes);
void block_copy_reset_all(struct block_copy *s);
bool block_copy_is_dirty(struct block_copy *s, int64_t off);
/* Next dirty byte offset >= off, or -1. */
int64_t block_copy_next_dirty(struct block_copy *s, int64_t off);
int64_t block_copy_dirty_bytes(struct block_copy *s);

/* Copy behaviour (set before the first copy). */
void block_copy_set_compress(struct block_copy *s, bool compress);
/* Discard each copied range on the source afterwards. */
void block_copy_set_discard_source(struct block_copy *s, bool discard);
/* Called with the byte count of every successful copy (progress). */
void block_copy_set_progress(struct block_copy *s,
                             void (*cb)(void *opaque, int64_t bytes),
                             void *opaque);

/*
 * Copy every dirty cluster touching [off, off+bytes), waiting for copies
 * in flight there. Returns 0, or the first error (-errno) with
 * *error_is_read telling which side failed; clusters that failed stay
 * dirty. max_chunk bounds one request (0: 1 MiB).
 */
int block_copy(struct block_copy *s, int64_t off, int64_t bytes,
               bool *error_is_read);

/*
 * Snapshot view (snapshot-access): read [off, off+bytes) as it was when
 * the bitmap was set up - from the source for clusters not copied yet
 * (holding off copies and guest writes there meanwhile), else from the
 * target.
 */
int block_copy_snapshot_read(struct block_copy *s, int64_t off, int64_t bytes,
                             struct bd_qiov *qiov);

/*
 * The snapshot-access set: clusters a snapshot reader may read (QEMU's
 * access bitmap). block_copy_init_access copies the current copy bitmap
 * into it (the filter does so once it set the bitmap up);
 * block_copy_access_ok says whether every cluster of the range is in it;
 * block_copy_access_remove drops whole clusters inside the range from
 * both the access set and the copy bitmap (snapshot-access discard).
 */
void block_copy_init_access(struct block_copy *s);
bool block_copy_access_ok(struct block_copy *s, int64_t off, int64_t bytes);
void block_copy_access_remove(struct block_copy *s, int64_t off,
                              int64_t bytes);

/* copy-before-write filter: its block-copy state and latched snapshot
 * error (0 while the snapshot is valid). NULL/0 for other nodes. */
struct block_copy *cbw_block_copy(struct bd_node *cbw);
int cbw_snapshot_error(struct bd_node *cbw);
/* Is the node a copy-before-write filter? */
bool cbw_is_filter(struct bd_node *n);
/* OnCbwError (break-guest-write, break-snapshot; NULL-terminated) and its
 * schema type, shared by the filter's options and blockdev-backup's. */
extern const char *const cbw_on_error_names[];
struct qapi_type;
extern const struct qapi_type cbw_on_error_type;

#endif
