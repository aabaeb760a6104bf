/*
 * monitor/qmp-cmds.h - how a module adds QMP commands.
 *
 * Every module that offers commands (block core, exports, blkdebug, jobs,
 * backup, mirror, bitmaps) defines one NULL-terminated table of
 * struct qmp_command in its own file under monitor/ (qmp-<area>.c). The
 * monitor's dispatcher (monitor/commands.c) walks the tables listed below;
 * they are weak so a module that is not linked in simply has no commands.
 *
 * The dispatcher validates "arguments" against args (a QAPI_STRUCT from
 * common/qapi.h; NULL = the command takes no arguments) before calling the
 * handler, so handlers see well-typed JSON and query-commands lists exactly
 * what the tables hold. A handler returns the "return" value (a new
 * reference; json_object() for commands that return nothing), or NULL with
 * errp set; the error's class becomes the reply's "class".
 *
 * Handlers run on the monitor thread, one at a time.
 */
#ifndef BLKRIG_QMP_CMDS_H
#define BLKRIG_QMP_CMDS_H

#include <jansson.h>

#include "common/error.h"
#include "common/qapi.h"
#include "monitor/monitor.h"

typedef json_t *qmp_handler_fn(const struct qmp_context *ctx, json_t *args,
                               struct bd_error **errp);

#define QMP_CMD_ALLOW_PRECAP 0x1   /* allowed before qmp_capabilities */

struct qmp_command {
    const char *name;
    const struct qapi_type *args;
    qmp_handler_fn *handler;
    unsigned flags;
};

#define QMP_CMD_TABLE(sym) \
    extern const struct qmp_command sym[] __attribute__((weak))

QMP_CMD_TABLE(qmp_cmds_control);   /* qmp-control.c: capabilities, version,
                                      query-commands, quit */
QMP_CMD_TABLE(qmp_cmds_block);     /* qmp-block.c: blockdev-*, query-named-
                                      block-nodes, blockstats, histograms */
QMP_CMD_TABLE(qmp_cmds_export);    /* qmp-export.c: block-export-* */
QMP_CMD_TABLE(qmp_cmds_blkdebug);  /* qmp-blkdebug.c: runtime fault control */
QMP_CMD_TABLE(qmp_cmds_jobs);      /* qmp-jobs.c: job-*, block-job-*,
                                      query-jobs, query-block-jobs */
QMP_CMD_TABLE(qmp_cmds_bitmap);    /* qmp-bitmap.c: block-dirty-bitmap-* */
QMP_CMD_TABLE(qmp_cmds_backup);    /* qmp-backup.c: blockdev-backup,
                                      drive-backup, transaction */
QMP_CMD_TABLE(qmp_cmds_mirror);    /* qmp-mirror.c: blockdev-mirror,
                                      drive-mirror, block-job-change */

#endif
