/*
 * common/iofmt.c - qemu-io's number parsing and report formatting.
 */
#include "common/config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "common/cutils.h"
#include "common/iofmt.h"

int bd_iofmt_cvtnum(const char *s, int64_t *out)
{
    uint64_t v;
    int ret = bd_parse_size(s, &v);

    if (ret < 0) {
        return ret;
    }
    /* Offsets and lengths are signed 64-bit inside the block layer. */
    if (v > INT64_MAX) {
        return -ERANGE;
    }
    *out = (int64_t)v;
    return 0;
}

void bd_iofmt_cvtnum_err(FILE *f, int err, const char *arg)
{
    switch (err) {
    case -EINVAL:
        fprintf(f, "Parsing error: non-numeric argument, or extraneous/"
                "unrecognized suffix -- %s\n", arg);
        break;
    case -ERANGE:
        fprintf(f, "Parsing error: argument too large -- %s\n", arg);
        break;
    default:
        fprintf(f, "Parsing error: %s\n", arg);
        break;
    }
}

void bd_iofmt_size(double value, char *buf, size_t size)
{
    static const char *const units[] = {
        " bytes", " KiB", " MiB", " GiB", " TiB", " PiB", " EiB"
    };
    int u = 0;
    char *trim;

    while (u < 6 && value >= 1024.0) {
        value /= 1024.0;
        u++;
    }
    /* Plain bytes keep six decimals (rates below 1 KiB/s show them); a
     * ".000" anywhere is cut together with what follows, as qemu-io does. */
    snprintf(buf, size, u ? "%.3f" : "%f", value);
    trim = strstr(buf, ".000");
    if (trim) {
        *trim = '\0';
    }
    strncat(buf, units[u], size - strlen(buf) - 1);
}

bool bd_iofmt_filter_timing(void)
{
    const char *e = getenv("BLKRIG_IO_FILTER_TIMING");

    return e && *e;
}

void bd_iofmt_timestr(int64_t ns, bool verbose, char *buf, size_t size)
{
    int64_t sec = ns / 1000000000;
    double frac = (double)(ns % 1000000000) / 1e9;

    if (verbose || sec) {
        snprintf(buf, size, "%u:%02u:%05.2f", (unsigned)(sec / 3600),
                 (unsigned)((sec % 3600) / 60),
                 (double)(sec % 60) + frac);
    } else {
        snprintf(buf, size, "%05.2f sec", frac);
    }
}

static double per_sec(double value, int64_t ns)
{
    return value / ((double)ns / 1e9);
}

void bd_iofmt_report(FILE *f, const char *op, int64_t ns, int64_t offset,
                     int64_t count, int64_t total, int cnt, bool csv)
{
    char ts[64];
    char s1[64];
    char s2[64];

    bd_iofmt_timestr(ns, csv, ts, sizeof(ts));
    if (csv) {
        if (bd_iofmt_filter_timing()) {
            fprintf(f, "%" PRId64 ",%d,X:XX:XX.XX,X.XXX,X.XXX\n", total, cnt);
            return;
        }
        fprintf(f, "%" PRId64 ",%d,%s,%.3f,%.3f\n", total, cnt, ts,
                per_sec((double)total, ns), per_sec((double)cnt, ns));
        return;
    }
    bd_iofmt_size((double)total, s1, sizeof(s1));
    fprintf(f, "%s %" PRId64 "/%" PRId64 " bytes at offset %" PRId64 "\n",
            op, total, count, offset);
    if (bd_iofmt_filter_timing()) {
        fprintf(f, "%s, %d ops; XX.XX sec (timing elided)\n", s1, cnt);
        return;
    }
    bd_iofmt_size(per_sec((double)total, ns), s2, sizeof(s2));
    fprintf(f, "%s, %d ops; %s (%s/sec and %.4f ops/sec)\n", s1, cnt, ts, s2,
            per_sec((double)cnt, ns));
}

void bd_iofmt_hexdump(FILE *f, const void *buf, int64_t offset, int64_t len)
{
    const uint8_t *p = buf;
    int64_t i;
    int j;

    for (i = 0; i < len; i += 16) {
        fprintf(f, "%08" PRIx64 ":  ", (uint64_t)(offset + i));
        for (j = 0; j < 16 && i + j < len; j++) {
            fprintf(f, "%02x ", p[i + j]);
        }
        fputc(' ', f);
        for (j = 0; j < 16 && i + j < len; j++) {
            /* Only letters and digits: qemu-io shows punctuation as '.'. */
            fputc(isalnum(p[i + j]) ? p[i + j] : '.', f);
        }
        fputc('\n', f);
    }
}

int bd_iofmt_pattern(const char *arg)
{
    char *end = NULL;
    long v;

    errno = 0;
    v = strtol(arg, &end, 0);
    if (errno || end == arg || *end != '\0' || v < 0 || v > UCHAR_MAX) {
        return -1;
    }
    return (int)v;
}
