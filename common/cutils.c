/*
 * common/cutils.c - parsing, formatting and allocation helpers.
 */
#include "common/config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/assert.h"
#include "common/cutils.h"

static int suffix_shift(char c)
{
    switch (c) {
    case 'B': case 'b':
        return 0;
    case 'K': case 'k':
        return 10;
    case 'M': case 'm':
        return 20;
    case 'G': case 'g':
        return 30;
    case 'T': case 't':
        return 40;
    case 'P': case 'p':
        return 50;
    case 'E': case 'e':
        return 60;
    default:
        return -1;
    }
}

int bd_parse_size_unit(const char *s, uint64_t default_unit, uint64_t *out)
{
    const char *p = s;
    char *end = NULL;
    uint64_t ival;
    double frac = 0;
    int shift;
    uint64_t mult;
    bool hex;

    while (isspace((unsigned char)*p)) {
        p++;
    }
    if (*p == '-') {
        /* Reject anything that parses as a negative number as out of range,
         * anything else as malformed (QEMU's split between the two). */
        errno = 0;
        strtod(p, &end);
        return end != p ? -ERANGE : -EINVAL;
    }
    if (!isdigit((unsigned char)*p) && *p != '.') {
        return -EINVAL;
    }
    hex = p[0] == '0' && (p[1] == 'x' || p[1] == 'X');
    errno = 0;
    ival = strtoull(p, &end, hex ? 16 : 10);
    if (errno == ERANGE) {
        return -ERANGE;
    }
    if (end == p && *p != '.') {
        return -EINVAL;
    }
    if (*end == '.' && !hex) {
        char *fend = NULL;
        frac = strtod(end, &fend);
        if (fend == end + 1 && !isdigit((unsigned char)end[1])) {
            return -EINVAL;
        }
        end = fend;
    }
    shift = suffix_shift(*end);
    if (shift >= 0) {
        if (hex && frac == 0 && shift == 0) {
            /* "0x10B" is ambiguous with hex digits; QEMU rejects it too. */
            return -EINVAL;
        }
        mult = 1ULL << shift;
        end++;
    } else {
        if (frac != 0) {
            return -EINVAL;   /* fractions only make sense with a unit */
        }
        mult = default_unit;
    }
    if (*end != '\0') {
        return -EINVAL;
    }
    if (ival > UINT64_MAX / mult) {
        return -ERANGE;
    }
    ival *= mult;
    if (frac != 0) {
        double extra = frac * (double)mult;
        if ((double)ival + extra >= 18446744073709551616.0) {
            return -ERANGE;
        }
        ival += (uint64_t)extra;
    }
    *out = ival;
    return 0;
}

int bd_parse_size(const char *s, uint64_t *out)
{
    return bd_parse_size_unit(s, 1, out);
}

int bd_parse_u64(const char *s, uint64_t *out)
{
    char *end = NULL;
    const char *p = s;
    bool neg = false;
    uint64_t v;

    while (isspace((unsigned char)*p)) {
        p++;
    }
    if (*p == '-') {
        neg = true;
        p++;
    }
    if (!isdigit((unsigned char)*p)) {
        return -EINVAL;
    }
    errno = 0;
    v = strtoull(p, &end, 0);
    if (errno == ERANGE) {
        return -ERANGE;
    }
    if (end == p || *end != '\0') {
        return -EINVAL;
    }
    *out = neg ? (uint64_t)0 - v : v;
    return 0;
}

int bd_parse_i64(const char *s, int64_t *out)
{
    char *end = NULL;
    long long v;

    errno = 0;
    if (!*s || isspace((unsigned char)*s)) {
        return -EINVAL;
    }
    v = strtoll(s, &end, 0);
    if (errno == ERANGE) {
        return -ERANGE;
    }
    if (end == s || *end != '\0') {
        return -EINVAL;
    }
    *out = v;
    return 0;
}

int bd_parse_int(const char *s, int *out)
{
    int64_t v;
    int ret = bd_parse_i64(s, &v);

    if (ret < 0) {
        return ret;
    }
    if (v < INT32_MIN || v > INT32_MAX) {
        return -ERANGE;
    }
    *out = (int)v;
    return 0;
}

bool bd_parse_bool(const char *s, bool *out)
{
    if (!strcmp(s, "on") || !strcmp(s, "yes") || !strcmp(s, "true")) {
        *out = true;
        return true;
    }
    if (!strcmp(s, "off") || !strcmp(s, "no") || !strcmp(s, "false")) {
        *out = false;
        return true;
    }
    return false;
}

void bd_cvtstr(double value, char *buf, size_t size)
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
    snprintf(buf, size, "%.3f", value);
    /* qemu-io drops an all-zero fraction: "4 KiB", but "1.500 KiB". */
    trim = strstr(buf, ".000");
    if (trim && trim[4] == '\0') {
        *trim = '\0';
    }
    strncat(buf, units[u], size - strlen(buf) - 1);
}

bool bd_is_power_of_2(uint64_t v)
{
    return v && !(v & (v - 1));
}

int64_t bd_clock_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void bd_sleep_ns(int64_t ns)
{
    struct timespec ts;

    if (ns <= 0) {
        return;
    }
    ts.tv_sec = ns / 1000000000LL;
    ts.tv_nsec = ns % 1000000000LL;
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
        /* restart with the remaining time */
    }
}

void *bd_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (!p) {
        abort();
    }
    return p;
}

void *bd_malloc0(size_t n)
{
    void *p = calloc(1, n ? n : 1);

    if (!p) {
        abort();
    }
    return p;
}

void *bd_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);

    if (!q) {
        abort();
    }
    return q;
}

char *bd_strdup(const char *s)
{
    char *d = NULL;

    if (!s) {
        return NULL;
    }
    d = strdup(s);
    if (!d) {
        abort();
    }
    return d;
}

char *bd_strdup_printf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) {
        abort();
    }
    return s;
}

void *bd_memalign(size_t align, size_t n)
{
    void *p = NULL;

    if (posix_memalign(&p, align, n ? n : align) != 0) {
        abort();
    }
    return p;
}

bool bd_buffer_is_zero(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    size_t i;

    /* Compare 8 bytes at a time once aligned; the tail byte by byte. */
    for (i = 0; i < len && ((uintptr_t)(p + i) & 7); i++) {
        if (p[i]) {
            return false;
        }
    }
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (w) {
            return false;
        }
    }
    for (; i < len; i++) {
        if (p[i]) {
            return false;
        }
    }
    return true;
}

bool bd_id_wellformed(const char *id, size_t max_len)
{
    size_t i;

    if (!id || !isalpha((unsigned char)id[0])) {
        return false;
    }
    for (i = 1; id[i]; i++) {
        if (!isalnum((unsigned char)id[i]) && !strchr("-._", id[i])) {
            return false;
        }
    }
    return max_len == 0 || i <= max_len;
}
