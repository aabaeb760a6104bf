/*
 * tests/helpers/qcow2_workload.h - seeded random I/O applied to an image
 * and to a raw reference at once, then a byte-for-byte comparison. Shared
 * by tests/unit/test_qcow2.c and the tests/tools/qcow2-workload program
 * the compat tests run (so qemu-img can judge what blkrig wrote).
 */
#ifndef BLKRIG_QCOW2_WORKLOAD_H
#define BLKRIG_QCOW2_WORKLOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "driver/block.h"

struct qw_opts {
    uint64_t seed;
    int ops;            /* per thread */
    int threads;        /* > 1: each thread owns every threads-th sector,
                           so threads collide inside clusters but the
                           result stays deterministic */
    bool compress;      /* include compressed cluster writes */
    bool discard;       /* include discards (needs reads-as-zero after) */
    bool zeroes;        /* include write-zeroes */
    uint32_t cluster;   /* cluster size of the image (compressed writes) */
};

/* Apply the workload; returns 0 or the first -errno. */
int qw_run(struct bd_blk *img, struct bd_blk *ref, const struct qw_opts *o);
/* Compare the whole content; 0 when equal, 1 (with *bad = first differing
 * offset) when not, -errno on read errors. */
int qw_verify(struct bd_blk *img, struct bd_blk *ref, int64_t *bad);

#endif
