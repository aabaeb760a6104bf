/*
 * tests/unit/test_core.c - driver/core.c: opening nodes (names, drivers,
 * protocols, leftover options), blockdev-add/del, permissions, references,
 * node replacement and the messages QEMU prints for each failure.
 */
#include "common/config.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "driver/block-int.h"
#include "tests/helpers/test-drivers.h"
#include "tests/unit/unit.h"

/* Open from JSON and expect failure with exactly msg. */
static void expect_open_error(struct bd_graph *g, const char *json, int flags,
                              const char *msg)
{
    struct bd_error *err = NULL;
    struct bd_node *n = td_open_json(g, json, flags, &err);

    assert_null(n);
    assert_non_null(err);
    assert_string_equal(bd_error_msg(err), msg);
    bd_error_free(err);
}

/* Open from a filename and expect failure with exactly msg. */
static void expect_filename_error(struct bd_graph *g, const char *filename,
                                  int flags, const char *msg)
{
    struct bd_error *err = NULL;

    assert_null(bd_open(g, filename, NULL, flags, &err));
    assert_non_null(err);
    assert_string_equal(bd_error_msg(err), msg);
    bd_error_free(err);
}

/* blockdev-add borrows the options object. */
static struct bd_node *add_node(struct bd_graph *g, json_t *nested,
                                bool keyval, struct bd_error **errp)
{
    struct bd_node *n = bd_blockdev_add(g, nested, keyval, errp);

    json_decref(nested);
    return n;
}

static void test_core_generated_names(void **state)
{
    struct bd_graph *g = bd_graph_new();
    struct bd_error *err = NULL;
    struct bd_node *a = td_open_json(g, "{\"driver\": \"null-co\"}", 0, &err);
    struct bd_node *b = td_open_json(g, "{\"driver\": \"null-co\"}", 0, &err);
    struct bd_node *c = td_open_json(g, "{\"driver\": \"null-co\", "
                                     "\"node-name\": \"#block9\"}", 0, &err);

    (void)state;
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(bd_node_name(a), "#block0");
    assert_string_equal(bd_node_name(b), "#block1");
    assert_true(bd_node_name_generated(a));
    assert_ptr_equal(bd_graph_find_node(g, "#block1"), b);
    /* '#' is reserved for generated names. */
    assert_null(c);
    assert_string_equal(bd_error_msg(err), "Invalid node-name: '#block9'");
    bd_error_free(err);
    bd_unref(a);
    bd_unref(b);
    bd_graph_free(g);
}

static void test_core_node_name_errors(void **state)
{
    struct bd_graph *g = bd_graph_new();
    struct bd_error *err = NULL;
    struct bd_node *n = NULL;

    (void)state;
    expect_open_error(g, "{\"driver\": \"null-co\", \"node-name\": \"1abc\"}",
                      0, "Invalid node-name: '1abc'");
    expect_open_error(g, "{\"driver\": \"null-co\", \"node-name\": \"a@b\"}",
                      0, "Invalid node-name: 'a@b'");
    expect_open_error(g, "{\"driver\": \"null-co\", \"node-name\": \"\"}",
                      0, "Invalid node-name: ''");
    expect_open_error(g, "{\"driver\": \"null-co\", \"node-name\": "
                      "\"abcdefghijabcdefghijabcdefghijab\"}", 0,
                      "Node name too long");
    /* 31 characters is the longest name. */
    n = td_open_json(g, "{\"driver\": \"null-co\", \"node-name\": "
                     "\"abcdefghijabcdefghijabcdefghija\"}", 0, &err);
    assert_non_null(n);
    expect_open_error(g, "{\"driver\": \"null-co\", \"node-name\": "
                      "\"abcdefghijabcdefghijabcdefghija\"}", 0,
                      "Duplicate nodes with node-name="
                      "'abcdefghijabcdefghijabcdefghija'");
    bd_unref(n);
    /* A backend's name is taken too. */
    bd_blk_new(g, "dev0", 0, BD_PERM_ALL);
    expect_open_error(g, "{\"driver\": \"null-co\", \"node-name\": "
                      "\"dev0\"}", 0,
                      "node-name=dev0 is conflicting with a device id");
    bd_graph_free(g);
}

static void test_core_driver_and_protocol_errors(void **state)
{
    struct bd_graph *g = bd_graph_new();

    (void)state;
    expect_open_error(g, "{\"driver\": \"nope\"}", 0, "Unknown driver 'nope'");
    expect_filename_error(g, "foo:bar", 0, "Unknown protocol 'foo'");
    expect_filename_error(g, "foo:bar", BD_O_PROTOCOL,
                          "Unknown protocol 'foo'");
    /* A slash before the colon makes it a path. */
    expect_filename_error(g, "./no/such:file", BD_O_PROTOCOL,
                          "Could not open './no/such:file': "
                          "No such file or directory");
    expect_filename_error(g, "null-co://x", BD_O_PROTOCOL,
                          "The only allowed filename for this driver is "
                          "'null-co://'");
    expect_open_error(g, "{}", 0, "Must specify either driver or file");
    bd_graph_free(g);
}

static void test_core_leftover_and_generic_options(void **state)
{
    struct bd_graph *g = bd_graph_new();

    (void)state;
    expect_open_error(g, "{\"driver\": \"null-co\", \"foo\": 1}", 0,
                      "Block protocol 'null-co' doesn't support the option "
                      "'foo'");
    expect_open_error(g, "{\"driver\": \"raw\", \"foo\": 1, \"file\": "
                      "{\"driver\": \"null-co\"}}", 0,
                      "Block format 'raw' does not support the option "
                      "'foo'");
    expect_open_error(g, "{\"driver\": \"null-co\", \"discard\": \"x\"}", 0,
                      "Invalid discard option");
    expect_open_error(g, "{\"driver\": \"null-co\", \"detect-zeroes\": "
                      "\"bogus\"}", 0, "invalid parameter value: bogus");
    expect_open_error(g, "{\"driver\": \"null-co\", \"detect-zeroes\": "
                      "\"unmap\"}", BD_O_RDWR,
                      "setting detect-zeroes to unmap is not allowed "
                      "without setting discard operation to unmap");
    expect_open_error(g, "{\"driver\": \"null-co\", \"read-only\": "
                      "\"maybe\"}", 0,
                      "Parameter 'read-only' expects 'on' or 'off'");
    bd_graph_free(g);
}

/* Open by filename: protocol prefixes, json: filenames, lengths. */
static void test_core_open_filenames(void **state)
{
    struct bd_graph *g = bd_graph_new();
    struct bd_error *err = NULL;
    struct bd_node *n = NULL;

    (void)state;
    n = bd_open(g, "null-co://", NULL, BD_O_PROTOCOL, &err);
    assert_non_null(n);
    assert_string_equal(bd_node_driver_name(n), "null-co");
    assert_int_equal(bd_getlength(n), 1 << 30);
    bd_unref(n);
    n = bd_open(g, "json:{\"driver\": \"null-co\", \"size\": 1000}", NULL, 0,
                &err);
    assert_non_null(n);
    /* Lengths are whole sectors, as in QEMU. */
    assert_int_equal(bd_getlength(n), 1024);
    bd_unref(n);
    /* Explicit options win over the json: ones. */
    n = bd_open(g, "json:{\"driver\": \"null-co\", \"size\": 1000}",
                json_pack("{s:s}", "size", "4096"), 0, &err);
    assert_non_null(n);
    assert_int_equal(bd_getlength(n), 4096);
    bd_unref(n);
    bd_graph_free(g);
}

/* Options reach the driver: null-co's size, latency, read-zeroes. */
static void test_core_null_options(void **state)
{
    struct bd_graph *g = bd_graph_new();
    struct bd_error *err = NULL;
    struct bd_node *n = NULL;
    uint8_t buf[512];
    struct bd_qiov q;

    (void)state;
    n = bd_open(g, NULL, json_pack("{s:s, s:s, s:s}", "driver", "null-aio",
                                   "size", "64k", "read-zeroes", "on"),
                0, &err);
    assert_non_null(n);
    assert_int_equal(bd_getlength(n), 65536);
    memset(buf, 0xff, sizeof(buf));
    bd_qiov_init_buf(&q, buf, sizeof(buf));
    assert_int_equal(bd_node_preadv(n, 0, 512, &q, 0), 0);
    assert_true(bd_qiov_is_zero(&q));
    bd_unref(n);
    /* read-zeroes=off (the default) leaves the buffer alone. */
    n = bd_open(g, NULL, json_pack("{s:s}", "driver", "null-co"), 0, &err);
    memset(buf, 0xff, sizeof(buf));
    assert_int_equal(bd_node_preadv(n, 0, 512, &q, 0), 0);
    assert_int_equal(buf[0], 0xff);
    bd_unref(n);
    expect_open_error(g, "{\"driver\": \"null-co\", \"size\": \"-1\"}", 0,
                      "Value '-1' is out of range for parameter 'size'");
    expect_open_error(g, "{\"driver\": \"null-co\", \"latency-ns\": \"x\"}",
                      0, "Parameter 'latency-ns' expects a number");
    bd_qiov_destroy(&q);
    bd_graph_free(g);
}

static void test_core_blockdev_add_del(void **state)
{
    struct bd_graph *g = bd_graph_new();
    struct bd_error *err = NULL;
    struct bd_blk *b = NULL;
    struct bd_node *x = NULL;

    (void)state;
    assert_non_null(add_node(g, json_pack("{s:s, s:s}", "driver",
                                                 "null-co", "node-name",
                                                 "n0"), false, &err));
    assert_non_null(add_node(g, json_pack("{s:s, s:s, s:s}", "driver",
                                                 "raw", "node-name", "r0",
                                                 "file", "n0"), false, &err));
    assert_null(add_node(g, json_pack("{s:s}", "driver", "null-co"),
                                false, &err));
    assert_string_equal(bd_error_msg(err),
                        "'node-name' must be specified for the root node");
    bd_error_free(err);
    err = NULL;
    assert_null(add_node(g, json_pack("{s:s}", "node-name", "x"),
                                false, &err));
    assert_string_equal(bd_error_msg(err), "Parameter 'driver' is missing");
    bd_error_free(err);
    err = NULL;

    /* QEMU's messages, in QEMU's order of checks. */
    assert_int_equal(bd_blockdev_del(g, "n0", &err), -EBUSY);
    assert_string_equal(bd_error_msg(err), "Block device n0 is in use");
    bd_error_free(err);
    err = NULL;
    assert_int_equal(bd_blockdev_del(g, "nope", &err), -ENOENT);
    assert_string_equal(bd_error_msg(err),
                        "Failed to find node with node-name='nope'");
    bd_error_free(err);
    err = NULL;
    b = bd_blk_new(g, NULL, BD_PERM_CONSISTENT_READ, BD_PERM_ALL);
    assert_int_equal(bd_blk_insert(b, bd_graph_find_node(g, "r0"), &err), 0);
    assert_int_equal(bd_blockdev_del(g, "r0", &err), -EBUSY);
    assert_string_equal(bd_error_msg(err), "Node r0 is in use");
    bd_error_free(err);
    err = NULL;
    x = td_open_json(g, "{\"driver\": \"null-co\", \"node-name\": \"x\"}", 0,
                     &err);
    assert_int_equal(bd_blockdev_del(g, "x", &err), -EINVAL);
    assert_string_equal(bd_error_msg(err),
                        "Node x is not owned by the monitor");
    bd_error_free(err);
    err = NULL;
    bd_unref(x);

    /* Top-down deletion works once the users are gone. */
    bd_blk_free(b);
    assert_int_equal(bd_blockdev_del(g, "r0", &err), 0);
    assert_int_equal(bd_blockdev_del(g, "n0", &err), 0);
    assert_null(bd_graph_find_node(g, "n0"));
    bd_graph_free(g);
}

/* The conflict message names the edge that requires first, whichever of
 * the two arrived first, exactly as QEMU words it. */
static void test_core_permission_conflict(void **state)
{
    static const char *const want =
        "Permission conflict on node 'n0': permissions 'write' are both "
        "required by an unnamed block device (uses node 'n0' as 'root' "
        "child) and unshared by block device 'a' (uses node 'n0' as 'root' "
        "child).";
    struct bd_graph *g = bd_graph_new();
    struct bd_error *err = NULL;
    struct bd_node *n = td_open_json(g, "{\"driver\": \"null-co\", "
                                     "\"node-name\": \"n0\"}", BD_O_RDWR,
                                     &err);
    struct bd_blk *a = bd_blk_new(g, "a", BD_PERM_CONSISTENT_READ,
                                  BD_PERM_ALL & ~BD_PERM_WRITE);
    struct bd_blk *w = bd_blk_new(g, NULL, BD_PERM_WRITE, BD_PERM_ALL);

    (void)state;
    assert_int_equal(bd_blk_insert(a, n, &err), 0);
    assert_int_equal(bd_blk_insert(w, n, &err), -EPERM);
    assert_string_equal(bd_error_msg(err), want);
    bd_error_free(err);
    err = NULL;
    bd_blk_remove(a);
    assert_int_equal(bd_blk_insert(w, n, &err), 0);
    assert_int_equal(bd_blk_insert(a, n, &err), -EPERM);
    assert_string_equal(bd_error_msg(err), want);
    bd_error_free(err);
    err = NULL;
    /* Failed inserts leave the permissions as they were. */
    assert_int_equal(bd_blk_set_perm(w, BD_PERM_CONSISTENT_READ, BD_PERM_ALL,
                                     &err), 0);
    assert_int_equal(bd_blk_insert(a, n, &err), 0);
    assert_int_equal(bd_blk_set_perm(w, BD_PERM_WRITE, BD_PERM_ALL, &err),
                     -EPERM);
    assert_string_equal(bd_error_msg(err), want);
    bd_error_free(err);
    err = NULL;
    bd_unref(n);
    bd_graph_free(g);
}

static void test_core_read_only_perm(void **state)
{
    struct bd_graph *g = bd_graph_new();
    struct bd_error *err = NULL;
    struct bd_node *n = td_open_json(g, "{\"driver\": \"null-co\"}", 0, &err);
    struct bd_blk *w = bd_blk_new(g, NULL, BD_PERM_WRITE, BD_PERM_ALL);

    (void)state;
    assert_int_equal(bd_blk_insert(w, n, &err), -EPERM);
    assert_string_equal(bd_error_msg(err), "Block node is read-only");
    bd_error_free(err);
    assert_null(bd_blk_node(w));
    bd_unref(n);
    bd_graph_free(g);
}

static void test_core_perm_names(void **state)
{
    (void)state;
    assert_string_equal(bd_perm_names(BD_PERM_WRITE | BD_PERM_RESIZE),
                        "write, resize");
    assert_string_equal(bd_perm_names(BD_PERM_ALL), "consistent read, write, "
                        "write unchanged, resize");
    assert_string_equal(bd_perm_names(0), "");
    assert_string_equal(bd_perm_name(9), "?");
}

/* A node lives as long as its last reference. */
static int count_nodes(struct bd_node *n, void *opaque)
{
    (void)n;
    (*(int *)opaque)++;
    return 0;
}

static int graph_nodes(struct bd_graph *g)
{
    int c = 0;

    bd_graph_foreach_node(g, count_nodes, &c);
    return c;
}

static void test_core_refcount(void **state)
{
    struct bd_graph *g = bd_graph_new();
    struct bd_error *err = NULL;
    struct bd_node *raw = td_open_json(g, "{\"driver\": \"raw\", \"file\": "
                                       "{\"driver\": \"null-co\"}}", 0, &err);
    struct bd_node *file = NULL;
    uint64_t gen;

    (void)state;
    assert_non_null(raw);
    assert_int_equal(graph_nodes(g), 2);
    file = bd_node_file(raw);
    assert_string_equal(bd_node_driver_name(file), "null-co");
    bd_ref(file);
    gen = bd_graph_generation(g);
    bd_unref(raw);
    assert_true(bd_graph_generation(g) > gen);
    assert_int_equal(graph_nodes(g), 1);   /* the child survives */
    bd_unref(file);
    assert_int_equal(graph_nodes(g), 0);
    bd_unref(NULL);
    bd_graph_free(g);
}

/* Inserting a filter above a node moves the users, keeps the filter's own
 * edge, and requests then pass through the filter. */
static void test_core_replace_node(void **state)
{
    struct bd_graph *g = td_graph_new();
    struct bd_error *err = NULL;
    struct td_log log;
    struct bd_node *n = td_open_json(g, "{\"driver\": \"null-co\", "
                                     "\"node-name\": \"n0\"}", BD_O_RDWR,
                                     &err);
    struct bd_blk *b = bd_blk_new(g, NULL, BD_PERM_CONSISTENT_READ |
                                  BD_PERM_WRITE, BD_PERM_ALL);
    struct bd_node *f = NULL;
    uint8_t buf[512];

    (void)state;
    td_log_init(&log);
    assert_int_equal(bd_blk_insert(b, n, &err), 0);
    f = td_open(g, json_pack("{s:s, s:s, s:I, s:s}", "driver", "test-log",
                             "node-name", "f", "log", td_log_opt(&log),
                             "file", "n0"), BD_O_RDWR, &err);
    assert_non_null(f);
    assert_true(bd_node_is_filter(f));
    assert_ptr_equal(bd_node_filtered(f), n);
    assert_ptr_equal(bd_skip_filters(f), n);
    bd_drained_begin(n);
    assert_int_equal(bd_replace_node(n, f, &err), 0);
    bd_drained_end(n);
    assert_ptr_equal(bd_blk_node(b), f);
    assert_ptr_equal(bd_node_filtered(f), n);
    td_log_clear(&log);
    assert_int_equal(bd_blk_pread(b, 0, sizeof(buf), buf, 0), 0);
    {
        char *got = td_log_join(&log);
        assert_string_equal(got, "f read|f read=0");
        free(got);
    }
    bd_unref(f);
    bd_unref(n);
    bd_graph_free(g);
    td_log_destroy(&log);
}

/* Events go to the sink in order; without a sink they are dropped. */
struct sink {
    int n;
    char last[64];
};

static void sink_fn(void *opaque, const char *name, json_t *data)
{
    struct sink *s = opaque;

    s->n++;
    snprintf(s->last, sizeof(s->last), "%s", name);
    json_decref(data);
}

static void test_core_qevents(void **state)
{
    struct bd_graph *g = bd_graph_new();
    struct sink s = { 0 };

    (void)state;
    bd_graph_emit_qevent(g, "DROPPED", json_object());
    bd_graph_set_qevent_sink(g, sink_fn, &s);
    bd_graph_emit_qevent(g, "A", NULL);
    bd_graph_emit_qevent(g, "B", json_object());
    assert_int_equal(s.n, 2);
    assert_string_equal(s.last, "B");
    bd_graph_free(g);
}

/* Graph teardown closes monitor-owned nodes parents first. */
static void test_core_graph_free_closes_all(void **state)
{
    struct bd_graph *g = td_graph_new();
    struct bd_error *err = NULL;
    struct td_log log;

    (void)state;
    td_log_init(&log);
    assert_non_null(add_node(g, json_pack("{s:s, s:s}", "driver",
                                                 "null-co", "node-name",
                                                 "n0"), false, &err));
    assert_non_null(add_node(g, json_pack("{s:s, s:s, s:I, s:s}",
                                                 "driver", "test-log",
                                                 "node-name", "f1", "log",
                                                 td_log_opt(&log), "file",
                                                 "n0"), false, &err));
    assert_non_null(add_node(g, json_pack("{s:s, s:s, s:I, s:s}",
                                                 "driver", "test-log",
                                                 "node-name", "f2", "log",
                                                 td_log_opt(&log), "file",
                                                 "f1"), false, &err));
    td_log_clear(&log);
    bd_graph_free(g);
    {
        char *got = td_log_join(&log);
        assert_string_equal(got, "f2 close|f1 close");
        free(got);
    }
    td_log_destroy(&log);
}

/* Threads opening, using and closing nodes in one graph at once: names
 * stay unique and nothing leaks or races (run under the sanitizers). */
struct opener {
    struct bd_graph *g;
    int failures;
};

static void *opener_main(void *opaque)
{
    struct opener *o = opaque;
    int i;

    for (i = 0; i < 50; i++) {
        struct bd_error *err = NULL;
        struct bd_node *n = td_open_json(o->g, "{\"driver\": \"raw\", "
                                         "\"file\": {\"driver\": "
                                         "\"null-co\", \"size\": 4096}}",
                                         0, &err);
        uint8_t buf[512];
        struct bd_qiov q;
        int count = 0;

        if (!n) {
            bd_error_free(err);
            o->failures++;
            continue;
        }
        bd_qiov_init_buf(&q, buf, sizeof(buf));
        if (bd_node_preadv(n, 0, sizeof(buf), &q, 0) < 0 ||
            bd_graph_find_node(o->g, bd_node_name(n)) != n) {
            o->failures++;
        }
        bd_graph_foreach_node(o->g, count_nodes, &count);
        if (count < 2) {
            o->failures++;
        }
        bd_unref(n);
    }
    return NULL;
}

static void test_core_concurrent_open_close(void **state)
{
    struct bd_graph *g = td_graph_new();
    pthread_t th[4];
    struct opener o[4];
    int i;

    (void)state;
    for (i = 0; i < 4; i++) {
        o[i].g = g;
        o[i].failures = 0;
        pthread_create(&th[i], NULL, opener_main, &o[i]);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(o[i].failures, 0);
    }
    assert_int_equal(graph_nodes(g), 0);
    bd_graph_free(g);
}

int unit_run_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_core_generated_names),
        cmocka_unit_test(test_core_node_name_errors),
        cmocka_unit_test(test_core_driver_and_protocol_errors),
        cmocka_unit_test(test_core_leftover_and_generic_options),
        cmocka_unit_test(test_core_open_filenames),
        cmocka_unit_test(test_core_null_options),
        cmocka_unit_test(test_core_blockdev_add_del),
        cmocka_unit_test(test_core_permission_conflict),
        cmocka_unit_test(test_core_read_only_perm),
        cmocka_unit_test(test_core_perm_names),
        cmocka_unit_test(test_core_refcount),
        cmocka_unit_test(test_core_replace_node),
        cmocka_unit_test(test_core_qevents),
        cmocka_unit_test(test_core_graph_free_closes_all),
        cmocka_unit_test(test_core_concurrent_open_close),
    };

    return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
