/*
 * tests/unit/test_null.c - driver/null.c: null-co and null-aio options,
 * read-zeroes, block status, and latency-ns delaying only the request it
 * belongs to (ordering checks with threads, no timing bounds).
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

#include "common/cutils.h"
#include "driver/block-int.h"
#include "tests/helpers/test-drivers.h"
#include "tests/unit/unit.h"

static struct bd_node *open_null(struct bd_graph *g, const char *json)
{
    struct bd_error *err = NULL;
    struct bd_node *n = td_open_json(g, json, BD_O_RDWR, &err);

    if (!n) {
        fail_msg("open %s: %s", json, bd_error_msg(err));
    }
    return n;
}

static void test_null_defaults_and_options(void **state)
{
    struct bd_graph *g = bd_graph_new();
    const char *const drivers[] = { "null-co", "null-aio" };
    int i;

    (void)state;
    for (i = 0; i < 2; i++) {
        char json[128];
        struct bd_node *n = NULL;
        uint8_t buf[4096];
        struct bd_qiov q;
        int64_t pnum = 0;
        int ret;

        snprintf(json, sizeof(json), "{\"driver\": \"%s\"}", drivers[i]);
        n = open_null(g, json);
        assert_int_equal(bd_getlength(n), 1 << 30);
        /* read-zeroes=off: the buffer is left alone, nothing is known to
         * be zero, and the image does not start zeroed. */
        memset(buf, 0xab, sizeof(buf));
        bd_qiov_init_buf(&q, buf, sizeof(buf));
        assert_int_equal(bd_node_preadv(n, 0, sizeof(buf), &q, 0), 0);
        assert_int_equal(buf[100], 0xab);
        ret = bd_node_block_status(n, 0, 4096, &pnum, NULL, NULL);
        assert_false(ret & BD_BLOCK_ZERO);
        assert_int_equal(pnum, 4096);
        assert_int_equal(n->drv->has_zero_init(n), 0);
        /* Writes, zeroes, discards and flushes succeed and vanish. */
        assert_int_equal(bd_node_pwritev(n, 0, sizeof(buf), &q, BD_REQ_FUA),
                         0);
        assert_int_equal(bd_node_pwrite_zeroes(n, 0, 4096, 0), 0);
        assert_int_equal(bd_node_pdiscard(n, 0, 4096), 0);
        assert_int_equal(bd_node_flush(n), 0);
        bd_qiov_destroy(&q);
        bd_unref(n);

        snprintf(json, sizeof(json), "{\"driver\": \"%s\", \"size\": \"64k\","
                 " \"read-zeroes\": true}", drivers[i]);
        n = open_null(g, json);
        assert_int_equal(bd_getlength(n), 65536);
        memset(buf, 0xab, sizeof(buf));
        bd_qiov_init_buf(&q, buf, sizeof(buf));
        assert_int_equal(bd_node_preadv(n, 4096, sizeof(buf), &q, 0), 0);
        assert_true(bd_buffer_is_zero(buf, sizeof(buf)));
        ret = bd_node_block_status(n, 0, 1 << 20, &pnum, NULL, NULL);
        assert_true(ret & BD_BLOCK_ZERO);
        assert_true(ret & BD_BLOCK_EOF);
        assert_int_equal(pnum, 65536);
        assert_int_equal(n->drv->has_zero_init(n), 1);
        bd_qiov_destroy(&q);
        bd_unref(n);
    }
    bd_graph_free(g);
}

static void test_null_filenames(void **state)
{
    struct bd_graph *g = bd_graph_new();
    struct bd_error *err = NULL;
    struct bd_node *n = NULL;

    (void)state;
    n = bd_open(g, "null-aio://", NULL, BD_O_PROTOCOL, &err);
    assert_non_null(n);
    assert_string_equal(bd_node_driver_name(n), "null-aio");
    bd_unref(n);
    assert_null(bd_open(g, "null-aio://x", NULL, BD_O_PROTOCOL, &err));
    assert_string_equal(bd_error_msg(err), "The only allowed filename for "
                        "this driver is 'null-aio://'");
    bd_error_free(err);
    bd_graph_free(g);
}

/* ------------------------------------------------------------------ */
/* latency-ns                                                           */

struct slow_req {
    struct bd_node *n;
    atomic_bool done;
};

static void *slow_read(void *opaque)
{
    struct slow_req *r = opaque;
    uint8_t buf[512];
    struct bd_qiov q;

    bd_qiov_init_buf(&q, buf, sizeof(buf));
    bd_node_preadv(r->n, 0, sizeof(buf), &q, 0);
    bd_qiov_destroy(&q);
    atomic_store(&r->done, true);
    return NULL;
}

/*
 * While a request sleeps out latency-ns on one node, other work completes:
 * requests to another node, and metadata requests to the same node. The
 * assertion is an order (the quick work finishes while the slow request is
 * still running). A slow machine could lose the race once by chance, so a
 * lost race is retried with ten times the latency; a request that really
 * blocks the others loses every time.
 */
static void test_null_latency_blocks_nobody(void **state)
{
    int64_t latency = 100 * 1000 * 1000;   /* 100 ms, then 1 s, 10 s */
    int attempt;
    bool won = false;

    (void)state;
    for (attempt = 0; attempt < 3 && !won; attempt++, latency *= 10) {
        struct bd_graph *g = bd_graph_new();
        char json[128];
        struct slow_req r;
        pthread_t th;
        struct bd_node *fast = open_null(g, "{\"driver\": \"null-co\"}");
        uint8_t buf[512];
        struct bd_qiov q;
        int64_t pnum = 0;
        bool ok = true;
        int i;

        snprintf(json, sizeof(json), "{\"driver\": \"null-co\", "
                 "\"latency-ns\": %lld}", (long long)latency);
        r.n = open_null(g, json);
        atomic_store(&r.done, false);
        pthread_create(&th, NULL, slow_read, &r);
        /* Wait until the slow request is in flight in its node. */
        while (atomic_load(&r.n->in_flight) == 0 && !atomic_load(&r.done)) {
            bd_sleep_ns(10 * 1000);
        }
        bd_qiov_init_buf(&q, buf, sizeof(buf));
        for (i = 0; i < 100 && ok; i++) {
            ok = bd_node_preadv(fast, 0, sizeof(buf), &q, 0) == 0 &&
                 bd_node_pwritev(fast, 0, sizeof(buf), &q, 0) == 0 &&
                 bd_node_block_status(r.n, 0, 512, &pnum, NULL, NULL) >= 0 &&
                 bd_getlength(r.n) == 1 << 30;
        }
        assert_true(ok);
        won = !atomic_load(&r.done);
        pthread_join(th, NULL);
        bd_qiov_destroy(&q);
        bd_unref(fast);
        bd_unref(r.n);
        bd_graph_free(g);
    }
    assert_true(won);
}

int unit_run_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_null_defaults_and_options),
        cmocka_unit_test(test_null_filenames),
        cmocka_unit_test(test_null_latency_blocks_nobody),
    };

    return cmocka_run_group_tests_name("null", tests, NULL, NULL);
}
