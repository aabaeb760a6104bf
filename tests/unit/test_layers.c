/*
 * tests/unit/test_layers.c - the layer-order test (issue 3 item 5): three
 * logging filters stacked over null-co, checking the order in which each
 * layer sees open, read, write, discard, write-zeroes, flush, drain and
 * close, and that errors travel up unchanged while the layers below a
 * failing one are never called.
 */
#include "common/config.h"

#include <errno.h>
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

struct stack {
    struct td_log log;
    struct bd_graph *g;
    struct bd_blk *blk;
    struct bd_node *bottom;
};

/* Compare the log with want, then start a new log. */
static void expect_log(struct td_log *log, const char *want)
{
    char *got = td_log_join(log);

    assert_string_equal(got, want);
    free(got);
    td_log_clear(log);
}

static json_t *log_layer(struct td_log *log, const char *name, json_t *file)
{
    return json_pack("{s:s, s:s, s:I, s:o}", "driver", "test-log",
                     "node-name", name, "log", td_log_opt(log), "file", file);
}

/* f3 -> middle -> f1 -> null-co; middle is test-log "f2" unless given. */
static struct bd_node *open_stack(struct stack *st, json_t *middle,
                                  struct bd_error **errp)
{
    json_t *bottom = json_pack("{s:s, s:s, s:b, s:s}", "driver", "null-co",
                               "node-name", "n0", "read-zeroes", 1,
                               "size", "1M");
    json_t *f1 = log_layer(&st->log, "f1", bottom);

    if (middle) {
        json_object_set_new(middle, "file", f1);
    } else {
        middle = log_layer(&st->log, "f2", f1);
    }
    return td_open(st->g, log_layer(&st->log, "f3", middle),
                   BD_O_RDWR | BD_O_UNMAP, errp);
}

static int stack_setup(void **state)
{
    struct stack *st = calloc(1, sizeof(*st));
    struct bd_error *err = NULL;
    struct bd_node *top = NULL;

    td_log_init(&st->log);
    st->g = td_graph_new();
    top = open_stack(st, NULL, &err);
    if (!top) {
        fprintf(stderr, "open: %s\n", bd_error_msg(err));
        return -1;
    }
    st->blk = bd_blk_new(st->g, NULL, BD_PERM_CONSISTENT_READ |
                         BD_PERM_WRITE | BD_PERM_RESIZE, BD_PERM_ALL);
    if (bd_blk_insert(st->blk, top, &err) < 0) {
        return -1;
    }
    bd_unref(top);
    st->bottom = bd_graph_find_node(st->g, "n0");
    *state = st;
    return 0;
}

static int stack_teardown(void **state)
{
    struct stack *st = *state;

    bd_graph_free(st->g);
    td_log_destroy(&st->log);
    free(st);
    return 0;
}

/* open: entered top-down, completed bottom-up; close: top-down. */
static void test_layers_open_close(void **state)
{
    struct stack *st = *state;

    expect_log(&st->log, "f3 open|f2 open|f1 open|"
               "f1 open=0|f2 open=0|f3 open=0");
    bd_blk_free(st->blk);
    st->blk = NULL;
    /* Detaching the backend drains its node first. */
    expect_log(&st->log, "f3 drain_begin|f3 drain_end|"
               "f3 close|f2 close|f1 close");
    assert_null(bd_graph_find_node(st->g, "n0"));
}

/* Data requests go down through every layer and return in reverse. */
static void test_layers_requests(void **state)
{
    struct stack *st = *state;
    uint8_t buf[4096];

    td_log_clear(&st->log);
    memset(buf, 0xa5, sizeof(buf));
    assert_int_equal(bd_blk_pread(st->blk, 0, 4096, buf, 0), 0);
    assert_int_equal(buf[0], 0);    /* read-zeroes reached the buffer */
    expect_log(&st->log, "f3 read|f2 read|f1 read|"
               "f1 read=0|f2 read=0|f3 read=0");
    assert_int_equal(bd_blk_pwrite(st->blk, 4096, 4096, buf, 0), 0);
    expect_log(&st->log, "f3 write|f2 write|f1 write|"
               "f1 write=0|f2 write=0|f3 write=0");
    assert_int_equal(bd_blk_pwrite_zeroes(st->blk, 0, 8192, 0), 0);
    expect_log(&st->log, "f3 zeroes|f2 zeroes|f1 zeroes|"
               "f1 zeroes=0|f2 zeroes=0|f3 zeroes=0");
    assert_int_equal(bd_blk_pdiscard(st->blk, 0, 8192), 0);
    expect_log(&st->log, "f3 discard|f2 discard|f1 discard|"
               "f1 discard=0|f2 discard=0|f3 discard=0");
}

/* Writethrough: FUA travels down unchanged to a driver that honours it. */
static void test_layers_fua(void **state)
{
    struct stack *st = *state;
    uint8_t buf[512] = { 0 };

    td_log_clear(&st->log);
    bd_blk_set_write_cache(st->blk, false);
    assert_int_equal(bd_blk_pwrite(st->blk, 0, sizeof(buf), buf, 0), 0);
    expect_log(&st->log, "f3 write fua|f2 write fua|f1 write fua|"
               "f1 write=0|f2 write=0|f3 write=0");
}

/* Flush runs parent before child, and is skipped entirely when nothing
 * was written since the last good flush. */
static void test_layers_flush(void **state)
{
    struct stack *st = *state;
    uint8_t buf[512] = { 0 };

    assert_int_equal(bd_blk_pwrite(st->blk, 0, sizeof(buf), buf, 0), 0);
    td_log_clear(&st->log);
    assert_int_equal(bd_blk_flush(st->blk), 0);
    expect_log(&st->log, "f3 flush|f2 flush|f1 flush");
    assert_int_equal(bd_blk_flush(st->blk), 0);
    expect_log(&st->log, "");
}

/* Draining the bottom quiesces the parents first (top-down) and resumes
 * them last (bottom-up); nested drains call back only at the edges. */
static void test_layers_drain(void **state)
{
    struct stack *st = *state;
    struct bd_node *top = bd_blk_node(st->blk);

    td_log_clear(&st->log);
    bd_drained_begin(st->bottom);
    expect_log(&st->log, "f3 drain_begin|f2 drain_begin|f1 drain_begin");
    bd_drained_begin(top);
    expect_log(&st->log, "");
    bd_drained_end(top);
    expect_log(&st->log, "");
    bd_drained_end(st->bottom);
    expect_log(&st->log, "f1 drain_end|f2 drain_end|f3 drain_end");
    /* Draining the top reaches only the top. */
    bd_drained_begin(top);
    bd_drained_end(top);
    expect_log(&st->log, "f3 drain_begin|f3 drain_end");
}

/* A filter removed while the node below it is drained (what a job does
 * when it completes): its drain ends with the edge, and the closed driver
 * gets no callback after its close. */
static void test_layers_close_while_child_drained(void **state)
{
    struct stack *st = *state;

    td_log_clear(&st->log);
    bd_ref(st->bottom);         /* the job's reference */
    bd_drained_begin(st->bottom);
    bd_blk_remove(st->blk);     /* drops the last reference: closes f3.. */
    bd_drained_end(st->bottom);
    assert_int_equal(atomic_load(&st->bottom->quiesce_counter), 0);
    bd_unref(st->bottom);
    expect_log(&st->log, "f3 drain_begin|f2 drain_begin|f1 drain_begin|"
               "f3 close|f2 close|f1 close");
}

/* A failing middle layer: its errno reaches the user and the layers
 * above see it; the layers below are never called. */
static void test_layers_error_propagation(void **state)
{
    struct stack st = { 0 };
    struct bd_error *err = NULL;
    struct bd_node *top = NULL;
    struct bd_blk *blk = NULL;
    uint8_t buf[512] = { 0 };
    json_t *mid = json_pack("{s:s, s:s, s:b, s:b, s:i}", "driver",
                            "test-fail", "node-name", "bad", "fail-read", 1,
                            "fail-flush", 1, "errno", ENOSPC);

    (void)state;
    td_log_init(&st.log);
    st.g = td_graph_new();
    top = open_stack(&st, mid, &err);
    assert_non_null(top);
    blk = bd_blk_new(st.g, NULL, BD_PERM_CONSISTENT_READ | BD_PERM_WRITE,
                     BD_PERM_ALL);
    assert_int_equal(bd_blk_insert(blk, top, &err), 0);
    bd_unref(top);
    td_log_clear(&st.log);

    assert_int_equal(bd_blk_pread(blk, 0, 512, buf, 0), -ENOSPC);
    expect_log(&st.log, "f3 read|f3 read=-28");
    /* Writes pass the failing layer untouched. */
    assert_int_equal(bd_blk_pwrite(blk, 0, 512, buf, 0), 0);
    expect_log(&st.log, "f3 write|f1 write|f1 write=0|f3 write=0");
    /* A failed flush stops before the children and is retried in full
     * next time (the flush generation did not advance). */
    assert_int_equal(bd_blk_flush(blk), -ENOSPC);
    expect_log(&st.log, "f3 flush");
    assert_int_equal(bd_blk_flush(blk), -ENOSPC);
    expect_log(&st.log, "f3 flush");
    bd_graph_free(st.g);
    td_log_destroy(&st.log);
}

/* A layer failing in open: the message reaches the caller, the layers it
 * already opened are closed again, and nothing is left in the graph. */
static int count_node(struct bd_node *n, void *opaque)
{
    (void)n;
    (*(int *)opaque)++;
    return 0;
}

static void test_layers_open_failure(void **state)
{
    struct stack st = { 0 };
    struct bd_error *err = NULL;
    json_t *mid = json_pack("{s:s, s:s, s:b}", "driver", "test-fail",
                            "node-name", "bad", "fail-open", 1);
    int nodes = 0;

    (void)state;
    td_log_init(&st.log);
    st.g = td_graph_new();
    assert_null(open_stack(&st, mid, &err));
    assert_non_null(err);
    assert_string_equal(bd_error_msg(err),
                        "test-fail: injected open failure: "
                        "Input/output error");
    bd_error_free(err);
    expect_log(&st.log, "f3 open|f1 open|f1 open=0|f1 close|f3 open=-22");
    bd_graph_foreach_node(st.g, count_node, &nodes);
    assert_int_equal(nodes, 0);
    bd_graph_free(st.g);
    td_log_destroy(&st.log);
}

/* An unknown driver below the filters fails the whole open. */
static void test_layers_unknown_child_driver(void **state)
{
    struct bd_graph *g = td_graph_new();
    struct bd_error *err = NULL;
    struct td_log log;
    json_t *o = NULL;

    (void)state;
    td_log_init(&log);
    o = log_layer(&log, "f1", json_pack("{s:s}", "driver", "nope"));
    assert_null(td_open(g, o, BD_O_RDWR, &err));
    assert_string_equal(bd_error_msg(err), "Unknown driver 'nope'");
    bd_error_free(err);
    expect_log(&log, "f1 open|f1 open=-22");
    bd_graph_free(g);
    td_log_destroy(&log);
}

int unit_run_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_layers_open_close,
                                        stack_setup, stack_teardown),
        cmocka_unit_test_setup_teardown(test_layers_requests,
                                        stack_setup, stack_teardown),
        cmocka_unit_test_setup_teardown(test_layers_fua,
                                        stack_setup, stack_teardown),
        cmocka_unit_test_setup_teardown(test_layers_flush,
                                        stack_setup, stack_teardown),
        cmocka_unit_test_setup_teardown(test_layers_drain,
                                        stack_setup, stack_teardown),
        cmocka_unit_test_setup_teardown(test_layers_close_while_child_drained,
                                        stack_setup, stack_teardown),
        cmocka_unit_test(test_layers_error_propagation),
        cmocka_unit_test(test_layers_open_failure),
        cmocka_unit_test(test_layers_unknown_child_driver),
    };

    return cmocka_run_group_tests_name("layers", tests, NULL, NULL);
}
