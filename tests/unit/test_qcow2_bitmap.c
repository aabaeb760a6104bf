/*
 * tests/unit/test_qcow2_bitmap.c - persistent dirty bitmaps in qcow2:
 * bitmaps stored on close come back on open with their granularity, flags
 * and content; writes through a reopened image are recorded by the
 * enabled ones only; the stored clusters are refcounted (check finds no
 * leak or corruption); a removed bitmap leaves the directory at once; a
 * read-only open gives read-only bitmaps; v2 images cannot store them.
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
#include "driver/block.h"
#include "driver/dirty-bitmap.h"
#include "driver/qcow2-int.h"
#include "driver/qcow2.h"
#include "tests/unit/unit.h"

#define SIZE (4u << 20)

struct fx {
    char dir[64];
    char img[96];
};

static int fx_setup(void **state)
{
    struct fx *f = bd_malloc0(sizeof(*f));

    snprintf(f->dir, sizeof(f->dir), "/tmp/blkrig-qbm.XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->img, sizeof(f->img), "%s/img.qcow2", f->dir);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;

    unlink(f->img);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void create_qcow2(const char *path, int version)
{
    struct qcow2_create_opts o;
    struct bd_error *err = NULL;

    memset(&o, 0, sizeof(o));
    o.size = SIZE;
    o.version = version;
    if (qcow2_create_file(path, &o, &err) < 0) {
        fail_msg("create: %s", bd_error_msg(err));
    }
}

static struct bd_blk *open_blk(struct bd_graph *g, const char *path,
                               int flags)
{
    json_t *o = json_object();
    struct bd_error *err = NULL;
    struct bd_node *n;
    struct bd_blk *b;

    json_object_set_new(o, "driver", json_string("qcow2"));
    n = bd_open(g, path, o, flags, &err);
    if (!n) {
        fail_msg("open: %s", bd_error_msg(err));
    }
    b = bd_blk_new(g, NULL, BD_PERM_CONSISTENT_READ |
                   ((flags & BD_O_RDWR) ? BD_PERM_WRITE : 0), BD_PERM_ALL);
    assert_int_equal(bd_blk_insert(b, n, NULL), 0);
    bd_unref(n);
    return b;
}

static void assert_clean(const char *path)
{
    struct bd_graph *g = bd_graph_new();
    struct bd_blk *b = open_blk(g, path, 0);
    struct qcow2_check_result res;

    assert_int_equal(qcow2_node_check(bd_blk_node(b), &res, 0), 0);
    assert_int_equal(res.corruptions, 0);
    assert_int_equal(res.leaks, 0);
    assert_int_equal(res.check_errors, 0);
    bd_graph_free(g);
}

static struct bd_dirty_bitmap *add(struct bd_node *n, const char *name,
                                   uint64_t gran, bool persistent)
{
    struct bd_error *err = NULL;
    struct bd_dirty_bitmap *bm = bd_dirty_bitmap_create(n, gran, name, &err);

    if (!bm) {
        fail_msg("bitmap: %s", bd_error_msg(err));
    }
    bm->persistent = persistent;
    return bm;
}

static void write_at(struct bd_blk *b, int64_t off, int64_t len)
{
    uint8_t *buf = bd_malloc0((size_t)len);

    memset(buf, 0xa5, (size_t)len);
    assert_int_equal(bd_blk_pwrite(b, off, len, buf, 0), 0);
    free(buf);
}

/* Store on close, load on open: names, granularity, flags, content. */
static void test_qcow2_bitmap_roundtrip(void **state)
{
    struct fx *f = *state;
    struct bd_graph *g;
    struct bd_blk *b;
    struct bd_node *n;
    struct bd_dirty_bitmap *a, *d;
    struct qcow2_bitmap_info *list;
    struct bd_error *err = NULL;
    int nb, i;

    create_qcow2(f->img, 3);
    g = bd_graph_new();
    b = open_blk(g, f->img, BD_O_RDWR);
    n = bd_blk_node(b);
    a = add(n, "a", 65536, true);
    d = add(n, "d", 512, true);
    add(n, "t", 65536, false);
    bd_dirty_bitmap_set_enabled(d, false);
    bd_dirty_bitmap_set(a, 0, 1);
    bd_dirty_bitmap_set(a, 3 << 20, 70000);
    /* Past the first data cluster of a 512-byte bitmap (8192 bits). */
    bd_dirty_bitmap_set(d, 3 << 20, 512);
    bd_dirty_bitmap_set(d, 1024, 1);
    bd_graph_free(g);
    assert_clean(f->img);

    g = bd_graph_new();
    b = open_blk(g, f->img, 0);
    n = bd_blk_node(b);
    nb = qcow2_bitmap_list(n, &list, &err);
    assert_int_equal(nb, 2);
    for (i = 0; i < nb; i++) {
        bool is_a = !strcmp(list[i].name, "a");

        assert_true(is_a || !strcmp(list[i].name, "d"));
        assert_int_equal(list[i].granularity, is_a ? 65536 : 512);
        assert_int_equal(list[i].flags, is_a ? QCOW2_BITMAP_AUTO : 0);
    }
    qcow2_bitmap_list_free(list, nb);
    assert_null(bd_dirty_bitmap_find(n, "t"));
    a = bd_dirty_bitmap_find(n, "a");
    d = bd_dirty_bitmap_find(n, "d");
    assert_non_null(a);
    assert_non_null(d);
    assert_true(a->persistent && a->readonly && a->enabled);
    assert_true(d->persistent && d->readonly && !d->enabled);
    assert_false(a->inconsistent || d->inconsistent);
    assert_int_equal(bd_dirty_bitmap_count(a), 3 * 65536);
    assert_true(bd_dirty_bitmap_get(a, 0));
    assert_false(bd_dirty_bitmap_get(a, 65536));
    assert_true(bd_dirty_bitmap_get(a, (3 << 20) + 65536));
    assert_int_equal(bd_dirty_bitmap_count(d), 1024);
    assert_true(bd_dirty_bitmap_get(d, 3 << 20));
    assert_true(bd_dirty_bitmap_get(d, 1024));
    bd_graph_free(g);

    /* Writes through a reopened image: only the enabled one records. */
    g = bd_graph_new();
    b = open_blk(g, f->img, BD_O_RDWR);
    n = bd_blk_node(b);
    a = bd_dirty_bitmap_find(n, "a");
    assert_false(a->readonly);
    write_at(b, 1 << 20, 4096);
    bd_graph_free(g);
    assert_clean(f->img);

    g = bd_graph_new();
    b = open_blk(g, f->img, 0);
    n = bd_blk_node(b);
    assert_int_equal(bd_dirty_bitmap_count(bd_dirty_bitmap_find(n, "a")),
                     4 * 65536);
    assert_int_equal(bd_dirty_bitmap_count(bd_dirty_bitmap_find(n, "d")),
                     1024);
    bd_graph_free(g);
}

/* Removing a persistent bitmap takes it out of the image at once; the
 * others stay, flagged in use while the image is open for writing. */
static void test_qcow2_bitmap_remove(void **state)
{
    struct fx *f = *state;
    struct bd_graph *g;
    struct bd_blk *b;
    struct bd_node *n;
    struct qcow2_bitmap_info *list;
    struct bd_error *err = NULL;
    int nb;

    create_qcow2(f->img, 3);
    g = bd_graph_new();
    b = open_blk(g, f->img, BD_O_RDWR);
    n = bd_blk_node(b);
    add(n, "x", 65536, true);
    bd_dirty_bitmap_set(add(n, "y", 4096, true), 8192, 1);
    bd_graph_free(g);

    g = bd_graph_new();
    b = open_blk(g, f->img, BD_O_RDWR);
    n = bd_blk_node(b);
    bd_dirty_bitmap_release(bd_dirty_bitmap_find(n, "x"));
    assert_int_equal(qcow2_bitmaps_store(n, true), 0);
    nb = qcow2_bitmap_list(n, &list, &err);
    assert_int_equal(nb, 1);
    assert_string_equal(list[0].name, "y");
    assert_true(list[0].flags & QCOW2_BITMAP_IN_USE);
    qcow2_bitmap_list_free(list, nb);
    bd_graph_free(g);
    assert_clean(f->img);

    g = bd_graph_new();
    b = open_blk(g, f->img, 0);
    n = bd_blk_node(b);
    assert_null(bd_dirty_bitmap_find(n, "x"));
    assert_int_equal(bd_dirty_bitmap_count(bd_dirty_bitmap_find(n, "y")),
                     4096);
    bd_graph_free(g);

    /* The last one removed: no extension, autoclear bit cleared. */
    g = bd_graph_new();
    b = open_blk(g, f->img, BD_O_RDWR);
    n = bd_blk_node(b);
    bd_dirty_bitmap_release(bd_dirty_bitmap_find(n, "y"));
    bd_graph_free(g);
    assert_clean(f->img);
    g = bd_graph_new();
    b = open_blk(g, f->img, 0);
    n = bd_blk_node(b);
    assert_int_equal(qcow2_bitmap_list(n, &list, &err), 0);
    qcow2_bitmap_list_free(list, 0);
    assert_false(((struct qcow2_state *)n->opaque)->autoclear &
                 QCOW2_AUTOCLEAR_BITMAPS);
    bd_graph_free(g);
}

/* compat=0.10 has no autoclear field: storing is refused. */
static void test_qcow2_bitmap_v2(void **state)
{
    struct fx *f = *state;
    struct bd_graph *g;
    struct bd_blk *b;
    struct bd_node *n;

    create_qcow2(f->img, 2);
    g = bd_graph_new();
    b = open_blk(g, f->img, BD_O_RDWR);
    n = bd_blk_node(b);
    assert_int_equal(qcow2_bitmaps_store(n, false), 0);
    add(n, "v", 65536, true);
    assert_int_equal(qcow2_bitmaps_store(n, false), -ENOTSUP);
    bd_dirty_bitmap_release(bd_dirty_bitmap_find(n, "v"));
    bd_graph_free(g);
    assert_clean(f->img);
}

int unit_run_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_qcow2_bitmap_roundtrip,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_qcow2_bitmap_remove,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_qcow2_bitmap_v2,
                                        fx_setup, fx_teardown),
    };

    return cmocka_run_group_tests_name("qcow2_bitmap", tests, NULL, NULL);
}
