/*
 * tests/unit/test_raw.c - driver/raw.c: the offset/size window over the
 * file child, QEMU's messages for impossible windows, truncate, block
 * status mapping, and format probing of a plain file.
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
#include "driver/block-int.h"
#include "tests/helpers/test-drivers.h"
#include "tests/unit/unit.h"

static struct bd_node *open_raw(struct bd_graph *g, const char *window,
                                struct bd_error **errp)
{
    char json[256];

    snprintf(json, sizeof(json), "{\"driver\": \"raw\", %s%s\"file\": "
             "{\"driver\": \"test-mem\", \"node-name\": \"m\", "
             "\"size\": \"64k\"}}", window, *window ? ", " : "");
    return td_open_json(g, json, BD_O_RDWR, errp);
}

static void expect_raw_error(const char *window, const char *msg)
{
    struct bd_graph *g = td_graph_new();
    struct bd_error *err = NULL;

    assert_null(open_raw(g, window, &err));
    assert_string_equal(bd_error_msg(err), msg);
    bd_error_free(err);
    /* The child opened for the failed node is gone again. */
    assert_null(bd_graph_find_node(g, "m"));
    bd_graph_free(g);
}

static void test_raw_window(void **state)
{
    struct bd_graph *g = td_graph_new();
    struct bd_error *err = NULL;
    struct bd_node *r = open_raw(g, "\"offset\": 4096, \"size\": 8192", &err);
    struct bd_node *m = NULL;
    uint8_t buf[1024];
    struct bd_qiov q;
    int64_t pnum = 0;
    int64_t map = 0;
    struct bd_node *file = NULL;
    int ret;

    (void)state;
    assert_non_null(r);
    m = bd_graph_find_node(g, "m");
    assert_int_equal(bd_getlength(r), 8192);
    memset(buf, 0x3c, sizeof(buf));
    bd_qiov_init_buf(&q, buf, sizeof(buf));
    assert_int_equal(bd_node_pwritev(r, 100, sizeof(buf), &q, 0), 0);
    assert_int_equal(td_mem_data(m)[4096 + 100], 0x3c);
    assert_int_equal(td_mem_data(m)[4096 + 99], 0);
    memset(buf, 0, sizeof(buf));
    memset(td_mem_data(m) + 4096 + 8192 - 4, 0x77, 4);
    bd_qiov_destroy(&q);
    bd_qiov_init_buf(&q, buf, 4);
    assert_int_equal(bd_node_preadv(r, 8188, 4, &q, 0), 0);
    assert_int_equal(buf[0], 0x77);
    /* Outside the window. */
    assert_int_equal(bd_node_pwritev(r, 8190, 4, &q, 0), -EINVAL);
    bd_qiov_destroy(&q);
    /* Block status maps into the child at the window's offset. */
    ret = bd_node_block_status(r, 512, 1024, &pnum, &map, &file);
    assert_true(ret & BD_BLOCK_OFFSET_VALID);
    assert_int_equal(map, 4096 + 512);
    assert_ptr_equal(file, m);
    /* A fixed-size window cannot be resized. */
    assert_int_equal(bd_node_truncate(r, 16384, false, BD_PREALLOC_OFF,
                                      &err), -ENOTSUP);
    assert_string_equal(bd_error_msg(err),
                        "Cannot resize fixed-size raw disks");
    bd_error_free(err);
    bd_unref(r);
    bd_graph_free(g);
}

/* An offset without a size: the rest of the file, resizable. */
static void test_raw_offset_only(void **state)
{
    struct bd_graph *g = td_graph_new();
    struct bd_error *err = NULL;
    struct bd_node *r = open_raw(g, "\"offset\": 1024", &err);

    (void)state;
    assert_non_null(r);
    assert_int_equal(bd_getlength(r), 65536 - 1024);
    assert_int_equal(bd_node_truncate(r, 8192, false, BD_PREALLOC_OFF, &err),
                     0);
    assert_int_equal(bd_getlength(bd_graph_find_node(g, "m")), 8192 + 1024);
    assert_int_equal(bd_getlength(r), 8192);
    bd_unref(r);
    bd_graph_free(g);
}

/* Messages checked against qemu-io 10.0. */
static void test_raw_bad_windows(void **state)
{
    (void)state;
    expect_raw_error("\"size\": 1000", "Specified size is not multiple of 512");
    expect_raw_error("\"offset\": 131072", "Offset (131072) cannot be greater "
                     "than size of the containing file (65536)");
    expect_raw_error("\"offset\": 512, \"size\": 65536",
                     "The sum of offset (512) and size (65536) has to be "
                     "smaller or equal to the  actual size of the "
                     "containing file (65536)");
    expect_raw_error("\"offset\": \"x\"", "Parameter 'offset' expects a "
                     "non-negative number below 2^64");
}

/* No format given: a plain file probes as raw, and flags say so. */
static void test_raw_probe_file(void **state)
{
    char path[] = "/tmp/blkrig-test-raw-XXXXXX";
    int fd = mkstemp(path);
    struct bd_graph *g = bd_graph_new();
    struct bd_error *err = NULL;
    struct bd_node *n = NULL;

    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 1000), 0);
    close(fd);
    n = bd_open(g, path, NULL, 0, &err);
    assert_non_null(n);
    assert_string_equal(bd_node_driver_name(n), "raw");
    assert_true(n->probed);
    assert_string_equal(bd_node_driver_name(bd_node_file(n)), "file");
    assert_string_equal(bd_node_filename(n), path);
    /* 1000 bytes make a 1024-byte node, as in QEMU. */
    assert_int_equal(bd_getlength(n), 1024);
    bd_unref(n);
    /* An explicit driver is not probed. */
    n = bd_open(g, path, json_pack("{s:s}", "driver", "raw"), 0, &err);
    assert_non_null(n);
    assert_false(n->probed);
    bd_unref(n);
    bd_graph_free(g);
    unlink(path);
}

int unit_run_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raw_window),
        cmocka_unit_test(test_raw_offset_only),
        cmocka_unit_test(test_raw_bad_windows),
        cmocka_unit_test(test_raw_probe_file),
    };

    return cmocka_run_group_tests_name("raw", tests, NULL, NULL);
}
