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

/*
 * qemu_strtosz's rules, which scripts rely on because they hand the same
 * strings to QEMU:
 *  - the integer part is decimal; "0x..." is hex and then takes neither a
 *    fraction nor a suffix;
 *  - a fraction needs a suffix other than B ("1.5k"), "1.k" is fine, and
 *    'e'/'E' after the digits is the exabyte suffix, never an exponent;
 *  - the result is exact (fixed point, not a double) with halves rounded
 *    up: "0.5k" is 512, "1.0005k" is 1025;
 *  - a leading '-' is out of range (-ERANGE) when digits follow, so are
 *    results of 2^64 or more; anything else malformed is -EINVAL.
 */
int bd_parse_size_unit(const char *s, uint64_t default_unit, uint64_t *out)
{
    const char *p = s;
    const char *end = NULL;
    char *e = NULL;
    uint64_t ival = 0;
    uint64_t frac = 0;      /* fraction in units of 2^-64 */
    bool have_int = false;
    int shift;
    unsigned __int128 total;
    uint64_t mult;

    while (isspace((unsigned char)*p)) {
        p++;
    }
    if (*p == '-') {
        return isdigit((unsigned char)p[1]) || p[1] == '.' ? -ERANGE
                                                            : -EINVAL;
    }
    if (isdigit((unsigned char)*p)) {
        errno = 0;
        ival = strtoull(p, &e, 10);
        if (errno == ERANGE) {
            return -ERANGE;
        }
        have_int = true;
        end = e;
    } else if (*p == '.') {
        end = p;
    } else {
        return -EINVAL;
    }
    if (have_int && ival == 0 && (*end == 'x' || *end == 'X')) {
        errno = 0;
        ival = strtoull(p, &e, 16);
        if (errno == ERANGE) {
            return -ERANGE;
        }
        if (e == end + 1 || *e == '.' || suffix_shift(*e) >= 0 ||
            *e != '\0') {
            /* "0x" alone, or a hex number with a fraction or suffix (B,
             * E are hex digits, so only the others can reach here). */
            return -EINVAL;
        }
        *out = ival;
        return 0;
    }
    if (*end == '.') {
        const char *d = end + 1;
        int ndig = 0;
        /* Read the digits exactly: value = sum d_i * 10^-i in 64.64 fixed
         * point, accumulated from the last digit backwards. */
        const char *last = d;

        while (isdigit((unsigned char)*last)) {
            last++;
        }
        ndig = (int)(last - d);
        if (!have_int && ndig == 0) {
            return -EINVAL;
        }
        {
            unsigned __int128 acc = 0;   /* 64.64 fixed point, < 1 */
            const char *q;

            for (q = last; q > d; q--) {
                acc = (acc + ((unsigned __int128)(q[-1] - '0') << 64)) / 10;
            }
            frac = (uint64_t)acc;
        }
        end = last;
    }
    shift = suffix_shift(*end);
    if (shift >= 0) {
        mult = 1ULL << shift;
        end++;
    } else {
        mult = default_unit;
    }
    if (*end != '\0') {
        return -EINVAL;
    }
    if (mult == 1 && frac) {
        return -EINVAL;   /* a fraction needs a unit to scale it */
    }
    total = (unsigned __int128)ival * mult;
    if (frac) {
        unsigned __int128 f = (unsigned __int128)frac * mult;

        /* Integer part of the fraction, plus one when the rest >= 1/2. */
        total += (f >> 64) + (((uint64_t)f >> 63) & 1);
    }
    if (total > UINT64_MAX) {
        return -ERANGE;
    }
    *out = (uint64_t)total;
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
