/*
 * tests/unit/test_error.c - common/error.c and common/log.c: the errp
 * rules (set once, NULL ignores, propagate keeps the first), messages with
 * errno text, prefixes and hints, reporting to stderr, the log levels and
 * the fixed-format line sink.
 */
#include "common/config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/error.h"
#include "common/log.h"
#include "tests/unit/unit.h"

/* Run fn with stderr captured into buf. */
static void capture_stderr(void (*fn)(void *), void *opaque, char *buf,
                           size_t size)
{
    FILE *tmp = tmpfile();
    int saved = dup(STDERR_FILENO);
    size_t n;

    assert_non_null(tmp);
    fflush(stderr);
    dup2(fileno(tmp), STDERR_FILENO);
    fn(opaque);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(tmp);
    n = fread(buf, 1, size - 1, tmp);
    buf[n] = '\0';
    fclose(tmp);
}

static void test_error_set_and_free(void **state)
{
    struct bd_error *err = NULL;

    (void)state;
    bd_error_setg(&err, "bad %s %d", "thing", 7);
    assert_string_equal(bd_error_msg(err), "bad thing 7");
    assert_int_equal(err->cls, BD_ERR_GENERIC);
    assert_null(err->hint);
    bd_error_free(err);
    err = NULL;
    bd_error_set(&err, BD_ERR_DEVICE_NOT_FOUND, "Device '%s' not found",
                 "x");
    assert_string_equal(bd_error_class_name(err->cls), "DeviceNotFound");
    bd_error_free(err);
    /* NULL errp: the error is dropped, nothing leaks (ASan checks). */
    bd_error_setg(NULL, "ignored");
    bd_error_setg_errno(NULL, EIO, "ignored");
    bd_error_free(NULL);
    assert_string_equal(bd_error_msg(NULL), "");
    assert_string_equal(bd_error_class_name(BD_ERR_GENERIC), "GenericError");
    assert_string_equal(bd_error_class_name(BD_ERR_COMMAND_NOT_FOUND),
                        "CommandNotFound");
    assert_string_equal(bd_error_class_name(BD_ERR_DEVICE_NOT_ACTIVE),
                        "DeviceNotActive");
}

/* QEMU's error_setg_errno: "<msg>: <strerror>". */
static void test_error_errno(void **state)
{
    struct bd_error *err = NULL;

    (void)state;
    bd_error_setg_errno(&err, ENOENT, "Could not open '%s'", "a.img");
    assert_string_equal(bd_error_msg(err),
                        "Could not open 'a.img': No such file or directory");
    bd_error_free(err);
    assert_string_equal(bd_strerror(EIO), "Input/output error");
    assert_string_equal(bd_strerror(ENOSPC), "No space left on device");
    assert_string_equal(bd_strerror(99999), "Unknown error 99999");
}

static void test_error_prepend_and_hint(void **state)
{
    struct bd_error *err = NULL;

    (void)state;
    bd_error_prepend(&err, "nothing to prepend to: ");
    assert_null(err);
    bd_error_append_hint(&err, "no error, no hint\n");
    assert_null(err);
    bd_error_setg(&err, "Failed to get \"write\" lock");
    bd_error_prepend(&err, "%s: ", "can't open device a.img");
    assert_string_equal(bd_error_msg(err), "can't open device a.img: "
                        "Failed to get \"write\" lock");
    bd_error_append_hint(&err, "Is another process using the image [%s]?\n",
                         "a.img");
    bd_error_append_hint(&err, "second line\n");
    assert_string_equal(err->hint, "Is another process using the image "
                        "[a.img]?\nsecond line\n");
    bd_error_free(err);
}

/* propagate: into an empty slot moves, into a set slot or NULL frees. */
static void test_error_propagate(void **state)
{
    struct bd_error *dst = NULL;
    struct bd_error *a = NULL;
    struct bd_error *b = NULL;

    (void)state;
    bd_error_propagate(&dst, NULL);
    assert_null(dst);
    bd_error_setg(&a, "first");
    bd_error_setg(&b, "second");
    bd_error_propagate(&dst, a);
    bd_error_propagate(&dst, b);      /* first error wins; b freed */
    assert_string_equal(bd_error_msg(dst), "first");
    bd_error_free(dst);
    b = NULL;
    bd_error_setg(&b, "dropped");
    bd_error_propagate(NULL, b);
}

static void report_with_prefix(void *opaque)
{
    struct bd_error *err = NULL;

    (void)opaque;
    bd_error_setg(&err, "Unknown protocol 'foo'");
    bd_error_append_hint(&err, "hint line\n");
    bd_error_report_err("qemu-io: can't open device foo:bar", err);
    err = NULL;
    bd_error_setg(&err, "plain");
    bd_error_report_err(NULL, err);
    bd_error_report_err("ignored", NULL);
}

static void test_error_report(void **state)
{
    char buf[512];

    (void)state;
    capture_stderr(report_with_prefix, NULL, buf, sizeof(buf));
    assert_string_equal(buf, "qemu-io: can't open device foo:bar: "
                        "Unknown protocol 'foo'\nhint line\nplain\n");
}

/* ------------------------------------------------------------------ */
/* common/log.c                                                         */

static void log_at_levels(void *opaque)
{
    (void)opaque;
    bd_log_set_level(BD_LOG_WARN);
    bd_log(BD_LOG_ERROR, "e%d", 1);
    bd_log(BD_LOG_WARN, "w");
    bd_log(BD_LOG_INFO, "hidden");
    bd_log(BD_LOG_DEBUG, "hidden");
    bd_log_set_level(BD_LOG_DEBUG);
    bd_log(BD_LOG_DEBUG, "d");
    bd_log_set_level(BD_LOG_WARN);
    bd_log_line("line %s", "to stderr");
}

static void test_log_levels(void **state)
{
    char buf[512];

    (void)state;
    capture_stderr(log_at_levels, NULL, buf, sizeof(buf));
    assert_string_equal(buf, "blkrig error: e1\nblkrig warning: w\n"
                        "blkrig debug: d\nline to stderr\n");
}

struct lines {
    int n;
    char last[64];
};

static void sink(void *opaque, const char *line)
{
    struct lines *l = opaque;

    l->n++;
    snprintf(l->last, sizeof(l->last), "%s", line);
}

static void test_log_sink(void **state)
{
    struct lines l = { 0 };

    (void)state;
    bd_log_set_sink(sink, &l);
    bd_log_line("inject %s errno=%d", "read", 5);
    bd_log_line("second");
    bd_log_set_sink(NULL, NULL);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.last, "second");
}

int unit_run_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_set_and_free),
        cmocka_unit_test(test_error_errno),
        cmocka_unit_test(test_error_prepend_and_hint),
        cmocka_unit_test(test_error_propagate),
        cmocka_unit_test(test_error_report),
        cmocka_unit_test(test_log_levels),
        cmocka_unit_test(test_log_sink),
    };

    return cmocka_run_group_tests_name("error", tests, NULL, NULL);
}
