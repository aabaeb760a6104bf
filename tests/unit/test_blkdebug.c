/*
 * tests/unit/test_blkdebug.c - driver/blkdebug.c through the block layer:
 * options and their messages, legacy filenames, the spec's experiments
 * (../shared/specs/blkdebug.md §13) on a raw file, the actions beyond
 * QEMU, and the debug hooks of driver/block.h.
 */
#include "common/config.h"

#include <errno.h>
#include <fcntl.h>
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
#include "common/log.h"
#include "common/opts.h"
#include "driver/blkdebug.h"
#include "driver/block.h"
#include "injector/injector.h"
#include "tests/unit/unit.h"

struct fixture {
    char dir[64];
    char img[128];
    struct bd_graph *g;
    struct bd_blk *b;
    struct bd_node *n;
};

static struct fixture fx;

static int setup(void **state)
{
    int fd;

    (void)state;
    snprintf(fx.dir, sizeof(fx.dir), "/tmp/test_blkdebug.XXXXXX");
    if (!mkdtemp(fx.dir)) {
        return -1;
    }
    snprintf(fx.img, sizeof(fx.img), "%s/raw.img", fx.dir);
    fd = open(fx.img, O_CREAT | O_RDWR | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, 1 << 20) < 0) {
        return -1;
    }
    close(fd);
    fx.g = bd_graph_new();
    return 0;
}

static int teardown(void **state)
{
    char path[256];

    (void)state;
    bd_graph_free(fx.g);
    fx.g = NULL;
    unlink(fx.img);
    snprintf(path, sizeof(path), "%s/t.conf", fx.dir);
    unlink(path);
    rmdir(fx.dir);
    return 0;
}

/* Open like qemu-io --image-opts (or with a filename); NULL + *msg on
 * error. */
static struct bd_node *try_open(const char *filename, const char *optstr,
                                char **msg)
{
    struct bd_error *err = NULL;
    json_t *o = optstr ? bd_opts_parse(optstr, NULL, &err) : json_object();
    struct bd_node *n;

    assert_non_null(o);
    n = bd_open(fx.g, filename, o, BD_O_RDWR | BD_O_UNMAP, &err);
    *msg = NULL;
    if (!n) {
        *msg = bd_strdup(bd_error_msg(err));
        bd_error_free(err);
    }
    return n;
}

/* Open and attach a backend; optstr gets the image appended. */
static void open_bd(const char *fmt, ...) BD_PRINTF(1, 2);
static void open_bd(const char *fmt, ...)
{
    struct bd_error *err = NULL;
    char opts[2048];
    char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(opts, sizeof(opts), fmt, ap);
    va_end(ap);
    fx.n = try_open(NULL, opts, &msg);
    if (!fx.n) {
        fail_msg("open %s: %s", opts, msg);
    }
    fx.b = bd_blk_new(fx.g, NULL, BD_PERM_CONSISTENT_READ | BD_PERM_WRITE |
                      BD_PERM_RESIZE, BD_PERM_ALL);
    assert_int_equal(bd_blk_insert(fx.b, fx.n, &err), 0);
    bd_unref(fx.n);
}

static void close_bd(void)
{
    bd_blk_free(fx.b);
    fx.b = NULL;
    fx.n = NULL;
}

static void open_error(const char *filename, const char *opts,
                       const char *want)
{
    char *msg = NULL;
    struct bd_node *n = try_open(filename, opts, &msg);

    if (n) {
        bd_unref(n);
        fail_msg("open %s succeeded, wanted '%s'", opts, want);
    }
    assert_string_equal(msg, want);
    free(msg);
}

static void write_conf(const char *text)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/t.conf", fx.dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int rd(int64_t off, int64_t len)
{
    uint8_t *buf = bd_memalign(4096, (size_t)len);
    int r = bd_blk_pread(fx.b, off, len, buf, 0);

    free(buf);
    return r;
}

static int wr(int64_t off, int64_t len)
{
    uint8_t *buf = bd_memalign(4096, (size_t)len);
    int r;

    memset(buf, 0xa5, (size_t)len);
    r = bd_blk_pwrite(fx.b, off, len, buf, 0);
    free(buf);
    return r;
}

#define IMG "driver=blkdebug,image.driver=file,image.filename=%s"
#define RAW "driver=raw,file.driver=blkdebug,file.image.driver=file," \
            "file.image.filename=%s"

/* ------------------------------------------------------------------ */
/* Options and messages (E18, E26, E28, E31, E32, E37, E38)             */

static void test_option_errors(void **state)
{
    char o[512];

    (void)state;
#define OPEN_ERR(extra, want) \
    do { \
        snprintf(o, sizeof(o), IMG ",%s", fx.img, extra); \
        open_error(NULL, o, want); \
    } while (0)
    OPEN_ERR("align=3", "Cannot meet constraints with align 3");
    OPEN_ERR("align=2147483648",
             "Cannot meet constraints with align 2147483648");
    OPEN_ERR("align=4096,max-transfer=1024",
             "Cannot meet constraints with max-transfer 1024");
    OPEN_ERR("opt-write-zero=4096,max-write-zero=6144",
             "Cannot meet constraints with max-write-zero 6144");
    OPEN_ERR("opt-discard=4096,max-discard=6144",
             "Cannot meet constraints with max-discard 6144");
    OPEN_ERR("max-transfer=4294967296",
             "Cannot meet constraints with max-transfer 4294967296");
    OPEN_ERR("align=-1", "Value '-1' is out of range for parameter 'align'");
    OPEN_ERR("bogus=1",
             "Block protocol 'blkdebug' doesn't support the option 'bogus'");
    OPEN_ERR("take-child-perms.0=bogus",
             "Parameter 'null' does not accept value 'bogus'");
    OPEN_ERR("take-child-perms=write", "Block protocol 'blkdebug' doesn't "
             "support the option 'take-child-perms'");
    OPEN_ERR("inject-error.event=read_aio,inject-error.0.event=read_aio",
             "Unknown option '0.event' for [inject-error]");
    OPEN_ERR("config=/nonexistent.conf", "Could not read blkdebug config "
             "file: No such file or directory");
    OPEN_ERR("inject-error.event=no_such_event",
             "invalid parameter value: no_such_event");
    open_error("blkdebug:raw.img", "driver=raw",
               "blkdebug requires both config file and image path");
    OPEN_ERR("x-image=raw.img", "Can't specify 'file' and 'filename' options "
             "at the same time");
    open_error(NULL, "driver=blkdebug,x-image=raw.img,image=nonode",
               "Cannot reference an existing block device with additional "
               "options or a new filename");
    open_error(NULL, "driver=blkdebug", "A block device must be specified "
               "for \"image\"");
#undef OPEN_ERR
}

/* Accepted values (E18, E37): the child's alignment is 1. */
static void test_options_accepted(void **state)
{
    (void)state;
    open_bd(IMG ",max-transfer=1000", fx.img);
    assert_int_equal(rd(0, 512), 0);
    close_bd();
    open_bd(IMG ",opt-write-zero=1000", fx.img);
    close_bd();
    open_bd(IMG ",align=4k,max-transfer=64k,take-child-perms.0=write,"
            "unshare-child-perms.0=resize", fx.img);
    assert_int_equal(bd_node_request_alignment(fx.n), 4096);
    assert_int_equal(wr(512, 512), 0);
    close_bd();
}

static void test_config_file_messages(void **state)
{
    char fn[512];
    static const struct {
        const char *text;
        const char *msg;
    } cases[] = {
        { "[inject-error]\nevent = read_aio\n", "invalid parameter value: " },
        { "[inject-errors]\nevent = \"read_aio\"\n",
          "There is no option group 'inject-errors'" },
        { "[inject-error]\nevent = \"read_aio\"\nfoo = \"1\"\n",
          "Invalid parameter 'foo'" },
        { "[inject-error]\nerrno = \"5\"\n", "Missing event name for rule" },
        { "event = \"read_aio\"\n", "no group defined" },
        { "[inject-error]\nevent = \"read_aio\"\niotype = \"bogus\"\n",
          "invalid parameter value: bogus" },
        { "[inject-error]\nevent = \"l2_alloc.write\"\n",
          "invalid parameter value: l2_alloc.write" },
    };
    size_t i;

    (void)state;
    snprintf(fn, sizeof(fn), "blkdebug:%s/t.conf:%s", fx.dir, fx.img);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_conf(cases[i].text);
        open_error(fn, "driver=raw", cases[i].msg);
    }
}

/* ------------------------------------------------------------------ */
/* Experiments on raw over blkdebug                                     */

static void test_legacy_filename(void **state)
{
    struct bd_error *err = NULL;
    char fn[512];
    char *msg = NULL;

    (void)state;
    /* E1: legacy filename, default errno, rule stays armed. */
    write_conf("[inject-error]\nevent = \"read_aio\"\n");
    snprintf(fn, sizeof(fn), "blkdebug:%s/t.conf:%s", fx.dir, fx.img);
    fx.n = try_open(fn, "driver=raw", &msg);
    assert_non_null(fx.n);
    fx.b = bd_blk_new(fx.g, NULL, BD_PERM_CONSISTENT_READ | BD_PERM_WRITE,
                      BD_PERM_ALL);
    assert_int_equal(bd_blk_insert(fx.b, fx.n, &err), 0);
    bd_unref(fx.n);
    assert_int_equal(rd(0, 512), -EIO);
    assert_int_equal(wr(4096, 512), -EIO);
    close_bd();
    /* E28: an empty config part means no rules. */
    snprintf(fn, sizeof(fn), "blkdebug::%s", fx.img);
    fx.n = try_open(fn, "driver=raw", &msg);
    assert_non_null(fx.n);
    fx.b = bd_blk_new(fx.g, NULL, BD_PERM_CONSISTENT_READ, BD_PERM_ALL);
    assert_int_equal(bd_blk_insert(fx.b, fx.n, &err), 0);
    bd_unref(fx.n);
    assert_int_equal(rd(0, 512), 0);
    close_bd();
}

static void test_experiments_state(void **state)
{
    char fn[512];
    char *msg = NULL;
    struct bd_error *err = NULL;

    (void)state;
    /* E4: once */
    open_bd(RAW ",file.inject-error.event=read_aio,file.inject-error.once=on",
            fx.img);
    assert_int_equal(rd(0, 512), -EIO);
    assert_int_equal(rd(0, 512), 0);
    assert_int_equal(rd(0, 512), 0);
    close_bd();
    /* E7 through a config file */
    write_conf("[set-state]\nevent = \"write_aio\"\nstate = \"1\"\n"
               "new_state = \"2\"\n\n[inject-error]\nevent = \"read_aio\"\n"
               "state = \"2\"\nerrno = \"5\"\n");
    snprintf(fn, sizeof(fn), "blkdebug:%s/t.conf:%s", fx.dir, fx.img);
    fx.n = try_open(fn, "driver=raw", &msg);
    assert_non_null(fx.n);
    fx.b = bd_blk_new(fx.g, NULL, BD_PERM_CONSISTENT_READ | BD_PERM_WRITE,
                      BD_PERM_ALL);
    assert_int_equal(bd_blk_insert(fx.b, fx.n, &err), 0);
    bd_unref(fx.n);
    assert_int_equal(rd(0, 512), 0);
    assert_int_equal(wr(0, 512), 0);
    assert_int_equal(rd(0, 512), -EIO);
    close_bd();
    /* E8: iotype restricts an armed rule */
    open_bd(RAW ",file.inject-error.event=read_aio,"
            "file.inject-error.iotype=write", fx.img);
    assert_int_equal(rd(0, 512), 0);
    assert_int_equal(wr(0, 512), -EIO);
    assert_int_equal(rd(0, 512), 0);
    close_bd();
    /* E9c: config rules come before inline ones */
    write_conf("[inject-error]\nevent = \"read_aio\"\nerrno = \"28\"\n");
    open_bd(RAW ",file.config=%s/t.conf,file.inject-error.event=read_aio,"
            "file.inject-error.errno=5", fx.img, fx.dir);
    assert_int_equal(rd(0, 512), -ENOSPC);
    close_bd();
    /* E29b: a state change does not disarm */
    open_bd(RAW ",file.set-state.event=write_aio,file.set-state.new_state=2,"
            "file.inject-error.event=read_aio,file.inject-error.state=1,"
            "file.inject-error.iotype=read", fx.img);
    assert_int_equal(rd(0, 512), -EIO);
    assert_int_equal(wr(0, 512), 0);
    assert_int_equal(rd(0, 512), -EIO);
    close_bd();
}

static void test_experiments_top_level(void **state)
{
    (void)state;
    /* E6: sector matching with a rule armed at open by `none` */
    open_bd(IMG ",inject-error.event=none,inject-error.sector=8", fx.img);
    assert_int_equal(rd(0, 4096), 0);
    assert_int_equal(rd(4096, 512), -EIO);
    assert_int_equal(rd(3584, 1024), -EIO);
    assert_int_equal(rd(4608, 512), 0);
    assert_int_equal(wr(0, 8192), -EIO);
    assert_int_equal(rd(8192, 4096), 0);
    close_bd();
    /* E14: pwritev is raised on the node just before its own write */
    open_bd(IMG ",inject-error.event=pwritev,inject-error.iotype=read",
            fx.img);
    assert_int_equal(rd(0, 512), 0);
    assert_int_equal(wr(0, 512), 0);
    assert_int_equal(rd(0, 512), -EIO);
    close_bd();
    /* E15: flush reaches blkdebug only after a write; a writethrough
     * write (FUA) does not run blkdebug's flush rules. */
    open_bd(IMG ",inject-error.event=none,inject-error.iotype=flush",
            fx.img);
    bd_blk_set_write_cache(fx.b, false);
    assert_int_equal(bd_blk_flush(fx.b), 0);
    assert_int_equal(wr(0, 512), 0);
    assert_int_equal(bd_blk_flush(fx.b), -EIO);
    close_bd();
    /* E17: discard, write-zeroes and block-status iotypes */
    open_bd(IMG ",inject-error.event=none,inject-error.iotype=discard",
            fx.img);
    assert_int_equal(bd_blk_pdiscard(fx.b, 0, 65536), -EIO);
    assert_int_equal(bd_blk_pwrite_zeroes(fx.b, 0, 65536, 0), 0);
    close_bd();
    open_bd(IMG ",inject-error.event=none,inject-error.iotype=write-zeroes",
            fx.img);
    assert_int_equal(bd_blk_pwrite_zeroes(fx.b, 0, 65536, 0), -EIO);
    assert_int_equal(wr(0, 512), 0);
    close_bd();
    open_bd(IMG ",inject-error.event=none,inject-error.iotype=block-status",
            fx.img);
    {
        int64_t pnum = 0;

        assert_int_equal(bd_node_block_status(fx.n, 0, 4096, &pnum, NULL,
                                              NULL), -EIO);
    }
    assert_int_equal(rd(0, 512), 0);
    close_bd();
    /* E19: align=4096 makes unaligned writes RMW; after_tail arms */
    open_bd(IMG ",align=4096,inject-error.event=pwritev_rmw_after_tail,"
            "inject-error.iotype=write", fx.img);
    assert_int_equal(wr(0, 512), -EIO);
    close_bd();
    open_bd(IMG ",align=4096,inject-error.event=pwritev_rmw_after_head,"
            "inject-error.iotype=write", fx.img);
    assert_int_equal(wr(0, 4096), 0);
    assert_int_equal(wr(0, 512), 0);        /* no head: tail events only */
    assert_int_equal(wr(512, 512), -EIO);
    close_bd();
    /* E20: max-transfer fragments are checked one by one */
    open_bd(IMG ",max-transfer=4096,inject-error.event=none,"
            "inject-error.sector=24,inject-error.once=on", fx.img);
    assert_int_equal(wr(0, 16384), -EIO);
    assert_int_equal(rd(0, 4096), 0);
    close_bd();
}

/* ------------------------------------------------------------------ */
/* Actions beyond QEMU, on real data                                    */

static void test_torn_lost_corrupt(void **state)
{
    uint8_t *buf = bd_memalign(4096, 4096);
    uint8_t *ref = bd_memalign(4096, 4096);
    int i;
    int diff = 0;

    (void)state;
    /* Zero the area first. */
    open_bd(IMG, fx.img);
    assert_int_equal(bd_blk_pwrite_zeroes(fx.b, 0, 65536, 0), 0);
    close_bd();

    /* torn: the first 1000 bytes land, the caller sees ENOSPC. */
    open_bd(IMG ",inject-error.event=none,inject-error.torn=1000,"
            "inject-error.errno=28,inject-error.once=on", fx.img);
    memset(buf, 0x5a, 4096);
    assert_int_equal(bd_blk_pwrite(fx.b, 0, 4096, buf, 0), -ENOSPC);
    assert_int_equal(bd_blk_pread(fx.b, 0, 4096, buf, 0), 0);
    for (i = 0; i < 4096; i++) {
        assert_int_equal(buf[i], i < 1000 ? 0x5a : 0);
    }
    close_bd();

    /* lost: success reported, nothing written. */
    open_bd(IMG ",inject-error.event=none,inject-error.lost=on,"
            "inject-error.sector=16,inject-error.count=1", fx.img);
    memset(buf, 0x77, 4096);
    assert_int_equal(bd_blk_pwrite(fx.b, 8192, 4096, buf, 0), 0);
    assert_int_equal(bd_blk_pread(fx.b, 8192, 4096, buf, 0), 0);
    assert_true(bd_buffer_is_zero(buf, 4096));
    assert_int_equal(bd_blk_pwrite(fx.b, 8192, 4096, ref, 0), 0);
    close_bd();

    /* corrupt: reads see flipped bits, the same ones each time. */
    open_bd(IMG ",seed=7,inject-error.event=none,inject-error.corrupt=5,"
            "inject-error.sector=32", fx.img);
    assert_int_equal(bd_blk_pread(fx.b, 16384, 4096, buf, 0), 0);
    assert_int_equal(bd_blk_pread(fx.b, 16384, 4096, ref, 0), 0);
    assert_memory_equal(buf, ref, 4096);
    for (i = 0; i < 4096; i++) {
        diff += __builtin_popcount(buf[i]);
    }
    assert_in_range(diff, 1, 5);
    /* Reads not covering sector 32 are untouched. */
    assert_int_equal(bd_blk_pread(fx.b, 20480, 4096, buf, 0), 0);
    assert_true(bd_buffer_is_zero(buf, 4096));
    close_bd();
    free(buf);
    free(ref);
}

struct delayed {
    int64_t t_end;
};

static void *slow_read(void *opaque)
{
    struct delayed *d = opaque;

    assert_int_equal(rd(0, 512), 0);
    d->t_end = bd_clock_ns();
    return NULL;
}

/* A delayed request holds only its own thread. */
static void test_delay_does_not_block(void **state)
{
    struct delayed d = { 0 };
    pthread_t th;
    int64_t t_fast;

    (void)state;
    open_bd(IMG ",inject-error.event=none,inject-error.delay-ns=300000000,"
            "inject-error.sector=0", fx.img);
    pthread_create(&th, NULL, slow_read, &d);
    usleep(20000);
    assert_int_equal(rd(65536, 512), 0);
    t_fast = bd_clock_ns();
    pthread_join(th, NULL);
    /* Ordering, not timing: the undelayed read finished first. */
    assert_true(t_fast < d.t_end);
    close_bd();
}

static char last_line[512];

static void capture_line(void *opaque, const char *line)
{
    (void)opaque;
    snprintf(last_line, sizeof(last_line), "%s", line);
}

struct ev_capture {
    int n;
    char name[64];
    json_t *data;
};

static void capture_qevent(void *opaque, const char *name, json_t *data)
{
    struct ev_capture *c = opaque;

    c->n++;
    snprintf(c->name, sizeof(c->name), "%s", name);
    json_decref(c->data);
    c->data = data;
}

static void test_log_and_events(void **state)
{
    struct ev_capture c = { 0 };
    json_t *q;
    json_t *r;

    (void)state;
    bd_log_set_sink(capture_line, NULL);
    bd_graph_set_qevent_sink(fx.g, capture_qevent, &c);
    open_bd(IMG ",node-name=dbg,log=on,inject-error.event=none,"
            "inject-error.errno=28,inject-error.sector=2", fx.img);
    assert_int_equal(wr(1024, 512), -ENOSPC);
    assert_string_equal(last_line, "blkdebug-inject node=dbg rule=1 "
                        "event=none action=errno:28 iotype=write "
                        "offset=1024 bytes=512");
    assert_int_equal(c.n, 1);
    assert_string_equal(c.name, "BLKDEBUG_INJECT");
    assert_string_equal(json_string_value(json_object_get(c.data, "node")),
                        "dbg");
    assert_int_equal(json_integer_value(json_object_get(c.data, "offset")),
                     1024);
    q = bd_debug_query(fx.n);
    assert_non_null(q);
    assert_string_equal(json_string_value(json_object_get(q, "node-name")),
                        "dbg");
    r = json_array_get(json_object_get(q, "rules"), 0);
    assert_int_equal(json_integer_value(json_object_get(r, "hits")), 1);
    json_decref(q);
    close_bd();
    bd_log_set_sink(NULL, NULL);
    bd_graph_set_qevent_sink(fx.g, NULL, NULL);
    json_decref(c.data);
}

struct aio {
    int ret;
};

static void *async_write(void *opaque)
{
    struct aio *a = opaque;

    a->ret = wr(0, 512);
    return NULL;
}

/* Breakpoints through the generic debug hooks (qemu-io's commands). */
static void test_debug_hooks(void **state)
{
    struct aio a = { 1 };
    pthread_t th;
    struct bd_node *top;

    (void)state;
    open_bd(RAW, fx.img);
    top = bd_blk_node(fx.b);
    assert_int_equal(bd_debug_breakpoint(top, "no_such_event", "T"),
                     -ENOENT);
    assert_int_equal(bd_debug_resume(top, "nosuchtag"), -ENOENT);
    assert_int_equal(bd_debug_breakpoint(top, "write_aio", "A"), 0);
    pthread_create(&th, NULL, async_write, &a);
    while (!bd_debug_is_suspended(top, "A")) {
        usleep(1000);
    }
    /* Other requests keep flowing while A waits. */
    assert_int_equal(rd(4096, 512), 0);
    assert_int_equal(a.ret, 1);
    assert_int_equal(bd_debug_resume(top, "A"), 0);
    pthread_join(th, NULL);
    assert_int_equal(a.ret, 0);
    assert_non_null(bd_blkdebug_injector(bd_node_file(top)));
    assert_null(bd_blkdebug_injector(top));
    close_bd();
    /* No blkdebug below: ENOTSUP (E23). */
    open_bd("driver=file,filename=%s", fx.img);
    assert_int_equal(bd_debug_breakpoint(fx.n, "write_aio", "T"), -ENOTSUP);
    assert_null(bd_debug_query(fx.n));
    close_bd();
}

/* E35: a node given only config and image has the legacy-style name. */
static void test_filename(void **state)
{
    char want[512];
    char *msg = NULL;
    struct bd_node *n;
    char o[512];

    (void)state;
    write_conf("[inject-error]\nevent = \"write_aio\"\n");
    snprintf(o, sizeof(o), "driver=blkdebug,config=%s/t.conf,"
             "image.driver=file,image.filename=%s", fx.dir, fx.img);
    n = try_open(NULL, o, &msg);
    assert_non_null(n);
    snprintf(want, sizeof(want), "blkdebug:%s/t.conf:%s", fx.dir, fx.img);
    assert_string_equal(bd_node_filename(n), want);
    bd_unref(n);
    snprintf(o, sizeof(o), "driver=blkdebug,image.driver=file,"
             "image.filename=%s", fx.img);
    n = try_open(NULL, o, &msg);
    snprintf(want, sizeof(want), "blkdebug::%s", fx.img);
    assert_string_equal(bd_node_filename(n), want);
    bd_unref(n);
    /* Any other option: no plain name (QEMU would say json:{...}). */
    snprintf(o, sizeof(o), "driver=blkdebug,align=4096,image.driver=file,"
             "image.filename=%s", fx.img);
    n = try_open(NULL, o, &msg);
    assert_true(strncmp(bd_node_filename(n), "blkdebug:", 9) != 0);
    bd_unref(n);
    snprintf(o, sizeof(o), "blkdebug:%s/t.conf:%s", fx.dir, fx.img);
    n = try_open(o, "driver=raw", &msg);
    assert_string_equal(bd_node_filename(n), o);
    bd_unref(n);
}

/* E32: blockdev-add validates against the schema first, with QEMU's
 * messages; the option parser's come after. */
static void test_blockdev_add_schema(void **state)
{
    static const struct {
        const char *extra;
        const char *msg;
    } cases[] = {
        { "\"set-state\":[{\"event\":\"write_aio\"}]",
          "Parameter 'set-state[0].new_state' is missing" },
        { "\"inject-error\":[{\"event\":\"bogus\"}]",
          "Parameter 'event' does not accept value 'bogus'" },
        { "\"inject-error\":[{\"event\":\"read_aio\",\"iotype\":"
          "\"flush-all\"}]",
          "Parameter 'iotype' does not accept value 'flush-all'" },
        { "\"take-child-perms\":[\"bogus\"]",
          "Parameter 'null' does not accept value 'bogus'" },
        { "\"max-transfer\":-512",
          "Value '-512' is out of range for parameter 'max-transfer'" },
        { "\"inject-error\":[{\"event\":\"none\",\"sector\":\"x\"}]",
          "Invalid parameter type for 'inject-error[0].sector', expected: "
          "integer" },
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct bd_error *err = NULL;
        char text[1024];
        json_t *o;

        snprintf(text, sizeof(text), "{\"driver\":\"blkdebug\",\"node-name\":"
                 "\"d\",\"image\":{\"driver\":\"file\",\"filename\":"
                 "\"%s\"},%s}", fx.img, cases[i].extra);
        o = json_loads(text, 0, NULL);
        assert_non_null(o);
        assert_null(bd_blockdev_add(fx.g, o, false, &err));
        assert_non_null(err);
        assert_string_equal(bd_error_msg(err), cases[i].msg);
        bd_error_free(err);
        json_decref(o);
    }
}

/* E33: unshare-child-perms withholds 'write' from other users of the
 * child. */
static void test_unshare_perms(void **state)
{
    struct bd_error *err = NULL;
    json_t *o;
    struct bd_node *f;
    struct bd_node *d;
    struct bd_blk *b;

    (void)state;
    o = json_pack("{s:s, s:s, s:s}", "driver", "file", "node-name", "f",
                  "filename", fx.img);
    f = bd_blockdev_add(fx.g, o, false, &err);
    json_decref(o);
    assert_non_null(f);
    o = json_pack("{s:s, s:s, s:s, s:[s]}", "driver", "blkdebug",
                  "node-name", "d", "image", "f", "unshare-child-perms",
                  "write");
    d = bd_blockdev_add(fx.g, o, false, &err);
    json_decref(o);
    assert_non_null(d);
    b = bd_blk_new(fx.g, NULL, BD_PERM_CONSISTENT_READ | BD_PERM_WRITE,
                   BD_PERM_ALL);
    assert_int_equal(bd_blk_insert(b, f, &err), -EPERM);
    assert_string_equal(bd_error_msg(err), "Permission conflict on node "
                        "'f': permissions 'write' are both required by an "
                        "unnamed block device (uses node 'f' as 'root' "
                        "child) and unshared by node 'd' (uses node 'f' as "
                        "'image' child).");
    bd_error_free(err);
    bd_blk_free(b);
}

int unit_run_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_option_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_options_accepted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_config_file_messages, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_legacy_filename, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_experiments_state, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_experiments_top_level, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_torn_lost_corrupt, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_delay_does_not_block, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_log_and_events, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_debug_hooks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unshare_perms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filename, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blockdev_add_schema, setup,
                                        teardown),
    };

    return cmocka_run_group_tests_name("blkdebug", tests, NULL, NULL);
}
