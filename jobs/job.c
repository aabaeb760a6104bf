/*
 * jobs/job.c - the generic job state machine, verbs, transactions and
 * block-job events (specs/jobs.md §1-§2).
 *
 * One recursive manager lock serialises every state change, verb and
 * event. Bodies run on their own threads and take the lock only briefly
 * (pause points, progress events, errors), never across I/O, so a drain
 * started with the lock held never waits for a thread that waits for it.
 */
#include "common/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cutils.h"
#include "common/log.h"
#include "driver/block.h"
#include "injector/trace.h"
#include "jobs/job.h"

struct job_txn {
    struct job_manager *mgr;
    struct bd_list jobs;            /* struct job.txn_link, creation order */
    int refcnt;                     /* (lock) creator + one per job */
    bool aborting;
    struct job *abort_origin;       /* the job whose failure aborts all */
};

struct job_manager {
    struct bd_graph *graph;
    pthread_mutex_t lock;           /* recursive */
    pthread_cond_t idle_cond;       /* broadcast on every status change */
    struct bd_list jobs;            /* every registered job */
    /* Threads of freed jobs, joined later (a job can be freed by its own
     * thread when it auto-dismisses). */
    pthread_t *zombies;
    size_t nzombies;
    size_t zcap;
};

const char *const job_status_names[JOB_STATUS__MAX + 1] = {
    "undefined", "created", "running", "paused", "ready", "standby",
    "waiting", "pending", "aborting", "concluded", "null", NULL,
};

const char *const job_verb_names[JOB_VERB__MAX + 1] = {
    "cancel", "pause", "resume", "set-speed", "complete", "finalize",
    "dismiss", "change", NULL,
};

const char *const job_type_names[JOB_TYPE__MAX + 1] = {
    "commit", "stream", "mirror", "backup", "create", "amend",
    "snapshot-load", "snapshot-save", "snapshot-delete", NULL,
};

const char *const job_on_error_names[JOB_ON_ERROR__MAX + 1] = {
    "report", "ignore", "enospc", "stop", "auto", NULL,
};

/* transitions[from][to] (specs/jobs.md §1.2). */
static const bool transitions[JOB_STATUS__MAX][JOB_STATUS__MAX] = {
    [JOB_STATUS_UNDEFINED] = { [JOB_STATUS_CREATED] = true },
    [JOB_STATUS_CREATED] = { [JOB_STATUS_RUNNING] = true,
                             [JOB_STATUS_ABORTING] = true,
                             [JOB_STATUS_NULL] = true },
    [JOB_STATUS_RUNNING] = { [JOB_STATUS_PAUSED] = true,
                             [JOB_STATUS_READY] = true,
                             [JOB_STATUS_WAITING] = true,
                             [JOB_STATUS_ABORTING] = true },
    [JOB_STATUS_PAUSED] = { [JOB_STATUS_RUNNING] = true },
    [JOB_STATUS_READY] = { [JOB_STATUS_STANDBY] = true,
                           [JOB_STATUS_WAITING] = true,
                           [JOB_STATUS_ABORTING] = true },
    [JOB_STATUS_STANDBY] = { [JOB_STATUS_READY] = true },
    [JOB_STATUS_WAITING] = { [JOB_STATUS_PENDING] = true,
                             [JOB_STATUS_ABORTING] = true },
    [JOB_STATUS_PENDING] = { [JOB_STATUS_ABORTING] = true,
                             [JOB_STATUS_CONCLUDED] = true },
    [JOB_STATUS_ABORTING] = { [JOB_STATUS_ABORTING] = true,
                              [JOB_STATUS_CONCLUDED] = true },
    [JOB_STATUS_CONCLUDED] = { [JOB_STATUS_NULL] = true },
};

/* verbs[verb][status] (specs/jobs.md §1.3). */
static const bool verbs[JOB_VERB__MAX][JOB_STATUS__MAX] = {
    [JOB_VERB_CANCEL] = { [JOB_STATUS_CREATED] = true,
                          [JOB_STATUS_RUNNING] = true,
                          [JOB_STATUS_PAUSED] = true,
                          [JOB_STATUS_READY] = true,
                          [JOB_STATUS_STANDBY] = true,
                          [JOB_STATUS_WAITING] = true,
                          [JOB_STATUS_PENDING] = true },
    [JOB_VERB_PAUSE] = { [JOB_STATUS_CREATED] = true,
                         [JOB_STATUS_RUNNING] = true,
                         [JOB_STATUS_PAUSED] = true,
                         [JOB_STATUS_READY] = true,
                         [JOB_STATUS_STANDBY] = true },
    [JOB_VERB_RESUME] = { [JOB_STATUS_CREATED] = true,
                          [JOB_STATUS_RUNNING] = true,
                          [JOB_STATUS_PAUSED] = true,
                          [JOB_STATUS_READY] = true,
                          [JOB_STATUS_STANDBY] = true },
    [JOB_VERB_SET_SPEED] = { [JOB_STATUS_CREATED] = true,
                             [JOB_STATUS_RUNNING] = true,
                             [JOB_STATUS_PAUSED] = true,
                             [JOB_STATUS_READY] = true,
                             [JOB_STATUS_STANDBY] = true },
    [JOB_VERB_COMPLETE] = { [JOB_STATUS_READY] = true,
                            [JOB_STATUS_STANDBY] = true },
    [JOB_VERB_FINALIZE] = { [JOB_STATUS_PENDING] = true },
    [JOB_VERB_DISMISS] = { [JOB_STATUS_CONCLUDED] = true },
    [JOB_VERB_CHANGE] = { [JOB_STATUS_CREATED] = true,
                          [JOB_STATUS_RUNNING] = true,
                          [JOB_STATUS_PAUSED] = true,
                          [JOB_STATUS_READY] = true,
                          [JOB_STATUS_STANDBY] = true },
};

static void job_txn_abort(struct job *job);
static void txn_try_pending(struct job_txn *txn);

/* ------------------------------------------------------------------ */
/* Manager                                                              */

struct job_manager *job_manager_new(struct bd_graph *g)
{
    struct job_manager *m = bd_malloc0(sizeof(*m));
    pthread_mutexattr_t attr;

    m->graph = g;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&m->lock, &attr);
    pthread_mutexattr_destroy(&attr);
    pthread_cond_init(&m->idle_cond, NULL);
    bd_list_init(&m->jobs);
    return m;
}

struct bd_graph *job_manager_graph(struct job_manager *m)
{
    return m->graph;
}

void job_lock(struct job_manager *m)
{
    pthread_mutex_lock(&m->lock);
}

void job_unlock(struct job_manager *m)
{
    pthread_mutex_unlock(&m->lock);
}

static void reap_zombies(struct job_manager *m)
{
    pthread_t *z = NULL;
    size_t n;
    size_t i;

    job_lock(m);
    z = m->zombies;
    n = m->nzombies;
    m->zombies = NULL;
    m->nzombies = 0;
    m->zcap = 0;
    job_unlock(m);
    for (i = 0; i < n; i++) {
        pthread_join(z[i], NULL);
    }
    free(z);
}

struct job *job_find(struct job_manager *m, const char *id)
{
    struct bd_list *pos;
    struct job *found = NULL;

    if (!id) {
        return NULL;
    }
    job_lock(m);
    bd_list_for_each(pos, &m->jobs) {
        struct job *j = BD_LIST_ENTRY(pos, struct job, link);
        if (j->id && !strcmp(j->id, id)) {
            found = j;
            break;
        }
    }
    job_unlock(m);
    return found;
}

static bool manager_idle(struct job_manager *m)
{
    struct bd_list *pos;

    bd_list_for_each(pos, &m->jobs) {
        struct job *j = BD_LIST_ENTRY(pos, struct job, link);
        if (j->status != JOB_STATUS_CONCLUDED) {
            return false;
        }
    }
    return true;
}

int job_manager_wait_idle(struct job_manager *m, int64_t timeout_ns)
{
    struct timespec ts;
    int ret = 0;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ns / 1000000000LL;
    ts.tv_nsec += timeout_ns % 1000000000LL;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    job_lock(m);
    while (!manager_idle(m) && ret == 0) {
        if (pthread_cond_timedwait(&m->idle_cond, &m->lock, &ts) ==
            ETIMEDOUT) {
            ret = -ETIMEDOUT;
        }
    }
    job_unlock(m);
    reap_zombies(m);
    return ret;
}

bool job_manager_can_progress(struct job_manager *m)
{
    struct bd_list *pos;
    bool r = false;

    job_lock(m);
    bd_list_for_each(pos, &m->jobs) {
        struct job *j = BD_LIST_ENTRY(pos, struct job, link);
        /* The condition job_pause_point's loop waits on, not just the
         * paused flag: a job resumed a moment ago is still flagged
         * paused until its thread runs. */
        bool parked = j->paused && j->pause_count > 0 &&
                      !(j->cancelled && j->force_cancel);

        if (j->started && !j->body_done && !parked &&
            !(j->drv->idle && j->drv->idle(j))) {
            r = true;
            break;
        }
    }
    job_unlock(m);
    return r;
}

/* ------------------------------------------------------------------ */
/* Events and transitions                                               */

static void emit(struct job *job, const char *name, json_t *data)
{
    if (!job->id) {
        json_decref(data);
        return;
    }
    bd_graph_emit_qevent(job->mgr->graph, name, data);
}

static void transition(struct job *job, enum job_status to)
{
    enum job_status from = job->status;

    assert(transitions[from][to]);
    job->status = to;
    if (from != to) {
        emit(job, "JOB_STATUS_CHANGE",
             json_pack("{s:s, s:s}", "id", job->id ? job->id : "",
                       "status", job_status_names[to]));
    }
    pthread_cond_broadcast(&job->mgr->idle_cond);
}

/* Pick up progress the driver counted outside the lock (lock held). */
static void refresh_progress(struct job *job)
{
    if (job->drv->progress) {
        job->progress_current = job->drv->progress(job);
    }
}

static json_t *block_job_event_data(struct job *job)
{
    refresh_progress(job);
    return json_pack("{s:s, s:s, s:I, s:I, s:I}",
                     "type", job_type_names[job->drv->type],
                     "device", job->id ? job->id : "",
                     "len", (json_int_t)job->progress_total,
                     "offset", (json_int_t)job->progress_current,
                     "speed", (json_int_t)job->speed);
}

static const char *job_error_text(struct job *job)
{
    if (job->error) {
        return job->error;
    }
    return bd_strerror(job->ret < 0 ? -job->ret : EIO);
}

/* ------------------------------------------------------------------ */
/* Creation and destruction                                             */

struct job_txn *job_txn_new(struct job_manager *m)
{
    struct job_txn *txn = bd_malloc0(sizeof(*txn));

    txn->mgr = m;
    txn->refcnt = 1;
    bd_list_init(&txn->jobs);
    return txn;
}

void job_txn_unref(struct job_txn *txn)
{
    if (!txn) {
        return;
    }
    job_lock(txn->mgr);
    if (--txn->refcnt == 0) {
        job_unlock(txn->mgr);
        free(txn);
        return;
    }
    job_unlock(txn->mgr);
}

bool job_id_wellformed(const char *id)
{
    return bd_id_wellformed(id, 0);
}

int job_create(struct job_manager *m, struct job *job,
               const struct job_driver *drv, const char *id,
               struct job_txn *txn, int64_t speed, bool auto_finalize,
               bool auto_dismiss, struct bd_error **errp)
{
    reap_zombies(m);
    if (id && !job_id_wellformed(id)) {
        bd_error_setg(errp, "Invalid job ID '%s'", id);
        return -EINVAL;
    }
    if (speed < 0) {
        bd_error_setg(errp, "Parameter 'speed' expects a non-negative value");
        return -EINVAL;
    }
    job_lock(m);
    if (id && job_find(m, id)) {
        job_unlock(m);
        bd_error_setg(errp, "Job ID '%s' already in use", id);
        return -EEXIST;
    }
    job->drv = drv;
    job->mgr = m;
    job->id = bd_strdup(id);
    job->auto_finalize = auto_finalize;
    job->auto_dismiss = auto_dismiss;
    job->speed = speed;
    job->pause_count = 1;       /* job_start releases it */
    job->busy = false;
    job->status = JOB_STATUS_UNDEFINED;
    pthread_cond_init(&job->cond, NULL);
    if (!txn) {
        txn = job_txn_new(m);
    } else {
        txn->refcnt++;
    }
    job->txn = txn;
    bd_list_add_tail(&txn->jobs, &job->txn_link);
    bd_list_add_tail(&m->jobs, &job->link);
    transition(job, JOB_STATUS_CREATED);
    job_unlock(m);
    return 0;
}

/* Remove a job that reached null and free it (lock held). */
static void job_free(struct job *job)
{
    struct job_manager *m = job->mgr;
    struct job_txn *txn = job->txn;

    bd_list_del(&job->link);
    bd_list_del(&job->txn_link);
    if (job->started) {
        if (m->nzombies == m->zcap) {
            m->zcap = m->zcap ? m->zcap * 2 : 8;
            m->zombies = bd_realloc(m->zombies, m->zcap * sizeof(pthread_t));
        }
        m->zombies[m->nzombies++] = job->thread;
    }
    if (--txn->refcnt == 0) {
        free(txn);
    }
    pthread_cond_destroy(&job->cond);
    free(job->id);
    free(job->error);
    if (job->drv->free) {
        job->drv->free(job);
    } else {
        free(job);
    }
    pthread_cond_broadcast(&m->idle_cond);
}

static void job_do_dismiss(struct job *job)
{
    struct bd_graph *g = job->mgr->graph;
    json_t *ev = NULL;

    /* The job lets go of its nodes (job_free) before the world hears it
     * is gone: a client that reacts to "null" with blockdev-del must find
     * the nodes free, as it does in QEMU, whose monitor cannot run between
     * the event and the job's release. */
    assert(transitions[job->status][JOB_STATUS_NULL]);
    if (job->id && job->status != JOB_STATUS_NULL) {
        ev = json_pack("{s:s, s:s}", "id", job->id, "status",
                       job_status_names[JOB_STATUS_NULL]);
    }
    job->status = JOB_STATUS_NULL;
    pthread_cond_broadcast(&job->mgr->idle_cond);
    job_free(job);
    if (ev) {
        bd_graph_emit_qevent(g, "JOB_STATUS_CHANGE", ev);
    }
}

static void job_conclude(struct job *job)
{
    transition(job, JOB_STATUS_CONCLUDED);
    if (job->auto_dismiss || !job->started) {
        job_do_dismiss(job);
    }
}

/* ------------------------------------------------------------------ */
/* The body's thread                                                    */

static void wake(struct job *job)
{
    pthread_cond_broadcast(&job->cond);
    if (job->drv->kick) {
        job->drv->kick(job);
    }
}

bool job_is_cancelled(struct job *job)
{
    bool r;

    job_lock(job->mgr);
    r = job->cancelled && job->force_cancel;
    job_unlock(job->mgr);
    return r;
}

static void job_completed(struct job *job)
{
    if (job->ret == 0 && job->cancelled && job->force_cancel) {
        job->ret = -ECANCELED;
    }
    if (job->ret < 0 || job->txn->aborting) {
        job_txn_abort(job);
    } else {
        transition(job, JOB_STATUS_WAITING);
        txn_try_pending(job->txn);
    }
}

static void *job_thread(void *opaque)
{
    struct job *job = opaque;
    struct job_manager *m = job->mgr;
    int ret;

    job_pause_point(job);
    ret = job->drv->run(job);
    job_lock(m);
    job->body_done = true;
    job->busy = false;
    if (job->ret == 0) {
        job->ret = ret;
    }
    job_completed(job);
    job_unlock(m);
    return NULL;
}

void job_start(struct job *job)
{
    struct job_manager *m = job->mgr;

    job_lock(m);
    assert(job->status == JOB_STATUS_CREATED);
    job->started = true;
    job->busy = true;
    job->pause_count--;
    transition(job, JOB_STATUS_RUNNING);
    if (pthread_create(&job->thread, NULL, job_thread, job) != 0) {
        /* Out of threads: fail the job the normal way. */
        job->started = false;
        job->body_done = true;
        job->ret = -EAGAIN;
        job_set_error(job, "Could not start the job thread");
        job_completed(job);
    }
    job_unlock(m);
}

void job_early_fail(struct job *job)
{
    struct job_manager *m = job->mgr;

    job_lock(m);
    assert(job->status == JOB_STATUS_CREATED && !job->started);
    job_do_dismiss(job);
    job_unlock(m);
}

void job_pause_point(struct job *job)
{
    struct job_manager *m = job->mgr;

    job_lock(m);
    if (job->pause_count > 0 && !(job->cancelled && job->force_cancel)) {
        enum job_status saved = job->status;
        enum job_status parked = saved == JOB_STATUS_READY
                                 ? JOB_STATUS_STANDBY : JOB_STATUS_PAUSED;

        if (transitions[saved][parked]) {
            transition(job, parked);
        }
        job->paused = true;
        job->busy = false;
        while (job->pause_count > 0 &&
               !(job->cancelled && job->force_cancel)) {
            pthread_cond_wait(&job->cond, &m->lock);
        }
        job->paused = false;
        job->busy = true;
        if (job->status == parked && transitions[parked][saved]) {
            transition(job, saved);
        }
    }
    job_unlock(m);
}

void job_sleep_ns(struct job *job, int64_t ns)
{
    struct job_manager *m = job->mgr;
    struct timespec ts;

    if (ns <= 0) {
        return;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ns / 1000000000LL;
    ts.tv_nsec += ns % 1000000000LL;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    job_lock(m);
    job->busy = false;
    /* One wait: any wake-up (pause, cancel, but also set-speed) ends the
     * sleep early so that the caller re-reads what changed. */
    if (!(job->cancelled && job->force_cancel) && job->pause_count == 0) {
        pthread_cond_timedwait(&job->cond, &m->lock, &ts);
    }
    job->busy = true;
    job_unlock(m);
}

void job_rate_limit(struct job *job, int64_t bytes)
{
    const int64_t slice = 100 * 1000 * 1000;   /* QEMU's 100 ms slices */
    int64_t speed;
    int64_t now;
    int64_t quota;

    job_lock(job->mgr);
    speed = job->speed;
    job_unlock(job->mgr);
    if (speed <= 0) {
        return;
    }
    now = bd_clock_ns();
    if (now - job->rl_slice_start_ns >= slice) {
        job->rl_slice_start_ns = now;
        job->rl_slice_bytes = 0;
    }
    job->rl_slice_bytes += bytes;
    quota = BD_MAX(speed / 10, 1);
    while (job->rl_slice_bytes >= quota && !job_is_cancelled(job)) {
        /* Over budget: wait for the next slice(s) the bytes need. */
        int64_t slices = job->rl_slice_bytes / quota;
        int64_t until = job->rl_slice_start_ns + slices * slice;

        job_sleep_ns(job, until - bd_clock_ns());
        if (bd_clock_ns() < until) {
            break;  /* woken by pause/cancel: let the caller react */
        }
        job->rl_slice_bytes -= slices * quota;
        job->rl_slice_start_ns = until;
    }
}

void job_progress_update(struct job *job, int64_t done)
{
    job->progress_current += done;
}

void job_progress_set_remaining(struct job *job, int64_t remaining)
{
    job->progress_total = job->progress_current + remaining;
}

void job_progress_increase_remaining(struct job *job, int64_t delta)
{
    job->progress_total += delta;
}

void job_progress_set_total(struct job *job, int64_t total)
{
    job->progress_total = total;
}

void job_transition_to_ready(struct job *job)
{
    job_lock(job->mgr);
    if (job->status == JOB_STATUS_RUNNING) {
        transition(job, JOB_STATUS_READY);
        emit(job, "BLOCK_JOB_READY", block_job_event_data(job));
    }
    job_unlock(job->mgr);
}

enum job_error_action job_error_action(struct job *job,
                                       enum job_on_error policy,
                                       bool is_read, int errnum)
{
    enum job_error_action action;

    switch (policy) {
    case JOB_ON_ERROR_IGNORE:
        action = JOB_ERROR_ACTION_IGNORE;
        break;
    case JOB_ON_ERROR_STOP:
        action = JOB_ERROR_ACTION_STOP;
        break;
    case JOB_ON_ERROR_ENOSPC:
    case JOB_ON_ERROR_AUTO:
        action = errnum == ENOSPC ? JOB_ERROR_ACTION_STOP
                                  : JOB_ERROR_ACTION_REPORT;
        break;
    case JOB_ON_ERROR_REPORT:
    default:
        action = JOB_ERROR_ACTION_REPORT;
        break;
    }
    /* Injection coverage (coverage/injection.sh): policy x side x errno.
     * Reads are the source side and writes the target side, as the
     * on-source-error / on-target-error split has it. */
    inj_trace("policy job=%s side=%s policy=%s errno=%d action=%s",
              job_type_names[job->drv->type], is_read ? "source" : "target",
              job_on_error_names[policy], errnum,
              action == JOB_ERROR_ACTION_REPORT ? "report" :
              action == JOB_ERROR_ACTION_IGNORE ? "ignore" : "stop");
    job_lock(job->mgr);
    emit(job, "BLOCK_JOB_ERROR",
         json_pack("{s:s, s:s, s:s}", "device", job->id ? job->id : "",
                   "operation", is_read ? "read" : "write",
                   "action", action == JOB_ERROR_ACTION_REPORT ? "report" :
                             action == JOB_ERROR_ACTION_IGNORE ? "ignore"
                                                               : "stop"));
    if (action == JOB_ERROR_ACTION_STOP) {
        if (!job->user_paused) {
            job->pause_count++;
            job->user_paused = true;
        }
        if (job->iostatus == JOB_IOSTATUS_OK) {
            job->iostatus = errnum == ENOSPC ? JOB_IOSTATUS_NOSPACE
                                             : JOB_IOSTATUS_FAILED;
        }
    }
    job_unlock(job->mgr);
    return action;
}

void job_set_error(struct job *job, const char *msg)
{
    job_lock(job->mgr);
    free(job->error);
    job->error = bd_strdup(msg);
    job_unlock(job->mgr);
}

bool job_should_complete(struct job *job)
{
    bool r;

    job_lock(job->mgr);
    r = job->deferred_complete;
    job_unlock(job->mgr);
    return r;
}

/* ------------------------------------------------------------------ */
/* Transactions                                                         */

static bool txn_bodies_done(struct job_txn *txn)
{
    struct bd_list *pos;

    bd_list_for_each(pos, &txn->jobs) {
        struct job *j = BD_LIST_ENTRY(pos, struct job, txn_link);
        if (j->started && !j->body_done) {
            return false;
        }
    }
    return true;
}

/* Everybody's body returned: run the abort hooks and conclude, the job
 * that caused the abort first. */
static void txn_finish_abort(struct job_txn *txn)
{
    struct job *order[64];
    struct job **list = order;
    struct bd_list *pos;
    size_t n = 0;
    size_t cap = BD_ARRAY_SIZE(order);
    size_t i;

    txn->refcnt++;          /* jobs free themselves below */
    if (txn->abort_origin) {
        list[n++] = txn->abort_origin;
    }
    bd_list_for_each(pos, &txn->jobs) {
        struct job *j = BD_LIST_ENTRY(pos, struct job, txn_link);
        if (j == txn->abort_origin) {
            continue;
        }
        if (n == cap) {
            struct job **bigger = bd_malloc(sizeof(*bigger) * cap * 2);
            memcpy(bigger, list, sizeof(*bigger) * n);
            if (list != order) {
                free(list);
            }
            list = bigger;
            cap *= 2;
        }
        list[n++] = j;
    }
    for (i = 0; i < n; i++) {
        struct job *j = list[i];

        if (j->ret == 0) {
            j->ret = -ECANCELED;
        }
        if (j->drv->abort) {
            j->drv->abort(j);
        }
        if (j->drv->clean) {
            j->drv->clean(j);
        }
        if (j->started) {
            if (j->cancelled && j->force_cancel) {
                emit(j, "BLOCK_JOB_CANCELLED", block_job_event_data(j));
            } else {
                json_t *d = block_job_event_data(j);
                json_object_set_new(d, "error", json_string(job_error_text(j)));
                emit(j, "BLOCK_JOB_COMPLETED", d);
            }
        }
        if (!j->error) {
            j->error = bd_strdup(job_error_text(j));
        }
        job_conclude(j);
    }
    if (list != order) {
        free(list);
    }
    if (--txn->refcnt == 0) {
        free(txn);
    }
}

static void job_txn_abort(struct job *job)
{
    struct job_txn *txn = job->txn;
    struct bd_list *pos;

    if (!txn->aborting) {
        txn->aborting = true;
        txn->abort_origin = job;
        if (job->status != JOB_STATUS_ABORTING) {
            transition(job, JOB_STATUS_ABORTING);
        }
        bd_list_for_each(pos, &txn->jobs) {
            struct job *j = BD_LIST_ENTRY(pos, struct job, txn_link);

            if (j == job || j->status == JOB_STATUS_ABORTING ||
                j->status == JOB_STATUS_CONCLUDED) {
                continue;
            }
            if (!j->cancelled || !j->force_cancel) {
                j->cancelled = true;
                j->force_cancel = true;
                if (j->user_paused) {
                    j->user_paused = false;
                    j->pause_count--;
                }
            }
            if (transitions[j->status][JOB_STATUS_ABORTING]) {
                transition(j, JOB_STATUS_ABORTING);
            } else {
                /* paused/standby: the body leaves the pause point, which
                 * restores running/ready; abort it from there. */
                wake(j);
                continue;
            }
            wake(j);
        }
    } else if (job->status != JOB_STATUS_ABORTING &&
               transitions[job->status][JOB_STATUS_ABORTING]) {
        transition(job, JOB_STATUS_ABORTING);
    }
    if (txn_bodies_done(txn)) {
        txn_finish_abort(txn);
    }
}

static void txn_finalize(struct job_txn *txn)
{
    struct bd_list *pos;
    struct bd_list *tmp;

    bd_list_for_each(pos, &txn->jobs) {
        struct job *j = BD_LIST_ENTRY(pos, struct job, txn_link);
        int r = j->drv->prepare ? j->drv->prepare(j) : 0;

        if (r < 0) {
            j->ret = r;
            job_txn_abort(j);
            return;
        }
    }
    txn->refcnt++;
    bd_list_for_each_safe(pos, tmp, &txn->jobs) {
        struct job *j = BD_LIST_ENTRY(pos, struct job, txn_link);

        if (j->drv->commit) {
            j->drv->commit(j);
        }
        if (j->drv->clean) {
            j->drv->clean(j);
        }
        emit(j, "BLOCK_JOB_COMPLETED", block_job_event_data(j));
        job_conclude(j);
    }
    if (--txn->refcnt == 0) {
        free(txn);
    }
}

static void txn_try_pending(struct job_txn *txn)
{
    struct bd_list *pos;
    bool all_auto = true;

    bd_list_for_each(pos, &txn->jobs) {
        struct job *j = BD_LIST_ENTRY(pos, struct job, txn_link);
        if (j->status != JOB_STATUS_WAITING) {
            return;
        }
    }
    bd_list_for_each(pos, &txn->jobs) {
        struct job *j = BD_LIST_ENTRY(pos, struct job, txn_link);

        transition(j, JOB_STATUS_PENDING);
        if (!j->auto_finalize) {
            all_auto = false;
            emit(j, "BLOCK_JOB_PENDING",
                 json_pack("{s:s, s:s}", "type", job_type_names[j->drv->type],
                           "id", j->id ? j->id : ""));
        }
    }
    if (all_auto) {
        txn_finalize(txn);
    }
}

/* ------------------------------------------------------------------ */
/* Verbs                                                                */

int job_apply_verb(struct job *job, enum job_verb verb,
                   struct bd_error **errp)
{
    if (verbs[verb][job->status]) {
        return 0;
    }
    bd_error_setg(errp, "Job '%s' in state '%s' cannot accept command verb "
                  "'%s'", job->id ? job->id : "",
                  job_status_names[job->status], job_verb_names[verb]);
    return -EPERM;
}

int job_user_pause(struct job *job, struct bd_error **errp)
{
    struct job_manager *m = job->mgr;   /* job may be freed below */
    int ret;

    job_lock(m);
    ret = job_apply_verb(job, JOB_VERB_PAUSE, errp);
    if (ret == 0 && job->user_paused) {
        bd_error_setg(errp, "Job is already paused");
        ret = -EPERM;
    }
    if (ret == 0) {
        job->user_paused = true;
        job->pause_count++;
        wake(job);
    }
    job_unlock(m);
    return ret;
}

int job_user_resume(struct job *job, struct bd_error **errp)
{
    struct job_manager *m = job->mgr;   /* job may be freed below */
    int ret = 0;

    job_lock(m);
    if (!job->user_paused || job->pause_count <= 0) {
        bd_error_setg(errp, "Can't resume a job that was not paused");
        ret = -EPERM;
    } else {
        ret = job_apply_verb(job, JOB_VERB_RESUME, errp);
    }
    if (ret == 0) {
        job->iostatus = JOB_IOSTATUS_OK;
        job->user_paused = false;
        job->pause_count--;
        wake(job);
    }
    job_unlock(m);
    return ret;
}

int job_user_cancel(struct job *job, bool force, struct bd_error **errp)
{
    struct job_manager *m = job->mgr;   /* job may be freed below */
    int ret;

    job_lock(m);
    ret = job_apply_verb(job, JOB_VERB_CANCEL, errp);
    if (ret < 0) {
        job_unlock(m);
        return ret;
    }
    if (!force && job->drv->cancel && !job->body_done &&
        job->drv->cancel(job, false)) {
        /* Soft cancel honoured (mirror after READY). */
        force = false;
    } else {
        force = true;
        if (job->drv->cancel) {
            job->drv->cancel(job, true);
        }
    }
    if (job->user_paused) {
        job->user_paused = false;
        job->pause_count--;
    }
    if (!job->cancelled) {
        job->cancelled = true;
        job->force_cancel = force;
    } else if (force) {
        job->force_cancel = true;
    }
    if (!job->started) {
        /* Never ran: straight to aborting and away, no block job event. */
        job->body_done = true;
        job->ret = -ECANCELED;
        job_completed(job);
    } else if (job->body_done) {
        /* waiting/pending: only a real (force) cancel aborts it now. */
        if (job->force_cancel) {
            job_txn_abort(job);
        }
    } else {
        wake(job);
    }
    job_unlock(m);
    return 0;
}

int job_complete(struct job *job, struct bd_error **errp)
{
    struct job_manager *m = job->mgr;   /* job may be freed below */
    int ret;

    job_lock(m);
    ret = job_apply_verb(job, JOB_VERB_COMPLETE, errp);
    if (ret == 0 && (job->cancelled || !job->drv->complete)) {
        bd_error_setg(errp, "The active block job '%s' cannot be completed",
                      job->id ? job->id : "");
        ret = -ENOTSUP;
    }
    if (ret == 0) {
        struct bd_error *err = NULL;

        job->drv->complete(job, &err);
        if (err) {
            bd_error_propagate(errp, err);
            ret = -EINVAL;
        } else {
            job->deferred_complete = true;
            wake(job);
        }
    }
    job_unlock(m);
    return ret;
}

int job_finalize(struct job *job, struct bd_error **errp)
{
    struct job_manager *m = job->mgr;   /* job may be freed below */
    int ret;

    job_lock(m);
    ret = job_apply_verb(job, JOB_VERB_FINALIZE, errp);
    if (ret == 0) {
        struct bd_list *pos;
        struct job_txn *txn = job->txn;

        bd_list_for_each(pos, &txn->jobs) {
            struct job *j = BD_LIST_ENTRY(pos, struct job, txn_link);
            ret = job_apply_verb(j, JOB_VERB_FINALIZE, NULL);
            if (ret < 0) {
                /* Not every member is pending yet: QEMU refuses too. */
                job_apply_verb(j, JOB_VERB_FINALIZE, errp);
                break;
            }
        }
        if (ret == 0) {
            txn_finalize(txn);
        }
    }
    job_unlock(m);
    return ret;
}

int job_dismiss(struct job *job, struct bd_error **errp)
{
    struct job_manager *m = job->mgr;   /* job may be freed below */
    int ret;

    job_lock(m);
    ret = job_apply_verb(job, JOB_VERB_DISMISS, errp);
    if (ret == 0) {
        job_do_dismiss(job);
    }
    job_unlock(m);
    return ret;
}

int job_set_speed(struct job *job, int64_t speed, struct bd_error **errp)
{
    struct job_manager *m = job->mgr;   /* job may be freed below */
    int ret;

    job_lock(m);
    ret = job_apply_verb(job, JOB_VERB_SET_SPEED, errp);
    if (ret == 0 && speed < 0) {
        bd_error_setg(errp, "Parameter 'speed' expects a non-negative value");
        ret = -EINVAL;
    }
    if (ret == 0) {
        job->speed = speed;
        wake(job);
    }
    job_unlock(m);
    return ret;
}

int job_change(struct job *job, json_t *opts, struct bd_error **errp)
{
    struct job_manager *m = job->mgr;   /* job may be freed below */
    int ret;

    job_lock(m);
    ret = job_apply_verb(job, JOB_VERB_CHANGE, errp);
    if (ret == 0) {
        if (!job->drv->change) {
            bd_error_setg(errp, "Job type %s does not support changing "
                          "options", job_type_names[job->drv->type]);
            ret = -ENOTSUP;
        } else {
            ret = job->drv->change(job, opts, errp);
        }
    }
    job_unlock(m);
    return ret;
}

/* ------------------------------------------------------------------ */
/* Queries                                                              */

json_t *job_query_info(struct job *job)
{
    json_t *o;

    job_lock(job->mgr);
    refresh_progress(job);
    o = json_pack("{s:s, s:s, s:s, s:I, s:I}",
                  "id", job->id ? job->id : "",
                  "type", job_type_names[job->drv->type],
                  "status", job_status_names[job->status],
                  "current-progress", (json_int_t)job->progress_current,
                  "total-progress", (json_int_t)job->progress_total);
    if ((job->status == JOB_STATUS_CONCLUDED ||
         job->status == JOB_STATUS_ABORTING) && job->ret < 0) {
        json_object_set_new(o, "error", json_string(job_error_text(job)));
    }
    job_unlock(job->mgr);
    return o;
}

json_t *job_query_block_info(struct job *job)
{
    static const char *const iostatus_names[] = { "ok", "failed", "nospace" };
    json_t *o;

    job_lock(job->mgr);
    refresh_progress(job);
    o = json_pack("{s:s, s:s, s:I, s:I, s:b, s:b, s:I, s:s, s:b, s:s, "
                  "s:b, s:b}",
                  "type", job_type_names[job->drv->type],
                  "device", job->id ? job->id : "",
                  "len", (json_int_t)job->progress_total,
                  "offset", (json_int_t)job->progress_current,
                  "busy", job->busy,
                  "paused", job->pause_count > 0,
                  "speed", (json_int_t)job->speed,
                  "io-status", iostatus_names[job->iostatus],
                  "ready", job->status == JOB_STATUS_READY ||
                           job->status == JOB_STATUS_STANDBY,
                  "status", job_status_names[job->status],
                  "auto-finalize", job->auto_finalize,
                  "auto-dismiss", job->auto_dismiss);
    if ((job->status == JOB_STATUS_CONCLUDED ||
         job->status == JOB_STATUS_ABORTING) && job->ret < 0) {
        json_object_set_new(o, "error", json_string(job_error_text(job)));
    }
    if (job->drv->query) {
        job->drv->query(job, o);
    }
    job_unlock(job->mgr);
    return o;
}

static json_t *query_all(struct job_manager *m, json_t *(*fn)(struct job *))
{
    json_t *arr = json_array();
    struct bd_list *pos;

    job_lock(m);
    bd_list_for_each(pos, &m->jobs) {
        struct job *j = BD_LIST_ENTRY(pos, struct job, link);
        if (j->id) {
            json_array_append_new(arr, fn(j));
        }
    }
    job_unlock(m);
    return arr;
}

json_t *job_query_jobs(struct job_manager *m)
{
    return query_all(m, job_query_info);
}

json_t *job_query_block_jobs(struct job_manager *m)
{
    return query_all(m, job_query_block_info);
}

void job_manager_free(struct job_manager *m)
{
    struct bd_list *pos;

    if (!m) {
        return;
    }
    /* Cancel everything still running, then wait for it to conclude. */
    job_lock(m);
    bd_list_for_each(pos, &m->jobs) {
        struct job *j = BD_LIST_ENTRY(pos, struct job, link);
        if (verbs[JOB_VERB_CANCEL][j->status]) {
            job_user_cancel(j, true, NULL);
        }
    }
    job_unlock(m);
    job_manager_wait_idle(m, 60LL * 1000 * 1000 * 1000);
    job_lock(m);
    while (!bd_list_empty(&m->jobs)) {
        struct job *j = BD_LIST_ENTRY(m->jobs.next, struct job, link);
        if (j->status == JOB_STATUS_CONCLUDED) {
            job_do_dismiss(j);
        } else {
            /* A body that ignores cancel: leave it rather than free memory
             * it still uses. */
            bd_log(BD_LOG_WARN, "job '%s' did not stop", j->id ? j->id : "");
            bd_list_del(&j->link);
        }
    }
    job_unlock(m);
    reap_zombies(m);
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->idle_cond);
    free(m->zombies);
    free(m);
}
