/*
 * injector/events.c - name tables for events and I/O types.
 */
#include "common/config.h"

#include <string.h>

#include "injector/events.h"

static const char *const event_names[BD_EV__MAX] = {
#define BD_EV(e, n) [BD_EV_##e] = n,
#include "injector/events.def"
#undef BD_EV
};

static const char *const iotype_names[BD_IOTYPE__MAX] = {
    [BD_IOTYPE_READ] = "read",
    [BD_IOTYPE_WRITE] = "write",
    [BD_IOTYPE_WRITE_ZEROES] = "write-zeroes",
    [BD_IOTYPE_DISCARD] = "discard",
    [BD_IOTYPE_FLUSH] = "flush",
    [BD_IOTYPE_BLOCK_STATUS] = "block-status",
};

const char *bd_event_name(int ev)
{
    if (ev < 0 || ev >= BD_EV__MAX) {
        return NULL;
    }
    return event_names[ev];
}

int bd_event_lookup(const char *name)
{
    int i;

    for (i = 0; i < BD_EV__MAX; i++) {
        if (!strcmp(event_names[i], name)) {
            return i;
        }
    }
    return -1;
}

const char *bd_iotype_name(int t)
{
    if (t < 0 || t >= BD_IOTYPE__MAX) {
        return NULL;
    }
    return iotype_names[t];
}

int bd_iotype_lookup(const char *name)
{
    int i;

    for (i = 0; i < BD_IOTYPE__MAX; i++) {
        if (!strcmp(iotype_names[i], name)) {
            return i;
        }
    }
    return -1;
}
