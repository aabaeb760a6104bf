/*
 * driver/registry.c - the explicit list of drivers. No constructors, no
 * link-order surprises: a driver exists when it is listed here. Lookup is
 * by name; a duplicate name is a programming error caught by the unit test
 * of this module (test_registry.c).
 */
#include "common/config.h"

#include <pthread.h>
#include <string.h>

#include "driver/block-int.h"
#include "driver/drivers.h"

typedef const struct bd_driver *bd_driver_accessor(void);

static bd_driver_accessor *const accessors[] = {
    bd_driver_file,
    bd_driver_raw,
    bd_driver_null_co,
    bd_driver_null_aio,
    bd_driver_blkdebug,     /* driver/blkdebug.c (issue 4) */
    bd_driver_mirror_top,
    bd_driver_qcow2,
    bd_driver_copy_before_write,
    bd_driver_snapshot_access,
};

#define NDRIVERS (sizeof(accessors) / sizeof(accessors[0]))

static const struct bd_driver *driver_list[NDRIVERS + 1];
static pthread_once_t driver_list_once = PTHREAD_ONCE_INIT;

static void driver_list_init(void)
{
    size_t i;

    for (i = 0; i < NDRIVERS; i++) {
        driver_list[i] = accessors[i]();
    }
}

const struct bd_driver *const *bd_driver_list(void)
{
    /* Threads may open nodes concurrently (QMP, jobs, tests): a lazily
     * filled array read without ordering is a data race, so build it once
     * under pthread_once, which also publishes it to every thread. */
    pthread_once(&driver_list_once, driver_list_init);
    return driver_list;
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

    /* "a/b:c" is a path, not a protocol; so is "./x:y" (QEMU's
     * path_has_protocol). */
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
    /* A prefix nobody claims is an error, as in QEMU ("Unknown protocol
     * 'foo'"), not a file name: use "./foo:bar" for such a file. */
    return NULL;
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
