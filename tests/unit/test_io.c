/*
 * tests/unit/test_io.c - driver/io.c, driver/blk.c and driver/qiov.c: the
 * request path. A test-mem node checks every promise the core makes to
 * drivers (alignment, max-transfer, range) and counts what reaches it, so
 * these tests see both the data and the requests that produced it.
 */
#include "common/config.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/cutils.h"
#include "driver/block-int.h"
#include "driver/dirty-bitmap.h"
#include "tests/helpers/test-drivers.h"
#include "tests/unit/unit.h"

struct env {
    struct td_log log;
    struct bd_graph *g;
    struct bd_node *n;       /* the test-mem node (or the top) */
    struct bd_blk *blk;
};

/* Open test-mem with extra options (a JSON object text, may be "{}") and
 * the given flags; attach a writable backend. */
static void env_open(struct env *e, const char *extra, int flags)
{
    struct bd_error *err = NULL;
    json_error_t jerr;
    json_t *o = json_loads(extra, 0, &jerr);

    assert_non_null(o);
    td_log_init(&e->log);
    e->g = td_graph_new();
    json_object_set_new(o, "driver", json_string("test-mem"));
    json_object_set_new(o, "node-name", json_string("m"));
    json_object_set_new(o, "log", json_integer(td_log_opt(&e->log)));
    e->n = td_open(e->g, o, flags, &err);
    if (!e->n) {
        fail_msg("open: %s", bd_error_msg(err));
    }
    e->blk = bd_blk_new(e->g, NULL, BD_PERM_CONSISTENT_READ |
                        ((flags & BD_O_RDWR) ? BD_PERM_WRITE | BD_PERM_RESIZE
                                             : 0), BD_PERM_ALL);
    assert_int_equal(bd_blk_insert(e->blk, e->n, &err), 0);
    bd_unref(e->n);
    td_log_clear(&e->log);
}

static void env_close(struct env *e)
{
    assert_int_equal(atomic_load(&td_mem_stats(e->n)->violations), 0);
    bd_graph_free(e->g);
    td_log_destroy(&e->log);
}

static void expect_log(struct td_log *log, const char *want)
{
    char *got = td_log_join(log);

    assert_string_equal(got, want);
    free(got);
    td_log_clear(log);
}

static void fill_pattern(uint8_t *p, size_t len, unsigned seed)
{
    size_t i;

    for (i = 0; i < len; i++) {
        p[i] = (uint8_t)(seed + i * 7);
    }
}

/* ------------------------------------------------------------------ */
/* Alignment                                                            */

/* An unaligned write becomes an aligned read-modify-write that keeps the
 * bytes around it; the driver only ever sees whole blocks. */
static void test_io_rmw_keeps_neighbours(void **state)
{
    struct env e;
    uint8_t *data = NULL;
    uint8_t want[2048];
    uint8_t buf[100];

    (void)state;
    env_open(&e, "{\"align\": 512, \"size\": \"64k\"}", BD_O_RDWR);
    data = td_mem_data(e.n);
    fill_pattern(data, 2048, 1);
    memcpy(want, data, sizeof(want));
    memset(buf, 0xee, sizeof(buf));
    /* Head and tail in different blocks. */
    assert_int_equal(bd_blk_pwrite(e.blk, 500, sizeof(buf), buf, 0), 0);
    memset(want + 500, 0xee, sizeof(buf));
    assert_memory_equal(data, want, sizeof(want));
    expect_log(&e.log, "m read 0+512|m read 512+512|m write 0+1024");
    /* Head and tail in one block: one read serves both. */
    assert_int_equal(bd_blk_pwrite(e.blk, 1030, 10, buf, 0), 0);
    memset(want + 1030, 0xee, 10);
    assert_memory_equal(data, want, sizeof(want));
    expect_log(&e.log, "m read 1024+512|m write 1024+512");
    env_close(&e);
}

/* Unaligned reads are widened and the caller gets exactly its bytes. */
static void test_io_unaligned_read(void **state)
{
    struct env e;
    uint8_t buf[777];

    (void)state;
    env_open(&e, "{\"align\": 4096, \"size\": \"64k\"}", BD_O_RDWR);
    fill_pattern(td_mem_data(e.n), 65536, 3);
    memset(buf, 0, sizeof(buf));
    assert_int_equal(bd_blk_pread(e.blk, 4000, sizeof(buf), buf, 0), 0);
    assert_memory_equal(buf, td_mem_data(e.n) + 4000, sizeof(buf));
    expect_log(&e.log, "m read 0+8192");
    env_close(&e);
}

/* An unaligned write-zeroes zeroes exactly the range. */
static void test_io_unaligned_zeroes(void **state)
{
    struct env e;
    uint8_t want[8192];

    (void)state;
    env_open(&e, "{\"align\": 512, \"size\": \"64k\"}", BD_O_RDWR);
    fill_pattern(td_mem_data(e.n), 8192, 5);
    memcpy(want, td_mem_data(e.n), sizeof(want));
    assert_int_equal(bd_blk_pwrite_zeroes(e.blk, 100, 3000, 0), 0);
    memset(want + 100, 0, 3000);
    assert_memory_equal(td_mem_data(e.n), want, sizeof(want));
    env_close(&e);
}

/* A node whose length is not a multiple of its alignment: the last block
 * is read whole and the caller gets exactly the bytes it asked for. */
static void test_io_read_last_partial_block(void **state)
{
    struct env e;
    uint8_t buf[2048];

    (void)state;
    env_open(&e, "{\"align\": 4096, \"size\": 5000}", BD_O_RDWR);
    assert_int_equal(bd_blk_getlength(e.blk), 5120);
    fill_pattern(td_mem_data(e.n), 5120, 7);
    memset(buf, 0xff, sizeof(buf));
    assert_int_equal(bd_blk_pread(e.blk, 4000, 1120, buf, 0), 0);
    assert_memory_equal(buf, td_mem_data(e.n) + 4000, 1120);
    expect_log(&e.log, "m read 0+8192");
    env_close(&e);
}

/* Zeroing a few bytes inside one block keeps the rest of the block, also
 * when the driver cannot write zeroes itself. */
static void test_io_zeroes_inside_one_block(void **state)
{
    struct env e;
    uint8_t want[1024];

    (void)state;
    env_open(&e, "{\"align\": 512, \"zeroes\": false}", BD_O_RDWR);
    fill_pattern(td_mem_data(e.n), 1024, 9);
    memcpy(want, td_mem_data(e.n), sizeof(want));
    assert_int_equal(bd_blk_pwrite_zeroes(e.blk, 600, 50, BD_REQ_MAY_UNMAP),
                     0);
    memset(want + 600, 0, 50);
    assert_memory_equal(td_mem_data(e.n), want, sizeof(want));
    expect_log(&e.log, "m read 512+512|m write 512+512");
    env_close(&e);
}

/* ------------------------------------------------------------------ */
/* Splitting                                                            */

static void test_io_max_transfer_split(void **state)
{
    struct env e;
    uint8_t *buf = bd_malloc(16384);
    uint8_t *back = bd_malloc(16384);

    (void)state;
    env_open(&e, "{\"max-transfer\": \"4k\"}", BD_O_RDWR);
    fill_pattern(buf, 16384, 9);
    assert_int_equal(bd_blk_pwrite(e.blk, 1000, 16384, buf, 0), 0);
    expect_log(&e.log, "m write 1000+4096|m write 5096+4096|"
               "m write 9192+4096|m write 13288+4096");
    assert_int_equal(bd_blk_pread(e.blk, 1000, 16384, back, 0), 0);
    assert_memory_equal(buf, back, 16384);
    assert_int_equal(atomic_load(&td_mem_stats(e.n)->reads), 4);
    free(buf);
    free(back);
    env_close(&e);
}

/* A discard larger than max-discard is split and every piece advances. */
static void test_io_discard_split_advances(void **state)
{
    struct env e;

    (void)state;
    env_open(&e, "{\"max-discard\": \"4k\"}", BD_O_RDWR | BD_O_UNMAP);
    fill_pattern(td_mem_data(e.n), 20000, 1);
    assert_int_equal(bd_blk_pdiscard(e.blk, 0, 10000), 0);
    expect_log(&e.log, "m discard 0+4096|m discard 4096+4096|"
               "m discard 8192+1808");
    assert_true(bd_buffer_is_zero(td_mem_data(e.n), 10000));
    assert_false(bd_buffer_is_zero(td_mem_data(e.n) + 10000, 100));
    env_close(&e);
}

/* Discard alignment: head up to the boundary, aligned middle, tail. */
static void test_io_discard_alignment(void **state)
{
    struct env e;

    (void)state;
    env_open(&e, "{\"align\": 512, \"discard-align\": \"4k\"}",
             BD_O_RDWR | BD_O_UNMAP);
    assert_int_equal(bd_blk_pdiscard(e.blk, 512, 12288), 0);
    expect_log(&e.log, "m discard 512+3584|m discard 4096+8192|"
               "m discard 12288+512");
    /* Unaligned to the request alignment too: first up to the next
     * 512-byte boundary, as QEMU splits it. */
    assert_int_equal(bd_blk_pdiscard(e.blk, 100, 8000), 0);
    expect_log(&e.log, "m discard 100+412|m discard 512+3584|"
               "m discard 4096+3584|m discard 7680+420");
    /* An aligned start with a tail that is not a multiple of 512: the
     * last piece used to shrink to zero bytes and loop forever. */
    assert_int_equal(bd_blk_pdiscard(e.blk, 0, 8100), 0);
    expect_log(&e.log, "m discard 0+4096|m discard 4096+3584|"
               "m discard 7680+420");
    env_close(&e);
}

/* Without discard=unmap a discard is accepted and ignored. */
static void test_io_discard_ignored_without_unmap(void **state)
{
    struct env e;

    (void)state;
    env_open(&e, "{}", BD_O_RDWR);
    fill_pattern(td_mem_data(e.n), 4096, 1);
    assert_int_equal(bd_blk_pdiscard(e.blk, 0, 4096), 0);
    expect_log(&e.log, "");
    assert_false(bd_buffer_is_zero(td_mem_data(e.n), 4096));
    env_close(&e);
}

static void test_io_zeroes_split(void **state)
{
    struct env e;

    (void)state;
    env_open(&e, "{\"max-zeroes\": \"8k\"}", BD_O_RDWR);
    assert_int_equal(bd_blk_pwrite_zeroes(e.blk, 0, 20480, 0), 0);
    expect_log(&e.log, "m zeroes 0+8192|m zeroes 8192+8192|"
               "m zeroes 16384+4096");
    env_close(&e);
}

/* ------------------------------------------------------------------ */
/* Flags                                                                */

/* A driver without FUA gets a plain write followed by a flush. */
static void test_io_fua_emulated(void **state)
{
    struct env e;
    uint8_t buf[512] = { 1 };

    (void)state;
    env_open(&e, "{}", BD_O_RDWR);
    bd_blk_set_write_cache(e.blk, false);
    assert_int_equal(bd_blk_pwrite(e.blk, 0, 512, buf, 0), 0);
    expect_log(&e.log, "m write 0+512|m flush");
    /* FUA on a zero write too. */
    assert_int_equal(bd_blk_pwrite_zeroes(e.blk, 0, 512, 0), 0);
    expect_log(&e.log, "m zeroes 0+512|m flush");
    env_close(&e);
}

/* A driver with FUA gets the flag and no extra flush. */
static void test_io_fua_native(void **state)
{
    struct env e;
    uint8_t buf[512] = { 1 };

    (void)state;
    env_open(&e, "{\"fua\": true}", BD_O_RDWR);
    assert_int_equal(bd_blk_pwrite(e.blk, 0, 512, buf, BD_REQ_FUA), 0);
    expect_log(&e.log, "m write 0+512 fua");
    env_close(&e);
}

/* No write-zeroes in the driver: the core writes a zero buffer, unless the
 * caller forbade the fallback. */
static void test_io_zeroes_fallback(void **state)
{
    struct env e;

    (void)state;
    env_open(&e, "{\"zeroes\": false, \"max-transfer\": \"64k\"}",
             BD_O_RDWR);
    fill_pattern(td_mem_data(e.n), 200000, 2);
    assert_int_equal(bd_blk_pwrite_zeroes(e.blk, 0, 131072 + 4096, 0), 0);
    expect_log(&e.log, "m write 0+65536|m write 65536+65536|"
               "m write 131072+4096");
    assert_true(bd_buffer_is_zero(td_mem_data(e.n), 131072 + 4096));
    assert_false(bd_buffer_is_zero(td_mem_data(e.n) + 135168, 100));
    assert_int_equal(bd_blk_pwrite_zeroes(e.blk, 0, 4096,
                                          BD_REQ_NO_FALLBACK), -ENOTSUP);
    env_close(&e);
}

/* may-unmap reaches the driver only with discard=unmap. */
static void test_io_zeroes_may_unmap(void **state)
{
    struct env e;

    (void)state;
    env_open(&e, "{}", BD_O_RDWR);
    assert_int_equal(bd_blk_pwrite_zeroes(e.blk, 0, 4096,
                                          BD_REQ_MAY_UNMAP), 0);
    expect_log(&e.log, "m zeroes 0+4096");
    env_close(&e);
    env_open(&e, "{}", BD_O_RDWR | BD_O_UNMAP);
    assert_int_equal(bd_blk_pwrite_zeroes(e.blk, 0, 4096,
                                          BD_REQ_MAY_UNMAP), 0);
    expect_log(&e.log, "m zeroes 0+4096 unmap");
    env_close(&e);
}

/* detect-zeroes turns zero buffers into write-zeroes (unmapping with
 * detect-zeroes=unmap on a discard=unmap node); non-zero data stays a
 * write, and detect-zeroes=off never converts. */
static void test_io_detect_zeroes(void **state)
{
    struct env e;
    uint8_t zero[4096] = { 0 };
    uint8_t one[4096] = { 0 };

    (void)state;
    one[4095] = 1;
    env_open(&e, "{\"detect-zeroes\": \"on\"}", BD_O_RDWR | BD_O_UNMAP);
    assert_int_equal(bd_blk_pwrite(e.blk, 0, 4096, zero, 0), 0);
    assert_int_equal(bd_blk_pwrite(e.blk, 4096, 4096, one, 0), 0);
    expect_log(&e.log, "m zeroes 0+4096|m write 4096+4096");
    env_close(&e);

    env_open(&e, "{\"detect-zeroes\": \"unmap\"}", BD_O_RDWR | BD_O_UNMAP);
    assert_int_equal(bd_blk_pwrite(e.blk, 0, 4096, zero, 0), 0);
    expect_log(&e.log, "m zeroes 0+4096 unmap");
    env_close(&e);

    env_open(&e, "{\"detect-zeroes\": \"off\"}", BD_O_RDWR);
    assert_int_equal(bd_blk_pwrite(e.blk, 0, 4096, zero, 0), 0);
    expect_log(&e.log, "m write 0+4096");
    env_close(&e);
}

/* ------------------------------------------------------------------ */
/* Ranges and errors                                                    */

static void test_io_bounds(void **state)
{
    struct env e;
    uint8_t buf[1024];

    (void)state;
    env_open(&e, "{\"size\": 1000}", BD_O_RDWR);
    /* The length is rounded up to whole sectors, as QEMU does. */
    assert_int_equal(bd_blk_getlength(e.blk), 1024);
    assert_int_equal(bd_blk_pread(e.blk, 1000, 24, buf, 0), 0);
    assert_int_equal(bd_blk_pread(e.blk, 1000, 25, buf, 0), -EIO);
    assert_int_equal(bd_blk_pread(e.blk, 1025, 0, buf, 0), -EIO);
    assert_int_equal(bd_blk_pread(e.blk, -1, 1, buf, 0), -EIO);
    assert_int_equal(bd_blk_pwrite(e.blk, 1024, 1, buf, 0), -EIO);
    assert_int_equal(bd_blk_pread(e.blk, 1024, 0, buf, 0), 0);
    /* The node itself reads zeroes past its end and never asks the
     * driver for those bytes (test-mem counts a violation if it does). */
    memset(buf, 0xff, sizeof(buf));
    {
        struct bd_qiov q;

        bd_qiov_init_buf(&q, buf, 1024);
        assert_int_equal(bd_node_preadv(e.n, 512, 1024, &q, 0), 0);
        assert_true(bd_buffer_is_zero(buf + 512, 512));
        bd_qiov_destroy(&q);
    }
    assert_int_equal(bd_node_preadv(e.n, INT64_MAX, 2, NULL, 0), -EIO);
    env_close(&e);
}

static void test_io_read_only(void **state)
{
    struct env e;
    struct bd_error *err = NULL;
    struct bd_blk *b = NULL;
    uint8_t buf[512] = { 0 };

    (void)state;
    env_open(&e, "{}", 0);
    assert_true(bd_is_read_only(e.n));
    assert_int_equal(bd_node_pwritev(e.n, 0, 512, NULL, 0), -EPERM);
    assert_int_equal(bd_node_pdiscard(e.n, 0, 512), -EPERM);
    assert_int_equal(bd_node_truncate(e.n, 4096, false, BD_PREALLOC_OFF,
                                      &err), -EACCES);
    assert_string_equal(bd_error_msg(err), "Image is read-only");
    bd_error_free(err);
    err = NULL;
    /* A backend without the write permission cannot write either. */
    b = bd_blk_new(e.g, "ro", BD_PERM_CONSISTENT_READ, BD_PERM_ALL);
    assert_int_equal(bd_blk_insert(b, e.n, &err), 0);
    assert_int_equal(bd_blk_pwrite(b, 0, 512, buf, 0), -EPERM);
    bd_blk_free(b);
    env_close(&e);
}

/* A backend without a node: -ENOMEDIUM, flush succeeds. */
static void test_io_no_medium(void **state)
{
    struct bd_graph *g = bd_graph_new();
    struct bd_blk *b = bd_blk_new(g, "empty", 0, BD_PERM_ALL);
    uint8_t buf[1];

    (void)state;
    assert_int_equal(bd_blk_pread(b, 0, 1, buf, 0), -ENOMEDIUM);
    assert_int_equal(bd_blk_pwrite(b, 0, 1, buf, 0), -ENOMEDIUM);
    assert_int_equal(bd_blk_flush(b), 0);
    assert_int_equal(bd_blk_getlength(b), -ENOMEDIUM);
    assert_null(bd_blk_node(b));
    bd_graph_free(g);
}

/* Block status of test-mem (no callback: data at its own offset) and of
 * null-co with read-zeroes. */
static void test_io_block_status(void **state)
{
    struct env e;
    struct bd_error *err = NULL;
    struct bd_node *nz = NULL;
    struct bd_node *file = NULL;
    int64_t pnum = 0;
    int64_t map = -1;
    int ret;

    (void)state;
    env_open(&e, "{\"size\": \"64k\"}", BD_O_RDWR);
    ret = bd_node_block_status(e.n, 4096, 1 << 20, &pnum, &map, &file);
    assert_int_equal(ret, BD_BLOCK_DATA | BD_BLOCK_OFFSET_VALID |
                     BD_BLOCK_ALLOCATED | BD_BLOCK_EOF);
    assert_int_equal(pnum, 65536 - 4096);
    assert_int_equal(map, 4096);
    assert_ptr_equal(file, e.n);
    /* At the end: EOF, nothing left. */
    assert_int_equal(bd_node_block_status(e.n, 65536, 512, &pnum, NULL,
                                          NULL), BD_BLOCK_EOF);
    assert_int_equal(pnum, 0);
    assert_int_equal(bd_node_block_status(e.n, -1, 512, &pnum, NULL, NULL),
                     -EINVAL);

    nz = td_open_json(e.g, "{\"driver\": \"null-co\", \"size\": 8192,"
                      " \"read-zeroes\": true}", 0, &err);
    assert_non_null(nz);
    ret = bd_node_block_status(nz, 0, 8192, &pnum, NULL, NULL);
    assert_true(ret & BD_BLOCK_ZERO);
    assert_true(ret & BD_BLOCK_EOF);
    assert_int_equal(pnum, 8192);
    bd_unref(nz);
    env_close(&e);
}

/* Truncate through the backend: length, data and errors. */
static void test_io_truncate(void **state)
{
    struct env e;
    struct bd_error *err = NULL;
    struct bd_graph *g2 = NULL;
    struct bd_node *nn = NULL;

    (void)state;
    env_open(&e, "{\"size\": \"4k\"}", BD_O_RDWR);
    assert_int_equal(bd_blk_truncate(e.blk, 10000, false, BD_PREALLOC_OFF,
                                     &err), 0);
    assert_int_equal(bd_blk_getlength(e.blk), 10240);
    assert_int_equal(bd_blk_truncate(e.blk, -1, false, BD_PREALLOC_OFF,
                                     &err), -EINVAL);
    assert_string_equal(bd_error_msg(err), "Image size cannot be negative");
    bd_error_free(err);
    err = NULL;
    env_close(&e);

    /* null-co has no truncate. */
    g2 = bd_graph_new();
    nn = td_open_json(g2, "{\"driver\": \"null-co\"}", BD_O_RDWR, &err);
    assert_non_null(nn);
    assert_int_equal(bd_node_truncate(nn, 4096, false, BD_PREALLOC_OFF,
                                      &err), -ENOTSUP);
    assert_string_equal(bd_error_msg(err),
                        "Image format driver does not support resize");
    bd_error_free(err);
    bd_unref(nn);
    bd_graph_free(g2);
}

/* Statistics count bytes, ops and invalid requests. */
static void test_io_stats(void **state)
{
    struct env e;
    struct bd_acct_stats st;
    uint8_t buf[4096] = { 0 };

    (void)state;
    env_open(&e, "{\"size\": \"64k\"}", BD_O_RDWR);
    assert_int_equal(bd_blk_pwrite(e.blk, 0, 4096, buf, 0), 0);
    assert_int_equal(bd_blk_pread(e.blk, 0, 1024, buf, 0), 0);
    assert_int_equal(bd_blk_pread(e.blk, 65536, 1, buf, 0), -EIO);
    bd_blk_get_stats(e.blk, &st, NULL);
    assert_int_equal(st.bytes[BD_ACCT_WRITE], 4096);
    assert_int_equal(st.ops[BD_ACCT_WRITE], 1);
    assert_int_equal(st.bytes[BD_ACCT_READ], 1024);
    assert_int_equal(st.invalid_ops[BD_ACCT_READ], 1);
    assert_int_equal(st.wr_highest_offset, 4096);
    env_close(&e);
}

/* ------------------------------------------------------------------ */
/* qiov                                                                 */

static void test_io_qiov(void **state)
{
    struct bd_qiov q;
    struct bd_qiov s;
    uint8_t a[10];
    uint8_t b[20];
    uint8_t c[30];
    uint8_t out[60];
    uint8_t in[60];
    int i;

    (void)state;
    bd_qiov_init(&q);
    bd_qiov_add(&q, a, sizeof(a));
    bd_qiov_add(&q, b, sizeof(b));
    bd_qiov_add(&q, c, sizeof(c));
    for (i = 0; i < 3; i++) {
        bd_qiov_add(&q, in, 0);   /* grow past the inline array */
    }
    bd_qiov_add(&q, in, 1);
    assert_int_equal(q.size, 61);
    fill_pattern(in, sizeof(in), 4);
    assert_int_equal(bd_qiov_from_buf(&q, 0, in, 60), 60);
    assert_memory_equal(a, in, 10);
    assert_memory_equal(c, in + 30, 30);
    bd_qiov_slice(&s, &q, 5, 30);
    assert_int_equal(s.size, 30);
    assert_int_equal(s.niov, 3);
    assert_int_equal(bd_qiov_to_buf(&s, 0, out, 30), 30);
    assert_memory_equal(out, in + 5, 30);
    bd_qiov_memset(&s, 2, 0, 26);
    assert_false(bd_qiov_is_zero(&s));
    bd_qiov_memset(&s, 0, 0, 30);
    assert_true(bd_qiov_is_zero(&s));
    assert_int_equal(a[4], in[4]);   /* outside the slice: untouched */
    assert_int_equal(c[5], in[35]);
    bd_qiov_destroy(&s);
    /* Copies stop at the end of the vector. */
    assert_int_equal(bd_qiov_to_buf(&q, 55, out, 20), 6);
    bd_qiov_destroy(&q);
}

/* ------------------------------------------------------------------ */
/* Concurrency                                                          */

#define NTHREADS 8
#define NWRITES 200

struct writer {
    struct bd_blk *blk;
    int id;
    int failures;
};

/* Each thread owns the bytes i of [0, 8192) with i % NTHREADS == id and
 * writes single bytes of its stripe at pseudo-random places. The stripes
 * interleave inside every 512-byte block, so every write is a
 * read-modify-write of a block other threads modify too: without
 * serialisation of overlapping RMW cycles, updates get lost. */
static void *writer_main(void *opaque)
{
    struct writer *w = opaque;
    unsigned seed = (unsigned)w->id * 2654435761u;
    int i;

    for (i = 0; i < NWRITES; i++) {
        int64_t pos;
        uint8_t v;

        seed = seed * 1103515245u + 12345u;
        pos = (int64_t)((seed >> 8) % (8192 / NTHREADS)) * NTHREADS + w->id;
        v = (uint8_t)(0x80 | w->id);
        if (bd_blk_pwrite(w->blk, pos, 1, &v, 0) < 0) {
            w->failures++;
        }
    }
    return NULL;
}

static void test_io_concurrent_rmw(void **state)
{
    struct env e;
    pthread_t th[NTHREADS];
    struct writer w[NTHREADS];
    uint8_t *data = NULL;
    unsigned written[NTHREADS] = { 0 };
    int i;

    (void)state;
    env_open(&e, "{\"align\": 512, \"size\": \"8k\"}", BD_O_RDWR);
    for (i = 0; i < NTHREADS; i++) {
        w[i].blk = e.blk;
        w[i].id = i;
        w[i].failures = 0;
        assert_int_equal(pthread_create(&th[i], NULL, writer_main, &w[i]), 0);
    }
    for (i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    /* Replay each thread's sequence: every byte it wrote must still hold
     * its mark, every other byte of its stripe must still be zero. */
    data = td_mem_data(e.n);
    for (i = 0; i < NTHREADS; i++) {
        unsigned seed = (unsigned)i * 2654435761u;
        uint8_t mine[8192 / NTHREADS] = { 0 };
        int k;

        for (k = 0; k < NWRITES; k++) {
            seed = seed * 1103515245u + 12345u;
            mine[(seed >> 8) % (8192 / NTHREADS)] = 1;
        }
        for (k = 0; k < 8192 / NTHREADS; k++) {
            uint8_t want = mine[k] ? (uint8_t)(0x80 | i) : 0;
            if (data[k * NTHREADS + i] != want) {
                fail_msg("byte %d: %#x, want %#x", k * NTHREADS + i,
                         data[k * NTHREADS + i], want);
            }
            written[i] += mine[k];
        }
        assert_true(written[i] > 0);
    }
    env_close(&e);
}

/* Drain while I/O runs: once drained_begin returns, no request is inside
 * the node (every "f write" the filter logged has its "f write=" result)
 * and none starts until drained_end; afterwards I/O resumes. */
struct hammer {
    struct bd_blk *blk;
    atomic_bool stop;
    atomic_int done;
    atomic_int failures;
};

static void *hammer_main(void *opaque)
{
    struct hammer *h = opaque;
    uint8_t buf[4096];

    memset(buf, 0x11, sizeof(buf));
    while (!atomic_load(&h->stop)) {
        if (bd_blk_pwrite(h->blk, 0, sizeof(buf), buf, 0) < 0) {
            atomic_fetch_add(&h->failures, 1);
        }
        atomic_fetch_add(&h->done, 1);
    }
    return NULL;
}

static void test_io_drain_while_busy(void **state)
{
    struct bd_graph *g = td_graph_new();
    struct bd_error *err = NULL;
    struct td_log log;
    struct hammer h;
    pthread_t th[4];
    struct bd_node *n = NULL;
    json_t *o = NULL;
    int i;
    int round;

    (void)state;
    memset(&h, 0, sizeof(h));
    td_log_init(&log);
    o = json_pack("{s:s, s:s, s:I, s:{s:s, s:i}}", "driver", "test-log",
                  "node-name", "f", "log", td_log_opt(&log), "file",
                  "driver", "null-co", "latency-ns", 200000);
    n = td_open(g, o, BD_O_RDWR, &err);
    assert_non_null(n);
    h.blk = bd_blk_new(g, NULL, BD_PERM_WRITE | BD_PERM_CONSISTENT_READ,
                       BD_PERM_ALL);
    assert_int_equal(bd_blk_insert(h.blk, n, &err), 0);
    for (i = 0; i < 4; i++) {
        pthread_create(&th[i], NULL, hammer_main, &h);
    }
    for (round = 0; round < 20; round++) {
        int before = atomic_load(&h.done);
        size_t started;

        /* Progress resumed after the previous drained section. */
        while (atomic_load(&h.done) < before + 2) {
            bd_sleep_ns(100 * 1000);
        }
        bd_drained_begin(n);
        started = td_log_count(&log, "f write");
        assert_int_equal(started, 2 * td_log_count(&log, "f write="));
        bd_sleep_ns(1000 * 1000);
        assert_int_equal(td_log_count(&log, "f write"), started);
        bd_drained_end(n);
    }
    atomic_store(&h.stop, true);
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
    }
    assert_int_equal(atomic_load(&h.failures), 0);
    bd_blk_free(h.blk);
    bd_unref(n);
    bd_graph_free(g);
    td_log_destroy(&log);
}

/* Inserting and removing a filter above a node under live I/O (what jobs
 * do): every request succeeds and lands on the node, with or without the
 * filter in between. */
static void test_io_live_filter_insertion(void **state)
{
    struct bd_graph *g = td_graph_new();
    struct bd_error *err = NULL;
    struct hammer h;
    pthread_t th[3];
    struct bd_node *n = NULL;
    int i;
    int round;

    (void)state;
    memset(&h, 0, sizeof(h));
    n = td_open_json(g, "{\"driver\": \"null-co\", \"node-name\": "
                     "\"n0\", \"latency-ns\": 20000}", BD_O_RDWR, &err);
    assert_non_null(n);
    h.blk = bd_blk_new(g, NULL, BD_PERM_WRITE | BD_PERM_CONSISTENT_READ,
                       BD_PERM_ALL);
    assert_int_equal(bd_blk_insert(h.blk, n, &err), 0);
    for (i = 0; i < 3; i++) {
        pthread_create(&th[i], NULL, hammer_main, &h);
    }
    for (round = 0; round < 10; round++) {
        struct bd_node *f = NULL;
        int before = atomic_load(&h.done);

        while (atomic_load(&h.done) < before + 2) {
            bd_sleep_ns(100 * 1000);
        }
        bd_drained_begin(n);
        f = td_open_json(g, "{\"driver\": \"test-log\", \"file\": "
                         "\"n0\"}", BD_O_RDWR, &err);
        assert_non_null(f);
        assert_int_equal(bd_replace_node(n, f, &err), 0);
        bd_drained_end(n);
        assert_ptr_equal(bd_blk_node(h.blk), f);

        before = atomic_load(&h.done);
        while (atomic_load(&h.done) < before + 2) {
            bd_sleep_ns(100 * 1000);
        }
        bd_drained_begin(n);
        assert_int_equal(bd_replace_node(f, n, &err), 0);
        bd_drained_end(n);
        assert_ptr_equal(bd_blk_node(h.blk), n);
        bd_unref(f);
    }
    atomic_store(&h.stop, true);
    for (i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
    }
    assert_int_equal(atomic_load(&h.failures), 0);
    bd_blk_free(h.blk);
    bd_unref(n);
    bd_graph_free(g);
}

/* Removing the node from a backend while threads keep issuing requests:
 * every request either runs on the node or fails with -ENOMEDIUM, and the
 * node is closed only after the last one (ASan sees any use after free). */
struct remover_arg {
    struct bd_blk *blk;
    atomic_bool stop;
    atomic_int ok;
    atomic_int nomedium;
    atomic_int other;
};

static void *reader_main(void *opaque)
{
    struct remover_arg *a = opaque;
    uint8_t buf[512];

    while (!atomic_load(&a->stop)) {
        int ret = bd_blk_pread(a->blk, 0, sizeof(buf), buf, 0);

        if (ret == 0) {
            atomic_fetch_add(&a->ok, 1);
        } else if (ret == -ENOMEDIUM) {
            atomic_fetch_add(&a->nomedium, 1);
            break;
        } else {
            atomic_fetch_add(&a->other, 1);
        }
    }
    return NULL;
}

static void test_io_blk_remove_races_requests(void **state)
{
    struct bd_graph *g = bd_graph_new();
    struct bd_error *err = NULL;
    struct remover_arg a;
    pthread_t th[4];
    struct bd_node *n = NULL;
    int i;

    (void)state;
    memset(&a, 0, sizeof(a));
    n = td_open_json(g, "{\"driver\": \"null-co\", \"latency-ns\": 50000}",
                     0, &err);
    assert_non_null(n);
    a.blk = bd_blk_new(g, NULL, BD_PERM_CONSISTENT_READ, BD_PERM_ALL);
    assert_int_equal(bd_blk_insert(a.blk, n, &err), 0);
    bd_unref(n);    /* the backend holds the only reference now */
    for (i = 0; i < 4; i++) {
        pthread_create(&th[i], NULL, reader_main, &a);
    }
    while (atomic_load(&a.ok) < 8) {
        bd_sleep_ns(100 * 1000);
    }
    bd_blk_remove(a.blk);     /* closes the node */
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
    }
    assert_int_equal(atomic_load(&a.nomedium), 4);
    assert_int_equal(atomic_load(&a.other), 0);
    bd_blk_free(a.blk);
    bd_graph_free(g);
}

int unit_run_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_io_rmw_keeps_neighbours),
        cmocka_unit_test(test_io_unaligned_read),
        cmocka_unit_test(test_io_unaligned_zeroes),
        cmocka_unit_test(test_io_read_last_partial_block),
        cmocka_unit_test(test_io_zeroes_inside_one_block),
        cmocka_unit_test(test_io_max_transfer_split),
        cmocka_unit_test(test_io_discard_split_advances),
        cmocka_unit_test(test_io_discard_alignment),
        cmocka_unit_test(test_io_discard_ignored_without_unmap),
        cmocka_unit_test(test_io_zeroes_split),
        cmocka_unit_test(test_io_fua_emulated),
        cmocka_unit_test(test_io_fua_native),
        cmocka_unit_test(test_io_zeroes_fallback),
        cmocka_unit_test(test_io_zeroes_may_unmap),
        cmocka_unit_test(test_io_detect_zeroes),
        cmocka_unit_test(test_io_bounds),
        cmocka_unit_test(test_io_read_only),
        cmocka_unit_test(test_io_no_medium),
        cmocka_unit_test(test_io_block_status),
        cmocka_unit_test(test_io_truncate),
        cmocka_unit_test(test_io_stats),
        cmocka_unit_test(test_io_qiov),
        cmocka_unit_test(test_io_concurrent_rmw),
        cmocka_unit_test(test_io_drain_while_busy),
        cmocka_unit_test(test_io_blk_remove_races_requests),
        cmocka_unit_test(test_io_live_filter_insertion),
    };

    return cmocka_run_group_tests_name("io", tests, NULL, NULL);
}
