/*
 * common/assert.h - assertion helpers in the SQLite style.
 *
 * ALWAYS(x) / NEVER(x) wrap defensive conditions that cannot happen: in debug
 * builds they assert, in coverage builds (BD_COVERAGE_TEST) they become the
 * constants 1 / 0 so the impossible branch does not count as untested, and in
 * release builds they pass the value through. BD_STATIC_ASSERT is C11's
 * _Static_assert with a fixed message.
 */
#ifndef BLKRIG_ASSERT_H
#define BLKRIG_ASSERT_H

#include <assert.h>

#if defined(BD_COVERAGE_TEST)
#define ALWAYS(x) (1)
#define NEVER(x) (0)
#elif !defined(NDEBUG)
#define ALWAYS(x) ((x) ? 1 : (assert(0), 0))
#define NEVER(x) ((x) ? (assert(0), 1) : 0)
#else
#define ALWAYS(x) (x)
#define NEVER(x) (x)
#endif

#define BD_STATIC_ASSERT(cond) _Static_assert(cond, #cond)

#define BD_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define BD_MIN(a, b) ((a) < (b) ? (a) : (b))
#define BD_MAX(a, b) ((a) > (b) ? (a) : (b))
#define BD_ROUND_UP(n, d) ((((n) + (d) - 1) / (d)) * (d))
#define BD_ROUND_DOWN(n, d) (((n) / (d)) * (d))
#define BD_DIV_ROUND_UP(n, d) (((n) + (d) - 1) / (d))
#define BD_IS_ALIGNED(n, a) (((n) % (a)) == 0)
#define BD_UNUSED __attribute__((unused))
#define BD_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define BD_CONTAINER_OF(ptr, type, member) \
    ((type *)((char *)(ptr) - offsetof(type, member)))

#endif
