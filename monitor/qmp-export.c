/*
 * monitor/qmp-export.c - block-export-add, block-export-del and
 * query-block-exports over the exports of the daemon (fuse/export.h).
 *
 * The schema mirrors QEMU's BlockExportOptions for type=fuse, plus our
 * flush-on-close member (docs/fuse.md). fx_export_add validates again in
 * the same member order, so the wording is the same whether the monitor's
 * validator or the export reports a problem.
 */
#include "common/config.h"

#include <string.h>

#include "common/qapi.h"
#include "fuse/export.h"
#include "monitor/qmp-cmds.h"

static const char *const export_type_values[] = {
    "nbd", "vhost-user-blk", "fuse", "vduse-blk", NULL
};
static const struct qapi_type export_type = {
    .kind = QAPI_ENUM, .name = "BlockExportType",
    .enum_values = export_type_values,
};

static const char *const allow_other_values[] = { "off", "on", "auto", NULL };
static const struct qapi_type allow_other_type = {
    .kind = QAPI_ENUM, .name = "FuseExportAllowOther",
    .enum_values = allow_other_values,
};

static const struct qapi_member export_base_members[] = {
    { "type", &export_type, false },
    { "id", &qapi_type_str, false },
    { "fixed-iothread", &qapi_type_bool, true },
    { "iothread", &qapi_type_str, true },
    { "node-name", &qapi_type_str, false },
    { "writable", &qapi_type_bool, true },
    { "writethrough", &qapi_type_bool, true },
    { NULL, NULL, false },
};

static const struct qapi_member fuse_members[] = {
    { "mountpoint", &qapi_type_str, false },
    { "growable", &qapi_type_bool, true },
    { "allow-other", &allow_other_type, true },
    { "flush-on-close", &qapi_type_bool, true },
    { NULL, NULL, false },
};
static const struct qapi_type fuse_options = {
    .kind = QAPI_STRUCT, .name = "BlockExportOptionsFuse",
    .members = fuse_members,
};

static const struct qapi_variant export_variants[] = {
    { "fuse", &fuse_options },
    { NULL, NULL },
};

static const struct qapi_type export_options = {
    .kind = QAPI_UNION, .name = "BlockExportOptions",
    .members = export_base_members,
    .discriminator = "type",
    .variants = export_variants,
};

static const char *const del_mode_values[] = { "safe", "hard", NULL };
static const struct qapi_type del_mode_type = {
    .kind = QAPI_ENUM, .name = "BlockExportRemoveMode",
    .enum_values = del_mode_values,
};
static const struct qapi_member export_del_members[] = {
    { "id", &qapi_type_str, false },
    { "mode", &del_mode_type, true },
    { NULL, NULL, false },
};
static const struct qapi_type export_del_args = {
    .kind = QAPI_STRUCT, .name = "q_obj_block-export-del-arg",
    .members = export_del_members,
};

static struct fx_exports *exports_of(const struct qmp_context *ctx,
                                     struct bd_error **errp)
{
    if (!ctx->exports) {
        bd_error_setg(errp, "This monitor has no block exports");
    }
    return ctx->exports;
}

static json_t *qmp_block_export_add(const struct qmp_context *ctx,
                                    json_t *args, struct bd_error **errp)
{
    struct fx_exports *ex = exports_of(ctx, errp);

    if (!ex || fx_export_add(ex, args, false, errp) < 0) {
        return NULL;
    }
    return json_object();
}

static json_t *qmp_block_export_del(const struct qmp_context *ctx,
                                    json_t *args, struct bd_error **errp)
{
    struct fx_exports *ex = exports_of(ctx, errp);
    const char *id = json_string_value(json_object_get(args, "id"));
    const char *mode = json_string_value(json_object_get(args, "mode"));

    if (!ex) {
        return NULL;
    }
    if (fx_export_del(ex, id ? id : "", mode && !strcmp(mode, "hard"),
                      errp) < 0) {
        return NULL;
    }
    return json_object();
}

static json_t *qmp_query_block_exports(const struct qmp_context *ctx,
                                       json_t *args, struct bd_error **errp)
{
    (void)args;
    (void)errp;
    if (!ctx->exports) {
        return json_array();
    }
    return fx_export_query(ctx->exports);
}

const struct qmp_command qmp_cmds_export[] = {
    { "block-export-add", &export_options, qmp_block_export_add, 0 },
    { "block-export-del", &export_del_args, qmp_block_export_del, 0 },
    { "query-block-exports", NULL, qmp_query_block_exports, 0 },
    { NULL, NULL, NULL, 0 },
};
