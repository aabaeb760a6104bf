/*
 * monitor/monitor-int.h - what the monitor's files share: the command
 * dispatcher (commands.c) and the per-client protocol state.
 */
#ifndef BLKRIG_MONITOR_INT_H
#define BLKRIG_MONITOR_INT_H

#include <stdbool.h>
#include <jansson.h>

#include "common/error.h"
#include "monitor/monitor.h"
#include "monitor/qmp-cmds.h"

/* Protocol state of one client (or of in-process execution). */
struct qmp_session {
    bool negotiated;    /* qmp_capabilities done */
    bool oob;           /* the client enabled the oob capability */
    bool quit;          /* the last command was a successful quit */
};

/* Look a command up in every linked table; NULL if unknown. */
const struct qmp_command *qmp_find_command(const char *name);
/* Call fn for every command (table order); stops when fn returns non-zero. */
int qmp_foreach_command(int (*fn)(const struct qmp_command *c, void *opaque),
                        void *opaque);

/*
 * Handle one parsed QMP input object as QEMU's monitor does: check its
 * members, negotiation state, find the command, validate the arguments
 * against its table entry, run it, and build the reply with the id echoed.
 * req may be any JSON value (a non-object gets QEMU's error). Always
 * returns a reply object (new reference).
 */
json_t *qmp_handle_request(const struct qmp_context *ctx,
                           struct qmp_session *sess, json_t *req);

/* {"qemu": {"major","minor","micro"}, "package": ...} (query-version and
 * the greeting). */
json_t *qmp_version_info(void);

#endif
