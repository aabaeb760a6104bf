/*
 * tests/tools/qcow2-workload.c - run a seeded random workload through
 * blkrig on IMAGE (format probed) and RAWREF (raw) and check they read
 * the same, so a compat test can then ask qemu-img to check and compare:
 *
 *   qcow2-workload [-s SEED] [-n OPS] [-t THREADS] [-c] [-d] [-z]
 *                  [-C CLUSTER] IMAGE RAWREF
 *   qcow2-workload -L BITMAP IMAGE     print a persistent bitmap's runs
 *
 * Prints "workload: ok" or the first failure; exit 0 / 1.
 */
#include "common/config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/cutils.h"
#include "driver/qcow2.h"
#include "tests/helpers/qcow2_workload.h"

static struct bd_blk *open_blk(struct bd_graph *g, const char *fn,
                               const char *fmt)
{
    struct bd_error *err = NULL;
    json_t *o = json_object();
    struct bd_node *n;
    struct bd_blk *b;

    if (fmt) {
        json_object_set_new(o, "driver", json_string(fmt));
    }
    n = bd_open(g, fn, o, BD_O_RDWR | BD_O_UNMAP, &err);
    if (!n) {
        fprintf(stderr, "qcow2-workload: %s: %s\n", fn, bd_error_msg(err));
        bd_error_free(err);
        return NULL;
    }
    b = bd_blk_new(g, NULL, BD_PERM_CONSISTENT_READ | BD_PERM_WRITE,
                   BD_PERM_ALL);
    if (bd_blk_insert(b, n, &err) < 0) {
        fprintf(stderr, "qcow2-workload: %s\n", bd_error_msg(err));
        bd_error_free(err);
        bd_unref(n);
        return NULL;
    }
    bd_unref(n);
    return b;
}

/* -L NAME: print the set runs of a persistent bitmap, in bytes. */
static int print_bitmap(const char *path, const char *name)
{
    struct bd_graph *g = bd_graph_new();
    struct bd_error *err = NULL;
    json_t *o = json_object();
    struct bd_node *n;
    uint8_t *bits = NULL;
    uint64_t nbits = 0, i, start = 0;
    uint32_t gran = 0;
    bool in = false;
    int ret;

    json_object_set_new(o, "driver", json_string("qcow2"));
    n = bd_open(g, path, o, 0, &err);
    if (!n) {
        printf("bitmap: %s\n", bd_error_msg(err));
        bd_error_free(err);
        bd_graph_free(g);
        return 1;
    }
    ret = qcow2_bitmap_load(n, name, &bits, &nbits, &gran, &err);
    if (ret < 0) {
        printf("bitmap: %s\n", bd_error_msg(err));
        bd_error_free(err);
    } else {
        printf("bitmap %s: granularity %" PRIu32 ", %" PRIu64 " bits\n",
               name, gran, nbits);
        for (i = 0; i <= nbits; i++) {
            bool set = i < nbits && (bits[i / 8] >> (i % 8)) & 1;

            if (set && !in) {
                start = i;
            } else if (!set && in) {
                printf("  dirty [%" PRIu64 ", %" PRIu64 ")\n",
                       start * gran, i * gran);
            }
            in = set;
        }
    }
    free(bits);
    bd_unref(n);
    bd_graph_free(g);
    return ret < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    struct qw_opts o = { .seed = 1, .ops = 200, .threads = 1,
                         .cluster = 65536 };
    struct bd_graph *g;
    struct bd_blk *img, *ref;
    int64_t bad = 0;
    uint64_t v;
    int c, ret;

    while ((c = getopt(argc, argv, "s:n:t:cdzC:L:")) != -1) {
        switch (c) {
        case 'L':
            return optind < argc ? print_bitmap(argv[optind], optarg) : 2;
        case 's':
            o.seed = strtoull(optarg, NULL, 0);
            break;
        case 'n':
            o.ops = atoi(optarg);
            break;
        case 't':
            o.threads = atoi(optarg);
            break;
        case 'c':
            o.compress = true;
            break;
        case 'd':
            o.discard = true;
            break;
        case 'z':
            o.zeroes = true;
            break;
        case 'C':
            if (bd_parse_size(optarg, &v) == 0) {
                o.cluster = (uint32_t)v;
            }
            break;
        default:
            return 2;
        }
    }
    if (optind + 2 != argc) {
        fprintf(stderr, "usage: qcow2-workload [-s SEED] [-n OPS] "
                "[-t THREADS] [-c] [-d] [-z] [-C CLUSTER] IMAGE RAWREF\n");
        return 2;
    }
    g = bd_graph_new();
    img = open_blk(g, argv[optind], NULL);
    ref = open_blk(g, argv[optind + 1], "raw");
    if (!img || !ref) {
        bd_graph_free(g);
        return 1;
    }
    ret = qw_run(img, ref, &o);
    if (ret < 0) {
        printf("workload: I/O error: %s\n", bd_strerror(-ret));
    } else {
        ret = bd_blk_flush(img);
        if (ret == 0) {
            ret = qw_verify(img, ref, &bad);
        }
        if (ret > 0) {
            printf("workload: content differs at offset %" PRId64 "\n", bad);
        } else if (ret < 0) {
            printf("workload: error: %s\n", bd_strerror(-ret));
        } else {
            printf("workload: ok\n");
        }
    }
    bd_graph_free(g);
    return ret ? 1 : 0;
}
