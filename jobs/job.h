/*
 * jobs/job.h - the generic job state machine (QEMU's job.c/blockjob.c
 * behaviour, specs/jobs.md §1-§2).
 *
 * A job runs its body (struct job_driver.run) on a thread of its own. The
 * job manager owns every job of a daemon (or scenario) and one lock that
 * serialises all state changes, QMP verbs and event emission, so events
 * reach clients in the order the states changed - the role QEMU's main
 * loop and job mutex play together.
 *
 * Life of a job: job_create (status created) -> job_start (running, the
 * thread starts) -> the body returns 0 or -errno -> waiting -> pending
 * (when every job of its transaction is done) -> prepare/commit or abort
 * -> concluded -> null (dismissed). Failure or cancel goes to aborting
 * directly. Events: JOB_STATUS_CHANGE on every real change and the block
 * job events (BLOCK_JOB_COMPLETED/CANCELLED/ERROR/READY/PENDING), emitted
 * through the graph's QMP event sink.
 *
 * The body cooperates: it calls job_pause_point() between units of work
 * (pausing parks it there), checks job_is_cancelled(), sleeps for rate
 * limiting with job_sleep_ns() (woken early by cancel), reports progress,
 * and asks job_error_action() what to do about an I/O error (which emits
 * BLOCK_JOB_ERROR and, for `stop`, pauses the job until job-resume).
 *
 * Hooks (prepare, commit, abort, clean) run with the manager lock held, on
 * whichever thread completes the transaction (the last job's thread, or
 * the QMP thread for job-finalize/job-cancel). They may drain and change
 * the graph; they must not wait for another job's body.
 */
#ifndef BLKRIG_JOB_H
#define BLKRIG_JOB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "common/error.h"
#include "common/list.h"

struct bd_graph;
struct job;
struct job_manager;
struct job_txn;

enum job_status {
    JOB_STATUS_UNDEFINED,
    JOB_STATUS_CREATED,
    JOB_STATUS_RUNNING,
    JOB_STATUS_PAUSED,
    JOB_STATUS_READY,
    JOB_STATUS_STANDBY,
    JOB_STATUS_WAITING,
    JOB_STATUS_PENDING,
    JOB_STATUS_ABORTING,
    JOB_STATUS_CONCLUDED,
    JOB_STATUS_NULL,
    JOB_STATUS__MAX
};

enum job_verb {
    JOB_VERB_CANCEL,
    JOB_VERB_PAUSE,
    JOB_VERB_RESUME,
    JOB_VERB_SET_SPEED,
    JOB_VERB_COMPLETE,
    JOB_VERB_FINALIZE,
    JOB_VERB_DISMISS,
    JOB_VERB_CHANGE,
    JOB_VERB__MAX
};

enum job_type {
    JOB_TYPE_COMMIT,
    JOB_TYPE_STREAM,
    JOB_TYPE_MIRROR,
    JOB_TYPE_BACKUP,
    JOB_TYPE_CREATE,
    JOB_TYPE_AMEND,
    JOB_TYPE_SNAPSHOT_LOAD,
    JOB_TYPE_SNAPSHOT_SAVE,
    JOB_TYPE_SNAPSHOT_DELETE,
    JOB_TYPE__MAX
};

/* BlockdevOnError */
enum job_on_error {
    JOB_ON_ERROR_REPORT,
    JOB_ON_ERROR_IGNORE,
    JOB_ON_ERROR_ENOSPC,
    JOB_ON_ERROR_STOP,
    JOB_ON_ERROR_AUTO,
    JOB_ON_ERROR__MAX
};

/* BlockErrorAction */
enum job_error_action {
    JOB_ERROR_ACTION_REPORT,
    JOB_ERROR_ACTION_IGNORE,
    JOB_ERROR_ACTION_STOP,
};

enum job_iostatus {
    JOB_IOSTATUS_OK,
    JOB_IOSTATUS_FAILED,
    JOB_IOSTATUS_NOSPACE,
};

extern const char *const job_status_names[JOB_STATUS__MAX + 1];
extern const char *const job_verb_names[JOB_VERB__MAX + 1];
extern const char *const job_type_names[JOB_TYPE__MAX + 1];
extern const char *const job_on_error_names[JOB_ON_ERROR__MAX + 1];

struct job_driver {
    enum job_type type;
    /* Body: runs on the job's thread, returns 0 or -errno. Required. */
    int (*run)(struct job *job);
    /* Completion hooks, all optional (see the header comment). prepare may
     * fail (return -errno) and turns the transaction into an abort. */
    int (*prepare)(struct job *job);
    void (*commit)(struct job *job);
    void (*abort)(struct job *job);
    void (*clean)(struct job *job);
    /* job-complete; NULL: this job type cannot be completed. Called with
     * the lock held in ready/standby. */
    void (*complete)(struct job *job, struct bd_error **errp);
    /* A cancel was requested. force=false is a soft cancel request; return
     * true if the job honours it (mirror after READY), false to treat it as
     * a force cancel. May be NULL (always force). */
    bool (*cancel)(struct job *job, bool force);
    /* Wake the body: a pause, resume or cancel happened (e.g. kick a
     * condition the body waits on). May be NULL. */
    void (*kick)(struct job *job);
    /* block-job-change; NULL: not supported. */
    int (*change)(struct job *job, json_t *opts, struct bd_error **errp);
    /* Called with the lock held on a job whose body runs: true when the
     * body, though not parked, will do no I/O and send no event until a
     * verb or a guest write reaches its nodes (a mirror idle in ready).
     * May be NULL (a running body is never idle). */
    bool (*idle)(struct job *job);
    /* Add type-specific fields to a BlockJobInfo (mirror: actively-synced). */
    void (*query)(struct job *job, json_t *info);
    /* Bytes done so far, for drivers whose progress also advances on
     * threads that may not take the job lock (backup: copy-before-write on
     * guest writes). Called with the lock held before progress is shown
     * in a query or an event; must not block. May be NULL. */
    int64_t (*progress)(struct job *job);
    /* Free the job driver's state (the struct job embedding it). */
    void (*free)(struct job *job);
};

/*
 * A job. Job drivers embed it as the FIRST member of their own state and
 * allocate that state themselves (job_create takes the allocation).
 * Fields marked (lock) are protected by the manager lock.
 */
struct job {
    /* Immutable after creation. */
    const struct job_driver *drv;
    struct job_manager *mgr;
    char *id;                       /* NULL for internal jobs */
    bool auto_finalize;
    bool auto_dismiss;
    /* Block job: the error policies and the device name for events. */
    enum job_on_error on_source_error;
    enum job_on_error on_target_error;

    /* (lock) */
    enum job_status status;
    int pause_count;                /* outstanding pause requests */
    bool user_paused;               /* by QMP or by a `stop` error */
    bool paused;                    /* the body is parked at a pause point */
    bool busy;
    bool cancelled;
    bool force_cancel;
    bool started;                   /* job_start ran */
    bool body_done;                 /* run() returned */
    bool deferred_complete;         /* job-complete requested */
    int ret;
    char *error;                    /* message when failed/cancelled */
    enum job_iostatus iostatus;
    int64_t speed;                  /* bytes/s, 0 = unlimited */
    struct job_txn *txn;
    struct bd_list link;            /* in the manager's job list */
    struct bd_list txn_link;        /* in txn->jobs */

    /* Progress; updated without the lock by the body's workers and by
     * guest writes (mirror's write-blocking mode) at once, so each update
     * is atomic. The two are independent: a reader may see one updated
     * before the other. */
    _Atomic int64_t progress_current;
    _Atomic int64_t progress_total;

    /* Rate limiting state (body only). */
    int64_t rl_slice_start_ns;
    int64_t rl_slice_bytes;

    pthread_t thread;
    pthread_cond_t cond;            /* wakes the body (pause/cancel/sleep) */
};

/* ------------------------------------------------------------------ */
/* Manager                                                              */

struct job_manager *job_manager_new(struct bd_graph *g);
/* Cancel every job, wait for their threads, free them. */
void job_manager_free(struct job_manager *m);
struct bd_graph *job_manager_graph(struct job_manager *m);
/* The manager lock (recursive). QMP handlers hold it around job verbs. */
void job_lock(struct job_manager *m);
void job_unlock(struct job_manager *m);
/* Find a job by id (lock held or not; returns NULL if absent). */
struct job *job_find(struct job_manager *m, const char *id);
/* Wait until no job of the manager is in a transient state (scenarios,
 * shutdown); returns when every job is concluded/null, or timeout_ns
 * passed (-ETIMEDOUT). */
int job_manager_wait_idle(struct job_manager *m, int64_t timeout_ns);
/*
 * Can some job of the manager still change state, do I/O or emit an event
 * without a QMP verb or a guest write? False when every job is either not
 * started, done with its body (waiting, pending, concluded: what is left
 * needs a verb or another job's body), parked at a pause point with a
 * pause that only job-resume or a cancel can lift, or idle by its
 * driver's word (job_driver.idle). A job sleeping for its speed limit
 * counts as able to progress. The answer holds until the next verb or
 * guest write (blkrig sweep ends a hopeless `wait` with it).
 */
bool job_manager_can_progress(struct job_manager *m);

/* ------------------------------------------------------------------ */
/* Creation                                                             */

/* A transaction for several jobs (completion-mode grouped). Standalone
 * jobs get a private one. */
struct job_txn *job_txn_new(struct job_manager *m);
/* Drop the creator's reference (jobs keep the txn alive). */
void job_txn_unref(struct job_txn *txn);

/*
 * Register a job (status created). job is the driver's zeroed state whose
 * first member is struct job. id: NULL for an internal job; otherwise
 * checked ("Invalid job ID '%s'", "Job ID '%s' already in use"). txn may be
 * NULL (a private transaction). speed < 0 is rejected. On failure the job
 * is not registered and the caller frees it.
 */
int job_create(struct job_manager *m, struct job *job,
               const struct job_driver *drv, const char *id,
               struct job_txn *txn, int64_t speed, bool auto_finalize,
               bool auto_dismiss, struct bd_error **errp);
/* Start the body on its thread (created -> running). */
void job_start(struct job *job);
/*
 * Drop a job that was created but never started because the rest of its
 * setup failed after job_create (QEMU: created -> null, no block job
 * event). The job is freed (driver free hook); the caller must not use it.
 */
void job_early_fail(struct job *job);

/* ------------------------------------------------------------------ */
/* Body API                                                             */

void job_pause_point(struct job *job);
bool job_is_cancelled(struct job *job);
/* Sleep up to ns; returns early on cancel or pause. */
void job_sleep_ns(struct job *job, int64_t ns);
/* Account bytes against the speed limit; sleeps as needed (in 100 ms
 * slices, as QEMU). Returns early on cancel. */
void job_rate_limit(struct job *job, int64_t bytes);
void job_progress_update(struct job *job, int64_t done);
void job_progress_set_remaining(struct job *job, int64_t remaining);
void job_progress_increase_remaining(struct job *job, int64_t delta);
void job_progress_set_total(struct job *job, int64_t total);
/* running -> ready, BLOCK_JOB_READY. */
void job_transition_to_ready(struct job *job);
/*
 * Decide what to do about an I/O error (errnum positive) under the policy
 * for that side (is_read: source read vs target write). Emits
 * BLOCK_JOB_ERROR; for STOP pauses the job (the body then reaches a pause
 * point and retries after job-resume) and sets the iostatus.
 */
enum job_error_action job_error_action(struct job *job,
                                       enum job_on_error policy,
                                       bool is_read, int errnum);
/* Record a failure message to report instead of strerror(-ret). */
void job_set_error(struct job *job, const char *msg);
/* Should a job that reached READY complete now (job-complete called)? */
bool job_should_complete(struct job *job);

/* ------------------------------------------------------------------ */
/* Verbs (QMP). Each takes the lock itself and returns 0 or -errno with  */
/* errp set to QEMU's message.                                          */

int job_user_pause(struct job *job, struct bd_error **errp);
int job_user_resume(struct job *job, struct bd_error **errp);
/* job-cancel: force. block-job-cancel passes its force argument. */
int job_user_cancel(struct job *job, bool force, struct bd_error **errp);
int job_complete(struct job *job, struct bd_error **errp);
int job_finalize(struct job *job, struct bd_error **errp);
int job_dismiss(struct job *job, struct bd_error **errp);
int job_set_speed(struct job *job, int64_t speed, struct bd_error **errp);
int job_change(struct job *job, json_t *opts, struct bd_error **errp);
/* Verb allowed in the job's state? Sets QEMU's message if not. */
int job_apply_verb(struct job *job, enum job_verb verb,
                   struct bd_error **errp);

/* query-jobs / query-block-jobs entries (new references). */
json_t *job_query_info(struct job *job);
json_t *job_query_block_info(struct job *job);
/* Lists over all non-internal jobs in creation order. */
json_t *job_query_jobs(struct job_manager *m);
json_t *job_query_block_jobs(struct job_manager *m);

/* Valid job id (letter first; letters, digits, '-', '.', '_'). */
bool job_id_wellformed(const char *id);

#endif
