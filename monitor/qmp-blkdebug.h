/*
 * monitor/qmp-blkdebug.h - strong handle on the blkdebug QMP table.
 *
 * qmp_cmds_blkdebug is referenced weakly by the dispatcher; a weak
 * reference does not pull an object out of a static archive, so a program
 * (or test) that must have these commands calls this accessor, which does.
 */
#ifndef BLKRIG_QMP_BLKDEBUG_H
#define BLKRIG_QMP_BLKDEBUG_H

#include "monitor/qmp-cmds.h"

/* The NULL-terminated command table (same as qmp_cmds_blkdebug). */
const struct qmp_command *qmp_blkdebug_table(void);

#endif
