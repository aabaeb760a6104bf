/*
 * tests/unit/test_job.c - jobs/job.c: the state machine, verbs, error
 * policies and transactions, checked against the event sequences of
 * specs/jobs.md §1.4 and §1.9 with a scriptable fake job.
 */
#include "common/config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/cutils.h"
#include "driver/block.h"
#include "jobs/job.h"
#include "tests/unit/unit.h"

/* The fake job: runs `steps` units of work; fails at step fail_at with
 * fail_errno under its source-error policy; optionally waits for
 * job-complete after becoming ready (mirror-like). */
struct fake_job {
    struct job job;
    int steps;
    int fail_at;            /* -1: never */
    int fail_errno;
    int fail_times;         /* how many times the failing step fails */
    bool mirror_like;
    int prepare_ret;
    int commits, aborts, cleans;
};

struct fixture {
    struct bd_graph *g;
    struct job_manager *m;
    pthread_mutex_t lock;
    char log[8192];
};

static void sink(void *opaque, const char *name, json_t *data)
{
    struct fixture *f = opaque;
    char item[256];

    pthread_mutex_lock(&f->lock);
    if (!strcmp(name, "JOB_STATUS_CHANGE")) {
        snprintf(item, sizeof(item), "%s ",
                 json_string_value(json_object_get(data, "status")));
    } else if (!strcmp(name, "BLOCK_JOB_ERROR")) {
        snprintf(item, sizeof(item), "ERROR(%s,%s) ",
                 json_string_value(json_object_get(data, "operation")),
                 json_string_value(json_object_get(data, "action")));
    } else if (json_object_get(data, "error")) {
        snprintf(item, sizeof(item), "%s(%s) ", name,
                 json_string_value(json_object_get(data, "error")));
    } else {
        snprintf(item, sizeof(item), "%s ", name);
    }
    if (json_object_get(data, "device") && strcmp(name, "BLOCK_JOB_ERROR")) {
        /* prefix with the job id for multi-job tests */
        char tmp[300];
        snprintf(tmp, sizeof(tmp), "%s:%s",
                 json_string_value(json_object_get(data, "device")), item);
        strncat(f->log, tmp, sizeof(f->log) - strlen(f->log) - 1);
    } else if (json_object_get(data, "id")) {
        char tmp[300];
        snprintf(tmp, sizeof(tmp), "%s:%s",
                 json_string_value(json_object_get(data, "id")), item);
        strncat(f->log, tmp, sizeof(f->log) - strlen(f->log) - 1);
    } else {
        strncat(f->log, item, sizeof(f->log) - strlen(f->log) - 1);
    }
    pthread_mutex_unlock(&f->lock);
    json_decref(data);
}

static int fake_run(struct job *job)
{
    struct fake_job *fj = (struct fake_job *)job;
    int i;

    job_progress_set_total(job, fj->steps * 100);
    for (i = 0; i < fj->steps; i++) {
        job_pause_point(job);
        if (job_is_cancelled(job)) {
            return -ECANCELED;
        }
        while (i == fj->fail_at && fj->fail_times > 0) {
            enum job_error_action a;

            fj->fail_times--;
            a = job_error_action(job, job->on_source_error, true,
                                 fj->fail_errno);
            if (a == JOB_ERROR_ACTION_REPORT) {
                return -fj->fail_errno;
            }
            job_pause_point(job);   /* stop parks here until resume */
            if (job_is_cancelled(job)) {
                return -ECANCELED;
            }
        }
        job_progress_update(job, 100);
    }
    if (fj->mirror_like) {
        job_transition_to_ready(job);
        while (!job_should_complete(job)) {
            job_lock(job->mgr);
            if (job->cancelled) {
                job_unlock(job->mgr);
                break;
            }
            job_unlock(job->mgr);
            job_pause_point(job);
            job_sleep_ns(job, 1000 * 1000);
        }
        if (job_is_cancelled(job)) {
            return -ECANCELED;
        }
    }
    return 0;
}

static int fake_prepare(struct job *job)
{
    return ((struct fake_job *)job)->prepare_ret;
}

static void fake_commit(struct job *job)
{
    ((struct fake_job *)job)->commits++;
}

static void fake_abort(struct job *job)
{
    ((struct fake_job *)job)->aborts++;
}

static void fake_clean(struct job *job)
{
    ((struct fake_job *)job)->cleans++;
}

static void fake_complete(struct job *job, struct bd_error **errp)
{
    (void)job;
    (void)errp;
}

static bool fake_cancel(struct job *job, bool force)
{
    /* Soft cancel honoured only once ready, like mirror. */
    return !force && job->status == JOB_STATUS_READY;
}

static const struct job_driver fake_backup = {
    .type = JOB_TYPE_BACKUP,
    .run = fake_run,
    .prepare = fake_prepare,
    .commit = fake_commit,
    .abort = fake_abort,
    .clean = fake_clean,
};

static const struct job_driver fake_mirror = {
    .type = JOB_TYPE_MIRROR,
    .run = fake_run,
    .prepare = fake_prepare,
    .commit = fake_commit,
    .abort = fake_abort,
    .clean = fake_clean,
    .complete = fake_complete,
    .cancel = fake_cancel,
};

static int setup(void **state)
{
    struct fixture *f = bd_malloc0(sizeof(*f));

    pthread_mutex_init(&f->lock, NULL);
    f->g = bd_graph_new();
    f->m = job_manager_new(f->g);
    bd_graph_set_qevent_sink(f->g, sink, f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    job_manager_free(f->m);
    bd_graph_free(f->g);
    pthread_mutex_destroy(&f->lock);
    free(f);
    return 0;
}

static struct fake_job *new_fake(struct fixture *f, const char *id,
                                 const struct job_driver *drv,
                                 struct job_txn *txn, bool auto_finalize,
                                 bool auto_dismiss)
{
    struct fake_job *fj = bd_malloc0(sizeof(*fj));
    struct bd_error *err = NULL;

    fj->steps = 5;
    fj->fail_at = -1;
    assert_int_equal(job_create(f->m, &fj->job, drv, id, txn, 0,
                                auto_finalize, auto_dismiss, &err), 0);
    return fj;
}

static void wait_status(struct fixture *f, struct job *job,
                        enum job_status st)
{
    int i;

    for (i = 0; i < 5000; i++) {
        job_lock(f->m);
        if (job->status == st) {
            job_unlock(f->m);
            return;
        }
        job_unlock(f->m);
        bd_sleep_ns(1000 * 1000);
    }
    fail_msg("job did not reach %s", job_status_names[st]);
}

static void wait_idle(struct fixture *f)
{
    assert_int_equal(job_manager_wait_idle(f->m, 10LL * 1000000000LL), 0);
}

/* Default happy path: created, running, waiting, pending, COMPLETED,
 * concluded, null; hooks commit+clean run once. */
static void test_job_happy_path(void **state)
{
    struct fixture *f = *state;
    struct fake_job *fj = new_fake(f, "j0", &fake_backup, NULL, true, true);

    job_start(&fj->job);
    wait_idle(f);
    assert_string_equal(f->log, "j0:created j0:running j0:waiting j0:pending "
                        "j0:BLOCK_JOB_COMPLETED j0:concluded j0:null ");
    assert_null(job_find(f->m, "j0"));
}

/* auto-finalize=false stops in pending with BLOCK_JOB_PENDING until
 * job-finalize; auto-dismiss=false keeps it concluded until job-dismiss. */
static void test_job_manual_finalize_dismiss(void **state)
{
    struct fixture *f = *state;
    struct fake_job *fj = new_fake(f, "j1", &fake_backup, NULL, false, false);
    struct bd_error *err = NULL;
    struct job *job = &fj->job;

    job_start(job);
    wait_status(f, job, JOB_STATUS_PENDING);
    assert_int_equal(job_dismiss(job, &err), -EPERM);
    assert_string_equal(err->msg, "Job 'j1' in state 'pending' cannot accept "
                        "command verb 'dismiss'");
    bd_error_free(err);
    err = NULL;
    assert_int_equal(job_finalize(job, &err), 0);
    assert_int_equal(job->status, JOB_STATUS_CONCLUDED);
    assert_int_equal(fj->commits, 1);
    assert_int_equal(job_dismiss(job, &err), 0);
    assert_string_equal(f->log, "j1:created j1:running j1:waiting j1:pending "
                        "j1:BLOCK_JOB_PENDING j1:BLOCK_JOB_COMPLETED "
                        "j1:concluded j1:null ");
}

/* Policy report: BLOCK_JOB_ERROR(report), running -> aborting directly,
 * COMPLETED with the strerror text; abort hook instead of commit. */
static void test_job_error_report(void **state)
{
    struct fixture *f = *state;
    struct fake_job *fj = new_fake(f, "j2", &fake_backup, NULL, true, false);

    fj->fail_at = 2;
    fj->fail_times = 1;
    fj->fail_errno = EIO;
    fj->job.on_source_error = JOB_ON_ERROR_REPORT;
    job_start(&fj->job);
    wait_idle(f);
    assert_string_equal(f->log, "j2:created j2:running ERROR(read,report) "
                        "j2:aborting j2:BLOCK_JOB_COMPLETED(Input/output error) "
                        "j2:concluded ");
    assert_int_equal(fj->aborts, 1);
    assert_int_equal(fj->commits, 0);
    {
        json_t *info = job_query_info(&fj->job);
        assert_string_equal(json_string_value(json_object_get(info, "error")),
                            "Input/output error");
        json_decref(info);
    }
    assert_int_equal(job_dismiss(&fj->job, NULL), 0);
}

/* Policy ignore: the error is reported as an event and the job goes on. */
static void test_job_error_ignore(void **state)
{
    struct fixture *f = *state;
    struct fake_job *fj = new_fake(f, "j3", &fake_backup, NULL, true, true);

    fj->fail_at = 1;
    fj->fail_times = 2;
    fj->fail_errno = EIO;
    fj->job.on_source_error = JOB_ON_ERROR_IGNORE;
    job_start(&fj->job);
    wait_idle(f);
    assert_string_equal(f->log, "j3:created j3:running ERROR(read,ignore) "
                        "ERROR(read,ignore) j3:waiting j3:pending "
                        "j3:BLOCK_JOB_COMPLETED j3:concluded j3:null ");
}

/* Policy stop: paused with io-status failed (nospace for ENOSPC), resume
 * clears it and the job retries and completes; enospc with EIO reports. */
static void test_job_error_stop_resume(void **state)
{
    struct fixture *f = *state;
    struct fake_job *fj = new_fake(f, "j4", &fake_backup, NULL, true, false);
    struct bd_error *err = NULL;
    json_t *info;

    fj->fail_at = 3;
    fj->fail_times = 1;
    fj->fail_errno = ENOSPC;
    fj->job.on_source_error = JOB_ON_ERROR_ENOSPC;
    job_start(&fj->job);
    wait_status(f, &fj->job, JOB_STATUS_PAUSED);
    info = job_query_block_info(&fj->job);
    assert_string_equal(json_string_value(json_object_get(info, "io-status")),
                        "nospace");
    assert_true(json_is_true(json_object_get(info, "paused")));
    json_decref(info);
    /* a second pause is refused: the error already paused it */
    assert_int_equal(job_user_pause(&fj->job, &err), -EPERM);
    assert_string_equal(err->msg, "Job is already paused");
    bd_error_free(err);
    err = NULL;
    assert_int_equal(job_user_resume(&fj->job, &err), 0);
    wait_idle(f);
    info = job_query_block_info(&fj->job);
    assert_string_equal(json_string_value(json_object_get(info, "io-status")),
                        "ok");
    json_decref(info);
    assert_string_equal(f->log, "j4:created j4:running ERROR(read,stop) "
                        "j4:paused j4:running j4:waiting j4:pending "
                        "j4:BLOCK_JOB_COMPLETED j4:concluded ");
    assert_int_equal(job_dismiss(&fj->job, NULL), 0);
}

/* job_manager_can_progress (what blkrig sweep's hopeless waits rest on):
 * a created job and a job parked by a stop error cannot progress; a job
 * resumed a moment ago can, even while its thread has not yet left the
 * pause point; a concluded job cannot; a body waiting in ready without an
 * idle hook can. */
static void test_job_can_progress(void **state)
{
    struct fixture *f = *state;
    struct fake_job *fj = new_fake(f, "j9", &fake_backup, NULL, true, false);
    struct fake_job *fm;

    assert_false(job_manager_can_progress(f->m));
    fj->fail_at = 1;
    fj->fail_times = 1;
    fj->fail_errno = EIO;
    fj->job.on_source_error = JOB_ON_ERROR_STOP;
    job_start(&fj->job);
    wait_status(f, &fj->job, JOB_STATUS_PAUSED);
    assert_false(job_manager_can_progress(f->m));
    /* Holding the lock keeps the thread parked: only the pause count
     * says it will move. */
    job_lock(f->m);
    assert_int_equal(job_user_resume(&fj->job, NULL), 0);
    assert_true(job_manager_can_progress(f->m));
    job_unlock(f->m);
    wait_idle(f);
    assert_false(job_manager_can_progress(f->m));
    assert_int_equal(job_dismiss(&fj->job, NULL), 0);

    fm = new_fake(f, "m9", &fake_mirror, NULL, true, true);
    fm->mirror_like = true;
    job_start(&fm->job);
    wait_status(f, &fm->job, JOB_STATUS_READY);
    assert_true(job_manager_can_progress(f->m));
    assert_int_equal(job_user_cancel(&fm->job, true, NULL), 0);
    wait_idle(f);
    assert_false(job_manager_can_progress(f->m));
}

/* enospc policy with a non-ENOSPC error reports. */
static void test_job_error_enospc_eio(void **state)
{
    struct fixture *f = *state;
    struct fake_job *fj = new_fake(f, "j5", &fake_backup, NULL, true, true);

    fj->fail_at = 0;
    fj->fail_times = 1;
    fj->fail_errno = EIO;
    fj->job.on_source_error = JOB_ON_ERROR_ENOSPC;
    job_start(&fj->job);
    wait_idle(f);
    assert_non_null(strstr(f->log, "ERROR(read,report) j5:aborting"));
}

/* Cancel of a running job: aborting, CANCELLED, error 'Operation canceled'. */
static void test_job_cancel(void **state)
{
    struct fixture *f = *state;
    struct fake_job *fj = new_fake(f, "j6", &fake_backup, NULL, true, false);
    json_t *info;

    fj->steps = 1000000;
    job_start(&fj->job);
    wait_status(f, &fj->job, JOB_STATUS_RUNNING);
    assert_int_equal(job_user_cancel(&fj->job, true, NULL), 0);
    wait_idle(f);
    assert_string_equal(f->log, "j6:created j6:running j6:aborting "
                        "j6:BLOCK_JOB_CANCELLED j6:concluded ");
    info = job_query_info(&fj->job);
    assert_string_equal(json_string_value(json_object_get(info, "error")),
                        "Operation canceled");
    json_decref(info);
    assert_int_equal(job_dismiss(&fj->job, NULL), 0);
}

/* A job cancelled while still created emits only status changes. */
static void test_job_cancel_created(void **state)
{
    struct fixture *f = *state;
    struct fake_job *fj = new_fake(f, "j7", &fake_backup, NULL, true, true);

    assert_int_equal(job_user_cancel(&fj->job, true, NULL), 0);
    wait_idle(f);
    assert_string_equal(f->log, "j7:created j7:aborting j7:concluded j7:null ");
}

/* The verb table and the resume/complete special messages. */
static void test_job_verbs(void **state)
{
    struct fixture *f = *state;
    struct fake_job *fj = new_fake(f, "j8", &fake_backup, NULL, false, false);
    struct bd_error *err = NULL;

    assert_int_equal(job_user_resume(&fj->job, &err), -EPERM);
    assert_string_equal(err->msg, "Can't resume a job that was not paused");
    bd_error_free(err);
    err = NULL;
    assert_int_equal(job_complete(&fj->job, &err), -EPERM);
    assert_string_equal(err->msg, "Job 'j8' in state 'created' cannot accept "
                        "command verb 'complete'");
    bd_error_free(err);
    err = NULL;
    assert_int_equal(job_finalize(&fj->job, &err), -EPERM);
    bd_error_free(err);
    err = NULL;
    assert_int_equal(job_set_speed(&fj->job, -1, &err), -EINVAL);
    assert_string_equal(err->msg, "Parameter 'speed' expects a non-negative "
                        "value");
    bd_error_free(err);
    err = NULL;
    job_start(&fj->job);
    wait_status(f, &fj->job, JOB_STATUS_PENDING);
    assert_int_equal(job_complete(&fj->job, &err), -EPERM);
    bd_error_free(err);
    err = NULL;
    assert_int_equal(job_user_cancel(&fj->job, true, NULL), 0);
    wait_idle(f);
    assert_int_equal(fj->aborts, 1);
    assert_non_null(strstr(f->log, "j8:pending j8:BLOCK_JOB_PENDING "
                           "j8:aborting j8:BLOCK_JOB_CANCELLED j8:concluded"));
    assert_int_equal(job_dismiss(&fj->job, NULL), 0);
}

/* Job ids: malformed and duplicate ids refused with QEMU's messages. */
static void test_job_ids(void **state)
{
    struct fixture *f = *state;
    struct fake_job *a = new_fake(f, "dup", &fake_backup, NULL, true, true);
    struct fake_job *b = bd_malloc0(sizeof(*b));
    struct bd_error *err = NULL;

    assert_int_equal(job_create(f->m, &b->job, &fake_backup, "dup", NULL, 0,
                                true, true, &err), -EEXIST);
    assert_string_equal(err->msg, "Job ID 'dup' already in use");
    bd_error_free(err);
    err = NULL;
    assert_int_equal(job_create(f->m, &b->job, &fake_backup, "1bad", NULL, 0,
                                true, true, &err), -EINVAL);
    assert_string_equal(err->msg, "Invalid job ID '1bad'");
    bd_error_free(err);
    err = NULL;
    assert_int_equal(job_create(f->m, &b->job, &fake_backup, "", NULL, 0,
                                true, true, &err), -EINVAL);
    assert_string_equal(err->msg, "Invalid job ID ''");
    bd_error_free(err);
    free(b);
    job_user_cancel(&a->job, true, NULL);
    wait_idle(f);
}

/* Mirror-like: READY, pause gives standby, resume ready, complete
 * finishes; soft cancel after READY gives COMPLETED, not CANCELLED. */
static void test_job_ready_complete_and_soft_cancel(void **state)
{
    struct fixture *f = *state;
    struct fake_job *fj = new_fake(f, "m0", &fake_mirror, NULL, true, true);

    fj->mirror_like = true;
    job_start(&fj->job);
    wait_status(f, &fj->job, JOB_STATUS_READY);
    assert_int_equal(job_user_pause(&fj->job, NULL), 0);
    wait_status(f, &fj->job, JOB_STATUS_STANDBY);
    assert_int_equal(job_user_resume(&fj->job, NULL), 0);
    wait_status(f, &fj->job, JOB_STATUS_READY);
    assert_int_equal(job_complete(&fj->job, NULL), 0);
    wait_idle(f);
    assert_string_equal(f->log, "m0:created m0:running m0:ready "
                        "m0:BLOCK_JOB_READY m0:standby m0:ready m0:waiting "
                        "m0:pending m0:BLOCK_JOB_COMPLETED m0:concluded "
                        "m0:null ");

    f->log[0] = '\0';
    fj = new_fake(f, "m1", &fake_mirror, NULL, true, true);
    fj->mirror_like = true;
    job_start(&fj->job);
    wait_status(f, &fj->job, JOB_STATUS_READY);
    assert_int_equal(job_user_cancel(&fj->job, false, NULL), 0);
    wait_idle(f);
    assert_string_equal(f->log, "m1:created m1:running m1:ready "
                        "m1:BLOCK_JOB_READY m1:waiting m1:pending "
                        "m1:BLOCK_JOB_COMPLETED m1:concluded m1:null ");
}

/* Grouped transaction: when jb fails, ja is cancelled; order as observed
 * in QEMU: jb aborting, ja aborting, COMPLETED(jb, error), jb concluded,
 * CANCELLED(ja), ja concluded. */
static void test_job_txn_grouped_failure(void **state)
{
    struct fixture *f = *state;
    struct job_txn *txn = job_txn_new(f->m);
    struct fake_job *ja = new_fake(f, "ja", &fake_backup, txn, true, true);
    struct fake_job *jb = new_fake(f, "jb", &fake_backup, txn, true, true);
    const char *tail = NULL;

    job_txn_unref(txn);
    ja->steps = 1000000;
    jb->fail_at = 2;
    jb->fail_times = 1;
    jb->fail_errno = EIO;
    job_start(&ja->job);
    job_start(&jb->job);
    wait_idle(f);
    tail = strstr(f->log, "jb:aborting");
    assert_non_null(tail);
    assert_string_equal(tail, "jb:aborting ja:aborting "
                        "jb:BLOCK_JOB_COMPLETED(Input/output error) "
                        "jb:concluded jb:null ja:BLOCK_JOB_CANCELLED "
                        "ja:concluded ja:null ");
}

/* Grouped success waits for the slowest member; a failing prepare turns
 * the whole group into an abort. */
static void test_job_txn_prepare_failure(void **state)
{
    struct fixture *f = *state;
    struct job_txn *txn = job_txn_new(f->m);
    struct fake_job *ja = new_fake(f, "pa", &fake_backup, txn, true, false);
    struct fake_job *jb = new_fake(f, "pb", &fake_backup, txn, true, false);

    job_txn_unref(txn);
    jb->prepare_ret = -ENOSPC;
    job_start(&ja->job);
    job_start(&jb->job);
    wait_idle(f);
    assert_int_equal(ja->commits + jb->commits, 0);
    assert_int_equal(ja->aborts, 1);
    assert_int_equal(jb->aborts, 1);
    assert_non_null(strstr(f->log,
                           "pb:BLOCK_JOB_COMPLETED(No space left on device)"));
    assert_non_null(strstr(f->log, "pa:BLOCK_JOB_CANCELLED"));
    assert_int_equal(job_dismiss(&ja->job, NULL), 0);
    assert_int_equal(job_dismiss(&jb->job, NULL), 0);
}

/* block-job-set-speed is visible in query-block-jobs. */
static void test_job_set_speed_query(void **state)
{
    struct fixture *f = *state;
    struct fake_job *fj = new_fake(f, "rl", &fake_backup, NULL, true, true);
    json_t *info;

    assert_int_equal(job_set_speed(&fj->job, 1000, NULL), 0);
    info = job_query_block_info(&fj->job);
    assert_int_equal(json_integer_value(json_object_get(info, "speed")), 1000);
    json_decref(info);
    job_user_cancel(&fj->job, true, NULL);
    wait_idle(f);
}

int unit_run_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_job_happy_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_manual_finalize_dismiss,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_error_report, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_job_error_ignore, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_job_error_stop_resume, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_job_error_enospc_eio, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_job_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_cancel_created, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_job_verbs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_ready_complete_and_soft_cancel,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_txn_grouped_failure, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_job_txn_prepare_failure, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_job_can_progress, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_job_set_speed_query, setup,
                                        teardown),
    };

    return cmocka_run_group_tests_name("job", tests, NULL, NULL);
}
