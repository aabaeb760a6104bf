/*
 * driver/raw.c - the `raw` format: the guest sees the file child's bytes,
 * optionally a window [offset, offset+size) of them.
 *
 * Raises read_aio before every read and write_aio before every write on its
 * file child (QEMU does, and blkdebug rules are written against it).
 * A probed raw image (no format given) may not have block 0 rewritten into
 * something that probes as another format, and it prints QEMU's warning.
 */
#include "common/config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cutils.h"
#include "driver/block-int.h"
#include "driver/drivers.h"

struct raw_state {
    /* Set in open, immutable. */
    uint64_t offset;
    uint64_t size;
    bool has_size;
};

static int raw_probe(const uint8_t *buf, int len, const char *filename)
{
    (void)buf;
    (void)len;
    (void)filename;
    return 1;   /* anything is raw, as a last resort */
}

static int raw_open(struct bd_node *bs, json_t *options, int flags,
                    struct bd_error **errp)
{
    struct raw_state *s = bs->opaque;
    int64_t file_len;
    int r;

    (void)flags;
    r = bd_opts_take_size(options, "offset", &s->offset, errp);
    if (r < 0) {
        return -EINVAL;
    }
    r = bd_opts_take_size(options, "size", &s->size, errp);
    if (r < 0) {
        return -EINVAL;
    }
    s->has_size = r > 0;
    /* The node length is whole sectors (bd_getlength), so a window that
     * ends mid-sector would have a tail nobody can read. */
    if (s->has_size && s->size % BD_SECTOR_SIZE) {
        bd_error_setg(errp, "Specified size is not multiple of %d",
                      BD_SECTOR_SIZE);
        return -EINVAL;
    }
    if (!bd_open_child(bs, options, "file", NULL,
                       BD_ROLE_DATA | BD_ROLE_PRIMARY, false, errp)) {
        return -EINVAL;
    }
    file_len = bd_getlength(bs->file->node);
    if (file_len < 0) {
        bd_error_setg_errno(errp, (int)-file_len, "Could not get image size");
        return (int)file_len;
    }
    if (s->offset > (uint64_t)file_len) {
        bd_error_setg(errp, "Offset (%" PRIu64 ") cannot be greater than "
                      "size of the containing file (%" PRId64 ")",
                      s->offset, file_len);
        return -EINVAL;
    }
    if (s->has_size && s->offset + s->size > (uint64_t)file_len) {
        bd_error_setg(errp, "The sum of offset (%" PRIu64 ") and size (%"
                      PRIu64 ") has to be smaller or equal to the  actual "
                      "size of the containing file (%" PRId64 ")",
                      s->offset, s->size, file_len);
        return -EINVAL;
    }
    bs->supported_write_flags = bs->file->node->supported_write_flags &
                                BD_REQ_FUA;
    bs->supported_zero_flags = bs->file->node->supported_zero_flags;
    if (bs->probed && !bs->read_only) {
        fprintf(stderr, "WARNING: Image format was not specified for '%s' "
                "and probing guessed raw.\n"
                "         Automatically detecting the format is dangerous "
                "for raw images, write operations on block 0 will be "
                "restricted.\n"
                "         Specify the 'raw' format explicitly to remove the "
                "restrictions.\n", bd_node_filename(bs->file->node));
    }
    return 0;
}

static int raw_refresh_limits(struct bd_node *bs, struct bd_error **errp)
{
    (void)errp;
    bs->bl.request_alignment = bs->file->node->bl.request_alignment;
    if (bs->probed) {
        /* Block 0 is checked as a whole sector (see raw_pwritev). */
        bs->bl.request_alignment = BD_MAX(bs->bl.request_alignment, 512u);
    }
    return 0;
}

static int64_t raw_getlength(struct bd_node *bs)
{
    struct raw_state *s = bs->opaque;
    int64_t len;

    if (s->has_size) {
        return (int64_t)s->size;
    }
    len = bd_getlength(bs->file->node);
    if (len < 0) {
        return len;
    }
    return len - (int64_t)s->offset;
}

/* Bounds of the window; writes may grow an unbounded raw image. */
static int raw_adjust(struct bd_node *bs, int64_t *off, int64_t bytes)
{
    struct raw_state *s = bs->opaque;

    if (s->has_size && (*off > (int64_t)s->size ||
                        bytes > (int64_t)s->size - *off)) {
        return -EINVAL;
    }
    *off += (int64_t)s->offset;
    return 0;
}

static int raw_preadv(struct bd_node *bs, int64_t off, int64_t bytes,
                      struct bd_qiov *qiov, int flags)
{
    int ret = raw_adjust(bs, &off, bytes);

    if (ret < 0) {
        return ret;
    }
    bd_event(bs->file, BD_EV_READ_AIO);
    return bd_child_preadv(bs->file, off, bytes, qiov, flags);
}

static int raw_pwritev(struct bd_node *bs, int64_t off, int64_t bytes,
                       struct bd_qiov *qiov, int flags)
{
    struct raw_state *s = bs->opaque;
    int ret;

    if (bs->probed && off < 512 && s->offset == 0 &&
        !(flags & BD_REQ_WRITE_UNCHANGED)) {
        /* Refuse to turn a probed raw image into another format. */
        uint8_t sector[512];
        const struct bd_driver *d;

        memset(sector, 0, sizeof(sector));
        bd_qiov_to_buf(qiov, 0, sector + off,
                       (size_t)BD_MIN(bytes, 512 - off));
        d = bd_probe_format(sector, 512, NULL);
        if (d != bs->drv) {
            return -EPERM;
        }
    }
    ret = raw_adjust(bs, &off, bytes);
    if (ret < 0) {
        return ret;
    }
    bd_event(bs->file, BD_EV_WRITE_AIO);
    return bd_child_pwritev(bs->file, off, bytes, qiov, flags);
}

static int raw_pwrite_zeroes(struct bd_node *bs, int64_t off, int64_t bytes,
                             int flags)
{
    int ret = raw_adjust(bs, &off, bytes);

    if (ret < 0) {
        return ret;
    }
    return bd_child_pwrite_zeroes(bs->file, off, bytes, flags);
}

static int raw_pdiscard(struct bd_node *bs, int64_t off, int64_t bytes)
{
    int ret = raw_adjust(bs, &off, bytes);

    if (ret < 0) {
        return ret;
    }
    return bd_child_pdiscard(bs->file, off, bytes);
}

static int raw_block_status(struct bd_node *bs, bool want_zero, int64_t off,
                            int64_t bytes, int64_t *pnum, int64_t *map,
                            struct bd_node **file)
{
    struct raw_state *s = bs->opaque;

    (void)want_zero;
    *pnum = bytes;
    *file = bs->file->node;
    *map = off + (int64_t)s->offset;
    return BD_BLOCK_RAW | BD_BLOCK_OFFSET_VALID;
}

static int raw_truncate(struct bd_node *bs, int64_t size, bool exact,
                        enum bd_prealloc prealloc, int flags,
                        struct bd_error **errp)
{
    struct raw_state *s = bs->opaque;

    if (s->has_size) {
        bd_error_setg(errp, "Cannot resize fixed-size raw disks");
        return -ENOTSUP;
    }
    return bd_child_truncate(bs->file, size + (int64_t)s->offset, exact,
                             prealloc, flags, errp);
}

static int raw_get_info(struct bd_node *bs, struct bd_node_info *info)
{
    (void)bs;
    info->cluster_size = 0;
    info->vm_state_offset = 0;
    return 0;
}

static int raw_has_zero_init(struct bd_node *bs)
{
    struct bd_node *f = bs->file->node;

    return f->drv->has_zero_init ? f->drv->has_zero_init(f) : 0;
}

static int raw_create(const char *filename, json_t *options,
                      struct bd_error **errp)
{
    return bd_driver_file_create(filename, options, errp);
}

/* BlockdevOptionsRaw, as blockdev-add validates it. */
static const struct qapi_member raw_qapi_members[] = {
    { "file", &bd_qapi_blockdev_ref, false },
    { "offset", &qapi_type_int, true },
    { "size", &qapi_type_int, true },
    { NULL, NULL, false },
};
static const struct qapi_type raw_qapi_options = {
    .kind = QAPI_STRUCT, .name = "BlockdevOptionsRaw",
    .members = raw_qapi_members,
};

static const struct bd_driver raw_driver = {
    .struct_size = sizeof(struct bd_driver),
    .name = "raw",
    .qapi_options = &raw_qapi_options,
    .is_format = true,
    .instance_size = sizeof(struct raw_state),
    .probe = raw_probe,
    .open = raw_open,
    .refresh_limits = raw_refresh_limits,
    .getlength = raw_getlength,
    .preadv = raw_preadv,
    .pwritev = raw_pwritev,
    .pwrite_zeroes = raw_pwrite_zeroes,
    .pdiscard = raw_pdiscard,
    .block_status = raw_block_status,
    .truncate = raw_truncate,
    .get_info = raw_get_info,
    .has_zero_init = raw_has_zero_init,
    .create = raw_create,
};

BD_DRIVER_EXPORT(raw_driver, bd_driver_raw)
