/*
 * common/error.c - struct bd_error implementation.
 *
 * Errors are plain heap objects; formatting uses vasprintf so messages are
 * never truncated. bd_strerror exists because glibc's strerror is not
 * guaranteed thread-safe and we print errno texts from worker threads.
 */
#include "common/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

static void error_install(struct bd_error **errp, struct bd_error *err)
{
    if (!errp) {
        bd_error_free(err);
        return;
    }
    assert(*errp == NULL);
    *errp = err;
}

static char *xvasprintf(const char *fmt, va_list ap) BD_PRINTF(1, 0);
static char *xvasprintf(const char *fmt, va_list ap)
{
    char *s = NULL;

    if (vasprintf(&s, fmt, ap) < 0) {
        abort();
    }
    return s;
}

void bd_error_vsetg(struct bd_error **errp, enum bd_error_class cls,
                    const char *fmt, va_list ap)
{
    struct bd_error *err = NULL;

    if (!errp) {
        return;
    }
    err = calloc(1, sizeof(*err));
    if (!err) {
        abort();
    }
    err->cls = cls;
    err->msg = xvasprintf(fmt, ap);
    error_install(errp, err);
}

void bd_error_set(struct bd_error **errp, enum bd_error_class cls,
                  const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    bd_error_vsetg(errp, cls, fmt, ap);
    va_end(ap);
}

void bd_error_setg(struct bd_error **errp, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    bd_error_vsetg(errp, BD_ERR_GENERIC, fmt, ap);
    va_end(ap);
}

void bd_error_setg_errno(struct bd_error **errp, int errnum,
                         const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL;

    if (!errp) {
        return;
    }
    va_start(ap, fmt);
    msg = xvasprintf(fmt, ap);
    va_end(ap);
    bd_error_setg(errp, "%s: %s", msg, bd_strerror(errnum));
    free(msg);
}

void bd_error_prepend(struct bd_error **errp, const char *fmt, ...)
{
    va_list ap;
    char *pre = NULL;
    char *msg = NULL;

    if (!errp || !*errp) {
        return;
    }
    va_start(ap, fmt);
    pre = xvasprintf(fmt, ap);
    va_end(ap);
    if (asprintf(&msg, "%s%s", pre, (*errp)->msg) < 0) {
        abort();
    }
    free(pre);
    free((*errp)->msg);
    (*errp)->msg = msg;
}

void bd_error_append_hint(struct bd_error **errp, const char *fmt, ...)
{
    va_list ap;
    char *add = NULL;
    char *hint = NULL;

    if (!errp || !*errp) {
        return;
    }
    va_start(ap, fmt);
    add = xvasprintf(fmt, ap);
    va_end(ap);
    if (asprintf(&hint, "%s%s", (*errp)->hint ? (*errp)->hint : "", add) < 0) {
        abort();
    }
    free(add);
    free((*errp)->hint);
    (*errp)->hint = hint;
}

void bd_error_propagate(struct bd_error **dst, struct bd_error *src)
{
    if (!src) {
        return;
    }
    if (!dst || *dst) {
        bd_error_free(src);
        return;
    }
    *dst = src;
}

void bd_error_free(struct bd_error *err)
{
    if (!err) {
        return;
    }
    free(err->msg);
    free(err->hint);
    free(err);
}

const char *bd_error_msg(const struct bd_error *err)
{
    return err ? err->msg : "";
}

const char *bd_error_class_name(enum bd_error_class cls)
{
    switch (cls) {
    case BD_ERR_COMMAND_NOT_FOUND:
        return "CommandNotFound";
    case BD_ERR_DEVICE_NOT_ACTIVE:
        return "DeviceNotActive";
    case BD_ERR_DEVICE_NOT_FOUND:
        return "DeviceNotFound";
    case BD_ERR_GENERIC:
    default:
        return "GenericError";
    }
}

void bd_error_report_err(const char *prefix, struct bd_error *err)
{
    if (!err) {
        return;
    }
    if (prefix) {
        fprintf(stderr, "%s: %s\n", prefix, err->msg);
    } else {
        fprintf(stderr, "%s\n", err->msg);
    }
    if (err->hint) {
        fputs(err->hint, stderr);
    }
    bd_error_free(err);
}

const char *bd_strerror(int errnum)
{
    /* strerrordesc_np returns static strings and is thread-safe (glibc 2.32).
     * It yields NULL for unknown numbers; fall back to QEMU/glibc's text. */
    const char *s = strerrordesc_np(errnum);
    static __thread char buf[32];

    if (s) {
        return s;
    }
    snprintf(buf, sizeof(buf), "Unknown error %d", errnum);
    return buf;
}
