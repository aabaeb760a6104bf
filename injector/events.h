/*
 * injector/events.h - named debug events (QEMU's BlkdebugEvent).
 *
 * Format drivers and the request path raise these on a node through
 * bd_event() (driver/block-int.h); a blkdebug node turns them into rule
 * activity through its injector. The enum, its __MAX sentinel and the name
 * table all come from events.def, so they cannot disagree.
 */
#ifndef BLKRIG_EVENTS_H
#define BLKRIG_EVENTS_H

#include <stdint.h>

#include "common/assert.h"

enum bd_event {
#define BD_EV(e, n) BD_EV_##e,
#include "injector/events.def"
#undef BD_EV
    BD_EV__MAX
};

/* Events must fit a 64-bit mask (per-node "which events have rules"). */
BD_STATIC_ASSERT(BD_EV__MAX <= 64);
BD_STATIC_ASSERT(BD_EV__MAX == 48);

/* QAPI name of an event ("read_aio"); NULL for out-of-range values. */
const char *bd_event_name(int ev);
/* Exact, case-sensitive lookup; returns -1 for unknown names. */
int bd_event_lookup(const char *name);

/* I/O types of BlkdebugIOType, as bit positions of a mask. */
enum bd_iotype {
    BD_IOTYPE_READ,
    BD_IOTYPE_WRITE,
    BD_IOTYPE_WRITE_ZEROES,
    BD_IOTYPE_DISCARD,
    BD_IOTYPE_FLUSH,
    BD_IOTYPE_BLOCK_STATUS,
    BD_IOTYPE__MAX
};
BD_STATIC_ASSERT(BD_IOTYPE__MAX <= 64);

const char *bd_iotype_name(int t);
int bd_iotype_lookup(const char *name);

#endif
