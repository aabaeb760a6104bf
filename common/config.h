/*
 * common/config.h - feature macros for every translation unit.
 *
 * Contract: this is the FIRST include of every .c file in blkrig and is never
 * included from a header. It selects the POSIX/GNU interfaces we use
 * (O_DIRECT, fallocate, OFD locks, SEEK_DATA), 64-bit file offsets, and the
 * libfuse API level. FUSE_USE_VERSION must be 312 or later: with an older
 * value fuse_session_loop_mt() binds to the old ABI and silently runs at a
 * fraction of its speed (see ../shared/bench/README.md).
 */
#ifndef BLKRIG_CONFIG_H
#define BLKRIG_CONFIG_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#define _FILE_OFFSET_BITS 64
#define FUSE_USE_VERSION 312

#define BLKRIG_VERSION "0.1.0"
/* The QEMU release whose behaviour we reproduce (specs were measured on it). */
#define BLKRIG_QEMU_COMPAT_MAJOR 10
#define BLKRIG_QEMU_COMPAT_MINOR 0
#define BLKRIG_QEMU_COMPAT_MICRO 2

#endif
