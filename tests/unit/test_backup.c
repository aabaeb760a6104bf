/*
 * tests/unit/test_backup.c - jobs/backup.c, driver/copy-before-write.c and
 * monitor/qmp-backup.c + qmp-jobs.c driven through their QMP table entries
 * on real files: data, point in time, error policies (faults from a file
 * syscall table), bitmap sync modes, validation messages, job verbs,
 * grouped transactions, compress into qcow2 and discard-source. Event
 * sequences are those of specs/jobs.md §1.4.
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
#include "driver/qcow2.h"
#include "jobs/job.h"
#include "jobs/txn-actions.h"
#include "monitor/monitor.h"
#include "monitor/qmp-cmds.h"
#include "tests/unit/backup-fixture.h"
#include "tests/unit/unit.h"

static void wait_status(struct fixture *f, const char *id, const char *st)
{
    int i;

    for (i = 0; i < 10000; i++) {
        struct job *j;

        job_lock(f->m);
        j = job_find(f->m, id);
        if (j && !strcmp(job_status_names[j->status], st)) {
            job_unlock(f->m);
            return;
        }
        job_unlock(f->m);
        bd_sleep_ns(1000 * 1000);
    }
    fail_msg("job %s did not reach %s", id, st);
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

static int64_t bitmap_count(struct fixture *f, const char *name)
{
    struct bd_dirty_bitmap *bm =
        bd_dirty_bitmap_find(bd_graph_find_node(f->g, "src"), name);

    assert_non_null(bm);
    return (int64_t)bd_dirty_bitmap_count(bm);
}

/* ------------------------------------------------------------------ */
/* Tests                                                                */

static void test_full_backup(void **state)
{
    struct fixture *f = *state;

    ok(f, "blockdev-backup", "{\"job-id\":\"j\",\"device\":\"src\","
       "\"target\":\"tgt\",\"sync\":\"full\"}");
    wait_idle(f);
    log_is(f, "j:created j:running j:waiting j:pending j:BLOCK_JOB_COMPLETED "
           "j:concluded j:null ");
    assert_true(files_equal(f->src, f->tgt));
    /* The filter is gone: the guest writes straight to the source. */
    assert_string_equal(bd_node_driver_name(bd_blk_node(f->guest)), "raw");
}

/* Guest writes during the backup never reach the copy. */
static void test_point_in_time(void **state)
{
    struct fixture *f = *state;
    char orig[160];
    char cmd[400];
    int i;

    snprintf(orig, sizeof(orig), "%s/orig.img", f->dir);
    snprintf(cmd, sizeof(cmd), "cp %s %s", f->src, orig);
    assert_int_equal(system(cmd), 0);
    /* 1 byte/s: after its first chunk the job sleeps until set-speed. */
    ok(f, "blockdev-backup", "{\"job-id\":\"j\",\"device\":\"src\","
       "\"target\":\"tgt\",\"sync\":\"full\",\"speed\":1,"
       "\"filter-node-name\":\"cbw0\"}");
    assert_string_equal(bd_node_name(bd_blk_node(f->guest)), "cbw0");
    for (i = 0; i < 64; i++) {
        guest_write(f, (int64_t)i * CL + 100, 1000, 0xee);
    }
    ok(f, "block-job-set-speed", "{\"device\":\"j\",\"speed\":0}");
    wait_idle(f);
    assert_true(files_equal(orig, f->tgt));
    assert_false(files_equal(f->src, f->tgt));
}

/* Two backups of one source: the first to finish takes only its own
 * filter out, the second keeps protecting its point in time. */
static void test_two_backups(void **state)
{
    struct fixture *f = *state;
    char orig[160];
    char cmd[400];
    int i;

    snprintf(orig, sizeof(orig), "%s/orig.img", f->dir);
    snprintf(cmd, sizeof(cmd), "cp %s %s", f->src, orig);
    assert_int_equal(system(cmd), 0);
    ok(f, "blockdev-backup", "{\"job-id\":\"j1\",\"device\":\"src\","
       "\"target\":\"tgt\",\"sync\":\"full\",\"speed\":1}");
    ok(f, "blockdev-backup", "{\"job-id\":\"j2\",\"device\":\"src\","
       "\"target\":\"tgt2\",\"sync\":\"full\",\"speed\":1}");
    guest_write(f, 20 * CL, 512, 0xaa);
    ok(f, "block-job-set-speed", "{\"device\":\"j1\",\"speed\":0}");
    wait_status(f, "j2", "running");
    while (job_find(f->m, "j1")) {
        bd_sleep_ns(1000 * 1000);
    }
    for (i = 0; i < 64; i++) {
        guest_write(f, (int64_t)i * CL, 512, 0xbb);
    }
    ok(f, "block-job-set-speed", "{\"device\":\"j2\",\"speed\":0}");
    wait_idle(f);
    assert_true(files_equal(orig, f->tgt));
    assert_true(files_equal(orig, f->tgt2));
    assert_string_equal(bd_node_driver_name(bd_blk_node(f->guest)), "raw");
}

/* The spec's policy matrix on the target side, one failing write. */
static void run_policy(struct fixture *f, const char *policy, int err,
                       const char *want_log, bool want_equal)
{
    char args[300];

    make_file(f->tgt, IMG_SIZE, 0);
    set_fault(f->tgt, true, err, 1, 0);
    snprintf(args, sizeof(args), "{\"job-id\":\"p\",\"device\":\"src\","
             "\"target\":\"tgt\",\"sync\":\"full\","
             "\"on-target-error\":\"%s\"}", policy);
    ok(f, "blockdev-backup", args);
    if (!strcmp(policy, "stop") || (!strcmp(policy, "enospc") &&
                                    err == ENOSPC)) {
        json_t *info;
        char *msg;

        wait_status(f, "p", "paused");
        info = qmp(f, "query-block-jobs", "{}", &msg);
        assert_string_equal(json_string_value(json_object_get(
            json_array_get(info, 0), "io-status")),
            err == ENOSPC ? "nospace" : "failed");
        json_decref(info);
        err_is(f, "block-job-cancel", "{\"device\":\"p\"}",
               "The block job for device 'p' is currently paused");
        ok(f, "job-resume", "{\"id\":\"p\"}");
    }
    wait_idle(f);
    log_is(f, want_log);
    assert_true(files_equal(f->src, f->tgt) == want_equal);
    clear_fault();
}

static void test_policy_report(void **state)
{
    run_policy(*state, "report", EIO,
               "p:created p:running p:ERROR(write,report) p:aborting "
               "p:BLOCK_JOB_COMPLETED(Input/output error) p:concluded p:null ",
               false);
}

static void test_policy_ignore(void **state)
{
    run_policy(*state, "ignore", EIO,
               "p:created p:running p:ERROR(write,ignore) p:waiting "
               "p:pending p:BLOCK_JOB_COMPLETED p:concluded p:null ", true);
}

static void test_policy_stop(void **state)
{
    run_policy(*state, "stop", EIO,
               "p:created p:running p:ERROR(write,stop) p:paused p:running "
               "p:waiting p:pending p:BLOCK_JOB_COMPLETED p:concluded "
               "p:null ", true);
}

static void test_policy_enospc(void **state)
{
    run_policy(*state, "enospc", ENOSPC,
               "p:created p:running p:ERROR(write,stop) p:paused p:running "
               "p:waiting p:pending p:BLOCK_JOB_COMPLETED p:concluded "
               "p:null ", true);
    run_policy(*state, "enospc", EIO,
               "p:created p:running p:ERROR(write,report) p:aborting "
               "p:BLOCK_JOB_COMPLETED(Input/output error) p:concluded p:null ",
               false);
    run_policy(*state, "report", ENOSPC,
               "p:created p:running p:ERROR(write,report) p:aborting "
               "p:BLOCK_JOB_COMPLETED(No space left on device) p:concluded "
               "p:null ", false);
}

/* Source side: a read fault goes through on-source-error as "read". */
static void test_policy_source(void **state)
{
    struct fixture *f = *state;

    set_fault(f->src, false, EIO, 1, 0);
    ok(f, "blockdev-backup", "{\"job-id\":\"s\",\"device\":\"src\","
       "\"target\":\"tgt\",\"sync\":\"full\",\"on-source-error\":\"ignore\","
       "\"on-target-error\":\"report\"}");
    wait_idle(f);
    log_is(f, "s:created s:running s:ERROR(read,ignore) s:waiting s:pending "
           "s:BLOCK_JOB_COMPLETED s:concluded s:null ");
    assert_true(files_equal(f->src, f->tgt));
}

/* Incremental chain: anchor full backup, incremental with a failure
 * (bitmap keeps old bits + new writes), then a successful retry. */
static void test_incremental_chain(void **state)
{
    struct fixture *f = *state;

    ok(f, "block-dirty-bitmap-add", "{\"node\":\"src\",\"name\":\"b\"}");
    guest_write(f, 0, 512, 1);
    ok(f, "blockdev-backup", "{\"job-id\":\"a\",\"device\":\"src\","
       "\"target\":\"tgt\",\"sync\":\"full\",\"bitmap\":\"b\","
       "\"bitmap-mode\":\"on-success\"}");
    wait_idle(f);
    assert_int_equal(bitmap_count(f, "b"), 0);
    assert_true(files_equal(f->src, f->tgt));
    f->log[0] = 0;

    guest_write(f, 3 * CL, 512, 2);
    guest_write(f, 9 * CL, 512, 3);
    assert_int_equal(bitmap_count(f, "b"), 2 * CL);
    set_fault(f->src, false, EIO, 1, 9 * CL);
    ok(f, "blockdev-backup", "{\"job-id\":\"i\",\"device\":\"src\","
       "\"target\":\"tgt2\",\"sync\":\"incremental\",\"bitmap\":\"b\"}");
    wait_idle(f);
    log_is(f, "i:created i:running i:ERROR(read,report) i:aborting "
           "i:BLOCK_JOB_COMPLETED(Input/output error) i:concluded i:null ");
    assert_int_equal(bitmap_count(f, "b"), 2 * CL);

    ok(f, "blockdev-backup", "{\"job-id\":\"i\",\"device\":\"src\","
       "\"target\":\"tgt2\",\"sync\":\"incremental\",\"bitmap\":\"b\"}");
    wait_idle(f);
    assert_int_equal(bitmap_count(f, "b"), 0);
    {
        /* tgt2 holds exactly the two dirty clusters. */
        uint8_t a[CL], b[CL];
        int fa = open(f->src, O_RDONLY), fb = open(f->tgt2, O_RDONLY);

        assert_int_equal(pread(fa, a, CL, 9 * CL), CL);
        assert_int_equal(pread(fb, b, CL, 9 * CL), CL);
        assert_memory_equal(a, b, CL);
        assert_int_equal(pread(fb, b, CL, 5 * CL), CL);
        assert_true(bd_buffer_is_zero(b, CL));
        close(fa);
        close(fb);
    }
}

/* bitmap-mode always after a failure keeps what was not copied. */
static void test_bitmap_always_failure(void **state)
{
    struct fixture *f = *state;

    ok(f, "block-dirty-bitmap-add", "{\"node\":\"src\",\"name\":\"b\"}");
    set_fault(f->tgt, true, EIO, 1, 32 * CL);
    ok(f, "blockdev-backup", "{\"job-id\":\"w\",\"device\":\"src\","
       "\"target\":\"tgt\",\"sync\":\"full\",\"bitmap\":\"b\","
       "\"bitmap-mode\":\"always\"}");
    wait_idle(f);
    /* The fault fails the first target write at or past cluster 32: the
     * chunk of clusters 32-47 or 48-63, whichever of the four chunks in
     * flight writes there first. That chunk stays dirty; how many others
     * were cut short depends on thread timing. The second backup below
     * proves that every clean cluster was really copied: it copies only
     * the dirty ones and the files must then be equal. */
    struct bd_dirty_bitmap *bm = bd_dirty_bitmap_find(
        bd_graph_find_node(f->g, "src"), "b");
    int64_t left = bitmap_count(f, "b");

    assert_true(left >= 16 * CL);
    assert_true(bd_dirty_bitmap_get(bm, 32 * CL) ||
                bd_dirty_bitmap_get(bm, 48 * CL));
    clear_fault();
    ok(f, "blockdev-backup", "{\"job-id\":\"w\",\"device\":\"src\","
       "\"target\":\"tgt\",\"sync\":\"bitmap\",\"bitmap\":\"b\","
       "\"bitmap-mode\":\"never\"}");
    wait_idle(f);
    assert_int_equal(bitmap_count(f, "b"), left);
    assert_true(files_equal(f->src, f->tgt));
}

/*
 * The bitmap-sync matrix of QEMU's iotest 257 (specs/jobs.md §3.6): sync
 * (bitmap, full) x bitmap-mode (on-success, never, always) x outcome
 * (success, failure: a target write fault with policy stop and then a
 * cancel, cancel in pending). B0 = clusters {1, 5, 40}; W = cluster 60,
 * written while the job waits (pending, or stopped). R (clusters the job
 * did not copy) is read back from the target: a cluster of the copy set
 * that is still zero there. Expected bitmap after the job:
 *   success: on-success/always -> W, never -> B0+W
 *   failure: on-success/never -> B0+W, always -> W+R
 */
enum outcome { OUT_SUCCESS, OUT_FAIL, OUT_CANCEL_PENDING };

static bool target_cluster_zero(struct fixture *f, int c)
{
    static uint8_t buf[CL];
    int fd = open(f->tgt, O_RDONLY);

    assert_true(fd >= 0);
    assert_int_equal(pread(fd, buf, CL, (off_t)c * CL), CL);
    close(fd);
    return bd_buffer_is_zero(buf, CL);
}

static void run_matrix_case(struct fixture *f, const char *sync,
                            const char *mode, enum outcome out)
{
    static const int b0[] = { 1, 5, 40 };
    const int w = 60;
    const int nclusters = IMG_SIZE / CL;
    bool want[IMG_SIZE / CL];
    struct bd_dirty_bitmap *bm;
    char args[400];
    bool in_b0;
    int c;
    size_t i;

    make_file(f->tgt, IMG_SIZE, 0);
    ok(f, "block-dirty-bitmap-add", "{\"node\":\"src\",\"name\":\"m\"}");
    for (i = 0; i < BD_ARRAY_SIZE(b0); i++) {
        guest_write(f, (int64_t)b0[i] * CL + 100, 512, 0x21);
    }
    if (out == OUT_FAIL) {
        set_fault(f->tgt, true, EIO, -1, 2 << 20);
    }
    snprintf(args, sizeof(args), "{\"job-id\":\"x\",\"device\":\"src\","
             "\"target\":\"tgt\",\"sync\":\"%s\",\"bitmap\":\"m\","
             "\"bitmap-mode\":\"%s\",\"on-target-error\":\"stop\","
             "\"auto-finalize\":false}", sync, mode);
    ok(f, "blockdev-backup", args);
    wait_status(f, "x", out == OUT_FAIL ? "paused" : "pending");
    clear_fault();
    guest_write(f, (int64_t)w * CL, 512, 0x22);
    if (out == OUT_SUCCESS) {
        ok(f, "job-finalize", "{\"id\":\"x\"}");
    } else {
        ok(f, "job-cancel", "{\"id\":\"x\"}");
    }
    wait_idle(f);

    for (c = 0; c < nclusters; c++) {
        in_b0 = c == 1 || c == 5 || c == 40;
        if (out == OUT_SUCCESS) {
            want[c] = c == w || (in_b0 && !strcmp(mode, "never"));
        } else if (!strcmp(mode, "always")) {
            bool in_copy_set = !strcmp(sync, "full") || in_b0;

            want[c] = c == w || (in_copy_set && target_cluster_zero(f, c));
        } else {
            want[c] = c == w || in_b0;
        }
    }
    bm = bd_dirty_bitmap_find(bd_graph_find_node(f->g, "src"), "m");
    assert_false(bm->busy);
    for (c = 0; c < nclusters; c++) {
        if (bd_dirty_bitmap_get(bm, (int64_t)c * CL) != want[c]) {
            fail_msg("sync=%s mode=%s outcome=%d: cluster %d is %d", sync,
                     mode, out, c, !want[c]);
        }
    }
    if (out == OUT_FAIL && !strcmp(mode, "always")) {
        /* The failed chunk was not copied, so R is not empty. */
        assert_true(bd_dirty_bitmap_count(bm) > CL);
    }
    ok(f, "block-dirty-bitmap-remove", "{\"node\":\"src\",\"name\":\"m\"}");
    f->log[0] = 0;
}

static void test_bitmap_matrix(void **state)
{
    static const char *const syncs[] = { "bitmap", "full" };
    static const char *const modes[] = { "on-success", "never", "always" };
    size_t s;
    size_t m;
    int o;

    for (s = 0; s < BD_ARRAY_SIZE(syncs); s++) {
        for (m = 0; m < BD_ARRAY_SIZE(modes); m++) {
            if (!strcmp(modes[m], "never") && strcmp(syncs[s], "bitmap")) {
                continue;   /* refused (test_validation) */
            }
            for (o = OUT_SUCCESS; o <= OUT_CANCEL_PENDING; o++) {
                run_matrix_case(*state, syncs[s], modes[m], (enum outcome)o);
            }
        }
    }
}

/* Offset of the only job, from query-block-jobs. */
static int64_t job_offset(struct fixture *f)
{
    char *msg;
    json_t *info = qmp(f, "query-block-jobs", "{}", &msg);
    int64_t off;

    assert_non_null(info);
    off = (int64_t)json_integer_value(json_object_get(json_array_get(info, 0),
                                                      "offset"));
    json_decref(info);
    return off;
}

/*
 * x-perf max-workers=1 copies one chunk at a time, in order: a target
 * write failing at 2 MiB stops the job after exactly the first 32 clusters,
 * and with bitmap-mode=always the uncopied rest stays in the bitmap. A
 * guest write while the job is paused copies its cluster at once, and the
 * progress shows it without waiting for the body to run again (QEMU's
 * block-copy advances the job's meter itself; blkrig used to show it only
 * after the next pass, so the cancelled event missed it).
 */
static void test_max_workers_serial(void **state)
{
    struct fixture *f = *state;

    ok(f, "block-dirty-bitmap-add", "{\"node\":\"src\",\"name\":\"w\"}");
    /* Only the first write at or past 2 MiB fails: with chunks in
     * parallel that would cost one cluster, serially it ends the pass. */
    set_fault(f->tgt, true, EIO, 1, 2 << 20);
    ok(f, "blockdev-backup", "{\"job-id\":\"s\",\"device\":\"src\","
       "\"target\":\"tgt\",\"sync\":\"full\",\"bitmap\":\"w\","
       "\"bitmap-mode\":\"always\",\"on-target-error\":\"stop\","
       "\"x-perf\":{\"max-workers\":1,\"max-chunk\":65536}}");
    wait_status(f, "s", "paused");
    assert_int_equal(job_offset(f), 32 * CL);
    clear_fault();
    guest_write(f, 60 * CL, 512, 0x33);
    assert_int_equal(job_offset(f), 33 * CL);
    ok(f, "job-cancel", "{\"id\":\"s\"}");
    wait_idle(f);
    assert_non_null(strstr(f->log, "s:BLOCK_JOB_CANCELLED"));
    /* W = {60}, R = {32..63} without 60, which the guest write copied. */
    assert_int_equal(bitmap_count(f, "w"), 32 * CL);
    assert_false(target_cluster_zero(f, 60));
    assert_true(target_cluster_zero(f, 61));
}

static void test_validation(void **state)
{
    struct fixture *f = *state;
    const char *bb = "blockdev-backup";

    ok(f, "block-dirty-bitmap-add", "{\"node\":\"src\",\"name\":\"b\"}");
    err_is(f, bb, "{\"device\":\"nope\",\"target\":\"tgt\",\"sync\":\"full\"}",
           "Cannot find device='nope' nor node-name='nope'");
    err_is(f, bb, "{\"device\":\"src\",\"target\":\"tgt\",\"sync\":\"bitmap\"}",
           "must provide a valid bitmap name for 'bitmap' sync mode");
    err_is(f, bb, "{\"device\":\"src\",\"target\":\"tgt\","
           "\"sync\":\"incremental\"}",
           "must provide a valid bitmap name for 'incremental' sync mode");
    err_is(f, bb, "{\"device\":\"src\",\"target\":\"tgt\","
           "\"sync\":\"incremental\",\"bitmap\":\"b\",\"bitmap-mode\":"
           "\"always\"}", "Bitmap sync mode must be 'on-success' when using "
           "sync mode 'incremental'");
    err_is(f, bb, "{\"device\":\"src\",\"target\":\"tgt\",\"sync\":\"full\","
           "\"bitmap\":\"x\"}", "Bitmap 'x' could not be found");
    err_is(f, bb, "{\"device\":\"src\",\"target\":\"tgt\",\"sync\":\"full\","
           "\"bitmap\":\"b\"}",
           "Bitmap sync mode must be given when providing a bitmap");
    err_is(f, bb, "{\"device\":\"src\",\"target\":\"tgt\",\"sync\":\"none\","
           "\"bitmap\":\"b\",\"bitmap-mode\":\"always\"}",
           "sync mode 'none' does not produce meaningful bitmap outputs");
    err_is(f, bb, "{\"device\":\"src\",\"target\":\"tgt\",\"sync\":\"full\","
           "\"bitmap\":\"b\",\"bitmap-mode\":\"never\"}",
           "Bitmap sync mode 'never' has no meaningful effect when combined "
           "with sync mode 'full'");
    err_is(f, bb, "{\"device\":\"src\",\"target\":\"tgt\",\"sync\":\"full\","
           "\"bitmap-mode\":\"always\"}",
           "Cannot specify bitmap sync mode without a bitmap");
    err_is(f, bb, "{\"device\":\"src\",\"target\":\"src\",\"sync\":\"full\"}",
           "Source and target cannot be the same");
    err_is(f, bb, "{\"device\":\"src\",\"target\":\"small\","
           "\"sync\":\"full\",\"bitmap\":\"b\",\"bitmap-mode\":\"always\"}",
           "Source and target image have different sizes");
    err_is(f, bb, "{\"device\":\"src\",\"target\":\"tgt\",\"sync\":\"full\","
           "\"compress\":true}",
           "Compression is not supported for this drive ");
    err_is(f, bb, "{\"device\":\"src\",\"target\":\"tgt\",\"sync\":\"full\"}",
           "Invalid job ID ''");
    err_is(f, bb, "{\"job-id\":\"1bad\",\"device\":\"src\",\"target\":\"tgt\","
           "\"sync\":\"full\"}", "Invalid job ID '1bad'");
    err_is(f, bb, "{\"job-id\":\"j\",\"device\":\"src\",\"target\":\"tgt\","
           "\"sync\":\"full\",\"speed\":-1}",
           "Parameter 'speed' expects a non-negative value");
    err_is(f, bb, "{\"job-id\":\"j\",\"device\":\"src\",\"target\":\"tgt\","
           "\"sync\":\"full\",\"x-perf\":{\"max-chunk\":4096}}",
           "Required max-chunk (4096) is less than backup cluster size "
           "(65536)");
    /* Nothing was left behind: bitmap usable, no filter, no job. */
    assert_false(bd_dirty_bitmap_find(bd_graph_find_node(f->g, "src"),
                                      "b")->busy);
    assert_string_equal(bd_node_driver_name(bd_blk_node(f->guest)), "raw");
    assert_string_equal(f->log, "");
}

/* Verbs on a running, paused, pending and concluded backup. */
static void test_verbs(void **state)
{
    struct fixture *f = *state;
    json_t *r;
    char *msg;

    ok(f, "blockdev-backup", "{\"job-id\":\"v\",\"device\":\"src\","
       "\"target\":\"tgt\",\"sync\":\"full\",\"speed\":1,"
       "\"auto-finalize\":false,\"auto-dismiss\":false}");
    err_is(f, "blockdev-backup", "{\"job-id\":\"v\",\"device\":\"src\","
           "\"target\":\"tgt2\",\"sync\":\"full\"}",
           "Job ID 'v' already in use");
    err_is(f, "job-complete", "{\"id\":\"v\"}",
           "Job 'v' in state 'running' cannot accept command verb "
           "'complete'");
    err_is(f, "job-finalize", "{\"id\":\"v\"}",
           "Job 'v' in state 'running' cannot accept command verb "
           "'finalize'");
    err_is(f, "job-dismiss", "{\"id\":\"v\"}",
           "Job 'v' in state 'running' cannot accept command verb "
           "'dismiss'");
    err_is(f, "job-resume", "{\"id\":\"v\"}",
           "Can't resume a job that was not paused");
    err_is(f, "job-pause", "{\"id\":\"nope\"}", "Job not found");
    err_is(f, "block-job-pause", "{\"device\":\"nope\"}",
           "Block job 'nope' not found");
    ok(f, "job-pause", "{\"id\":\"v\"}");
    wait_status(f, "v", "paused");
    err_is(f, "job-pause", "{\"id\":\"v\"}", "Job is already paused");
    ok(f, "block-job-set-speed", "{\"device\":\"v\",\"speed\":0}");
    err_is(f, "block-job-set-speed", "{\"device\":\"v\",\"speed\":-5}",
           "Parameter 'speed' expects a non-negative value");
    err_is(f, "block-job-cancel", "{\"device\":\"v\"}",
           "The block job for device 'v' is currently paused");
    r = qmp(f, "query-jobs", "{}", &msg);
    assert_int_equal(json_array_size(r), 1);
    json_decref(r);
    ok(f, "block-job-resume", "{\"device\":\"v\"}");
    wait_status(f, "v", "pending");
    ok(f, "job-finalize", "{\"id\":\"v\"}");
    wait_status(f, "v", "concluded");
    err_is(f, "job-cancel", "{\"id\":\"v\"}",
           "Job 'v' in state 'concluded' cannot accept command verb "
           "'cancel'");
    err_is(f, "job-resume", "{\"id\":\"v\"}",
           "Can't resume a job that was not paused");
    ok(f, "job-dismiss", "{\"id\":\"v\"}");
    log_is(f, "v:created v:running v:paused v:running v:waiting v:pending "
           "v:BLOCK_JOB_PENDING v:BLOCK_JOB_COMPLETED v:concluded v:null ");
    assert_true(files_equal(f->src, f->tgt));
}

/* Cancel in pending is a failure for the bitmap. */
static void test_cancel_pending(void **state)
{
    struct fixture *f = *state;

    ok(f, "block-dirty-bitmap-add", "{\"node\":\"src\",\"name\":\"b\"}");
    guest_write(f, 0, 512, 1);
    ok(f, "blockdev-backup", "{\"job-id\":\"c\",\"device\":\"src\","
       "\"target\":\"tgt\",\"sync\":\"incremental\",\"bitmap\":\"b\","
       "\"auto-finalize\":false}");
    wait_status(f, "c", "pending");
    ok(f, "job-cancel", "{\"id\":\"c\"}");
    wait_idle(f);
    log_is(f, "c:created c:running c:waiting c:pending c:BLOCK_JOB_PENDING "
           "c:aborting c:BLOCK_JOB_CANCELLED c:concluded c:null ");
    assert_int_equal(bitmap_count(f, "b"), CL);
}

/* Grouped transaction: one member fails, the other is cancelled, both
 * bitmaps keep their bits, the bitmap-add in front is undone when a
 * later action fails. */
static void test_grouped_transaction(void **state)
{
    struct fixture *f = *state;

    err_is(f, "transaction", "{\"actions\":["
           "{\"type\":\"block-dirty-bitmap-add\",\"data\":{\"node\":\"src\","
           "\"name\":\"t\"}},"
           "{\"type\":\"abort\",\"data\":{}}]}",
           "Transaction aborted using Abort action");
    assert_null(bd_dirty_bitmap_find(bd_graph_find_node(f->g, "src"), "t"));
    err_is(f, "transaction", "{\"actions\":["
           "{\"type\":\"block-dirty-bitmap-add\",\"data\":{\"node\":\"src\","
           "\"name\":\"t\"}}],\"properties\":{\"completion-mode\":"
           "\"grouped\"}}",
           "Action 'block-dirty-bitmap-add' does not support transaction "
           "property completion-mode = grouped");

    ok(f, "block-dirty-bitmap-add", "{\"node\":\"src\",\"name\":\"b\"}");
    guest_write(f, 0, 512, 1);
    set_fault(f->tgt2, true, EIO, -1, 0);
    ok(f, "transaction", "{\"actions\":["
       "{\"type\":\"blockdev-backup\",\"data\":{\"job-id\":\"ja\","
       "\"device\":\"src\",\"target\":\"tgt\",\"sync\":\"incremental\","
       "\"bitmap\":\"b\",\"speed\":1}},"
       "{\"type\":\"blockdev-backup\",\"data\":{\"job-id\":\"jb\","
       "\"device\":\"src\",\"target\":\"tgt2\",\"sync\":\"full\"}}],"
       "\"properties\":{\"completion-mode\":\"grouped\"}}");
    wait_idle(f);
    log_is(f, "ja:created jb:created ja:running jb:running "
           "jb:ERROR(write,report) jb:aborting ja:aborting "
           "jb:BLOCK_JOB_COMPLETED(Input/output error) jb:concluded jb:null "
           "ja:BLOCK_JOB_CANCELLED ja:concluded ja:null ");
    assert_int_equal(bitmap_count(f, "b"), CL);
    clear_fault();
}

/* sync=none copies only what the guest overwrites (fleecing). */
static void test_sync_none(void **state)
{
    struct fixture *f = *state;
    uint8_t a[CL], b[CL];
    int fd;

    ok(f, "blockdev-backup", "{\"job-id\":\"n\",\"device\":\"src\","
       "\"target\":\"tgt\",\"sync\":\"none\"}");
    fd = open(f->src, O_RDONLY);
    assert_int_equal(pread(fd, a, CL, 2 * CL), CL);
    close(fd);
    guest_write(f, 2 * CL + 10, 10, 0x55);
    ok(f, "job-cancel", "{\"id\":\"n\"}");
    wait_idle(f);
    log_is(f, "n:created n:running n:aborting n:BLOCK_JOB_CANCELLED "
           "n:concluded n:null ");
    fd = open(f->tgt, O_RDONLY);
    assert_int_equal(pread(fd, b, CL, 2 * CL), CL);
    assert_memory_equal(a, b, CL);
    assert_int_equal(pread(fd, b, CL, 3 * CL), CL);
    assert_true(bd_buffer_is_zero(b, CL));
    close(fd);
}

/* ------------------------------------------------------------------ */
/* compress and discard-source (specs/jobs.md §3.4 step 6)              */

static void add_node(struct fixture *f, const char *json)
{
    struct bd_error *err = NULL;
    json_error_t jerr;
    json_t *o = json_loads(json, 0, &jerr);

    assert_non_null(o);
    if (!bd_blockdev_add(f->g, o, false, &err)) {
        fail_msg("blockdev-add %s: %s", json, err->msg);
    }
    json_decref(o);
}

/*
 * The source of the compat case 254: 1 MiB of data, 1 MiB of zeroes
 * written as data, a 1 MiB hole, 512 KiB of data, a hole to the end.
 */
#define MIXED_DATA1 (1 << 20)
#define MIXED_ZDATA (2 << 20)
#define MIXED_HOLE (3 << 20)
#define MIXED_DATA2 ((3 << 20) + (512 << 10))

static void make_mixed(const char *path, uint8_t *img)
{
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    int64_t i;

    assert_true(fd >= 0);
    memset(img, 0, IMG_SIZE);
    for (i = 0; i < MIXED_DATA1; i++) {
        img[i] = (uint8_t)(0x5a + i / 4096);
    }
    for (i = MIXED_HOLE; i < MIXED_DATA2; i++) {
        img[i] = 0x11;
    }
    assert_int_equal(ftruncate(fd, IMG_SIZE), 0);
    assert_int_equal(pwrite(fd, img, MIXED_ZDATA, 0), MIXED_ZDATA);
    assert_int_equal(pwrite(fd, img + MIXED_HOLE, MIXED_DATA2 - MIXED_HOLE,
                            MIXED_HOLE), MIXED_DATA2 - MIXED_HOLE);
    close(fd);
}

static void add_qcow2_target(struct fixture *f, const char *name,
                             const char *path)
{
    struct qcow2_create_opts o;
    struct bd_error *err = NULL;
    char json[400];

    memset(&o, 0, sizeof(o));
    o.size = IMG_SIZE;
    if (qcow2_create_file(path, &o, &err) < 0) {
        fail_msg("create %s: %s", path, err->msg);
    }
    snprintf(json, sizeof(json), "{\"driver\":\"qcow2\",\"node-name\":\"%s\","
             "\"file\":{\"driver\":\"file\",\"filename\":\"%s\"}}", name,
             path);
    add_node(f, json);
}

/* Read all of a node. */
static void read_node(struct fixture *f, const char *name, uint8_t *buf)
{
    struct bd_qiov q;

    bd_qiov_init_buf(&q, buf, IMG_SIZE);
    assert_int_equal(bd_node_preadv(bd_graph_find_node(f->g, name), 0,
                                    IMG_SIZE, &q, 0), 0);
    bd_qiov_destroy(&q);
}

/* Count the clusters of a qcow2 node that are compressed. */
static int compressed_clusters(struct fixture *f, const char *name,
                               bool *map)
{
    struct bd_node *n = bd_graph_find_node(f->g, name);
    int c;
    int total = 0;

    for (c = 0; c < IMG_SIZE / CL; c++) {
        uint64_t count = 0;
        int r = qcow2_node_compressed_at(n, (uint64_t)c * CL, CL, &count);

        assert_true(r >= 0);
        map[c] = r == 1;
        total += r;
    }
    return total;
}

/* Block status bits of one cluster of a node. */
static int cluster_status(struct fixture *f, const char *name, int c)
{
    int64_t pnum = 0;
    int st = bd_node_block_status(bd_graph_find_node(f->g, name),
                                  (int64_t)c * CL, CL, &pnum, NULL, NULL);

    assert_true(st >= 0);
    assert_int_equal(pnum, CL);
    return st;
}

/*
 * compress=true into qcow2: every cluster the source holds as data
 * (zeroes written as data included) is a compressed cluster, the holes
 * are zero clusters (QEMU takes zeroes from the source's block status,
 * so the hole is not compressed), and the copy reads back equal.
 * Without compress the same backup writes no compressed cluster.
 */
static void test_compress_qcow2(void **state)
{
    struct fixture *f = *state;
    uint8_t *img = bd_malloc(IMG_SIZE);
    uint8_t *back = bd_malloc(IMG_SIZE);
    bool map[IMG_SIZE / CL];
    char path[160];
    char json[400];
    int c;

    snprintf(path, sizeof(path), "%s/mixed.img", f->dir);
    make_mixed(path, img);
    snprintf(json, sizeof(json), "{\"driver\":\"raw\",\"node-name\":"
             "\"mixed\",\"file\":{\"driver\":\"file\",\"filename\":\"%s\"}}",
             path);
    add_node(f, json);
    snprintf(path, sizeof(path), "%s/c.qcow2", f->dir);
    add_qcow2_target(f, "cq", path);
    snprintf(path, sizeof(path), "%s/p.qcow2", f->dir);
    add_qcow2_target(f, "pq", path);

    ok(f, "blockdev-backup", "{\"job-id\":\"c\",\"device\":\"mixed\","
       "\"target\":\"cq\",\"sync\":\"full\",\"compress\":true}");
    wait_idle(f);
    log_is(f, "c:created c:running c:waiting c:pending c:BLOCK_JOB_COMPLETED "
           "c:concluded c:null ");
    /* 16 + 16 + 8 clusters of data, as QEMU's 40/64 compressed. */
    assert_int_equal(compressed_clusters(f, "cq", map), 40);
    for (c = 0; c < IMG_SIZE / CL; c++) {
        int64_t off = (int64_t)c * CL;
        bool data = off < MIXED_ZDATA || (off >= MIXED_HOLE &&
                                          off < MIXED_DATA2);

        if (map[c] != data) {
            fail_msg("cluster %d: compressed %d, source data %d", c, map[c],
                     data);
        }
        if (!data) {
            /* A zero cluster: reads as zero, holds no data. */
            int st = cluster_status(f, "cq", c);

            assert_true(st & BD_BLOCK_ZERO);
            assert_false(st & BD_BLOCK_DATA);
        }
    }
    read_node(f, "cq", back);
    assert_memory_equal(img, back, IMG_SIZE);

    /* The control: no compress, no compressed cluster, same data. */
    ok(f, "blockdev-backup", "{\"job-id\":\"p\",\"device\":\"mixed\","
       "\"target\":\"pq\",\"sync\":\"full\"}");
    wait_idle(f);
    assert_int_equal(compressed_clusters(f, "pq", map), 0);
    read_node(f, "pq", back);
    assert_memory_equal(img, back, IMG_SIZE);
    free(img);
    free(back);
}

/*
 * compress=true into a raw target is refused before anything happens,
 * with QEMU's text; the name is the target's device name, empty for a
 * node without a backend, so the message ends in a space.
 */
static void test_compress_raw_refused(void **state)
{
    struct fixture *f = *state;

    err_is(f, "blockdev-backup", "{\"job-id\":\"c\",\"device\":\"src\","
           "\"target\":\"tgt\",\"sync\":\"full\",\"compress\":true}",
           "Compression is not supported for this drive ");
    assert_string_equal(f->log, "");
    assert_string_equal(bd_node_driver_name(bd_blk_node(f->guest)), "raw");
    assert_true(target_cluster_zero(f, 0));
}

/* Is every cluster of node `name` reading as zero without data? */
static bool all_discarded(struct fixture *f, const char *name)
{
    int c;

    for (c = 0; c < IMG_SIZE / CL; c++) {
        int st = cluster_status(f, name, c);

        if (!(st & BD_BLOCK_ZERO) || (st & BD_BLOCK_DATA)) {
            return false;
        }
    }
    return true;
}

static bool any_discarded(struct fixture *f, const char *name)
{
    int c;

    for (c = 0; c < IMG_SIZE / CL; c++) {
        if (!(cluster_status(f, name, c) & BD_BLOCK_DATA)) {
            return true;
        }
    }
    return false;
}

/*
 * discard-source=true: each copied range is discarded on the source once
 * it is on the target, so a source opened with discard=unmap ends up all
 * holes while the target holds the old data. With discard-source=false,
 * or on a source with the default discard=ignore (the discard is
 * advisory, as in QEMU), the source keeps every byte. A read-only source
 * is refused with QEMU's permission error.
 */
static void test_discard_source(void **state)
{
    struct fixture *f = *state;
    char orig[160];
    char dsrc[160];
    char cmd[700];
    char json[400];

    snprintf(orig, sizeof(orig), "%s/orig.img", f->dir);
    snprintf(dsrc, sizeof(dsrc), "%s/dsrc.img", f->dir);
    snprintf(cmd, sizeof(cmd), "cp %s %s && cp %s %s", f->src, orig, f->src,
             dsrc);
    assert_int_equal(system(cmd), 0);
    snprintf(json, sizeof(json), "{\"driver\":\"raw\",\"node-name\":\"ds\","
             "\"discard\":\"unmap\",\"file\":{\"driver\":\"file\","
             "\"filename\":\"%s\"}}", dsrc);
    add_node(f, json);

    /* discard-source=false: the source is untouched. */
    ok(f, "blockdev-backup", "{\"job-id\":\"k\",\"device\":\"ds\","
       "\"target\":\"tgt\",\"sync\":\"full\",\"discard-source\":false}");
    wait_idle(f);
    assert_true(files_equal(dsrc, orig));
    assert_true(files_equal(f->tgt, orig));
    assert_false(any_discarded(f, "ds"));

    /* discard=ignore on the source: discard-source has nothing to do. */
    ok(f, "blockdev-backup", "{\"job-id\":\"i\",\"device\":\"src\","
       "\"target\":\"tgt2\",\"sync\":\"full\",\"discard-source\":true}");
    wait_idle(f);
    assert_true(files_equal(f->src, orig));
    assert_true(files_equal(f->tgt2, orig));
    assert_false(any_discarded(f, "src"));

    /* discard-source=true on a discard=unmap source. */
    make_file(f->tgt, IMG_SIZE, 0);
    ok(f, "blockdev-backup", "{\"job-id\":\"d\",\"device\":\"ds\","
       "\"target\":\"tgt\",\"sync\":\"full\",\"discard-source\":true}");
    wait_idle(f);
    log_is(f, "k:created k:running k:waiting k:pending k:BLOCK_JOB_COMPLETED "
           "k:concluded k:null i:created i:running i:waiting i:pending "
           "i:BLOCK_JOB_COMPLETED i:concluded i:null d:created d:running "
           "d:waiting d:pending d:BLOCK_JOB_COMPLETED d:concluded d:null ");
    assert_true(files_equal(f->tgt, orig));
    assert_true(all_discarded(f, "ds"));
    {
        /* The holes are in the file itself, not just in the node's view. */
        uint8_t *buf = bd_malloc(IMG_SIZE);
        int fd = open(dsrc, O_RDONLY);

        assert_true(fd >= 0);
        assert_int_equal(pread(fd, buf, IMG_SIZE, 0), IMG_SIZE);
        close(fd);
        assert_true(bd_buffer_is_zero(buf, IMG_SIZE));
        free(buf);
    }

    /* Read-only source: QEMU's error; the job is created and dropped. */
    snprintf(json, sizeof(json), "{\"driver\":\"raw\",\"node-name\":\"ro\","
             "\"read-only\":true,\"discard\":\"unmap\",\"file\":{\"driver\":"
             "\"file\",\"filename\":\"%s\"}}", orig);
    add_node(f, json);
    err_is(f, "blockdev-backup", "{\"job-id\":\"r\",\"device\":\"ro\","
           "\"target\":\"tgt2\",\"sync\":\"full\",\"discard-source\":true}",
           "Block node is read-only");
    log_is(f, "r:created r:null ");
}

int unit_run_tests(void)
{
    const struct CMUnitTest tests[] = {
#define T(x) cmocka_unit_test_setup_teardown(x, bf_setup, bf_teardown)
        T(test_full_backup),
        T(test_point_in_time),
        T(test_two_backups),
        T(test_policy_report),
        T(test_policy_ignore),
        T(test_policy_stop),
        T(test_policy_enospc),
        T(test_policy_source),
        T(test_incremental_chain),
        T(test_bitmap_always_failure),
        T(test_bitmap_matrix),
        T(test_max_workers_serial),
        T(test_validation),
        T(test_verbs),
        T(test_cancel_pending),
        T(test_grouped_transaction),
        T(test_sync_none),
        T(test_compress_qcow2),
        T(test_compress_raw_refused),
        T(test_discard_source),
#undef T
    };

    return cmocka_run_group_tests_name("backup", tests, NULL, NULL);
}
