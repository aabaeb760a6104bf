/*
 * monitor/qmp-jobs.c - the generic job verbs over QMP (specs/jobs.md §1):
 * query-jobs, query-block-jobs, job-pause/resume/cancel/complete/finalize/
 * dismiss and their block-job-* forms, block-job-set-speed.
 *
 * The job-* forms look a job up by "id" and fail with "Job not found"
 * (GenericError); the block-job-* forms by "device" and fail with
 * "Block job '<id>' not found" (DeviceNotActive), as QEMU does. Everything
 * else (state checks, messages) is jobs/job.c's.
 */
#include "common/config.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "jobs/job.h"
#include "jobs/txn-actions.h"
#include "monitor/qmp-cmds.h"


static const struct qapi_member id_members[] = {
    { "id", &qapi_type_str, false },
    { NULL, NULL, false },
};
static const struct qapi_type id_args = {
    .kind = QAPI_STRUCT, .name = "q_obj_job-id-arg", .members = id_members,
};

static const struct qapi_member device_members[] = {
    { "device", &qapi_type_str, false },
    { NULL, NULL, false },
};
static const struct qapi_type device_args = {
    .kind = QAPI_STRUCT, .name = "q_obj_block-job-device-arg",
    .members = device_members,
};

static const struct qapi_member cancel_members[] = {
    { "device", &qapi_type_str, false },
    { "force", &qapi_type_bool, true },
    { NULL, NULL, false },
};
static const struct qapi_type cancel_args = {
    .kind = QAPI_STRUCT, .name = "q_obj_block-job-cancel-arg",
    .members = cancel_members,
};

static const struct qapi_member speed_members[] = {
    { "device", &qapi_type_str, false },
    { "speed", &qapi_type_int, false },
    { NULL, NULL, false },
};
static const struct qapi_type speed_args = {
    .kind = QAPI_STRUCT, .name = "q_obj_block-job-set-speed-arg",
    .members = speed_members,
};

static struct job_manager *mgr_of(const struct qmp_context *ctx,
                                  struct bd_error **errp)
{
    if (!ctx->jobs) {
        bd_error_setg(errp, "Jobs are not available");
    }
    return ctx->jobs;
}

static const char *arg_str(json_t *args, const char *key)
{
    return json_string_value(json_object_get(args, key));
}

/*
 * Look the job up with the manager lock held; the caller unlocks. The lock
 * is recursive, so the verbs (which lock again) run under it and the job
 * cannot be dismissed between lookup and verb.
 */
static struct job *find_job(const struct qmp_context *ctx, json_t *args,
                            bool block_form, struct bd_error **errp)
{
    struct job_manager *m = mgr_of(ctx, errp);
    const char *id = arg_str(args, block_form ? "device" : "id");
    struct job *job;

    if (!m) {
        return NULL;
    }
    if (!id) {
        bd_error_setg(errp, "Parameter '%s' is missing",
                      block_form ? "device" : "id");
        return NULL;
    }
    job_lock(m);
    job = job_find(m, id);
    if (!job) {
        job_unlock(m);
        if (block_form) {
            bd_error_set(errp, BD_ERR_DEVICE_NOT_ACTIVE,
                         "Block job '%s' not found", id);
        } else {
            bd_error_setg(errp, "Job not found");
        }
    }
    return job;
}

/* Run one verb on the job named in args; the shared shape of every
 * command below. */
enum verb_op {
    OP_PAUSE, OP_RESUME, OP_CANCEL, OP_COMPLETE, OP_FINALIZE, OP_DISMISS,
};

static json_t *do_verb(const struct qmp_context *ctx, json_t *args,
                       bool block_form, enum verb_op op,
                       struct bd_error **errp)
{
    struct job *job = find_job(ctx, args, block_form, errp);
    struct job_manager *m;
    int ret = 0;

    if (!job) {
        return NULL;
    }
    m = job->mgr;
    switch (op) {
    case OP_PAUSE:
        ret = job_user_pause(job, errp);
        break;
    case OP_RESUME:
        ret = job_user_resume(job, errp);
        break;
    case OP_CANCEL:
        if (block_form) {
            bool force = json_is_true(json_object_get(args, "force"));

            /* QEMU checks the pause before the verb table. */
            if (job->user_paused && !force) {
                bd_error_setg(errp, "The block job for device '%s' is "
                              "currently paused", job->id);
                ret = -EBUSY;
                break;
            }
            ret = job_user_cancel(job, force, errp);
        } else {
            ret = job_user_cancel(job, true, errp);
        }
        break;
    case OP_COMPLETE:
        ret = job_complete(job, errp);
        break;
    case OP_FINALIZE:
        ret = job_finalize(job, errp);
        break;
    case OP_DISMISS:
        ret = job_dismiss(job, errp);
        break;
    }
    job_unlock(m);
    return ret < 0 ? NULL : json_object();
}

#define VERB_HANDLERS(name, op) \
    static json_t *qmp_job_##name(const struct qmp_context *ctx, \
                                  json_t *args, struct bd_error **errp) \
    { \
        return do_verb(ctx, args, false, op, errp); \
    } \
    static json_t *qmp_block_job_##name(const struct qmp_context *ctx, \
                                        json_t *args, \
                                        struct bd_error **errp) \
    { \
        return do_verb(ctx, args, true, op, errp); \
    }

VERB_HANDLERS(pause, OP_PAUSE)
VERB_HANDLERS(resume, OP_RESUME)
VERB_HANDLERS(cancel, OP_CANCEL)
VERB_HANDLERS(complete, OP_COMPLETE)
VERB_HANDLERS(finalize, OP_FINALIZE)
VERB_HANDLERS(dismiss, OP_DISMISS)

static json_t *qmp_block_job_set_speed(const struct qmp_context *ctx,
                                       json_t *args, struct bd_error **errp)
{
    json_t *speed = json_object_get(args, "speed");
    struct job *job;
    int ret;

    if (!json_is_integer(speed)) {
        bd_error_setg(errp, "Invalid parameter type for 'speed', expected: "
                      "integer");
        return NULL;
    }
    job = find_job(ctx, args, true, errp);
    if (!job) {
        return NULL;
    }
    ret = job_set_speed(job, (int64_t)json_integer_value(speed), errp);
    job_unlock(job->mgr);
    return ret < 0 ? NULL : json_object();
}

static json_t *qmp_query_jobs(const struct qmp_context *ctx, json_t *args,
                              struct bd_error **errp)
{
    (void)args;
    (void)errp;
    /* No manager: there are no jobs, which is not an error. */
    return ctx->jobs ? job_query_jobs(ctx->jobs) : json_array();
}

static json_t *qmp_query_block_jobs(const struct qmp_context *ctx,
                                    json_t *args, struct bd_error **errp)
{
    (void)args;
    (void)errp;
    return ctx->jobs ? job_query_block_jobs(ctx->jobs) : json_array();
}

const struct qmp_command qmp_cmds_jobs[] = {
    { "query-jobs", NULL, qmp_query_jobs, 0 },
    { "query-block-jobs", NULL, qmp_query_block_jobs, 0 },
    { "job-pause", &id_args, qmp_job_pause, 0 },
    { "job-resume", &id_args, qmp_job_resume, 0 },
    { "job-cancel", &id_args, qmp_job_cancel, 0 },
    { "job-complete", &id_args, qmp_job_complete, 0 },
    { "job-finalize", &id_args, qmp_job_finalize, 0 },
    { "job-dismiss", &id_args, qmp_job_dismiss, 0 },
    { "block-job-pause", &device_args, qmp_block_job_pause, 0 },
    { "block-job-resume", &device_args, qmp_block_job_resume, 0 },
    { "block-job-cancel", &cancel_args, qmp_block_job_cancel, 0 },
    { "block-job-complete", &device_args, qmp_block_job_complete, 0 },
    { "block-job-finalize", &device_args, qmp_block_job_finalize, 0 },
    { "block-job-dismiss", &device_args, qmp_block_job_dismiss, 0 },
    { "block-job-set-speed", &speed_args, qmp_block_job_set_speed, 0 },
    { NULL, NULL, NULL, 0 },
};

const struct qmp_command *qmp_jobs_commands(void)
{
    return qmp_cmds_jobs;
}
