/*
 * tests/unit/test_dirty_bitmap.c - driver/dirty-bitmap.c: marking by the
 * request path, granules, growth and shrinking with the node (truncate and
 * writes past the end of a file), merge, iteration, backup/restore and the
 * BlockDirtyInfo query.
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

#include "driver/block-int.h"
#include "driver/dirty-bitmap.h"
#include "tests/helpers/test-drivers.h"
#include "tests/unit/unit.h"

#define G 65536

struct benv {
    struct bd_graph *g;
    struct bd_node *n;
    struct bd_blk *blk;
};

static void benv_open(struct benv *e, const char *json, int flags)
{
    struct bd_error *err = NULL;

    e->g = td_graph_new();
    e->n = td_open_json(e->g, json, flags | BD_O_RDWR, &err);
    if (!e->n) {
        fail_msg("open: %s", bd_error_msg(err));
    }
    e->blk = bd_blk_new(e->g, NULL, BD_PERM_CONSISTENT_READ | BD_PERM_WRITE |
                        BD_PERM_RESIZE, BD_PERM_ALL);
    assert_int_equal(bd_blk_insert(e->blk, e->n, &err), 0);
    bd_unref(e->n);
}

static void test_dirty_bitmap_marking(void **state)
{
    struct benv e;
    struct bd_error *err = NULL;
    struct bd_dirty_bitmap *bm = NULL;
    struct bd_dirty_bitmap *off = NULL;
    uint8_t buf[4096] = { 1 };

    (void)state;
    benv_open(&e, "{\"driver\": \"test-mem\", \"size\": \"1M\"}",
              BD_O_UNMAP);
    bm = bd_dirty_bitmap_create(e.n, G, "b0", &err);
    assert_non_null(bm);
    assert_null(bd_dirty_bitmap_create(e.n, G, "b0", &err));
    assert_string_equal(bd_error_msg(err), "Bitmap already exists: b0");
    bd_error_free(err);
    err = NULL;
    off = bd_dirty_bitmap_create(e.n, G, "off", &err);
    off->enabled = false;
    assert_ptr_equal(bd_dirty_bitmap_find(e.n, "b0"), bm);
    assert_null(bd_dirty_bitmap_find(e.n, "nope"));

    assert_int_equal(bd_dirty_bitmap_count(bm), 0);
    /* One byte dirties its whole granule; a straddling write two. */
    assert_int_equal(bd_blk_pwrite(e.blk, 10, 1, buf, 0), 0);
    assert_int_equal(bd_dirty_bitmap_count(bm), G);
    assert_int_equal(bd_blk_pwrite(e.blk, 3 * G - 100, 200, buf, 0), 0);
    assert_int_equal(bd_dirty_bitmap_count(bm), 3 * G);
    assert_true(bd_dirty_bitmap_get(bm, 2 * G));
    assert_true(bd_dirty_bitmap_get(bm, 3 * G));
    assert_false(bd_dirty_bitmap_get(bm, G));
    /* Zero writes and discards dirty too; failed or read requests not. */
    assert_int_equal(bd_blk_pwrite_zeroes(e.blk, 5 * G, 10, 0), 0);
    assert_int_equal(bd_blk_pdiscard(e.blk, 7 * G, G), 0);
    assert_int_equal(bd_blk_pread(e.blk, 9 * G, 10, buf, 0), 0);
    assert_int_equal(bd_blk_pwrite(e.blk, 1 << 20, 1, buf, 0), -EIO);
    assert_int_equal(bd_dirty_bitmap_count(bm), 5 * G);
    assert_int_equal(bd_dirty_bitmap_next_dirty(bm, 0), 0);
    assert_int_equal(bd_dirty_bitmap_next_dirty(bm, G), 2 * G);
    assert_int_equal(bd_dirty_bitmap_next_dirty(bm, 2 * G + 5), 2 * G + 5);
    assert_int_equal(bd_dirty_bitmap_next_dirty(bm, 8 * G), -1);
    /* The disabled one saw nothing. */
    assert_int_equal(bd_dirty_bitmap_count(off), 0);

    bd_dirty_bitmap_reset(bm, 0, 3 * G);
    assert_int_equal(bd_dirty_bitmap_count(bm), 3 * G);
    bd_dirty_bitmap_clear(bm);
    assert_int_equal(bd_dirty_bitmap_count(bm), 0);
    bd_graph_free(e.g);
}

/* Truncate grows and shrinks every bitmap with the node; writes to the new
 * area are recorded. */
static void test_dirty_bitmap_truncate(void **state)
{
    struct benv e;
    struct bd_error *err = NULL;
    struct bd_dirty_bitmap *bm = NULL;
    uint8_t buf[512] = { 1 };

    (void)state;
    benv_open(&e, "{\"driver\": \"test-mem\", \"size\": \"1M\"}", 0);
    bm = bd_dirty_bitmap_create(e.n, G, "b", &err);
    assert_int_equal(bm->size, 1 << 20);
    assert_int_equal(bd_blk_truncate(e.blk, 2 << 20, false, BD_PREALLOC_OFF,
                                     &err), 0);
    assert_int_equal(bm->size, 2 << 20);
    assert_int_equal(bm->nbits, 32);
    assert_int_equal(bd_blk_pwrite(e.blk, (2 << 20) - 512, 512, buf, 0), 0);
    assert_int_equal(bd_dirty_bitmap_count(bm), G);
    assert_int_equal(bd_dirty_bitmap_next_dirty(bm, 0), (2 << 20) - G);
    /* Shrinking drops the bits past the end. */
    assert_int_equal(bd_blk_truncate(e.blk, 1 << 20, false, BD_PREALLOC_OFF,
                                     &err), 0);
    assert_int_equal(bd_dirty_bitmap_count(bm), 0);
    assert_int_equal(bm->nbits, 16);
    /* Growing again gives clean bits. */
    assert_int_equal(bd_blk_truncate(e.blk, 3 << 20, false, BD_PREALLOC_OFF,
                                     &err), 0);
    assert_int_equal(bd_dirty_bitmap_count(bm), 0);
    assert_int_equal(bd_dirty_bitmap_next_dirty(bm, 0), -1);
    bd_graph_free(e.g);
}

/* A write past the end of a file grows the node; the bitmap follows. */
static void test_dirty_bitmap_file_growth(void **state)
{
    char path[] = "/tmp/blkrig-test-bitmap-XXXXXX";
    int fd = mkstemp(path);
    struct bd_graph *g = bd_graph_new();
    struct bd_error *err = NULL;
    struct bd_node *n = NULL;
    struct bd_dirty_bitmap *bm = NULL;
    struct bd_qiov q;
    uint8_t buf[4096];

    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, G), 0);
    close(fd);
    n = bd_open(g, NULL, json_pack("{s:s, s:s}", "driver", "file",
                                   "filename", path), BD_O_RDWR, &err);
    assert_non_null(n);
    bm = bd_dirty_bitmap_create(n, G, NULL, &err);
    assert_int_equal(bm->nbits, 1);
    memset(buf, 7, sizeof(buf));
    bd_qiov_init_buf(&q, buf, sizeof(buf));
    assert_int_equal(bd_node_pwritev(n, 4 * G, sizeof(buf), &q, 0), 0);
    assert_int_equal(bd_getlength(n), 4 * G + 4096);
    assert_int_equal(bm->nbits, 5);
    assert_true(bd_dirty_bitmap_get(bm, 4 * G));
    assert_int_equal(bd_dirty_bitmap_count(bm), G);
    bd_qiov_destroy(&q);
    bd_unref(n);
    bd_graph_free(g);
    unlink(path);
}

static void test_dirty_bitmap_merge_backup_query(void **state)
{
    struct benv e;
    struct bd_error *err = NULL;
    struct bd_dirty_bitmap *a = NULL;
    struct bd_dirty_bitmap *b = NULL;
    uint64_t *backup = NULL;
    json_t *q = NULL;
    json_t *o = NULL;

    (void)state;
    benv_open(&e, "{\"driver\": \"test-mem\", \"size\": \"1M\"}", 0);
    a = bd_dirty_bitmap_create(e.n, G, "a", &err);
    b = bd_dirty_bitmap_create(e.n, 4096, "b", &err);
    bd_dirty_bitmap_set(b, 4096, 1);        /* granule [4096, 8192) */
    bd_dirty_bitmap_set(b, 5 * G, 4096);
    bd_dirty_bitmap_merge(a, b);            /* finer into coarser */
    assert_int_equal(bd_dirty_bitmap_count(a), 2 * G);
    assert_true(bd_dirty_bitmap_get(a, 0));
    assert_true(bd_dirty_bitmap_get(a, 5 * G));
    backup = bd_dirty_bitmap_backup(a);
    bd_dirty_bitmap_clear(a);
    bd_dirty_bitmap_set(a, 9 * G, 1);
    bd_dirty_bitmap_restore(a, backup);
    assert_int_equal(bd_dirty_bitmap_count(a), 2 * G);
    assert_false(bd_dirty_bitmap_get(a, 9 * G));

    /* Newest first, as QEMU lists them. */
    q = bd_dirty_bitmap_query(e.n);
    assert_int_equal(json_array_size(q), 2);
    o = json_array_get(q, 0);
    assert_string_equal(json_string_value(json_object_get(o, "name")), "b");
    assert_int_equal(json_integer_value(json_object_get(o, "count")), 8192);
    assert_int_equal(json_integer_value(json_object_get(o, "granularity")),
                     4096);
    assert_true(json_is_true(json_object_get(o, "recording")));
    json_decref(q);
    bd_dirty_bitmap_release(b);
    q = bd_dirty_bitmap_query(e.n);
    assert_int_equal(json_array_size(q), 1);
    json_decref(q);
    bd_graph_free(e.g);   /* releases a with the node */
}

int unit_run_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dirty_bitmap_marking),
        cmocka_unit_test(test_dirty_bitmap_truncate),
        cmocka_unit_test(test_dirty_bitmap_file_growth),
        cmocka_unit_test(test_dirty_bitmap_merge_backup_query),
    };

    return cmocka_run_group_tests_name("dirty_bitmap", tests, NULL, NULL);
}
