/*
 * monitor/qmp-blkdebug.c - runtime fault control over QMP (our extension:
 * QEMU changes blkdebug rules only through qemu-io). Reference:
 * docs/qmp-blkdebug.md.
 *
 * Every command names a node with "node-name"; the first blkdebug node at
 * or below it (through file and filtered children, as qemu-io's breakpoint
 * commands walk) is the one acted on, so a script may name the format node
 * on top. The events BLKDEBUG_INJECT, BLKDEBUG_SUSPEND and BLKDEBUG_RESUME
 * come from the driver (driver/blkdebug.c) through the graph's event sink.
 */
#include "common/config.h"

#include <errno.h>
#include <string.h>

#include "common/cutils.h"
#include "driver/blkdebug.h"
#include "driver/block.h"
#include "injector/injector.h"
#include "monitor/qmp-blkdebug.h"

/* ------------------------------------------------------------------ */
/* Argument schemas                                                     */

/* The rule commands take a rule as blockdev-add does (the driver's
 * schema is their base) plus the node and, for injections, "arm". */
static const struct qapi_member inject_add_members[] = {
    { "node-name", &qapi_type_str, false },
    { "arm", &qapi_type_bool, true },
    { NULL, NULL, false },
};

static const struct qapi_member set_state_add_members[] = {
    { "node-name", &qapi_type_str, false },
    { NULL, NULL, false },
};

static const struct qapi_member id_members[] = {
    { "node-name", &qapi_type_str, false },
    { "id", &qapi_type_int, false },
    { NULL, NULL, false },
};

static const struct qapi_member state_members[] = {
    { "node-name", &qapi_type_str, false },
    { "state", &qapi_type_int, false },
    { NULL, NULL, false },
};

static const struct qapi_member break_members[] = {
    { "node-name", &qapi_type_str, false },
    { "event", &bd_qapi_blkdebug_event, false },
    { "tag", &qapi_type_str, false },
    { NULL, NULL, false },
};

static const struct qapi_member tag_members[] = {
    { "node-name", &qapi_type_str, false },
    { "tag", &qapi_type_str, false },
    { NULL, NULL, false },
};

static const struct qapi_member query_members[] = {
    { "node-name", &qapi_type_str, true },
    { NULL, NULL, false },
};

#define ARGS(sym, list) \
    static const struct qapi_type sym = { \
        .kind = QAPI_STRUCT, .name = #sym, .members = list, \
    }

static const struct qapi_type args_inject_add = {
    .kind = QAPI_STRUCT, .name = "args_inject_add",
    .base = &bd_qapi_blkdebug_inject, .members = inject_add_members,
};
static const struct qapi_type args_set_state_add = {
    .kind = QAPI_STRUCT, .name = "args_set_state_add",
    .base = &bd_qapi_blkdebug_set_state, .members = set_state_add_members,
};
ARGS(args_id, id_members);
ARGS(args_state, state_members);
ARGS(args_break, break_members);
ARGS(args_tag, tag_members);
ARGS(args_query, query_members);

/* ------------------------------------------------------------------ */
/* Helpers                                                              */

static struct bd_node *find_blkdebug(const struct qmp_context *ctx,
                                     json_t *args, struct inj **inj,
                                     struct bd_error **errp)
{
    const char *name = json_string_value(json_object_get(args, "node-name"));
    struct bd_node *n = NULL;
    struct bd_node *p;

    if (!name) {
        bd_error_setg(errp, "Parameter 'node-name' is missing");
        return NULL;
    }
    n = bd_graph_find_node(ctx->graph, name);
    if (!n) {
        bd_error_set(errp, BD_ERR_DEVICE_NOT_FOUND,
                     "Cannot find device='' nor node-name='%s'", name);
        return NULL;
    }
    for (p = n; p; p = bd_node_file(p)) {
        *inj = bd_blkdebug_injector(p);
        if (*inj) {
            return p;
        }
    }
    bd_error_setg(errp, "Node '%s' is not a blkdebug node and has none "
                  "below it", name);
    return NULL;
}

static json_t *rule_fields(json_t *args)
{
    json_t *f = json_deep_copy(args);

    json_object_del(f, "node-name");
    return f;
}

/* ------------------------------------------------------------------ */
/* Handlers                                                             */

static json_t *add_rule(const struct qmp_context *ctx, json_t *args,
                        enum inj_kind kind, struct bd_error **errp)
{
    struct inj *inj = NULL;
    json_t *f = NULL;
    bool arm = json_is_true(json_object_get(args, "arm"));
    int id;

    if (!find_blkdebug(ctx, args, &inj, errp)) {
        return NULL;
    }
    f = rule_fields(args);
    json_object_del(f, "arm");
    id = inj_add_rule(inj, kind, f, errp);
    json_decref(f);
    if (id < 0) {
        return NULL;
    }
    if (arm) {
        inj_arm_rule(inj, id);
    }
    return json_pack("{s:i}", "id", id);
}

static json_t *qmp_inject_add(const struct qmp_context *ctx, json_t *args,
                              struct bd_error **errp)
{
    return add_rule(ctx, args, INJ_KIND_INJECT, errp);
}

static json_t *qmp_set_state_add(const struct qmp_context *ctx, json_t *args,
                                 struct bd_error **errp)
{
    if (!json_object_get(args, "new_state")) {
        bd_error_setg(errp, "Parameter 'new_state' is missing");
        return NULL;
    }
    return add_rule(ctx, args, INJ_KIND_SET_STATE, errp);
}

static json_t *remove_rule(const struct qmp_context *ctx, json_t *args,
                           enum inj_kind kind, struct bd_error **errp)
{
    struct inj *inj = NULL;
    json_int_t id = json_integer_value(json_object_get(args, "id"));

    if (!find_blkdebug(ctx, args, &inj, errp)) {
        return NULL;
    }
    if (id <= 0 || id > INT32_MAX ||
        inj_remove_rule_kind(inj, (int)id, kind) < 0) {
        bd_error_setg(errp, "Node '%s' has no %s rule with id %lld",
                      json_string_value(json_object_get(args, "node-name")),
                      kind == INJ_KIND_INJECT ? "inject-error" : "set-state",
                      (long long)id);
        return NULL;
    }
    return json_object();
}

static json_t *qmp_inject_remove(const struct qmp_context *ctx, json_t *args,
                                 struct bd_error **errp)
{
    return remove_rule(ctx, args, INJ_KIND_INJECT, errp);
}

static json_t *qmp_set_state_remove(const struct qmp_context *ctx,
                                    json_t *args, struct bd_error **errp)
{
    return remove_rule(ctx, args, INJ_KIND_SET_STATE, errp);
}

static json_t *qmp_set_state(const struct qmp_context *ctx, json_t *args,
                             struct bd_error **errp)
{
    struct inj *inj = NULL;
    json_int_t st = json_integer_value(json_object_get(args, "state"));

    if (!find_blkdebug(ctx, args, &inj, errp)) {
        return NULL;
    }
    if (st < INT32_MIN || st > INT32_MAX) {
        bd_error_setg(errp, "Parameter 'state' is out of range");
        return NULL;
    }
    inj_set_state(inj, (int)st);
    return json_object();
}

static json_t *qmp_break(const struct qmp_context *ctx, json_t *args,
                         struct bd_error **errp)
{
    struct inj *inj = NULL;
    const char *ev = json_string_value(json_object_get(args, "event"));
    const char *tag = json_string_value(json_object_get(args, "tag"));

    if (!find_blkdebug(ctx, args, &inj, errp)) {
        return NULL;
    }
    if (!ev || !tag || inj_break(inj, ev, tag) < 0) {
        bd_error_setg(errp, "Parameter 'event' does not accept value '%s'",
                      ev ? ev : "");
        return NULL;
    }
    return json_object();
}

static json_t *qmp_remove_break(const struct qmp_context *ctx, json_t *args,
                                struct bd_error **errp)
{
    struct inj *inj = NULL;
    const char *tag = json_string_value(json_object_get(args, "tag"));
    bool had_suspended;

    if (!find_blkdebug(ctx, args, &inj, errp)) {
        return NULL;
    }
    if (!tag) {
        bd_error_setg(errp, "Parameter 'tag' is missing");
        return NULL;
    }
    /* Unlike qemu-io (spec §11.1 #1), resuming requests counts as
     * success. */
    had_suspended = inj_is_suspended(inj, tag);
    if (inj_remove_break(inj, tag) < 0 && !had_suspended) {
        bd_error_setg(errp, "No breakpoint or suspended request with tag "
                      "'%s'", tag);
        return NULL;
    }
    return json_object();
}

static json_t *qmp_resume(const struct qmp_context *ctx, json_t *args,
                          struct bd_error **errp)
{
    struct inj *inj = NULL;
    const char *tag = json_string_value(json_object_get(args, "tag"));

    if (!find_blkdebug(ctx, args, &inj, errp)) {
        return NULL;
    }
    if (!tag || inj_resume(inj, tag) < 0) {
        bd_error_setg(errp, "No suspended request with tag '%s'",
                      tag ? tag : "");
        return NULL;
    }
    return json_object();
}

static int collect_node(struct bd_node *n, void *opaque)
{
    struct inj *inj = bd_blkdebug_injector(n);

    if (inj) {
        json_t *o = inj_query(inj);

        json_object_set_new(o, "node-name", json_string(bd_node_name(n)));
        json_array_append_new(opaque, o);
    }
    return 0;
}

static json_t *qmp_query(const struct qmp_context *ctx, json_t *args,
                         struct bd_error **errp)
{
    json_t *list = json_array();
    struct inj *inj = NULL;
    struct bd_node *n;

    if (json_object_get(args, "node-name")) {
        n = find_blkdebug(ctx, args, &inj, errp);
        if (!n) {
            json_decref(list);
            return NULL;
        }
        collect_node(n, list);
        return list;
    }
    bd_graph_foreach_node(ctx->graph, collect_node, list);
    return list;
}

const struct qmp_command qmp_cmds_blkdebug[] = {
    { "blkdebug-inject-add", &args_inject_add, qmp_inject_add, 0 },
    { "blkdebug-inject-remove", &args_id, qmp_inject_remove, 0 },
    { "blkdebug-set-state-add", &args_set_state_add, qmp_set_state_add, 0 },
    { "blkdebug-set-state-remove", &args_id, qmp_set_state_remove, 0 },
    { "blkdebug-set-state", &args_state, qmp_set_state, 0 },
    { "blkdebug-break", &args_break, qmp_break, 0 },
    { "blkdebug-remove-break", &args_tag, qmp_remove_break, 0 },
    { "blkdebug-resume", &args_tag, qmp_resume, 0 },
    { "query-blkdebug", &args_query, qmp_query, 0 },
    { NULL, NULL, NULL, 0 },
};

const struct qmp_command *qmp_blkdebug_table(void)
{
    return qmp_cmds_blkdebug;
}
