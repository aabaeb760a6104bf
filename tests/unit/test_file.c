/*
 * tests/unit/test_file.c - driver/file.c through its syscall table
 * (driver/file-sys.h): EAGAIN, short transfers, ENOSPC and EIO injected
 * into real calls on real files; O_DIRECT bounce buffers and the partial
 * last block; aio=native; OFD locking with QEMU's messages; hole punching,
 * fallocate write-zeroes, SEEK_DATA/SEEK_HOLE block status; truncate.
 */
#include "common/config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
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
#include "driver/block-int.h"
#include "driver/file-sys.h"
#include "tests/helpers/test-drivers.h"
#include "tests/unit/unit.h"

/* What the injecting table does; reset by every test's setup. The table
 * has no opaque pointer, so this is the one place with test globals. */
static struct {
    int eagain_left;          /* > 0: that many EAGAINs; -1: forever */
    size_t short_max;         /* > 0: transfer at most this per call */
    int preadv_errno;         /* != 0: preadv fails with it */
    int pwritev_errno;
    int fdatasync_errno;
    int fallocate_errno;
    atomic_int preadv_calls;
    atomic_int pwritev_calls;
    atomic_int fdatasync_calls;
    atomic_int punch_calls;
    atomic_int zero_range_calls;
    atomic_int misaligned_direct;  /* O_DIRECT call with a bad iovec */
} fx;

static char tmpdir[64];

static void check_direct(int fd, const struct iovec *iov, int n, off_t off)
{
    int i;

    if (!(fcntl(fd, F_GETFL) & O_DIRECT)) {
        return;
    }
    if (off % 512) {
        atomic_fetch_add(&fx.misaligned_direct, 1);
    }
    for (i = 0; i < n; i++) {
        if ((uintptr_t)iov[i].iov_base % 512 || iov[i].iov_len % 512) {
            atomic_fetch_add(&fx.misaligned_direct, 1);
        }
    }
}

/* Copy at most short_max bytes' worth of iovec. */
static int clip_iov(const struct iovec *iov, int n, struct iovec *out)
{
    size_t left = fx.short_max;
    int i;

    for (i = 0; i < n && left > 0; i++) {
        out[i] = iov[i];
        if (out[i].iov_len > left) {
            out[i].iov_len = left;
        }
        left -= out[i].iov_len;
    }
    return i;
}

static ssize_t fx_preadv(int fd, const struct iovec *iov, int n, off_t off)
{
    struct iovec clipped[64];

    atomic_fetch_add(&fx.preadv_calls, 1);
    if (fx.eagain_left) {
        if (fx.eagain_left > 0) {
            fx.eagain_left--;
        }
        errno = EAGAIN;
        return -1;
    }
    if (fx.preadv_errno) {
        errno = fx.preadv_errno;
        return -1;
    }
    check_direct(fd, iov, n, off);
    if (fx.short_max && n <= 64) {
        n = clip_iov(iov, n, clipped);
        return preadv(fd, clipped, n, off);
    }
    return preadv(fd, iov, n, off);
}

static ssize_t fx_pwritev(int fd, const struct iovec *iov, int n, off_t off)
{
    struct iovec clipped[64];

    atomic_fetch_add(&fx.pwritev_calls, 1);
    if (fx.eagain_left) {
        if (fx.eagain_left > 0) {
            fx.eagain_left--;
        }
        errno = EAGAIN;
        return -1;
    }
    if (fx.pwritev_errno) {
        errno = fx.pwritev_errno;
        return -1;
    }
    check_direct(fd, iov, n, off);
    if (fx.short_max && n <= 64) {
        n = clip_iov(iov, n, clipped);
        return pwritev(fd, clipped, n, off);
    }
    return pwritev(fd, iov, n, off);
}

static int fx_fdatasync(int fd)
{
    atomic_fetch_add(&fx.fdatasync_calls, 1);
    if (fx.fdatasync_errno) {
        errno = fx.fdatasync_errno;
        return -1;
    }
    return fdatasync(fd);
}

static int fx_fallocate(int fd, int mode, off_t off, off_t len)
{
    if (mode & FALLOC_FL_PUNCH_HOLE) {
        atomic_fetch_add(&fx.punch_calls, 1);
    }
    if (mode & FALLOC_FL_ZERO_RANGE) {
        atomic_fetch_add(&fx.zero_range_calls, 1);
    }
    if (fx.fallocate_errno) {
        errno = fx.fallocate_errno;
        return -1;
    }
    return fallocate(fd, mode, off, len);
}

static struct bd_file_sys fx_sys;

struct fenv {
    struct bd_graph *g;
    struct bd_node *n;
    struct bd_blk *blk;
    char path[128];
};

static int group_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/blkrig-test-file-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        return -1;
    }
    fx_sys = bd_file_sys_default;
    fx_sys.preadv = fx_preadv;
    fx_sys.pwritev = fx_pwritev;
    fx_sys.fdatasync = fx_fdatasync;
    fx_sys.fallocate = fx_fallocate;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    rmdir(tmpdir);
    return 0;
}

static int test_setup(void **state)
{
    struct fenv *e = calloc(1, sizeof(*e));

    memset(&fx, 0, sizeof(fx));
    e->g = bd_graph_new();
    bd_graph_set_file_sys(e->g, &fx_sys);
    snprintf(e->path, sizeof(e->path), "%s/img", tmpdir);
    *state = e;
    return 0;
}

static int test_teardown(void **state)
{
    struct fenv *e = *state;

    bd_graph_free(e->g);
    unlink(e->path);
    free(e);
    return 0;
}

static void make_file(const char *path, size_t size, int seed)
{
    FILE *f = fopen(path, "w");
    size_t i;

    assert_non_null(f);
    for (i = 0; i < size; i++) {
        fputc((int)((i * 13 + (size_t)seed) & 0xff), f);
    }
    fclose(f);
}

/* Open the file node with extra flat options and attach a backend. */
static int fopen_node(struct fenv *e, const char *extra, int flags,
                      uint64_t perm, uint64_t shared, struct bd_error **errp)
{
    struct bd_error *err = NULL;
    json_t *o = NULL;

    o = extra ? bd_opts_parse(extra, NULL, &err) : json_object();
    assert_non_null(o);
    json_object_set_new(o, "driver", json_string("file"));
    json_object_set_new(o, "filename", json_string(e->path));
    e->n = bd_open(e->g, NULL, o, flags, errp);
    if (!e->n) {
        return -1;
    }
    e->blk = bd_blk_new(e->g, NULL, perm, shared);
    if (bd_blk_insert(e->blk, e->n, errp) < 0) {
        bd_unref(e->n);
        e->n = NULL;
        return -1;
    }
    bd_unref(e->n);
    return 0;
}

#define RW_PERM (BD_PERM_CONSISTENT_READ | BD_PERM_WRITE | BD_PERM_RESIZE)

static void open_rw(struct fenv *e, const char *extra, int flags)
{
    struct bd_error *err = NULL;

    if (fopen_node(e, extra, flags | BD_O_RDWR, RW_PERM, BD_PERM_ALL,
                   &err) < 0) {
        fail_msg("open: %s", bd_error_msg(err));
    }
}

/* ------------------------------------------------------------------ */
/* Injected syscall results                                             */

static void test_file_eagain_retried(void **state)
{
    struct fenv *e = *state;
    uint8_t buf[4096];

    make_file(e->path, 65536, 1);
    open_rw(e, NULL, 0);
    fx.eagain_left = 5;
    assert_int_equal(bd_blk_pread(e->blk, 4096, 4096, buf, 0), 0);
    assert_int_equal(buf[0], (4096 * 13 + 1) & 0xff);
    assert_int_equal(atomic_load(&fx.preadv_calls), 6);
}

/* A file that never stops saying EAGAIN gives an error, not a hang. */
static void test_file_eagain_bounded(void **state)
{
    struct fenv *e = *state;
    uint8_t buf[4096];

    make_file(e->path, 65536, 1);
    open_rw(e, NULL, 0);
    fx.eagain_left = -1;
    assert_int_equal(bd_blk_pread(e->blk, 0, 4096, buf, 0), -EAGAIN);
    assert_int_equal(bd_blk_pwrite(e->blk, 0, 4096, buf, 0), -EAGAIN);
    fx.eagain_left = 0;
    assert_int_equal(bd_blk_pread(e->blk, 0, 4096, buf, 0), 0);
}

/* Short reads and writes are continued until the request is complete. */
static void test_file_short_transfers(void **state)
{
    struct fenv *e = *state;
    uint8_t out[10000];
    uint8_t in[10000];
    size_t i;

    make_file(e->path, 65536, 2);
    open_rw(e, NULL, 0);
    for (i = 0; i < sizeof(out); i++) {
        out[i] = (uint8_t)(i * 31 + 7);
    }
    fx.short_max = 777;
    assert_int_equal(bd_blk_pwrite(e->blk, 1234, sizeof(out), out, 0), 0);
    assert_true(atomic_load(&fx.pwritev_calls) >= 13);
    memset(in, 0, sizeof(in));
    assert_int_equal(bd_blk_pread(e->blk, 1234, sizeof(in), in, 0), 0);
    assert_memory_equal(in, out, sizeof(out));
    assert_true(atomic_load(&fx.preadv_calls) >= 13);
}

static void test_file_errors_propagate(void **state)
{
    struct fenv *e = *state;
    uint8_t buf[4096] = { 0 };

    make_file(e->path, 65536, 3);
    open_rw(e, NULL, 0);
    fx.pwritev_errno = ENOSPC;
    assert_int_equal(bd_blk_pwrite(e->blk, 0, 4096, buf, 0), -ENOSPC);
    fx.pwritev_errno = 0;
    fx.preadv_errno = EIO;
    assert_int_equal(bd_blk_pread(e->blk, 0, 4096, buf, 0), -EIO);
    fx.preadv_errno = 0;
    /* A write, then a flush whose fdatasync fails, then one that works. */
    assert_int_equal(bd_blk_pwrite(e->blk, 0, 4096, buf, 0), 0);
    fx.fdatasync_errno = EIO;
    assert_int_equal(bd_blk_flush(e->blk), -EIO);
    fx.fdatasync_errno = 0;
    assert_int_equal(bd_blk_flush(e->blk), 0);
    assert_int_equal(atomic_load(&fx.fdatasync_calls), 2);
    /* Nothing written since: no syscall at all. */
    assert_int_equal(bd_blk_flush(e->blk), 0);
    assert_int_equal(atomic_load(&fx.fdatasync_calls), 2);
}

/* cache.no-flush: flushes never reach the disk. */
static void test_file_no_flush(void **state)
{
    struct fenv *e = *state;
    uint8_t buf[512] = { 0 };

    make_file(e->path, 4096, 3);
    open_rw(e, NULL, BD_O_NO_FLUSH);
    assert_int_equal(bd_blk_pwrite(e->blk, 0, 512, buf, 0), 0);
    assert_int_equal(bd_blk_flush(e->blk), 0);
    assert_int_equal(atomic_load(&fx.fdatasync_calls), 0);
}

/* ------------------------------------------------------------------ */
/* O_DIRECT                                                             */

/* Unaligned memory goes through a bounce buffer: the kernel only ever
 * sees aligned buffers, and the data is right. */
static void test_file_direct_bounce(void **state)
{
    struct fenv *e = *state;
    uint8_t *raw = bd_malloc(8192 + 1);
    uint8_t *buf = raw + 1;
    uint8_t *check = bd_malloc(8192 + 1);
    size_t i;

    make_file(e->path, 65536, 4);
    open_rw(e, NULL, BD_O_NOCACHE);
    /* Opening probes the alignment with deliberately small reads. */
    atomic_store(&fx.misaligned_direct, 0);
    assert_int_equal(bd_node_request_alignment(bd_blk_node(e->blk)) % 512, 0);
    for (i = 0; i < 8192; i++) {
        buf[i] = (uint8_t)(i ^ 0x5a);
    }
    /* Aligned range, misaligned memory. */
    assert_int_equal(bd_blk_pwrite(e->blk, 4096, 8192, buf, 0), 0);
    assert_int_equal(bd_blk_pread(e->blk, 4096, 8192, check + 1, 0), 0);
    assert_memory_equal(check + 1, buf, 8192);
    /* Unaligned range and memory. */
    assert_int_equal(bd_blk_pwrite(e->blk, 100, 1000, buf, 0), 0);
    assert_int_equal(bd_blk_pread(e->blk, 100, 1000, check + 1, 0), 0);
    assert_memory_equal(check + 1, buf, 1000);
    assert_int_equal(atomic_load(&fx.misaligned_direct), 0);
    free(raw);
    free(check);
}

/* A file whose size is not a multiple of the block size: the last block
 * is read short by the kernel and the rest of the (sector-rounded) node
 * reads as zeroes. */
static void test_file_direct_partial_last_block(void **state)
{
    struct fenv *e = *state;
    uint8_t *buf = bd_memalign(4096, 8192);
    uint8_t want[1000];
    size_t i;

    make_file(e->path, 5000, 5);
    for (i = 0; i < sizeof(want); i++) {
        want[i] = (uint8_t)(((4000 + i) * 13 + 5) & 0xff);
    }
    open_rw(e, NULL, BD_O_NOCACHE);
    atomic_store(&fx.misaligned_direct, 0);
    assert_int_equal(bd_blk_getlength(e->blk), 5120);
    memset(buf, 0xff, 8192);
    assert_int_equal(bd_blk_pread(e->blk, 4000, 1120, buf, 0), 0);
    assert_memory_equal(buf, want, 1000);
    assert_true(bd_buffer_is_zero(buf + 1000, 120));
    /* Same with short transfers injected mid-file. */
    fx.short_max = 1536;
    memset(buf, 0xff, 8192);
    assert_int_equal(bd_blk_pread(e->blk, 0, 5120, buf, 0), 0);
    assert_memory_equal(buf + 4000, want, 1000);
    assert_true(bd_buffer_is_zero(buf + 5000, 120));
    assert_int_equal(atomic_load(&fx.misaligned_direct), 0);
    free(buf);
}

/* ------------------------------------------------------------------ */
/* aio=native                                                           */

static void test_file_aio_native(void **state)
{
    struct fenv *e = *state;
    uint8_t *buf = bd_memalign(4096, 65536);
    uint8_t *back = bd_memalign(4096, 65536);
    size_t i;

    make_file(e->path, 1 << 20, 6);
    open_rw(e, "aio=native", BD_O_NOCACHE);
    for (i = 0; i < 65536; i++) {
        buf[i] = (uint8_t)(i * 3);
    }
    assert_int_equal(bd_blk_pwrite(e->blk, 65536, 65536, buf, 0), 0);
    assert_int_equal(bd_blk_pread(e->blk, 65536, 65536, back, 0), 0);
    assert_memory_equal(buf, back, 65536);
    /* Unaligned memory and range work through native AIO too. */
    assert_int_equal(bd_blk_pread(e->blk, 65537, 1000, back + 1, 0), 0);
    assert_memory_equal(back + 1, buf + 1, 1000);
    free(buf);
    free(back);
}

static void test_file_option_errors(void **state)
{
    struct fenv *e = *state;
    struct bd_error *err = NULL;

    make_file(e->path, 4096, 1);
    assert_int_equal(fopen_node(e, "aio=native", BD_O_RDWR, RW_PERM,
                                BD_PERM_ALL, &err), -1);
    assert_string_equal(bd_error_msg(err), "aio=native was specified, but "
                        "it requires cache.direct=on, which was not "
                        "specified.");
    bd_error_free(err);
    err = NULL;
    assert_int_equal(fopen_node(e, "aio=bogus", 0, 0, BD_PERM_ALL, &err), -1);
    assert_string_equal(bd_error_msg(err), "invalid parameter value: bogus");
    bd_error_free(err);
    err = NULL;
    assert_int_equal(fopen_node(e, "locking=bogus", 0, 0, BD_PERM_ALL, &err),
                     -1);
    assert_string_equal(bd_error_msg(err), "invalid parameter value: bogus");
    bd_error_free(err);
    err = NULL;
    assert_int_equal(fopen_node(e, "drop-cache=maybe", 0, 0, BD_PERM_ALL,
                                &err), -1);
    assert_string_equal(bd_error_msg(err),
                        "Parameter 'drop-cache' expects 'on' or 'off'");
    bd_error_free(err);
    err = NULL;
    /* Accepted for compatibility. */
    assert_int_equal(fopen_node(e, "drop-cache=on,x-check-cache-dropped=on",
                                0, BD_PERM_CONSISTENT_READ, BD_PERM_ALL,
                                &err), 0);
}

static void test_file_open_errors(void **state)
{
    struct fenv *e = *state;
    struct bd_error *err = NULL;
    char msg[256];

    assert_int_equal(fopen_node(e, NULL, 0, 0, BD_PERM_ALL, &err), -1);
    snprintf(msg, sizeof(msg), "Could not open '%s': No such file or "
             "directory", e->path);
    assert_string_equal(bd_error_msg(err), msg);
    bd_error_free(err);
    err = NULL;
    snprintf(e->path, sizeof(e->path), "%s", tmpdir);
    assert_int_equal(fopen_node(e, NULL, 0, 0, BD_PERM_ALL, &err), -1);
    snprintf(msg, sizeof(msg), "'%s' is not a file", tmpdir);
    assert_string_equal(bd_error_msg(err), msg);
    bd_error_free(err);
    err = NULL;
    snprintf(e->path, sizeof(e->path), "%s/img", tmpdir);
    assert_null(bd_open(e->g, NULL, json_pack("{s:s}", "driver", "file"), 0,
                        &err));
    assert_string_equal(bd_error_msg(err),
                        "The 'file' block driver requires a file name");
    bd_error_free(err);
}

/* ------------------------------------------------------------------ */
/* Locking                                                              */

/* Two graphs are two "processes" for OFD locks (separate descriptions). */
static void test_file_locking(void **state)
{
    struct fenv *e = *state;
    struct fenv other = { 0 };
    struct bd_error *err = NULL;
    char hint[256];

    make_file(e->path, 4096, 1);
    other.g = bd_graph_new();
    snprintf(other.path, sizeof(other.path), "%s", e->path);
    snprintf(hint, sizeof(hint), "Is another process using the image "
             "[%s]?\n", e->path);

    /* A reader that does not share write (like a qcow2 above the file). */
    assert_int_equal(fopen_node(e, NULL, 0, BD_PERM_CONSISTENT_READ,
                                BD_PERM_ALL & ~BD_PERM_WRITE, &err), 0);
    assert_int_equal(fopen_node(&other, NULL, BD_O_RDWR, RW_PERM,
                                BD_PERM_ALL, &err), -1);
    assert_string_equal(bd_error_msg(err), "Failed to get \"write\" lock");
    assert_string_equal(err->hint, hint);
    bd_error_free(err);
    err = NULL;
    /* Readers are welcome. */
    bd_blk_free(other.blk);
    other.blk = NULL;
    assert_int_equal(fopen_node(&other, NULL, 0, BD_PERM_CONSISTENT_READ,
                                BD_PERM_ALL, &err), 0);
    bd_blk_free(other.blk);
    other.blk = NULL;
    /* locking=off and force-share ignore the locks. */
    assert_int_equal(fopen_node(&other, "locking=off", BD_O_RDWR, RW_PERM,
                                BD_PERM_ALL, &err), 0);
    bd_blk_free(other.blk);
    other.blk = NULL;
    assert_int_equal(fopen_node(&other, NULL, BD_O_FORCE_SHARE, 0,
                                BD_PERM_ALL, &err), 0);
    bd_blk_free(other.blk);
    other.blk = NULL;
    /* Closing drops the locks. */
    bd_blk_free(e->blk);
    e->blk = NULL;
    assert_int_equal(fopen_node(&other, NULL, BD_O_RDWR, RW_PERM,
                                BD_PERM_ALL, &err), 0);
    /* Now the other way round: a writer holds it, we refuse to share. */
    assert_int_equal(fopen_node(e, NULL, 0, BD_PERM_CONSISTENT_READ,
                                BD_PERM_ALL & ~BD_PERM_WRITE, &err), -1);
    assert_string_equal(bd_error_msg(err),
                        "Failed to get shared \"write\" lock");
    assert_string_equal(err->hint, hint);
    bd_error_free(err);
    bd_graph_free(other.g);
}

/* ------------------------------------------------------------------ */
/* Discard, write-zeroes, block status                                  */

static void test_file_discard_punches_hole(void **state)
{
    struct fenv *e = *state;
    uint8_t buf[65536];
    int64_t pnum = 0;
    int ret;

    make_file(e->path, 1 << 20, 7);
    open_rw(e, NULL, BD_O_UNMAP);
    assert_int_equal(bd_blk_pdiscard(e->blk, 65536, 131072), 0);
    assert_int_equal(atomic_load(&fx.punch_calls), 1);
    assert_int_equal(bd_blk_pread(e->blk, 65536, 65536, buf, 0), 0);
    assert_true(bd_buffer_is_zero(buf, sizeof(buf)));
    /* The size is kept. */
    assert_int_equal(bd_blk_getlength(e->blk), 1 << 20);
    ret = bd_node_block_status(bd_blk_node(e->blk), 65536, 1 << 20, &pnum,
                               NULL, NULL);
    assert_true(ret & BD_BLOCK_ZERO);
    assert_false(ret & BD_BLOCK_DATA);
    assert_int_equal(pnum, 131072);
    ret = bd_node_block_status(bd_blk_node(e->blk), 0, 1 << 20, &pnum, NULL,
                               NULL);
    assert_true(ret & BD_BLOCK_DATA);
    assert_int_equal(pnum, 65536);
    /* The file system says no: discard is advisory, so success. */
    fx.fallocate_errno = EOPNOTSUPP;
    assert_int_equal(bd_blk_pdiscard(e->blk, 0, 4096), 0);
}

static void test_file_write_zeroes(void **state)
{
    struct fenv *e = *state;
    uint8_t buf[8192];

    make_file(e->path, 1 << 20, 8);
    open_rw(e, NULL, BD_O_UNMAP);
    assert_int_equal(bd_blk_pwrite_zeroes(e->blk, 0, 8192, 0), 0);
    assert_int_equal(atomic_load(&fx.zero_range_calls), 1);
    assert_int_equal(atomic_load(&fx.pwritev_calls), 0);
    assert_int_equal(bd_blk_pwrite_zeroes(e->blk, 8192, 8192,
                                          BD_REQ_MAY_UNMAP), 0);
    assert_int_equal(atomic_load(&fx.punch_calls), 1);
    assert_int_equal(bd_blk_pread(e->blk, 0, 8192, buf, 0), 0);
    assert_true(bd_buffer_is_zero(buf, sizeof(buf)));
    assert_int_equal(bd_blk_pread(e->blk, 8192, 8192, buf, 0), 0);
    assert_true(bd_buffer_is_zero(buf, sizeof(buf)));
    /* No fallocate support: a zero buffer is written instead. */
    fx.fallocate_errno = EOPNOTSUPP;
    assert_int_equal(bd_blk_pwrite_zeroes(e->blk, 65536, 4096, 0), 0);
    assert_int_equal(atomic_load(&fx.pwritev_calls), 1);
    /* A real error from fallocate is an error. */
    fx.fallocate_errno = EIO;
    /* (zero-range was disabled by EOPNOTSUPP: the fallback keeps going) */
    assert_int_equal(bd_blk_pwrite_zeroes(e->blk, 65536, 4096, 0), 0);
}

/* A sparse file: data, hole, data; block status follows SEEK_DATA/HOLE and
 * reports the hole as zero. */
static void test_file_block_status_sparse(void **state)
{
    struct fenv *e = *state;
    int fd;
    uint8_t data[4096];
    int64_t pnum = 0;
    int64_t map = 0;
    struct bd_node *file = NULL;
    int ret;

    memset(data, 1, sizeof(data));
    fd = open(e->path, O_CREAT | O_RDWR | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, data, sizeof(data), 0), 4096);
    assert_int_equal(pwrite(fd, data, sizeof(data), 1 << 20), 4096);
    close(fd);
    open_rw(e, NULL, 0);
    ret = bd_node_block_status(bd_blk_node(e->blk), 0, 2 << 20, &pnum, &map,
                               &file);
    assert_int_equal(ret & (BD_BLOCK_DATA | BD_BLOCK_ZERO), BD_BLOCK_DATA);
    assert_true(ret & BD_BLOCK_OFFSET_VALID);
    assert_int_equal(pnum, 4096);
    assert_ptr_equal(file, bd_blk_node(e->blk));
    ret = bd_node_block_status(bd_blk_node(e->blk), 4096, 2 << 20, &pnum,
                               &map, &file);
    assert_int_equal(ret & (BD_BLOCK_DATA | BD_BLOCK_ZERO), BD_BLOCK_ZERO);
    assert_int_equal(pnum, (1 << 20) - 4096);
    assert_int_equal(map, 4096);
    ret = bd_node_block_status(bd_blk_node(e->blk), 1 << 20, 2 << 20, &pnum,
                               NULL, NULL);
    assert_true(ret & BD_BLOCK_DATA);
    assert_true(ret & BD_BLOCK_EOF);
    assert_int_equal(pnum, 4096);
    /* Through raw and a filter: the answer comes from the file, mapped. */
    {
        struct bd_error *err = NULL;
        struct bd_graph *g = td_graph_new();
        struct bd_node *top = NULL;
        char json[512];

        bd_graph_set_file_sys(g, &fx_sys);
        snprintf(json, sizeof(json), "{\"driver\": \"test-log\", "
                 "\"file\": {\"driver\": \"raw\", \"offset\": 4096, "
                 "\"file\": {\"driver\": \"file\", \"filename\": "
                 "\"%s\", \"locking\": \"off\"}}}", e->path);
        top = td_open_json(g, json, 0, &err);
        assert_non_null(top);
        ret = bd_node_block_status(top, 0, 2 << 20, &pnum, &map, &file);
        assert_int_equal(ret & (BD_BLOCK_DATA | BD_BLOCK_ZERO),
                         BD_BLOCK_ZERO);
        assert_int_equal(pnum, (1 << 20) - 4096);
        assert_int_equal(map, 4096);
        assert_string_equal(bd_node_driver_name(file), "file");
        ret = bd_node_block_status(top, (1 << 20) - 4096, 2 << 20, &pnum,
                                   &map, &file);
        assert_true(ret & BD_BLOCK_DATA);
        assert_true(ret & BD_BLOCK_EOF);
        assert_int_equal(map, 1 << 20);
        bd_unref(top);
        bd_graph_free(g);
    }
}

/* ------------------------------------------------------------------ */
/* Truncate                                                             */

static void test_file_truncate(void **state)
{
    struct fenv *e = *state;
    struct bd_error *err = NULL;
    struct stat st;

    make_file(e->path, 4096, 9);
    open_rw(e, NULL, 0);
    assert_int_equal(bd_blk_truncate(e->blk, 1 << 20, false, BD_PREALLOC_OFF,
                                     &err), 0);
    assert_int_equal(stat(e->path, &st), 0);
    assert_int_equal(st.st_size, 1 << 20);
    assert_int_equal(bd_blk_getlength(e->blk), 1 << 20);
    assert_int_equal(bd_blk_truncate(e->blk, 2 << 20, false,
                                     BD_PREALLOC_FALLOC, &err), 0);
    assert_int_equal(stat(e->path, &st), 0);
    assert_true(st.st_blocks * 512 >= (1 << 20));
    assert_int_equal(bd_blk_truncate(e->blk, 3000, false, BD_PREALLOC_OFF,
                                     &err), 0);
    assert_int_equal(bd_blk_getlength(e->blk), 3072);
    assert_int_equal(bd_blk_truncate(e->blk, 1000, false,
                                     BD_PREALLOC_FULL, &err), -ENOTSUP);
    assert_string_equal(bd_error_msg(err),
                        "Cannot use preallocation for shrinking files");
    bd_error_free(err);
    err = NULL;
    assert_int_equal(bd_blk_truncate(e->blk, 1 << 21, false,
                                     BD_PREALLOC_METADATA, &err), -ENOTSUP);
    assert_string_equal(bd_error_msg(err),
                        "Unsupported preallocation mode: metadata");
    bd_error_free(err);
}

/* Read-only files: auto-read-only falls back, plain RW open fails. */
static void test_file_read_only_fallback(void **state)
{
    struct fenv *e = *state;
    struct bd_error *err = NULL;

    if (geteuid() == 0) {
        skip();   /* root opens anything for writing */
    }
    make_file(e->path, 4096, 1);
    assert_int_equal(chmod(e->path, 0444), 0);
    assert_int_equal(fopen_node(e, NULL, BD_O_RDWR, 0, BD_PERM_ALL, &err),
                     -1);
    bd_error_free(err);
    err = NULL;
    assert_int_equal(fopen_node(e, NULL, BD_O_RDWR | BD_O_AUTO_RDONLY,
                                BD_PERM_CONSISTENT_READ, BD_PERM_ALL, &err),
                     0);
    assert_true(bd_is_read_only(bd_blk_node(e->blk)));
}

int unit_run_tests(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, test_setup, test_teardown)
    const struct CMUnitTest tests[] = {
        T(test_file_eagain_retried),
        T(test_file_eagain_bounded),
        T(test_file_short_transfers),
        T(test_file_errors_propagate),
        T(test_file_no_flush),
        T(test_file_direct_bounce),
        T(test_file_direct_partial_last_block),
        T(test_file_aio_native),
        T(test_file_option_errors),
        T(test_file_open_errors),
        T(test_file_locking),
        T(test_file_discard_punches_hole),
        T(test_file_write_zeroes),
        T(test_file_block_status_sparse),
        T(test_file_truncate),
        T(test_file_read_only_fallback),
    };
#undef T

    return cmocka_run_group_tests_name("file", tests, group_setup,
                                       group_teardown);
}
