/*
 * jobs/backup.h - the backup job (specs/jobs.md §3): a copy-before-write
 * filter above the source keeps the point in time, a background loop
 * copies what sync selects, the bitmap is handled per bitmap-mode.
 *
 * blockdev-backup/drive-backup (monitor/qmp-backup.c) validate the QMP
 * arguments (§3.2 steps 1-4) and call backup_job_create, which does the
 * rest in QEMU's order and leaves a job in status created (not started),
 * so a transaction can still abort it.
 */
#ifndef BLKRIG_BACKUP_H
#define BLKRIG_BACKUP_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "jobs/job.h"

struct bd_node;
struct bd_dirty_bitmap;

enum backup_sync {
    BACKUP_SYNC_TOP,
    BACKUP_SYNC_FULL,
    BACKUP_SYNC_NONE,
    BACKUP_SYNC_INCREMENTAL,
    BACKUP_SYNC_BITMAP,
    BACKUP_SYNC__MAX
};

enum backup_bitmap_mode {
    BACKUP_BITMAP_ON_SUCCESS,
    BACKUP_BITMAP_NEVER,
    BACKUP_BITMAP_ALWAYS,
    BACKUP_BITMAP__MAX
};

extern const char *const backup_sync_names[BACKUP_SYNC__MAX + 1];
extern const char *const backup_bitmap_mode_names[BACKUP_BITMAP__MAX + 1];

struct backup_params {
    const char *job_id;             /* NULL: from the device */
    struct bd_node *source;
    struct bd_node *target;
    const char *target_device;      /* backend name of target, or "" */
    enum backup_sync sync;          /* incremental already rewritten */
    struct bd_dirty_bitmap *bitmap; /* NULL: none */
    enum backup_bitmap_mode bitmap_mode;
    int64_t speed;
    bool compress;
    enum job_on_error on_source_error;
    enum job_on_error on_target_error;
    int on_cbw_error;               /* 0 break-guest-write, 1 break-snapshot */
    bool auto_finalize;
    bool auto_dismiss;
    const char *filter_node_name;   /* NULL: generated */
    bool discard_source;
    int64_t max_chunk;              /* x-perf: 0 = unlimited */
    int64_t max_workers;            /* x-perf: 0 = default (64) */
    int64_t min_cluster_size;       /* x-perf: 0 = default */
    struct job_txn *txn;            /* grouped transaction or NULL */
};

/* Create the job (status created). Returns NULL with errp set; then
 * nothing changed (filter not inserted, bitmap not busy). */
struct job *backup_job_create(struct job_manager *m,
                              const struct backup_params *p,
                              struct bd_error **errp);

#endif
