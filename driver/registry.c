/*
 * driver/registry.c - the explicit list of drivers. No constructors, no
 * link-order surprises: a driver exists when it is listed here. Lookup is
 * by name; a duplicate name is a programming error caught by the unit test
 * of this module (test_registry.c).
 */
#include "common/config.h"

#include <string.h>

#include "driver/block-int.h"
#include "driver/drivers.h"

typedef const struct bd_driver *bd_driver_accessor(void);

static bd_driver_accessor *const accessors[] = {
    bd_driver_file,
    bd_driver_raw,
    bd_driver_null_co,
    bd_driver_null_aio,
    bd_driver_copy_before_write,
};

#define NDRIVERS (sizeof(accessors) / sizeof(accessors[0]))

const struct bd_driver *const *bd_driver_list(void)
{
    /* Built once; the accessors return addresses of static tables, so the
     * list is the same every time and a benign race writes equal values. */
    static const struct bd_driver *list[NDRIVERS + 1];
    size_t i;

    if (!list[0]) {
        for (i = 0; i < NDRIVERS; i++) {
            list[i] = accessors[i]();
        }
    }
    return list;
}

const struct bd_driver *bd_find_driver(const char *name)
{
    const struct bd_driver *const *d;

    for (d = bd_driver_list(); *d; d++) {
        if (!strcmp((*d)->name, name)) {
            return *d;
        }
    }
    return NULL;
}

const struct bd_driver *bd_find_protocol(const char *filename)
{
    const struct bd_driver *const *d;
    const char *colon = strchr(filename, ':');
    size_t len;

    /* "a/b:c" is a path, not a protocol; so is "./x:y". */
    if (!colon || memchr(filename, '/', (size_t)(colon - filename))) {
        return bd_driver_file();
    }
    len = (size_t)(colon - filename);
    for (d = bd_driver_list(); *d; d++) {
        if ((*d)->protocol_name && strlen((*d)->protocol_name) == len &&
            !strncmp((*d)->protocol_name, filename, len)) {
            return *d;
        }
    }
    return bd_driver_file();
}

const struct bd_driver *bd_probe_format(const uint8_t *buf, int len,
                                        const char *filename)
{
    const struct bd_driver *const *d;
    const struct bd_driver *best = bd_driver_raw();
    int best_score = 0;

    for (d = bd_driver_list(); *d; d++) {
        if ((*d)->probe) {
            int score = (*d)->probe(buf, len, filename);
            if (score > best_score) {
                best_score = score;
                best = *d;
            }
        }
    }
    return best;
}
