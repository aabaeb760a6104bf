/*
 * common/log.h - leveled diagnostics and the sink for fixed-format lines.
 *
 * Diagnostics ("bd_log(BD_LOG_DEBUG, ...)") go to stderr when their level is
 * enabled (BLKRIG_DEBUG=1 in the environment enables debug). Lines that
 * scripts and golden files read (the injection log, for instance) are written
 * through bd_log_line(), which sends them to the process's line sink:
 * stderr by default, or whatever a verb installs (a file, a QMP event, a
 * scenario transcript). The sink is process configuration, set once by the
 * verb before any worker thread starts; writing is serialised internally.
 */
#ifndef BLKRIG_LOG_H
#define BLKRIG_LOG_H

#include "common/assert.h"

enum bd_log_level {
    BD_LOG_ERROR,
    BD_LOG_WARN,
    BD_LOG_INFO,
    BD_LOG_DEBUG,
};

typedef void bd_log_sink_fn(void *opaque, const char *line);

void bd_log(enum bd_log_level level, const char *fmt, ...) BD_PRINTF(2, 3);
void bd_log_set_level(enum bd_log_level level);
/* Install the sink for bd_log_line; NULL restores stderr. */
void bd_log_set_sink(bd_log_sink_fn *fn, void *opaque);
/* Emit one fixed-format line (no trailing newline in fmt). */
void bd_log_line(const char *fmt, ...) BD_PRINTF(1, 2);

#endif
