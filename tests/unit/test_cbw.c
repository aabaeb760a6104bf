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
#include "tests/unit/backup-fixture.h"
#include "tests/unit/unit.h"

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
    set_fault_delay(1500LL * 1000 * 1000);
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
#define T(x) cmocka_unit_test_setup_teardown(x, bf_setup, bf_teardown)
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
