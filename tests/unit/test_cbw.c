/*
 * tests/unit/test_cbw.c - driver/copy-before-write.c and
 * driver/snapshot-access.c: fleecing (the snapshot view while the guest
 * writes), on-cbw-error break-guest-write and break-snapshot with faults
 * from a file syscall table, the bitmap option, snapshot-access discard,
 * and a backup job failing once its filter broke the snapshot.
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
#include <unistd.h>
#include <cmocka.h>

#include "common/cutils.h"
#include "driver/block-int.h"
#include "driver/block.h"
#include "driver/dirty-bitmap.h"
#include "driver/file-sys.h"
#include "jobs/job.h"
#include "jobs/txn-actions.h"
#include "monitor/monitor.h"
#include "monitor/qmp-cmds.h"
#include "tests/unit/unit.h"

#define IMG_SIZE (4 << 20)
#define CL 65536

/* ------------------------------------------------------------------ */
/* Fault injection through the file driver's syscall table. The table is
 * per graph; the fault state is the test's (one test at a time).       */

struct fault {
    char path[256];         /* file whose I/O fails */
    int fd;
    bool on_write;
    int err;
    int times;              /* -1: forever */
    int64_t min_off;        /* only requests at/after this offset */
    int64_t delay_ns;       /* > 0: matching writes are slow, not failing */
};

static struct fault the_fault;
static pthread_mutex_t fault_lock = PTHREAD_MUTEX_INITIALIZER;
/* Which file each fd is (the latest open wins). */
static char fd_paths[256][128];

static int f_open(const char *path, int flags, mode_t mode)
{
    int fd = bd_file_sys_default.open(path, flags, mode);

    pthread_mutex_lock(&fault_lock);
    if (fd >= 0 && fd < 256) {
        snprintf(fd_paths[fd], sizeof(fd_paths[fd]), "%s", path);
    }
    pthread_mutex_unlock(&fault_lock);
    return fd;
}

static bool should_fail(int fd, bool write, off_t off)
{
    bool r = false;

    pthread_mutex_lock(&fault_lock);
    if (the_fault.times != 0 && fd == the_fault.fd &&
        write == the_fault.on_write && off >= the_fault.min_off) {
        r = true;
        if (the_fault.times > 0) {
            the_fault.times--;
        }
    }
    pthread_mutex_unlock(&fault_lock);
    return r;
}

static ssize_t f_preadv(int fd, const struct iovec *iov, int n, off_t off)
{
    if (should_fail(fd, false, off)) {
        errno = the_fault.err;
        return -1;
    }
    return bd_file_sys_default.preadv(fd, iov, n, off);
}

static ssize_t f_pwritev(int fd, const struct iovec *iov, int n, off_t off)
{
    if (should_fail(fd, true, off)) {
        if (the_fault.delay_ns > 0) {
            bd_sleep_ns(the_fault.delay_ns);
        } else {
            errno = the_fault.err;
            return -1;
        }
    }
    return bd_file_sys_default.pwritev(fd, iov, n, off);
}

static struct bd_file_sys fault_sys;

static void set_fault(const char *path, bool on_write, int err, int times,
                      int64_t min_off)
{
    pthread_mutex_lock(&fault_lock);
    snprintf(the_fault.path, sizeof(the_fault.path), "%s", path);
    the_fault.on_write = on_write;
    the_fault.err = err;
    the_fault.times = times;
    the_fault.min_off = min_off;
    the_fault.fd = -1;
    for (int i = 0; i < 256; i++) {
        if (!strcmp(fd_paths[i], path)) {
            the_fault.fd = i;
        }
    }
    pthread_mutex_unlock(&fault_lock);
}

static void clear_fault(void)
{
    pthread_mutex_lock(&fault_lock);
    the_fault.times = 0;
    the_fault.delay_ns = 0;
    pthread_mutex_unlock(&fault_lock);
}

/* ------------------------------------------------------------------ */
/* Fixture                                                              */

struct fixture {
    struct bd_graph *g;
    struct job_manager *m;
    struct qmp_context ctx;
    pthread_mutex_t lock;
    char log[16384];
    char dir[64];
    char src[128], tgt[128], tgt2[128], small[128];
    struct bd_blk *guest;
};

static void sink(void *opaque, const char *name, json_t *data)
{
    struct fixture *f = opaque;
    char item[300];
    const char *id = json_string_value(json_object_get(data, "device"));

    if (!id) {
        id = json_string_value(json_object_get(data, "id"));
    }
    if (!strcmp(name, "JOB_STATUS_CHANGE")) {
        snprintf(item, sizeof(item), "%s:%s ", id,
                 json_string_value(json_object_get(data, "status")));
    } else if (!strcmp(name, "BLOCK_JOB_ERROR")) {
        snprintf(item, sizeof(item), "%s:ERROR(%s,%s) ", id,
                 json_string_value(json_object_get(data, "operation")),
                 json_string_value(json_object_get(data, "action")));
    } else if (json_object_get(data, "error")) {
        snprintf(item, sizeof(item), "%s:%s(%s) ", id, name,
                 json_string_value(json_object_get(data, "error")));
    } else {
        snprintf(item, sizeof(item), "%s:%s ", id, name);
    }
    pthread_mutex_lock(&f->lock);
    strncat(f->log, item, sizeof(f->log) - strlen(f->log) - 1);
    pthread_mutex_unlock(&f->lock);
    json_decref(data);
}

static void make_file(const char *path, int64_t size, int seed)
{
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    uint8_t *buf = bd_malloc((size_t)size);
    int64_t i;

    assert_true(fd >= 0);
    for (i = 0; i < size; i++) {
        buf[i] = seed ? (uint8_t)((i / 512 + seed) * 7) : 0;
    }
    assert_int_equal(write(fd, buf, (size_t)size), size);
    close(fd);
    free(buf);
}

static void add_raw(struct fixture *f, const char *name, const char *path)
{
    struct bd_error *err = NULL;
    json_t *o = json_pack("{s:s, s:s, s:{s:s, s:s}}", "driver", "raw",
                          "node-name", name, "file", "driver", "file",
                          "filename", path);

    if (!bd_blockdev_add(f->g, o, false, &err)) {
        fail_msg("blockdev-add %s: %s", name, err->msg);
    }
    json_decref(o);
}

static int setup(void **state)
{
    struct fixture *f = bd_malloc0(sizeof(*f));
    struct bd_error *err = NULL;

    /* Strong references pull the command files out of the library. */
    assert_non_null(txn_backup_action("blockdev-backup"));
    assert_non_null(txn_bitmap_action("block-dirty-bitmap-add"));
    assert_non_null(qmp_jobs_commands());
    fault_sys = bd_file_sys_default;
    fault_sys.open = f_open;
    fault_sys.preadv = f_preadv;
    fault_sys.pwritev = f_pwritev;
    memset(&the_fault, 0, sizeof(the_fault));
    the_fault.fd = -1;

    pthread_mutex_init(&f->lock, NULL);
    snprintf(f->dir, sizeof(f->dir), "/tmp/blkrig-backup-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->src, sizeof(f->src), "%s/src.img", f->dir);
    snprintf(f->tgt, sizeof(f->tgt), "%s/tgt.img", f->dir);
    snprintf(f->tgt2, sizeof(f->tgt2), "%s/tgt2.img", f->dir);
    snprintf(f->small, sizeof(f->small), "%s/small.img", f->dir);
    make_file(f->src, IMG_SIZE, 1);
    make_file(f->tgt, IMG_SIZE, 0);
    make_file(f->tgt2, IMG_SIZE, 0);
    make_file(f->small, IMG_SIZE / 2, 0);
    f->g = bd_graph_new();
    bd_graph_set_file_sys(f->g, &fault_sys);
    f->m = job_manager_new(f->g);
    bd_graph_set_qevent_sink(f->g, sink, f);
    f->ctx.graph = f->g;
    f->ctx.jobs = f->m;
    add_raw(f, "src", f->src);
    add_raw(f, "tgt", f->tgt);
    add_raw(f, "tgt2", f->tgt2);
    add_raw(f, "small", f->small);
    /* The "guest": a backend on the source, as an export would be. */
    f->guest = bd_blk_new(f->g, NULL, BD_PERM_CONSISTENT_READ | BD_PERM_WRITE,
                          BD_PERM_ALL);
    assert_int_equal(bd_blk_insert(f->guest, bd_graph_find_node(f->g, "src"),
                                   &err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[200];

    clear_fault();
    job_manager_free(f->m);
    bd_blk_remove(f->guest);
    bd_blk_free(f->guest);
    bd_graph_free(f->g);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    pthread_mutex_destroy(&f->lock);
    free(f);
    return 0;
}

static const struct qmp_command *find_cmd(const char *name)
{
    const struct qmp_command *const tables[] = {
        qmp_cmds_backup, qmp_cmds_jobs, qmp_cmds_bitmap, NULL,
    };
    int t;

    for (t = 0; tables[t]; t++) {
        const struct qmp_command *c;

        for (c = tables[t]; c->name; c++) {
            if (!strcmp(c->name, name)) {
                return c;
            }
        }
    }
    fail_msg("no command %s", name);
    return NULL;
}

/* Run a command; returns the reply ("return" value or NULL) and the
 * error message in *msg (caller frees). */
static json_t *qmp(struct fixture *f, const char *name, const char *args,
                   char **msg)
{
    const struct qmp_command *c = find_cmd(name);
    json_error_t jerr;
    json_t *a = json_loads(args, 0, &jerr);
    struct bd_error *err = NULL;
    json_t *r;

    if (!a) {
        fail_msg("bad json %s: %s", args, jerr.text);
    }
    r = c->handler(&f->ctx, a, &err);
    json_decref(a);
    *msg = err ? bd_strdup(err->msg) : NULL;
    bd_error_free(err);
    return r;
}

static void ok(struct fixture *f, const char *name, const char *args)
{
    char *msg;
    json_t *r = qmp(f, name, args, &msg);

    if (!r) {
        fail_msg("%s %s: %s", name, args, msg);
    }
    json_decref(r);
}


static void wait_idle(struct fixture *f)
{
    assert_int_equal(job_manager_wait_idle(f->m, 20LL * 1000000000LL), 0);
}


static bool files_equal(const char *a, const char *b)
{
    char cmd[300];

    snprintf(cmd, sizeof(cmd), "cmp -s %s %s", a, b);
    return system(cmd) == 0;
}

static void guest_write(struct fixture *f, int64_t off, int64_t len, int c)
{
    char *buf = bd_malloc((size_t)len);

    memset(buf, c, (size_t)len);
    assert_int_equal(bd_blk_pwrite(f->guest, off, len, buf, 0), 0);
    free(buf);
}

static void log_is(struct fixture *f, const char *want)
{
    pthread_mutex_lock(&f->lock);
    assert_string_equal(f->log, want);
    f->log[0] = 0;
    pthread_mutex_unlock(&f->lock);
}



static struct bd_node *node(struct fixture *f, const char *name)
{
    struct bd_node *n = bd_graph_find_node(f->g, name);

    assert_non_null(n);
    return n;
}

static void add_json(struct fixture *f, const char *js)
{
    struct bd_error *err = NULL;
    json_error_t jerr;
    json_t *o = json_loads(js, 0, &jerr);

    assert_non_null(o);
    if (!bd_blockdev_add(f->g, o, false, &err)) {
        fail_msg("blockdev-add %s: %s", js, err->msg);
    }
    json_decref(o);
}

/* Fleecing: cbw above src, snapshot-access above cbw, the guest moved
 * onto cbw. */
static void fleece(struct fixture *f, const char *extra)
{
    char js[400];
    struct bd_error *err = NULL;

    snprintf(js, sizeof(js), "{\"driver\":\"copy-before-write\","
             "\"node-name\":\"cbw\",\"file\":\"src\",\"target\":\"tgt\"%s}",
             extra);
    add_json(f, js);
    add_json(f, "{\"driver\":\"snapshot-access\",\"node-name\":\"acc\","
             "\"file\":\"cbw\",\"discard\":\"unmap\"}");
    bd_drained_begin(node(f, "src"));
    assert_int_equal(bd_replace_node(node(f, "src"), node(f, "cbw"), &err),
                     0);
    bd_drained_end(node(f, "src"));
}

static int snap_read(struct fixture *f, int64_t off, int64_t len, void *buf)
{
    struct bd_qiov q;
    int r;

    bd_qiov_init_buf(&q, buf, (size_t)len);
    r = bd_node_preadv(node(f, "acc"), off, len, &q, 0);
    bd_qiov_destroy(&q);
    return r;
}

static void file_read(const char *path, int64_t off, int64_t len, void *buf)
{
    int fd = open(path, O_RDONLY);

    assert_true(fd >= 0);
    assert_int_equal(pread(fd, buf, (size_t)len, off), len);
    close(fd);
}

static void test_fleecing(void **state)
{
    struct fixture *f = *state;
    static uint8_t orig[IMG_SIZE], snap[IMG_SIZE], now[CL];
    struct bd_qiov q;
    char one = 0;

    file_read(f->src, 0, IMG_SIZE, orig);
    fleece(f, "");
    guest_write(f, 5 * CL + 7, 100, 0x11);
    guest_write(f, 40 * CL, 3 * CL, 0x22);
    assert_int_equal(snap_read(f, 0, IMG_SIZE, snap), 0);
    assert_memory_equal(orig, snap, IMG_SIZE);
    file_read(f->src, 5 * CL, CL, now);
    assert_int_equal(now[7], 0x11);
    /* Writes are not allowed on the snapshot. */
    bd_qiov_init_buf(&q, &one, 1);
    assert_int_equal(bd_node_pwritev(node(f, "acc"), 0, 1, &q, 0),
                     -ENOTSUP);
    bd_qiov_destroy(&q);
    /* discard drops whole clusters from the snapshot */
    assert_int_equal(bd_node_pdiscard(node(f, "acc"), 10 * CL + 1, 3 * CL),
                     0);
    assert_int_equal(snap_read(f, 11 * CL, 512, snap), -EACCES);
    assert_int_equal(snap_read(f, 10 * CL, 512, snap), 0);
    assert_int_equal(snap_read(f, 13 * CL, 512, snap), 0);
    /* ...and from copy-before-write: the target gets nothing there. */
    guest_write(f, 11 * CL, 512, 0x33);
    file_read(f->tgt, 11 * CL, CL, now);
    assert_true(bd_buffer_is_zero(now, CL));
}

/* break-guest-write: the guest write fails, nothing reaches the source,
 * the snapshot stays valid; a later write retries the copy. */
static void test_break_guest_write(void **state)
{
    struct fixture *f = *state;
    static uint8_t orig[CL], snap[CL], now[CL];
    char *buf = bd_malloc(512);

    file_read(f->src, 3 * CL, CL, orig);
    fleece(f, "");
    set_fault(f->tgt, true, EIO, 1, 0);
    memset(buf, 0x44, 512);
    assert_int_equal(bd_blk_pwrite(f->guest, 3 * CL, 512, buf, 0), -EIO);
    file_read(f->src, 3 * CL, CL, now);
    assert_memory_equal(orig, now, CL);
    assert_int_equal(snap_read(f, 3 * CL, CL, snap), 0);
    assert_memory_equal(orig, snap, CL);
    assert_int_equal(bd_blk_pwrite(f->guest, 3 * CL, 512, buf, 0), 0);
    assert_int_equal(snap_read(f, 3 * CL, CL, snap), 0);
    assert_memory_equal(orig, snap, CL);
    free(buf);
}

/* break-snapshot: the guest write succeeds, the snapshot is gone. */
static void test_break_snapshot(void **state)
{
    struct fixture *f = *state;
    static uint8_t snap[CL], now[CL];

    fleece(f, ",\"on-cbw-error\":\"break-snapshot\"");
    assert_int_equal(snap_read(f, 0, CL, snap), 0);
    set_fault(f->tgt, true, EIO, 1, 0);
    guest_write(f, 3 * CL, 512, 0x55);
    file_read(f->src, 3 * CL, CL, now);
    assert_int_equal(now[0], 0x55);
    assert_int_equal(snap_read(f, 0, CL, snap), -EACCES);
    assert_int_equal(snap_read(f, 20 * CL, CL, snap), -EACCES);
}

/* bitmap option: only clusters dirty in it are protected/readable. */
static void test_bitmap_option(void **state)
{
    struct fixture *f = *state;
    static uint8_t orig[CL], snap[CL], tgt[CL];
    struct bd_dirty_bitmap *bm;

    bm = bd_dirty_bitmap_create(node(f, "src"), CL, "fl", NULL);
    assert_non_null(bm);
    bd_dirty_bitmap_set(bm, 2 * CL, CL);
    file_read(f->src, 2 * CL, CL, orig);
    fleece(f, ",\"bitmap\":{\"node\":\"src\",\"name\":\"fl\"}");
    assert_int_equal(snap_read(f, 0, CL, snap), -EACCES);
    guest_write(f, 2 * CL, CL, 0x66);
    guest_write(f, 4 * CL, CL, 0x66);
    assert_int_equal(snap_read(f, 2 * CL, CL, snap), 0);
    assert_memory_equal(orig, snap, CL);
    file_read(f->tgt, 4 * CL, CL, tgt);
    assert_true(bd_buffer_is_zero(tgt, CL));
}

static void test_bad_options(void **state)
{
    struct fixture *f = *state;
    struct bd_error *err = NULL;
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "driver",
                          "copy-before-write", "node-name", "c",
                          "file", "src", "target", "tgt",
                          "on-cbw-error", "bogus");

    assert_null(bd_blockdev_add(f->g, o, false, &err));
    assert_string_equal(err->msg, "Parameter 'on-cbw-error' does not accept "
                        "value 'bogus'");
    bd_error_free(err);
    err = NULL;
    json_decref(o);
    o = json_pack("{s:s, s:s, s:s}", "driver", "snapshot-access",
                  "node-name", "a", "file", "src");
    assert_null(bd_blockdev_add(f->g, o, false, &err));
    assert_string_equal(err->msg, "File child is not a copy-before-write "
                        "filter");
    bd_error_free(err);
    json_decref(o);
}

/* A backup with on-cbw-error=break-snapshot fails as soon as its filter
 * broke the snapshot, with a message saying so (QEMU completes with a
 * copy that is not point-in-time; docs/compat.md). */
static void test_backup_break_snapshot(void **state)
{
    struct fixture *f = *state;

    ok(f, "blockdev-backup", "{\"job-id\":\"b\",\"device\":\"src\","
       "\"target\":\"tgt\",\"sync\":\"full\",\"speed\":1,"
       "\"on-cbw-error\":\"break-snapshot\"}");
    set_fault(f->tgt, true, EIO, -1, 2 << 20);
    guest_write(f, 3 << 20, 512, 0x77);
    /* The job may have noticed already (before its first chunk). */
    {
        char *msg = NULL;

        json_decref(qmp(f, "block-job-set-speed",
                        "{\"device\":\"b\",\"speed\":0}", &msg));
        free(msg);
    }
    wait_idle(f);
    log_is(f, "b:created b:running b:aborting "
           "b:BLOCK_JOB_COMPLETED(copy-before-write failed (Input/output "
           "error) and on-cbw-error is break-snapshot: the target is no "
           "longer a point-in-time copy) b:concluded b:null ");
    clear_fault();
}

/* Default break-guest-write on a backup: the guest write fails, the job
 * is not affected and its copy stays point-in-time. */
static void test_backup_break_guest_write(void **state)
{
    struct fixture *f = *state;
    char orig[160];
    char cmd[400];
    char *buf = bd_malloc(512);

    snprintf(orig, sizeof(orig), "%s/orig.img", f->dir);
    snprintf(cmd, sizeof(cmd), "cp %s %s", f->src, orig);
    assert_int_equal(system(cmd), 0);
    ok(f, "blockdev-backup", "{\"job-id\":\"g\",\"device\":\"src\","
       "\"target\":\"tgt\",\"sync\":\"full\",\"speed\":1}");
    set_fault(f->tgt, true, EIO, 1, 2 << 20);
    memset(buf, 0x78, 512);
    assert_int_equal(bd_blk_pwrite(f->guest, 3 << 20, 512, buf, 0), -EIO);
    ok(f, "block-job-set-speed", "{\"device\":\"g\",\"speed\":0}");
    wait_idle(f);
    log_is(f, "g:created g:running g:waiting g:pending g:BLOCK_JOB_COMPLETED "
           "g:concluded g:null ");
    assert_true(files_equal(orig, f->tgt));
    free(buf);
}

/* cbw-timeout: a copy slower than the timeout fails the guest write with
 * ETIMEDOUT (nothing written to the source); the copy itself completes
 * and the snapshot stays valid. The write takes 1.5 s, the limit is 1 s;
 * the retry 0.5 s later waits for that copy (well within its own 1 s). */
static void test_cbw_timeout(void **state)
{
    struct fixture *f = *state;
    static uint8_t orig[CL], snap[CL], now[CL];
    char *buf = bd_malloc(512);

    file_read(f->src, 6 * CL, CL, orig);
    fleece(f, ",\"cbw-timeout\":1");
    set_fault(f->tgt, true, 0, 1, 0);
    pthread_mutex_lock(&fault_lock);
    the_fault.delay_ns = 1500LL * 1000 * 1000;
    pthread_mutex_unlock(&fault_lock);
    memset(buf, 0x99, 512);
    assert_int_equal(bd_blk_pwrite(f->guest, 6 * CL, 512, buf, 0),
                     -ETIMEDOUT);
    file_read(f->src, 6 * CL, CL, now);
    assert_memory_equal(orig, now, CL);
    /* The retry waits for the copy still in flight, then goes through. */
    assert_int_equal(bd_blk_pwrite(f->guest, 6 * CL, 512, buf, 0), 0);
    assert_int_equal(snap_read(f, 6 * CL, CL, snap), 0);
    assert_memory_equal(orig, snap, CL);
    clear_fault();
    free(buf);
}

int unit_run_tests(void)
{
    const struct CMUnitTest tests[] = {
#define T(x) cmocka_unit_test_setup_teardown(x, setup, teardown)
        T(test_fleecing),
        T(test_break_guest_write),
        T(test_break_snapshot),
        T(test_bitmap_option),
        T(test_cbw_timeout),
        T(test_bad_options),
        T(test_backup_break_snapshot),
        T(test_backup_break_guest_write),
#undef T
    };

    return cmocka_run_group_tests_name("cbw", tests, NULL, NULL);
}
