/*
 * tests/unit/test_mirror.c - jobs/mirror.c and driver/mirror-top.c through
 * the C API: event sequences, convergence and pivot under concurrent guest
 * writes, the error-policy matrix before and after READY, bad input.
 *
 * Images are small raw files in a private directory. Faults come from the
 * file driver's syscall seam (driver/file-sys.h): a rule fails preadv or
 * pwritev on one image, at requests covering a given offset, N times.
 */
#include "common/config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "common/cutils.h"
#include "driver/block-int.h"
#include "driver/dirty-bitmap.h"
#include "driver/file-sys.h"
#include "driver/mirror-top.h"
#include "jobs/job.h"
#include "jobs/mirror.h"
#include "monitor/monitor-int.h"
#include "tests/helpers/test-drivers.h"
#include "tests/unit/unit.h"

#define IMG_SIZE (4 * 1024 * 1024)
#define MIB (1024 * 1024)

/* ------------------------------------------------------------------ */
/* Fault seam (test-file state: one test runs at a time)               */

struct fault {
    pthread_mutex_t lock;
    char path_suffix[64];       /* "" = no rule */
    bool on_write;              /* pwritev (else preadv) */
    int64_t offset;             /* request must cover it */
    int times;                  /* remaining failures; -1 = forever */
    int err;
    int hits;
    int fds[64];                /* fd -> matches the path */
};

static struct fault fault = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int f_open(const char *path, int flags, mode_t mode)
{
    int fd = bd_file_sys_default.open(path, flags, mode);
    size_t pl = strlen(path);
    size_t sl;

    pthread_mutex_lock(&fault.lock);
    sl = strlen(fault.path_suffix);
    if (fd >= 0 && fd < 64) {
        fault.fds[fd] = sl && pl >= sl &&
                        !strcmp(path + pl - sl, fault.path_suffix);
    }
    pthread_mutex_unlock(&fault.lock);
    return fd;
}

static bool f_hit(int fd, const struct iovec *iov, int n, off_t off,
                  bool write)
{
    size_t len = 0;
    bool hit = false;
    int i;

    for (i = 0; i < n; i++) {
        len += iov[i].iov_len;
    }
    pthread_mutex_lock(&fault.lock);
    if (fd >= 0 && fd < 64 && fault.fds[fd] && fault.on_write == write &&
        fault.times != 0 && off <= fault.offset &&
        fault.offset < off + (off_t)len) {
        if (fault.times > 0) {
            fault.times--;
        }
        fault.hits++;
        hit = true;
    }
    pthread_mutex_unlock(&fault.lock);
    return hit;
}

static ssize_t f_preadv(int fd, const struct iovec *iov, int n, off_t off)
{
    if (f_hit(fd, iov, n, off, false)) {
        errno = fault.err;
        return -1;
    }
    return bd_file_sys_default.preadv(fd, iov, n, off);
}

static ssize_t f_pwritev(int fd, const struct iovec *iov, int n, off_t off)
{
    if (f_hit(fd, iov, n, off, true)) {
        errno = fault.err;
        return -1;
    }
    return bd_file_sys_default.pwritev(fd, iov, n, off);
}

static struct bd_file_sys fault_sys;

static void fault_arm(bool on_write, int64_t offset, int times, int err)
{
    pthread_mutex_lock(&fault.lock);
    fault.on_write = on_write;
    fault.offset = offset;
    fault.times = times;
    fault.err = err;
    fault.hits = 0;
    pthread_mutex_unlock(&fault.lock);
}

static int fault_hits(void)
{
    int h;

    pthread_mutex_lock(&fault.lock);
    h = fault.hits;
    pthread_mutex_unlock(&fault.lock);
    return h;
}

/* ------------------------------------------------------------------ */
/* Fixture                                                              */

struct fixture {
    char dir[64];
    struct bd_graph *g;
    struct job_manager *m;
    pthread_mutex_t lock;
    char log[16384];
    struct bd_node *src;
    struct bd_node *tgt;
    struct bd_blk *guest;       /* the "device" on the source */
};

static void sink(void *opaque, const char *name, json_t *data)
{
    struct fixture *f = opaque;
    char item[256];

    pthread_mutex_lock(&f->lock);
    if (!strcmp(name, "JOB_STATUS_CHANGE")) {
        snprintf(item, sizeof(item), "%s ",
                 json_string_value(json_object_get(data, "status")));
    } else if (!strcmp(name, "BLOCK_JOB_ERROR")) {
        snprintf(item, sizeof(item), "ERROR(%s,%s) ",
                 json_string_value(json_object_get(data, "operation")),
                 json_string_value(json_object_get(data, "action")));
    } else if (json_object_get(data, "error")) {
        snprintf(item, sizeof(item), "%s(%s) ", name,
                 json_string_value(json_object_get(data, "error")));
    } else {
        snprintf(item, sizeof(item), "%s ", name);
    }
    strncat(f->log, item, sizeof(f->log) - strlen(f->log) - 1);
    pthread_mutex_unlock(&f->lock);
    json_decref(data);
}

static void write_file(const char *path, int64_t size, int pattern)
{
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    char *buf = bd_malloc(MIB);
    int64_t done;

    assert_true(fd >= 0);
    memset(buf, pattern, MIB);
    for (done = 0; done < size; done += MIB) {
        size_t n = (size_t)BD_MIN((int64_t)MIB, size - done);
        if (pattern) {
            assert_int_equal(write(fd, buf, n), (ssize_t)n);
        }
    }
    assert_int_equal(ftruncate(fd, size), 0);
    close(fd);
    free(buf);
}

static struct bd_node *add_raw(struct fixture *f, const char *name,
                               const char *file)
{
    char path[128];
    json_t *o;
    struct bd_error *err = NULL;
    struct bd_node *n;

    snprintf(path, sizeof(path), "%s/%s", f->dir, file);
    o = json_pack("{s:s, s:s, s:{s:s, s:s}}", "driver", "raw", "node-name",
                  name, "file", "driver", "file", "filename", path);
    n = bd_blockdev_add(f->g, o, false, &err);
    json_decref(o);
    if (!n) {
        fail_msg("blockdev-add %s: %s", name, err->msg);
    }
    return n;
}

static int setup(void **state)
{
    struct fixture *f = bd_malloc0(sizeof(*f));
    char path[128];
    struct bd_error *err = NULL;

    snprintf(f->dir, sizeof(f->dir), "/tmp/blkrig-mirror.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    pthread_mutex_init(&f->lock, NULL);
    fault_sys = bd_file_sys_default;
    fault_sys.open = f_open;
    fault_sys.preadv = f_preadv;
    fault_sys.pwritev = f_pwritev;
    fault_arm(false, 0, 0, EIO);
    snprintf(fault.path_suffix, sizeof(fault.path_suffix), "none");
    snprintf(path, sizeof(path), "%s/src.img", f->dir);
    write_file(path, IMG_SIZE, 0x5a);
    snprintf(path, sizeof(path), "%s/tgt.img", f->dir);
    write_file(path, IMG_SIZE, 0);
    snprintf(path, sizeof(path), "%s/small.img", f->dir);
    write_file(path, IMG_SIZE / 2, 0);
    f->g = td_graph_new();
    bd_graph_set_file_sys(f->g, &fault_sys);
    f->m = job_manager_new(f->g);
    bd_graph_set_qevent_sink(f->g, sink, f);
    *state = f;
    return 0;
    (void)err;
}

/* Source and target; the fault rule applies to files ending in suffix. */
static void open_pair(struct fixture *f, const char *fault_suffix)
{
    struct bd_error *err = NULL;

    snprintf(fault.path_suffix, sizeof(fault.path_suffix), "%s",
             fault_suffix ? fault_suffix : "none");
    f->src = add_raw(f, "src", "src.img");
    f->tgt = add_raw(f, "tgt", "tgt.img");
    f->guest = bd_blk_new(f->g, NULL, BD_PERM_CONSISTENT_READ | BD_PERM_WRITE,
                          BD_PERM_ALL);
    assert_int_equal(bd_blk_insert(f->guest, f->src, &err), 0);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];

    job_manager_free(f->m);
    if (f->guest) {
        bd_blk_free(f->guest);
    }
    bd_graph_free(f->g);
    pthread_mutex_destroy(&f->lock);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static struct job *start(struct fixture *f, struct mirror_opts *o)
{
    struct bd_error *err = NULL;
    struct job *j = mirror_start(f->m, o, &err);

    if (!j) {
        fail_msg("mirror_start: %s", err->msg);
    }
    return j;
}

static void base_opts(struct fixture *f, struct mirror_opts *o)
{
    mirror_opts_init(o);
    o->job_id = "m";
    o->source = f->src;
    o->target = f->tgt;
}

static bool log_has(struct fixture *f, const char *s)
{
    bool r;

    pthread_mutex_lock(&f->lock);
    r = strstr(f->log, s) != NULL;
    pthread_mutex_unlock(&f->lock);
    return r;
}

static void wait_log(struct fixture *f, const char *s)
{
    int i;

    for (i = 0; i < 20000; i++) {
        if (log_has(f, s)) {
            return;
        }
        bd_sleep_ns(500 * 1000);
    }
    fail_msg("'%s' never appeared in: %s", s, f->log);
}

static void wait_idle(struct fixture *f)
{
    assert_int_equal(job_manager_wait_idle(f->m, 20LL * 1000000000LL), 0);
}

/* 0 once job reaches st, -ETIMEDOUT after 10 s. */
static int wait_status_rc(struct fixture *f, struct job *job,
                          enum job_status st)
{
    int i;

    for (i = 0; i < 20000; i++) {
        job_lock(f->m);
        if (job->status == st) {
            job_unlock(f->m);
            return 0;
        }
        job_unlock(f->m);
        bd_sleep_ns(500 * 1000);
    }
    return -ETIMEDOUT;
}

static void wait_status(struct fixture *f, struct job *job,
                        enum job_status st)
{
    int i;

    for (i = 0; i < 20000; i++) {
        job_lock(f->m);
        if (job->status == st) {
            job_unlock(f->m);
            return;
        }
        job_unlock(f->m);
        bd_sleep_ns(500 * 1000);
    }
    fail_msg("job did not reach %s: %s", job_status_names[st], f->log);
}

static void guest_write(struct fixture *f, int64_t off, int64_t len, int pat)
{
    char *buf = bd_malloc((size_t)len);

    memset(buf, pat, (size_t)len);
    assert_int_equal(bd_blk_pwrite(f->guest, off, len, buf, 0), 0);
    free(buf);
}

/* Compare the whole of two nodes. */
static bool same_content(struct bd_node *a, struct bd_node *b)
{
    char *ba = bd_malloc(IMG_SIZE);
    char *bb = bd_malloc(IMG_SIZE);
    struct bd_qiov qa;
    struct bd_qiov qb;
    bool r;

    bd_qiov_init_buf(&qa, ba, IMG_SIZE);
    bd_qiov_init_buf(&qb, bb, IMG_SIZE);
    assert_int_equal(bd_node_preadv(a, 0, IMG_SIZE, &qa, 0), 0);
    assert_int_equal(bd_node_preadv(b, 0, IMG_SIZE, &qb, 0), 0);
    r = memcmp(ba, bb, IMG_SIZE) == 0;
    free(ba);
    free(bb);
    return r;
}

static int count_nodes_cb(struct bd_node *n, void *opaque)
{
    (void)n;
    (*(int *)opaque)++;
    return 0;
}

static int count_nodes(struct fixture *f)
{
    int n = 0;

    bd_graph_foreach_node(f->g, count_nodes_cb, &n);
    return n;
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                           */

/* sync=full: READY with offset == len, job-complete pivots the device onto
 * the target, the filter is gone, the data is the source's. */
static void test_mirror_complete_pivots(void **state)
{
    struct fixture *f = *state;
    struct mirror_opts o;
    struct job *j;
    int nodes;

    open_pair(f, NULL);
    nodes = count_nodes(f);
    base_opts(f, &o);
    j = start(f, &o);
    assert_int_equal(count_nodes(f), nodes + 1);
    assert_ptr_equal(bd_node_filtered(bd_blk_node(f->guest)), f->src);
    assert_true(bd_node_is_mirror_top(bd_blk_node(f->guest)));
    wait_status(f, j, JOB_STATUS_READY);
    {
        json_t *info = job_query_block_info(j);
        assert_int_equal(json_integer_value(json_object_get(info, "len")),
                         IMG_SIZE);
        assert_int_equal(json_integer_value(json_object_get(info, "offset")),
                         IMG_SIZE);
        assert_true(json_is_false(json_object_get(info, "actively-synced")));
        json_decref(info);
    }
    assert_true(same_content(f->src, f->tgt));
    assert_int_equal(job_complete(j, NULL), 0);
    wait_idle(f);
    assert_string_equal(f->log, "created running ready BLOCK_JOB_READY "
                        "waiting pending BLOCK_JOB_COMPLETED concluded null ");
    assert_ptr_equal(bd_blk_node(f->guest), f->tgt);
    assert_int_equal(count_nodes(f), nodes);
    /* The device now writes the target only. */
    guest_write(f, 0, 4096, 0x11);
    assert_false(same_content(f->src, f->tgt));
}

/* job-complete before READY is refused by the verb table. */
static void test_mirror_complete_before_ready(void **state)
{
    struct fixture *f = *state;
    struct mirror_opts o;
    struct bd_error *err = NULL;
    struct job *j;

    open_pair(f, NULL);
    base_opts(f, &o);
    o.speed = 512 * 1024;           /* 8 s for 4 MiB: stays running */
    j = start(f, &o);
    assert_int_equal(job_complete(j, &err), -EPERM);
    assert_string_equal(err->msg, "Job 'm' in state 'running' cannot accept "
                        "command verb 'complete'");
    bd_error_free(err);
    assert_int_equal(job_user_cancel(j, true, NULL), 0);
    wait_idle(f);
    assert_string_equal(f->log, "created running aborting "
                        "BLOCK_JOB_CANCELLED concluded null ");
    assert_ptr_equal(bd_blk_node(f->guest), f->src);
}

/* Soft cancel after READY: COMPLETED, no pivot. Force cancel after READY:
 * CANCELLED, no pivot. */
static void test_mirror_cancel_after_ready(void **state)
{
    struct fixture *f = *state;
    struct mirror_opts o;
    struct job *j;
    int nodes;

    open_pair(f, NULL);
    nodes = count_nodes(f);
    base_opts(f, &o);
    j = start(f, &o);
    wait_status(f, j, JOB_STATUS_READY);
    assert_int_equal(job_user_cancel(j, false, NULL), 0);
    wait_idle(f);
    assert_string_equal(f->log, "created running ready BLOCK_JOB_READY "
                        "waiting pending BLOCK_JOB_COMPLETED concluded null ");
    assert_ptr_equal(bd_blk_node(f->guest), f->src);
    assert_int_equal(count_nodes(f), nodes);
    assert_true(same_content(f->src, f->tgt));

    f->log[0] = '\0';
    o.job_id = "m2";
    j = start(f, &o);
    wait_status(f, j, JOB_STATUS_READY);
    assert_int_equal(job_user_cancel(j, true, NULL), 0);
    wait_idle(f);
    assert_string_equal(f->log, "created running ready BLOCK_JOB_READY "
                        "aborting BLOCK_JOB_CANCELLED concluded null ");
    assert_ptr_equal(bd_blk_node(f->guest), f->src);
    assert_int_equal(count_nodes(f), nodes);
}

/* sync=none: READY at once with len 0; only new writes are copied. */
static void test_mirror_sync_none(void **state)
{
    struct fixture *f = *state;
    struct mirror_opts o;
    struct job *j;
    char buf[4096];

    open_pair(f, NULL);
    base_opts(f, &o);
    o.sync = MIRROR_SYNC_NONE;
    o.auto_dismiss = false;
    j = start(f, &o);
    wait_status(f, j, JOB_STATUS_READY);
    {
        json_t *info = job_query_block_info(j);
        assert_int_equal(json_integer_value(json_object_get(info, "len")), 0);
        json_decref(info);
    }
    guest_write(f, 65536, 4096, 0x77);
    assert_int_equal(job_complete(j, NULL), 0);
    wait_status(f, j, JOB_STATUS_CONCLUDED);
    assert_int_equal(bd_blk_pread(f->guest, 65536, 4096, buf, 0), 0);
    assert_int_equal(buf[0], 0x77);
    assert_int_equal(bd_blk_pread(f->guest, 0, 4096, buf, 0), 0);
    assert_int_equal(buf[0], 0);      /* never copied */
    assert_int_equal(job_dismiss(j, NULL), 0);
}

/* auto-finalize=false: pending + BLOCK_JOB_PENDING, pivot at finalize. */
static void test_mirror_manual_finalize(void **state)
{
    struct fixture *f = *state;
    struct mirror_opts o;
    struct job *j;

    open_pair(f, NULL);
    base_opts(f, &o);
    o.auto_finalize = false;
    j = start(f, &o);
    wait_status(f, j, JOB_STATUS_READY);
    assert_int_equal(job_complete(j, NULL), 0);
    wait_status(f, j, JOB_STATUS_PENDING);
    assert_ptr_equal(bd_node_filtered(bd_blk_node(f->guest)), f->src);
    assert_int_equal(job_finalize(j, NULL), 0);
    wait_idle(f);
    assert_string_equal(f->log, "created running ready BLOCK_JOB_READY "
                        "waiting pending BLOCK_JOB_PENDING "
                        "BLOCK_JOB_COMPLETED concluded null ");
    assert_ptr_equal(bd_blk_node(f->guest), f->tgt);
}

/* ------------------------------------------------------------------ */
/* Concurrent guest writes                                              */

struct writer {
    struct fixture *f;
    int id;
    int64_t base;               /* own region: base .. base + 1 MiB */
    atomic_bool *stop;
    unsigned char last[256];    /* last pattern per 4 KiB block */
    int writes;
    bool paced;                 /* pause between writes */
};

static void *writer_thread(void *opaque)
{
    struct writer *w = opaque;
    unsigned seed = (unsigned)w->id * 7919u + 1;
    char buf[4096];

    memset(w->last, 0x5a, sizeof(w->last));
    while (!atomic_load(w->stop) || w->writes < 64) {
        int blk = (int)(rand_r(&seed) % 256);
        unsigned char pat = (unsigned char)(1 + rand_r(&seed) % 250);

        memset(buf, pat, sizeof(buf));
        if (bd_blk_pwrite(w->f->guest, w->base + blk * 4096, 4096, buf, 0)) {
            break;
        }
        w->last[blk] = pat;
        w->writes++;
        /* A guest that writes faster than the job copies keeps a
         * background mirror from ever converging (so it is in QEMU: that
         * is what write-blocking mode is for); a realistic pace lets
         * job-complete finish on a loaded machine too. */
        if (w->paced) {
            bd_sleep_ns(200 * 1000);
        }
    }
    return NULL;
}

static void check_writers(struct bd_node *n, struct writer *w, int nw)
{
    char buf[4096];
    int i;
    int b;

    for (i = 0; i < nw; i++) {
        for (b = 0; b < 256; b++) {
            struct bd_qiov q;

            bd_qiov_init_buf(&q, buf, sizeof(buf));
            assert_int_equal(bd_node_preadv(n, w[i].base + b * 4096, 4096,
                                            &q, 0), 0);
            if ((unsigned char)buf[0] != w[i].last[b] ||
                (unsigned char)buf[4095] != w[i].last[b]) {
                fail_msg("writer %d block %d: %#x, expected %#x", i, b,
                         (unsigned char)buf[0], w[i].last[b]);
            }
        }
    }
}

/* Writers keep writing before, during and after READY and across the
 * pivot; afterwards the target holds every writer's last write, and the
 * source (no longer written) equals what the target had at the pivot. */
static void run_concurrent(struct fixture *f, enum mirror_copy_mode mode)
{
    struct mirror_opts o;
    struct writer w[4];
    pthread_t th[4];
    atomic_bool stop = false;
    struct job *j;
    int i;

    open_pair(f, NULL);
    base_opts(f, &o);
    o.copy_mode = mode;
    o.buf_size = 256 * 1024;        /* several rounds of small copies */
    o.granularity = 8192;
    for (i = 0; i < 4; i++) {
        w[i].f = f;
        w[i].id = i;
        w[i].base = (int64_t)i * MIB;
        w[i].stop = &stop;
        w[i].writes = 0;
        w[i].paced = mode == MIRROR_COPY_BACKGROUND;
        pthread_create(&th[i], NULL, writer_thread, &w[i]);
    }
    j = start(f, &o);
    /* Every check below waits until the writers are joined: a failed
     * assertion must not leave threads running on this stack frame. */
    int ready = wait_status_rc(f, j, JOB_STATUS_READY);
    bool synced = true;
    int completed = -1, idle = -1;

    if (ready == 0 && mode == MIRROR_COPY_WRITE_BLOCKING) {
        /* Synchronous copies: the target never falls behind. */
        json_t *info = NULL;
        int k;

        for (k = 0; k < 2000; k++) {
            info = job_query_block_info(j);
            if (json_is_true(json_object_get(info, "actively-synced"))) {
                break;
            }
            json_decref(info);
            info = NULL;
            bd_sleep_ns(1000 * 1000);
        }
        synced = info != NULL;
        json_decref(info);
    }
    if (ready == 0) {
        struct bd_error *err = NULL;

        completed = job_complete(j, &err);
        if (err) {
            print_message("job-complete: %s\n", bd_error_msg(err));
            bd_error_free(err);
        }
        idle = job_manager_wait_idle(f->m, 20LL * 1000000000LL);
    }
    stop = true;
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
    }
    if (ready != 0) {
        fail_msg("job did not reach ready: %s", f->log);
    }
    assert_true(synced);
    assert_int_equal(completed, 0);
    assert_int_equal(idle, 0);
    assert_ptr_equal(bd_blk_node(f->guest), f->tgt);
    check_writers(f->tgt, w, 4);
    assert_true(log_has(f, "BLOCK_JOB_COMPLETED concluded null"));
}

static void test_mirror_concurrent_background(void **state)
{
    run_concurrent(*state, MIRROR_COPY_BACKGROUND);
}

static void test_mirror_concurrent_write_blocking(void **state)
{
    run_concurrent(*state, MIRROR_COPY_WRITE_BLOCKING);
}

/* Write-blocking: a guest write is on the target when it returns;
 * block-job-change only goes background -> write-blocking. */
static void test_mirror_write_blocking_change(void **state)
{
    struct fixture *f = *state;
    struct mirror_opts o;
    struct bd_error *err = NULL;
    struct job *j;
    char buf[4096];
    struct bd_qiov q;
    json_t *opts;

    open_pair(f, NULL);
    base_opts(f, &o);
    j = start(f, &o);
    wait_status(f, j, JOB_STATUS_READY);
    opts = json_pack("{s:s, s:s}", "type", "mirror", "copy-mode",
                     "background");
    assert_int_equal(job_change(j, opts, NULL), 0);       /* no-op */
    json_decref(opts);
    opts = json_pack("{s:s, s:s}", "type", "mirror", "copy-mode",
                     "write-blocking");
    assert_int_equal(job_change(j, opts, NULL), 0);
    json_decref(opts);
    opts = json_pack("{s:s, s:s}", "type", "mirror", "copy-mode",
                     "background");
    assert_int_equal(job_change(j, opts, &err), -ENOTSUP);
    assert_string_equal(err->msg, "Change to copy mode 'background' is not "
                        "implemented");
    bd_error_free(err);
    err = NULL;
    json_decref(opts);
    opts = json_pack("{s:s}", "type", "mirror");
    assert_int_equal(job_change(j, opts, &err), -EINVAL);
    assert_string_equal(err->msg, "Parameter 'copy-mode' is missing");
    bd_error_free(err);
    json_decref(opts);

    guest_write(f, 8192, 4096, 0x42);
    bd_qiov_init_buf(&q, buf, sizeof(buf));
    assert_int_equal(bd_node_preadv(f->tgt, 8192, 4096, &q, 0), 0);
    assert_int_equal(buf[0], 0x42);
    assert_int_equal(job_complete(j, NULL), 0);
    wait_idle(f);
    assert_ptr_equal(bd_blk_node(f->guest), f->tgt);
}

/* ------------------------------------------------------------------ */
/* Error policies                                                       */

struct policy_case {
    bool target;            /* fault on target writes, else source reads */
    bool after_ready;
    enum job_on_error policy;
    int err;
    const char *expect;     /* substring of the event log */
    bool fails;             /* job ends with an error, no pivot */
    bool stops;
};

/* One cell of the source/target x policy x before/after-READY matrix. */
static void run_policy(struct fixture *f, const struct policy_case *c)
{
    struct mirror_opts o;
    struct job *j;
    const int64_t at = 2 * MIB + 4096;

    open_pair(f, c->target ? "tgt.img" : "src.img");
    base_opts(f, &o);
    o.auto_dismiss = false;
    if (c->target) {
        o.on_target_error = c->policy;
    } else {
        o.on_source_error = c->policy;
    }
    if (!c->after_ready) {
        fault_arm(c->target, at, 1, c->err);
    }
    j = start(f, &o);
    if (c->after_ready) {
        wait_status(f, j, JOB_STATUS_READY);
        fault_arm(c->target, at, 1, c->err);
        guest_write(f, at - 4096, 16384, 0x33);
    }
    wait_log(f, "ERROR(");
    assert_int_equal(fault_hits(), 1);
    if (c->fails) {
        wait_status(f, j, JOB_STATUS_CONCLUDED);
        assert_ptr_equal(bd_blk_node(f->guest), f->src);
    } else {
        if (c->stops) {
            json_t *info;

            wait_status(f, j, c->after_ready ? JOB_STATUS_STANDBY
                                             : JOB_STATUS_PAUSED);
            info = job_query_block_info(j);
            assert_string_equal(json_string_value(
                json_object_get(info, "io-status")),
                c->err == ENOSPC ? "nospace" : "failed");
            json_decref(info);
            assert_int_equal(job_user_resume(j, NULL), 0);
        }
        /* The failed range was retried: READY (again), data converged. */
        wait_status(f, j, JOB_STATUS_READY);
        {
            json_t *info = job_query_block_info(j);
            assert_string_equal(json_string_value(
                json_object_get(info, "io-status")), "ok");
            json_decref(info);
        }
        assert_int_equal(job_complete(j, NULL), 0);
        wait_status(f, j, JOB_STATUS_CONCLUDED);
        assert_ptr_equal(bd_blk_node(f->guest), f->tgt);
        assert_true(same_content(f->src, f->tgt));
    }
    if (!strstr(f->log, c->expect)) {
        fail_msg("expected '%s' in: %s", c->expect, f->log);
    }
    assert_int_equal(job_dismiss(j, NULL), 0);
}

#define POLICY_TEST(name, ...) \
    static void name(void **state) \
    { \
        const struct policy_case c = { __VA_ARGS__ }; \
        run_policy(*state, &c); \
    }

POLICY_TEST(test_mirror_src_report_before, false, false, JOB_ON_ERROR_REPORT,
            EIO, "running ERROR(read,report) aborting "
            "BLOCK_JOB_COMPLETED(Input/output error) concluded ", true, false)
POLICY_TEST(test_mirror_src_report_after, false, true, JOB_ON_ERROR_REPORT,
            EIO, "BLOCK_JOB_READY ERROR(read,report) aborting "
            "BLOCK_JOB_COMPLETED(Input/output error) concluded ", true, false)
POLICY_TEST(test_mirror_src_ignore_before, false, false, JOB_ON_ERROR_IGNORE,
            EIO, "running ERROR(read,ignore) ready BLOCK_JOB_READY", false,
            false)
POLICY_TEST(test_mirror_src_ignore_after, false, true, JOB_ON_ERROR_IGNORE,
            EIO, "BLOCK_JOB_READY ERROR(read,ignore) waiting", false, false)
POLICY_TEST(test_mirror_src_stop_before, false, false, JOB_ON_ERROR_STOP,
            EIO, "running ERROR(read,stop) paused running ready", false, true)
POLICY_TEST(test_mirror_src_stop_after, false, true, JOB_ON_ERROR_STOP,
            EIO, "BLOCK_JOB_READY ERROR(read,stop) standby ready waiting",
            false, true)
POLICY_TEST(test_mirror_src_enospc_eio, false, false, JOB_ON_ERROR_ENOSPC,
            EIO, "ERROR(read,report) aborting", true, false)
POLICY_TEST(test_mirror_tgt_report_before, true, false, JOB_ON_ERROR_REPORT,
            EIO, "running ERROR(write,report) aborting "
            "BLOCK_JOB_COMPLETED(Input/output error) concluded ", true, false)
POLICY_TEST(test_mirror_tgt_report_after, true, true, JOB_ON_ERROR_REPORT,
            ENOSPC, "BLOCK_JOB_READY ERROR(write,report) aborting "
            "BLOCK_JOB_COMPLETED(No space left on device) concluded ", true,
            false)
POLICY_TEST(test_mirror_tgt_ignore_before, true, false, JOB_ON_ERROR_IGNORE,
            EIO, "running ERROR(write,ignore) ready BLOCK_JOB_READY", false,
            false)
POLICY_TEST(test_mirror_tgt_ignore_after, true, true, JOB_ON_ERROR_IGNORE,
            EIO, "BLOCK_JOB_READY ERROR(write,ignore) waiting", false, false)
POLICY_TEST(test_mirror_tgt_stop_before, true, false, JOB_ON_ERROR_STOP,
            EIO, "running ERROR(write,stop) paused running ready", false,
            true)
POLICY_TEST(test_mirror_tgt_stop_after, true, true, JOB_ON_ERROR_STOP,
            EIO, "BLOCK_JOB_READY ERROR(write,stop) standby ready waiting",
            false, true)
POLICY_TEST(test_mirror_tgt_enospc_after, true, true, JOB_ON_ERROR_ENOSPC,
            ENOSPC, "BLOCK_JOB_READY ERROR(write,stop) standby ready waiting",
            false, true)
POLICY_TEST(test_mirror_tgt_auto_before, true, false, JOB_ON_ERROR_AUTO,
            ENOSPC, "running ERROR(write,stop) paused running ready", false,
            true)

/* Write-blocking: a failing synchronous target write leaves the guest
 * write successful, goes through on-target-error and is copied again. */
static void test_mirror_write_blocking_target_error(void **state)
{
    struct fixture *f = *state;
    struct mirror_opts o;
    struct job *j;

    open_pair(f, "tgt.img");
    base_opts(f, &o);
    o.copy_mode = MIRROR_COPY_WRITE_BLOCKING;
    o.on_target_error = JOB_ON_ERROR_IGNORE;
    j = start(f, &o);
    wait_status(f, j, JOB_STATUS_READY);
    fault_arm(true, 12288, 1, EIO);
    guest_write(f, 12288, 4096, 0x21);      /* source ok, target fails */
    assert_true(log_has(f, "ERROR(write,ignore)"));
    {
        json_t *info = job_query_block_info(j);
        assert_string_equal(json_string_value(json_object_get(info,
                                                              "status")),
                            "ready");
        json_decref(info);
    }
    assert_int_equal(job_complete(j, NULL), 0);
    wait_idle(f);
    assert_true(same_content(f->src, f->tgt));
}

/* ------------------------------------------------------------------ */
/* Bad input                                                            */

static void expect_start_error(struct fixture *f, struct mirror_opts *o,
                               const char *msg)
{
    struct bd_error *err = NULL;
    int nodes = count_nodes(f);
    struct bd_node *dev = bd_blk_node(f->guest);

    assert_null(mirror_start(f->m, o, &err));
    assert_non_null(err);
    assert_string_equal(err->msg, msg);
    bd_error_free(err);
    /* Nothing left behind: no filter, no job. */
    assert_int_equal(count_nodes(f), nodes);
    assert_ptr_equal(bd_blk_node(f->guest), dev);
}

static void test_mirror_bad_input(void **state)
{
    struct fixture *f = *state;
    struct mirror_opts o;
    struct bd_node *small = NULL;
    struct bd_error *err = NULL;

    open_pair(f, NULL);
    small = add_raw(f, "small", "small.img");

    base_opts(f, &o);
    o.target = f->src;
    expect_start_error(f, &o, "Can't mirror node into itself");
    base_opts(f, &o);
    o.granularity = 256;
    expect_start_error(f, &o, "Parameter 'granularity' expects a value in "
                       "range [512B, 64MB]");
    o.granularity = 128 * MIB;
    expect_start_error(f, &o, "Parameter 'granularity' expects a value in "
                       "range [512B, 64MB]");
    o.granularity = 3000;
    expect_start_error(f, &o, "Parameter 'granularity' expects a power of 2");
    base_opts(f, &o);
    o.buf_size = -1;
    expect_start_error(f, &o, "Invalid parameter 'buf-size'");
    base_opts(f, &o);
    o.sync = MIRROR_SYNC_INCREMENTAL;
    expect_start_error(f, &o, "Sync mode 'incremental' not supported");
    o.sync = MIRROR_SYNC_BITMAP;
    expect_start_error(f, &o, "Sync mode 'bitmap' not supported");
    base_opts(f, &o);
    o.replaces = "nope";
    expect_start_error(f, &o, "Failed to find node with node-name='nope'");
    o.replaces = "small";
    expect_start_error(f, &o, "Cannot replace 'small' by a node mirrored from "
                       "'src', because it cannot be guaranteed that doing so "
                       "would not lead to an abrupt change of visible data");
    base_opts(f, &o);
    o.job_id = "1x";
    expect_start_error(f, &o, "Invalid job ID '1x'");
    o.job_id = NULL;
    expect_start_error(f, &o, "Invalid job ID ''");
    base_opts(f, &o);
    o.filter_node_name = "src";
    expect_start_error(f, &o, "Duplicate nodes with node-name='src'");
    base_opts(f, &o);
    o.speed = -5;
    expect_start_error(f, &o, "Parameter 'speed' expects a non-negative "
                       "value");
    assert_string_equal(f->log, "created null ");
    f->log[0] = '\0';

    /* Node lookups. */
    assert_null(mirror_lookup_node(f->g, "nope", &err));
    assert_string_equal(err->msg, "Cannot find device='nope' nor "
                        "node-name='nope'");
    bd_error_free(err);
    err = NULL;
    assert_null(mirror_lookup_root(f->g, "src-file", &err));
    bd_error_free(err);
    err = NULL;

    /* Different sizes fail when the job runs, with len 0. */
    base_opts(f, &o);
    o.target = small;
    o.auto_dismiss = false;
    {
        struct job *j = start(f, &o);
        json_t *info;

        wait_status(f, j, JOB_STATUS_CONCLUDED);
        assert_string_equal(f->log, "created running aborting "
                            "BLOCK_JOB_COMPLETED(Source and target image have "
                            "different sizes) concluded ");
        info = job_query_block_info(j);
        assert_int_equal(json_integer_value(json_object_get(info, "len")), 0);
        json_decref(info);
        assert_int_equal(job_dismiss(j, NULL), 0);
    }
    f->log[0] = '\0';

    /* A target in use by a running mirror is busy; its filter and target
     * are not root nodes. */
    base_opts(f, &o);
    o.speed = 64 * 1024;
    o.filter_node_name = "mtop";
    {
        struct job *j = start(f, &o);
        struct mirror_opts o2;

        mirror_opts_init(&o2);
        o2.job_id = "m2";
        o2.source = small;
        o2.target = f->tgt;
        expect_start_error(f, &o2, "Node 'tgt' is busy: block device is in "
                           "use by block job: mirror");
        assert_null(mirror_lookup_root(f->g, "mtop", &err));
        assert_string_equal(err->msg, "Need a root block node");
        bd_error_free(err);
        err = NULL;
        assert_null(mirror_lookup_root(f->g, "tgt", &err));
        bd_error_free(err);
        err = NULL;
        assert_null(mirror_lookup_root(f->g, "src", &err));
        assert_string_equal(err->msg, "Need a root block node");
        bd_error_free(err);
        err = NULL;
        /* A target some other user holds unshared: permission conflict
         * after the job was created (QEMU: created, null). */
        assert_int_equal(job_user_cancel(j, true, NULL), 0);
        wait_idle(f);
    }
    f->log[0] = '\0';
    {
        struct bd_blk *user = bd_blk_new(f->g, NULL, BD_PERM_CONSISTENT_READ,
                                         BD_PERM_CONSISTENT_READ);

        assert_int_equal(bd_blk_insert(user, f->tgt, NULL), 0);
        base_opts(f, &o);
        assert_null(mirror_start(f->m, &o, &err));
        assert_non_null(strstr(err->msg, "Permission conflict on node "
                                         "'tgt'"));
        bd_error_free(err);
        assert_string_equal(f->log, "created null ");
        bd_blk_free(user);
    }
}

/* replaces naming the source itself pivots like the default; a replaces
 * node that disappeared makes job-complete fail. */
static void test_mirror_replaces(void **state)
{
    struct fixture *f = *state;
    struct mirror_opts o;
    struct job *j;

    open_pair(f, NULL);
    base_opts(f, &o);
    o.replaces = "src";
    j = start(f, &o);
    wait_status(f, j, JOB_STATUS_READY);
    assert_int_equal(job_complete(j, NULL), 0);
    wait_idle(f);
    assert_ptr_equal(bd_blk_node(f->guest), f->tgt);
}

/* The filter's bitmap shows in the node's query as QEMU's does. */
static void test_mirror_filter_bitmap(void **state)
{
    struct fixture *f = *state;
    struct mirror_opts o;
    struct job *j;
    json_t *bms;
    json_t *bm;

    open_pair(f, NULL);
    base_opts(f, &o);
    o.filter_node_name = "mtop";
    o.granularity = 4096;
    j = start(f, &o);
    wait_status(f, j, JOB_STATUS_READY);
    bms = bd_dirty_bitmap_query(bd_graph_find_node(f->g, "mtop"));
    assert_int_equal(json_array_size(bms), 1);
    bm = json_array_get(bms, 0);
    assert_null(json_object_get(bm, "name"));
    assert_true(json_is_false(json_object_get(bm, "recording")));
    assert_int_equal(json_integer_value(json_object_get(bm, "granularity")),
                     4096);
    json_decref(bms);
    /* No resize while the job copies: bitmap, copies and target have the
     * source's size. */
    {
        struct bd_error *err = NULL;

        assert_int_equal(bd_node_truncate(bd_graph_find_node(f->g, "mtop"),
                                          2 * IMG_SIZE, false,
                                          BD_PREALLOC_OFF, &err), -EBUSY);
        assert_string_equal(err->msg, "Cannot resize node 'mtop' while a "
                            "mirror job copies it");
        bd_error_free(err);
    }
    assert_int_equal(job_user_cancel(j, true, NULL), 0);
    wait_idle(f);
    assert_null(bd_graph_find_node(f->g, "mtop"));
}

/* ------------------------------------------------------------------ */
/* Through the QMP dispatcher (schema validation + handlers)            */

static json_t *qmp(struct fixture *f, const char *text)
{
    struct qmp_context ctx = { .graph = f->g, .jobs = f->m };
    struct qmp_session sess = { .negotiated = true };
    json_t *req = json_loads(text, 0, NULL);
    json_t *reply;

    assert_non_null(req);
    reply = qmp_handle_request(&ctx, &sess, req);
    json_decref(req);
    return reply;
}

static void qmp_ok(struct fixture *f, const char *text)
{
    json_t *r = qmp(f, text);

    if (!json_object_get(r, "return")) {
        char *dump = json_dumps(r, 0);
        fail_msg("%s -> %s", text, dump);
    }
    json_decref(r);
}

static void qmp_err(struct fixture *f, const char *text, const char *cls,
                    const char *desc)
{
    json_t *r = qmp(f, text);
    json_t *e = json_object_get(r, "error");

    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(e, "class")), cls);
    assert_string_equal(json_string_value(json_object_get(e, "desc")), desc);
    json_decref(r);
}

static void test_mirror_qmp_commands(void **state)
{
    struct fixture *f = *state;
    struct job *j;
    char cmd[512];
    char path[128];
    struct stat st;

    open_pair(f, NULL);
    qmp_err(f, "{\"execute\": \"blockdev-mirror\", \"arguments\": "
            "{\"device\": \"src\", \"target\": \"tgt\", "
            "\"sync\": \"full\", \"granularity\": -1}}",
            "GenericError", "Parameter 'granularity' expects uint32_t");
    qmp_err(f, "{\"execute\": \"blockdev-mirror\", \"arguments\": "
            "{\"device\": \"nope\", \"target\": \"tgt\", "
            "\"sync\": \"full\"}}",
            "GenericError", "Cannot find device='nope' nor node-name='nope'");
    qmp_err(f, "{\"execute\": \"blockdev-mirror\", \"arguments\": "
            "{\"device\": \"src\", \"target\": \"tgt\", "
            "\"sync\": \"full\", \"job-id\": \"q\", "
            "\"buf-size\": -1}}",
            "GenericError", "Invalid parameter 'buf-size'");
    qmp_ok(f, "{\"execute\": \"blockdev-mirror\", \"arguments\": "
           "{\"device\": \"src\", \"target\": \"tgt\", "
           "\"sync\": \"full\", \"job-id\": \"q\", "
           "\"filter-node-name\": \"mtop\", \"granularity\": 8192, "
           "\"buf-size\": 1, \"on-target-error\": \"stop\"}}");
    j = job_find(f->m, "q");
    assert_non_null(j);
    assert_non_null(bd_graph_find_node(f->g, "mtop"));
    wait_status(f, j, JOB_STATUS_READY);
    qmp_err(f, "{\"execute\": \"block-job-change\", \"arguments\": "
            "{\"id\": \"nope\", \"type\": \"mirror\", "
            "\"copy-mode\": \"background\"}}",
            "DeviceNotActive", "Block job 'nope' not found");
    qmp_err(f, "{\"execute\": \"block-job-change\", \"arguments\": "
            "{\"id\": \"q\", \"type\": \"backup\"}}",
            "GenericError", "Job 'q' is of type 'mirror', not 'backup'");
    qmp_err(f, "{\"execute\": \"block-job-change\", \"arguments\": "
            "{\"id\": \"q\", \"type\": \"mirror\"}}",
            "GenericError", "Parameter 'copy-mode' is missing");
    qmp_ok(f, "{\"execute\": \"block-job-change\", \"arguments\": "
           "{\"id\": \"q\", \"type\": \"mirror\", "
           "\"copy-mode\": \"write-blocking\"}}");
    assert_int_equal(job_complete(j, NULL), 0);
    wait_idle(f);
    assert_ptr_equal(bd_blk_node(f->guest), f->tgt);

    /* drive-mirror creates the image with the source's size and format,
     * opens it under node-name, and the device ends up on it. */
    snprintf(path, sizeof(path), "%s/new.img", f->dir);
    snprintf(cmd, sizeof(cmd), "{\"execute\": \"drive-mirror\", "
             "\"arguments\": {\"device\": \"tgt\", \"target\": "
             "\"%s\", \"sync\": \"full\", \"job-id\": \"d\", "
             "\"node-name\": \"newn\"}}", path);
    f->log[0] = '\0';
    /* tgt is used by the device only, so it is a root node now. */
    qmp_ok(f, cmd);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, IMG_SIZE);
    j = job_find(f->m, "d");
    wait_status(f, j, JOB_STATUS_READY);
    assert_int_equal(job_complete(j, NULL), 0);
    wait_idle(f);
    assert_string_equal(bd_node_name(bd_blk_node(f->guest)), "newn");
    assert_true(same_content(f->src, bd_blk_node(f->guest)));
    snprintf(cmd, sizeof(cmd), "{\"execute\": \"drive-mirror\", "
             "\"arguments\": {\"device\": \"src\", \"target\": "
             "\"%s/none.img\", \"sync\": \"full\", \"job-id\": "
             "\"d2\", \"mode\": \"existing\"}}", f->dir);
    {
        json_t *r = qmp(f, cmd);
        const char *desc = json_string_value(json_object_get(
            json_object_get(r, "error"), "desc"));

        assert_non_null(desc);
        assert_non_null(strstr(desc, "none.img': No such file or "
                                     "directory"));
        json_decref(r);
    }
}

/* replaces naming a node below the source through a filter: that node's
 * parents (the filter) now use the target; the filter stays on top. */
static void test_mirror_replaces_below_filter(void **state)
{
    struct fixture *f = *state;
    struct bd_error *err = NULL;
    struct mirror_opts o;
    struct bd_node *flt;
    struct bd_blk *dev;
    struct job *j;
    json_t *opts;

    open_pair(f, NULL);
    bd_blk_free(f->guest);
    f->guest = NULL;
    opts = json_pack("{s:s, s:s, s:s}", "driver", "test-log", "node-name",
                     "flt", "file", "src");
    flt = bd_blockdev_add(f->g, opts, false, &err);
    json_decref(opts);
    assert_non_null(flt);
    dev = bd_blk_new(f->g, NULL, BD_PERM_CONSISTENT_READ | BD_PERM_WRITE,
                     BD_PERM_ALL);
    assert_int_equal(bd_blk_insert(dev, flt, NULL), 0);
    mirror_opts_init(&o);
    o.job_id = "r";
    o.source = flt;
    o.target = f->tgt;
    o.replaces = "src";
    j = start(f, &o);
    wait_status(f, j, JOB_STATUS_READY);
    assert_int_equal(job_complete(j, NULL), 0);
    wait_idle(f);
    assert_ptr_equal(bd_blk_node(dev), flt);
    assert_ptr_equal(bd_node_filtered(flt), f->tgt);
    bd_blk_free(dev);
}

/* Zero areas of the source become write-zeroes on the target, allowed to
 * unmap only with unmap=true; no data is copied for them. */
static void run_zero_copy(struct fixture *f, bool unmap)
{
    struct bd_error *err = NULL;
    struct mirror_opts o;
    struct bd_node *zsrc;
    struct bd_node *mem;
    struct td_mem_stats *st;
    struct job *j;
    json_t *opts;
    uint8_t *data;
    int64_t i;

    zsrc = add_raw(f, "zsrc", "tgt.img");       /* sparse, all zero */
    /* discard=unmap: only then may write-zeroes unmap (QEMU's rule). */
    opts = json_pack("{s:s, s:s, s:I, s:s}", "driver", "test-mem",
                     "node-name", "mem", "size", (json_int_t)IMG_SIZE,
                     "discard", "unmap");
    mem = bd_blockdev_add(f->g, opts, false, &err);
    json_decref(opts);
    assert_non_null(mem);
    data = td_mem_data(mem);
    memset(data, 0xff, IMG_SIZE);
    mirror_opts_init(&o);
    o.job_id = unmap ? "zu" : "zk";
    o.source = zsrc;
    o.target = mem;
    o.unmap = unmap;
    j = start(f, &o);
    wait_status(f, j, JOB_STATUS_READY);
    st = td_mem_stats(mem);
    assert_int_equal(atomic_load(&st->writes), 0);
    assert_true(atomic_load(&st->zeroes) > 0);
    if (unmap) {
        assert_int_equal(atomic_load(&st->zeroes_unmap),
                         atomic_load(&st->zeroes));
    } else {
        assert_int_equal(atomic_load(&st->zeroes_unmap), 0);
    }
    for (i = 0; i < IMG_SIZE; i++) {
        if (data[i]) {
            fail_msg("byte %lld not zeroed", (long long)i);
        }
    }
    assert_int_equal(job_user_cancel(j, true, NULL), 0);
    wait_idle(f);
}

static void test_mirror_zeroes_unmap(void **state)
{
    run_zero_copy(*state, true);
}

static void test_mirror_zeroes_no_unmap(void **state)
{
    run_zero_copy(*state, false);
}

int unit_run_tests(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_mirror_complete_pivots),
        T(test_mirror_complete_before_ready),
        T(test_mirror_cancel_after_ready),
        T(test_mirror_sync_none),
        T(test_mirror_manual_finalize),
        T(test_mirror_concurrent_background),
        T(test_mirror_concurrent_write_blocking),
        T(test_mirror_write_blocking_change),
        T(test_mirror_src_report_before),
        T(test_mirror_src_report_after),
        T(test_mirror_src_ignore_before),
        T(test_mirror_src_ignore_after),
        T(test_mirror_src_stop_before),
        T(test_mirror_src_stop_after),
        T(test_mirror_src_enospc_eio),
        T(test_mirror_tgt_report_before),
        T(test_mirror_tgt_report_after),
        T(test_mirror_tgt_ignore_before),
        T(test_mirror_tgt_ignore_after),
        T(test_mirror_tgt_stop_before),
        T(test_mirror_tgt_stop_after),
        T(test_mirror_tgt_enospc_after),
        T(test_mirror_tgt_auto_before),
        T(test_mirror_write_blocking_target_error),
        T(test_mirror_bad_input),
        T(test_mirror_replaces),
        T(test_mirror_filter_bitmap),
        T(test_mirror_qmp_commands),
        T(test_mirror_replaces_below_filter),
        T(test_mirror_zeroes_unmap),
        T(test_mirror_zeroes_no_unmap),
    };
#undef T

    return cmocka_run_group_tests_name("mirror", tests, NULL, NULL);
}
