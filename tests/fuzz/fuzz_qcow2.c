/*
 * tests/fuzz/fuzz_qcow2.c - mutation fuzzing of the qcow2 header and
 * metadata parsers: build a small valid image with data, compressed and
 * zero clusters and a backing-file name, then for each run flip bytes of
 * its metadata clusters (header, extensions, refcount table and block, L1,
 * L2) or plant interesting values (0, ~0, huge sizes, offsets past EOF),
 * open the result read-only and read-write, read it, write to it, check it.
 * Any crash, sanitizer report or hang is a failure; errors are expected.
 *
 *   fuzz_qcow2 [-n RUNS] [-s SEED] [FILE...]
 * With files, each is opened once as-is (reproducing a saved case).
 */
#include "common/config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cutils.h"
#include "common/rng.h"
#include "driver/qcow2-int.h"
#include "driver/qcow2.h"

static int exercise(const char *path, int flags)
{
    struct bd_graph *g = bd_graph_new();
    struct bd_error *err = NULL;
    json_t *o = json_object();
    struct bd_node *n;
    uint8_t buf[8192];
    struct bd_qiov q;
    int64_t len;

    json_object_set_new(o, "driver", json_string("qcow2"));
    n = bd_open(g, path, o, flags | BD_O_NO_BACKING, &err);
    if (!n) {
        bd_error_free(err);
        bd_graph_free(g);
        return 0;
    }
    len = bd_getlength(n);
    if (len > 0) {
        int64_t offs[] = { 0, 65536, len / 2, len - 512 };
        size_t i;

        for (i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
            int64_t off = BD_MAX(0, offs[i]);
            int64_t cnt = BD_MIN((int64_t)sizeof(buf), len - off);

            if (cnt <= 0) {
                continue;
            }
            bd_qiov_init_buf(&q, buf, (size_t)cnt);
            (void)bd_node_preadv(n, off, cnt, &q, 0);
            if (flags & BD_O_RDWR) {
                memset(buf, 0x5a, sizeof(buf));
                bd_qiov_init_buf(&q, buf, (size_t)cnt);
                (void)bd_node_pwritev(n, off, cnt, &q, 0);
                (void)bd_node_pwrite_zeroes(n, off, cnt, BD_REQ_MAY_UNMAP);
            }
        }
    }
    if (flags & BD_O_RDWR) {
        struct qcow2_check_result res;

        (void)bd_node_flush(n);
        (void)qcow2_node_check(n, &res, 0);
    }
    bd_unref(n);
    bd_graph_free(g);
    return 0;
}

static int make_seed(const char *path)
{
    struct qcow2_create_opts o;
    struct bd_graph *g;
    struct bd_error *err = NULL;
    json_t *opts = json_object();
    struct bd_node *n;
    uint8_t buf[65536];
    struct bd_qiov q;

    memset(&o, 0, sizeof(o));
    o.size = 4 << 20;
    o.cluster_size = 4096;
    o.backing_file = (char *)"backing.img";
    o.backing_fmt = (char *)"raw";
    if (qcow2_create_file(path, &o, &err) < 0) {
        fprintf(stderr, "fuzz_qcow2: %s\n", bd_error_msg(err));
        bd_error_free(err);
        json_decref(opts);
        return -1;
    }
    g = bd_graph_new();
    json_object_set_new(opts, "driver", json_string("qcow2"));
    n = bd_open(g, path, opts, BD_O_RDWR | BD_O_NO_BACKING, &err);
    if (!n) {
        fprintf(stderr, "fuzz_qcow2: %s\n", bd_error_msg(err));
        bd_error_free(err);
        bd_graph_free(g);
        return -1;
    }
    memset(buf, 0x11, sizeof(buf));
    bd_qiov_init_buf(&q, buf, 20000);
    bd_node_pwritev(n, 1000, 20000, &q, 0);
    bd_qiov_init_buf(&q, buf, 4096);
    bd_node_pwritev(n, 1 << 20, 4096, &q, BD_REQ_WRITE_COMPRESSED);
    bd_node_pwrite_zeroes(n, 2 << 20, 8192, 0);
    bd_node_flush(n);
    bd_unref(n);
    bd_graph_free(g);
    return 0;
}

static const uint64_t interesting[] = {
    0, 1, 0xff, 0x200, 0x1000, 0x7fffffff, 0x80000000, 0xffffffff,
    0x100000000ULL, 0x7fffffffffffffffULL, 0xffffffffffffffffULL,
    0x8000000000001000ULL, 0x4000000000001000ULL,
};

int main(int argc, char **argv)
{
    char dir[] = "/tmp/blkrig-fuzz-qcow2.XXXXXX";
    char seed_path[64], case_path[64];
    uint8_t *seed = NULL, *img = NULL;
    long runs = 3000;
    uint64_t seedv = 1;
    struct bd_rng r;
    size_t len;
    long i;
    int c, fd;

    while ((c = getopt(argc, argv, "n:s:")) != -1) {
        if (c == 'n') {
            runs = atol(optarg);
        } else if (c == 's') {
            seedv = strtoull(optarg, NULL, 0);
        } else {
            return 2;
        }
    }
    if (optind < argc) {
        for (; optind < argc; optind++) {
            exercise(argv[optind], 0);
            exercise(argv[optind], BD_O_RDWR);
        }
        return 0;
    }
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(seed_path, sizeof(seed_path), "%s/seed.qcow2", dir);
    snprintf(case_path, sizeof(case_path), "%s/case.qcow2", dir);
    if (make_seed(seed_path) < 0) {
        return 1;
    }
    fd = open(seed_path, O_RDONLY);
    len = (size_t)lseek(fd, 0, SEEK_END);
    seed = bd_malloc(len);
    img = bd_malloc(len);
    if (pread(fd, seed, len, 0) != (ssize_t)len) {
        return 1;
    }
    close(fd);
    bd_rng_seed(&r, seedv);
    for (i = 0; i < runs; i++) {
        int k, nmut = 1 + (int)(bd_rng_next(&r) % 4);
        /* Metadata lives in the first clusters; aim there mostly. */
        size_t span = BD_MIN(len, (size_t)(8 * 4096));

        memcpy(img, seed, len);
        for (k = 0; k < nmut; k++) {
            size_t pos = (size_t)(bd_rng_next(&r) % span);

            if (bd_rng_next(&r) % 3 == 0 && pos + 8 <= len) {
                uint64_t v = interesting[bd_rng_next(&r) %
                                         (sizeof(interesting) /
                                          sizeof(interesting[0]))];
                pos &= ~(size_t)3;
                if (bd_rng_next(&r) % 2) {
                    qcow2_put_be64(img + BD_MIN(pos, len - 8), v);
                } else {
                    qcow2_put_be32(img + BD_MIN(pos, len - 4), (uint32_t)v);
                }
            } else {
                img[pos] ^= (uint8_t)(1u << (bd_rng_next(&r) % 8));
            }
        }
        fd = open(case_path, O_RDWR | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || pwrite(fd, img, len, 0) != (ssize_t)len) {
            perror("write case");
            return 1;
        }
        close(fd);
        exercise(case_path, 0);
        exercise(case_path, BD_O_RDWR);
    }
    unlink(case_path);
    unlink(seed_path);
    rmdir(dir);
    free(seed);
    free(img);
    printf("fuzz_qcow2: %ld runs, no crash\n", runs);
    return 0;
}
