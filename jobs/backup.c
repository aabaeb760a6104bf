/*
 * jobs/backup.c - the backup job (specs/jobs.md §3).
 *
 * Creation inserts a copy-before-write filter above the source: from then
 * on every guest write first saves the old clusters to the target, so the
 * target ends up as the source was at creation. The body copies the rest
 * (what sync selects) in chunks through the filter's block-copy state,
 * asks the job's error policy about each failed pass, and with
 * on-cbw-error=break-snapshot fails as soon as the filter gave up the
 * point in time (QEMU would silently finish with a wrong copy).
 *
 * Locking: guest threads reach us through the filter's progress callback,
 * which therefore only touches an atomic counter - the job lock is held
 * by hooks that drain, and a drain waits for those guest threads.
 */
#include "common/config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cutils.h"
#include "common/opts.h"
#include "driver/block-int.h"
#include "driver/dirty-bitmap.h"
#include "jobs/backup.h"
#include "jobs/block-copy.h"

#define BACKUP_CHUNK (1 << 20)

const char *const backup_sync_names[BACKUP_SYNC__MAX + 1] = {
    "top", "full", "none", "incremental", "bitmap", NULL,
};

const char *const backup_bitmap_mode_names[BACKUP_BITMAP__MAX + 1] = {
    "on-success", "never", "always", NULL,
};

struct backup_job {
    struct job job;

    /* Immutable after creation. */
    struct bd_node *source;
    struct bd_node *cbw;            /* our filter (one reference) */
    struct block_copy *bcs;
    enum backup_sync sync;
    struct bd_dirty_bitmap *bitmap;
    enum backup_bitmap_mode bitmap_mode;
    int64_t len;
    int64_t chunk;
    int workers;                    /* chunks in flight at most */

    /* Bytes copied, by the body or by guest writes (see the header). */
    atomic_int_fast64_t copied;
    bool filter_removed;            /* (lock) */
};

static void backup_progress(void *opaque, int64_t bytes)
{
    struct backup_job *bj = opaque;

    atomic_fetch_add(&bj->copied, bytes);
}

/* The job's progress is read from here before every query and event
 * (job_driver.progress), so copies made by guest writes count at once,
 * also while the body is parked (paused after an error, or waiting in
 * pending), as in QEMU, where the filter's block-copy advances the job's
 * progress meter itself. */
static int64_t backup_job_progress(struct job *job)
{
    struct backup_job *bj = (struct backup_job *)job;

    return atomic_load(&bj->copied);
}

/* Non-zero once the filter lost the point in time (break-snapshot). */
static int check_snapshot(struct backup_job *bj)
{
    int err = cbw_snapshot_error(bj->cbw);
    char msg[256];

    if (!err) {
        return 0;
    }
    snprintf(msg, sizeof(msg), "copy-before-write failed (%s) and "
             "on-cbw-error is break-snapshot: the target is no longer a "
             "point-in-time copy", bd_strerror(-err));
    job_set_error(&bj->job, msg);
    return err;
}

/* sync=top: drop clusters that are wholly unallocated in the top layer. */
static void skip_unallocated(struct backup_job *bj)
{
    int64_t cs = block_copy_cluster_size(bj->bcs);
    int64_t off = 0;

    while (off < bj->len) {
        int64_t pnum = 0;
        int r = bd_node_is_allocated(bj->source, off, bj->len - off, &pnum);

        if (r < 0 || pnum <= 0) {
            break;
        }
        if (r == 0) {
            int64_t a = BD_ROUND_UP(off, cs);
            int64_t b = off + pnum >= bj->len ? bj->len
                                             : BD_ROUND_DOWN(off + pnum, cs);
            if (b > a) {
                block_copy_reset_dirty(bj->bcs, a, b - a);
            }
        }
        off += pnum;
    }
}

/* One pass over the dirty clusters, one chunk at a time (used while a
 * speed limit is set, so that the limit applies to every chunk). 0 when
 * the pass ended (done, or a pause/cancel was requested), else -errno. */
static int backup_pass_serial(struct backup_job *bj, bool *is_read)
{
    int64_t off = 0;

    while ((off = block_copy_next_dirty(bj->bcs, off)) >= 0) {
        int64_t n = BD_MIN(bj->chunk, bj->len - off);
        int r;

        job_pause_point(&bj->job);
        if (job_is_cancelled(&bj->job)) {
            return -ECANCELED;
        }
        r = check_snapshot(bj);
        if (r) {
            return r;
        }
        r = block_copy(bj->bcs, off, n, is_read);
        if (r < 0) {
            return r;
        }
        job_rate_limit(&bj->job, n);
        off += n;
    }
    return 0;
}

/*
 * Without a speed limit a pass runs up to x-perf.max-workers chunks at
 * once (64 by default), as QEMU's block-copy does: the first chunks start
 * together, each worker then takes the next dirty chunk until the pass
 * failed or a pause or cancel was requested. A failure lets the chunks in
 * flight finish, so the progress at failure matches QEMU's (e.g. 3 of
 * 4 MiB when one of four 1 MiB chunks fails). max-workers=1 copies in
 * order and stops at the first failing chunk, which is what makes the
 * set of uncopied clusters after a failure predictable (iotest 257).
 * QEMU allows up to INT_MAX workers; more than BACKUP_WORKERS threads
 * would buy nothing on images this tool is used with, so we cap there.
 */
#define BACKUP_WORKERS 64

struct pass {
    struct backup_job *bj;
    pthread_mutex_t lock;
    int64_t cursor;             /* next offset to look at */
    int ret;                    /* first error */
    bool is_read;
};

struct worker {
    struct pass *pass;
    int64_t first;              /* the chunk it starts with */
    pthread_t thread;
};

/* Next chunk offset, or -1 when the pass should end. Lock held. */
static int64_t grab_chunk(struct pass *ps)
{
    struct backup_job *bj = ps->bj;
    int64_t off;
    bool stop;

    if (ps->ret < 0) {
        return -1;
    }
    job_lock(bj->job.mgr);
    stop = bj->job.pause_count > 0 || bj->job.cancelled;
    job_unlock(bj->job.mgr);
    if (stop || cbw_snapshot_error(bj->cbw)) {
        return -1;
    }
    off = block_copy_next_dirty(bj->bcs, ps->cursor);
    if (off >= 0) {
        ps->cursor = off + bj->chunk;
    }
    return off;
}

static void *pass_worker(void *opaque)
{
    struct worker *w = opaque;
    struct pass *ps = w->pass;
    struct backup_job *bj = ps->bj;
    int64_t off = w->first;

    while (off >= 0) {
        bool is_read = false;
        int r = block_copy(bj->bcs, off, BD_MIN(bj->chunk, bj->len - off),
                           &is_read);

        pthread_mutex_lock(&ps->lock);
        if (r < 0 && ps->ret == 0) {
            ps->ret = r;
            ps->is_read = is_read;
        }
        off = grab_chunk(ps);
        pthread_mutex_unlock(&ps->lock);
    }
    return NULL;
}

static int backup_pass(struct backup_job *bj, bool *is_read)
{
    struct worker ws[BACKUP_WORKERS];
    struct pass ps;
    int64_t speed;
    int n = 0;
    int i;
    int r;

    job_lock(bj->job.mgr);
    speed = bj->job.speed;
    job_unlock(bj->job.mgr);
    if (speed > 0) {
        return backup_pass_serial(bj, is_read);
    }
    job_pause_point(&bj->job);
    if (job_is_cancelled(&bj->job)) {
        return -ECANCELED;
    }
    r = check_snapshot(bj);
    if (r) {
        return r;
    }
    memset(&ps, 0, sizeof(ps));
    ps.bj = bj;
    pthread_mutex_init(&ps.lock, NULL);
    for (n = 0; n < bj->workers; n++) {
        int64_t off = block_copy_next_dirty(bj->bcs, ps.cursor);

        if (off < 0) {
            break;
        }
        ps.cursor = off + bj->chunk;
        ws[n].pass = &ps;
        ws[n].first = off;
    }
    for (i = 0; i < n; i++) {
        if (pthread_create(&ws[i].thread, NULL, pass_worker, &ws[i]) != 0) {
            /* Out of threads: do this worker's share here. */
            pass_worker(&ws[i]);
            ws[i].thread = pthread_self();
        }
    }
    for (i = 0; i < n; i++) {
        if (!pthread_equal(ws[i].thread, pthread_self())) {
            pthread_join(ws[i].thread, NULL);
        }
    }
    pthread_mutex_destroy(&ps.lock);
    if (ps.ret < 0) {
        *is_read = ps.is_read;
        return ps.ret;
    }
    return check_snapshot(bj);
}

static int backup_run(struct job *job)
{
    struct backup_job *bj = (struct backup_job *)job;
    int ret;

    if (bj->sync == BACKUP_SYNC_TOP) {
        skip_unallocated(bj);
    }
    job_progress_set_total(job, block_copy_dirty_bytes(bj->bcs) +
                                atomic_load(&bj->copied));

    if (bj->sync == BACKUP_SYNC_NONE) {
        /* Only guest writes copy; the job runs until cancelled. */
        for (;;) {
            job_pause_point(job);
            if (job_is_cancelled(job)) {
                return -ECANCELED;
            }
            ret = check_snapshot(bj);
            if (ret) {
                return ret;
            }
            job_sleep_ns(job, 10 * 1000 * 1000);
        }
    }

    for (;;) {
        bool is_read = false;
        enum job_error_action action;

        ret = backup_pass(bj, &is_read);
        if (ret == 0) {
            if (block_copy_dirty_bytes(bj->bcs) == 0) {
                break;
            }
            continue;
        }
        if (ret == -ECANCELED || job_is_cancelled(job) ||
            cbw_snapshot_error(bj->cbw)) {
            return ret;
        }
        action = job_error_action(job, is_read ? job->on_source_error
                                               : job->on_target_error,
                                  is_read, -ret);
        if (action == JOB_ERROR_ACTION_REPORT) {
            return ret;
        }
        /* ignore: retry at once; stop: the pause point parks the job
         * until job-resume, then the next pass retries. */
        job_pause_point(job);
        if (job_is_cancelled(job)) {
            return -ECANCELED;
        }
    }
    ret = check_snapshot(bj);
    if (ret) {
        return ret;
    }
    return 0;
}

/* B := W u R for bitmap-mode=always after a failure: everything not
 * copied stays dirty, so a retry copies it. */
static void bitmap_keep_uncopied(struct backup_job *bj)
{
    struct bd_dirty_bitmap *succ = bj->bitmap->successor;
    int64_t cs = block_copy_cluster_size(bj->bcs);
    int64_t off;

    for (off = block_copy_next_dirty(bj->bcs, 0); off >= 0;
         off = block_copy_next_dirty(bj->bcs, off + cs)) {
        bd_dirty_bitmap_set(succ, off, BD_MIN(cs, bj->len - off));
    }
}

static void backup_commit(struct job *job)
{
    struct backup_job *bj = (struct backup_job *)job;

    if (!bj->bitmap) {
        return;
    }
    if (bj->bitmap_mode == BACKUP_BITMAP_NEVER) {
        bd_dirty_bitmap_reclaim(bj->bitmap);
    } else {
        bd_dirty_bitmap_abdicate(bj->bitmap);
    }
}

static void backup_abort(struct job *job)
{
    struct backup_job *bj = (struct backup_job *)job;

    if (!bj->bitmap) {
        return;
    }
    if (bj->bitmap_mode == BACKUP_BITMAP_ALWAYS) {
        bitmap_keep_uncopied(bj);
        bd_dirty_bitmap_abdicate(bj->bitmap);
    } else {
        bd_dirty_bitmap_reclaim(bj->bitmap);
    }
}

/* Take the filter out again: its parents go back to the source. */
static void remove_filter(struct backup_job *bj)
{
    struct bd_node *below = bj->cbw->file->node;

    if (bj->filter_removed) {
        return;
    }
    bj->filter_removed = true;
    /* Our parents go to whatever is below us now - the source, or the
     * filter of a backup started later on the same source. Drain from
     * there: before and after the switch the same nodes sit above it, so
     * quiesce counters stay balanced. */
    bd_ref(below);
    bd_drained_begin(below);
    bd_replace_node(bj->cbw, below, NULL);
    bd_drained_end(below);
    bd_unref(below);
}

static void backup_clean(struct job *job)
{
    struct backup_job *bj = (struct backup_job *)job;

    remove_filter(bj);
}

static void backup_free(struct job *job)
{
    struct backup_job *bj = (struct backup_job *)job;

    bd_unref(bj->cbw);
    bd_unref(bj->source);
    free(bj);
}

static const struct job_driver backup_driver = {
    .type = JOB_TYPE_BACKUP,
    .run = backup_run,
    .commit = backup_commit,
    .abort = backup_abort,
    .clean = backup_clean,
    .progress = backup_job_progress,
    .free = backup_free,
};

/* Open the filter above source (not inserted yet). */
static struct bd_node *open_filter(const struct backup_params *p,
                                   struct bd_error **errp)
{
    json_t *o = json_object();
    struct bd_node *cbw;

    json_object_set_new(o, "driver", json_string("copy-before-write"));
    json_object_set_new(o, "file", json_string(bd_node_name(p->source)));
    json_object_set_new(o, "target", json_string(bd_node_name(p->target)));
    json_object_set_new(o, "on-cbw-error",
                        json_string(p->on_cbw_error ? "break-snapshot"
                                                    : "break-guest-write"));
    if (p->min_cluster_size) {
        json_object_set_new(o, "min-cluster-size",
                            json_integer(p->min_cluster_size));
    }
    if (p->filter_node_name) {
        json_object_set_new(o, "node-name",
                            json_string(p->filter_node_name));
    }
    cbw = bd_open(bd_node_graph(p->source), NULL, o, BD_O_RDWR, errp);
    return cbw;
}

struct job *backup_job_create(struct job_manager *m,
                              const struct backup_params *p,
                              struct bd_error **errp)
{
    struct backup_job *bj = NULL;
    struct bd_node *cbw = NULL;
    struct block_copy *bcs;
    bool frozen = false;
    int64_t len;
    int64_t tlen;
    int64_t cs;
    struct bd_error *err = NULL;

    if (p->source == p->target) {
        bd_error_setg(errp, "Source and target cannot be the same");
        return NULL;
    }
    if (p->compress &&
        !(p->target->supported_write_flags & BD_REQ_WRITE_COMPRESSED)) {
        bd_error_setg(errp, "Compression is not supported for this drive %s",
                      p->target_device ? p->target_device : "");
        return NULL;
    }
    if (p->bitmap && p->bitmap_mode != BACKUP_BITMAP_NEVER &&
        bd_dirty_bitmap_check(p->bitmap, BD_BITMAP_RO, errp) < 0) {
        return NULL;
    }
    if (p->bitmap) {
        if (bd_dirty_bitmap_create_successor(p->bitmap, errp) < 0) {
            return NULL;
        }
        frozen = true;
    }
    len = bd_getlength(p->source);
    tlen = bd_getlength(p->target);
    if (len < 0 || tlen < 0) {
        bd_error_setg_errno(errp, (int)-(len < 0 ? len : tlen),
                            "Cannot get the image length");
        goto fail;
    }
    if (len != tlen) {
        bd_error_setg(errp, "Source and target image have different sizes");
        goto fail;
    }
    if (p->min_cluster_size && !bd_is_power_of_2((uint64_t)p->min_cluster_size)) {
        /* QEMU checks it in the filter it inserts, prefixing twice. */
        bd_error_setg(errp, "Could not create node: Cannot create "
                      "block-copy-state: min-cluster-size needs to be a "
                      "power of 2");
        goto fail;
    }
    cbw = open_filter(p, &err);
    if (!cbw) {
        bd_error_propagate(errp, err);
        goto fail;
    }
    bcs = cbw_block_copy(cbw);
    cs = block_copy_cluster_size(bcs);
    if (p->max_chunk && p->max_chunk < cs) {
        bd_error_setg(errp, "Required max-chunk (%" PRId64 ") is less than "
                      "backup cluster size (%" PRId64 ")", p->max_chunk, cs);
        goto fail;
    }

    bj = bd_malloc0(sizeof(*bj));
    bj->job.on_source_error = p->on_source_error;
    bj->job.on_target_error = p->on_target_error;
    if (job_create(m, &bj->job, &backup_driver,
                   p->job_id ? p->job_id : "", p->txn, p->speed,
                   p->auto_finalize, p->auto_dismiss, errp) < 0) {
        free(bj);
        goto fail;
    }
    bj->source = p->source;
    bd_ref(p->source);
    bj->cbw = cbw;
    bj->bcs = bcs;
    bj->sync = p->sync;
    bj->bitmap = p->bitmap;
    bj->bitmap_mode = p->bitmap_mode;
    bj->len = len;
    bj->chunk = p->max_chunk ? BD_ROUND_DOWN(p->max_chunk, cs)
                             : BD_MAX(cs, BACKUP_CHUNK);
    bj->workers = p->max_workers > 0 && p->max_workers < BACKUP_WORKERS
                  ? (int)p->max_workers : BACKUP_WORKERS;
    if (p->discard_source && bd_is_read_only(p->source)) {
        /* QEMU's filter takes write on the source for discard-source,
         * which the job's own parent on the filter cannot get from a
         * read-only node: the job is dropped again (created -> null). */
        bd_error_setg(errp, "Block node is read-only");
        if (frozen) {
            bd_dirty_bitmap_reclaim(p->bitmap);
        }
        job_early_fail(&bj->job);
        return NULL;
    }
    block_copy_set_compress(bcs, p->compress);
    block_copy_set_discard_source(bcs, p->discard_source);

    /* What to copy, fixed before the filter sees the first guest write. */
    if (p->sync == BACKUP_SYNC_BITMAP) {
        struct bd_dirty_bitmap *bm = p->bitmap;
        int64_t off;

        block_copy_reset_all(bcs);
        for (off = bd_dirty_bitmap_next_dirty(bm, 0); off >= 0;
             off = bd_dirty_bitmap_next_dirty(bm, off +
                                              (int64_t)bm->granularity)) {
            block_copy_set_dirty(bcs, off, (int64_t)bm->granularity);
        }
    }
    block_copy_set_progress(bcs, backup_progress, bj);
    job_progress_set_total(&bj->job, block_copy_dirty_bytes(bcs));

    bd_drained_begin(p->source);
    if (bd_replace_node(p->source, cbw, &err) < 0) {
        bd_drained_end(p->source);
        /* Leave through the job's abort path: the bitmap is reclaimed
         * and the filter dropped by the hooks. */
        bj->filter_removed = true;
        bd_replace_node(cbw, p->source, NULL);
        job_user_cancel(&bj->job, true, NULL);
        bd_error_propagate(errp, err);
        return NULL;
    }
    bd_drained_end(p->source);
    return &bj->job;

fail:
    if (cbw) {
        bd_unref(cbw);
    }
    if (frozen) {
        bd_dirty_bitmap_reclaim(p->bitmap);
    }
    return NULL;
}
