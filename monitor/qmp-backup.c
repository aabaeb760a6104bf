/*
 * monitor/qmp-backup.c - blockdev-backup, drive-backup and transaction
 * (specs/jobs.md §1.9, §3.1-§3.2).
 *
 * Argument checks follow QEMU's order and words (do_backup_common); the
 * rest happens in backup_job_create. A backup action creates its job in
 * prepare and starts it in commit, so a transaction that fails later
 * cancels the never-started job, which undoes the filter and the bitmap.
 */
#include "common/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cutils.h"
#include "driver/blk-int.h"
#include "driver/block-int.h"
#include "driver/dirty-bitmap.h"
#include "jobs/backup.h"
#include "jobs/block-copy.h"
#include "jobs/job.h"
#include "jobs/txn-actions.h"
#include "monitor/qmp-cmds.h"


/* ------------------------------------------------------------------ */
/* Schemas                                                              */

static const char *const sync_values[] = {
    "top", "full", "none", "incremental", "bitmap", NULL,
};
static const struct qapi_type sync_enum = {
    .kind = QAPI_ENUM, .name = "MirrorSyncMode", .enum_values = sync_values,
};
static const char *const bitmap_mode_values[] = {
    "on-success", "never", "always", NULL,
};
static const struct qapi_type bitmap_mode_enum = {
    .kind = QAPI_ENUM, .name = "BitmapSyncMode",
    .enum_values = bitmap_mode_values,
};
static const char *const on_error_values[] = {
    "report", "ignore", "enospc", "stop", "auto", NULL,
};
static const struct qapi_type on_error_enum = {
    .kind = QAPI_ENUM, .name = "BlockdevOnError",
    .enum_values = on_error_values,
};
static const char *const new_image_mode_values[] = {
    "existing", "absolute-paths", NULL,
};
static const struct qapi_type new_image_mode_enum = {
    .kind = QAPI_ENUM, .name = "NewImageMode",
    .enum_values = new_image_mode_values,
};
static const struct qapi_member perf_members[] = {
    { "use-copy-range", &qapi_type_bool, true },
    { "max-workers", &qapi_type_int, true },
    { "max-chunk", &qapi_type_int, true },
    { "min-cluster-size", &qapi_type_int, true },
    { NULL, NULL, false },
};
static const struct qapi_type perf_struct = {
    .kind = QAPI_STRUCT, .name = "BackupPerf", .members = perf_members,
};

#define BACKUP_COMMON_MEMBERS \
    { "job-id", &qapi_type_str, true }, \
    { "device", &qapi_type_str, false }, \
    { "sync", &sync_enum, false }, \
    { "speed", &qapi_type_int, true }, \
    { "bitmap", &qapi_type_str, true }, \
    { "bitmap-mode", &bitmap_mode_enum, true }, \
    { "compress", &qapi_type_bool, true }, \
    { "on-source-error", &on_error_enum, true }, \
    { "on-target-error", &on_error_enum, true }, \
    { "on-cbw-error", &cbw_on_error_type, true }, \
    { "auto-finalize", &qapi_type_bool, true }, \
    { "auto-dismiss", &qapi_type_bool, true }, \
    { "filter-node-name", &qapi_type_str, true }, \
    { "discard-source", &qapi_type_bool, true }, \
    { "x-perf", &perf_struct, true }

static const struct qapi_member blockdev_backup_members[] = {
    BACKUP_COMMON_MEMBERS,
    { "target", &qapi_type_str, false },
    { NULL, NULL, false },
};
const struct qapi_type qmp_blockdev_backup_args = {
    .kind = QAPI_STRUCT, .name = "BlockdevBackup",
    .members = blockdev_backup_members,
};

static const struct qapi_member drive_backup_members[] = {
    BACKUP_COMMON_MEMBERS,
    { "target", &qapi_type_str, false },
    { "format", &qapi_type_str, true },
    { "mode", &new_image_mode_enum, true },
    { NULL, NULL, false },
};
const struct qapi_type qmp_drive_backup_args = {
    .kind = QAPI_STRUCT, .name = "DriveBackup",
    .members = drive_backup_members,
};

/* transaction: actions are a union on "type" with the command's
 * arguments in "data". */
static const struct qapi_member empty_members[] = {
    { NULL, NULL, false },
};
static const struct qapi_type empty_struct = {
    .kind = QAPI_STRUCT, .name = "Abort", .members = empty_members,
};
#define WRAPPER(sym, inner) \
    static const struct qapi_member sym##_members[] = { \
        { "data", &(inner), false }, \
        { NULL, NULL, false }, \
    }; \
    static const struct qapi_type sym = { \
        .kind = QAPI_STRUCT, .name = #sym, .members = sym##_members, \
    }
WRAPPER(w_abort, empty_struct);
WRAPPER(w_bitmap_add, qmp_bitmap_add_args);
WRAPPER(w_bitmap, bd_qapi_block_dirty_bitmap);
WRAPPER(w_bitmap_merge, qmp_bitmap_merge_args);
WRAPPER(w_blockdev_backup, qmp_blockdev_backup_args);
WRAPPER(w_drive_backup, qmp_drive_backup_args);

static const char *const action_type_values[] = {
    "abort", "block-dirty-bitmap-add", "block-dirty-bitmap-remove",
    "block-dirty-bitmap-clear", "block-dirty-bitmap-enable",
    "block-dirty-bitmap-disable", "block-dirty-bitmap-merge",
    "blockdev-backup", "drive-backup", NULL,
};
static const struct qapi_type action_type_enum = {
    .kind = QAPI_ENUM, .name = "TransactionActionKind",
    .enum_values = action_type_values,
};
static const struct qapi_member action_base[] = {
    { "type", &action_type_enum, false },
    { NULL, NULL, false },
};
static const struct qapi_variant action_variants[] = {
    { "abort", &w_abort },
    { "block-dirty-bitmap-add", &w_bitmap_add },
    { "block-dirty-bitmap-remove", &w_bitmap },
    { "block-dirty-bitmap-clear", &w_bitmap },
    { "block-dirty-bitmap-enable", &w_bitmap },
    { "block-dirty-bitmap-disable", &w_bitmap },
    { "block-dirty-bitmap-merge", &w_bitmap_merge },
    { "blockdev-backup", &w_blockdev_backup },
    { "drive-backup", &w_drive_backup },
    { NULL, NULL },
};
static const struct qapi_type action_union = {
    .kind = QAPI_UNION, .name = "TransactionAction", .members = action_base,
    .discriminator = "type", .variants = action_variants,
};
static const struct qapi_type action_list = {
    .kind = QAPI_LIST, .name = "TransactionActionList",
    .element = &action_union,
};
static const char *const completion_mode_values[] = {
    "individual", "grouped", NULL,
};
static const struct qapi_type completion_mode_enum = {
    .kind = QAPI_ENUM, .name = "ActionCompletionMode",
    .enum_values = completion_mode_values,
};
static const struct qapi_member txn_props_members[] = {
    { "completion-mode", &completion_mode_enum, true },
    { NULL, NULL, false },
};
static const struct qapi_type txn_props = {
    .kind = QAPI_STRUCT, .name = "TransactionProperties",
    .members = txn_props_members,
};
static const struct qapi_member transaction_members[] = {
    { "actions", &action_list, false },
    { "properties", &txn_props, true },
    { NULL, NULL, false },
};
static const struct qapi_type transaction_args = {
    .kind = QAPI_STRUCT, .name = "q_obj_transaction-arg",
    .members = transaction_members,
};

/* ------------------------------------------------------------------ */
/* Helpers                                                              */

static const char *arg_str(json_t *args, const char *key)
{
    return json_string_value(json_object_get(args, key));
}

static bool arg_bool(json_t *args, const char *key, bool dflt)
{
    json_t *v = json_object_get(args, key);

    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

/* Enum member: index, dflt when absent, -1 with QAPI's message. */
static int arg_enum(json_t *args, const char *key,
                    const char *const *values, int dflt,
                    struct bd_error **errp)
{
    json_t *v = json_object_get(args, key);
    int i;

    if (!v) {
        if (dflt < 0) {
            bd_error_setg(errp, "Parameter '%s' is missing", key);
        }
        return dflt;
    }
    for (i = 0; json_is_string(v) && values[i]; i++) {
        if (!strcmp(values[i], json_string_value(v))) {
            return i;
        }
    }
    if (json_is_string(v)) {
        bd_error_setg(errp, "Parameter '%s' does not accept value '%s'", key,
                      json_string_value(v));
    } else {
        bd_error_setg(errp, "Invalid parameter type for '%s', expected: "
                      "string", key);
    }
    return -1;
}

static struct bd_node *lookup_bs(struct bd_graph *g, const char *name,
                                 struct bd_error **errp)
{
    struct bd_node *bs = name ? bd_graph_find_node(g, name) : NULL;
    struct bd_blk *blk;

    if (!bs && name && (blk = bd_blk_find(g, name))) {
        bs = bd_blk_node(blk);
    }
    if (!bs) {
        bd_error_setg(errp, "Cannot find device='%s' nor node-name='%s'",
                      name ? name : "", name ? name : "");
    }
    return bs;
}

/* The name of a backend attached to bs ("" if none): the default job id. */
static const char *device_name(struct bd_graph *g, struct bd_node *bs)
{
    struct bd_list *head = bd_graph_blk_list(g);
    struct bd_list *pos;
    const char *name = "";

    bd_graph_lock(g);
    bd_list_for_each(pos, head) {
        struct bd_blk *b = bd_blk_from_link(pos);

        if (bd_blk_node(b) == bs && bd_blk_name(b)) {
            name = bd_blk_name(b);
            break;
        }
    }
    bd_graph_unlock(g);
    return name;
}

/*
 * BackupCommon (do_backup_common): fill p from args for the source bs.
 * Returns 0 or -EINVAL with QEMU's message.
 */
static int parse_common(struct bd_graph *g, struct bd_node *bs, json_t *args,
                        struct backup_params *p, struct bd_error **errp)
{
    json_t *perf = json_object_get(args, "x-perf");
    json_t *v;
    const char *bitmap = arg_str(args, "bitmap");
    bool has_mode = json_object_get(args, "bitmap-mode") != NULL;
    int sync;
    int mode;
    int r;

    memset(p, 0, sizeof(*p));
    p->source = bs;
    sync = arg_enum(args, "sync", sync_values, -1, errp);
    if (sync < 0) {
        return -EINVAL;
    }
    mode = arg_enum(args, "bitmap-mode", bitmap_mode_values,
                    BACKUP_BITMAP_ON_SUCCESS, errp);
    if (mode < 0) {
        return -EINVAL;
    }
    v = json_object_get(args, "speed");
    p->speed = json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
    r = arg_enum(args, "on-source-error", on_error_values, 0, errp);
    if (r < 0) {
        return -EINVAL;
    }
    p->on_source_error = (enum job_on_error)r;
    r = arg_enum(args, "on-target-error", on_error_values, 0, errp);
    if (r < 0) {
        return -EINVAL;
    }
    p->on_target_error = (enum job_on_error)r;
    r = arg_enum(args, "on-cbw-error", cbw_on_error_names, 0, errp);
    if (r < 0) {
        return -EINVAL;
    }
    p->on_cbw_error = r;
    p->compress = arg_bool(args, "compress", false);
    p->auto_finalize = arg_bool(args, "auto-finalize", true);
    p->auto_dismiss = arg_bool(args, "auto-dismiss", true);
    p->discard_source = arg_bool(args, "discard-source", false);
    p->filter_node_name = arg_str(args, "filter-node-name");
    p->job_id = arg_str(args, "job-id");
    if (!p->job_id) {
        p->job_id = device_name(g, bs);
    }
    if (json_is_object(perf)) {
        json_t *w = json_object_get(perf, "max-workers");
        json_t *c = json_object_get(perf, "max-chunk");
        json_t *mc = json_object_get(perf, "min-cluster-size");

        if (w && (json_integer_value(w) < 1 ||
                  json_integer_value(w) > 2147483647)) {
            bd_error_setg(errp, "max-workers must be between 1 and "
                          "2147483647");
            return -EINVAL;
        }
        if (c && json_integer_value(c) < 0) {
            bd_error_setg(errp, "max-chunk must be zero (which means no "
                          "limit) or positive");
            return -EINVAL;
        }
        p->max_chunk = c ? (int64_t)json_integer_value(c) : 0;
        p->max_workers = w ? (int64_t)json_integer_value(w) : 0;
        p->min_cluster_size = mc ? (int64_t)json_integer_value(mc) : 0;
    }

    /* §3.2 steps 1-4, in QEMU's order. */
    if ((sync == BACKUP_SYNC_BITMAP || sync == BACKUP_SYNC_INCREMENTAL) &&
        !bitmap) {
        bd_error_setg(errp, "must provide a valid bitmap name for '%s' sync "
                      "mode", sync_values[sync]);
        return -EINVAL;
    }
    if (sync == BACKUP_SYNC_INCREMENTAL) {
        if (has_mode && mode != BACKUP_BITMAP_ON_SUCCESS) {
            bd_error_setg(errp, "Bitmap sync mode must be 'on-success' when "
                          "using sync mode 'incremental'");
            return -EINVAL;
        }
        has_mode = true;
        sync = BACKUP_SYNC_BITMAP;
        mode = BACKUP_BITMAP_ON_SUCCESS;
    }
    if (bitmap) {
        struct bd_dirty_bitmap *bm = bd_dirty_bitmap_find(bs, bitmap);

        if (!bm) {
            bd_error_setg(errp, "Bitmap '%s' could not be found", bitmap);
            return -EINVAL;
        }
        if (!has_mode) {
            bd_error_setg(errp, "Bitmap sync mode must be given when "
                          "providing a bitmap");
            return -EINVAL;
        }
        if (bd_dirty_bitmap_check(bm, BD_BITMAP_ALLOW_RO, errp) < 0) {
            return -EINVAL;
        }
        if (sync == BACKUP_SYNC_NONE) {
            bd_error_setg(errp, "sync mode 'none' does not produce "
                          "meaningful bitmap outputs");
            return -EINVAL;
        }
        if (mode == BACKUP_BITMAP_NEVER && sync != BACKUP_SYNC_BITMAP) {
            bd_error_setg(errp, "Bitmap sync mode 'never' has no meaningful "
                          "effect when combined with sync mode '%s'",
                          sync_values[sync]);
            return -EINVAL;
        }
        p->bitmap = bm;
    }
    if (!bitmap && has_mode) {
        bd_error_setg(errp, "Cannot specify bitmap sync mode without a "
                      "bitmap");
        return -EINVAL;
    }
    p->sync = (enum backup_sync)sync;
    p->bitmap_mode = (enum backup_bitmap_mode)mode;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Backup actions                                                       */

struct backup_state {
    struct job *job;
    struct job_manager *mgr;
    char *id;
};

static int start_backup(const struct txn_action_env *env,
                        struct bd_node *bs, struct bd_node *target,
                        json_t *args, void **state, struct bd_error **errp)
{
    struct backup_params p;
    struct backup_state *st;
    struct job *job;

    if (!env->ctx->jobs) {
        bd_error_setg(errp, "Jobs are not available");
        return -ENOTSUP;
    }
    if (parse_common(env->ctx->graph, bs, args, &p, errp) < 0) {
        return -EINVAL;
    }
    p.target = target;
    p.target_device = device_name(env->ctx->graph, target);
    p.txn = env->job_txn;
    job = backup_job_create(env->ctx->jobs, &p, errp);
    if (!job) {
        return -EINVAL;
    }
    st = bd_malloc0(sizeof(*st));
    st->job = job;
    st->mgr = env->ctx->jobs;
    st->id = bd_strdup(job->id);
    *state = st;
    return 0;
}

static int blockdev_backup_prepare(const struct txn_action_env *env,
                                   json_t *args, void **state,
                                   struct bd_error **errp)
{
    struct bd_graph *g = env->ctx->graph;
    struct bd_node *bs;
    struct bd_node *target;

    *state = NULL;
    bs = lookup_bs(g, arg_str(args, "device"), errp);
    if (!bs) {
        return -ENOENT;
    }
    target = lookup_bs(g, arg_str(args, "target"), errp);
    if (!target) {
        return -ENOENT;
    }
    return start_backup(env, bs, target, args, state, errp);
}

static int drive_backup_prepare(const struct txn_action_env *env,
                                json_t *args, void **state,
                                struct bd_error **errp)
{
    struct bd_graph *g = env->ctx->graph;
    const char *file = arg_str(args, "target");
    const char *format = arg_str(args, "format");
    struct bd_node *bs;
    struct bd_node *target;
    const struct bd_driver *drv;
    json_t *opts;
    json_t *sync_v;
    json_t *copy = NULL;
    int mode;
    int ret;

    *state = NULL;
    bs = lookup_bs(g, arg_str(args, "device"), errp);
    if (!bs) {
        return -ENOENT;
    }
    mode = arg_enum(args, "mode", new_image_mode_values, 1, errp);
    if (mode < 0 || !file) {
        if (!file) {
            bd_error_setg(errp, "Parameter 'target' is missing");
        }
        return -EINVAL;
    }
    /* sync=top without a backing file is a full copy. */
    sync_v = json_object_get(args, "sync");
    if (json_is_string(sync_v) && !strcmp(json_string_value(sync_v), "top") &&
        !bd_node_backing(bd_skip_filters(bs))) {
        copy = json_deep_copy(args);
        json_object_set_new(copy, "sync", json_string("full"));
        args = copy;
    }
    if (mode == 1) {
        /* absolute-paths: create the image, in the source's format by
         * default. */
        json_t *copts;
        int64_t len = bd_getlength(bs);

        if (!format) {
            format = bd_node_driver_name(bd_skip_filters(bs));
        }
        drv = bd_find_driver(format);
        if (!drv || !drv->create) {
            bd_error_setg(errp, "Unknown driver '%s'", format);
            json_decref(copy);
            return -EINVAL;
        }
        copts = json_pack("{s:I}", "size", (json_int_t)(len < 0 ? 0 : len));
        ret = drv->create(file, copts, errp);
        json_decref(copts);
        if (ret < 0) {
            json_decref(copy);
            return ret;
        }
    }
    opts = format ? json_pack("{s:s}", "driver", format) : NULL;
    target = bd_open(g, file, opts, BD_O_RDWR, errp);
    if (!target) {
        json_decref(copy);
        return -EINVAL;
    }
    ret = start_backup(env, bs, target, args, state, errp);
    /* The job's filter holds the target from now on. */
    bd_unref(target);
    json_decref(copy);
    return ret;
}

static void backup_commit(void *state)
{
    struct backup_state *st = state;

    job_start(st->job);
}

static void backup_abort(void *state)
{
    struct backup_state *st = state;

    if (st) {
        /* Never started: only status changes, hooks undo the rest. In a
         * grouped transaction an earlier member's cancel may already have
         * taken this job away with it. */
        job_lock(st->mgr);
        if (job_find(st->mgr, st->id) == st->job) {
            job_user_cancel(st->job, true, NULL);
        }
        job_unlock(st->mgr);
    }
}

static void backup_clean(void *state)
{
    struct backup_state *st = state;

    if (st) {
        free(st->id);
        free(st);
    }
}

static int abort_prepare(const struct txn_action_env *env, json_t *args,
                         void **state, struct bd_error **errp)
{
    (void)env;
    (void)args;
    *state = NULL;
    bd_error_setg(errp, "Transaction aborted using Abort action");
    return -ECANCELED;
}

static const struct txn_action_ops backup_actions[] = {
    { "blockdev-backup", true, blockdev_backup_prepare, backup_commit,
      backup_abort, backup_clean },
    { "drive-backup", true, drive_backup_prepare, backup_commit,
      backup_abort, backup_clean },
    { "abort", false, abort_prepare, NULL, NULL, NULL },
    { NULL, false, NULL, NULL, NULL, NULL },
};

const struct txn_action_ops *txn_backup_action(const char *kind)
{
    const struct txn_action_ops *a;

    for (a = backup_actions; a->kind; a++) {
        if (!strcmp(a->kind, kind)) {
            return a;
        }
    }
    return NULL;
}

static json_t *qmp_blockdev_backup(const struct qmp_context *ctx,
                                   json_t *args, struct bd_error **errp)
{
    return txn_run_single(&backup_actions[0], ctx, args, errp);
}

static json_t *qmp_drive_backup(const struct qmp_context *ctx, json_t *args,
                                struct bd_error **errp)
{
    return txn_run_single(&backup_actions[1], ctx, args, errp);
}

/* ------------------------------------------------------------------ */
/* transaction                                                          */

struct prepared {
    const struct txn_action_ops *ops;
    void *state;
};

static json_t *qmp_transaction(const struct qmp_context *ctx, json_t *args,
                               struct bd_error **errp)
{
    json_t *actions = json_object_get(args, "actions");
    json_t *props = json_object_get(args, "properties");
    struct txn_action_env env = { .ctx = ctx, .job_txn = NULL };
    struct prepared *done = NULL;
    size_t n;
    size_t i;
    size_t k = 0;
    int grouped = 0;
    int ret = 0;

    if (!json_is_array(actions)) {
        bd_error_setg(errp, "Parameter 'actions' is missing");
        return NULL;
    }
    if (json_is_object(props)) {
        grouped = arg_enum(props, "completion-mode", completion_mode_values,
                           0, errp);
        if (grouped < 0) {
            return NULL;
        }
    }
    if (grouped && ctx->jobs) {
        env.job_txn = job_txn_new(ctx->jobs);
    }
    n = json_array_size(actions);
    done = bd_malloc0((n + 1) * sizeof(*done));
    /* Jobs created here must not start before every action prepared. */
    for (i = 0; i < n; i++) {
        json_t *a = json_array_get(actions, i);
        const char *kind = arg_str(a, "type");
        json_t *data = json_object_get(a, "data");
        const struct txn_action_ops *ops = NULL;

        if (kind) {
            ops = txn_bitmap_action(kind);
            if (!ops) {
                ops = txn_backup_action(kind);
            }
        }
        if (!ops) {
            bd_error_setg(errp, "Parameter 'type' does not accept value "
                          "'%s'", kind ? kind : "");
            ret = -EINVAL;
            break;
        }
        if (grouped && !ops->grouped_ok) {
            bd_error_setg(errp, "Action '%s' does not support transaction "
                          "property completion-mode = grouped", kind);
            ret = -EINVAL;
            break;
        }
        if (!data) {
            data = json_object();
        } else {
            json_incref(data);
        }
        done[k].ops = ops;
        ret = ops->prepare(&env, data, &done[k].state, errp);
        json_decref(data);
        if (ret < 0) {
            /* The failed action cleaned up after itself. */
            break;
        }
        k++;
    }
    if (ret < 0) {
        /* Undo in reverse order. */
        while (k-- > 0) {
            if (done[k].ops->abort) {
                done[k].ops->abort(done[k].state);
            }
        }
    } else {
        for (i = 0; i < k; i++) {
            if (done[i].ops->commit) {
                done[i].ops->commit(done[i].state);
            }
        }
    }
    for (i = 0; i < (ret < 0 ? n : k) && i < n; i++) {
        if (done[i].ops && done[i].ops->clean) {
            done[i].ops->clean(done[i].state);
        }
    }
    free(done);
    job_txn_unref(env.job_txn);
    return ret < 0 ? NULL : json_object();
}

const struct qmp_command qmp_cmds_backup[] = {
    { "blockdev-backup", &qmp_blockdev_backup_args, qmp_blockdev_backup, 0 },
    { "drive-backup", &qmp_drive_backup_args, qmp_drive_backup, 0 },
    { "transaction", &transaction_args, qmp_transaction, 0 },
    { NULL, NULL, NULL, 0 },
};
