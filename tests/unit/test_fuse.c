/*
 * tests/unit/test_fuse.c - fuse/export.c: option validation and its
 * messages (qemu-storage-daemon's), the mountpoint checks, and one real
 * export (null-co, when /dev/fuse is usable) through add, I/O on the
 * mounted file, query, delete and the BLOCK_EXPORT_DELETED event.
 */
#include "common/config.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/cutils.h"
#include "common/opts.h"
#include "driver/block.h"
#include "fuse/export.h"
#include "fuse/fx-int.h"
#include "tests/helpers/test-drivers.h"
#include "tests/unit/unit.h"

struct fixture {
    char dir[64];
    char file[96];
    struct bd_graph *g;
    struct fx_exports *ex;
};

static int setup(void **state)
{
    struct fixture *f = bd_malloc0(sizeof(*f));
    struct bd_error *err = NULL;
    json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "driver", "null-co",
                          "node-name", "n0", "size", "1048576",
                          "read-zeroes", "on");
    int fd;

    snprintf(f->dir, sizeof(f->dir), "/tmp/blkrig-fx.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->file, sizeof(f->file), "%s/mnt", f->dir);
    fd = open(f->file, O_CREAT | O_WRONLY, 0644);
    assert_true(fd >= 0);
    close(fd);
    f->g = bd_graph_new();
    assert_non_null(bd_blockdev_add(f->g, o, true, &err));
    json_decref(o);
    f->ex = fx_exports_new(f->g);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char sub[128];

    fx_exports_free(f->ex);
    bd_graph_free(f->g);
    unlink(f->file);
    snprintf(sub, sizeof(sub), "%s/sub", f->dir);
    rmdir(sub);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Add an export from "key=value" text; return the error message or NULL. */
static char *try_add(struct fixture *f, const char *text)
{
    struct bd_error *err = NULL;
    json_t *flat = bd_opts_parse(text, "type", &err);
    json_t *nested = NULL;
    char *msg = NULL;

    assert_non_null(flat);
    nested = bd_opts_crumple(flat, &err);
    json_decref(flat);
    assert_non_null(nested);
    if (fx_export_add(f->ex, nested, true, &err) < 0) {
        assert_non_null(err);
        msg = bd_strdup(bd_error_msg(err));
        bd_error_free(err);
    } else {
        assert_null(err);
    }
    json_decref(nested);
    return msg;
}

static void expect_msg(struct fixture *f, const char *text, const char *want)
{
    char *msg = try_add(f, text);

    assert_non_null(msg);
    assert_string_equal(msg, want);
    free(msg);
}

/* Problems are reported in QAPI member order with qsd's words. */
static void test_fuse_option_messages(void **state)
{
    struct fixture *f = *state;
    char buf[256];

    expect_msg(f, "id=e,node-name=n0,mountpoint=x",
               "Parameter 'type' is missing");
    expect_msg(f, "bogus,id=e", "Parameter 'type' does not accept value "
               "'bogus'");
    expect_msg(f, "fuse,node-name=n0", "Parameter 'id' is missing");
    expect_msg(f, "fuse,id=e,mountpoint=x", "Parameter 'node-name' is "
               "missing");
    expect_msg(f, "fuse,id=e,node-name=n0,writable=maybe,mountpoint=x",
               "Parameter 'writable' expects 'on' or 'off'");
    expect_msg(f, "fuse,id=e,node-name=n0", "Parameter 'mountpoint' is "
               "missing");
    snprintf(buf, sizeof(buf), "fuse,id=e,node-name=n0,mountpoint=%s,"
             "allow-other=maybe", f->file);
    expect_msg(f, buf, "Parameter 'allow-other' does not accept value "
               "'maybe'");
    snprintf(buf, sizeof(buf), "fuse,id=e,node-name=n0,mountpoint=%s,foo=1",
             f->file);
    expect_msg(f, buf, "Parameter 'foo' is unexpected");
    snprintf(buf, sizeof(buf), "fuse,id=e,node-name=nope,mountpoint=%s",
             f->file);
    expect_msg(f, buf, "Cannot find device='' nor node-name='nope'");
}

/* JSON input is typed: a string where a bool belongs is a type error. */
static void test_fuse_json_types(void **state)
{
    struct fixture *f = *state;
    struct bd_error *err = NULL;
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s}", "type", "fuse", "id", "e",
                          "node-name", "n0", "mountpoint", f->file,
                          "writable", "on");

    assert_true(fx_export_add(f->ex, o, false, &err) < 0);
    assert_string_equal(bd_error_msg(err), "Invalid parameter type for "
                        "'writable', expected: boolean");
    bd_error_free(err);
    json_decref(o);
}

/* The mountpoint must exist and be a regular file. */
static void test_fuse_mountpoint_checks(void **state)
{
    struct fixture *f = *state;
    char buf[256];
    char sub[128];

    snprintf(buf, sizeof(buf), "fuse,id=e,node-name=n0,mountpoint=%s/none",
             f->dir);
    {
        char want[256];

        snprintf(want, sizeof(want), "Failed to stat '%s/none': No such "
                 "file or directory", f->dir);
        expect_msg(f, buf, want);
    }
    snprintf(sub, sizeof(sub), "%s/sub", f->dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    snprintf(buf, sizeof(buf), "fuse,id=e,node-name=n0,mountpoint=%s", sub);
    {
        char want[256];

        snprintf(want, sizeof(want), "'%s' is not a regular file", sub);
        expect_msg(f, buf, want);
    }
    /* Nothing was left registered by the failures. */
    {
        json_t *q = fx_export_query(f->ex);

        assert_int_equal(json_array_size(q), 0);
        json_decref(q);
    }
}

/* The directory part is resolved, the last component kept as given. */
static void test_fuse_canonical_path(void **state)
{
    struct fixture *f = *state;
    char *p = NULL;
    char cwd[4096];
    char want[4200];

    (void)f;
    p = fx_canonical_path("/tmp/../tmp/x");
    assert_string_equal(p, "/tmp/x");
    free(p);
    p = fx_canonical_path("/x");
    assert_string_equal(p, "/x");
    free(p);
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    p = fx_canonical_path("rel-name");
    snprintf(want, sizeof(want), "%s%srel-name", cwd,
             strcmp(cwd, "/") ? "/" : "");
    assert_string_equal(p, want);
    free(p);
    errno = 0;
    assert_null(fx_canonical_path("/no/such/dir/x"));
    assert_int_equal(errno, ENOENT);
    assert_true(fx_path_is_mountpoint("/proc", NULL, 0));
    assert_false(fx_path_is_mountpoint("/proc/self", NULL, 0));
}

static void event_sink(void *opaque, const char *name, json_t *data)
{
    json_t *log = opaque;

    json_array_append_new(log, json_pack("{s:s,s:o}", "event", name,
                                         "data", data ? data : json_null()));
}

/* A real mount: I/O through the file, query, duplicate checks, delete. */
static void test_fuse_export_lifecycle(void **state)
{
    struct fixture *f = *state;
    json_t *events = NULL;
    char buf[256];
    char data[4096];
    char *msg = NULL;
    json_t *q = NULL;
    struct stat st;
    struct bd_error *err = NULL;
    int fd;

    if (access("/dev/fuse", R_OK | W_OK) != 0 || geteuid() != 0) {
        skip();
    }
    events = json_array();
    bd_graph_set_qevent_sink(f->g, event_sink, events);
    snprintf(buf, sizeof(buf), "fuse,id=e0,node-name=n0,mountpoint=%s,"
             "writable=on", f->file);
    msg = try_add(f, buf);
    assert_null(msg);

    /* Same id, same mountpoint: refused before touching anything. */
    expect_msg(f, buf, "Block export id 'e0' is already in use");
    snprintf(buf, sizeof(buf), "fuse,id=e1,node-name=n0,mountpoint=%s",
             f->file);
    {
        char want[256];

        snprintf(want, sizeof(want), "There already is a FUSE export on "
                 "'%s'", f->file);
        expect_msg(f, buf, want);
    }

    assert_int_equal(stat(f->file, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_size, 1 << 20);
    assert_int_equal(st.st_mode & 0777, 0600);
    fd = open(f->file, O_RDWR);
    assert_true(fd >= 0);
    memset(data, 0xa5, sizeof(data));
    assert_int_equal(pwrite(fd, data, sizeof(data), 4096), sizeof(data));
    /* null-co reads zeroes whatever was written. */
    assert_int_equal(pread(fd, data, sizeof(data), 4096), sizeof(data));
    assert_true(bd_buffer_is_zero(data, sizeof(data)));
    /* Past the end of a fixed-size node: EOF for reads, EIO for writes. */
    assert_int_equal(pread(fd, data, sizeof(data), 1 << 20), 0);
    assert_int_equal(pwrite(fd, data, sizeof(data), 1 << 20), -1);
    assert_int_equal(errno, EIO);
    assert_int_equal(fsync(fd), 0);
    close(fd);

    assert_true(fx_exports_use_node(f->ex, "n0"));
    q = fx_export_query(f->ex);
    assert_int_equal(json_array_size(q), 1);
    assert_string_equal(json_string_value(json_object_get(
        json_array_get(q, 0), "id")), "e0");
    assert_string_equal(json_string_value(json_object_get(
        json_array_get(q, 0), "node-name")), "n0");
    assert_true(json_is_false(json_object_get(json_array_get(q, 0),
                                              "shutting-down")));
    json_decref(q);

    assert_int_equal(fx_export_del(f->ex, "e0", false, &err), 0);
    assert_false(fx_path_is_mountpoint(f->file, NULL, 0));
    assert_false(fx_exports_use_node(f->ex, "n0"));
    assert_int_equal(json_array_size(events), 1);
    assert_string_equal(json_string_value(json_object_get(
        json_array_get(events, 0), "event")), "BLOCK_EXPORT_DELETED");
    assert_string_equal(json_string_value(json_object_get(json_object_get(
        json_array_get(events, 0), "data"), "id")), "e0");

    assert_true(fx_export_del(f->ex, "e0", true, &err) < 0);
    assert_string_equal(bd_error_msg(err), "Export 'e0' is not found");
    bd_error_free(err);
    bd_graph_set_qevent_sink(f->g, NULL, NULL);
    json_decref(events);
}

static bool fuse_usable(void)
{
    return access("/dev/fuse", R_OK | W_OK) == 0 && geteuid() == 0;
}

/* Export node_name of f->g at f->file with extra options; asserts success. */
static void add_export(struct fixture *f, const char *id,
                       const char *node_name, const char *extra)
{
    char buf[512];
    char *msg = NULL;

    snprintf(buf, sizeof(buf), "fuse,id=%s,node-name=%s,mountpoint=%s,"
             "writable=on%s", id, node_name, f->file, extra);
    msg = try_add(f, buf);
    if (msg) {
        fail_msg("export failed: %s", msg);
    }
}

/* Swap the fixture's plain graph for one where the test drivers exist. */
static void use_test_graph(struct fixture *f)
{
    fx_exports_free(f->ex);
    bd_graph_free(f->g);
    f->g = td_graph_new();
    f->ex = fx_exports_new(f->g);
}

/*
 * FLUSH comes with every close(); by default it does not reach the node
 * (fsync does), with flush-on-close=on it does, as in qemu-storage-daemon.
 */
static void test_fuse_flush_on_close(void **state)
{
    struct fixture *f = *state;
    struct td_log log;
    struct bd_error *err = NULL;
    char data[512];
    json_t *o = NULL;
    int fd;

    if (!fuse_usable()) {
        skip();
    }
    use_test_graph(f);
    td_log_init(&log);
    o = json_pack("{s:s,s:s,s:s,s:I}", "driver", "test-mem", "node-name",
                  "m", "size", "1048576", "log", td_log_opt(&log));
    assert_non_null(bd_blockdev_add(f->g, o, true, &err));
    json_decref(o);
    memset(data, 0x42, sizeof(data));

    add_export(f, "e0", "m", "");
    fd = open(f->file, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, data, sizeof(data), 0), sizeof(data));
    assert_int_equal(close(fd), 0);
    assert_int_equal(td_log_count(&log, "m flush"), 0);
    fd = open(f->file, O_RDWR);
    assert_int_equal(fsync(fd), 0);
    assert_int_equal(td_log_count(&log, "m flush"), 1);
    assert_int_equal(pwrite(fd, data, sizeof(data), 512), sizeof(data));
    assert_int_equal(close(fd), 0);
    assert_int_equal(td_log_count(&log, "m flush"), 1);
    /* Removal flushes what was written since. */
    assert_int_equal(fx_export_del(f->ex, "e0", false, NULL), 0);
    assert_int_equal(td_log_count(&log, "m flush"), 2);

    add_export(f, "e1", "m", ",flush-on-close=on");
    fd = open(f->file, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, data, sizeof(data), 0), sizeof(data));
    assert_int_equal(close(fd), 0);
    assert_int_equal(td_log_count(&log, "m flush"), 3);
    assert_int_equal(fx_export_del(f->ex, "e1", false, NULL), 0);
    /* The node logs into our stack: close it before the log goes. */
    fx_exports_free(f->ex);
    bd_graph_free(f->g);
    f->g = bd_graph_new();
    f->ex = fx_exports_new(f->g);
    td_log_destroy(&log);
}

/* Errors of the graph reach the client as the same errno. */
static void test_fuse_errno_passthrough(void **state)
{
    struct fixture *f = *state;
    struct bd_error *err = NULL;
    char data[4096];
    json_t *o = NULL;
    int fd;

    if (!fuse_usable()) {
        skip();
    }
    use_test_graph(f);
    o = json_pack("{s:s,s:s,s:b,s:b,s:b,s:I,s:{s:s,s:s}}", "driver",
                  "test-fail", "node-name", "x", "fail-read", 1,
                  "fail-flush", 1, "fail-zeroes", 1,
                  "errno", (json_int_t)ENOSPC,
                  "file", "driver", "test-mem", "size", "1048576");
    assert_non_null(bd_blockdev_add(f->g, o, false, &err));
    json_decref(o);
    add_export(f, "e0", "x", "");
    fd = open(f->file, O_RDWR);
    assert_true(fd >= 0);
    memset(data, 1, sizeof(data));
    assert_int_equal(pwrite(fd, data, sizeof(data), 0), sizeof(data));
    assert_int_equal(pread(fd, data, sizeof(data), 0), -1);
    assert_int_equal(errno, ENOSPC);
    assert_int_equal(fsync(fd), -1);
    assert_int_equal(errno, ENOSPC);
    assert_int_equal(fallocate(fd, FALLOC_FL_ZERO_RANGE, 0, 4096), -1);
    assert_int_equal(errno, ENOSPC);
    close(fd);
    assert_int_equal(fx_export_del(f->ex, "e0", true, NULL), 0);
}

int unit_run_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fuse_option_messages, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fuse_json_types, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fuse_mountpoint_checks, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fuse_canonical_path, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fuse_export_lifecycle, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fuse_flush_on_close, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fuse_errno_passthrough, setup,
                                        teardown),
    };

    return cmocka_run_group_tests_name("fuse", tests, NULL, NULL);
}
