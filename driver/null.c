/*
 * driver/null.c - `null-co` and `null-aio`: a device of a given size whose
 * writes vanish and whose reads return zeroes (read-zeroes=on) or leave the
 * buffer untouched (QEMU's default, read-zeroes=off). latency-ns delays
 * every request in its own thread only, so delayed requests overlap.
 * The two drivers share every callback (QEMU keeps both names).
 */
#include "common/config.h"

#include <errno.h>
#include <string.h>

#include "common/cutils.h"
#include "driver/block-int.h"
#include "driver/drivers.h"

struct null_state {
    /* Set in open, immutable. */
    int64_t length;
    int64_t latency_ns;
    bool read_zeroes;
};

static int null_parse_filename(const char *filename, json_t *options,
                               struct bd_error **errp)
{
    (void)options;
    /* Only the bare protocol name is a valid filename. */
    if (strcmp(filename, "null-co://") && strcmp(filename, "null-aio://")) {
        bd_error_setg(errp, "The only allowed filename for this driver is "
                      "'%.*s://'", (int)(strchr(filename, ':') - filename),
                      filename);
        return -EINVAL;
    }
    return 0;
}

static int null_open(struct bd_node *bs, json_t *options, int flags,
                     struct bd_error **errp)
{
    struct null_state *s = bs->opaque;
    uint64_t size = 1ULL << 30;
    uint64_t lat = 0;
    bool rz = false;

    (void)flags;
    if (bd_opts_take_size(options, "size", &size, errp) < 0 ||
        bd_opts_take_number(options, "latency-ns", &lat, errp) < 0 ||
        bd_opts_take_bool(options, "read-zeroes", &rz, errp) < 0) {
        return -EINVAL;
    }
    if (size > INT64_MAX) {
        bd_error_setg(errp, "Value '%llu' is out of range for parameter "
                      "'size'", (unsigned long long)size);
        return -EINVAL;
    }
    if (lat > INT64_MAX) {
        bd_error_setg(errp, "latency-ns is invalid");
        return -EINVAL;
    }
    s->length = (int64_t)size;
    s->latency_ns = (int64_t)lat;
    s->read_zeroes = rz;
    bs->supported_write_flags = BD_REQ_FUA;
    bs->supported_zero_flags = BD_REQ_FUA | BD_REQ_MAY_UNMAP |
                               BD_REQ_NO_FALLBACK;
    return 0;
}

static int64_t null_getlength(struct bd_node *bs)
{
    struct null_state *s = bs->opaque;

    return s->length;
}

static void null_delay(struct null_state *s)
{
    if (s->latency_ns) {
        bd_sleep_ns(s->latency_ns);
    }
}

static int null_preadv(struct bd_node *bs, int64_t off, int64_t bytes,
                       struct bd_qiov *qiov, int flags)
{
    struct null_state *s = bs->opaque;

    (void)off;
    (void)flags;
    if (s->read_zeroes) {
        bd_qiov_memset(qiov, 0, 0, (size_t)bytes);
    }
    null_delay(s);
    return 0;
}

static int null_pwritev(struct bd_node *bs, int64_t off, int64_t bytes,
                        struct bd_qiov *qiov, int flags)
{
    (void)off;
    (void)bytes;
    (void)qiov;
    (void)flags;
    null_delay(bs->opaque);
    return 0;
}

static int null_pwrite_zeroes(struct bd_node *bs, int64_t off, int64_t bytes,
                              int flags)
{
    (void)off;
    (void)bytes;
    (void)flags;
    null_delay(bs->opaque);
    return 0;
}

static int null_pdiscard(struct bd_node *bs, int64_t off, int64_t bytes)
{
    (void)off;
    (void)bytes;
    null_delay(bs->opaque);
    return 0;
}

static int null_flush(struct bd_node *bs)
{
    null_delay(bs->opaque);
    return 0;
}

static int null_block_status(struct bd_node *bs, bool want_zero, int64_t off,
                             int64_t bytes, int64_t *pnum, int64_t *map,
                             struct bd_node **file)
{
    struct null_state *s = bs->opaque;

    (void)want_zero;
    *pnum = bytes;
    *map = off;
    *file = bs;
    return BD_BLOCK_OFFSET_VALID | (s->read_zeroes ? BD_BLOCK_ZERO : 0);
}

static int null_has_zero_init(struct bd_node *bs)
{
    struct null_state *s = bs->opaque;

    return s->read_zeroes;
}

/* BlockdevOptionsNull, as blockdev-add validates it. */
static const struct qapi_member null_qapi_members[] = {
    { "size", &qapi_type_int, true },
    { "latency-ns", &qapi_type_uint64, true },
    { "read-zeroes", &qapi_type_bool, true },
    { NULL, NULL, false },
};
static const struct qapi_type null_qapi_options = {
    .kind = QAPI_STRUCT, .name = "BlockdevOptionsNull",
    .members = null_qapi_members,
};

static const struct bd_driver null_co_driver = {
    .struct_size = sizeof(struct bd_driver),
    .name = "null-co",
    .protocol_name = "null-co",
    .instance_size = sizeof(struct null_state),
    .qapi_options = &null_qapi_options,
    .parse_filename = null_parse_filename,
    .open = null_open,
    .getlength = null_getlength,
    .preadv = null_preadv,
    .pwritev = null_pwritev,
    .pwrite_zeroes = null_pwrite_zeroes,
    .pdiscard = null_pdiscard,
    .flush_to_disk = null_flush,
    .block_status = null_block_status,
    .has_zero_init = null_has_zero_init,
};

static const struct bd_driver null_aio_driver = {
    .struct_size = sizeof(struct bd_driver),
    .name = "null-aio",
    .protocol_name = "null-aio",
    .instance_size = sizeof(struct null_state),
    .qapi_options = &null_qapi_options,
    .parse_filename = null_parse_filename,
    .open = null_open,
    .getlength = null_getlength,
    .preadv = null_preadv,
    .pwritev = null_pwritev,
    .pwrite_zeroes = null_pwrite_zeroes,
    .pdiscard = null_pdiscard,
    .flush_to_disk = null_flush,
    .block_status = null_block_status,
    .has_zero_init = null_has_zero_init,
};

BD_DRIVER_EXPORT(null_co_driver, bd_driver_null_co)
BD_DRIVER_EXPORT(null_aio_driver, bd_driver_null_aio)
