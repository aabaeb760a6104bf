/*
 * jobs/mirror.h - the mirror block job (drive-mirror / blockdev-mirror,
 * specs/jobs.md §4).
 *
 * mirror_start() inserts a mirror_top filter above the source (every parent
 * of the source now writes through it), creates and starts the job. The job
 * copies the dirty granules of its bitmap to the target with up to 16
 * requests in flight, re-dirtying whatever the guest writes meanwhile
 * (background mode) or writing guest data to the target synchronously
 * (write-blocking mode). When nothing is dirty and nothing in flight it
 * flushes the target and goes READY (BLOCK_JOB_READY); from then on it keeps
 * mirroring until:
 *  - job-complete: converges inside a drained section, then (prepare) pivots:
 *    every parent of the source (or of `replaces`) now uses the target;
 *  - soft cancel (block-job-cancel after READY): converges, no pivot,
 *    BLOCK_JOB_COMPLETED;
 *  - force cancel: stops, no pivot, BLOCK_JOB_CANCELLED.
 * In every case the filter is removed before the job concludes.
 *
 * I/O errors follow on-source-error (reads) and on-target-error (writes):
 * the failed range is dirtied again, BLOCK_JOB_ERROR is emitted, and
 * report fails the job (even after READY, without pivot), ignore retries,
 * stop pauses (standby after READY) until job-resume.
 *
 * Setup functions follow common/error.h; messages are QEMU's.
 */
#ifndef BLKRIG_MIRROR_H
#define BLKRIG_MIRROR_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "jobs/job.h"

struct bd_graph;
struct bd_node;

/* MirrorSyncMode, in QAPI order. */
enum mirror_sync_mode {
    MIRROR_SYNC_TOP,
    MIRROR_SYNC_FULL,
    MIRROR_SYNC_NONE,
    MIRROR_SYNC_INCREMENTAL,
    MIRROR_SYNC_BITMAP,
    MIRROR_SYNC__MAX
};

/* MirrorCopyMode. */
enum mirror_copy_mode {
    MIRROR_COPY_BACKGROUND,
    MIRROR_COPY_WRITE_BLOCKING,
    MIRROR_COPY__MAX
};

extern const char *const mirror_sync_names[MIRROR_SYNC__MAX + 1];
extern const char *const mirror_copy_mode_names[MIRROR_COPY__MAX + 1];

/* Limits of the granularity argument (QEMU's). */
#define MIRROR_GRANULARITY_MIN 512
#define MIRROR_GRANULARITY_MAX (64 * 1024 * 1024)
/* Default buffer: 16 requests of 1 MiB. */
#define MIRROR_DEFAULT_BUF_SIZE (16 * 1024 * 1024)

struct mirror_opts {
    const char *job_id;             /* NULL: "" (QEMU: the device name) */
    struct bd_node *source;         /* a root node (mirror_lookup_root) */
    struct bd_node *target;
    const char *replaces;           /* node name or NULL */
    enum mirror_sync_mode sync;
    int64_t speed;                  /* bytes/s, 0 = unlimited */
    uint64_t granularity;           /* 0: default from the target */
    int64_t buf_size;               /* 0: default; < 0 rejected */
    enum job_on_error on_source_error;
    enum job_on_error on_target_error;
    const char *filter_node_name;   /* NULL: generated */
    enum mirror_copy_mode copy_mode;
    bool unmap;                     /* zero the target by unmapping */
    bool target_is_zero;            /* skip writing zeroes to the target */
    bool auto_finalize;
    bool auto_dismiss;
};

/* Defaults of every optional argument (unmap, auto-* true, the rest 0). */
void mirror_opts_init(struct mirror_opts *o);

/*
 * Validate (QEMU's order and messages), insert the filter, create and
 * start the job. Returns the job (owned by the manager) or NULL with errp
 * set; on failure the graph is as before.
 */
struct job *mirror_start(struct job_manager *m, const struct mirror_opts *o,
                         struct bd_error **errp);

/*
 * Find the node a mirror may use as its source: a node or backend name
 * whose node has no node parents and is not in use by a mirror job.
 * "Cannot find device='%s' nor node-name='%s'" / "Need a root block node".
 */
struct bd_node *mirror_lookup_root(struct bd_graph *g, const char *name,
                                   struct bd_error **errp);
/* Any node by node or backend name (the target). */
struct bd_node *mirror_lookup_node(struct bd_graph *g, const char *name,
                                   struct bd_error **errp);

/* block-job-change for a mirror: switch copy-mode (see specs §4.2). */
int mirror_change_copy_mode(struct job *job, enum mirror_copy_mode mode,
                            struct bd_error **errp);

#endif
