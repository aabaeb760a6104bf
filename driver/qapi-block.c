/*
 * driver/qapi-block.c - the BlockdevOptions schema shared by every driver:
 * the generic base members, the union over registered drivers (each
 * driver's own members come from struct bd_driver.qapi_options), and the
 * BlockdevRef alternates drivers use for their children.
 *
 * The union's variants are the registry's drivers (plus a test graph's
 * own), looked up by name when a tree is validated.
 */
#include "common/config.h"

#include <string.h>

#include "driver/block-int.h"

static const char *const discard_values[] = { "ignore", "unmap", NULL };
static const char *const detect_zeroes_values[] = {
    "off", "on", "unmap", NULL,
};

static const struct qapi_type discard_type = {
    .kind = QAPI_ENUM, .name = "BlockdevDiscardOptions",
    .enum_values = discard_values,
};
static const struct qapi_type detect_zeroes_type = {
    .kind = QAPI_ENUM, .name = "BlockdevDetectZeroesOptions",
    .enum_values = detect_zeroes_values,
};

static const struct qapi_member cache_members[] = {
    { "direct", &qapi_type_bool, true },
    { "no-flush", &qapi_type_bool, true },
    { NULL, NULL, false },
};
static const struct qapi_type cache_type = {
    .kind = QAPI_STRUCT, .name = "BlockdevCacheOptions",
    .members = cache_members,
};

/* BlockdevOptions' base, in QEMU's schema order (messages follow it). */
static const struct qapi_member base_members[] = {
    { "driver", &qapi_type_str, false },
    { "node-name", &qapi_type_str, true },
    { "discard", &discard_type, true },
    { "cache", &cache_type, true },
    { "read-only", &qapi_type_bool, true },
    { "auto-read-only", &qapi_type_bool, true },
    { "force-share", &qapi_type_bool, true },
    { "detect-zeroes", &detect_zeroes_type, true },
    { NULL, NULL, false },
};

/* Test graphs add drivers of their own (bd_graph_set_extra_drivers);
 * bd_blockdev_add names them for the duration of its validation. */
static __thread const struct bd_driver *const *tls_extra;

void bd_qapi_set_extra_drivers(const struct bd_driver *const *list)
{
    tls_extra = list;
}

static const struct qapi_variant *blockdev_variant(const char *value)
{
    static __thread struct qapi_variant slot;
    const struct bd_driver *drv = bd_find_driver(value);
    const struct bd_driver *const *d;

    for (d = tls_extra; !drv && d && *d; d++) {
        if (!strcmp((*d)->name, value)) {
            drv = *d;
        }
    }
    if (!drv) {
        return NULL;
    }
    slot.value = drv->name;
    slot.type = drv->qapi_options;
    return &slot;
}

const struct qapi_type bd_qapi_blockdev_options = {
    .kind = QAPI_UNION, .name = "BlockdevOptions",
    .members = base_members, .discriminator = "driver",
    .variant_lookup = blockdev_variant,
};

static const struct qapi_type null_type = { .kind = QAPI_NULL,
                                            .name = "null" };

static const struct qapi_type *const ref_alts[] = {
    &bd_qapi_blockdev_options, &qapi_type_str, NULL,
};
const struct qapi_type bd_qapi_blockdev_ref = {
    .kind = QAPI_ALTERNATE, .name = "BlockdevRef", .alternatives = ref_alts,
};

static const struct qapi_type *const ref_or_null_alts[] = {
    &bd_qapi_blockdev_options, &qapi_type_str, &null_type, NULL,
};
const struct qapi_type bd_qapi_blockdev_ref_or_null = {
    .kind = QAPI_ALTERNATE, .name = "BlockdevRefOrNull",
    .alternatives = ref_or_null_alts,
};
