/*
 * monitor/monitor.h - the QMP server (QEMU Machine Protocol) over unix
 * sockets or stdio, and in-process command execution for scenarios.
 *
 * A server serves the objects in its context: the block graph, the exports
 * and (later) the job manager. Commands come from one table (name, argument
 * schema, handler), so query-commands and argument errors share a source.
 * Events emitted on the graph (bd_graph_emit_qevent) are broadcast to every
 * client that finished capabilities negotiation, with a timestamp.
 *
 * Threading: one thread per server polls all its sockets; commands run on
 * that thread one at a time (as in QEMU, where the monitor holds the big
 * lock). Handlers may block on I/O but not on other clients.
 */
#ifndef BLKRIG_MONITOR_H
#define BLKRIG_MONITOR_H

#include <jansson.h>

#include "common/error.h"

struct bd_graph;
struct fx_exports;
struct qmp_server;

struct qmp_context {
    struct bd_graph *graph;
    struct fx_exports *exports;     /* may be NULL (no export commands) */
    void *jobs;                     /* job manager, once jobs exist */
    /* `quit`: asks the daemon to shut down cleanly; called on the monitor
     * thread after the reply was sent. */
    void (*quit)(void *opaque);
    void *quit_opaque;
};

/* Start the monitor thread. The server installs itself as ctx->graph's
 * event sink (bd_graph_set_qevent_sink) until qmp_server_free; the quit
 * callback must not free the server (it runs on the server's thread).
 * Returns NULL if the thread or its pipe cannot be created. */
struct qmp_server *qmp_server_new(const struct qmp_context *ctx);
/* Serve clients accepted on a listening unix socket (ownership of fd
 * passes to the server, which closes it; the socket path is the caller's
 * to unlink). */
int qmp_server_add_listener(struct qmp_server *s, int listen_fd,
                            struct bd_error **errp);
/* Serve one client on a pair of fds (--chardev stdio). The fds stay the
 * caller's (not closed); EOF on in_fd ends the client, not the server. */
int qmp_server_add_stdio(struct qmp_server *s, int in_fd, int out_fd,
                         struct bd_error **errp);
/* Execute one command object ({"execute":..,"arguments":..,"id":..})
 * in-process, as a negotiated client would; returns the reply object
 * (new reference). Serialised with the socket clients' commands; a
 * successful `quit` calls ctx->quit before returning. */
json_t *qmp_server_execute(struct qmp_server *s, json_t *cmd);
/* Stop the thread, close every client and listener. */
void qmp_server_free(struct qmp_server *s);

/* Create a listening unix socket at path (an existing socket file there is
 * replaced); returns the fd or -errno with errp set. */
int qmp_listen_unix(const char *path, struct bd_error **errp);
/* Number of connected clients (tests: wait until disconnects are seen). */
int qmp_server_client_count(struct qmp_server *s);

/* Output framing: every reply, event and the greeting is one line of JSON
 * with ", " / ": " separators, ended by "\r\n" as QEMU writes them. */

#endif
