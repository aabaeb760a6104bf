/*
 * driver/qapi-block.c - the BlockdevOptions schema shared by every driver:
 * the generic base members, the union over registered drivers (each
 * driver's own members come from struct bd_driver.qapi_options), and the
 * BlockdevRef alternates drivers use for their children.
 *
 * The union's variants depend on which drivers are linked in, so they are
 * built once from the registry; afterwards they are read-only.
 */
#include "common/config.h"

#include <pthread.h>
#include <stdlib.h>

#include "common/cutils.h"
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

static pthread_once_t variants_once = PTHREAD_ONCE_INIT;
static struct qapi_variant *variants;

static void build_variants(void)
{
    const struct bd_driver *const *d;
    size_t n = 0;

    for (d = bd_driver_list(); *d; d++) {
        n++;
    }
    variants = bd_malloc0((n + 1) * sizeof(*variants));
    n = 0;
    for (d = bd_driver_list(); *d; d++) {
        variants[n].value = (*d)->name;
        variants[n].type = (*d)->qapi_options;
        n++;
    }
}

static const struct qapi_variant *blockdev_variants(void)
{
    pthread_once(&variants_once, build_variants);
    return variants;
}

const struct qapi_type bd_qapi_blockdev_options = {
    .kind = QAPI_UNION, .name = "BlockdevOptions",
    .members = base_members, .discriminator = "driver",
    .variants_fn = blockdev_variants,
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
