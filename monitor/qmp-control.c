/*
 * monitor/qmp-control.c - the protocol's own commands: qmp_capabilities,
 * query-version, query-commands, quit. Negotiation state is per client and
 * lives in the dispatcher (commands.c); these handlers only answer.
 */
#include "common/config.h"

#include "monitor/monitor-int.h"

static const char *const capability_values[] = { "oob", NULL };

static const struct qapi_type capability_type = {
    .kind = QAPI_ENUM, .name = "QMPCapability",
    .enum_values = capability_values,
};
static const struct qapi_type capability_list = {
    .kind = QAPI_LIST, .name = "QMPCapabilityList",
    .element = &capability_type,
};
static const struct qapi_member capabilities_members[] = {
    { "enable", &capability_list, true },
    { NULL, NULL, false },
};
static const struct qapi_type capabilities_args = {
    .kind = QAPI_STRUCT, .name = "q_obj_qmp_capabilities-arg",
    .members = capabilities_members,
};

static json_t *qmp_capabilities(const struct qmp_context *ctx, json_t *args,
                                struct bd_error **errp)
{
    (void)ctx;
    (void)args;
    (void)errp;
    return json_object();
}

static json_t *query_version(const struct qmp_context *ctx, json_t *args,
                             struct bd_error **errp)
{
    (void)ctx;
    (void)args;
    (void)errp;
    return qmp_version_info();
}

static int add_name(const struct qmp_command *c, void *opaque)
{
    json_array_append_new(opaque, json_pack("{s:s}", "name", c->name));
    return 0;
}

static json_t *query_commands(const struct qmp_context *ctx, json_t *args,
                              struct bd_error **errp)
{
    json_t *list = json_array();

    (void)ctx;
    (void)args;
    (void)errp;
    qmp_foreach_command(add_name, list);
    return list;
}

/* The daemon is told to stop after the reply went out (monitor.c). */
static json_t *quit(const struct qmp_context *ctx, json_t *args,
                    struct bd_error **errp)
{
    (void)ctx;
    (void)args;
    (void)errp;
    return json_object();
}

const struct qmp_command qmp_cmds_control[] = {
    { "qmp_capabilities", &capabilities_args, qmp_capabilities,
      QMP_CMD_ALLOW_PRECAP },
    { "query-version", NULL, query_version, 0 },
    { "query-commands", NULL, query_commands, 0 },
    { "quit", NULL, quit, 0 },
    { NULL, NULL, NULL, 0 },
};
