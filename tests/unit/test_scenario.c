/*
 * tests/unit/test_scenario.c - scenarios/engine: the language (variables,
 * continuations, includes, raw QMP, keyval QMP), expectations, waits,
 * error locations and transcript filters, run in-process.
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

#include "common/cutils.h"
#include "scenarios/scenario.h"
#include "tests/unit/unit.h"

struct fx {
    char dir[64];
};

static int setup(void **state)
{
    struct fx *f = bd_malloc0(sizeof(*f));

    snprintf(f->dir, sizeof(f->dir), "/tmp/blkrig-sc.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char *cmd = bd_strdup_printf("rm -rf '%s'", f->dir);

    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(f);
    return 0;
}

static char *write_case(struct fx *f, const char *name, const char *text)
{
    char *path = bd_strdup_printf("%s/%s", f->dir, name);
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    return path;
}

/* Run text as a scenario; returns the transcript, *r the result, *msg the
 * error message (or NULL). */
static char *run_text_mode(struct fx *f, const char *text, int *r,
                           char **msg, bool sweep)
{
    char *path = write_case(f, "case.scn", text);
    struct sc_options o = { 0 };
    struct bd_error *err = NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);

    o.test_dir = f->dir;
    o.blkrig = "/bin/false";
    o.out = out;
    o.wait_timeout_s = 2;
    o.sweep = sweep;
    *r = sc_run_file(path, &o, &err);
    fclose(out);
    *msg = err ? bd_strdup(bd_error_msg(err)) : NULL;
    bd_error_free(err);
    free(path);
    return buf;
}

static char *run_text(struct fx *f, const char *text, int *r, char **msg)
{
    return run_text_mode(f, text, r, msg, false);
}

/* A backup into a target that acknowledges writes and drops them (a lost
 * write): the job succeeds, the copy differs. A normal run reports the
 * failed expectation; a sweep reports the broken invariant. A target
 * that fails its writes makes the job fail: then a differing copy is
 * no violation. */
static const char lost_write_case[] =
    "sh head -c 65536 /dev/zero | tr '\\0' x > src.img && "
    "truncate -s 1M src.img && truncate -s 1M tgt.img\n"
    "blockdev-add driver=file,node-name=src,filename=${TEST_DIR}/src.img\n"
    "blockdev-add {\"driver\": \"blkdebug\", \"node-name\": \"tgt\", "
    "\"image\": {\"driver\": \"file\", \"filename\": "
    "\"${TEST_DIR}/tgt.img\"}, \"inject-error\": [{\"event\": \"none\", "
    "\"iotype\": \"write\", \"lost\": %s}]}\n"
    "blockdev-backup job-id=b0,device=src,target=tgt,sync=full\n"
    "wait BLOCK_JOB_COMPLETED device=b0\n"
    "expect job b0 status=running\n"
    "expect equal src tgt\n";

static void test_sweep_invariants(void **state)
{
    struct fx *f = *state;
    char *text = bd_strdup_printf(lost_write_case, "true");
    char *msg;
    int r;
    char *t;

    t = run_text_mode(f, text, &r, &msg, false);
    assert_null(msg);
    assert_int_equal(r, 2);
    assert_non_null(strstr(t, "case.scn:7: expect failed: src and tgt "
                              "differ at offset 0"));
    free(t);

    t = run_text_mode(f, text, &r, &msg, true);
    assert_null(msg);
    /* Only the invariant counts in a sweep, not the job expectation. */
    assert_int_equal(r, 1);
    assert_non_null(strstr(t, "VIOLATION: "));
    assert_non_null(strstr(t, "case.scn:7: every job completed without "
                              "error, but src and tgt differ at offset 0"));
    assert_null(strstr(t, "expect failed"));
    free(t);
    free(text);

    text = bd_strdup_printf(lost_write_case, "false");
    t = run_text_mode(f, text, &r, &msg, true);
    assert_null(msg);
    assert_int_equal(r, 0);
    assert_null(strstr(t, "VIOLATION"));
    free(t);
    free(text);
}

static void test_qmp_forms_and_variables(void **state)
{
    struct fx *f = *state;
    char *msg;
    int r;
    char *t = run_text(f,
        "# group: x\n"
        "set SZ 65536\n"
        "blockdev-add driver=null-co,node-name=a,size=${SZ},\\\n"
        "    read-zeroes=on\n"
        "{\"execute\": \"blockdev-add\", \"arguments\": {\"driver\": "
        "\"null-co\", \"node-name\": \"b\", \"size\": 65536, "
        "\"read-zeroes\": true}}\n"
        "qmp blockdev-del {\"node-name\": \"b\"}\n"
        "expect reply return={}\n"
        "expect pattern a 0 64k 0\n"
        "bogus-command-xyz\n", &r, &msg);

    assert_int_equal(r, -EINVAL);
    assert_non_null(strstr(t, "> blockdev-add driver=null-co,node-name=a,"
                              "size=65536,read-zeroes=on\n"
                              "{\"return\": {}}\n"));
    assert_non_null(strstr(t, "> qmp blockdev-del {\"node-name\": \"b\"}\n"
                              "{\"return\": {}}\n"));
    /* Variables are not steps and are not echoed. */
    assert_null(strstr(t, "> set"));
    assert_non_null(msg);
    assert_non_null(strstr(msg, "case.scn:9: unknown command "
                                "'bogus-command-xyz'"));
    free(msg);
    free(t);
}

static void test_expect_failures_count(void **state)
{
    struct fx *f = *state;
    char *msg;
    int r;
    char *t = run_text(f,
        "blockdev-add driver=null-co,node-name=a,size=4096,read-zeroes=on\n"
        "expect reply return=[]\n"
        "expect pattern a 0 4k 0x11\n"
        "expect bitmap a nobitmap count=0\n"
        "expect job nojob status=null\n"
        "expect job nojob status=running\n", &r, &msg);

    assert_null(msg);
    assert_int_equal(r, 4);
    assert_non_null(strstr(t, "case.scn:2: expect failed: reply: return is '{}', "
                              "not '[]'"));
    assert_non_null(strstr(t, "case.scn:3: expect failed: a: byte at "
                              "offset 0 is 0x00, not 0x11"));
    assert_non_null(strstr(t, "case.scn:4: expect failed: no bitmap "
                              "nobitmap on node a"));
    assert_non_null(strstr(t, "case.scn:6: expect failed: job nojob: "
                              "status is 'null', not 'running'"));
    free(t);
}

static void test_errors_have_locations(void **state)
{
    struct fx *f = *state;
    char *msg;
    int r;
    char *t;

    t = run_text(f, "\n\necho ${NOPE}\n", &r, &msg);
    assert_int_equal(r, -EINVAL);
    assert_non_null(strstr(msg, "case.scn:3: unknown variable 'NOPE'"));
    free(msg);
    free(t);

    t = run_text(f, "include missing.scn\n", &r, &msg);
    assert_true(r < 0);
    assert_non_null(strstr(msg, "case.scn:1: cannot open scenario"));
    free(msg);
    free(t);

    t = run_text(f, "{\"execute\": \n", &r, &msg);
    assert_int_equal(r, -EINVAL);
    assert_non_null(strstr(msg, "case.scn:1: bad QMP JSON"));
    free(msg);
    free(t);

    t = run_text(f, "wait SOME_EVENT bogus\n", &r, &msg);
    assert_int_equal(r, -EINVAL);
    assert_non_null(strstr(msg, "case.scn:1: wait: expected KEY=VALUE, got "
                                "'bogus'"));
    free(msg);
    free(t);

    /* A keyval argument that the command's schema rejects. */
    t = run_text(f, "blockdev-add driver=null-co,node-name=a,size=abc\n",
                 &r, &msg);
    assert_int_equal(r, -EINVAL);
    assert_non_null(strstr(msg, "case.scn:1: blockdev-add: Parameter 'size' "
                                "expects integer"));
    free(msg);
    free(t);
}

static int count(const char *text, const char *what)
{
    int n = 0;

    while ((text = strstr(text, what))) {
        n++;
        text += strlen(what);
    }
    return n;
}

/* A backup whose target fails every write, under on-target-error=stop:
 * the job pauses. Then a wait nothing can satisfy (the paused job sends
 * no event before job-resume), the resume, and a wait the job satisfies.
 * %s is the hopeless wait's timeout: an hour in sweep mode, where it
 * must end at once (no timing is asserted: the test just finishes), 1 s in
 * a normal run. The waits that succeed take milliseconds. */
static const char stopped_job_case[] =
    "sh head -c 65536 /dev/zero | tr '\\0' x > src.img && "
    "truncate -s 1M src.img && truncate -s 1M tgt.img\n"
    "blockdev-add driver=file,node-name=src,filename=${TEST_DIR}/src.img\n"
    "blockdev-add {\"driver\": \"blkdebug\", \"node-name\": \"tgt\", "
    "\"image\": {\"driver\": \"file\", \"filename\": "
    "\"${TEST_DIR}/tgt.img\"}}\n"
    "blkdebug-inject-add node-name=tgt,event=none,iotype=write,errno=28,"
    "arm=true\n"
    "blockdev-backup job-id=b0,device=src,target=tgt,sync=full,"
    "on-target-error=stop\n"
    "wait JOB_STATUS_CHANGE id=b0 status=paused timeout=60\n"
    "wait BLOCK_JOB_COMPLETED device=b0 timeout=%s\n"
    "blkdebug-inject-remove node-name=tgt,id=1\n"
    "job-resume id=b0\n"
    "wait BLOCK_JOB_COMPLETED device=b0 timeout=60\n"
    "expect equal src tgt\n";

static void test_sweep_hopeless_wait(void **state)
{
    struct fx *f = *state;
    char *text = bd_strdup_printf(stopped_job_case, "3600");
    char *msg;
    int r;
    char *t, *hopeless;

    t = run_text_mode(f, text, &r, &msg, true);
    assert_null(msg);
    assert_int_equal(r, 0);
    hopeless = strstr(t, "> wait BLOCK_JOB_COMPLETED device=b0 "
                         "timeout=3600\nwait: hopeless: no job can progress "
                         "and no request is running, so no "
                         "BLOCK_JOB_COMPLETED can come\n"
                         "> blkdebug-inject-remove");
    assert_non_null(hopeless);
    /* Once resumed, the job can progress: the next wait sees its event. */
    assert_int_equal(count(t, "wait: hopeless"), 1);
    assert_non_null(strstr(hopeless, "\"event\": \"BLOCK_JOB_COMPLETED\""));
    assert_null(strstr(t, "VIOLATION"));
    free(t);
    free(text);

    /* Nothing at all: no job, no request. */
    t = run_text_mode(f, "wait BLOCK_JOB_READY device=x timeout=3600\n", &r,
                      &msg, true);
    assert_null(msg);
    assert_int_equal(r, 0);
    assert_non_null(strstr(t, "wait: hopeless: "));
    free(t);
}

/* In a normal run the same paused job makes the wait run out its timeout
 * and fail the expectation, as ever; nothing is called hopeless. */
static void test_run_wait_keeps_timeout(void **state)
{
    struct fx *f = *state;
    char *text = bd_strdup_printf(stopped_job_case, "1");
    char *msg;
    int r;
    char *t = run_text_mode(f, text, &r, &msg, false);

    assert_null(msg);
    assert_int_equal(r, 1);
    assert_non_null(strstr(t, "case.scn:7: expect failed: no event "
                              "BLOCK_JOB_COMPLETED within 1 s"));
    assert_null(strstr(t, "hopeless"));
    free(t);
    free(text);
}

/* A job that can progress is never given up on in sweep mode: a backup
 * held to 4 KiB/s is still copying when its 1 s wait runs out; the sweep
 * then cancels it at the end. A mirror idle in ready, with no
 * job-complete coming, makes a wait for its completion hopeless. */
static void test_sweep_live_job_not_hopeless(void **state)
{
    struct fx *f = *state;
    char *msg;
    int r;
    char *t = run_text_mode(f,
        "sh head -c 65536 /dev/zero | tr '\\0' x > src.img && "
        "truncate -s 1M src.img && truncate -s 1M tgt.img && "
        "truncate -s 1M m.img\n"
        "blockdev-add driver=file,node-name=src,"
        "filename=${TEST_DIR}/src.img\n"
        "blockdev-add driver=file,node-name=tgt,"
        "filename=${TEST_DIR}/tgt.img\n"
        "blockdev-add driver=file,node-name=m,filename=${TEST_DIR}/m.img\n"
        "blockdev-mirror job-id=m0,device=src,target=m,sync=full\n"
        "wait BLOCK_JOB_READY device=m0 timeout=60\n"
        "wait BLOCK_JOB_COMPLETED device=m0 timeout=3600\n"
        "blockdev-backup job-id=b0,device=src,target=tgt,sync=full,"
        "speed=4096\n"
        "wait BLOCK_JOB_COMPLETED device=b0 timeout=1\n", &r, &msg, true);

    assert_null(msg);
    assert_int_equal(r, 0);
    assert_non_null(strstr(t, "> wait BLOCK_JOB_COMPLETED device=m0 "
                              "timeout=3600\nwait: hopeless: "));
    assert_non_null(strstr(t, "> wait BLOCK_JOB_COMPLETED device=b0 "
                              "timeout=1\n"));
    /* One hopeless wait only: the mirror's. */
    assert_int_equal(count(t, "wait: hopeless"), 1);
    assert_null(strstr(t, "VIOLATION"));
    free(t);
}

static void test_include_and_wait_timeout(void **state)
{
    struct fx *f = *state;
    char *inc = write_case(f, "common.inc",
                           "blockdev-add driver=null-co,node-name=n,"
                           "size=4096\n");
    char *msg;
    int r;
    char *t = run_text(f,
        "include common.inc\n"
        "blockdev-del node-name=n\n"
        "wait BLOCK_JOB_READY device=x timeout=1\n", &r, &msg);

    assert_null(msg);
    assert_int_equal(r, 1);
    assert_non_null(strstr(t, "> blockdev-add driver=null-co,node-name=n,"
                              "size=4096\n{\"return\": {}}\n"
                              "> blockdev-del node-name=n\n"
                              "{\"return\": {}}\n"));
    assert_non_null(strstr(t, "case.scn:3: expect failed: no event "
                              "BLOCK_JOB_READY within 1 s"));
    free(inc);
    free(msg);
    free(t);
}

static void test_filters_and_groups(void **state)
{
    struct fx *f = *state;
    char *s, *path, *g;

    s = sc_filter_line("4 KiB, 1 ops; 0.0001 sec (38.5 MiB/sec and 9868.9 "
                       "ops/sec)", NULL);
    assert_string_equal(s, "4 KiB, 1 ops; XX.XX sec (timing elided)");
    free(s);
    s = sc_filter_line("1 bytes, 1 ops; 0:00:01.12 (0.89 bytes/sec and "
                       "0.8901 ops/sec)", NULL);
    assert_string_equal(s, "1 bytes, 1 ops; XX.XX sec (timing elided)");
    free(s);
    s = sc_filter_line("a; b (c)", NULL);
    assert_string_equal(s, "a; b (c)");
    free(s);
    s = sc_filter_line("open /tmp/x/a.img and /tmp/x/b", "/tmp/x");
    assert_string_equal(s, "open TEST_DIR/a.img and TEST_DIR/b");
    free(s);
    s = sc_filter_line("nothing to do", "/tmp/x");
    assert_string_equal(s, "nothing to do");
    free(s);
    s = sc_replace_path(bd_strdup("sh \"/b/blkrig\" io; /b/blkrig"),
                        "/b/blkrig", "BLKRIG");
    assert_string_equal(s, "sh \"BLKRIG\" io; BLKRIG");
    free(s);
    s = sc_replace_path(bd_strdup("kept"), NULL, "BLKRIG");
    assert_string_equal(s, "kept");
    free(s);

    path = write_case(f, "g.scn", "# group: backup quick\n"
                                  "  # group: policy\necho hi\n");
    g = sc_file_groups(path);
    assert_non_null(strstr(g, "backup"));
    assert_non_null(strstr(g, "quick"));
    assert_non_null(strstr(g, "policy"));
    free(g);
    free(path);
    assert_null(sc_file_groups("/nonexistent/x.scn"));
}

int unit_run_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_qmp_forms_and_variables, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_expect_failures_count, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_errors_have_locations, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_include_and_wait_timeout, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_filters_and_groups, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sweep_invariants, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sweep_hopeless_wait, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_run_wait_keeps_timeout, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sweep_live_job_not_hopeless,
                                        setup, teardown),
    };

    return cmocka_run_group_tests_name("scenario", tests, NULL, NULL);
}
