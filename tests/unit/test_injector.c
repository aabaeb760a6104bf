/*
 * tests/unit/test_injector.c - injector/: config-file dialect, rule loading
 * and its messages, the event/state machine, request matching, the
 * extensions and breakpoints, all without a block graph.
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
#include <unistd.h>
#include <cmocka.h>

#include "common/cutils.h"
#include "common/opts.h"
#include "common/rng.h"
#include "injector/injector.h"
#include "tests/unit/unit.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                              */

/* Parse config text; return NULL (error text in *msg) or the sections. */
static json_t *parse_conf(const char *text, char **msg)
{
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    json_t *sections = json_array();
    struct bd_error *err = NULL;

    assert_non_null(f);
    *msg = NULL;
    if (inj_config_parse(f, sections, &err) < 0) {
        *msg = bd_strdup(bd_error_msg(err));
        bd_error_free(err);
        json_decref(sections);
        sections = NULL;
    }
    fclose(f);
    return sections;
}

static void expect_conf_error(const char *text, const char *want)
{
    char *msg = NULL;
    json_t *s = parse_conf(text, &msg);

    assert_null(s);
    assert_non_null(msg);
    assert_string_equal(msg, want);
    free(msg);
}

/* A new engine loaded from "key=value,..." inline options (and an optional
 * config file). Fails the test on a load error. */
static struct inj *load(const char *inline_opts)
{
    struct bd_error *err = NULL;
    struct inj *inj = inj_new("t");
    json_t *o = bd_opts_parse(inline_opts, NULL, &err);

    assert_non_null(o);
    if (inj_load(inj, NULL, o, &err) < 0) {
        fail_msg("load: %s", bd_error_msg(err));
    }
    assert_int_equal(json_object_size(o), 0);
    json_decref(o);
    return inj;
}

static void expect_load_error(const char *inline_opts, const char *want)
{
    struct bd_error *err = NULL;
    struct inj *inj = inj_new("t");
    json_t *o = bd_opts_parse(inline_opts, NULL, &err);

    assert_non_null(o);
    assert_int_equal(inj_load(inj, NULL, o, &err), -EINVAL);
    assert_non_null(err);
    assert_string_equal(bd_error_msg(err), want);
    bd_error_free(err);
    json_decref(o);
    inj_free(inj);
}

/* The errno a request would fail with (0: it passes). */
static int req(struct inj *inj, int iotype, int64_t off, int64_t bytes)
{
    struct inj_verdict v;

    if (!inj_check(inj, iotype, off, bytes, &v)) {
        return 0;
    }
    return v.err;
}

#define RD BD_IOTYPE_READ
#define WR BD_IOTYPE_WRITE

/* ------------------------------------------------------------------ */
/* Config-file dialect (spec §6, E26, E27, E38, E40, E41)               */

static void test_conf_accepts(void **state)
{
    char *msg = NULL;
    json_t *s = parse_conf("# comment line\n\n[inject-error]\n"
                           "  event  =  \"read_aio\"\n  errno = \"0x1c\"\n"
                           "  once = \"yes\"\n[set-state]\nevent = "
                           "\"read_aio\"\nnew_state = \"7\"\n"
                           "[inject-error \"r1\"]\nevent = \"x\" # tail\n"
                           "errno =\"7\"\n", &msg);
    json_t *o;

    (void)state;
    assert_non_null(s);
    assert_int_equal(json_array_size(s), 3);
    o = json_object_get(json_array_get(s, 0), "opts");
    assert_string_equal(bd_opts_peek_str(o, "event"), "read_aio");
    assert_string_equal(bd_opts_peek_str(o, "errno"), "0x1c");
    assert_string_equal(json_string_value(json_object_get(
        json_array_get(s, 2), "id")), "r1");
    o = json_object_get(json_array_get(s, 2), "opts");
    /* Text after the closing quote is ignored; no blank after '=' is ok. */
    assert_string_equal(bd_opts_peek_str(o, "event"), "x");
    assert_string_equal(bd_opts_peek_str(o, "errno"), "7");
    json_decref(s);
}

static void test_conf_quirks(void **state)
{
    char *msg = NULL;
    json_t *s;

    (void)state;
    /* Unquoted values are silently empty (E26/E27). */
    s = parse_conf("[inject-error]\nevent = read_aio\n", &msg);
    assert_non_null(s);
    assert_string_equal(bd_opts_peek_str(json_object_get(
        json_array_get(s, 0), "opts"), "event"), "");
    json_decref(s);
    expect_conf_error("[inject-error]\nevent = \"read_aio\"\nerrno = 28\n",
                      "Parameter 'errno' expects a number");
    expect_conf_error("[inject-error]\nevent = \"read_aio\"\nerrno=\"7\"\n",
                      "Invalid parameter 'errno=\"7\"'");
    expect_conf_error("[inject-error]\n   \nevent = \"read_aio\"\n",
                      "parse error");
    expect_conf_error("[inject-error]\nevent = \"read_aio\"\ngarbage\n",
                      "Invalid parameter 'garbage'");
    expect_conf_error("garbage\n", "no group defined");
    expect_conf_error("event = \"read_aio\"\n", "no group defined");
    expect_conf_error("[inject-error]\n  # indented comment\n",
                      "Invalid parameter '#'");
    expect_conf_error("[inject-error\nevent = \"read_aio\"\n",
                      "There is no option group 'inject-error\n'");
    expect_conf_error("[inject-errors]\n", "There is no option group "
                      "'inject-errors'");
    expect_conf_error("[inject-error]\nfoo = \"1\"\n",
                      "Invalid parameter 'foo'");
    expect_conf_error("[inject-error]\nonce = \"maybe\"\n",
                      "Parameter 'once' expects 'on' or 'off'");
    expect_conf_error("[inject-error \"r1\"]\n[inject-error \"r1\"]\n",
                      "Duplicate ID 'r1' for inject-error");
    /* Same id in different groups is fine. */
    s = parse_conf("[inject-error \"r1\"]\n[set-state \"r1\"]\n", &msg);
    assert_non_null(s);
    json_decref(s);
}

/* Lines longer than the reader's buffer are parsed in pieces. */
static void test_conf_long_line(void **state)
{
    char *text = bd_malloc(3000);
    char *msg = NULL;
    json_t *s;

    (void)state;
    strcpy(text, "[inject-error]\nevent = \"");
    memset(text + strlen(text), 'a', 2000);
    strcpy(text + 24 + 2000, "\"\n");
    s = parse_conf(text, &msg);
    /* The second piece is a word with no '=': an invalid key. */
    assert_null(s);
    assert_non_null(msg);
    assert_true(!strncmp(msg, "Invalid parameter 'aaa", 22));
    free(msg);
    free(text);
}

static void test_config_file_errors(void **state)
{
    struct bd_error *err = NULL;
    struct inj *inj = inj_new("t");

    (void)state;
    assert_true(inj_load(inj, "/nonexistent/x.conf", NULL, &err) < 0);
    assert_string_equal(bd_error_msg(err), "Could not read blkdebug config "
                        "file: No such file or directory");
    bd_error_free(err);
    inj_free(inj);
}

/* ------------------------------------------------------------------ */
/* Inline options (spec §2.4, E31 and the list messages)                */

static void test_inline_messages(void **state)
{
    (void)state;
    expect_load_error("inject-error.event=read_aio,inject-error.0.event=x",
                      "Unknown option '0.event' for [inject-error]");
    expect_load_error("inject-error.0.event=read_aio,inject-error.foo=1",
                      "Unused option 'foo' for [inject-error]");
    expect_load_error("inject-error.0.event=read_aio,inject-error.errno=5",
                      "Unknown option '0.event' for [inject-error]");
    expect_load_error("inject-error.0.event=read_aio,inject-error.1=x",
                      "[inject-error] section (index 1) does not consist of "
                      "keys");
    /* Stray keys are reported before anything inside the entries. */
    expect_load_error("inject-error.0.event=read_aio,inject-error.0.errno=x,"
                      "inject-error.foo=1",
                      "Unused option 'foo' for [inject-error]");
    expect_load_error("inject-error.0=x", "[inject-error] section (index 0) "
                      "does not consist of keys");
    expect_load_error("inject-error.0.event=read_aio,inject-error.0.foo=1",
                      "[inject-error] section doesn't support the option "
                      "'foo'");
    expect_load_error("inject-error.event=read_aio,inject-error.foo=1",
                      "Unknown option 'foo' for [inject-error]");
    expect_load_error("inject-error.1.event=read_aio",
                      "Unused option '1.event' for [inject-error]");
    expect_load_error("inject-error.errno=5", "Missing event name for rule");
    expect_load_error("inject-error.event=read_aio,inject-error.errno=x",
                      "Parameter 'errno' expects a number");
    expect_load_error("set-state.event=read_aio,set-state.new_state=x",
                      "Parameter 'new_state' expects a number");
    expect_load_error("inject-error.event=none,inject-error.iotype=bogus",
                      "invalid parameter value: bogus");
    expect_load_error("inject-error.event=l2_alloc.write",
                      "invalid parameter value: l2_alloc.write");
    expect_load_error("inject-error.event=none,inject-error.probability=2",
                      "Parameter 'probability' expects a number between 0 "
                      "and 1");
    expect_load_error("inject-error.event=none,inject-error.sectors=5-3",
                      "Parameter 'sectors' expects a list of sectors "
                      "(N, N-M or N+LEN), not '5-3'");
    expect_load_error("inject-error.event=none,inject-error.torn=1,"
                      "inject-error.lost=on", "Only one of 'delay-ns', "
                      "'corrupt', 'torn' and 'lost' may be given in a rule");
    /* The event is checked before the iotype, as in QEMU. */
    expect_load_error("inject-error.event=bad,inject-error.iotype=bad2",
                      "invalid parameter value: bad");
}

/* ------------------------------------------------------------------ */
/* State machine and arming (spec §4, E7-E13, E29)                      */

static void test_default_errno_and_persistence(void **state)
{
    struct inj *inj = load("inject-error.event=read_aio");

    (void)state;
    assert_int_equal(req(inj, RD, 0, 512), 0);      /* nothing armed yet */
    inj_event(inj, BD_EV_READ_AIO);
    assert_int_equal(req(inj, RD, 0, 512), EIO);
    /* Armed rules stay armed and fail other default iotypes (E1). */
    assert_int_equal(req(inj, WR, 4096, 512), EIO);
    assert_int_equal(req(inj, BD_IOTYPE_FLUSH, 0, 0), EIO);
    assert_int_equal(req(inj, BD_IOTYPE_BLOCK_STATUS, 0, 512), 0);
    inj_event(inj, BD_EV_WRITE_AIO);                /* unrelated event */
    assert_int_equal(req(inj, RD, 0, 512), EIO);
    inj_free(inj);
}

static void test_state_machine(void **state)
{
    struct inj *inj;

    (void)state;
    /* E7: set-state on write_aio 1->2 enables the read_aio rule. */
    inj = load("set-state.event=write_aio,set-state.state=1,"
               "set-state.new_state=2,inject-error.event=read_aio,"
               "inject-error.state=2");
    assert_int_equal(inj_get_state(inj), 1);
    inj_event(inj, BD_EV_READ_AIO);
    assert_int_equal(req(inj, RD, 0, 512), 0);
    inj_event(inj, BD_EV_WRITE_AIO);
    assert_int_equal(inj_get_state(inj), 2);
    inj_event(inj, BD_EV_READ_AIO);
    assert_int_equal(req(inj, RD, 0, 512), EIO);
    inj_free(inj);

    /* E12: rules of one event see the state from before it. */
    inj = load("set-state.event=read_aio,set-state.state=1,"
               "set-state.new_state=2,inject-error.event=read_aio,"
               "inject-error.state=2");
    inj_event(inj, BD_EV_READ_AIO);
    assert_int_equal(req(inj, RD, 0, 512), 0);
    inj_event(inj, BD_EV_READ_AIO);
    assert_int_equal(req(inj, RD, 0, 512), EIO);
    inj_free(inj);

    /* E10: of two matching set-state rules the first created wins. */
    inj = load("set-state.0.event=write_aio,set-state.0.new_state=2,"
               "set-state.1.event=write_aio,set-state.1.new_state=3");
    inj_event(inj, BD_EV_WRITE_AIO);
    assert_int_equal(inj_get_state(inj), 2);
    inj_free(inj);

    /* E29: set-state without new_state strands the engine in state 0. */
    inj = load("set-state.event=write_aio,inject-error.event=read_aio,"
               "inject-error.state=1");
    inj_event(inj, BD_EV_WRITE_AIO);
    assert_int_equal(inj_get_state(inj), 0);
    inj_event(inj, BD_EV_READ_AIO);
    assert_int_equal(req(inj, RD, 0, 512), 0);
    inj_free(inj);

    /* E39: a negative state never equals the engine's. */
    inj = load("inject-error.event=none,inject-error.state=-1");
    inj_event(inj, BD_EV_NONE);
    assert_int_equal(req(inj, RD, 0, 512), 0);
    inj_free(inj);
}

static void test_order_and_replacement(void **state)
{
    struct inj *inj;

    (void)state;
    /* E9b: the first configured matching rule decides. */
    inj = load("inject-error.0.event=read_aio,inject-error.0.errno=28,"
               "inject-error.1.event=read_aio,inject-error.1.errno=5");
    inj_event(inj, BD_EV_READ_AIO);
    assert_int_equal(req(inj, RD, 0, 512), ENOSPC);
    inj_free(inj);

    /* E11: errno 0 matches, lets the request pass and shadows. */
    inj = load("inject-error.0.event=read_aio,inject-error.0.errno=0,"
               "inject-error.1.event=read_aio,inject-error.1.errno=5");
    inj_event(inj, BD_EV_READ_AIO);
    assert_int_equal(req(inj, RD, 0, 512), 0);
    inj_free(inj);

    /* E13: a later event with a matching rule replaces the armed set. */
    inj = load("inject-error.0.event=none,inject-error.0.iotype=read,"
               "inject-error.1.event=pwritev,inject-error.1.iotype=write,"
               "inject-error.1.errno=28");
    inj_event(inj, BD_EV_NONE);
    assert_int_equal(req(inj, RD, 0, 512), EIO);
    inj_event(inj, BD_EV_PWRITEV);
    assert_int_equal(req(inj, WR, 0, 512), ENOSPC);
    assert_int_equal(req(inj, RD, 0, 512), 0);
    inj_free(inj);

    /* Negative and wrapped errno values let the request pass (QEMU). */
    inj = load("inject-error.event=none,inject-error.errno=0x100000000");
    inj_event(inj, BD_EV_NONE);
    assert_int_equal(req(inj, RD, 0, 512), 0);
    inj_free(inj);
}

static void test_once_and_iotype(void **state)
{
    struct inj *inj;
    json_t *q;

    (void)state;
    inj = load("inject-error.event=read_aio,inject-error.once=on");
    inj_event(inj, BD_EV_READ_AIO);
    assert_int_equal(req(inj, RD, 0, 512), EIO);
    assert_int_equal(req(inj, RD, 0, 512), 0);
    inj_event(inj, BD_EV_READ_AIO);
    assert_int_equal(req(inj, RD, 0, 512), 0);    /* deleted for good */
    q = inj_query(inj);
    assert_int_equal(json_array_size(json_object_get(q, "rules")), 0);
    json_decref(q);
    inj_free(inj);

    inj = load("inject-error.event=read_aio,inject-error.iotype=write");
    inj_event(inj, BD_EV_READ_AIO);
    assert_int_equal(req(inj, RD, 0, 512), 0);
    assert_int_equal(req(inj, WR, 0, 512), EIO);
    inj_free(inj);

    inj = load("inject-error.event=none,inject-error.iotype=block-status");
    inj_event(inj, BD_EV_NONE);
    assert_int_equal(req(inj, BD_IOTYPE_BLOCK_STATUS, 0, 512), EIO);
    assert_int_equal(req(inj, RD, 0, 512), 0);
    inj_free(inj);
}

/* ------------------------------------------------------------------ */
/* Sector matching (spec §5.2, E6, E39) and ranges                      */

static void test_sector_match(void **state)
{
    struct inj *inj = load("inject-error.event=none,inject-error.sector=8");

    (void)state;
    inj_event(inj, BD_EV_NONE);
    assert_int_equal(req(inj, RD, 0, 4096), 0);
    assert_int_equal(req(inj, RD, 4096, 512), EIO);
    assert_int_equal(req(inj, RD, 3584, 1024), EIO);
    assert_int_equal(req(inj, RD, 4608, 512), 0);
    /* Only the byte sector*512 counts, not the whole sector. */
    assert_int_equal(req(inj, RD, 4097, 100), 0);
    assert_int_equal(req(inj, WR, 0, 8192), EIO);
    /* A flush has no range: sector rules never fail it. */
    assert_int_equal(req(inj, BD_IOTYPE_FLUSH, 0, 0), 0);
    inj_free(inj);

    inj = load("inject-error.event=none,inject-error.sector=-1");
    inj_event(inj, BD_EV_NONE);
    assert_int_equal(req(inj, RD, 8192, 512), EIO);
    inj_free(inj);

    inj = load("inject-error.event=none,inject-error.sector=0x8");
    inj_event(inj, BD_EV_NONE);
    assert_int_equal(req(inj, RD, 0, 512), 0);
    assert_int_equal(req(inj, RD, 4096, 512), EIO);
    inj_free(inj);
}

static void test_sector_ranges(void **state)
{
    struct inj *inj = load("inject-error.0.event=none,"
                           "inject-error.0.sector=100,"
                           "inject-error.0.length=8,"
                           "inject-error.0.errno=28,"
                           "inject-error.1.event=none,"
                           "inject-error.1.sectors=1;3-4;1000+2");

    (void)state;
    inj_event(inj, BD_EV_NONE);
    assert_int_equal(req(inj, RD, 100 * 512 - 512, 512), 0);
    assert_int_equal(req(inj, RD, 100 * 512 + 7, 1), ENOSPC);
    assert_int_equal(req(inj, RD, 107 * 512 + 511, 1), ENOSPC);
    assert_int_equal(req(inj, RD, 108 * 512, 512), 0);
    assert_int_equal(req(inj, RD, 0, 512), 0);
    assert_int_equal(req(inj, RD, 512, 512), EIO);
    assert_int_equal(req(inj, RD, 1024, 512), 0);
    assert_int_equal(req(inj, RD, 4 * 512 + 100, 1), EIO);
    assert_int_equal(req(inj, RD, 1001 * 512, 512), EIO);
    assert_int_equal(req(inj, RD, 1002 * 512, 512), 0);
    /* A request covering both: the first configured rule wins. */
    assert_int_equal(req(inj, RD, 0, 1 << 20), ENOSPC);
    inj_free(inj);
}

/* Many sector rules behave exactly like a linear scan would. */
static void test_index_matches_linear(void **state)
{
    struct bd_error *err = NULL;
    struct inj *inj = inj_new("t");
    json_t *o = json_object();
    int i;

    (void)state;
    for (i = 0; i < 500; i++) {
        char k[64];

        snprintf(k, sizeof(k), "inject-error.%d.event", i);
        json_object_set_new(o, k, json_string("none"));
        snprintf(k, sizeof(k), "inject-error.%d.sector", i);
        json_object_set_new(o, k, json_integer((i * 7919) % 4000));
        snprintf(k, sizeof(k), "inject-error.%d.errno", i);
        json_object_set_new(o, k, json_integer(1 + i % 100));
    }
    assert_int_equal(inj_load(inj, NULL, o, &err), 0);
    json_decref(o);
    inj_event(inj, BD_EV_NONE);
    for (i = 0; i < 4000; i += 3) {
        int64_t off = (int64_t)i * 512 - 256;
        int64_t bytes = 512 * (1 + i % 5);
        int want = 0;
        int j;

        if (off < 0) {
            off = 0;
        }
        for (j = 0; j < 500; j++) {
            int64_t s = (int64_t)((j * 7919) % 4000) * 512;

            if (off <= s && s < off + bytes) {
                want = 1 + j % 100;
                break;
            }
        }
        assert_int_equal(req(inj, RD, off, bytes), want);
    }
    inj_free(inj);
}

/* Same with ranges of every width (some too wide for the block filter)
 * and requests from one byte to 1 MiB. */
static void test_index_ranges_linear(void **state)
{
    struct bd_error *err = NULL;
    struct bd_rng rng;
    struct inj *inj = inj_new("t");
    json_t *o = json_object();
    int64_t start[300];
    int64_t end[300];
    int i;

    (void)state;
    bd_rng_seed(&rng, 99);
    for (i = 0; i < 300; i++) {
        char k[64];
        uint64_t sec = bd_rng_next(&rng) % 20000;
        uint64_t len = i % 10 == 0 ? 1 + bd_rng_next(&rng) % 3000
                                   : 1 + bd_rng_next(&rng) % 16;
        bool point = i % 3 == 0;

        snprintf(k, sizeof(k), "inject-error.%d.event", i);
        json_object_set_new(o, k, json_string("none"));
        snprintf(k, sizeof(k), "inject-error.%d.sector", i);
        json_object_set_new(o, k, json_integer((json_int_t)sec));
        snprintf(k, sizeof(k), "inject-error.%d.errno", i);
        json_object_set_new(o, k, json_integer(1 + i % 200));
        start[i] = (int64_t)sec * 512;
        if (point) {
            end[i] = start[i] + 1;
        } else {
            snprintf(k, sizeof(k), "inject-error.%d.length", i);
            json_object_set_new(o, k, json_integer((json_int_t)len));
            end[i] = start[i] + (int64_t)len * 512;
        }
    }
    assert_int_equal(inj_load(inj, NULL, o, &err), 0);
    json_decref(o);
    inj_event(inj, BD_EV_NONE);
    for (i = 0; i < 3000; i++) {
        int64_t off = (int64_t)(bd_rng_next(&rng) % (20000 * 512));
        int64_t bytes = i % 4 == 0 ? (int64_t)(1 + bd_rng_next(&rng) %
                                               (1 << 20))
                                   : (int64_t)(1 + bd_rng_next(&rng) % 8192);
        int want = 0;
        int j;

        for (j = 0; j < 300; j++) {
            if (start[j] < off + bytes && end[j] > off) {
                want = 1 + j % 200;
                break;
            }
        }
        assert_int_equal(req(inj, RD, off, bytes), want);
    }
    inj_free(inj);
}

/* ------------------------------------------------------------------ */
/* Extensions                                                           */

static void test_skip_count_hits(void **state)
{
    struct inj *inj = load("inject-error.event=none,inject-error.skip=2,"
                           "inject-error.count=3");
    json_t *q;
    json_t *r;
    int i;
    int fails = 0;

    (void)state;
    inj_event(inj, BD_EV_NONE);
    assert_int_equal(req(inj, RD, 0, 512), 0);
    assert_int_equal(req(inj, RD, 0, 512), 0);
    for (i = 0; i < 10; i++) {
        fails += req(inj, RD, 0, 512) != 0;
    }
    assert_int_equal(fails, 3);
    q = inj_query(inj);
    r = json_array_get(json_object_get(q, "rules"), 0);
    assert_int_equal(json_integer_value(json_object_get(r, "hits")), 3);
    assert_int_equal(json_integer_value(json_object_get(r, "matches")), 5);
    assert_true(json_is_true(json_object_get(r, "armed")));
    json_decref(q);
    assert_int_equal(inj_total_hits(inj), 3);
    inj_free(inj);
}

/* The same seed fails the same requests; a different seed others. */
static void test_probability_deterministic(void **state)
{
    int pattern[2][200];
    int s;
    int i;
    int n = 0;
    int differ = 0;

    (void)state;
    for (s = 0; s < 2; s++) {
        struct inj *inj = load("inject-error.event=none,"
                               "inject-error.probability=0.5");

        inj_set_seed(inj, 42);
        inj_event(inj, BD_EV_NONE);
        /* Ask in a different order the second time. */
        for (i = 0; i < 200; i++) {
            int k = s ? 199 - i : i;

            pattern[s][k] = req(inj, RD, (int64_t)k * 512, 512);
        }
        inj_free(inj);
    }
    for (i = 0; i < 200; i++) {
        assert_int_equal(pattern[0][i], pattern[1][i]);
        n += pattern[0][i] != 0;
    }
    assert_in_range(n, 60, 140);
    {
        struct inj *inj = load("inject-error.event=none,"
                               "inject-error.probability=0.5");

        inj_set_seed(inj, 43);
        inj_event(inj, BD_EV_NONE);
        for (i = 0; i < 200; i++) {
            differ += (req(inj, RD, (int64_t)i * 512, 512) != 0) !=
                      (pattern[0][i] != 0);
        }
        inj_free(inj);
    }
    assert_true(differ > 20);
}

static void test_actions(void **state)
{
    struct inj *inj;
    struct inj_verdict v;
    uint8_t a[64];
    uint8_t b[64];
    int i;
    int bits = 0;

    (void)state;
    inj = load("inject-error.0.event=none,inject-error.0.delay-ns=1000,"
               "inject-error.0.sector=0,"
               "inject-error.1.event=none,inject-error.1.torn=100,"
               "inject-error.1.errno=28,inject-error.1.sector=8,"
               "inject-error.2.event=none,inject-error.2.lost=on,"
               "inject-error.2.sector=16,"
               "inject-error.3.event=none,inject-error.3.corrupt=3,"
               "inject-error.3.sector=24");
    inj_event(inj, BD_EV_NONE);
    assert_true(inj_check(inj, RD, 0, 512, &v));
    assert_int_equal(v.delay_ns, 1000);
    assert_int_equal(v.err, 0);
    assert_true(inj_check(inj, WR, 4096, 512, &v));
    assert_int_equal(v.torn, 100);
    assert_int_equal(v.err, ENOSPC);
    /* torn defaults to writes only */
    assert_false(inj_check(inj, RD, 4096, 512, &v));
    assert_true(inj_check(inj, WR, 8192, 512, &v));
    assert_true(v.lost);
    assert_false(inj_check(inj, RD, 8192, 512, &v));
    assert_true(inj_check(inj, RD, 12288, 64, &v));
    assert_int_equal(v.corrupt, 3);
    memset(a, 0, sizeof(a));
    inj_corrupt_buf(&v, a, sizeof(a));
    memset(b, 0, sizeof(b));
    inj_corrupt_buf(&v, b, sizeof(b));
    assert_memory_equal(a, b, sizeof(a));
    for (i = 0; i < 64; i++) {
        bits += __builtin_popcount(a[i]);
    }
    assert_in_range(bits, 1, 3);
    inj_free(inj);
}

struct logged {
    int n;
    char line[256];
    char event[64];
};

static void log_hook(void *opaque, const char *line, json_t *detail)
{
    struct logged *l = opaque;

    l->n++;
    if (line) {
        snprintf(l->line, sizeof(l->line), "%s", line);
    }
    snprintf(l->event, sizeof(l->event), "%s",
             json_string_value(json_object_get(detail, "iotype")));
    json_decref(detail);
}

static void test_log_line(void **state)
{
    struct inj *inj = load("inject-error.event=none,inject-error.errno=28");
    struct logged l = { 0 };
    struct inj_hooks h = { .injected = log_hook, .opaque = &l };

    (void)state;
    inj_set_hooks(inj, &h);
    inj_event(inj, BD_EV_NONE);
    assert_int_equal(req(inj, WR, 4096, 512), ENOSPC);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.line, "");       /* log off: event only */
    inj_set_log(inj, true);
    assert_int_equal(req(inj, RD, 0, 1024), ENOSPC);
    assert_string_equal(l.line, "blkdebug-inject node=t rule=1 event=none "
                        "action=errno:28 iotype=read offset=0 bytes=1024");
    assert_string_equal(l.event, "read");
    inj_free(inj);
}

static void test_runtime_rules(void **state)
{
    struct bd_error *err = NULL;
    struct inj *inj = inj_new("t");
    json_t *f = json_pack("{s:s, s:i}", "event", "read_aio", "errno", 7);
    int id;
    int id2;

    (void)state;
    id = inj_add_rule(inj, INJ_KIND_INJECT, f, &err);
    json_decref(f);
    assert_true(id > 0);
    inj_event(inj, BD_EV_READ_AIO);
    assert_int_equal(req(inj, RD, 0, 512), 7);
    f = json_pack("{s:s, s:i}", "event", "write_aio", "new_state", 5);
    id2 = inj_add_rule(inj, INJ_KIND_SET_STATE, f, &err);
    json_decref(f);
    assert_true(id2 > id);
    inj_event(inj, BD_EV_WRITE_AIO);
    assert_int_equal(inj_get_state(inj), 5);
    assert_int_equal(inj_remove_rule_kind(inj, id, INJ_KIND_SET_STATE),
                     -ENOENT);
    assert_int_equal(inj_remove_rule(inj, id), 0);
    assert_int_equal(req(inj, RD, 0, 512), 0);   /* disarmed with it */
    assert_int_equal(inj_remove_rule(inj, id), -ENOENT);
    f = json_pack("{s:s, s:s}", "event", "read_aio", "bogus", "1");
    assert_true(inj_add_rule(inj, INJ_KIND_INJECT, f, &err) < 0);
    assert_string_equal(bd_error_msg(err), "Parameter 'bogus' is unexpected");
    bd_error_free(err);
    json_decref(f);
    inj_set_state(inj, 9);
    assert_int_equal(inj_get_state(inj), 9);
    inj_free(inj);
}

/* ------------------------------------------------------------------ */
/* Breakpoints (spec §7, E22-E25)                                       */

struct bp_thread {
    struct inj *inj;
    int done;
    pthread_mutex_t lock;
};

static void *raise_write_aio(void *opaque)
{
    struct bp_thread *t = opaque;

    inj_event(t->inj, BD_EV_WRITE_AIO);
    pthread_mutex_lock(&t->lock);
    t->done = 1;
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

static int bp_done(struct bp_thread *t)
{
    int d;

    pthread_mutex_lock(&t->lock);
    d = t->done;
    pthread_mutex_unlock(&t->lock);
    return d;
}

static void wait_suspended(struct inj *inj, const char *tag)
{
    while (!inj_is_suspended(inj, tag)) {
        usleep(1000);
    }
}

struct msgs {
    char text[512];
};

static void on_susp(void *opaque, const char *tag)
{
    struct msgs *m = opaque;

    strcat(m->text, "S:");
    strcat(m->text, tag);
    strcat(m->text, " ");
}

static void on_resume(void *opaque, const char *tag)
{
    struct msgs *m = opaque;

    strcat(m->text, "R:");
    strcat(m->text, tag);
    strcat(m->text, " ");
}

static void test_breakpoints(void **state)
{
    struct inj *inj = inj_new("t");
    struct msgs m = { "" };
    struct inj_hooks h = { .suspended = on_susp, .resumed = on_resume,
                           .opaque = &m };
    struct bp_thread t = { inj, 0, PTHREAD_MUTEX_INITIALIZER };
    pthread_t th;

    (void)state;
    inj_set_hooks(inj, &h);
    assert_int_equal(inj_break(inj, "no_such_event", "T"), -ENOENT);
    assert_int_equal(inj_resume(inj, "nosuchtag"), -ENOENT);
    assert_int_equal(inj_remove_break(inj, "nosuchtag"), -ENOENT);

    /* E25: two breakpoints on one event, one resume each. */
    assert_int_equal(inj_break(inj, "write_aio", "A"), 0);
    assert_int_equal(inj_break(inj, "write_aio", "B"), 0);
    pthread_create(&th, NULL, raise_write_aio, &t);
    wait_suspended(inj, "A");
    assert_true(inj_is_suspended(inj, "B"));
    assert_int_equal(inj_resume(inj, "A"), 0);
    assert_false(bp_done(&t));
    assert_int_equal(inj_resume(inj, "B"), 0);
    pthread_join(th, NULL);
    assert_true(bp_done(&t));
    assert_string_equal(m.text, "S:B S:A R:A R:B ");

    /* E22: breakpoints fire once. */
    t.done = 0;
    inj_event(inj, BD_EV_WRITE_AIO);

    /* E24: remove_break resumes but reports ENOENT when no breakpoint
     * was left to delete. */
    m.text[0] = '\0';
    assert_int_equal(inj_break(inj, "write_aio", "A"), 0);
    pthread_create(&th, NULL, raise_write_aio, &t);
    wait_suspended(inj, "A");
    assert_int_equal(inj_remove_break(inj, "A"), -ENOENT);
    pthread_join(th, NULL);
    assert_string_equal(m.text, "S:A R:A ");
    assert_int_equal(inj_break(inj, "write_aio", "A"), 0);
    assert_int_equal(inj_remove_break(inj, "A"), 0);
    inj_event(inj, BD_EV_WRITE_AIO);     /* would hang if still set */
    inj_free(inj);
}

/* A suspended request does not hold up others (events or checks). */
static void test_suspend_holds_only_itself(void **state)
{
    struct inj *inj = load("inject-error.event=read_aio");
    struct bp_thread t = { inj, 0, PTHREAD_MUTEX_INITIALIZER };
    json_t *q;
    pthread_t th;

    (void)state;
    assert_int_equal(inj_break(inj, "write_aio", "A"), 0);
    pthread_create(&th, NULL, raise_write_aio, &t);
    wait_suspended(inj, "A");
    inj_event(inj, BD_EV_READ_AIO);
    assert_int_equal(req(inj, RD, 0, 512), EIO);
    q = inj_query(inj);
    assert_string_equal(json_string_value(json_object_get(json_array_get(
        json_object_get(q, "suspended"), 0), "tag")), "A");
    json_decref(q);
    /* Freeing the engine resumes what is left. */
    inj_resume_all(inj);
    pthread_join(th, NULL);
    inj_free(inj);
}

/* Shutdown: every breakpoint goes, pending or holding a request, so the
 * suspended thread finishes and later events pass. */
static void test_release_breaks(void **state)
{
    struct inj *inj = load("");
    struct bp_thread t = { inj, 0, PTHREAD_MUTEX_INITIALIZER };
    json_t *q;
    pthread_t th;

    (void)state;
    assert_int_equal(inj_break(inj, "write_aio", "A"), 0);
    assert_int_equal(inj_break(inj, "read_aio", "B"), 0);
    pthread_create(&th, NULL, raise_write_aio, &t);
    wait_suspended(inj, "A");
    inj_release_breaks(inj);
    pthread_join(th, NULL);                  /* hangs if A still held */
    assert_false(inj_is_suspended(inj, "A"));
    inj_event(inj, BD_EV_READ_AIO);          /* hangs if B still set */
    assert_int_equal(inj_remove_break(inj, "B"), -ENOENT);
    q = inj_query(inj);
    assert_int_equal(json_array_size(json_object_get(q, "suspended")), 0);
    json_decref(q);
    inj_free(inj);
}

/* Requests, events, rule changes and queries from several threads at once:
 * nothing may crash, deadlock or leak (run under the sanitizers, TSan
 * included), and counters add up. */
struct stress {
    struct inj *inj;
    int seed;
    int stop;
    long fails;
};

static void *stress_io(void *opaque)
{
    struct stress *st = opaque;
    struct bd_rng r;
    int i;
    long fails = 0;

    bd_rng_seed(&r, (uint64_t)st->seed);
    for (i = 0; i < 20000; i++) {
        if (i % 7 == 0) {
            inj_event(st->inj, (enum bd_event)(bd_rng_next(&r) % 4 ?
                                               BD_EV_READ_AIO :
                                               BD_EV_WRITE_AIO));
        }
        fails += req(st->inj, (int)(bd_rng_next(&r) % 2),
                     (int64_t)(bd_rng_next(&r) % 1024) * 512, 4096) != 0;
    }
    st->fails = fails;
    return NULL;
}

static void test_concurrency(void **state)
{
    struct inj *inj = load("inject-error.0.event=read_aio,"
                           "inject-error.0.sectors=0-100;500-600,"
                           "inject-error.1.event=write_aio,"
                           "inject-error.1.probability=0.3,"
                           "set-state.event=write_aio,set-state.new_state=2");
    struct stress st[4];
    pthread_t th[4];
    struct bd_error *err = NULL;
    int i;
    long total = 0;

    (void)state;
    for (i = 0; i < 4; i++) {
        st[i].inj = inj;
        st[i].seed = i + 1;
        pthread_create(&th[i], NULL, stress_io, &st[i]);
    }
    for (i = 0; i < 300; i++) {
        json_t *f = json_pack("{s:s, s:i, s:i}", "event", "read_aio",
                              "sector", i % 50, "errno", 7);
        int id = inj_add_rule(inj, INJ_KIND_INJECT, f, &err);
        json_t *q;

        json_decref(f);
        assert_true(id > 0);
        if (i % 3 == 0) {
            inj_arm_rule(inj, id);
        }
        q = inj_query(inj);
        json_decref(q);
        assert_int_equal(inj_remove_rule(inj, id), 0);
        inj_set_state(inj, 1 + i % 3);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        total += st[i].fails;
    }
    assert_true(total > 0);
    /* Every fault was an errno the callers saw, and only those. */
    assert_int_equal((uint64_t)total, inj_total_hits(inj));
    inj_free(inj);
}

int unit_run_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conf_accepts),
        cmocka_unit_test(test_conf_quirks),
        cmocka_unit_test(test_conf_long_line),
        cmocka_unit_test(test_config_file_errors),
        cmocka_unit_test(test_inline_messages),
        cmocka_unit_test(test_default_errno_and_persistence),
        cmocka_unit_test(test_state_machine),
        cmocka_unit_test(test_order_and_replacement),
        cmocka_unit_test(test_once_and_iotype),
        cmocka_unit_test(test_sector_match),
        cmocka_unit_test(test_sector_ranges),
        cmocka_unit_test(test_index_matches_linear),
        cmocka_unit_test(test_index_ranges_linear),
        cmocka_unit_test(test_skip_count_hits),
        cmocka_unit_test(test_probability_deterministic),
        cmocka_unit_test(test_actions),
        cmocka_unit_test(test_log_line),
        cmocka_unit_test(test_runtime_rules),
        cmocka_unit_test(test_breakpoints),
        cmocka_unit_test(test_suspend_holds_only_itself),
        cmocka_unit_test(test_release_breaks),
        cmocka_unit_test(test_concurrency),
    };

    return cmocka_run_group_tests_name("injector", tests, NULL, NULL);
}
