/*
 * monitor/commands.c - the QMP dispatcher: finds commands in the weak
 * per-module tables (monitor/qmp-cmds.h), checks the request envelope and
 * the arguments, runs the handler and shapes the reply, all with QEMU
 * 10.0.2's error texts.
 */
#include "common/config.h"

#include <string.h>

#include "common/cutils.h"
#include "common/qapi.h"
#include "monitor/monitor-int.h"

/* Weak tables of modules that are not linked in are NULL here. */
static const struct qmp_command *const cmd_tables[] = {
    qmp_cmds_control, qmp_cmds_block, qmp_cmds_export,
    qmp_cmds_blkdebug, qmp_cmds_jobs, qmp_cmds_bitmap,
    qmp_cmds_backup, qmp_cmds_mirror,
};

int qmp_foreach_command(int (*fn)(const struct qmp_command *c, void *opaque),
                        void *opaque)
{
    size_t i;

    for (i = 0; i < sizeof(cmd_tables) / sizeof(cmd_tables[0]); i++) {
        const struct qmp_command *c = cmd_tables[i];

        for (; c && c->name; c++) {
            int r = fn(c, opaque);

            if (r) {
                return r;
            }
        }
    }
    return 0;
}

struct find_ctx {
    const char *name;
    const struct qmp_command *found;
};

static int find_one(const struct qmp_command *c, void *opaque)
{
    struct find_ctx *f = opaque;

    if (!strcmp(c->name, f->name)) {
        f->found = c;
        return 1;
    }
    return 0;
}

const struct qmp_command *qmp_find_command(const char *name)
{
    struct find_ctx f = { .name = name, .found = NULL };

    qmp_foreach_command(find_one, &f);
    return f.found;
}

json_t *qmp_version_info(void)
{
    /* Scripts compare the "qemu" triple with the QEMU release they target,
     * so it carries the release whose behaviour we reproduce; "package"
     * says what actually answers. */
    return json_pack("{s:{s:i, s:i, s:i}, s:s}", "qemu",
                     "micro", BLKRIG_QEMU_COMPAT_MICRO,
                     "minor", BLKRIG_QEMU_COMPAT_MINOR,
                     "major", BLKRIG_QEMU_COMPAT_MAJOR,
                     "package", "blkrig " BLKRIG_VERSION);
}

static json_t *error_reply(struct bd_error *err, json_t *id)
{
    json_t *r = json_pack("{s:{s:s, s:s}}", "error",
                          "class", bd_error_class_name(err->cls),
                          "desc", bd_error_msg(err));

    if (id) {
        json_object_set(r, "id", id);
    }
    bd_error_free(err);
    return r;
}

/* QEMU's qmp_dispatch_check_obj. */
static int check_envelope(json_t *req, bool oob, const char **exec,
                          bool *is_oob, struct bd_error **errp)
{
    const char *key;
    json_t *v;

    *exec = NULL;
    json_object_foreach(req, key, v) {
        if (!strcmp(key, "execute") || (oob && !strcmp(key, "exec-oob"))) {
            if (!json_is_string(v)) {
                bd_error_setg(errp, "QMP input member '%s' must be a string",
                              key);
                return -1;
            }
            if (*exec) {
                bd_error_setg(errp, "QMP input must have either 'execute' "
                              "or 'exec-oob'");
                return -1;
            }
            *exec = json_string_value(v);
            *is_oob = key[4] == '-';
        } else if (!strcmp(key, "arguments")) {
            if (!json_is_object(v)) {
                bd_error_setg(errp, "QMP input member 'arguments' must be "
                              "an object");
                return -1;
            }
        } else if (!strcmp(key, "id")) {
            continue;
        } else if (oob && !strcmp(key, "control")) {
            if (!json_is_object(v)) {
                bd_error_setg(errp, "QMP input member 'control' must be a "
                              "dict");
                return -1;
            }
        } else {
            bd_error_setg(errp, "QMP input member '%s' is unexpected", key);
            return -1;
        }
    }
    if (!*exec) {
        bd_error_setg(errp, "QMP input lacks member 'execute'");
        return -1;
    }
    return 0;
}

static void record_capabilities(struct qmp_session *sess, json_t *args)
{
    json_t *en = json_object_get(args, "enable");
    size_t i;
    json_t *v;

    json_array_foreach(en, i, v) {
        if (!strcmp(json_string_value(v), "oob")) {
            sess->oob = true;
        }
    }
}

json_t *qmp_handle_request(const struct qmp_context *ctx,
                           struct qmp_session *sess, json_t *req)
{
    const struct qmp_command *cmd = NULL;
    struct bd_error *err = NULL;
    const char *name = NULL;
    bool is_oob = false;
    json_t *id = NULL;
    json_t *args = NULL;
    json_t *ret = NULL;
    json_t *reply = NULL;

    sess->quit = false;
    if (!json_is_object(req)) {
        bd_error_setg(&err, "QMP input must be a JSON object");
        return error_reply(err, NULL);
    }
    id = json_object_get(req, "id");
    if (check_envelope(req, sess->negotiated && sess->oob, &name, &is_oob,
                       &err) < 0) {
        return error_reply(err, id);
    }
    cmd = qmp_find_command(name);
    if (!sess->negotiated) {
        /* Before negotiation only qmp_capabilities exists (QEMU swaps the
         * whole command list), so everything else is "not found". */
        if (!cmd || !(cmd->flags & QMP_CMD_ALLOW_PRECAP)) {
            bd_error_set(&err, BD_ERR_COMMAND_NOT_FOUND,
                         "Expecting capabilities negotiation with "
                         "'qmp_capabilities'");
            return error_reply(err, id);
        }
    } else if (cmd && !strcmp(cmd->name, "qmp_capabilities")) {
        bd_error_set(&err, BD_ERR_COMMAND_NOT_FOUND,
                     "Capabilities negotiation is already complete, "
                     "command ignored");
        return error_reply(err, id);
    }
    if (!cmd) {
        bd_error_set(&err, BD_ERR_COMMAND_NOT_FOUND,
                     "The command %s has not been found", name);
        return error_reply(err, id);
    }
    if (is_oob) {
        /* No blkrig command is oob-capable: handlers share the monitor
         * thread, so nothing could overtake a running command. */
        bd_error_setg(&err, "The command %s does not support OOB", name);
        return error_reply(err, id);
    }
    args = json_object_get(req, "arguments");
    args = args ? json_incref(args) : json_object();
    if (cmd->args) {
        if (qapi_validate(cmd->args, args, false, &err) < 0) {
            json_decref(args);
            return error_reply(err, id);
        }
    } else if (json_object_size(args)) {
        bd_error_setg(&err, "Parameter '%s' is unexpected",
                      json_object_iter_key(json_object_iter(args)));
        json_decref(args);
        return error_reply(err, id);
    }
    ret = cmd->handler(ctx, args, &err);
    if (!ret) {
        if (!err) {
            bd_error_setg(&err, "Command %s failed", name);
        }
        json_decref(args);
        return error_reply(err, id);
    }
    if (!sess->negotiated) {
        sess->negotiated = true;
        record_capabilities(sess, args);
    }
    sess->quit = !strcmp(cmd->name, "quit");
    json_decref(args);
    reply = json_object();
    json_object_set_new(reply, "return", ret);
    if (id) {
        json_object_set(reply, "id", id);
    }
    return reply;
}
