/*
 * common/iofmt.h - numbers and reports formatted the way qemu-io prints
 * them, so that scripts written against qemu-io parse `blkrig io` output
 * unchanged (and so the FUSE/scenario layers can print the same lines).
 *
 * Contract:
 *  - bd_iofmt_cvtnum parses a byte count as qemu-io's command arguments
 *    take it (decimal or 0x hex, optional B/K/M/G/T/P/E suffix, fraction
 *    only with a suffix). Returns 0, -EINVAL (malformed) or -ERANGE
 *    (negative, or above INT64_MAX).
 *  - bd_iofmt_cvtnum_err prints qemu-io's message for such a failure.
 *  - bd_iofmt_size formats a double the way qemu-io's size strings look:
 *    "4 KiB", "1.500 KiB", "512 bytes", "0.500000 bytes".
 *  - bd_iofmt_timestr: "00.01 sec" below one second, "H:MM:SS.ss" from one
 *    second on or when verbose (the -C machine format) is asked for.
 *  - bd_iofmt_report prints the two result lines (or the -C CSV line).
 *    When the environment variable BLKRIG_IO_FILTER_TIMING is set to a
 *    non-empty value, the timing figures are replaced by fixed text so
 *    golden files need no sed filter.
 *  - bd_iofmt_hexdump prints qemu-io's -v dump: 16 bytes per line, offset
 *    in 8 hex digits, alphanumerics shown, anything else as '.'.
 *  - bd_iofmt_pattern parses a pattern byte (C syntax, 0..255); -1 if bad.
 * All functions are reentrant.
 */
#ifndef BLKRIG_IOFMT_H
#define BLKRIG_IOFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

int bd_iofmt_cvtnum(const char *s, int64_t *out);
void bd_iofmt_cvtnum_err(FILE *f, int err, const char *arg);
void bd_iofmt_size(double value, char *buf, size_t size);
void bd_iofmt_timestr(int64_t ns, bool verbose, char *buf, size_t size);
void bd_iofmt_report(FILE *f, const char *op, int64_t ns, int64_t offset,
                     int64_t count, int64_t total, int cnt, bool csv);
void bd_iofmt_hexdump(FILE *f, const void *buf, int64_t offset, int64_t len);
int bd_iofmt_pattern(const char *arg);
/* True when BLKRIG_IO_FILTER_TIMING asks for fixed timing text. */
bool bd_iofmt_filter_timing(void);

#endif
