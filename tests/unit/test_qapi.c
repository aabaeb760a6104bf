/*
 * tests/unit/test_qapi.c - common/qapi.c: the validator's verdicts and
 * messages for JSON and keyval input. Every expected message below was
 * measured with qemu-storage-daemon 10.0.2 (QMP blockdev-add for JSON,
 * --blockdev for keyval) on the same input.
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

#include "common/opts.h"
#include "common/qapi.h"
#include "driver/block-int.h"
#include "tests/unit/unit.h"

/* A small schema exercising the kinds blockdev options don't (yet). */
static const char *const ev_values[] = { "read_aio", "write_aio", NULL };
static const struct qapi_type ev_type = {
    .kind = QAPI_ENUM, .name = "Ev", .enum_values = ev_values,
};
static const struct qapi_member rule_members[] = {
    { "event", &ev_type, false },
    { "new_state", &qapi_type_int, false },
    { NULL, NULL, false },
};
static const struct qapi_type rule_type = {
    .kind = QAPI_STRUCT, .name = "Rule", .members = rule_members,
};
static const struct qapi_type rule_list = {
    .kind = QAPI_LIST, .name = "RuleList", .element = &rule_type,
};
static const struct qapi_member test_members[] = {
    { "rules", &rule_list, true },
    { "i32", &qapi_type_int32, true },
    { "u32", &qapi_type_uint32, true },
    { "sz", &qapi_type_size, true },
    { "num", &qapi_type_number, true },
    { "any", &qapi_type_any, true },
    { NULL, NULL, false },
};
static const struct qapi_type test_type = {
    .kind = QAPI_STRUCT, .name = "Test", .members = test_members,
};

/* A struct with a base: the base's members are checked first. */
static const struct qapi_member ext_members[] = {
    { "node", &qapi_type_str, false },
    { "arm", &qapi_type_bool, true },
    { NULL, NULL, false },
};
static const struct qapi_type ext_type = {
    .kind = QAPI_STRUCT, .name = "Ext", .base = &rule_type,
    .members = ext_members,
};

struct vcase {
    const struct qapi_type *type;
    bool keyval;
    const char *input;     /* JSON text, or key=value,... for keyval */
    const char *msg;       /* NULL: valid */
};

static json_t *load(const struct vcase *c)
{
    struct bd_error *err = NULL;
    json_t *flat = NULL;
    json_t *tree = NULL;

    if (!c->keyval) {
        tree = json_loads(c->input, 0, NULL);
        assert_non_null(tree);
        return tree;
    }
    flat = bd_opts_parse(c->input, NULL, &err);
    assert_non_null(flat);
    tree = bd_opts_crumple(flat, &err);
    assert_non_null(tree);
    json_decref(flat);
    return tree;
}

static void run_cases(const struct vcase *cases, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        struct bd_error *err = NULL;
        json_t *v = load(&cases[i]);
        int r = qapi_validate(cases[i].type, v, cases[i].keyval, &err);

        if (!cases[i].msg) {
            if (r != 0) {
                fail_msg("case %zu (%s): unexpected error '%s'", i,
                         cases[i].input, err ? err->msg : "?");
            }
        } else {
            if (r != -EINVAL || !err) {
                fail_msg("case %zu (%s): accepted, wanted '%s'", i,
                         cases[i].input, cases[i].msg);
            }
            if (strcmp(err->msg, cases[i].msg) != 0) {
                fail_msg("case %zu (%s):\n got  '%s'\n want '%s'", i,
                         cases[i].input, err->msg, cases[i].msg);
            }
        }
        bd_error_free(err);
        json_decref(v);
    }
}

#define BO (&bd_qapi_blockdev_options)

/* blockdev-add over QMP: JSON types. */
static void test_qapi_blockdev_json(void **state)
{
    static const struct vcase cases[] = {
        { BO, false, "{\"driver\":\"null-co\",\"node-name\":\"n\"}", NULL },
        { BO, false, "{\"driver\":\"null-co\",\"size\":\"x\"}",
          "Invalid parameter type for 'size', expected: integer" },
        { BO, false, "{\"driver\":\"null-co\",\"size\":1.5}",
          "Invalid parameter type for 'size', expected: integer" },
        { BO, false, "{\"driver\":\"null-co\",\"bogus\":1}",
          "Parameter 'bogus' is unexpected" },
        { BO, false, "{\"node-name\":\"n\"}", "Parameter 'driver' is missing" },
        { BO, false, "{}", "Parameter 'driver' is missing" },
        { BO, false, "{\"driver\":\"nope\"}",
          "Parameter 'driver' does not accept value 'nope'" },
        { BO, false, "{\"driver\":5}",
          "Invalid parameter type for 'driver', expected: string" },
        { BO, false, "{\"driver\":\"null-co\",\"cache\":5}",
          "Invalid parameter type for 'cache', expected: object" },
        { BO, false, "{\"driver\":\"null-co\",\"cache\":{\"x\":1}}",
          "Parameter 'cache.x' is unexpected" },
        { BO, false, "{\"driver\":\"null-co\",\"cache\":{\"direct\":\"on\"}}",
          "Invalid parameter type for 'cache.direct', expected: boolean" },
        /* Members are checked before unknown keys beside them. */
        { BO, false, "{\"driver\":\"raw\",\"bogus\":1,"
          "\"cache\":{\"direct\":1}}",
          "Invalid parameter type for 'cache.direct', expected: boolean" },
        { BO, false, "{\"driver\":\"raw\",\"file\":5}",
          "Invalid parameter type for 'file', expected: BlockdevRef" },
        { BO, false, "{\"driver\":\"raw\",\"file\":null}",
          "Invalid parameter type for 'file', expected: BlockdevRef" },
        { BO, false, "{\"driver\":\"raw\"}", "Parameter 'file' is missing" },
        { BO, false, "{\"driver\":\"raw\",\"file\":{\"size\":1}}",
          "Parameter 'file.driver' is missing" },
        { BO, false, "{\"driver\":\"raw\",\"file\":{\"driver\":\"null-co\","
          "\"bogus\":1}}", "Parameter 'file.bogus' is unexpected" },
        { BO, false, "{\"driver\":\"raw\",\"file\":{\"driver\":\"file\"}}",
          "Parameter 'file.filename' is missing" },
        { BO, false, "{\"driver\":\"raw\",\"file\":{\"driver\":\"file\","
          "\"filename\":\"/x\",\"aio\":\"x\"}}",
          "Parameter 'aio' does not accept value 'x'" },
        { BO, false, "{\"driver\":\"raw\",\"file\":{\"driver\":\"null-co\","
          "\"latency-ns\":\"x\"}}",
          "Parameter 'file.latency-ns' expects uint64" },
        { BO, false, "{\"driver\":\"null-co\",\"latency-ns\":1.5}",
          "Parameter 'latency-ns' expects uint64" },
        /* uint64 takes negative numbers (QEMU's backward compatibility). */
        { BO, false, "{\"driver\":\"null-co\",\"latency-ns\":-5}", NULL },
        { BO, false, "{\"driver\":\"null-co\",\"read-only\":\"yes\"}",
          "Invalid parameter type for 'read-only', expected: boolean" },
        { BO, false, "{\"driver\":\"null-co\",\"node-name\":null}",
          "Invalid parameter type for 'node-name', expected: string" },
        { BO, false, "{\"driver\":\"null-co\",\"discard\":1}",
          "Invalid parameter type for 'discard', expected: string" },
        { BO, false, "{\"driver\":\"raw\",\"file\":\"n\",\"detect-zeroes\":"
          "\"unmap\",\"discard\":\"unmap\"}", NULL },
    };

    (void)state;
    run_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* --blockdev key=value: strings converted, QEMU's keyval wording. */
static void test_qapi_blockdev_keyval(void **state)
{
    static const struct vcase cases[] = {
        { BO, true, "driver=null-co,node-name=n,size=0x10", NULL },
        { BO, true, "driver=null-co,node-name=n,size=x",
          "Parameter 'size' expects integer" },
        { BO, true, "driver=null-co,node-name=n,size=1k",
          "Parameter 'size' expects integer" },
        { BO, true, "driver=null-co,node-name=n,size=",
          "Parameter 'size' expects integer" },
        { BO, true, "driver=null-co,node-name=n,latency-ns=x",
          "Parameter 'latency-ns' expects integer" },
        { BO, true, "driver=null-co,node-name=n,read-zeroes=x",
          "Parameter 'read-zeroes' expects 'on' or 'off'" },
        { BO, true, "driver=null-co,node-name=n,read-only=y", NULL },
        { BO, true, "driver=null-co,node-name=n,read-only=",
          "Parameter 'read-only' expects 'on' or 'off'" },
        { BO, true, "driver=null-co,node-name=n,bogus=1",
          "Parameter 'bogus' is unexpected" },
        { BO, true, "driver=nope,node-name=n",
          "Parameter 'driver' does not accept value 'nope'" },
        { BO, true, "node-name=n", "Parameter 'driver' is missing" },
        { BO, true, "driver=file,node-name=n",
          "Parameter 'filename' is missing" },
        { BO, true, "driver=file,node-name=n,filename=/x,aio=bad",
          "Parameter 'aio' does not accept value 'bad'" },
        { BO, true, "driver=raw,node-name=n,file.driver=null-co,file.size=x",
          "Parameter 'file.size' expects integer" },
        { BO, true, "driver=raw,node-name=n,file.driver=null-co,"
          "file.latency-ns=x", "Parameter 'file.latency-ns' expects integer" },
        { BO, true, "driver=raw,node-name=n,file.x=1",
          "Parameter 'file.driver' is missing" },
        { BO, true, "driver=null-co,node-name=n,cache.direct=x",
          "Parameter 'cache.direct' expects 'on' or 'off'" },
        { BO, true, "driver=null-co,node-name=n,cache=x",
          "Invalid parameter type for 'cache', expected: object" },
        { BO, true, "driver=null-co,node-name=n,size.a=1",
          "Parameters 'size.*' are unexpected" },
        { BO, true, "driver=null-co,node-name=n,discard=foo",
          "Parameter 'discard' does not accept value 'foo'" },
        { BO, true, "driver=null-co,node-name=n,detect-zeroes=foo",
          "Parameter 'detect-zeroes' does not accept value 'foo'" },
        { BO, true, "driver=raw,node-name=n,file=f", NULL },
    };

    (void)state;
    run_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* Lists, ranges and the bare-name messages (QEMU's blkdebug and nbd
 * options, measured there). */
static void test_qapi_lists_ranges(void **state)
{
    static const struct vcase cases[] = {
        { &test_type, false, "{\"rules\":[{\"event\":\"read_aio\","
          "\"new_state\":2}]}", NULL },
        { &test_type, false, "{\"rules\":[{\"event\":\"bogus\"}]}",
          "Parameter 'event' does not accept value 'bogus'" },
        { &test_type, false, "{\"rules\":[{\"event\":\"read_aio\"}]}",
          "Parameter 'rules[0].new_state' is missing" },
        { &test_type, true, "rules.0.event=read_aio",
          "Parameter 'rules.0.new_state' is missing" },
        { &test_type, false, "{\"rules\":{\"event\":\"read_aio\"}}",
          "Invalid parameter type for 'rules', expected: array" },
        { &test_type, true, "rules=x",
          "Invalid parameter type for 'rules', expected: array" },
        { &test_type, false, "{\"i32\":99999999999}",
          "Parameter 'i32' expects int32_t" },
        { &test_type, true, "i32=99999999999",
          "Parameter 'i32' expects int32_t" },
        { &test_type, true, "i32=x", "Parameter 'i32' expects integer" },
        { &test_type, false, "{\"u32\":99999999999}",
          "Parameter 'u32' expects uint32_t" },
        { &test_type, false, "{\"u32\":-1}",
          "Parameter 'u32' expects uint32_t" },
        { &test_type, true, "u32=-1", "Parameter 'u32' expects uint32_t" },
        { &test_type, false, "{\"u32\":4294967295}", NULL },
        { &test_type, false, "{\"sz\":\"x\"}", "Parameter 'sz' expects uint64" },
        { &test_type, true, "sz=4k", NULL },
        { &test_type, true, "sz=4q", "Parameter 'sz' expects size" },
        { &test_type, false, "{\"num\":1}", NULL },
        { &test_type, false, "{\"num\":\"1\"}",
          "Invalid parameter type for 'num', expected: number" },
        { &test_type, true, "num=1.5", NULL },
        { &test_type, true, "num=x", "Parameter 'num' expects number" },
        { &test_type, false, "{\"any\":[1,{\"a\":null}]}", NULL },
    };

    (void)state;
    run_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* 'base': its members first, then the struct's own; a key of either is
 * known; keyval conversion types both. */
static void test_qapi_base(void **state)
{
    static const struct vcase cases[] = {
        { &ext_type, false, "{\"event\":\"read_aio\",\"new_state\":1,"
          "\"node\":\"n\",\"arm\":true}", NULL },
        { &ext_type, false, "{}", "Parameter 'event' is missing" },
        { &ext_type, false, "{\"event\":\"read_aio\",\"new_state\":1}",
          "Parameter 'node' is missing" },
        { &ext_type, false, "{\"node\":\"n\",\"event\":\"x\"}",
          "Parameter 'event' does not accept value 'x'" },
        { &ext_type, false, "{\"event\":\"read_aio\",\"new_state\":1,"
          "\"node\":\"n\",\"foo\":1}", "Parameter 'foo' is unexpected" },
        { &ext_type, true, "event=read_aio,new_state=x,node=n",
          "Parameter 'new_state' expects integer" },
    };
    struct bd_error *err = NULL;
    json_t *flat = bd_opts_parse("event=write_aio,new_state=4,node=n,arm=on",
                                 NULL, &err);
    json_t *tree = bd_opts_crumple(flat, &err);
    json_t *j = NULL;

    (void)state;
    run_cases(cases, sizeof(cases) / sizeof(cases[0]));
    j = qapi_keyval_to_json(&ext_type, tree, &err);
    assert_non_null(j);
    assert_true(json_is_integer(json_object_get(j, "new_state")));
    assert_true(json_is_true(json_object_get(j, "arm")));
    json_decref(j);
    json_decref(tree);
    json_decref(flat);
}

/* keyval trees become typed JSON for handlers; getters read both. */
static void test_qapi_keyval_to_json(void **state)
{
    struct bd_error *err = NULL;
    json_t *flat = bd_opts_parse("rules.0.event=read_aio,rules.0.new_state=3,"
                                 "sz=4k,num=2.5,u32=7", NULL, &err);
    json_t *tree = bd_opts_crumple(flat, &err);
    json_t *j = NULL;
    json_t *r0 = NULL;

    (void)state;
    j = qapi_keyval_to_json(&test_type, tree, &err);
    assert_non_null(j);
    r0 = json_array_get(json_object_get(j, "rules"), 0);
    assert_true(json_is_integer(json_object_get(r0, "new_state")));
    assert_int_equal(json_integer_value(json_object_get(r0, "new_state")), 3);
    assert_int_equal(json_integer_value(json_object_get(j, "sz")), 4096);
    assert_true(json_is_real(json_object_get(j, "num")));
    assert_int_equal(qapi_get_uint(tree, "sz", 0), 4096);
    assert_int_equal(qapi_get_uint(j, "u32", 0), 7);
    assert_int_equal(qapi_get_int(r0, "new_state", 0), 3);
    assert_int_equal(qapi_get_int(r0, "absent", -9), -9);
    assert_string_equal(qapi_get_str(r0, "event", NULL), "read_aio");
    json_decref(j);
    json_decref(tree);
    json_decref(flat);

    /* Invalid input is refused with the validator's message. */
    flat = bd_opts_parse("i32=x", NULL, &err);
    tree = bd_opts_crumple(flat, &err);
    assert_null(qapi_keyval_to_json(&test_type, tree, &err));
    assert_string_equal(err->msg, "Parameter 'i32' expects integer");
    bd_error_free(err);
    json_decref(tree);
    json_decref(flat);
}

int unit_run_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qapi_blockdev_json),
        cmocka_unit_test(test_qapi_blockdev_keyval),
        cmocka_unit_test(test_qapi_lists_ranges),
        cmocka_unit_test(test_qapi_keyval_to_json),
        cmocka_unit_test(test_qapi_base),
    };

    return cmocka_run_group_tests_name("qapi", tests, NULL, NULL);
}
