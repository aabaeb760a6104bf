/*
 * tests/unit/test_opts.c - common/opts.c and common/cutils.c: the option
 * syntaxes QEMU's tools accept and the messages they give.
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
#include "common/opts.h"
#include "tests/unit/unit.h"

/* ",," is a literal comma and a bare key means "on". */
static void test_opts_parse_escapes(void **state)
{
    struct bd_error *err = NULL;
    json_t *o = bd_opts_parse("driver=file,filename=a,,b.img,cache.direct,x=",
                              NULL, &err);

    (void)state;
    assert_non_null(o);
    assert_string_equal(bd_opts_peek_str(o, "driver"), "file");
    assert_string_equal(bd_opts_peek_str(o, "filename"), "a,b.img");
    assert_string_equal(bd_opts_peek_str(o, "cache.direct"), "on");
    assert_string_equal(bd_opts_peek_str(o, "x"), "");
    json_decref(o);
}

/* Size suffixes are binary units; negatives are out of range. */
static void test_opts_sizes(void **state)
{
    uint64_t v = 0;

    (void)state;
    assert_int_equal(bd_parse_size("4k", &v), 0);
    assert_int_equal(v, 4096);
    assert_int_equal(bd_parse_size("1M", &v), 0);
    assert_int_equal(v, 1 << 20);
    assert_int_equal(bd_parse_size("1.5G", &v), 0);
    assert_int_equal(v, 3ULL << 29);
    assert_int_equal(bd_parse_size("2T", &v), 0);
    assert_int_equal(v, 2ULL << 40);
    assert_int_equal(bd_parse_size("0x10", &v), 0);
    assert_int_equal(v, 16);
    assert_int_equal(bd_parse_size("-1", &v), -ERANGE);
    assert_int_equal(bd_parse_size("abc", &v), -EINVAL);
    assert_int_equal(bd_parse_size("1x", &v), -EINVAL);
    assert_int_equal(bd_parse_size("16E", &v), -ERANGE);
}

/* Typed readers consume the key and phrase errors as QemuOpts does. */
static void test_opts_take_messages(void **state)
{
    struct bd_error *err = NULL;
    json_t *o = json_pack("{s:s, s:s, s:s, s:i}", "size", "abc",
                          "read-zeroes", "maybe", "latency-ns", "x",
                          "neg", -5);
    uint64_t u = 0;
    bool b = false;

    (void)state;
    assert_int_equal(bd_opts_take_size(o, "size", &u, &err), -1);
    assert_string_equal(err->msg, "Parameter 'size' expects a non-negative "
                        "number below 2^64");
    bd_error_free(err);
    err = NULL;
    assert_null(json_object_get(o, "size"));
    assert_int_equal(bd_opts_take_bool(o, "read-zeroes", &b, &err), -1);
    assert_string_equal(err->msg, "Parameter 'read-zeroes' expects 'on' or 'off'");
    bd_error_free(err);
    err = NULL;
    assert_int_equal(bd_opts_take_number(o, "latency-ns", &u, &err), -1);
    assert_string_equal(err->msg, "Parameter 'latency-ns' expects a number");
    bd_error_free(err);
    err = NULL;
    assert_int_equal(bd_opts_take_size(o, "neg", &u, &err), -1);
    assert_string_equal(err->msg, "Value '-5' is out of range for parameter 'neg'");
    bd_error_free(err);
    err = NULL;
    assert_int_equal(bd_opts_take_size(o, "absent", &u, &err), 0);
    assert_int_equal(json_object_size(o), 0);
    json_decref(o);
}

/* flatten and crumple are inverses, lists included. */
static void test_opts_flatten_crumple(void **state)
{
    struct bd_error *err = NULL;
    json_t *nested = json_loads("{\"a\":{\"b\":1},\"l\":[{\"x\":\"y\"},{\"x\":\"z\"}]}",
                                0, NULL);
    json_t *flat = bd_opts_flatten(nested);
    json_t *back = NULL;

    (void)state;
    assert_int_equal(json_integer_value(json_object_get(flat, "a.b")), 1);
    assert_string_equal(bd_opts_peek_str(flat, "l.1.x"), "z");
    back = bd_opts_crumple(flat, &err);
    assert_non_null(back);
    assert_true(json_equal(back, nested));
    json_decref(back);
    json_decref(flat);
    json_decref(nested);
}

/* Empty lists and objects stay values under their key (QEMU's
 * qdict_flatten), so that a driver that takes none refuses them. */
static void test_opts_flatten_empty(void **state)
{
    json_t *nested = json_loads("{\"l\":[],\"o\":{},\"a\":{\"e\":[]},"
                                "\"n\":[1]}", 0, NULL);
    json_t *flat = bd_opts_flatten(nested);

    (void)state;
    assert_true(json_is_array(json_object_get(flat, "l")));
    assert_int_equal(json_array_size(json_object_get(flat, "l")), 0);
    assert_true(json_is_object(json_object_get(flat, "o")));
    assert_true(json_is_array(json_object_get(flat, "a.e")));
    assert_int_equal(json_integer_value(json_object_get(flat, "n.0")), 1);
    assert_null(json_object_get(flat, "n"));
    assert_int_equal(json_object_size(flat), 4);
    json_decref(flat);
    json_decref(nested);
}

/* qemu-io's byte-count formatting. */
static void test_opts_cvtstr(void **state)
{
    char buf[64];

    (void)state;
    bd_cvtstr(512, buf, sizeof(buf));
    assert_string_equal(buf, "512 bytes");
    bd_cvtstr(4096, buf, sizeof(buf));
    assert_string_equal(buf, "4 KiB");
    bd_cvtstr(1536, buf, sizeof(buf));
    assert_string_equal(buf, "1.500 KiB");
    bd_cvtstr(1 << 20, buf, sizeof(buf));
    assert_string_equal(buf, "1 MiB");
}

/* The first element may bind to an implied key; later duplicates win. */
static void test_opts_parse_implied_and_duplicates(void **state)
{
    struct bd_error *err = NULL;
    json_t *o = bd_opts_parse("a.img,format=raw,size=1k,size=2k", "file",
                              &err);

    (void)state;
    assert_non_null(o);
    assert_string_equal(bd_opts_peek_str(o, "file"), "a.img");
    assert_string_equal(bd_opts_peek_str(o, "size"), "2k");
    assert_int_equal(json_object_size(o), 3);
    json_decref(o);
    o = bd_opts_parse("", NULL, &err);
    assert_int_equal(json_object_size(o), 0);
    json_decref(o);
    assert_null(bd_opts_parse("a=1,=x", NULL, &err));
    assert_string_equal(bd_error_msg(err), "Invalid parameter ''");
    bd_error_free(err);
}

/* Sub-dicts move out by prefix; "file" is not a prefix of "filename". */
static void test_opts_extract_prefix(void **state)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "file.driver", "file",
                          "file.filename", "a.img", "filename", "x",
                          "file2.y", "z");
    json_t *sub = NULL;

    (void)state;
    assert_true(bd_opts_has_prefix(o, "file"));
    assert_true(bd_opts_has_prefix(o, "filename"));
    assert_false(bd_opts_has_prefix(o, "fil"));
    sub = bd_opts_extract(o, "file");
    assert_int_equal(json_object_size(sub), 2);
    assert_string_equal(bd_opts_peek_str(sub, "filename"), "a.img");
    assert_int_equal(json_object_size(o), 2);
    assert_false(bd_opts_has_prefix(o, "file"));
    assert_non_null(bd_opts_first_key(sub));
    json_decref(sub);
    json_decref(o);
    o = json_object();
    assert_null(bd_opts_first_key(o));
    json_decref(o);
}

/* Typed JSON scalars reach the readers as QEMU stringifies them. */
static void test_opts_typed_scalars(void **state)
{
    struct bd_error *err = NULL;
    json_t *o = json_pack("{s:b, s:i, s:f, s:n, s:[]}", "t", 1, "i", -7,
                          "r", 1.5, "z", "l");
    char *str = NULL;
    uint64_t u = 0;
    int e = -1;
    static const char *const names[] = { "off", "on", "unmap", NULL };

    (void)state;
    str = bd_opts_scalar_string(json_object_get(o, "t"));
    assert_string_equal(str, "true");
    free(str);
    str = bd_opts_scalar_string(json_object_get(o, "r"));
    assert_string_equal(str, "1.5");
    free(str);
    str = bd_opts_scalar_string(json_object_get(o, "z"));
    assert_string_equal(str, "null");
    free(str);
    assert_null(bd_opts_scalar_string(json_object_get(o, "l")));
    assert_int_equal(bd_opts_take_number(o, "i", &u, &err), 1);
    assert_int_equal(u, (uint64_t)-7);  /* wraps, as qemu_strtou64 */
    assert_int_equal(bd_opts_take_size(o, "r", &u, &err), -1);
    assert_string_equal(bd_error_msg(err), "Parameter 'r' expects a "
                        "non-negative number below 2^64");
    bd_error_free(err);
    err = NULL;
    json_object_set_new(o, "dz", json_string("maybe"));
    assert_int_equal(bd_opts_take_enum(o, "dz", names, &e, &err), -1);
    assert_string_equal(bd_error_msg(err),
                        "Parameter 'dz' does not accept value 'maybe'");
    bd_error_free(err);
    err = NULL;
    json_object_set_new(o, "dz", json_string("unmap"));
    assert_int_equal(bd_opts_take_enum(o, "dz", names, &e, &err), 1);
    assert_int_equal(e, 2);
    json_decref(o);
}

static void test_opts_json_and_crumple_errors(void **state)
{
    struct bd_error *err = NULL;
    json_t *flat = NULL;

    (void)state;
    assert_null(bd_json_parse_options("{\"driver\": ", &err));
    assert_string_equal(bd_error_msg(err), "Could not parse the JSON "
                        "options: JSON parse error, premature EOI");
    bd_error_free(err);
    err = NULL;
    assert_null(bd_json_parse_options("[1]", &err));
    assert_string_equal(bd_error_msg(err), "Invalid JSON object given");
    bd_error_free(err);
    err = NULL;
    flat = json_pack("{s:s, s:s}", "a", "1", "a.b", "2");
    assert_null(bd_opts_crumple(flat, &err));
    assert_non_null(err);
    bd_error_free(err);
    err = NULL;
    json_decref(flat);
    flat = json_pack("{s:s, s:s}", "l.0", "x", "l.2", "y");
    assert_null(bd_opts_crumple(flat, &err));
    assert_non_null(err);
    bd_error_free(err);
    json_decref(flat);
}

int unit_run_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opts_parse_escapes),
        cmocka_unit_test(test_opts_sizes),
        cmocka_unit_test(test_opts_take_messages),
        cmocka_unit_test(test_opts_flatten_crumple),
        cmocka_unit_test(test_opts_flatten_empty),
        cmocka_unit_test(test_opts_cvtstr),
        cmocka_unit_test(test_opts_parse_implied_and_duplicates),
        cmocka_unit_test(test_opts_extract_prefix),
        cmocka_unit_test(test_opts_typed_scalars),
        cmocka_unit_test(test_opts_json_and_crumple_errors),
    };

    return cmocka_run_group_tests_name("opts", tests, NULL, NULL);
}
