/*
 * tests/unit/test_bitmap_cmds.c - monitor/qmp-bitmap.c: the
 * block-dirty-bitmap-* commands called through their table entries, with
 * QEMU 10.0.2's messages (measured with qemu-storage-daemon) and the
 * successor/busy rules of driver/dirty-bitmap.c.
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

#include "common/cutils.h"
#include "driver/block-int.h"
#include "driver/block.h"
#include "driver/dirty-bitmap.h"
#include "jobs/txn-actions.h"
#include "monitor/monitor.h"
#include "monitor/qmp-cmds.h"
#include "tests/unit/unit.h"

struct fixture {
    struct bd_graph *g;
    struct qmp_context ctx;
    struct bd_node *n0;
    struct bd_node *n1;
    struct bd_node *small;
};

static struct bd_node *add_null(struct bd_graph *g, const char *name,
                                int64_t size)
{
    struct bd_error *err = NULL;
    json_t *o = json_pack("{s:s, s:s, s:I}", "driver", "null-co",
                          "node-name", name, "size", (json_int_t)size);
    struct bd_node *n = bd_blockdev_add(g, o, false, &err);

    json_decref(o);
    if (!n) {
        fail_msg("blockdev-add %s: %s", name, err->msg);
    }
    return n;
}

static int setup(void **state)
{
    struct fixture *f = bd_malloc0(sizeof(*f));

    /* A strong reference pulls qmp-bitmap.o out of the library (the
     * table itself is only referenced weakly). */
    assert_non_null(txn_bitmap_action("block-dirty-bitmap-add"));
    f->g = bd_graph_new();
    f->ctx.graph = f->g;
    f->n0 = add_null(f->g, "n0", 1 << 20);
    f->n1 = add_null(f->g, "n1", 1 << 20);
    f->small = add_null(f->g, "small", 1 << 19);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    bd_graph_free(f->g);
    free(f);
    return 0;
}

/* Call a command through the table; returns NULL and the message in
 * *msg on error. */
static json_t *call(struct fixture *f, const char *name, const char *fmt,
                    char **msg)
{
    const struct qmp_command *c;
    json_error_t jerr;
    json_t *args = json_loads(fmt, 0, &jerr);
    struct bd_error *err = NULL;
    json_t *r;

    assert_non_null(args);
    for (c = qmp_cmds_bitmap; c->name; c++) {
        if (!strcmp(c->name, name)) {
            break;
        }
    }
    assert_non_null(c->name);
    r = c->handler(&f->ctx, args, &err);
    json_decref(args);
    if (msg) {
        *msg = NULL;
    }
    if (!r) {
        assert_non_null(err);
        if (msg) {
            *msg = bd_strdup(err->msg);
        }
        bd_error_free(err);
    } else {
        assert_null(err);
    }
    return r;
}

static void expect_ok(struct fixture *f, const char *name, const char *args)
{
    char *msg = NULL;
    json_t *r = call(f, name, args, &msg);

    if (!r) {
        fail_msg("%s %s: %s", name, args, msg);
    }
    json_decref(r);
}

static void expect_err(struct fixture *f, const char *name, const char *args,
                       const char *want)
{
    char *msg = NULL;
    json_t *r = call(f, name, args, &msg);

    assert_null(r);
    assert_string_equal(msg, want);
    free(msg);
}

static void write_at(struct bd_node *n, int64_t off, int64_t len)
{
    char *buf = bd_malloc0((size_t)len);

    struct bd_qiov q;

    bd_qiov_init_buf(&q, buf, (size_t)len);
    assert_int_equal(bd_node_pwritev(n, off, len, &q, 0), 0);
    bd_qiov_destroy(&q);
    free(buf);
}

static json_t *info_of(struct bd_node *n, const char *name)
{
    json_t *list = bd_dirty_bitmap_query(n);
    size_t i;
    json_t *o;

    json_array_foreach(list, i, o) {
        const char *nm = json_string_value(json_object_get(o, "name"));
        if (name ? (nm && !strcmp(nm, name)) : !nm) {
            json_incref(o);
            json_decref(list);
            return o;
        }
    }
    json_decref(list);
    return NULL;
}

static int64_t count_of(struct bd_node *n, const char *name)
{
    json_t *o = info_of(n, name);
    int64_t c;

    assert_non_null(o);
    c = json_integer_value(json_object_get(o, "count"));
    json_decref(o);
    return c;
}

/* add: every validation message and its order. */
static void test_add_validation(void **state)
{
    struct fixture *f = *state;

    expect_err(f, "block-dirty-bitmap-add", "{\"node\":\"nope\",\"name\":\"\"}",
               "Bitmap name cannot be empty");
    expect_err(f, "block-dirty-bitmap-add", "{\"node\":\"nope\",\"name\":\"x\"}",
               "Cannot find device='nope' nor node-name='nope'");
    expect_err(f, "block-dirty-bitmap-add",
               "{\"node\":\"n0\",\"name\":\"x\",\"granularity\":256}",
               "Granularity must be power of 2 and at least 512");
    expect_err(f, "block-dirty-bitmap-add",
               "{\"node\":\"n0\",\"name\":\"x\",\"granularity\":1000}",
               "Granularity must be power of 2 and at least 512");
    expect_err(f, "block-dirty-bitmap-add",
               "{\"node\":\"n0\",\"name\":\"x\",\"granularity\":4294967296}",
               "Parameter 'granularity' expects uint32_t");
    expect_err(f, "block-dirty-bitmap-add",
               "{\"node\":\"n0\",\"name\":\"p\",\"persistent\":true}",
               "Can't store persistent bitmaps to n0: Operation not "
               "supported");
    expect_ok(f, "block-dirty-bitmap-add", "{\"node\":\"n0\",\"name\":\"b0\"}");
    expect_err(f, "block-dirty-bitmap-add", "{\"node\":\"n0\",\"name\":\"b0\"}",
               "Bitmap already exists: b0");
    {
        char name[1100];
        char args[1200];
        char want[1200];

        memset(name, 'x', 1024);
        name[1024] = 0;
        snprintf(args, sizeof(args), "{\"node\":\"n0\",\"name\":\"%s\"}",
                 name);
        snprintf(want, sizeof(want), "Bitmap name too long: %s", name);
        expect_err(f, "block-dirty-bitmap-add", args, want);
        name[1023] = 0;
        snprintf(args, sizeof(args), "{\"node\":\"n0\",\"name\":\"%s\"}",
                 name);
        expect_ok(f, "block-dirty-bitmap-add", args);
    }
}

/* Default granularity 64k on a node without clusters; disabled bitmaps
 * do not record; big granularities (any uint32 power of two) work. */
static void test_add_record(void **state)
{
    struct fixture *f = *state;
    json_t *o;

    expect_ok(f, "block-dirty-bitmap-add", "{\"node\":\"n0\",\"name\":\"a\"}");
    expect_ok(f, "block-dirty-bitmap-add",
              "{\"node\":\"n0\",\"name\":\"d\",\"disabled\":true,"
              "\"granularity\":512}");
    expect_ok(f, "block-dirty-bitmap-add",
              "{\"node\":\"n0\",\"name\":\"huge\",\"granularity\":"
              "2147483648}");
    write_at(f->n0, 70000, 1000);
    o = info_of(f->n0, "a");
    assert_int_equal(json_integer_value(json_object_get(o, "granularity")),
                     65536);
    assert_int_equal(json_integer_value(json_object_get(o, "count")), 65536);
    assert_true(json_is_true(json_object_get(o, "recording")));
    assert_true(json_is_false(json_object_get(o, "busy")));
    assert_null(json_object_get(o, "inconsistent"));
    json_decref(o);
    assert_int_equal(count_of(f->n0, "d"), 0);
    /* One granule, counted fully although the disk ends inside it. */
    assert_int_equal(count_of(f->n0, "huge"), 2147483648LL);
    expect_ok(f, "block-dirty-bitmap-enable",
              "{\"node\":\"n0\",\"name\":\"d\"}");
    write_at(f->n0, 0, 512);
    assert_int_equal(count_of(f->n0, "d"), 512);
    expect_ok(f, "block-dirty-bitmap-disable",
              "{\"node\":\"n0\",\"name\":\"d\"}");
    write_at(f->n0, 4096, 512);
    assert_int_equal(count_of(f->n0, "d"), 512);
    expect_ok(f, "block-dirty-bitmap-clear",
              "{\"node\":\"n0\",\"name\":\"a\"}");
    assert_int_equal(count_of(f->n0, "a"), 0);
    expect_ok(f, "block-dirty-bitmap-remove",
              "{\"node\":\"n0\",\"name\":\"a\"}");
    assert_null(info_of(f->n0, "a"));
}

static void test_lookup_errors(void **state)
{
    struct fixture *f = *state;
    static const char *const cmds[] = {
        "block-dirty-bitmap-remove", "block-dirty-bitmap-clear",
        "block-dirty-bitmap-enable", "block-dirty-bitmap-disable", NULL,
    };
    int i;

    for (i = 0; cmds[i]; i++) {
        expect_err(f, cmds[i], "{\"node\":\"nope\",\"name\":\"b\"}",
                   "Node 'nope' not found");
        expect_err(f, cmds[i], "{\"node\":\"n0\",\"name\":\"zz\"}",
                   "Dirty bitmap 'zz' not found");
    }
    expect_err(f, "block-dirty-bitmap-merge",
               "{\"node\":\"n0\",\"target\":\"zz\",\"bitmaps\":[\"b\"]}",
               "Dirty bitmap 'zz' not found");
}

/* merge: local and external sources, different granularities, size
 * mismatch, target restored on a failing later source. */
static void test_merge(void **state)
{
    struct fixture *f = *state;

    expect_ok(f, "block-dirty-bitmap-add",
              "{\"node\":\"n0\",\"name\":\"t\",\"granularity\":65536,"
              "\"disabled\":true}");
    expect_ok(f, "block-dirty-bitmap-add",
              "{\"node\":\"n0\",\"name\":\"l\",\"granularity\":512}");
    expect_ok(f, "block-dirty-bitmap-add",
              "{\"node\":\"n1\",\"name\":\"x\",\"granularity\":4096}");
    expect_ok(f, "block-dirty-bitmap-add",
              "{\"node\":\"small\",\"name\":\"s\"}");
    write_at(f->n0, 512, 512);          /* l: 1 granule; t: 0..64k */
    write_at(f->n1, 200000, 4096);      /* x: 2 granules at 4k */
    expect_err(f, "block-dirty-bitmap-merge",
               "{\"node\":\"n0\",\"target\":\"t\",\"bitmaps\":[\"nope\"]}",
               "Dirty bitmap 'nope' not found");
    expect_err(f, "block-dirty-bitmap-merge",
               "{\"node\":\"n0\",\"target\":\"t\",\"bitmaps\":"
               "[{\"node\":\"nope\",\"name\":\"x\"}]}",
               "Node 'nope' not found");
    expect_err(f, "block-dirty-bitmap-merge",
               "{\"node\":\"n0\",\"target\":\"t\",\"bitmaps\":"
               "[\"l\",{\"node\":\"small\",\"name\":\"s\"}]}",
               "Bitmaps are of different sizes (destination size is "
               "1048576, source size is 524288) and can't be merged");
    assert_int_equal(count_of(f->n0, "t"), 0);
    expect_ok(f, "block-dirty-bitmap-merge",
              "{\"node\":\"n0\",\"target\":\"t\",\"bitmaps\":"
              "[\"l\",{\"node\":\"n1\",\"name\":\"x\"},\"t\"]}");
    /* 512@512 -> granule 0; 200000..204096 at 4k -> 196608..204800,
     * which touches 64k granule 3 only. */
    assert_int_equal(count_of(f->n0, "t"), 2 * 65536);
    /* An empty list is a no-op (QEMU 10.0.2 crashes on it). */
    expect_ok(f, "block-dirty-bitmap-merge",
              "{\"node\":\"n0\",\"target\":\"t\",\"bitmaps\":[]}");
}

/* Busy and read-only and inconsistent rules, with a job's successor. */
static void test_busy_rules(void **state)
{
    struct fixture *f = *state;
    struct bd_dirty_bitmap *bm;
    json_t *o;
    const char *busy = "Bitmap 'b' is currently in use by another operation "
                       "and cannot be used";

    expect_ok(f, "block-dirty-bitmap-add",
              "{\"node\":\"n0\",\"name\":\"b\",\"granularity\":65536}");
    expect_ok(f, "block-dirty-bitmap-add",
              "{\"node\":\"n0\",\"name\":\"o\",\"granularity\":65536}");
    write_at(f->n0, 0, 512);
    bm = bd_dirty_bitmap_find(f->n0, "b");
    assert_int_equal(bd_dirty_bitmap_create_successor(bm, NULL), 0);
    assert_int_equal(bd_dirty_bitmap_create_successor(bm, NULL), -EBUSY);
    write_at(f->n0, 65536, 512);
    o = info_of(f->n0, "b");
    assert_true(json_is_true(json_object_get(o, "busy")));
    assert_true(json_is_true(json_object_get(o, "recording")));
    assert_int_equal(json_integer_value(json_object_get(o, "count")), 65536);
    json_decref(o);
    assert_int_equal(count_of(f->n0, NULL), 65536);   /* the successor */
    expect_err(f, "block-dirty-bitmap-remove",
               "{\"node\":\"n0\",\"name\":\"b\"}", busy);
    expect_err(f, "block-dirty-bitmap-clear",
               "{\"node\":\"n0\",\"name\":\"b\"}", busy);
    expect_err(f, "block-dirty-bitmap-enable",
               "{\"node\":\"n0\",\"name\":\"b\"}", busy);
    expect_err(f, "block-dirty-bitmap-disable",
               "{\"node\":\"n0\",\"name\":\"b\"}", busy);
    expect_err(f, "block-dirty-bitmap-merge",
               "{\"node\":\"n0\",\"target\":\"b\",\"bitmaps\":[\"o\"]}",
               busy);
    expect_err(f, "block-dirty-bitmap-merge",
               "{\"node\":\"n0\",\"target\":\"o\",\"bitmaps\":[\"b\"]}",
               busy);
    bd_dirty_bitmap_reclaim(bm);
    o = info_of(f->n0, "b");
    assert_true(json_is_false(json_object_get(o, "busy")));
    assert_int_equal(json_integer_value(json_object_get(o, "count")),
                     2 * 65536);
    json_decref(o);
    assert_null(info_of(f->n0, NULL));
    /* abdicate keeps only what was written during the freeze */
    assert_int_equal(bd_dirty_bitmap_create_successor(bm, NULL), 0);
    write_at(f->n0, 3 * 65536, 512);
    bd_dirty_bitmap_abdicate(bm);
    assert_int_equal(count_of(f->n0, "b"), 65536);
    assert_true(bd_dirty_bitmap_get(bm, 3 * 65536));

    bm->readonly = true;
    expect_err(f, "block-dirty-bitmap-clear",
               "{\"node\":\"n0\",\"name\":\"b\"}",
               "Bitmap 'b' is readonly and cannot be modified");
    expect_err(f, "block-dirty-bitmap-remove",
               "{\"node\":\"n0\",\"name\":\"b\"}",
               "Bitmap 'b' is readonly and cannot be modified");
    expect_ok(f, "block-dirty-bitmap-disable",
              "{\"node\":\"n0\",\"name\":\"b\"}");
    bm->readonly = false;
    bm->inconsistent = true;
    expect_err(f, "block-dirty-bitmap-enable",
               "{\"node\":\"n0\",\"name\":\"b\"}",
               "Bitmap 'b' is inconsistent and cannot be used");
    expect_err(f, "block-dirty-bitmap-merge",
               "{\"node\":\"n0\",\"target\":\"o\",\"bitmaps\":[\"b\"]}",
               "Bitmap 'b' is inconsistent and cannot be used");
    bm->inconsistent = false;
}

int unit_run_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_add_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lookup_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_rules, setup, teardown),
    };

    return cmocka_run_group_tests_name("bitmap_cmds", tests, NULL, NULL);
}
