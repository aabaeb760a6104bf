/*
 * tests/unit/test_bufpool.c - common/bufpool.c: buffers come back for
 * reuse up to the pool's limit, are aligned and large enough, oversized
 * requests bypass the pool, and threads share a pool safely.
 */
#include "common/config.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/bufpool.h"
#include "tests/unit/unit.h"

/* A buffer given back is the next one handed out; beyond max, buffers
 * are freed rather than kept. */
static void test_bufpool_reuse(void **state)
{
    struct bd_bufpool p;
    void *a, *b, *c;

    (void)state;
    bd_bufpool_init(&p, 65536, 4096, 2);
    a = bd_bufpool_get(&p, 4096);
    b = bd_bufpool_get(&p, 65536);
    c = bd_bufpool_get(&p, 100);
    assert_true(a != b && b != c && a != c);
    assert_int_equal((uintptr_t)a % 4096, 0);
    assert_int_equal((uintptr_t)b % 4096, 0);
    /* Every pooled buffer is the pool's full size, whatever was asked. */
    memset(a, 1, 65536);
    memset(c, 1, 65536);
    bd_bufpool_put(&p, a, 4096);
    bd_bufpool_put(&p, b, 65536);
    bd_bufpool_put(&p, c, 100);        /* third: over max, freed */
    assert_int_equal(p.n, 2);
    assert_ptr_equal(bd_bufpool_get(&p, 512), b);
    assert_ptr_equal(bd_bufpool_get(&p, 512), a);
    assert_int_equal(p.n, 0);
    bd_bufpool_put(&p, a, 512);
    bd_bufpool_put(&p, b, 512);
    bd_bufpool_destroy(&p);
}

/* Larger than the pool's size: allocated for the caller, freed on put,
 * never kept. */
static void test_bufpool_oversized(void **state)
{
    struct bd_bufpool p;
    void *big;

    (void)state;
    bd_bufpool_init(&p, 4096, 512, 4);
    big = bd_bufpool_get(&p, 1 << 20);
    assert_int_equal((uintptr_t)big % 512, 0);
    memset(big, 0xa5, 1 << 20);
    bd_bufpool_put(&p, big, 1 << 20);
    assert_int_equal(p.n, 0);
    bd_bufpool_put(&p, NULL, 16);       /* nothing to give back */
    assert_int_equal(p.n, 0);
    bd_bufpool_destroy(&p);
}

static void *hammer(void *opaque)
{
    struct bd_bufpool *p = opaque;
    int i;

    for (i = 0; i < 20000; i++) {
        uint8_t *b = bd_bufpool_get(p, 8192);

        /* A buffer owned by two threads at once would trip this. */
        memset(b, (int)(i & 0xff), 8192);
        if (b[0] != (uint8_t)(i & 0xff) || b[8191] != (uint8_t)(i & 0xff)) {
            return (void *)1;
        }
        bd_bufpool_put(p, b, 8192);
    }
    return NULL;
}

static void test_bufpool_threads(void **state)
{
    struct bd_bufpool p;
    pthread_t t[4];
    void *r;
    int i;

    (void)state;
    bd_bufpool_init(&p, 8192, 4096, 3);
    for (i = 0; i < 4; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &p), 0);
    }
    for (i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], &r), 0);
        assert_null(r);
    }
    assert_true(p.n >= 1 && p.n <= 3);
    bd_bufpool_destroy(&p);
}

int unit_run_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bufpool_reuse),
        cmocka_unit_test(test_bufpool_oversized),
        cmocka_unit_test(test_bufpool_threads),
    };

    return cmocka_run_group_tests_name("bufpool", tests, NULL, NULL);
}
