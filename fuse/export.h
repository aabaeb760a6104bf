/*
 * fuse/export.h - block exports of one daemon (qemu-storage-daemon's
 * --export and QMP block-export-*). Only type=fuse is implemented: the
 * node appears as a regular file at `mountpoint`.
 *
 * Contract:
 *  - fx_export_add takes BlockExportOptions as a nested object
 *    ({"type":"fuse","id":..,"node-name":..,"mountpoint":..,"writable":..,
 *    "growable":..,"allow-other":"on|off|auto","writethrough":..}); keyval
 *    as for bd_blockdev_add. It validates with QEMU's messages, attaches a
 *    backend to the node, mounts, starts the worker threads and returns 0,
 *    or -errno with errp set and nothing left behind (no mount, no thread).
 *  - fx_export_del removes one export: stop intake, finish in-flight
 *    requests, flush, unmount; emits BLOCK_EXPORT_DELETED {"id"} through
 *    the graph's event sink once gone. hard selects block-export-del's
 *    mode=hard; mode=safe behaves as qemu-storage-daemon's does for FUSE
 *    exports (checked against it).
 *  - fx_export_query returns the query-block-exports list:
 *    [{"type":"fuse","id":..,"node-name":..,"shutting-down":false}, ...].
 *  - fx_exports_shutdown removes every export (daemon exit, any thread).
 * All functions are thread-safe (QMP runs on its own thread, signals on
 * the main thread).
 */
#ifndef BLKRIG_FUSE_EXPORT_H
#define BLKRIG_FUSE_EXPORT_H

#include <stdbool.h>
#include <jansson.h>

#include "common/error.h"

struct bd_graph;
struct fx_exports;

struct fx_exports *fx_exports_new(struct bd_graph *g);
int fx_export_add(struct fx_exports *ex, json_t *opts, bool keyval,
                  struct bd_error **errp);
int fx_export_del(struct fx_exports *ex, const char *id, bool hard,
                  struct bd_error **errp);
json_t *fx_export_query(struct fx_exports *ex);
/* Does any export exist? Its clients (other processes) can send requests
 * at any time. */
bool fx_exports_any(struct fx_exports *ex);
/* Is some export using this node (blockdev-del refuses such nodes)? */
bool fx_exports_use_node(struct fx_exports *ex, const char *node_name);
void fx_exports_shutdown(struct fx_exports *ex);
void fx_exports_free(struct fx_exports *ex);

#endif
