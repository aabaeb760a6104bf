/*
 * injector/trace.c - append-only injection-coverage trace (trace.h).
 */
#include "common/config.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "injector/trace.h"

#define TRACE_ENV "BLKRIG_INJECT_TRACE"

bool inj_trace_enabled(void)
{
    const char *path = getenv(TRACE_ENV);

    return path && *path;
}

void inj_trace(const char *fmt, ...)
{
    const char *path = getenv(TRACE_ENV);
    char buf[512];
    va_list ap;
    int len;
    int fd;

    if (!path || !*path) {
        return;
    }
    va_start(ap, fmt);
    len = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
    va_end(ap);
    if (len < 0) {
        return;
    }
    if ((size_t)len > sizeof(buf) - 2) {
        len = (int)sizeof(buf) - 2;
    }
    buf[len++] = '\n';
    /* Opened per line: no process-wide state, and the file may be
     * rotated by the script between test runs. One write() of at most
     * 512 bytes with O_APPEND keeps lines whole across processes. */
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        return;
    }
    if (write(fd, buf, (size_t)len) < 0) {
        /* Ignored: see trace.h. */
    }
    close(fd);
}
