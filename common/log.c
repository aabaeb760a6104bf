/*
 * common/log.c - diagnostics and the line sink.
 *
 * This is the one piece of process-wide mutable state in common/: logging
 * destinations are a property of the process, not of a node.
 */
#include "common/config.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/log.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_level = -1;
static bd_log_sink_fn *log_sink;
static void *log_sink_opaque;

static int current_level(void)
{
    if (log_level < 0) {
        const char *e = getenv("BLKRIG_DEBUG");
        log_level = (e && *e && *e != '0') ? BD_LOG_DEBUG : BD_LOG_WARN;
    }
    return log_level;
}

void bd_log_set_level(enum bd_log_level level)
{
    pthread_mutex_lock(&log_lock);
    log_level = level;
    pthread_mutex_unlock(&log_lock);
}

void bd_log(enum bd_log_level level, const char *fmt, ...)
{
    static const char *const names[] = { "error", "warning", "info", "debug" };
    va_list ap;

    pthread_mutex_lock(&log_lock);
    if ((int)level <= current_level()) {
        fprintf(stderr, "blkrig %s: ", names[level]);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
    pthread_mutex_unlock(&log_lock);
}

void bd_log_set_sink(bd_log_sink_fn *fn, void *opaque)
{
    pthread_mutex_lock(&log_lock);
    log_sink = fn;
    log_sink_opaque = opaque;
    pthread_mutex_unlock(&log_lock);
}

void bd_log_line(const char *fmt, ...)
{
    char *line = NULL;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&line, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    pthread_mutex_lock(&log_lock);
    if (log_sink) {
        log_sink(log_sink_opaque, line);
    } else {
        fprintf(stderr, "%s\n", line);
    }
    pthread_mutex_unlock(&log_lock);
    free(line);
}
