/*
 * monitor/qmp-mirror.c - blockdev-mirror, drive-mirror and block-job-change
 * (QEMU 10.0.2's arguments; behaviour in jobs/mirror.h).
 *
 * Argument tables follow qapi/block-core.json so that the dispatcher's
 * validation and query-commands say what QEMU says. The handlers resolve
 * names (QEMU's lookup messages), drive-mirror creates and opens the target
 * image, and mirror_start() does the rest in QEMU's order.
 */
#include "common/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cutils.h"
#include "driver/block-int.h"
#include "jobs/job.h"
#include "jobs/mirror.h"
#include "monitor/qmp-cmds.h"

/* ------------------------------------------------------------------ */
/* QAPI types                                                           */

static const char *const on_error_values[] = {
    "report", "ignore", "enospc", "stop", "auto", NULL,
};
static const struct qapi_type on_error_type = {
    .kind = QAPI_ENUM, .name = "BlockdevOnError",
    .enum_values = on_error_values,
};
static const struct qapi_type sync_type = {
    .kind = QAPI_ENUM, .name = "MirrorSyncMode",
    .enum_values = mirror_sync_names,
};
static const struct qapi_type copy_mode_type = {
    .kind = QAPI_ENUM, .name = "MirrorCopyMode",
    .enum_values = mirror_copy_mode_names,
};
static const char *const new_image_mode_values[] = {
    "existing", "absolute-paths", NULL,
};
static const struct qapi_type new_image_mode_type = {
    .kind = QAPI_ENUM, .name = "NewImageMode",
    .enum_values = new_image_mode_values,
};
static const struct qapi_type job_type_type = {
    .kind = QAPI_ENUM, .name = "JobType",
    .enum_values = job_type_names,
};

static const struct qapi_member blockdev_mirror_members[] = {
    { "job-id", &qapi_type_str, true },
    { "device", &qapi_type_str, false },
    { "target", &qapi_type_str, false },
    { "replaces", &qapi_type_str, true },
    { "sync", &sync_type, false },
    { "speed", &qapi_type_int, true },
    { "granularity", &qapi_type_uint32, true },
    { "buf-size", &qapi_type_int, true },
    { "on-source-error", &on_error_type, true },
    { "on-target-error", &on_error_type, true },
    { "filter-node-name", &qapi_type_str, true },
    { "copy-mode", &copy_mode_type, true },
    { "auto-finalize", &qapi_type_bool, true },
    { "auto-dismiss", &qapi_type_bool, true },
    { NULL, NULL, false },
};
static const struct qapi_type blockdev_mirror_args = {
    .kind = QAPI_STRUCT, .name = "q_obj_blockdev-mirror-arg",
    .members = blockdev_mirror_members,
};

static const struct qapi_member drive_mirror_members[] = {
    { "job-id", &qapi_type_str, true },
    { "device", &qapi_type_str, false },
    { "target", &qapi_type_str, false },
    { "format", &qapi_type_str, true },
    { "node-name", &qapi_type_str, true },
    { "replaces", &qapi_type_str, true },
    { "sync", &sync_type, false },
    { "mode", &new_image_mode_type, true },
    { "speed", &qapi_type_int, true },
    { "granularity", &qapi_type_uint32, true },
    { "buf-size", &qapi_type_int, true },
    { "on-source-error", &on_error_type, true },
    { "on-target-error", &on_error_type, true },
    { "unmap", &qapi_type_bool, true },
    { "copy-mode", &copy_mode_type, true },
    { "auto-finalize", &qapi_type_bool, true },
    { "auto-dismiss", &qapi_type_bool, true },
    { NULL, NULL, false },
};
static const struct qapi_type drive_mirror_args = {
    .kind = QAPI_STRUCT, .name = "DriveMirror",
    .members = drive_mirror_members,
};

static const struct qapi_member change_base_members[] = {
    { "id", &qapi_type_str, false },
    { "type", &job_type_type, false },
    { NULL, NULL, false },
};
static const struct qapi_member change_mirror_members[] = {
    { "copy-mode", &copy_mode_type, false },
    { NULL, NULL, false },
};
static const struct qapi_type change_mirror_type = {
    .kind = QAPI_STRUCT, .name = "BlockJobChangeOptionsMirror",
    .members = change_mirror_members,
};
static const struct qapi_member no_members[] = {
    { NULL, NULL, false },
};
static const struct qapi_type change_empty_type = {
    .kind = QAPI_STRUCT, .name = "q_empty", .members = no_members,
};
static const struct qapi_variant change_variants[] = {
    { "commit", &change_empty_type },
    { "stream", &change_empty_type },
    { "mirror", &change_mirror_type },
    { "backup", &change_empty_type },
    { "create", &change_empty_type },
    { "amend", &change_empty_type },
    { "snapshot-load", &change_empty_type },
    { "snapshot-save", &change_empty_type },
    { "snapshot-delete", &change_empty_type },
    { NULL, NULL },
};
static const struct qapi_type block_job_change_args = {
    .kind = QAPI_UNION, .name = "BlockJobChangeOptions",
    .members = change_base_members, .discriminator = "type",
    .variants = change_variants,
};

/* ------------------------------------------------------------------ */
/* Argument helpers (arguments were validated against the tables)       */

static const char *arg_str(json_t *args, const char *key)
{
    return json_string_value(json_object_get(args, key));
}

static int64_t arg_int(json_t *args, const char *key, int64_t def)
{
    json_t *v = json_object_get(args, key);

    return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

static bool arg_bool(json_t *args, const char *key, bool def)
{
    json_t *v = json_object_get(args, key);

    return json_is_boolean(v) ? json_is_true(v) : def;
}

static int arg_enum(json_t *args, const char *key, const char *const *names,
                    int def)
{
    const char *v = arg_str(args, key);
    int i;

    if (v) {
        for (i = 0; names[i]; i++) {
            if (!strcmp(names[i], v)) {
                return i;
            }
        }
    }
    return def;
}

static struct job_manager *jobs_of(const struct qmp_context *ctx,
                                   struct bd_error **errp)
{
    if (!ctx->jobs) {
        bd_error_setg(errp, "Block jobs are not available here");
    }
    return ctx->jobs;
}

/* Members both mirror commands share. */
static void common_opts(json_t *args, struct mirror_opts *o)
{
    mirror_opts_init(o);
    o->job_id = arg_str(args, "job-id");
    o->replaces = arg_str(args, "replaces");
    o->sync = (enum mirror_sync_mode)arg_enum(args, "sync",
                                              mirror_sync_names,
                                              MIRROR_SYNC_FULL);
    o->speed = arg_int(args, "speed", 0);
    o->granularity = (uint64_t)arg_int(args, "granularity", 0);
    o->buf_size = arg_int(args, "buf-size", 0);
    o->on_source_error = (enum job_on_error)arg_enum(
        args, "on-source-error", on_error_values, JOB_ON_ERROR_REPORT);
    o->on_target_error = (enum job_on_error)arg_enum(
        args, "on-target-error", on_error_values, JOB_ON_ERROR_REPORT);
    o->copy_mode = (enum mirror_copy_mode)arg_enum(
        args, "copy-mode", mirror_copy_mode_names, MIRROR_COPY_BACKGROUND);
    o->auto_finalize = arg_bool(args, "auto-finalize", true);
    o->auto_dismiss = arg_bool(args, "auto-dismiss", true);
}

/* ------------------------------------------------------------------ */
/* blockdev-mirror                                                      */

static json_t *qmp_blockdev_mirror(const struct qmp_context *ctx,
                                   json_t *args, struct bd_error **errp)
{
    struct job_manager *m = jobs_of(ctx, errp);
    struct mirror_opts o;

    if (!m) {
        return NULL;
    }
    common_opts(args, &o);
    o.filter_node_name = arg_str(args, "filter-node-name");
    o.source = mirror_lookup_root(ctx->graph, arg_str(args, "device"), errp);
    if (!o.source) {
        return NULL;
    }
    o.target = mirror_lookup_node(ctx->graph, arg_str(args, "target"), errp);
    if (!o.target) {
        return NULL;
    }
    if (!mirror_start(m, &o, errp)) {
        return NULL;
    }
    return json_object();
}

/* ------------------------------------------------------------------ */
/* drive-mirror                                                         */

/* Create the target image for mode=absolute-paths (QEMU's
 * bdrv_img_create: same size as the source; sync=none gets the source as
 * backing file, sync=top the source's backing file). */
static int create_target(struct bd_node *source, const char *filename,
                         const char *format, enum mirror_sync_mode sync,
                         struct bd_error **errp)
{
    const struct bd_driver *drv = bd_find_driver(format);
    struct bd_node *backing = bd_node_backing(bd_skip_filters(source));
    const char *backing_file = NULL;
    json_t *opts = NULL;
    int ret;

    if (!drv) {
        bd_error_setg(errp, "Unknown file format '%s'", format);
        return -EINVAL;
    }
    if (sync == MIRROR_SYNC_NONE) {
        backing_file = bd_node_filename(source);
    } else if (sync == MIRROR_SYNC_TOP && backing) {
        backing_file = bd_node_filename(backing);
    }
    if (backing_file && !drv->supports_backing) {
        bd_error_setg(errp, "Backing file not supported for file format '%s'",
                      format);
        return -ENOTSUP;
    }
    if (!drv->create) {
        bd_error_setg(errp, "Format driver '%s' does not support image "
                      "creation", format);
        return -ENOTSUP;
    }
    opts = json_pack("{s:I}", "size", (json_int_t)bd_getlength(source));
    if (backing_file) {
        json_object_set_new(opts, "backing_file", json_string(backing_file));
    }
    ret = drv->create(filename, opts, errp);
    json_decref(opts);
    return ret;
}

static json_t *qmp_drive_mirror(const struct qmp_context *ctx, json_t *args,
                                struct bd_error **errp)
{
    struct job_manager *m = jobs_of(ctx, errp);
    struct mirror_opts o;
    const char *filename = arg_str(args, "target");
    const char *format = arg_str(args, "format");
    const char *node_name = arg_str(args, "node-name");
    bool existing;
    struct bd_node *target = NULL;
    json_t *topts = NULL;
    struct job *job = NULL;

    if (!m) {
        return NULL;
    }
    common_opts(args, &o);
    o.unmap = arg_bool(args, "unmap", true);
    existing = arg_enum(args, "mode", new_image_mode_values, 1) == 0;
    o.source = mirror_lookup_root(ctx->graph, arg_str(args, "device"), errp);
    if (!o.source) {
        return NULL;
    }
    if (o.sync == MIRROR_SYNC_INCREMENTAL || o.sync == MIRROR_SYNC_BITMAP) {
        bd_error_setg(errp, "Sync mode '%s' not supported",
                      mirror_sync_names[o.sync]);
        return NULL;
    }
    if (!format && !existing) {
        format = bd_node_driver_name(bd_skip_filters(o.source));
    }
    if (format && !bd_find_driver(format)) {
        bd_error_setg(errp, "Unknown file format '%s'", format);
        return NULL;
    }
    if (!existing &&
        create_target(o.source, filename, format, o.sync, errp) < 0) {
        return NULL;
    }
    topts = json_object();
    if (format) {
        json_object_set_new(topts, "driver", json_string(format));
    }
    if (node_name) {
        json_object_set_new(topts, "node-name", json_string(node_name));
    }
    target = bd_open(ctx->graph, filename, topts, BD_O_RDWR, errp);
    if (!target) {
        return NULL;
    }
    /* A freshly created image reads as zeroes where the driver says so:
     * no need to write zeroes there. */
    o.target_is_zero = !existing && o.sync == MIRROR_SYNC_FULL &&
                       target->drv->has_zero_init &&
                       target->drv->has_zero_init(target) > 0;
    o.target = target;
    job = mirror_start(m, &o, errp);
    /* The job holds its own reference; without a job the node goes. */
    bd_unref(target);
    return job ? json_object() : NULL;
}

/* ------------------------------------------------------------------ */
/* block-job-change                                                     */

static json_t *qmp_block_job_change(const struct qmp_context *ctx,
                                    json_t *args, struct bd_error **errp)
{
    struct job_manager *m = jobs_of(ctx, errp);
    const char *id = arg_str(args, "id");
    const char *type = arg_str(args, "type");
    struct job *job = NULL;
    int ret;

    if (!m) {
        return NULL;
    }
    job_lock(m);
    job = job_find(m, id);
    if (!job) {
        job_unlock(m);
        bd_error_set(errp, BD_ERR_DEVICE_NOT_ACTIVE,
                     "Block job '%s' not found", id);
        return NULL;
    }
    /* Deliberate difference (docs/compat.md): QEMU 10.0 applies the
     * options of whatever type is named to any job. */
    if (strcmp(type, job_type_names[job->drv->type])) {
        bd_error_setg(errp, "Job '%s' is of type '%s', not '%s'", id,
                      job_type_names[job->drv->type], type);
        job_unlock(m);
        return NULL;
    }
    ret = job_change(job, args, errp);
    job_unlock(m);
    return ret < 0 ? NULL : json_object();
}

const struct qmp_command qmp_cmds_mirror[] = {
    { "blockdev-mirror", &blockdev_mirror_args, qmp_blockdev_mirror, 0 },
    { "drive-mirror", &drive_mirror_args, qmp_drive_mirror, 0 },
    { "block-job-change", &block_job_change_args, qmp_block_job_change, 0 },
    { NULL, NULL, NULL, 0 },
};
