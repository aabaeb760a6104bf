/*
 * tests/unit/test_cutils.c - common/cutils.c: the size parser against
 * qemu_strtosz's rules, integer and boolean parsing, qemu-io's size
 * formatting, ids, and the small memory helpers.
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
#include "tests/unit/unit.h"

struct size_case {
    const char *in;
    int ret;
    uint64_t val;
};

/* Expected values checked against qemu-img/qemu-io 10.0 (qemu_strtosz). */
static const struct size_case size_cases[] = {
    { "0", 0, 0 },
    { "1", 0, 1 },
    { "512", 0, 512 },
    { "1b", 0, 1 },
    { "1B", 0, 1 },
    { "4k", 0, 4096 },
    { "4K", 0, 4096 },
    { "1m", 0, 1 << 20 },
    { "1M", 0, 1 << 20 },
    { "1G", 0, 1 << 30 },
    { "2T", 0, 2ULL << 40 },
    { "1P", 0, 1ULL << 50 },
    { "1E", 0, 1ULL << 60 },
    { "15E", 0, 15ULL << 60 },
    { " 8k", 0, 8192 },                 /* leading blanks are skipped */
    { "1.5G", 0, 3ULL << 29 },
    { "1.5k", 0, 1536 },
    { "0.5k", 0, 512 },
    { ".5k", 0, 512 },
    { "1.k", 0, 1024 },                 /* no digits after the point */
    { "1.0", 0, 1 },                    /* a zero fraction needs no unit */
    { "0.1k", 0, 102 },                 /* 102.4 */
    { "0.0005k", 0, 1 },                /* 0.512 rounds half up */
    { "0.0004k", 0, 0 },                /* 0.4096 rounds down */
    { "1.5e", 0, 3ULL << 59 },          /* 'e' is exa, not an exponent */
    { "0x10", 0, 16 },
    { "0X1f", 0, 31 },
    { "0x1B", 0, 27 },                  /* B is a hex digit here */
    { "18446744073709551615", 0, UINT64_MAX },
    { "16E", -ERANGE, 0 },
    { "18446744073709551616", -ERANGE, 0 },
    { "17179869184G", -ERANGE, 0 },
    { "15.9999999999999999999E", -ERANGE, 0 },
    { "-1", -ERANGE, 0 },
    { "-0", -ERANGE, 0 },
    { "-1k", -ERANGE, 0 },
    { "", -EINVAL, 0 },
    { " ", -EINVAL, 0 },
    { "abc", -EINVAL, 0 },
    { "-abc", -EINVAL, 0 },
    { "1x", -EINVAL, 0 },
    { "1kk", -EINVAL, 0 },
    { "1k ", -EINVAL, 0 },
    { "1.5", -EINVAL, 0 },              /* a fraction needs a unit */
    { "1.5B", -EINVAL, 0 },
    { ".", -EINVAL, 0 },
    { ".k", -EINVAL, 0 },
    { "0x", -EINVAL, 0 },
    { "0x1k", -EINVAL, 0 },             /* hex takes no suffix */
    { "0x1.5k", -EINVAL, 0 },           /* nor a fraction */
    { "1e5", -EINVAL, 0 },
    { "1.5.5k", -EINVAL, 0 },
};

static void test_cutils_parse_size(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(size_cases) / sizeof(size_cases[0]); i++) {
        const struct size_case *c = &size_cases[i];
        uint64_t v = 12345;
        int ret = bd_parse_size(c->in, &v);

        if (ret != c->ret || (ret == 0 && v != c->val) ||
            (ret != 0 && v != 12345)) {
            fail_msg("'%s': ret %d value %llu, want ret %d value %llu",
                     c->in, ret, (unsigned long long)v, c->ret,
                     (unsigned long long)c->val);
        }
    }
}

/* A default unit applies only without a suffix. */
static void test_cutils_parse_size_unit(void **state)
{
    uint64_t v = 0;

    (void)state;
    assert_int_equal(bd_parse_size_unit("2", 1 << 20, &v), 0);
    assert_int_equal(v, 2 << 20);
    assert_int_equal(bd_parse_size_unit("2k", 1 << 20, &v), 0);
    assert_int_equal(v, 2048);
    assert_int_equal(bd_parse_size_unit("1.5", 1 << 20, &v), 0);
    assert_int_equal(v, 3 << 19);
    assert_int_equal(bd_parse_size_unit("16384", 1ULL << 50, &v), -ERANGE);
}

static void test_cutils_parse_ints(void **state)
{
    uint64_t u = 0;
    int64_t i = 0;
    int n = 0;

    (void)state;
    assert_int_equal(bd_parse_u64("42", &u), 0);
    assert_int_equal(u, 42);
    assert_int_equal(bd_parse_u64("0x10", &u), 0);
    assert_int_equal(u, 16);
    assert_int_equal(bd_parse_u64("010", &u), 0);
    assert_int_equal(u, 8);
    assert_int_equal(bd_parse_u64("-1", &u), 0);   /* wraps, like QEMU */
    assert_int_equal(u, UINT64_MAX);
    assert_int_equal(bd_parse_u64("18446744073709551616", &u), -ERANGE);
    assert_int_equal(bd_parse_u64("", &u), -EINVAL);
    assert_int_equal(bd_parse_u64("4k", &u), -EINVAL);
    assert_int_equal(bd_parse_i64("-5", &i), 0);
    assert_int_equal(i, -5);
    assert_int_equal(bd_parse_i64("9223372036854775808", &i), -ERANGE);
    assert_int_equal(bd_parse_i64("x", &i), -EINVAL);
    assert_int_equal(bd_parse_i64("", &i), -EINVAL);
    assert_int_equal(bd_parse_int("2147483647", &n), 0);
    assert_int_equal(n, 2147483647);
    assert_int_equal(bd_parse_int("2147483648", &n), -ERANGE);
    assert_int_equal(bd_parse_int("-2147483649", &n), -ERANGE);
}

static void test_cutils_parse_bool(void **state)
{
    static const char *const yes[] = { "on", "yes", "true" };
    static const char *const no[] = { "off", "no", "false" };
    bool b;
    int i;

    (void)state;
    for (i = 0; i < 3; i++) {
        b = false;
        assert_true(bd_parse_bool(yes[i], &b));
        assert_true(b);
        assert_true(bd_parse_bool(no[i], &b));
        assert_false(b);
    }
    b = true;
    assert_false(bd_parse_bool("1", &b));
    assert_false(bd_parse_bool("ON", &b));
    assert_false(bd_parse_bool("", &b));
    assert_true(b);
}

/* Strings as qemu-io 10.0 prints them ("read 0 N" timing line). */
static void test_cutils_cvtstr(void **state)
{
    static const struct {
        double v;
        const char *s;
    } cases[] = {
        { 0, "0 bytes" },
        { 1, "1 bytes" },
        { 1000, "1000 bytes" },
        { 1536, "1.500 KiB" },
        { 4096, "4 KiB" },
        { 1048576, "1 MiB" },
        { 1049088, "1 MiB" },
        { 123456789, "117.738 MiB" },
        { 1099511627776.0, "1 TiB" },
    };
    char buf[64];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bd_cvtstr(cases[i].v, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].s);
    }
    /* A short buffer truncates, never overflows. */
    bd_cvtstr(1536, buf, 6);
    assert_true(strlen(buf) < 6);
}

static void test_cutils_id_wellformed(void **state)
{
    (void)state;
    assert_true(bd_id_wellformed("a", 0));
    assert_true(bd_id_wellformed("node-1.a_b", 0));
    assert_false(bd_id_wellformed("", 0));
    assert_false(bd_id_wellformed("1a", 0));
    assert_false(bd_id_wellformed("-a", 0));
    assert_false(bd_id_wellformed("#block1", 0));
    assert_false(bd_id_wellformed("a b", 0));
    assert_false(bd_id_wellformed("a@b", 0));
    assert_false(bd_id_wellformed(NULL, 0));
    assert_true(bd_id_wellformed("abc", 3));
    assert_false(bd_id_wellformed("abcd", 3));
}

static void test_cutils_memory_helpers(void **state)
{
    uint8_t buf[100];
    void *p = NULL;
    char *s = NULL;
    size_t off;

    (void)state;
    assert_true(bd_is_power_of_2(1));
    assert_true(bd_is_power_of_2(1ULL << 63));
    assert_false(bd_is_power_of_2(0));
    assert_false(bd_is_power_of_2(6));
    /* Every start offset and every position of a single set byte. */
    memset(buf, 0, sizeof(buf));
    for (off = 0; off < 16; off++) {
        size_t k;

        assert_true(bd_buffer_is_zero(buf + off, sizeof(buf) - off));
        for (k = off; k < sizeof(buf); k++) {
            buf[k] = 1;
            assert_false(bd_buffer_is_zero(buf + off, sizeof(buf) - off));
            buf[k] = 0;
        }
    }
    assert_true(bd_buffer_is_zero(buf, 0));
    p = bd_memalign(4096, 10);
    assert_int_equal((uintptr_t)p % 4096, 0);
    free(p);
    s = bd_strdup_printf("%s-%d", "x", 5);
    assert_string_equal(s, "x-5");
    free(s);
    assert_null(bd_strdup(NULL));
    p = bd_malloc0(0);
    assert_non_null(p);
    free(p);
}

static void test_cutils_clock(void **state)
{
    int64_t a;
    int64_t b;

    (void)state;
    a = bd_clock_ns();
    bd_sleep_ns(1000);
    bd_sleep_ns(0);
    bd_sleep_ns(-5);
    b = bd_clock_ns();
    /* Monotonic: never goes backwards (no upper bound: slow machines). */
    assert_true(b >= a + 1000);
}

int unit_run_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cutils_parse_size),
        cmocka_unit_test(test_cutils_parse_size_unit),
        cmocka_unit_test(test_cutils_parse_ints),
        cmocka_unit_test(test_cutils_parse_bool),
        cmocka_unit_test(test_cutils_cvtstr),
        cmocka_unit_test(test_cutils_id_wellformed),
        cmocka_unit_test(test_cutils_memory_helpers),
        cmocka_unit_test(test_cutils_clock),
    };

    return cmocka_run_group_tests_name("cutils", tests, NULL, NULL);
}
