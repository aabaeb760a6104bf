/*
 * tests/unit/backup-fixture.c - the fixture of test_backup and test_cbw
 * (contract in backup-fixture.h).
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
#include "driver/file-sys.h"
#include "jobs/job.h"
#include "jobs/txn-actions.h"
#include "monitor/monitor.h"
#include "monitor/qmp-cmds.h"
#include "tests/unit/backup-fixture.h"

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

void set_fault(const char *path, bool on_write, int err, int times,
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

void set_fault_delay(int64_t ns)
{
    pthread_mutex_lock(&fault_lock);
    the_fault.delay_ns = ns;
    pthread_mutex_unlock(&fault_lock);
}

void clear_fault(void)
{
    pthread_mutex_lock(&fault_lock);
    the_fault.times = 0;
    the_fault.delay_ns = 0;
    pthread_mutex_unlock(&fault_lock);
}

/* ------------------------------------------------------------------ */
/* Fixture                                                              */

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

void make_file(const char *path, int64_t size, int seed)
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

void add_raw(struct fixture *f, const char *name, const char *path)
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

int bf_setup(void **state)
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

int bf_teardown(void **state)
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
json_t *qmp(struct fixture *f, const char *name, const char *args,
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

void ok(struct fixture *f, const char *name, const char *args)
{
    char *msg;
    json_t *r = qmp(f, name, args, &msg);

    if (!r) {
        fail_msg("%s %s: %s", name, args, msg);
    }
    json_decref(r);
}

void wait_idle(struct fixture *f)
{
    assert_int_equal(job_manager_wait_idle(f->m, 20LL * 1000000000LL), 0);
}

void err_is(struct fixture *f, const char *name, const char *args,
            const char *want)
{
    char *msg;
    json_t *r = qmp(f, name, args, &msg);

    if (r) {
        fail_msg("%s %s succeeded, wanted: %s", name, args, want);
    }
    assert_string_equal(msg, want);
    free(msg);
}
