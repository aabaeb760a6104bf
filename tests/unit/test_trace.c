/*
 * tests/unit/test_trace.c - injector/trace.c: the BLKRIG_INJECT_TRACE
 * file that coverage/injection.sh reads.
 */
#include "common/config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "injector/trace.h"
#include "tests/unit/unit.h"

struct trace_fixture {
    char path[64];
    char *saved;                 /* the caller's BLKRIG_INJECT_TRACE */
};

static int setup(void **state)
{
    struct trace_fixture *f = calloc(1, sizeof(*f));
    const char *old = getenv("BLKRIG_INJECT_TRACE");
    int fd;

    snprintf(f->path, sizeof(f->path), "/tmp/blkrig-trace-XXXXXX");
    fd = mkstemp(f->path);
    assert_true(fd >= 0);
    close(fd);
    /* Under `make coverage` the variable is set for the whole suite:
     * keep it and put it back afterwards. */
    f->saved = old ? strdup(old) : NULL;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct trace_fixture *f = *state;

    unlink(f->path);
    if (f->saved) {
        setenv("BLKRIG_INJECT_TRACE", f->saved, 1);
    } else {
        unsetenv("BLKRIG_INJECT_TRACE");
    }
    free(f->saved);
    free(f);
    return 0;
}

static size_t read_all(const char *path, char *buf, size_t cap)
{
    FILE *fp = fopen(path, "r");
    size_t n;

    assert_non_null(fp);
    n = fread(buf, 1, cap - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return n;
}

/* Lines are appended whole, each with its newline, in call order. */
static void test_trace_appends_lines(void **state)
{
    struct trace_fixture *f = *state;
    char buf[256];

    setenv("BLKRIG_INJECT_TRACE", f->path, 1);
    assert_true(inj_trace_enabled());
    inj_trace("event %s node=%s", "l2_update", "dbg");
    inj_trace("policy job=%s errno=%d", "backup", 28);
    read_all(f->path, buf, sizeof(buf));
    assert_string_equal(buf, "event l2_update node=dbg\n"
                        "policy job=backup errno=28\n");
}

/* Unset or empty: nothing is written and nothing fails. */
static void test_trace_off(void **state)
{
    struct trace_fixture *f = *state;
    char buf[64];

    unsetenv("BLKRIG_INJECT_TRACE");
    assert_false(inj_trace_enabled());
    inj_trace("event x");
    setenv("BLKRIG_INJECT_TRACE", "", 1);
    assert_false(inj_trace_enabled());
    inj_trace("event y");
    assert_int_equal(read_all(f->path, buf, sizeof(buf)), 0);
}

/* An over-long line is cut but still ends in a newline, so the next
 * line starts on its own; an unwritable path is ignored. */
static void test_trace_long_and_unwritable(void **state)
{
    struct trace_fixture *f = *state;
    char big[1000];
    char buf[2048];
    size_t n;

    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    setenv("BLKRIG_INJECT_TRACE", f->path, 1);
    inj_trace("%s", big);
    inj_trace("event after");
    n = read_all(f->path, buf, sizeof(buf));
    /* 510 characters and the newline: one write of at most 512 bytes. */
    assert_int_equal(n, 511 + strlen("event after\n"));
    assert_int_equal(buf[509], 'a');
    assert_int_equal(buf[510], '\n');
    assert_string_equal(buf + 511, "event after\n");

    setenv("BLKRIG_INJECT_TRACE", "/nonexistent-dir/trace", 1);
    inj_trace("event lost");
}

int unit_run_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_trace_appends_lines, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_trace_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trace_long_and_unwritable,
                                        setup, teardown),
    };

    return cmocka_run_group_tests_name("trace", tests, NULL, NULL);
}
