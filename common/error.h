/*
 * common/error.h - the setup error channel (QEMU's Error ** rules).
 *
 * I/O paths return 0 or -errno and never use this. Setup, open, option
 * parsing and QMP handlers take `struct bd_error **errp` as their LAST
 * parameter and follow these rules:
 *  - the callee never reads *errp to decide anything;
 *  - on success it leaves *errp alone; on failure it sets exactly one error
 *    AND returns a value that signals failure (false, NULL or negative);
 *  - callers may pass NULL to ignore the error;
 *  - *errp must be NULL when passed in (setting twice is a bug and asserts).
 * Messages have no trailing newline. Hints (extra lines QEMU prints after the
 * message) are kept separately and end with a newline.
 * The class is what QMP reports as "class" (GenericError unless stated).
 */
#ifndef BLKRIG_ERROR_H
#define BLKRIG_ERROR_H

#include <stdarg.h>
#include <stdbool.h>
#include "common/assert.h"

enum bd_error_class {
    BD_ERR_GENERIC,
    BD_ERR_COMMAND_NOT_FOUND,
    BD_ERR_DEVICE_NOT_ACTIVE,
    BD_ERR_DEVICE_NOT_FOUND,
};

struct bd_error {
    enum bd_error_class cls;
    char *msg;
    char *hint;    /* NULL or text ending in '\n' */
};

void bd_error_set(struct bd_error **errp, enum bd_error_class cls,
                  const char *fmt, ...) BD_PRINTF(3, 4);
void bd_error_setg(struct bd_error **errp, const char *fmt, ...)
    BD_PRINTF(2, 3);
void bd_error_vsetg(struct bd_error **errp, enum bd_error_class cls,
                    const char *fmt, va_list ap) BD_PRINTF(3, 0);
/* Message followed by ": " and strerror(errnum) (errnum positive). */
void bd_error_setg_errno(struct bd_error **errp, int errnum,
                         const char *fmt, ...) BD_PRINTF(3, 4);
/* Prefix an existing error's message (no-op when errp or *errp is NULL). */
void bd_error_prepend(struct bd_error **errp, const char *fmt, ...)
    BD_PRINTF(2, 3);
void bd_error_append_hint(struct bd_error **errp, const char *fmt, ...)
    BD_PRINTF(2, 3);
/* Move src into *dst (src may be NULL); frees src if dst is NULL or set. */
void bd_error_propagate(struct bd_error **dst, struct bd_error *src);
void bd_error_free(struct bd_error *err);
const char *bd_error_msg(const struct bd_error *err);
const char *bd_error_class_name(enum bd_error_class cls);
/* Print "<prefix>: <msg>\n" (or "<msg>\n" with a NULL prefix) plus the hint
 * to stderr, then free the error. */
void bd_error_report_err(const char *prefix, struct bd_error *err);
/* strerror that is thread-safe and never returns NULL. */
const char *bd_strerror(int errnum);

#endif
