/*
 * jobs/mirror.c - the mirror job (contract in jobs/mirror.h; behaviour in
 * specs/jobs.md §4).
 *
 * Threads and locks:
 *  - the body (mirror_run) scans the dirty bitmap, hands copy operations
 *    to a pool of worker threads and decides about READY and the end;
 *  - workers read the source and write the target, one operation each;
 *  - guest writes reach mirror_top_write() on their own threads.
 * s->lock protects the operation lists, the counters, ret, copy_mode and
 * actively_synced, and every progress update (job.c lets job drivers
 * update progress without its lock). The manager lock is never taken while
 * s->lock is held: verbs hold the manager lock and call our hooks, which
 * take s->lock (order: manager, then s->lock).
 *
 * Ordering on the target: no two operations (copies or synchronous guest
 * writes) on overlapping granules are ever in flight together, so an older
 * copy can never land on the target after a newer one.
 *
 * Before the body returns it always takes a drained section on the source
 * and detaches from the filter, so the completion hooks (which run with the
 * manager lock held) never wait for a guest write that waits for that lock
 * (BLOCK_JOB_ERROR from a write-blocking write). The hooks end that drained
 * section after the graph change.
 */
#include "common/config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cutils.h"
#include "common/list.h"
#include "common/log.h"
#include "driver/blk-int.h"
#include "driver/block-int.h"
#include "driver/dirty-bitmap.h"
#include "driver/mirror-top.h"
#include "jobs/mirror.h"

const char *const mirror_sync_names[MIRROR_SYNC__MAX + 1] = {
    "top", "full", "none", "incremental", "bitmap", NULL,
};

const char *const mirror_copy_mode_names[MIRROR_COPY__MAX + 1] = {
    "background", "write-blocking", NULL,
};

#define MIRROR_MAX_OPS 16
#define MIRROR_CHUNK_MIN (1024 * 1024)

/* An operation in flight on the target: a copy or a synchronous guest
 * write, over whole granules [off, end). */
struct mirror_op {
    struct bd_list link;        /* in s->inflight */
    struct bd_list qlink;       /* in s->queue while waiting for a worker */
    int64_t off;
    int64_t end;
    bool active;                /* guest write (write-blocking) */
};

struct mirror_job {
    struct job job;             /* first: job.c's allocation contract */

    /* Set at start, immutable. */
    struct bd_graph *graph;
    struct bd_node *source;     /* referenced */
    struct bd_node *target;     /* referenced */
    struct bd_node *filter;     /* referenced until the filter is removed */
    struct bd_blk *target_blk;  /* our claim (permissions) on the target */
    struct bd_dirty_bitmap *bitmap; /* on the filter, not recording */
    char *replaces;
    enum mirror_sync_mode sync;
    uint64_t granularity;
    int64_t buf_size;
    int64_t chunk;
    int max_ops;
    bool unmap;
    bool target_is_zero;
    enum job_on_error on_source_error;
    enum job_on_error on_target_error;

    /* s->lock */
    pthread_mutex_t lock;
    pthread_cond_t cond;        /* body and active writers: op finished,
                                   guest write, kick */
    pthread_cond_t work_cond;   /* workers: queue non-empty or stopping */
    struct bd_list inflight;
    struct bd_list queue;
    int nops;                   /* copies in flight (queued or running) */
    int64_t bytes_in_flight;
    int ret;                    /* first error reported under `report` */
    bool kicked;
    bool stopping;
    enum mirror_copy_mode copy_mode;
    bool actively_synced;

    /* Body and hooks only (serialised by the job's life cycle). */
    bool ready;
    bool in_drain;              /* a drained section on source is held */
    bool detached;              /* the filter no longer calls us */
    bool filter_removed;
    int64_t cursor;
    pthread_t *workers;
    int nworkers;
    bool registered;
    struct bd_list reg_link;
};

/* Mirrors in use, for QEMU's op-blocker messages ("Node 'x' is busy",
 * "Need a root block node"). Process-wide because a node can only ever be
 * seen by jobs of its own graph; entries are keyed by node pointers. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct bd_list registry = BD_LIST_INIT(registry);

static void registry_add(struct mirror_job *s)
{
    pthread_mutex_lock(&registry_lock);
    bd_list_add_tail(&registry, &s->reg_link);
    s->registered = true;
    pthread_mutex_unlock(&registry_lock);
}

static void registry_del(struct mirror_job *s)
{
    pthread_mutex_lock(&registry_lock);
    if (s->registered) {
        bd_list_del(&s->reg_link);
        s->registered = false;
    }
    pthread_mutex_unlock(&registry_lock);
}

/* Is n used by a running mirror as filter or target (root check) or in any
 * role (busy check)? */
static bool registry_uses(struct bd_node *n, bool include_source)
{
    struct bd_list *pos;
    bool found = false;

    pthread_mutex_lock(&registry_lock);
    bd_list_for_each(pos, &registry) {
        struct mirror_job *s = BD_LIST_ENTRY(pos, struct mirror_job,
                                             reg_link);
        if (s->filter == n || s->target == n ||
            (include_source && s->source == n)) {
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&registry_lock);
    return found;
}

void mirror_opts_init(struct mirror_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->sync = MIRROR_SYNC_FULL;
    o->unmap = true;
    o->auto_finalize = true;
    o->auto_dismiss = true;
}

/* ------------------------------------------------------------------ */
/* Lookups                                                              */

struct bd_node *mirror_lookup_node(struct bd_graph *g, const char *name,
                                   struct bd_error **errp)
{
    struct bd_node *n = bd_graph_find_node(g, name);

    if (!n) {
        struct bd_blk *b = bd_blk_find(g, name);
        n = b ? bd_blk_node(b) : NULL;
    }
    if (!n) {
        bd_error_setg(errp, "Cannot find device='%s' nor node-name='%s'",
                      name, name);
    }
    return n;
}

struct bd_node *mirror_lookup_root(struct bd_graph *g, const char *name,
                                   struct bd_error **errp)
{
    struct bd_node *n = mirror_lookup_node(g, name, errp);
    struct bd_list *pos;
    bool root = true;

    if (!n) {
        return NULL;
    }
    bd_graph_lock(g);
    bd_list_for_each(pos, &n->parents) {
        struct bd_child *c = BD_LIST_ENTRY(pos, struct bd_child, node_link);
        if (c->parent) {
            root = false;
        }
    }
    bd_graph_unlock(g);
    if (!root || registry_uses(n, false)) {
        bd_error_setg(errp, "Need a root block node");
        return NULL;
    }
    return n;
}

/* ------------------------------------------------------------------ */
/* Helpers                                                              */

static void kick_locked(struct mirror_job *s)
{
    s->kicked = true;
    pthread_cond_broadcast(&s->cond);
}

static bool overlaps_locked(struct mirror_job *s, int64_t off, int64_t end)
{
    struct bd_list *pos;

    bd_list_for_each(pos, &s->inflight) {
        struct mirror_op *op = BD_LIST_ENTRY(pos, struct mirror_op, link);
        if (op->off < end && off < op->end) {
            return true;
        }
    }
    return false;
}

static enum job_error_action report_error(struct mirror_job *s, bool is_read,
                                          int ret)
{
    enum job_error_action a;

    a = job_error_action(&s->job, is_read ? s->on_source_error
                                          : s->on_target_error,
                         is_read, -ret);
    if (a == JOB_ERROR_ACTION_REPORT) {
        pthread_mutex_lock(&s->lock);
        if (s->ret == 0) {
            s->ret = ret;
        }
        kick_locked(s);
        pthread_mutex_unlock(&s->lock);
    }
    return a;
}

static int64_t align_down(int64_t v, uint64_t a)
{
    return v - (int64_t)((uint64_t)v % a);
}

static int64_t align_up(int64_t v, uint64_t a)
{
    return align_down(v + (int64_t)a - 1, a);
}

/* ------------------------------------------------------------------ */
/* Guest writes (the filter's owner callback)                           */

static int target_op(struct mirror_job *s, enum bd_mirror_top_op op,
                     int64_t off, int64_t bytes, struct bd_qiov *qiov,
                     int flags)
{
    switch (op) {
    case BD_MT_WRITE:
        return bd_node_pwritev(s->target, off, bytes, qiov,
                               flags & BD_REQ_FUA);
    case BD_MT_ZEROES:
        return bd_node_pwrite_zeroes(s->target, off, bytes,
                                     flags & (BD_REQ_FUA | BD_REQ_MAY_UNMAP));
    case BD_MT_DISCARD:
    default:
        return bd_node_pdiscard(s->target, off, bytes);
    }
}

static int mirror_guest_write(void *opaque, struct bd_node *filter,
                              enum bd_mirror_top_op op, int64_t off,
                              int64_t bytes, struct bd_qiov *qiov, int flags)
{
    struct mirror_job *s = opaque;
    struct mirror_op act;
    int64_t inner_off;
    int64_t inner_end;
    int ret;
    int tret;

    pthread_mutex_lock(&s->lock);
    if (s->copy_mode == MIRROR_COPY_BACKGROUND) {
        pthread_mutex_unlock(&s->lock);
        ret = bd_mirror_top_forward(filter, op, off, bytes, qiov, flags);
        /* Dirty even on failure: part of the range may have changed. */
        pthread_mutex_lock(&s->lock);
        bd_dirty_bitmap_set(s->bitmap, off, bytes);
        s->actively_synced = false;
        kick_locked(s);
        pthread_mutex_unlock(&s->lock);
        return ret;
    }

    /* Write-blocking: serialise against every overlapping operation so the
     * target sees the same order as the source. */
    act.off = align_down(off, s->granularity);
    act.end = align_up(off + bytes, s->granularity);
    act.active = true;
    while (overlaps_locked(s, act.off, act.end)) {
        pthread_cond_wait(&s->cond, &s->lock);
    }
    bd_list_add_tail(&s->inflight, &act.link);
    pthread_mutex_unlock(&s->lock);

    ret = bd_mirror_top_forward(filter, op, off, bytes, qiov, flags);
    pthread_mutex_lock(&s->lock);
    if (ret < 0) {
        bd_dirty_bitmap_set(s->bitmap, off, bytes);
        s->actively_synced = false;
        goto out_locked;
    }
    /* Granules the write covers completely are now copied by it; partly
     * covered ones keep whatever dirtiness they had. */
    inner_off = align_up(off, s->granularity);
    inner_end = align_down(off + bytes, s->granularity);
    if (inner_end > inner_off) {
        bd_dirty_bitmap_reset(s->bitmap, inner_off, inner_end - inner_off);
    }
    job_progress_increase_remaining(&s->job, bytes);
    pthread_mutex_unlock(&s->lock);

    tret = target_op(s, op, off, bytes, qiov, flags);
    if (tret < 0) {
        pthread_mutex_lock(&s->lock);
        bd_dirty_bitmap_set(s->bitmap, off, bytes);
        s->actively_synced = false;
        pthread_mutex_unlock(&s->lock);
        /* The guest gets the source's result; the target error goes
         * through on-target-error like a copy error. */
        report_error(s, false, tret);
        pthread_mutex_lock(&s->lock);
    } else {
        pthread_mutex_lock(&s->lock);
        job_progress_update(&s->job, bytes);
    }
out_locked:
    bd_list_del(&act.link);
    kick_locked(s);
    pthread_mutex_unlock(&s->lock);
    return ret;
}

/* ------------------------------------------------------------------ */
/* Copy workers                                                         */

/* Copy [off, end) source -> target. *is_read tells which side failed. */
static int mirror_copy(struct mirror_job *s, int64_t off, int64_t bytes,
                       void *buf, bool *is_read)
{
    struct bd_qiov q;
    int64_t pnum = 0;
    int st;
    int ret;

    st = bd_node_block_status(s->source, off, bytes, &pnum, NULL, NULL);
    if (st >= 0 && (st & BD_BLOCK_ZERO) && pnum >= bytes) {
        *is_read = false;
        return bd_node_pwrite_zeroes(s->target, off, bytes,
                                     s->unmap ? BD_REQ_MAY_UNMAP : 0);
    }
    bd_qiov_init_buf(&q, buf, (size_t)bytes);
    ret = bd_node_preadv(s->source, off, bytes, &q, 0);
    if (ret < 0) {
        *is_read = true;
        return ret;
    }
    *is_read = false;
    return bd_node_pwritev(s->target, off, bytes, &q, 0);
}

static void *mirror_worker(void *opaque)
{
    struct mirror_job *s = opaque;
    void *buf = bd_memalign(4096, (size_t)s->chunk);

    pthread_mutex_lock(&s->lock);
    for (;;) {
        struct mirror_op *op = NULL;
        int64_t bytes;
        bool is_read = false;
        int ret;

        while (bd_list_empty(&s->queue) && !s->stopping) {
            pthread_cond_wait(&s->work_cond, &s->lock);
        }
        if (bd_list_empty(&s->queue)) {
            break;
        }
        op = BD_LIST_ENTRY(s->queue.next, struct mirror_op, qlink);
        bd_list_del(&op->qlink);
        pthread_mutex_unlock(&s->lock);

        bytes = op->end - op->off;
        ret = mirror_copy(s, op->off, bytes, buf, &is_read);
        if (ret < 0) {
            /* The failed bytes move from "in flight" back to "dirty" in
             * one step, as in QEMU, where nothing runs between the two:
             * the main loop computing the remaining work in between would
             * count them twice (a total of 5 of 4 MiB). The op stays in
             * the in-flight list, so they are not issued again before the
             * error policy has spoken. */
            pthread_mutex_lock(&s->lock);
            bd_dirty_bitmap_set(s->bitmap, op->off, bytes);
            s->bytes_in_flight -= bytes;
            s->actively_synced = false;
            pthread_mutex_unlock(&s->lock);
            report_error(s, is_read, ret);
        }

        pthread_mutex_lock(&s->lock);
        if (ret == 0) {
            job_progress_update(&s->job, bytes);
            s->bytes_in_flight -= bytes;
        }
        bd_list_del(&op->link);
        s->nops--;
        free(op);
        kick_locked(s);
    }
    pthread_mutex_unlock(&s->lock);
    free(buf);
    return NULL;
}

static void start_workers(struct mirror_job *s)
{
    int i;

    s->workers = bd_malloc0(sizeof(pthread_t) * (size_t)s->max_ops);
    for (i = 0; i < s->max_ops; i++) {
        if (pthread_create(&s->workers[i], NULL, mirror_worker, s) != 0) {
            break;
        }
    }
    s->nworkers = i;
}

static void stop_workers(struct mirror_job *s)
{
    int i;

    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    pthread_cond_broadcast(&s->work_cond);
    pthread_mutex_unlock(&s->lock);
    for (i = 0; i < s->nworkers; i++) {
        pthread_join(s->workers[i], NULL);
    }
    free(s->workers);
    s->workers = NULL;
    s->nworkers = 0;
}

/*
 * Queue one copy of the next dirty run that no operation in flight
 * touches. Returns its size, 0 when nothing can be issued now. Lock held.
 */
static int64_t issue_one_locked(struct mirror_job *s, int64_t len)
{
    int64_t gran = (int64_t)s->granularity;
    int64_t off;
    int64_t end;
    bool wrapped = false;
    struct mirror_op *op = NULL;

    if (s->nops >= s->max_ops || s->bytes_in_flight >= s->buf_size ||
        s->nworkers == 0) {
        return 0;
    }
    off = s->cursor;
    for (;;) {
        int64_t next = bd_dirty_bitmap_next_dirty(s->bitmap, off);

        /* One pass from the cursor to the end, then one from 0 back up
         * to the cursor. */
        if (next < 0 || (wrapped && next >= s->cursor)) {
            if (wrapped) {
                return 0;
            }
            wrapped = true;
            off = 0;
            continue;
        }
        off = align_down(next, s->granularity);
        if (!overlaps_locked(s, off, off + gran)) {
            break;
        }
        off += gran;
        if (off >= len) {
            if (wrapped) {
                return 0;
            }
            wrapped = true;
            off = 0;
        }
    }
    end = off + gran;
    while (end < len && end - off < s->chunk &&
           bd_dirty_bitmap_get(s->bitmap, end) &&
           !overlaps_locked(s, end, end + gran)) {
        end += gran;
    }
    end = BD_MIN(end, len);
    bd_dirty_bitmap_reset(s->bitmap, off, end - off);
    op = bd_malloc0(sizeof(*op));
    op->off = off;
    op->end = end;
    bd_list_add_tail(&s->inflight, &op->link);
    bd_list_add_tail(&s->queue, &op->qlink);
    s->nops++;
    s->bytes_in_flight += end - off;
    s->cursor = end >= len ? 0 : end;
    pthread_cond_signal(&s->work_cond);
    return end - off;
}

/*
 * Queue every copy that can be issued now, in one go under the lock, as
 * QEMU's mirror_iteration issues a whole dirty run before any of it can
 * complete: no worker takes an operation before the burst is queued, so
 * an early failure cannot stop the burst halfway and the progress at a
 * reported error does not depend on thread timing.
 */
static int64_t issue_burst(struct mirror_job *s, int64_t len)
{
    int64_t total = 0;
    int64_t n;

    pthread_mutex_lock(&s->lock);
    while ((n = issue_one_locked(s, len)) > 0) {
        total += n;
    }
    pthread_mutex_unlock(&s->lock);
    return total;
}

/* ------------------------------------------------------------------ */
/* The body                                                             */

/* Initial dirty set (specs/jobs.md §4.2). */
static int dirty_init(struct mirror_job *s, int64_t len)
{
    struct bd_node *base = NULL;
    int64_t off = 0;

    if (s->sync == MIRROR_SYNC_NONE) {
        return 0;
    }
    if (s->sync == MIRROR_SYNC_TOP) {
        base = bd_node_backing(bd_skip_filters(s->source));
    }
    if (!base && !s->target_is_zero) {
        bd_dirty_bitmap_set(s->bitmap, 0, len);
        return 0;
    }
    while (off < len) {
        int64_t pnum = 0;
        int r = bd_is_allocated_above(s->source, base, off, len - off, &pnum);

        if (r < 0) {
            return r;
        }
        if (pnum <= 0) {
            pnum = len - off;
            r = 1;
        }
        if (r) {
            bd_dirty_bitmap_set(s->bitmap, off, pnum);
        }
        off += pnum;
        if (job_is_cancelled(&s->job)) {
            return -ECANCELED;
        }
    }
    return 0;
}

static bool pause_requested(struct mirror_job *s)
{
    bool r;

    job_lock(s->job.mgr);
    r = s->job.pause_count > 0;
    job_unlock(s->job.mgr);
    return r;
}

/* job-complete, or a soft cancel (accepted only once READY). */
static bool should_finish(struct mirror_job *s)
{
    bool r;

    job_lock(s->job.mgr);
    r = s->job.deferred_complete ||
        (s->job.cancelled && !s->job.force_cancel);
    job_unlock(s->job.mgr);
    return r;
}

static void wait_ops_done(struct mirror_job *s)
{
    pthread_mutex_lock(&s->lock);
    while (s->nops > 0) {
        pthread_cond_wait(&s->cond, &s->lock);
    }
    pthread_mutex_unlock(&s->lock);
}

/* Sleep until something happened (op finished, guest write, kick), at
 * most 100 ms so that speed and pause changes are seen. */
static void wait_event(struct mirror_job *s)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 100 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    /* Idle as far as queries go (QEMU: the coroutine sleeps). */
    job_lock(s->job.mgr);
    s->job.busy = false;
    job_unlock(s->job.mgr);
    pthread_mutex_lock(&s->lock);
    if (!s->kicked) {
        pthread_cond_timedwait(&s->cond, &s->lock, &ts);
    }
    s->kicked = false;
    pthread_mutex_unlock(&s->lock);
    job_lock(s->job.mgr);
    s->job.busy = true;
    job_unlock(s->job.mgr);
}

static int mirror_run(struct job *job)
{
    struct mirror_job *s = (struct mirror_job *)job;
    int64_t len = bd_getlength(s->source);
    int64_t tlen = bd_getlength(s->target);
    int ret = 0;

    if (len < 0) {
        ret = (int)len;
        goto out;
    }
    if (tlen != len) {
        job_set_error(job, "Source and target image have different sizes");
        ret = -EINVAL;
        goto out;
    }
    ret = dirty_init(s, len);
    if (ret < 0) {
        goto out;
    }
    start_workers(s);

    for (;;) {
        uint64_t cnt;
        bool idle;

        if (pause_requested(s)) {
            /* Park only once our I/O is done (a stop error may have
             * several requests failing at once). */
            wait_ops_done(s);
            job_pause_point(job);
        }
        if (job_is_cancelled(job)) {
            ret = -ECANCELED;
            break;
        }
        pthread_mutex_lock(&s->lock);
        if (s->ret < 0) {
            ret = s->ret;
            pthread_mutex_unlock(&s->lock);
            break;
        }
        cnt = bd_dirty_bitmap_count(s->bitmap);
        job_progress_set_remaining(job, s->bytes_in_flight + (int64_t)cnt);
        pthread_mutex_unlock(&s->lock);

        if (cnt > 0) {
            int64_t n = issue_burst(s, len);

            if (n > 0) {
                job_rate_limit(job, n);
                continue;
            }
        }

        pthread_mutex_lock(&s->lock);
        idle = s->nops == 0 && bd_dirty_bitmap_count(s->bitmap) == 0;
        pthread_mutex_unlock(&s->lock);
        if (idle && !s->ready) {
            ret = bd_node_flush(s->target);
            if (ret < 0) {
                if (report_error(s, false, ret) == JOB_ERROR_ACTION_REPORT) {
                    break;
                }
                ret = 0;
                continue;
            }
            job_transition_to_ready(job);
            s->ready = true;
        }
        if (idle) {
            pthread_mutex_lock(&s->lock);
            if (s->copy_mode == MIRROR_COPY_WRITE_BLOCKING) {
                s->actively_synced = true;
            }
            pthread_mutex_unlock(&s->lock);
            if (should_finish(s)) {
                /* Converge with the guest held off; stay drained until
                 * the completion hooks changed the graph. */
                bd_drained_begin(s->source);
                pthread_mutex_lock(&s->lock);
                idle = s->nops == 0 && bd_list_empty(&s->inflight) &&
                       bd_dirty_bitmap_count(s->bitmap) == 0;
                pthread_mutex_unlock(&s->lock);
                if (idle) {
                    ret = bd_node_flush(s->target);
                    if (ret == 0) {
                        s->in_drain = true;
                        break;
                    }
                    bd_drained_end(s->source);
                    if (report_error(s, false, ret) ==
                        JOB_ERROR_ACTION_REPORT) {
                        break;
                    }
                    ret = 0;
                    continue;
                }
                bd_drained_end(s->source);
                continue;
            }
        }
        wait_event(s);
    }

out:
    stop_workers(s);
    if (!s->in_drain) {
        bd_drained_begin(s->source);
        s->in_drain = true;
    }
    /* Here, not in the completion hooks: they run under the job lock,
     * which a guest write reporting an error takes inside the filter's
     * owner lock. */
    bd_mirror_top_set_owner(s->filter, NULL, NULL);
    s->detached = true;
    return ret;
}

/* ------------------------------------------------------------------ */
/* Leaving the graph                                                    */

/*
 * Remove the filter; with pivot, first make the target replace the source
 * (or `replaces`) for every parent. Ends the drained section the body (or
 * we) took. Returns 0 or -errno with the job's error message set.
 */
static int mirror_exit_graph(struct mirror_job *s, bool pivot)
{
    struct bd_node *to_replace = s->source;
    struct bd_error *err = NULL;
    int ret = 0;

    if (s->filter_removed) {
        return 0;
    }
    if (!s->in_drain) {
        bd_drained_begin(s->source);
        s->in_drain = true;
    }
    if (!s->detached) {
        bd_mirror_top_set_owner(s->filter, NULL, NULL);
        s->detached = true;
    }
    if (pivot && s->replaces) {
        to_replace = bd_graph_find_node(s->graph, s->replaces);
        if (!to_replace) {
            char *msg = bd_strdup_printf("Node name '%s' not found",
                                         s->replaces);
            job_set_error(&s->job, msg);
            free(msg);
            pivot = false;
            ret = -ENOENT;
            to_replace = s->source;
        }
    }
    /* Drain what ends up on top before the edges move, then release the
     * body's section: every node above stays quiesced throughout, and each
     * begin is paired with an end over the same ancestors. */
    bd_drained_begin(to_replace);
    bd_drained_begin(s->target);
    bd_drained_end(s->source);
    s->in_drain = false;
    if (s->target_blk) {
        /* Let the parents that move onto the target write it. */
        bd_blk_set_perm(s->target_blk, 0, BD_PERM_ALL, NULL);
    }

    if (pivot) {
        if (to_replace == s->source) {
            ret = bd_replace_node(s->filter, s->target, &err);
        } else {
            ret = bd_replace_node(to_replace, s->target, &err);
            if (ret == 0) {
                bd_replace_node(s->filter, s->source, NULL);
            }
        }
        if (ret < 0) {
            job_set_error(&s->job, bd_error_msg(err));
            bd_error_free(err);
            bd_replace_node(s->filter, s->source, NULL);
        }
    } else {
        bd_replace_node(s->filter, s->source, NULL);
    }
    bd_drained_end(s->target);
    bd_drained_end(to_replace);

    bd_dirty_bitmap_release(s->bitmap);
    s->bitmap = NULL;
    bd_unref(s->filter);
    s->filter = NULL;
    bd_blk_free(s->target_blk);
    s->target_blk = NULL;
    s->filter_removed = true;
    registry_del(s);
    return ret;
}

/* ------------------------------------------------------------------ */
/* Job driver hooks                                                     */

static int mirror_prepare(struct job *job)
{
    struct mirror_job *s = (struct mirror_job *)job;

    /* A soft cancel converged like a completion but keeps the source. */
    return mirror_exit_graph(s, !job->cancelled);
}

static void mirror_abort(struct job *job)
{
    mirror_exit_graph((struct mirror_job *)job, false);
}

static void mirror_complete(struct job *job, struct bd_error **errp)
{
    struct mirror_job *s = (struct mirror_job *)job;

    if (s->replaces && !bd_graph_find_node(s->graph, s->replaces)) {
        bd_error_setg(errp, "Node name '%s' not found", s->replaces);
    }
}

static bool mirror_cancel(struct job *job, bool force)
{
    struct mirror_job *s = (struct mirror_job *)job;

    pthread_mutex_lock(&s->lock);
    kick_locked(s);
    pthread_mutex_unlock(&s->lock);
    return !force && (job->status == JOB_STATUS_READY ||
                      job->status == JOB_STATUS_STANDBY);
}

static void mirror_kick(struct job *job)
{
    struct mirror_job *s = (struct mirror_job *)job;

    pthread_mutex_lock(&s->lock);
    kick_locked(s);
    pthread_mutex_unlock(&s->lock);
}

int mirror_change_copy_mode(struct job *job, enum mirror_copy_mode mode,
                            struct bd_error **errp)
{
    struct mirror_job *s = (struct mirror_job *)job;
    int ret = 0;

    pthread_mutex_lock(&s->lock);
    if (mode == s->copy_mode) {
        ret = 0;
    } else if (s->copy_mode == MIRROR_COPY_BACKGROUND &&
               mode == MIRROR_COPY_WRITE_BLOCKING) {
        s->copy_mode = mode;
        kick_locked(s);
    } else {
        bd_error_setg(errp, "Change to copy mode '%s' is not implemented",
                      mirror_copy_mode_names[mode]);
        ret = -ENOTSUP;
    }
    pthread_mutex_unlock(&s->lock);
    return ret;
}

static int mirror_change(struct job *job, json_t *opts,
                         struct bd_error **errp)
{
    const char *mode = json_string_value(json_object_get(opts, "copy-mode"));
    int i;

    if (!mode) {
        bd_error_setg(errp, "Parameter 'copy-mode' is missing");
        return -EINVAL;
    }
    for (i = 0; i < MIRROR_COPY__MAX; i++) {
        if (!strcmp(mode, mirror_copy_mode_names[i])) {
            return mirror_change_copy_mode(job, (enum mirror_copy_mode)i,
                                           errp);
        }
    }
    bd_error_setg(errp, "Parameter 'copy-mode' does not accept value '%s'",
                  mode);
    return -EINVAL;
}

static void mirror_query(struct job *job, json_t *info)
{
    struct mirror_job *s = (struct mirror_job *)job;
    bool synced;

    pthread_mutex_lock(&s->lock);
    synced = s->actively_synced;
    pthread_mutex_unlock(&s->lock);
    json_object_set_new(info, "actively-synced", json_boolean(synced));
}

/* Ready with nothing to copy: the body only polls for a verb or a guest
 * write (mirror_run's wait_event). A pause, a cancel or a complete
 * request, an error to report or an operation in flight mean work. */
static bool mirror_idle(struct job *job)
{
    struct mirror_job *s = (struct mirror_job *)job;
    bool idle;

    if (job->status != JOB_STATUS_READY || job->pause_count > 0 ||
        job->cancelled || job->deferred_complete) {
        return false;
    }
    pthread_mutex_lock(&s->lock);
    idle = s->ret == 0 && s->nops == 0 && bd_list_empty(&s->inflight) &&
           bd_list_empty(&s->queue) && bd_dirty_bitmap_count(s->bitmap) == 0;
    pthread_mutex_unlock(&s->lock);
    return idle;
}

static void mirror_free(struct job *job)
{
    struct mirror_job *s = (struct mirror_job *)job;

    /* A job that never ran still has its filter in the graph. */
    mirror_exit_graph(s, false);
    registry_del(s);
    bd_unref(s->source);
    bd_unref(s->target);
    free(s->replaces);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    pthread_cond_destroy(&s->work_cond);
    free(s);
}

static const struct job_driver mirror_driver = {
    .type = JOB_TYPE_MIRROR,
    .run = mirror_run,
    .prepare = mirror_prepare,
    .abort = mirror_abort,
    .complete = mirror_complete,
    .cancel = mirror_cancel,
    .kick = mirror_kick,
    .idle = mirror_idle,
    .change = mirror_change,
    .query = mirror_query,
    .free = mirror_free,
};

/* ------------------------------------------------------------------ */
/* Start                                                                */

/* Can `to_replace` be swapped for a copy of `source`? Only when reads of
 * one are reads of the other: source itself or a node below it reached
 * through filters. */
static bool can_replace(struct bd_node *source, struct bd_node *to_replace)
{
    struct bd_node *n = source;

    while (n) {
        if (n == to_replace) {
            return true;
        }
        n = bd_node_is_filter(n) ? bd_node_filtered(n) : NULL;
    }
    return false;
}

static uint64_t default_granularity(struct bd_node *target)
{
    struct bd_node_info info;
    uint64_t g = 65536;

    if (bd_get_info(target, &info) >= 0 && info.cluster_size > 0) {
        g = (uint64_t)BD_MAX(4096, info.cluster_size);
        g = BD_MIN(g, 65536);
    }
    json_decref(info.format_specific);
    return g;
}

static int validate(const struct mirror_opts *o, struct bd_error **errp)
{
    if (registry_uses(o->target, true)) {
        bd_error_setg(errp, "Node '%s' is busy: block device is in use by "
                      "block job: mirror", bd_node_name(o->target));
        return -EBUSY;
    }
    if (o->granularity != 0 &&
        (o->granularity < MIRROR_GRANULARITY_MIN ||
         o->granularity > MIRROR_GRANULARITY_MAX)) {
        bd_error_setg(errp, "Parameter 'granularity' expects a value in "
                      "range [512B, 64MB]");
        return -EINVAL;
    }
    if (o->granularity & (o->granularity - 1)) {
        bd_error_setg(errp, "Parameter 'granularity' expects a power of 2");
        return -EINVAL;
    }
    if (o->replaces) {
        struct bd_node *r = bd_graph_find_node(bd_node_graph(o->source),
                                               o->replaces);
        if (!r) {
            bd_error_setg(errp, "Failed to find node with node-name='%s'",
                          o->replaces);
            return -ENOENT;
        }
        if (!can_replace(o->source, r)) {
            bd_error_setg(errp, "Cannot replace '%s' by a node mirrored from "
                          "'%s', because it cannot be guaranteed that doing "
                          "so would not lead to an abrupt change of visible "
                          "data", o->replaces, bd_node_name(o->source));
            return -EINVAL;
        }
        if (bd_getlength(r) != bd_getlength(o->target)) {
            bd_error_setg(errp, "cannot replace image with a mirror image of "
                          "different size");
            return -EINVAL;
        }
    }
    if (o->sync == MIRROR_SYNC_INCREMENTAL || o->sync == MIRROR_SYNC_BITMAP) {
        bd_error_setg(errp, "Sync mode '%s' not supported",
                      mirror_sync_names[o->sync]);
        return -EINVAL;
    }
    if (o->buf_size < 0) {
        bd_error_setg(errp, "Invalid parameter 'buf-size'");
        return -EINVAL;
    }
    if (bd_skip_filters(o->source) == bd_skip_filters(o->target)) {
        bd_error_setg(errp, "Can't mirror node into itself");
        return -EINVAL;
    }
    return 0;
}

/* Open the filter over the source and move the source's parents onto it. */
static struct bd_node *insert_filter(struct mirror_job *s,
                                     const char *node_name,
                                     struct bd_error **errp)
{
    json_t *opts = json_pack("{s:s, s:s}", "driver", BD_MIRROR_TOP_DRIVER,
                             "file", bd_node_name(s->source));
    struct bd_node *f = NULL;
    int ret;

    if (node_name) {
        json_object_set_new(opts, "node-name", json_string(node_name));
    }
    f = bd_open(s->graph, NULL, opts,
                BD_O_RDWR | (bd_node_open_flags(s->source) & BD_O_UNMAP),
                errp);
    if (!f) {
        return NULL;
    }
    s->bitmap = bd_dirty_bitmap_create(f, s->granularity, NULL, errp);
    if (!s->bitmap) {
        bd_unref(f);
        return NULL;
    }
    /* The filter marks it itself (write-blocking writes must not). */
    s->bitmap->enabled = false;
    s->filter = f;
    bd_mirror_top_set_owner(f, mirror_guest_write, s);
    bd_drained_begin(s->source);
    ret = bd_replace_node(s->source, f, errp);
    bd_drained_end(s->source);
    if (ret < 0) {
        bd_drained_begin(s->source);
        bd_replace_node(f, s->source, NULL);
        bd_drained_end(s->source);
        bd_mirror_top_set_owner(f, NULL, NULL);
        bd_dirty_bitmap_release(s->bitmap);
        s->bitmap = NULL;
        s->filter = NULL;
        bd_unref(f);
        return NULL;
    }
    return f;
}

struct job *mirror_start(struct job_manager *m, const struct mirror_opts *o,
                         struct bd_error **errp)
{
    struct mirror_job *s = NULL;
    int64_t buf_size = o->buf_size;

    if (validate(o, errp) < 0) {
        return NULL;
    }
    s = bd_malloc0(sizeof(*s));
    s->graph = job_manager_graph(m);
    s->source = o->source;
    s->target = o->target;
    bd_ref(s->source);
    bd_ref(s->target);
    s->replaces = bd_strdup(o->replaces);
    s->sync = o->sync;
    s->granularity = o->granularity ? o->granularity
                                    : default_granularity(o->target);
    if (buf_size == 0) {
        buf_size = MIRROR_DEFAULT_BUF_SIZE;
    }
    s->buf_size = align_up(buf_size, s->granularity);
    s->chunk = align_up(BD_MAX(s->buf_size / MIRROR_MAX_OPS,
                               BD_MIN((int64_t)MIRROR_CHUNK_MIN, s->buf_size)),
                        s->granularity);
    s->max_ops = (int)BD_MAX(1, BD_MIN((int64_t)MIRROR_MAX_OPS,
                                       s->buf_size / s->chunk));
    s->unmap = o->unmap;
    s->target_is_zero = o->target_is_zero;
    s->copy_mode = o->copy_mode;
    s->on_source_error = o->on_source_error;
    s->on_target_error = o->on_target_error;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    pthread_cond_init(&s->work_cond, NULL);
    bd_list_init(&s->inflight);
    bd_list_init(&s->queue);
    bd_list_init(&s->reg_link);

    if (!insert_filter(s, o->filter_node_name, errp)) {
        s->filter_removed = true;
        goto fail_free;
    }
    registry_add(s);
    if (job_create(m, &s->job, &mirror_driver, o->job_id ? o->job_id : "",
                   NULL, 0, o->auto_finalize, o->auto_dismiss, errp) < 0) {
        goto fail_free;
    }
    s->job.on_source_error = o->on_source_error;
    s->job.on_target_error = o->on_target_error;
    /* QEMU checks these once the job exists: its events show created and
     * null around the failure. */
    if (o->speed != 0 && job_set_speed(&s->job, o->speed, errp) < 0) {
        job_early_fail(&s->job);
        return NULL;
    }
    s->target_blk = bd_blk_new(s->graph, NULL,
                               BD_PERM_WRITE | BD_PERM_RESIZE,
                               BD_PERM_WRITE_UNCHANGED);
    if (bd_blk_insert(s->target_blk, s->target, errp) < 0) {
        job_early_fail(&s->job);
        return NULL;
    }
    /* Until the body scanned the source, the whole of it is the work
     * ahead (sync=top narrows it down to the top layer's allocation). */
    if (s->sync != MIRROR_SYNC_NONE) {
        int64_t len = bd_getlength(s->source);

        /* A size mismatch fails at once with len 0, as in QEMU. */
        if (len > 0 && len == bd_getlength(s->target)) {
            job_progress_set_total(&s->job, len);
        }
    }
    job_start(&s->job);
    return &s->job;

fail_free:
    /* Not registered with the manager: undo by hand. */
    mirror_exit_graph(s, false);
    registry_del(s);
    bd_unref(s->source);
    bd_unref(s->target);
    free(s->replaces);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    pthread_cond_destroy(&s->work_cond);
    free(s);
    return NULL;
}
