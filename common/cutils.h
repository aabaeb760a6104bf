/*
 * common/cutils.h - small string and number helpers shared by every layer.
 *
 * Number parsing follows QEMU's conventions because scripts pass the same
 * strings to both tools:
 *  - bd_parse_size: an unsigned byte count with an optional suffix
 *    (B, k/K, M, G, T, P, E; binary units) and an optional fraction when a
 *    suffix is given ("1.5G"). Returns 0, -EINVAL (not a size) or -ERANGE
 *    (negative or >= 2^64).
 *  - bd_parse_u64 / bd_parse_i64: C syntax with base prefixes (0x, 0); like
 *    QEMU's qemu_strtou64 a leading '-' wraps modulo 2^64.
 * bd_cvtstr formats a byte count the way qemu-io prints it ("4 KiB",
 * "1.500 KiB", "512 bytes").
 */
#ifndef BLKRIG_CUTILS_H
#define BLKRIG_CUTILS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int bd_parse_size(const char *s, uint64_t *out);
/* Same, but a number without suffix is multiplied by default_unit. */
int bd_parse_size_unit(const char *s, uint64_t default_unit, uint64_t *out);
int bd_parse_u64(const char *s, uint64_t *out);
int bd_parse_i64(const char *s, int64_t *out);
int bd_parse_int(const char *s, int *out);
/* on/off/yes/no/true/false; returns false when s is none of them. */
bool bd_parse_bool(const char *s, bool *out);
void bd_cvtstr(double value, char *buf, size_t size);
bool bd_is_power_of_2(uint64_t v);
/* Milliseconds/nanoseconds of CLOCK_MONOTONIC. */
int64_t bd_clock_ns(void);
/* Sleep for ns nanoseconds, restarting on EINTR. */
void bd_sleep_ns(int64_t ns);
/* Duplicate or abort: out-of-memory is not a recoverable error here. */
void *bd_malloc(size_t n);
void *bd_malloc0(size_t n);
void *bd_realloc(void *p, size_t n);
char *bd_strdup(const char *s);
char *bd_strdup_printf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
/* Aligned allocation for O_DIRECT buffers; free with free(). */
void *bd_memalign(size_t align, size_t n);
bool bd_buffer_is_zero(const void *buf, size_t len);
/* Valid QEMU id: a letter, then letters, digits, '-', '.', '_' (< 32 chars
 * for node names when max_len is 31). */
bool bd_id_wellformed(const char *id, size_t max_len);

#endif
