/*
 * tests/unit/test_iocmd.c - `blkrig io`: qemu-io's number and report
 * formats (common/iofmt.c), the command parser and dispatcher, and the
 * breakpoint commands driven against a test driver that suspends requests
 * the way blkdebug does (cli/io.c and cli/io-cmds.c are compiled in, so
 * their static helpers are reachable).
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

#include "cli/io.c"
#include "cli/io-cmds.c"
#include "common/iofmt.h"
#include "tests/unit/unit.h"

/* ------------------------------------------------------------------ */
/* A test driver with blkdebug-style breakpoints on read_aio/write_aio   */

#define TD_SIZE (1 << 20)
#define TD_MAX 8

struct td_bp {
    char event[16];
    char tag[32];
    bool used;
};

struct td_susp {
    char tag[32];
    bool used;
    bool resumed;
};

struct td_state {
    uint8_t *data;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct td_bp bps[TD_MAX];
    struct td_susp susp[TD_MAX];
    int hits;
};

static int td_open(struct bd_node *bs, json_t *options, int flags,
                   struct bd_error **errp)
{
    struct td_state *s = bs->opaque;

    (void)options;
    (void)flags;
    (void)errp;
    s->data = bd_malloc0(TD_SIZE);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    return 0;
}

static void td_close(struct bd_node *bs)
{
    struct td_state *s = bs->opaque;

    free(s->data);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
}

static int64_t td_getlength(struct bd_node *bs)
{
    (void)bs;
    return TD_SIZE;
}

/* Suspend the calling request when a breakpoint on ev exists: the
 * breakpoint fires once, the request waits until resumed. */
static void td_check(struct td_state *s, const char *ev)
{
    int i;
    int slot = -1;

    pthread_mutex_lock(&s->lock);
    for (i = 0; i < TD_MAX; i++) {
        if (s->bps[i].used && !strcmp(s->bps[i].event, ev)) {
            break;
        }
    }
    if (i < TD_MAX) {
        for (slot = 0; slot < TD_MAX && s->susp[slot].used; slot++) {
        }
        assert_true(slot < TD_MAX);
        s->bps[i].used = false;
        s->hits++;
        memcpy(s->susp[slot].tag, s->bps[i].tag, sizeof(s->susp[slot].tag));
        s->susp[slot].used = true;
        s->susp[slot].resumed = false;
        printf("blkdebug: Suspended request '%s'\n", s->susp[slot].tag);
        fflush(stdout);
        while (!s->susp[slot].resumed) {
            pthread_cond_wait(&s->cond, &s->lock);
        }
        s->susp[slot].used = false;
    }
    pthread_mutex_unlock(&s->lock);
}

static int td_preadv(struct bd_node *bs, int64_t off, int64_t bytes,
                     struct bd_qiov *qiov, int flags)
{
    struct td_state *s = bs->opaque;

    (void)flags;
    td_check(s, "read_aio");
    bd_qiov_from_buf(qiov, 0, s->data + off, (size_t)bytes);
    return 0;
}

static int td_pwritev(struct bd_node *bs, int64_t off, int64_t bytes,
                      struct bd_qiov *qiov, int flags)
{
    struct td_state *s = bs->opaque;

    (void)flags;
    td_check(s, "write_aio");
    bd_qiov_to_buf(qiov, 0, s->data + off, (size_t)bytes);
    return 0;
}

static int td_breakpoint(struct bd_node *bs, const char *event,
                         const char *tag)
{
    struct td_state *s = bs->opaque;
    int i;

    if (strcmp(event, "read_aio") && strcmp(event, "write_aio")) {
        return -ENOENT;
    }
    pthread_mutex_lock(&s->lock);
    for (i = 0; i < TD_MAX && s->bps[i].used; i++) {
    }
    assert_true(i < TD_MAX);
    snprintf(s->bps[i].event, sizeof(s->bps[i].event), "%s", event);
    snprintf(s->bps[i].tag, sizeof(s->bps[i].tag), "%s", tag);
    s->bps[i].used = true;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

static int td_remove_breakpoint(struct bd_node *bs, const char *tag)
{
    struct td_state *s = bs->opaque;
    int removed = 0;
    int i;

    pthread_mutex_lock(&s->lock);
    for (i = 0; i < TD_MAX; i++) {
        if (s->bps[i].used && !strcmp(s->bps[i].tag, tag)) {
            s->bps[i].used = false;
            removed++;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return removed ? 0 : -ENOENT;
}

static int td_resume(struct bd_node *bs, const char *tag)
{
    struct td_state *s = bs->opaque;
    int i;

    pthread_mutex_lock(&s->lock);
    for (i = 0; i < TD_MAX; i++) {
        if (s->susp[i].used && !s->susp[i].resumed &&
            !strcmp(s->susp[i].tag, tag)) {
            printf("blkdebug: Resuming request '%s'\n", tag);
            fflush(stdout);
            s->susp[i].resumed = true;
            pthread_cond_broadcast(&s->cond);
            pthread_mutex_unlock(&s->lock);
            return 0;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return -ENOENT;
}

static bool td_is_suspended(struct bd_node *bs, const char *tag)
{
    struct td_state *s = bs->opaque;
    bool found = false;
    int i;

    pthread_mutex_lock(&s->lock);
    for (i = 0; i < TD_MAX; i++) {
        if (s->susp[i].used && !s->susp[i].resumed &&
            !strcmp(s->susp[i].tag, tag)) {
            found = true;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return found;
}

static json_t *td_query(struct bd_node *bs)
{
    struct td_state *s = bs->opaque;
    json_t *j;

    pthread_mutex_lock(&s->lock);
    j = json_pack("{s:i}", "hits", s->hits);
    pthread_mutex_unlock(&s->lock);
    return j;
}

static const struct bd_driver td_driver = {
    .struct_size = sizeof(struct bd_driver),
    .name = "test-dbg",
    .instance_size = sizeof(struct td_state),
    .open = td_open,
    .close = td_close,
    .getlength = td_getlength,
    .preadv = td_preadv,
    .pwritev = td_pwritev,
    .debug_breakpoint = td_breakpoint,
    .debug_remove_breakpoint = td_remove_breakpoint,
    .debug_resume = td_resume,
    .debug_is_suspended = td_is_suspended,
    .debug_query = td_query,
};

static const struct bd_driver *const td_list[] = { &td_driver, NULL };

/* ------------------------------------------------------------------ */
/* Helpers                                                              */

/* Run one command with stdout captured into *out (caller frees). */
static int run_capture(struct io_ctx *ctx, const char *line, char **out)
{
    FILE *tmp = tmpfile();
    int saved;
    int ret;
    long len;

    assert_non_null(tmp);
    fflush(stdout);
    saved = dup(STDOUT_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), STDOUT_FILENO) >= 0);
    ret = io_command(ctx, line);
    fflush(stdout);
    assert_true(dup2(saved, STDOUT_FILENO) >= 0);
    close(saved);
    len = ftell(tmp);
    assert_true(len >= 0);
    *out = bd_malloc0((size_t)len + 1);
    rewind(tmp);
    if (len > 0) {
        assert_int_equal(fread(*out, 1, (size_t)len, tmp), (size_t)len);
    }
    fclose(tmp);
    return ret;
}

static void open_opts(struct io_ctx *ctx, const char *opts, bool ro)
{
    struct io_open_args oa;

    memset(&oa, 0, sizeof(oa));
    oa.opts = bd_opts_parse(opts, NULL, NULL);
    oa.read_only = ro;
    oa.writethrough = true;
    oa.flags = BD_O_UNMAP;
    assert_int_equal(io_open_image(ctx, &oa), 0);
}

/* ------------------------------------------------------------------ */
/* iofmt                                                                */

static void test_iofmt_cvtnum(void **state)
{
    int64_t v = 0;

    (void)state;
    assert_int_equal(bd_iofmt_cvtnum("4k", &v), 0);
    assert_int_equal(v, 4096);
    assert_int_equal(bd_iofmt_cvtnum("1.5k", &v), 0);
    assert_int_equal(v, 1536);
    assert_int_equal(bd_iofmt_cvtnum("0x200", &v), 0);
    assert_int_equal(v, 512);
    /* Decimal even with a leading zero, as qemu-io reads "010". */
    assert_int_equal(bd_iofmt_cvtnum("010", &v), 0);
    assert_int_equal(v, 10);
    assert_int_equal(bd_iofmt_cvtnum("1b", &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(bd_iofmt_cvtnum("1.5", &v), -EINVAL);
    assert_int_equal(bd_iofmt_cvtnum("x", &v), -EINVAL);
    assert_int_equal(bd_iofmt_cvtnum("-1", &v), -ERANGE);
    assert_int_equal(bd_iofmt_cvtnum("100000000000000000000", &v), -ERANGE);
    /* 8 EiB does not fit an int64 offset. */
    assert_int_equal(bd_iofmt_cvtnum("8E", &v), -ERANGE);
    assert_int_equal(bd_iofmt_cvtnum("7E", &v), 0);
}

static void test_iofmt_size_and_time(void **state)
{
    char buf[64];

    (void)state;
    bd_iofmt_size(4096, buf, sizeof(buf));
    assert_string_equal(buf, "4 KiB");
    bd_iofmt_size(1536, buf, sizeof(buf));
    assert_string_equal(buf, "1.500 KiB");
    bd_iofmt_size(512, buf, sizeof(buf));
    assert_string_equal(buf, "512 bytes");
    bd_iofmt_size(0, buf, sizeof(buf));
    assert_string_equal(buf, "0 bytes");
    bd_iofmt_size(0.5, buf, sizeof(buf));
    assert_string_equal(buf, "0.500000 bytes");
    bd_iofmt_size(1048576.0 * 3, buf, sizeof(buf));
    assert_string_equal(buf, "3 MiB");
    bd_iofmt_size(1024.0 * 1024 * 1024 * 1024 * 1024 * 1024 * 2, buf,
                  sizeof(buf));
    assert_string_equal(buf, "2 EiB");

    bd_iofmt_timestr(12345678, false, buf, sizeof(buf));
    assert_string_equal(buf, "00.01 sec");
    bd_iofmt_timestr(12345678, true, buf, sizeof(buf));
    assert_string_equal(buf, "0:00:00.01");
    bd_iofmt_timestr(3723500000000LL, false, buf, sizeof(buf));
    assert_string_equal(buf, "1:02:03.50");
}

static void test_iofmt_report_hexdump_pattern(void **state)
{
    char *txt = NULL;
    size_t len = 0;
    FILE *f;
    uint8_t data[21];

    (void)state;
    unsetenv("BLKRIG_IO_FILTER_TIMING");
    f = open_memstream(&txt, &len);
    bd_iofmt_report(f, "wrote", 500000000, 0, 4096, 4096, 1, false);
    fclose(f);
    assert_string_equal(txt, "wrote 4096/4096 bytes at offset 0\n"
                        "4 KiB, 1 ops; 00.50 sec (8 KiB/sec and 2.0000 "
                        "ops/sec)\n");
    free(txt);

    f = open_memstream(&txt, &len);
    bd_iofmt_report(f, "read", 2000000000, 0, 512, 512, 1, true);
    fclose(f);
    assert_string_equal(txt, "512,1,0:00:02.00,256.000,0.500\n");
    free(txt);

    setenv("BLKRIG_IO_FILTER_TIMING", "1", 1);
    f = open_memstream(&txt, &len);
    bd_iofmt_report(f, "read", 2000000000, 7, 512, 512, 1, false);
    fclose(f);
    unsetenv("BLKRIG_IO_FILTER_TIMING");
    assert_string_equal(txt, "read 512/512 bytes at offset 7\n"
                        "512 bytes, 1 ops; XX.XX sec (timing elided)\n");
    free(txt);

    memset(data, 'A', 8);
    memset(data + 8, ' ', 4);
    memset(data + 12, '~', 4);
    memset(data + 16, 0, 4);
    data[20] = 0xcd;
    f = open_memstream(&txt, &len);
    bd_iofmt_hexdump(f, data, 0x10, sizeof(data));
    fclose(f);
    assert_string_equal(txt,
        "00000010:  41 41 41 41 41 41 41 41 20 20 20 20 7e 7e 7e 7e  "
        "AAAAAAAA........\n"
        "00000020:  00 00 00 00 cd  .....\n");
    free(txt);

    assert_int_equal(bd_iofmt_pattern("0xab"), 0xab);
    assert_int_equal(bd_iofmt_pattern("255"), 255);
    assert_int_equal(bd_iofmt_pattern("0"), 0);
    assert_int_equal(bd_iofmt_pattern("0x100"), -1);
    assert_int_equal(bd_iofmt_pattern("-1"), -1);
    assert_int_equal(bd_iofmt_pattern("abc"), -1);
}

/* ------------------------------------------------------------------ */
/* Parser and dispatcher                                                */

static void test_io_breakline_and_modes(void **state)
{
    char buf[] = "  read  -P 1   0 4k ";
    char **v;
    int argc = 0;
    int flags = 0;
    bool wt = true;

    (void)state;
    v = io_breakline(buf, &argc);
    assert_int_equal(argc, 5);
    assert_string_equal(v[0], "read");
    assert_string_equal(v[1], "-P");
    assert_string_equal(v[4], "4k");
    assert_null(v[5]);
    free(v);

    assert_int_equal(io_parse_cache("none", &flags, &wt), 0);
    assert_true(flags & BD_O_NOCACHE);
    assert_false(wt);
    assert_int_equal(io_parse_cache("unsafe", &flags, &wt), 0);
    assert_false(flags & BD_O_NOCACHE);
    assert_true(flags & BD_O_NO_FLUSH);
    assert_int_equal(io_parse_cache("directsync", &flags, &wt), 0);
    assert_true(wt);
    assert_int_equal(io_parse_cache("bogus", &flags, &wt), -EINVAL);
    assert_int_equal(io_parse_aio("native", &flags), 0);
    assert_true(flags & BD_O_NATIVE_AIO);
    assert_int_equal(io_parse_aio("io_uring", &flags), -EINVAL);
    assert_int_equal(io_parse_discard("unmap", &flags), 0);
    assert_true(flags & BD_O_UNMAP);
    assert_int_equal(io_parse_discard("ignore", &flags), 0);
    assert_false(flags & BD_O_UNMAP);

    assert_non_null(find_cmd("r"));
    assert_string_equal(find_cmd("r")->name, "read");
    assert_null(find_cmd("zone_report"));
}

static void test_io_commands_null_co(void **state)
{
    struct io_ctx ctx;
    char *out = NULL;

    (void)state;
    setenv("BLKRIG_IO_FILTER_TIMING", "1", 1);
    io_ctx_init(&ctx, "blkrig io");
    /* No image: most commands refuse, global ones run. */
    assert_int_equal(run_capture(&ctx, "length", &out), -EINVAL);
    free(out);
    assert_int_equal(run_capture(&ctx, "", &out), 0);
    assert_string_equal(out, "");
    free(out);
    assert_int_equal(run_capture(&ctx, "help quit", &out), 0);
    assert_string_equal(out, "quit -- exit the program\n");
    free(out);

    open_opts(&ctx, "driver=null-co,size=65536,read-zeroes=on", false);
    assert_int_equal(run_capture(&ctx, "length", &out), 0);
    assert_string_equal(out, "64 KiB\n");
    free(out);
    assert_int_equal(run_capture(&ctx, "read -P 0 0 512", &out), 0);
    assert_string_equal(out, "read 512/512 bytes at offset 0\n"
                        "512 bytes, 1 ops; XX.XX sec (timing elided)\n");
    free(out);
    assert_int_equal(run_capture(&ctx, "read -P 1 0 512", &out), -EINVAL);
    assert_non_null(strstr(out, "Pattern verification failed at offset 0, "
                           "512 bytes\n"));
    free(out);
    assert_true(run_capture(&ctx, "read 64k 1", &out) < 0);
    assert_string_equal(out, "read failed: Input/output error\n");
    free(out);
    assert_int_equal(run_capture(&ctx, "read 0 x", &out), -EINVAL);
    free(out);
    assert_int_equal(run_capture(&ctx, "nosuch", &out), -EINVAL);
    free(out);
    assert_int_equal(run_capture(&ctx, "quit", &out), 0);
    assert_true(ctx.quit);
    free(out);
    io_ctx_destroy(&ctx);

    /* Read-only: writes are refused by the permission request. */
    io_ctx_init(&ctx, "blkrig io");
    open_opts(&ctx, "driver=null-co,size=65536", true);
    assert_int_equal(run_capture(&ctx, "write 0 512", &out), -EPERM);
    assert_string_equal(out, "");
    free(out);
    assert_int_equal(run_capture(&ctx, "read 0 512", &out), 0);
    free(out);
    io_ctx_destroy(&ctx);
    unsetenv("BLKRIG_IO_FILTER_TIMING");
}

static void test_io_breakpoints(void **state)
{
    struct io_ctx ctx;
    char *out = NULL;

    (void)state;
    setenv("BLKRIG_IO_FILTER_TIMING", "1", 1);
    io_ctx_init(&ctx, "blkrig io");
    bd_graph_set_extra_drivers(ctx.graph, td_list);
    open_opts(&ctx, "driver=test-dbg", false);

    assert_int_equal(run_capture(&ctx, "break nosuch A", &out), -ENOENT);
    assert_string_equal(out, "Could not set breakpoint: No such file or "
                        "directory\n");
    free(out);
    assert_int_equal(run_capture(&ctx, "resume A", &out), -ENOENT);
    assert_string_equal(out, "Could not resume request: No such file or "
                        "directory\n");
    free(out);
    assert_int_equal(run_capture(&ctx, "remove_break A", &out), -ENOENT);
    assert_string_equal(out, "Could not remove breakpoint A: No such file "
                        "or directory\n");
    free(out);

    /* The suspended write completes only after resume; its result is
     * printed at aio_flush. */
    assert_int_equal(run_capture(&ctx, "break write_aio A", &out), 0);
    free(out);
    assert_int_equal(run_capture(&ctx, "aio_write -P 7 0 512", &out), 0);
    free(out);
    assert_int_equal(run_capture(&ctx, "wait_break A", &out), 0);
    free(out);
    assert_int_equal(run_capture(&ctx, "resume A", &out), 0);
    assert_string_equal(out, "blkdebug: Resuming request 'A'\n");
    free(out);
    assert_int_equal(run_capture(&ctx, "aio_flush", &out), 0);
    assert_string_equal(out, "wrote 512/512 bytes at offset 0\n"
                        "512 bytes, 1 ops; XX.XX sec (timing elided)\n");
    free(out);
    assert_int_equal(run_capture(&ctx, "read -q -P 7 0 512", &out), 0);
    free(out);

    /* A removed breakpoint never fires. */
    assert_int_equal(run_capture(&ctx, "break read_aio B", &out), 0);
    free(out);
    assert_int_equal(run_capture(&ctx, "remove_break B", &out), 0);
    free(out);
    assert_int_equal(run_capture(&ctx, "read -q 0 512", &out), 0);
    assert_string_equal(out, "");
    free(out);

    /* Nothing in flight can reach a breakpoint: refuse, do not hang. */
    assert_int_equal(run_capture(&ctx, "break read_aio C", &out), 0);
    free(out);
    assert_int_equal(run_capture(&ctx, "wait_break C", &out), -ENOENT);
    assert_string_equal(out, "Could not wait for breakpoint C: no request "
                        "in flight\n");
    free(out);
    assert_int_equal(run_capture(&ctx, "remove_break C", &out), 0);
    free(out);

    assert_int_equal(run_capture(&ctx, "blkdebug_info", &out), 0);
    assert_string_equal(out, "{\n    \"hits\": 1\n}\n");
    free(out);

    /* Left suspended: aio_flush resumes it instead of waiting forever. */
    assert_int_equal(run_capture(&ctx, "break write_aio D", &out), 0);
    free(out);
    assert_int_equal(run_capture(&ctx, "aio_write 0 512", &out), 0);
    free(out);
    assert_int_equal(run_capture(&ctx, "wait_break D", &out), 0);
    free(out);
    assert_int_equal(run_capture(&ctx, "aio_flush", &out), 0);
    assert_string_equal(out, "blkdebug: Resuming request 'D'\n"
                        "wrote 512/512 bytes at offset 0\n"
                        "512 bytes, 1 ops; XX.XX sec (timing elided)\n");
    free(out);
    io_ctx_destroy(&ctx);
    unsetenv("BLKRIG_IO_FILTER_TIMING");
}

int unit_run_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iofmt_cvtnum),
        cmocka_unit_test(test_iofmt_size_and_time),
        cmocka_unit_test(test_iofmt_report_hexdump_pattern),
        cmocka_unit_test(test_io_breakline_and_modes),
        cmocka_unit_test(test_io_commands_null_co),
        cmocka_unit_test(test_io_breakpoints),
    };

    return cmocka_run_group_tests_name("iocmd", tests, NULL, NULL);
}
