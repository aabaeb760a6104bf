/*
 * tests/unit/test_qmp_blkdebug.c - monitor/qmp-blkdebug.c: the runtime
 * fault-control commands, called through their table entries with JSON
 * arguments (as the dispatcher will), on a live blkdebug node.
 */
#include "common/config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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
#include "driver/block.h"
#include "monitor/monitor.h"
#include "monitor/qmp-blkdebug.h"
#include "tests/unit/unit.h"

struct events {
    pthread_mutex_t lock;
    json_t *list;       /* [{"event": name, "data": {...}}] */
};

static struct {
    char dir[64];
    char img[128];
    struct bd_graph *g;
    struct bd_blk *b;
    struct qmp_context ctx;
    struct events ev;
} t;

static void sink(void *opaque, const char *name, json_t *data)
{
    struct events *e = opaque;

    pthread_mutex_lock(&e->lock);
    json_array_append_new(e->list, json_pack("{s:s, s:o}", "event", name,
                                             "data", data ? data
                                                          : json_object()));
    pthread_mutex_unlock(&e->lock);
}

static int count_events(const char *name)
{
    size_t i;
    json_t *v;
    int n = 0;

    pthread_mutex_lock(&t.ev.lock);
    json_array_foreach(t.ev.list, i, v) {
        n += !strcmp(json_string_value(json_object_get(v, "event")), name);
    }
    pthread_mutex_unlock(&t.ev.lock);
    return n;
}

static int setup(void **state)
{
    struct bd_error *err = NULL;
    struct bd_node *n;
    json_t *opts;
    int fd;

    (void)state;
    snprintf(t.dir, sizeof(t.dir), "/tmp/test_qmp_blkdebug.XXXXXX");
    if (!mkdtemp(t.dir)) {
        return -1;
    }
    snprintf(t.img, sizeof(t.img), "%s/raw.img", t.dir);
    fd = open(t.img, O_CREAT | O_RDWR | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, 1 << 20) < 0) {
        return -1;
    }
    close(fd);
    t.g = bd_graph_new();
    pthread_mutex_init(&t.ev.lock, NULL);
    t.ev.list = json_array();
    bd_graph_set_qevent_sink(t.g, sink, &t.ev);
    opts = json_pack("{s:s, s:s, s:{s:s, s:s}}", "driver", "blkdebug",
                     "node-name", "d", "image", "driver", "file",
                     "filename", t.img);
    n = bd_blockdev_add(t.g, opts, false, &err);
    json_decref(opts);
    if (!n) {
        return -1;
    }
    opts = json_pack("{s:s, s:s, s:s}", "driver", "raw", "node-name", "fmt",
                     "file", "d");
    n = bd_blockdev_add(t.g, opts, false, &err);
    json_decref(opts);
    if (!n) {
        return -1;
    }
    t.b = bd_blk_new(t.g, NULL, BD_PERM_CONSISTENT_READ | BD_PERM_WRITE,
                     BD_PERM_ALL);
    if (bd_blk_insert(t.b, n, &err) < 0) {
        return -1;
    }
    memset(&t.ctx, 0, sizeof(t.ctx));
    t.ctx.graph = t.g;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    bd_blk_free(t.b);
    bd_graph_free(t.g);
    json_decref(t.ev.list);
    pthread_mutex_destroy(&t.ev.lock);
    unlink(t.img);
    rmdir(t.dir);
    return 0;
}

static const struct qmp_command *cmd(const char *name)
{
    const struct qmp_command *c;

    for (c = qmp_blkdebug_table(); c->name; c++) {
        if (!strcmp(c->name, name)) {
            return c;
        }
    }
    fail_msg("no command %s", name);
    return NULL;
}

/* Run a command; returns the reply (or NULL with *msg set). */
static json_t *run(const char *name, const char *args_json, char **msg)
{
    const struct qmp_command *c = cmd(name);
    struct bd_error *err = NULL;
    json_error_t jerr;
    json_t *args = json_loads(args_json, 0, &jerr);
    json_t *ret;

    assert_non_null(args);
    assert_non_null(c->args);
    ret = c->handler(&t.ctx, args, &err);
    json_decref(args);
    if (msg) {
        *msg = NULL;
    }
    if (!ret) {
        assert_non_null(err);
        if (msg) {
            *msg = bd_strdup(bd_error_msg(err));
        }
        bd_error_free(err);
    }
    return ret;
}

static void run_ok(const char *name, const char *args_json)
{
    char *msg = NULL;
    json_t *r = run(name, args_json, &msg);

    if (!r) {
        fail_msg("%s: %s", name, msg);
    }
    json_decref(r);
}

static void run_err(const char *name, const char *args_json, const char *want)
{
    char *msg = NULL;
    json_t *r = run(name, args_json, &msg);

    assert_null(r);
    assert_string_equal(msg, want);
    free(msg);
}

static int wr(int64_t off)
{
    uint8_t buf[512];

    memset(buf, 1, sizeof(buf));
    return bd_blk_pwrite(t.b, off, 512, buf, 0);
}

/* A write fails only after a rule was added, and passes once removed. */
static void test_inject_add_remove(void **state)
{
    json_t *r;
    json_t *q;
    json_t *rule;
    int id;
    char args[128];

    (void)state;
    assert_int_equal(wr(0), 0);
    r = run("blkdebug-inject-add", "{\"node-name\": \"fmt\", \"event\": "
            "\"write_aio\", \"errno\": 28, \"iotype\": \"write\"}", NULL);
    assert_non_null(r);
    id = (int)json_integer_value(json_object_get(r, "id"));
    json_decref(r);
    assert_true(id > 0);
    assert_int_equal(wr(0), -ENOSPC);
    assert_int_equal(count_events("BLKDEBUG_INJECT"), 1);

    r = run("query-blkdebug", "{}", NULL);
    assert_int_equal(json_array_size(r), 1);
    q = json_array_get(r, 0);
    assert_string_equal(json_string_value(json_object_get(q, "node-name")),
                        "d");
    rule = json_array_get(json_object_get(q, "rules"), 0);
    assert_int_equal(json_integer_value(json_object_get(rule, "hits")), 1);
    assert_int_equal(json_integer_value(json_object_get(rule, "errno")), 28);
    json_decref(r);

    snprintf(args, sizeof(args), "{\"node-name\": \"d\", \"id\": %d}", id);
    run_err("blkdebug-set-state-remove", args,
            "Node 'd' has no set-state rule with id 1");
    run_ok("blkdebug-inject-remove", args);
    assert_int_equal(wr(0), 0);
    run_err("blkdebug-inject-remove", args,
            "Node 'd' has no inject-error rule with id 1");
}

/* "arm": a rule on `none` (already fired) takes effect at once. */
static void test_inject_arm(void **state)
{
    uint8_t buf[512];

    (void)state;
    run_ok("blkdebug-inject-add", "{\"node-name\": \"d\", \"event\": "
           "\"none\", \"iotype\": \"read\"}");
    assert_int_equal(bd_blk_pread(t.b, 0, 512, buf, 0), 0);
    run_ok("blkdebug-inject-add", "{\"node-name\": \"d\", \"event\": "
           "\"none\", \"iotype\": \"read\", \"errno\": 7, "
           "\"arm\": true}");
    assert_int_equal(bd_blk_pread(t.b, 0, 512, buf, 0), -7);
    run_ok("blkdebug-inject-remove", "{\"node-name\": \"d\", \"id\": 2}");
    assert_int_equal(bd_blk_pread(t.b, 0, 512, buf, 0), 0);
}

static void test_state_commands(void **state)
{
    json_t *r;

    (void)state;
    run_ok("blkdebug-inject-add", "{\"node-name\": \"d\", \"event\": "
           "\"write_aio\", \"state\": 3}");
    run_ok("blkdebug-set-state-add", "{\"node-name\": \"d\", \"event\": "
           "\"read_aio\", \"new_state\": 3}");
    run_err("blkdebug-set-state-add", "{\"node-name\": \"d\", \"event\": "
            "\"read_aio\"}", "Parameter 'new_state' is missing");
    assert_int_equal(wr(0), 0);
    run_ok("blkdebug-set-state", "{\"node-name\": \"d\", \"state\": 3}");
    assert_int_equal(wr(0), -EIO);
    r = run("query-blkdebug", "{\"node-name\": \"d\"}", NULL);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(r, 0),
                                                        "state")), 3);
    json_decref(r);
    run_ok("blkdebug-set-state-remove", "{\"node-name\": \"d\", \"id\": 2}");
}

static void test_errors(void **state)
{
    (void)state;
    run_err("blkdebug-inject-add", "{\"node-name\": \"nope\", \"event\": "
            "\"none\"}", "Cannot find device='' nor node-name='nope'");
    run_err("blkdebug-inject-add", "{\"node-name\": \"d\", \"event\": "
            "\"bogus\"}", "invalid parameter value: bogus");
    run_err("blkdebug-inject-add", "{\"node-name\": \"d\", \"event\": "
            "\"none\", \"probability\": 3}", "Parameter 'probability' "
            "expects a number between 0 and 1");
    run_err("blkdebug-resume", "{\"node-name\": \"d\", \"tag\": \"x\"}",
            "No suspended request with tag 'x'");
    run_err("blkdebug-remove-break", "{\"node-name\": \"d\", \"tag\": "
            "\"x\"}", "No breakpoint or suspended request with tag 'x'");
    run_err("blkdebug-break", "{\"node-name\": \"d\", \"event\": \"bogus\", "
            "\"tag\": \"x\"}", "Parameter 'event' does not accept value "
            "'bogus'");
}

static void test_not_blkdebug(void **state)
{
    struct bd_error *err = NULL;
    json_t *opts = json_pack("{s:s, s:s, s:s}", "driver", "file",
                             "node-name", "plain", "filename", t.img);
    struct bd_node *n = bd_blockdev_add(t.g, opts, false, &err);

    (void)state;
    json_decref(opts);
    assert_non_null(n);
    run_err("query-blkdebug", "{\"node-name\": \"plain\"}",
            "Node 'plain' is not a blkdebug node and has none below it");
    assert_int_equal(bd_blockdev_del(t.g, "plain", &err), 0);
}

struct aio {
    int ret;
    int done;
};

static void *async_write(void *opaque)
{
    struct aio *a = opaque;

    a->ret = wr(4096);
    __atomic_store_n(&a->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static bool suspended(const char *tag)
{
    json_t *r = run("query-blkdebug", "{\"node-name\": \"d\"}", NULL);
    json_t *s = json_object_get(json_array_get(r, 0), "suspended");
    bool found = false;
    size_t i;
    json_t *v;

    json_array_foreach(s, i, v) {
        found |= !strcmp(json_string_value(json_object_get(v, "tag")), tag);
    }
    json_decref(r);
    return found;
}

/* A breakpoint suspends a request until resume; events tell the script. */
static void test_break_resume(void **state)
{
    struct aio a = { 1, 0 };
    pthread_t th;

    (void)state;
    run_ok("blkdebug-break", "{\"node-name\": \"fmt\", \"event\": "
           "\"write_aio\", \"tag\": \"A\"}");
    pthread_create(&th, NULL, async_write, &a);
    while (!suspended("A")) {
        usleep(1000);
    }
    assert_int_equal(count_events("BLKDEBUG_SUSPEND"), 1);
    assert_int_equal(__atomic_load_n(&a.done, __ATOMIC_SEQ_CST), 0);
    run_ok("blkdebug-resume", "{\"node-name\": \"d\", \"tag\": \"A\"}");
    pthread_join(th, NULL);
    assert_int_equal(a.ret, 0);
    assert_int_equal(count_events("BLKDEBUG_RESUME"), 1);

    /* remove-break resumes and succeeds (unlike qemu-io's). */
    a.done = 0;
    run_ok("blkdebug-break", "{\"node-name\": \"d\", \"event\": "
           "\"write_aio\", \"tag\": \"B\"}");
    pthread_create(&th, NULL, async_write, &a);
    while (!suspended("B")) {
        usleep(1000);
    }
    run_ok("blkdebug-remove-break", "{\"node-name\": \"d\", \"tag\": "
           "\"B\"}");
    pthread_join(th, NULL);
    assert_int_equal(a.ret, 0);
}

/* Through the monitor's dispatcher: schema validation of the arguments,
 * error classes, query-commands. */
static json_t *exec(struct qmp_server *s, const char *text)
{
    json_t *cmd = json_loads(text, 0, NULL);
    json_t *r;

    assert_non_null(cmd);
    r = qmp_server_execute(s, cmd);
    json_decref(cmd);
    return r;
}

static void expect_error(struct qmp_server *s, const char *text,
                         const char *cls, const char *desc)
{
    json_t *r = exec(s, text);
    json_t *e = json_object_get(r, "error");

    if (!e) {
        fail_msg("%s: no error", text);
    }
    assert_string_equal(json_string_value(json_object_get(e, "class")), cls);
    assert_string_equal(json_string_value(json_object_get(e, "desc")), desc);
    json_decref(r);
}

static void test_dispatcher(void **state)
{
    struct qmp_server *s = qmp_server_new(&t.ctx);
    json_t *r;
    json_t *ret;
    size_t i;
    json_t *v;
    int found = 0;

    (void)state;
    assert_non_null(s);
    r = exec(s, "{\"execute\": \"blkdebug-inject-add\", \"arguments\": "
             "{\"node-name\": \"d\", \"event\": \"write_aio\", "
             "\"errno\": 28}, \"id\": 5}");
    ret = json_object_get(r, "return");
    assert_non_null(ret);
    assert_int_equal(json_integer_value(json_object_get(ret, "id")), 1);
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 5);
    json_decref(r);
    assert_int_equal(wr(0), -ENOSPC);
    expect_error(s, "{\"execute\": \"blkdebug-inject-add\", \"arguments\": "
                 "{\"node-name\": \"d\", \"event\": \"bogus\"}}",
                 "GenericError",
                 "Parameter 'event' does not accept value 'bogus'");
    expect_error(s, "{\"execute\": \"blkdebug-inject-add\", \"arguments\": "
                 "{\"event\": \"none\"}}", "GenericError",
                 "Parameter 'node-name' is missing");
    expect_error(s, "{\"execute\": \"blkdebug-inject-add\", \"arguments\": "
                 "{\"node-name\": \"d\", \"event\": \"none\", "
                 "\"foo\": 1}}", "GenericError",
                 "Parameter 'foo' is unexpected");
    expect_error(s, "{\"execute\": \"blkdebug-inject-add\", \"arguments\": "
                 "{\"node-name\": \"d\", \"event\": \"none\", "
                 "\"errno\": \"x\"}}", "GenericError",
                 "Invalid parameter type for 'errno', expected: integer");
    expect_error(s, "{\"execute\": \"blkdebug-resume\", \"arguments\": "
                 "{\"node-name\": \"nope\", \"tag\": \"x\"}}",
                 "DeviceNotFound",
                 "Cannot find device='' nor node-name='nope'");
    r = exec(s, "{\"execute\": \"query-commands\"}");
    json_array_foreach(json_object_get(r, "return"), i, v) {
        const char *n = json_string_value(json_object_get(v, "name"));

        found += !strncmp(n, "blkdebug-", 9) || !strcmp(n, "query-blkdebug");
    }
    json_decref(r);
    assert_int_equal(found, 9);
    r = exec(s, "{\"execute\": \"blkdebug-inject-remove\", \"arguments\": "
             "{\"node-name\": \"d\", \"id\": 1}}");
    assert_non_null(json_object_get(r, "return"));
    json_decref(r);
    assert_int_equal(wr(0), 0);
    qmp_server_free(s);
}

int unit_run_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_inject_add_remove, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_inject_arm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_commands, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_blkdebug, setup, teardown),
        cmocka_unit_test_setup_teardown(test_break_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dispatcher, setup, teardown),
    };

    return cmocka_run_group_tests_name("qmp_blkdebug", tests, NULL, NULL);
}
