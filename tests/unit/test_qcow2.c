/*
 * tests/unit/test_qcow2.c - the qcow2 driver: refcount entry widths, the
 * table cache, images that read back what was written (every cluster size
 * class, v2 and v3, compressed and zero clusters, discard, backing files),
 * many threads on the same and on different clusters, a fault sweep that
 * fails every file write of a workload in turn and checks that the image
 * still opens without corruption, and bad headers.
 */
#include "common/config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
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
#include "driver/drivers.h"
#include "driver/file-sys.h"
#include "driver/qcow2-int.h"
#include "driver/qcow2.h"
#include "tests/helpers/qcow2_workload.h"
#include "tests/unit/unit.h"

struct fx {
    char dir[64];
    char img[96];
    char ref[96];
    char base[96];
};

static int fx_setup(void **state)
{
    struct fx *f = bd_malloc0(sizeof(*f));

    snprintf(f->dir, sizeof(f->dir), "/tmp/blkrig-qcow2.XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->img, sizeof(f->img), "%s/img.qcow2", f->dir);
    snprintf(f->ref, sizeof(f->ref), "%s/ref.raw", f->dir);
    snprintf(f->base, sizeof(f->base), "%s/base.qcow2", f->dir);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;

    unlink(f->img);
    unlink(f->ref);
    unlink(f->base);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void create_qcow2(const char *path, uint64_t size, uint32_t cs,
                         int version, uint32_t rbits, const char *backing)
{
    struct qcow2_create_opts o;
    struct bd_error *err = NULL;

    memset(&o, 0, sizeof(o));
    o.size = size;
    o.cluster_size = cs;
    o.version = version;
    o.refcount_bits = rbits;
    o.backing_file = (char *)backing;
    o.backing_fmt = backing ? (char *)"qcow2" : NULL;
    if (qcow2_create_file(path, &o, &err) < 0) {
        fail_msg("create: %s", bd_error_msg(err));
    }
}

static void create_raw(const char *path, uint64_t size)
{
    json_t *o = json_object();
    struct bd_error *err = NULL;

    json_object_set_new(o, "size", json_integer((json_int_t)size));
    assert_int_equal(bd_driver_file_create(path, o, &err), 0);
    json_decref(o);
}

static struct bd_blk *open_blk(struct bd_graph *g, const char *path,
                               const char *fmt, int flags,
                               struct bd_error **errp)
{
    json_t *o = json_object();
    struct bd_node *n;
    struct bd_blk *b;

    json_object_set_new(o, "driver", json_string(fmt));
    n = bd_open(g, path, o, flags, errp);
    if (!n) {
        return NULL;
    }
    b = bd_blk_new(g, NULL, BD_PERM_CONSISTENT_READ |
                   ((flags & BD_O_RDWR) ? BD_PERM_WRITE : 0), BD_PERM_ALL);
    assert_int_equal(bd_blk_insert(b, n, NULL), 0);
    bd_unref(n);
    return b;
}

/* Open path as qcow2 read-only and return the check result. */
static struct qcow2_check_result check_image(const char *path)
{
    struct bd_graph *g = bd_graph_new();
    struct bd_error *err = NULL;
    struct qcow2_check_result res;
    struct bd_blk *b = open_blk(g, path, "qcow2", 0, &err);

    if (!b) {
        fail_msg("reopen: %s", bd_error_msg(err));
    }
    assert_int_equal(qcow2_node_check(bd_blk_node(b), &res, 0), 0);
    bd_graph_free(g);
    return res;
}

/* ------------------------------------------------------------------ */

/* Every refcount width stores values independently of its neighbours. */
static void test_qcow2_refcount_widths(void **state)
{
    uint8_t block[512];
    int order;

    (void)state;
    for (order = 0; order <= 6; order++) {
        uint64_t max = order == 6 ? UINT64_MAX : (1ULL << (1 << order)) - 1;
        uint64_t n = sizeof(block) * 8 >> order;
        uint64_t i;

        memset(block, 0, sizeof(block));
        for (i = 0; i < n; i++) {
            qcow2_refcount_set_entry(block, order, i, (i * 7 + 3) & max);
        }
        for (i = 0; i < n; i++) {
            assert_int_equal(qcow2_refcount_get_entry(block, order, i),
                             (i * 7 + 3) & max);
        }
        qcow2_refcount_set_entry(block, order, 5, max);
        assert_int_equal(qcow2_refcount_get_entry(block, order, 5), max);
        assert_int_equal(qcow2_refcount_get_entry(block, order, 4),
                         (4 * 7 + 3) & max);
        assert_int_equal(qcow2_refcount_get_entry(block, order, 6),
                         (6 * 7 + 3) & max);
    }
    /* 16-bit entries are big endian on disk. */
    memset(block, 0, sizeof(block));
    qcow2_refcount_set_entry(block, 4, 1, 0x0102);
    assert_int_equal(block[2], 1);
    assert_int_equal(block[3], 2);
}

/* A cache smaller than the working set evicts the least recently used
 * table and writes it back when dirty; reads see the written value. */
static void test_qcow2_cache_eviction(void **state)
{
    struct fx *f = *state;
    struct bd_graph *g = bd_graph_new();
    struct bd_blk *b;
    struct bd_node *n;
    struct qcow2_cache *c;
    uint64_t *t;
    uint8_t buf[8];
    int i;

    create_qcow2(f->img, 1 << 20, 4096, 3, 16, NULL);
    b = open_blk(g, f->img, "qcow2", BD_O_RDWR, NULL);
    assert_non_null(b);
    n = bd_blk_node(b);
    /* Clusters 16..19 lie beyond the metadata; use them as tables. */
    c = qcow2_cache_create(2, 4096, -1, BD_EV_L2_UPDATE);
    for (i = 0; i < 4; i++) {
        assert_int_equal(qcow2_cache_get_empty(n, c, (16 + i) * 4096ULL,
                                               (void **)&t), 0);
        memset(t, 0, 4096);
        qcow2_put_be64(t, 0x1000 + (uint64_t)i);
        qcow2_cache_mark_dirty(c, t);
        qcow2_cache_put(c, (void **)&t);
    }
    /* Tables 0 and 1 were evicted, hence written. */
    assert_int_equal(bd_child_pread(n->file, 16 * 4096, 8, buf, 0), 0);
    assert_int_equal(qcow2_be64(buf), 0x1000);
    assert_int_equal(bd_child_pread(n->file, 17 * 4096, 8, buf, 0), 0);
    assert_int_equal(qcow2_be64(buf), 0x1001);
    /* A hit returns the cached (dirty) copy. */
    assert_int_equal(qcow2_cache_get(n, c, 19 * 4096ULL, (void **)&t), 0);
    assert_int_equal(qcow2_be64(t), 0x1003);
    /* Every slot held: the cache refuses instead of evicting. */
    {
        uint64_t *t2, *t3;

        assert_int_equal(qcow2_cache_get(n, c, 18 * 4096ULL, (void **)&t2),
                         0);
        assert_int_equal(qcow2_cache_get(n, c, 16 * 4096ULL, (void **)&t3),
                         -ENOSPC);
        qcow2_cache_put(c, (void **)&t2);
    }
    qcow2_cache_put(c, (void **)&t);
    assert_int_equal(qcow2_cache_write(n, c), 0);
    assert_int_equal(bd_child_pread(n->file, 19 * 4096, 8, buf, 0), 0);
    assert_int_equal(qcow2_be64(buf), 0x1003);
    qcow2_cache_destroy(c);
    bd_graph_free(g);
}

struct layout {
    uint32_t cs;
    int version;
    uint32_t rbits;
};

/* Random workloads read back as the raw reference, also after reopening,
 * and leave an image that checks clean. */
static void test_qcow2_workload_readback(void **state)
{
    static const struct layout layouts[] = {
        { 65536, 3, 16 }, { 512, 3, 16 }, { 4096, 2, 16 }, { 2 << 20, 3, 16 },
        { 4096, 3, 1 }, { 4096, 3, 64 }, { 1024, 3, 8 },
    };
    struct fx *f = *state;
    size_t i;

    for (i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++) {
        const struct layout *l = &layouts[i];
        struct qw_opts o = { .seed = 100 + i, .ops = 150, .threads = 1,
                             .compress = true, .discard = true,
                             .zeroes = l->version >= 3, .cluster = l->cs };
        struct bd_graph *g = bd_graph_new();
        struct bd_blk *img, *ref;
        struct qcow2_check_result res;
        int64_t bad = -1;

        create_qcow2(f->img, 8 << 20, l->cs, l->version, l->rbits, NULL);
        create_raw(f->ref, 8 << 20);
        img = open_blk(g, f->img, "qcow2", BD_O_RDWR | BD_O_UNMAP, NULL);
        ref = open_blk(g, f->ref, "raw", BD_O_RDWR, NULL);
        assert_int_equal(qw_run(img, ref, &o), 0);
        assert_int_equal(qw_verify(img, ref, &bad), 0);
        bd_graph_free(g);

        g = bd_graph_new();
        img = open_blk(g, f->img, "qcow2", 0, NULL);
        ref = open_blk(g, f->ref, "raw", 0, NULL);
        assert_int_equal(qw_verify(img, ref, &bad), 0);
        bd_graph_free(g);
        res = check_image(f->img);
        assert_int_equal(res.corruptions, 0);
        assert_int_equal(res.leaks, 0);
        assert_int_equal(res.check_errors, 0);
    }
}

/* Partial writes over a backing file copy the rest of the cluster up;
 * discards hide the backing data again (v3 zero clusters). */
static void test_qcow2_backing_cow(void **state)
{
    struct fx *f = *state;
    struct bd_graph *g = bd_graph_new();
    struct bd_blk *base, *top;
    uint8_t *buf = bd_malloc(65536);
    struct qcow2_check_result res;

    create_qcow2(f->base, 1 << 20, 65536, 3, 16, NULL);
    base = open_blk(g, f->base, "qcow2", BD_O_RDWR, NULL);
    memset(buf, 0x33, 65536);
    assert_int_equal(bd_blk_pwrite(base, 0, 65536, buf, 0), 0);
    bd_graph_free(g);

    create_qcow2(f->img, 1 << 20, 65536, 3, 16, "base.qcow2");
    g = bd_graph_new();
    top = open_blk(g, f->img, "qcow2", BD_O_RDWR | BD_O_UNMAP, NULL);
    assert_non_null(bd_node_backing(bd_blk_node(top)));
    memset(buf, 0x44, 512);
    assert_int_equal(bd_blk_pwrite(top, 512, 512, buf, 0), 0);
    assert_int_equal(bd_blk_pread(top, 0, 65536, buf, 0), 0);
    assert_int_equal(buf[0], 0x33);
    assert_int_equal(buf[511], 0x33);
    assert_int_equal(buf[512], 0x44);
    assert_int_equal(buf[1023], 0x44);
    assert_int_equal(buf[1024], 0x33);
    assert_int_equal(buf[65535], 0x33);
    assert_int_equal(bd_blk_pdiscard(top, 0, 65536), 0);
    assert_int_equal(bd_blk_pread(top, 0, 65536, buf, 0), 0);
    assert_true(bd_buffer_is_zero(buf, 65536));
    bd_graph_free(g);
    res = check_image(f->img);
    assert_int_equal(res.corruptions + res.leaks + res.check_errors, 0);
    free(buf);
}

/* Eight threads writing interleaved sectors (so they meet inside the same
 * clusters, allocating and copying on write at once), then two threads on
 * disjoint halves: content and refcounts stay exact. */
static void test_qcow2_threads(void **state)
{
    struct fx *f = *state;
    static const int nthreads[] = { 8, 2 };
    size_t i;

    for (i = 0; i < 2; i++) {
        struct qw_opts o = { .seed = 7 + i, .ops = 300,
                             .threads = nthreads[i], .cluster = 4096 };
        struct bd_graph *g = bd_graph_new();
        struct bd_blk *img, *ref;
        struct qcow2_check_result res;
        int64_t bad = -1;

        create_qcow2(f->img, 1 << 20, 4096, 3, 16, NULL);
        create_raw(f->ref, 1 << 20);
        img = open_blk(g, f->img, "qcow2", BD_O_RDWR, NULL);
        ref = open_blk(g, f->ref, "raw", BD_O_RDWR, NULL);
        assert_int_equal(qw_run(img, ref, &o), 0);
        assert_int_equal(qw_verify(img, ref, &bad), 0);
        bd_graph_free(g);
        res = check_image(f->img);
        assert_int_equal(res.corruptions + res.leaks + res.check_errors, 0);
    }
}

/* ------------------------------------------------------------------ */
/* Fault sweep: fail the Nth file write (and every later one)           */

static atomic_int fault_count;
static int fault_at;
static bool fault_persistent;
static struct bd_file_sys faulty_sys;

static ssize_t faulty_pwritev(int fd, const struct iovec *iov, int n,
                              off_t off)
{
    int k = atomic_fetch_add(&fault_count, 1) + 1;

    if (k == fault_at || (fault_persistent && k > fault_at)) {
        errno = EIO;
        return -1;
    }
    return bd_file_sys_default.pwritev(fd, iov, n, off);
}

static void fault_workload(struct bd_blk *b)
{
    uint8_t *buf = bd_malloc(200 * 1024);

    memset(buf, 0x5a, 200 * 1024);
    (void)bd_blk_pwrite(b, 0, 100 * 1024, buf, 0);
    (void)bd_blk_pwrite(b, 300 * 1024, 3000, buf, 0);
    (void)bd_blk_pwrite_zeroes(b, 64 * 1024, 64 * 1024, BD_REQ_MAY_UNMAP);
    (void)bd_blk_pdiscard(b, 0, 32 * 1024);
    (void)bd_blk_pwrite(b, 512 * 1024, 16 * 1024, buf,
                        BD_REQ_WRITE_COMPRESSED);
    (void)bd_blk_pwrite(b, 900 * 1024, 200 * 1024, buf, 0);
    (void)bd_blk_flush(b);
    (void)bd_blk_pwrite(b, 4 << 20, 4096, buf, 0);
    (void)bd_blk_flush(b);
    free(buf);
}

/* Persistent: the Nth write and every later one fail (a dead disk).
 * Transient: only the Nth fails and the workload goes on (a glitch). */
static void test_qcow2_fault_sweep(void **state)
{
    struct fx *f = *state;
    int total, n, mode;

    faulty_sys = bd_file_sys_default;
    faulty_sys.pwritev = faulty_pwritev;
    /* Count the writes of a fault-free run first. */
    fault_at = INT32_MAX;
    atomic_store(&fault_count, 0);
    {
        struct bd_graph *g = bd_graph_new();
        struct bd_blk *b;

        create_qcow2(f->img, 8 << 20, 16384, 3, 16, NULL);
        bd_graph_set_file_sys(g, &faulty_sys);
        b = open_blk(g, f->img, "qcow2", BD_O_RDWR | BD_O_UNMAP, NULL);
        atomic_store(&fault_count, 0);
        fault_workload(b);
        bd_graph_free(g);
        total = atomic_load(&fault_count);
    }
    assert_true(total > 10);
    for (mode = 0; mode < 2; mode++) {
        for (n = 1; n <= total; n++) {
            struct bd_graph *g = bd_graph_new();
            struct qcow2_check_result res;
            struct bd_blk *b;

            create_qcow2(f->img, 8 << 20, 16384, 3, 16, NULL);
            bd_graph_set_file_sys(g, &faulty_sys);
            b = open_blk(g, f->img, "qcow2", BD_O_RDWR | BD_O_UNMAP, NULL);
            assert_non_null(b);
            atomic_store(&fault_count, 0);
            fault_at = n;
            fault_persistent = mode == 0;
            fault_workload(b);
            bd_graph_free(g);
            fault_at = INT32_MAX;
            /* Leaks are allowed; references to free clusters are not. */
            res = check_image(f->img);
            if (res.corruptions || res.check_errors) {
                fail_msg("%s write %d of %d failed: %" PRId64
                         " corruptions, %" PRId64 " check errors",
                         mode ? "transient" : "persistent", n, total,
                         res.corruptions, res.check_errors);
            }
        }
    }
}

/* ------------------------------------------------------------------ */
/* Batched allocation: whole fresh clusters go out as one data write    */

static atomic_int big_writes;

static ssize_t counting_pwritev(int fd, const struct iovec *iov, int n,
                                off_t off)
{
    size_t len = 0;
    int i;

    for (i = 0; i < n; i++) {
        len += iov[i].iov_len;
    }
    /* Metadata writes are one cluster at most; data runs are longer. */
    if (len > 65536) {
        atomic_fetch_add(&big_writes, 1);
    }
    return bd_file_sys_default.pwritev(fd, iov, n, off);
}

/* A 1 MiB write into sixteen fresh 64 KiB clusters is one data request
 * (QEMU's handle_alloc does the same); with two clusters in the middle
 * already allocated the run splits around them, and every byte reads
 * back, the image checks clean, and the fresh clusters are contiguous. */
static void test_qcow2_alloc_run(void **state)
{
    struct fx *f = *state;
    struct bd_file_sys sys = bd_file_sys_default;
    uint8_t *buf = bd_malloc(1 << 20), *back = bd_malloc(1 << 20);
    struct qcow2_check_result res;
    struct bd_graph *g;
    struct bd_blk *b;
    uint64_t count, l2e;
    size_t i;

    sys.pwritev = counting_pwritev;
    for (i = 0; i < (1 << 20); i++) {
        buf[i] = (uint8_t)(i * 7 + (i >> 16));
    }
    create_qcow2(f->img, 4 << 20, 65536, 3, 16, NULL);
    g = bd_graph_new();
    bd_graph_set_file_sys(g, &sys);
    b = open_blk(g, f->img, "qcow2", BD_O_RDWR, NULL);
    atomic_store(&big_writes, 0);
    assert_int_equal(bd_blk_pwrite(b, 0, 1 << 20, buf, 0), 0);
    assert_int_equal(atomic_load(&big_writes), 1);
    assert_int_equal(qcow2_get_host_offset(bd_blk_node(b), 0, 1 << 20,
                                           &count, &l2e), 0);
    assert_int_equal(count, 1 << 20);
    /* Allocated clusters 2 and 3 of the second MiB split the run. */
    assert_int_equal(bd_blk_pwrite(b, (1 << 20) + 2 * 65536, 2 * 65536,
                                   buf, 0), 0);
    atomic_store(&big_writes, 0);
    assert_int_equal(bd_blk_pwrite(b, 1 << 20, 1 << 20, buf, 0), 0);
    /* [0,2) fresh, [2,4) overwritten in place a cluster at a time,
     * [4,16) fresh: two runs. */
    assert_int_equal(atomic_load(&big_writes), 2);
    assert_int_equal(bd_blk_pread(b, 1 << 20, 1 << 20, back, 0), 0);
    assert_memory_equal(back, buf, 1 << 20);
    assert_int_equal(bd_blk_pread(b, 0, 1 << 20, back, 0), 0);
    assert_memory_equal(back, buf, 1 << 20);
    bd_graph_free(g);
    res = check_image(f->img);
    assert_int_equal(res.corruptions + res.leaks + res.check_errors, 0);
    free(buf);
    free(back);
}

/* ------------------------------------------------------------------ */
/* Bad headers                                                          */

static void poke(const char *path, uint64_t off, const void *bytes,
                 size_t len)
{
    FILE *fp = fopen(path, "r+b");

    assert_non_null(fp);
    assert_int_equal(fseek(fp, (long)off, SEEK_SET), 0);
    assert_int_equal(fwrite(bytes, 1, len, fp), len);
    fclose(fp);
}

static const char *open_error(const char *path, int flags, char *buf,
                              size_t n)
{
    struct bd_graph *g = bd_graph_new();
    struct bd_error *err = NULL;
    struct bd_blk *b = open_blk(g, path, "qcow2", flags, &err);

    if (b) {
        snprintf(buf, n, "(opened)");
    } else {
        snprintf(buf, n, "%s", bd_error_msg(err));
        bd_error_free(err);
    }
    bd_graph_free(g);
    return buf;
}

static void test_qcow2_bad_headers(void **state)
{
    static const struct {
        uint64_t off;
        uint8_t bytes[8];
        size_t len;
        const char *msg;
    } cases[] = {
        { 0, { 0, 0, 0, 0 }, 4, "Image is not in qcow2 format" },
        { 4, { 0, 0, 0, 9 }, 4, "Unsupported qcow2 version 9" },
        { 20, { 0, 0, 0, 30 }, 4, "Unsupported cluster size: 2^30" },
        { 36, { 0x7f, 0xff, 0xff, 0xff }, 4, "Active L1 table too large" },
        { 40, { 0, 0, 0, 0, 0, 3, 0, 8 }, 8,
          "Active L1 table offset invalid" },
        { 56, { 0x10, 0, 0, 0 }, 4, "Reference count table too large" },
        { 96, { 0, 0, 0, 7 }, 4, "Reference count entry width too large; "
          "may not exceed 64 bits" },
        { 72, { 0, 0, 0, 0, 0, 0, 0, 0x10 }, 8,
          "Unsupported qcow2 feature(s): extended L2 entries" },
        { 32, { 0, 0, 0, 2 }, 4, "Unsupported encryption method: 2" },
        { 72, { 0, 0, 0, 0, 0, 0, 0, 2 }, 8,
          "qcow2: Image is corrupt; cannot be opened read/write" },
    };
    struct fx *f = *state;
    char buf[256];
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        create_qcow2(f->img, 1 << 20, 65536, 3, 16, NULL);
        poke(f->img, cases[i].off, cases[i].bytes, cases[i].len);
        assert_string_equal(open_error(f->img, BD_O_RDWR, buf, sizeof(buf)),
                            cases[i].msg);
    }
    /* The corrupt bit still allows read-only users. */
    assert_string_equal(open_error(f->img, 0, buf, sizeof(buf)), "(opened)");
}

/* A write that finds an L2 entry pointing into the middle of a cluster
 * marks the image corrupt and fails; the image then opens read-only only. */
static void test_qcow2_corrupt_bit(void **state)
{
    struct fx *f = *state;
    struct bd_graph *g = bd_graph_new();
    struct bd_blk *b;
    uint8_t buf[512], entry[8];
    char msg[256];

    create_qcow2(f->img, 1 << 20, 65536, 3, 16, NULL);
    b = open_blk(g, f->img, "qcow2", BD_O_RDWR, NULL);
    memset(buf, 1, sizeof(buf));
    assert_int_equal(bd_blk_pwrite(b, 0, 512, buf, 0), 0);
    bd_graph_free(g);
    /* L2 table at 0x40000, data at 0x50000: point into the middle. */
    qcow2_put_be64(entry, 0x8000000000050200ULL);
    poke(f->img, 0x40000, entry, 8);
    g = bd_graph_new();
    b = open_blk(g, f->img, "qcow2", BD_O_RDWR, NULL);
    assert_int_equal(bd_blk_pwrite(b, 0, 512, buf, 0), -EIO);
    bd_graph_free(g);
    assert_string_equal(open_error(f->img, BD_O_RDWR, msg, sizeof(msg)),
                        "qcow2: Image is corrupt; cannot be opened "
                        "read/write");
}

int unit_run_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qcow2_refcount_widths),
        cmocka_unit_test_setup_teardown(test_qcow2_cache_eviction,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_qcow2_workload_readback,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_qcow2_backing_cow,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_qcow2_threads,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_qcow2_fault_sweep,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_qcow2_alloc_run,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_qcow2_bad_headers,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_qcow2_corrupt_bit,
                                        fx_setup, fx_teardown),
    };

    return cmocka_run_group_tests_name("qcow2", tests, NULL, NULL);
}
