/*
 * driver/qcow2-bitmap.c - the persistent dirty bitmap directory (bitmaps
 * header extension): listing. The extension and the clusters it points at
 * are never modified by this driver, so bitmaps written by QEMU survive.
 */
#include "common/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cutils.h"
#include "driver/qcow2-int.h"
#include "driver/qcow2.h"

void qcow2_bitmap_list_free(struct qcow2_bitmap_info *list, int count)
{
    int i;

    for (i = 0; list && i < count; i++) {
        free(list[i].name);
    }
    free(list);
}

int qcow2_bitmap_list(struct bd_node *n, struct qcow2_bitmap_info **list,
                      struct bd_error **errp)
{
    struct qcow2_state *s;
    struct qcow2_bitmap_info *out = NULL;
    uint8_t ext[24];
    uint8_t *dir = NULL;
    uint64_t dir_size, dir_off, pos = 0;
    uint32_t nb, i;
    int count = 0;
    int ret;

    *list = NULL;
    if (!qcow2_is_node(n)) {
        bd_error_setg(errp, "Bitmaps are only stored in qcow2 images");
        return -ENOTSUP;
    }
    s = n->opaque;
    if (!s->has_bitmaps_ext || !(s->autoclear & QCOW2_AUTOCLEAR_BITMAPS)) {
        return 0;
    }
    if (s->bitmaps_ext_len < 24) {
        bd_error_setg(errp, "Invalid bitmaps extension length");
        return -EINVAL;
    }
    ret = bd_child_pread(n->file, (int64_t)s->bitmaps_ext_offset, 24, ext, 0);
    if (ret < 0) {
        bd_error_setg_errno(errp, -ret, "Could not read bitmaps extension");
        return ret;
    }
    nb = qcow2_be32(ext);
    dir_size = qcow2_be64(ext + 8);
    dir_off = qcow2_be64(ext + 16);
    if (nb > 65535 || dir_size > (64u << 20)) {
        bd_error_setg(errp, "Bitmap directory too large");
        return -EINVAL;
    }
    dir = bd_malloc(BD_MAX(dir_size, 1));
    ret = bd_child_pread(n->file, (int64_t)dir_off, (int64_t)dir_size, dir, 0);
    if (ret < 0) {
        free(dir);
        bd_error_setg_errno(errp, -ret, "Could not read bitmap directory");
        return ret;
    }
    out = bd_malloc0(sizeof(*out) * BD_MAX(nb, 1));
    for (i = 0; i < nb && pos + 24 <= dir_size; i++) {
        uint32_t flags = qcow2_be32(dir + pos + 12);
        uint8_t gbits = dir[pos + 17];
        uint16_t name_len = (uint16_t)((dir[pos + 18] << 8) | dir[pos + 19]);
        uint32_t extra = qcow2_be32(dir + pos + 20);
        uint64_t name_at = pos + 24 + extra;

        if (name_at + name_len > dir_size || gbits > 31) {
            break;
        }
        out[count].name = bd_malloc0((size_t)name_len + 1);
        memcpy(out[count].name, dir + name_at, name_len);
        out[count].granularity = 1u << gbits;
        out[count].flags = flags;
        count++;
        pos += BD_ROUND_UP(24 + (uint64_t)extra + name_len, 8);
    }
    free(dir);
    *list = out;
    return count;
}

/*
 * Opened read-write, this driver cannot keep the bitmaps up to date, so it
 * marks every bitmap in use, in place, as QEMU does when it opens them
 * for writing. QEMU then reports them inconsistent instead of trusting a
 * stale bitmap; the directory and the bitmap data stay intact.
 */
int qcow2_bitmaps_mark_in_use(struct bd_node *n)
{
    struct qcow2_state *s = n->opaque;
    uint8_t ext[24];
    uint8_t *dir;
    uint64_t dir_size, dir_off, pos = 0;
    uint32_t nb, i;
    bool changed = false;
    int ret;

    if (!s->has_bitmaps_ext || !(s->autoclear & QCOW2_AUTOCLEAR_BITMAPS) ||
        s->bitmaps_ext_len < 24) {
        return 0;
    }
    ret = bd_child_pread(n->file, (int64_t)s->bitmaps_ext_offset, 24, ext, 0);
    if (ret < 0) {
        return ret;
    }
    nb = qcow2_be32(ext);
    dir_size = qcow2_be64(ext + 8);
    dir_off = qcow2_be64(ext + 16);
    if (nb > 65535 || dir_size > (64u << 20) || !dir_size) {
        return -EINVAL;
    }
    dir = bd_malloc(dir_size);
    ret = bd_child_pread(n->file, (int64_t)dir_off, (int64_t)dir_size, dir, 0);
    for (i = 0; ret == 0 && i < nb && pos + 24 <= dir_size; i++) {
        uint32_t flags = qcow2_be32(dir + pos + 12);
        uint16_t name_len = (uint16_t)((dir[pos + 18] << 8) | dir[pos + 19]);
        uint32_t extra = qcow2_be32(dir + pos + 20);

        if (!(flags & QCOW2_BITMAP_IN_USE)) {
            qcow2_put_be32(dir + pos + 12, flags | QCOW2_BITMAP_IN_USE);
            changed = true;
        }
        pos += BD_ROUND_UP(24 + (uint64_t)extra + name_len, 8);
    }
    if (ret == 0 && changed) {
        ret = bd_child_pwrite(n->file, (int64_t)dir_off, (int64_t)dir_size,
                              dir, 0);
        if (ret == 0) {
            ret = bd_child_flush(n->file);
        }
    }
    free(dir);
    return ret;
}

int qcow2_bitmap_load(struct bd_node *n, const char *name, uint8_t **bits,
                      uint64_t *nbits, uint32_t *granularity,
                      struct bd_error **errp)
{
    struct qcow2_state *s;
    uint8_t ext[24];
    uint8_t *dir = NULL, *table = NULL, *out = NULL;
    uint64_t dir_size, dir_off, pos = 0, bytes, i;
    uint32_t nb, k;
    int ret = -ENOENT;

    *bits = NULL;
    if (!qcow2_is_node(n)) {
        bd_error_setg(errp, "Bitmaps are only stored in qcow2 images");
        return -ENOTSUP;
    }
    s = n->opaque;
    if (!s->has_bitmaps_ext || !(s->autoclear & QCOW2_AUTOCLEAR_BITMAPS) ||
        s->bitmaps_ext_len < 24) {
        bd_error_setg(errp, "Bitmap '%s' not found", name);
        return -ENOENT;
    }
    ret = bd_child_pread(n->file, (int64_t)s->bitmaps_ext_offset, 24, ext, 0);
    if (ret < 0) {
        bd_error_setg_errno(errp, -ret, "Could not read bitmaps extension");
        return ret;
    }
    nb = qcow2_be32(ext);
    dir_size = qcow2_be64(ext + 8);
    dir_off = qcow2_be64(ext + 16);
    if (nb > 65535 || dir_size > (64u << 20) || !dir_size) {
        bd_error_setg(errp, "Bitmap directory too large");
        return -EINVAL;
    }
    dir = bd_malloc(dir_size);
    ret = bd_child_pread(n->file, (int64_t)dir_off, (int64_t)dir_size, dir, 0);
    if (ret < 0) {
        bd_error_setg_errno(errp, -ret, "Could not read bitmap directory");
        goto out;
    }
    ret = -ENOENT;
    for (k = 0; k < nb && pos + 24 <= dir_size; k++) {
        uint64_t toff = qcow2_be64(dir + pos);
        uint32_t tsize = qcow2_be32(dir + pos + 8);
        uint8_t gbits = dir[pos + 17];
        uint16_t name_len = (uint16_t)((dir[pos + 18] << 8) | dir[pos + 19]);
        uint32_t extra = qcow2_be32(dir + pos + 20);
        uint64_t name_at = pos + 24 + extra;

        if (name_at + name_len > dir_size) {
            break;
        }
        if (strlen(name) != name_len ||
            memcmp(dir + name_at, name, name_len)) {
            pos += BD_ROUND_UP(24 + (uint64_t)extra + name_len, 8);
            continue;
        }
        if (gbits < 9 || gbits > 31) {
            bd_error_setg(errp, "Bitmap '%s' has an invalid granularity",
                          name);
            ret = -EINVAL;
            goto out;
        }
        *granularity = 1u << gbits;
        *nbits = BD_DIV_ROUND_UP(s->size, (uint64_t)*granularity);
        bytes = BD_DIV_ROUND_UP(*nbits, 8);
        if ((uint64_t)tsize < BD_DIV_ROUND_UP(bytes, s->cluster_size) ||
            (uint64_t)tsize * 8 > QCOW2_MAX_L1_BYTES) {
            bd_error_setg(errp, "Bitmap '%s' has an invalid table", name);
            ret = -EINVAL;
            goto out;
        }
        table = bd_malloc((size_t)tsize * 8);
        ret = bd_child_pread(n->file, (int64_t)toff, (int64_t)tsize * 8,
                             table, 0);
        if (ret < 0) {
            bd_error_setg_errno(errp, -ret, "Could not read bitmap table");
            goto out;
        }
        out = bd_malloc0(BD_ROUND_UP(bytes, s->cluster_size));
        for (i = 0; i * s->cluster_size < bytes; i++) {
            uint64_t e = qcow2_be64(table + 8 * i);
            uint64_t off = e & L2E_OFFSET_MASK;
            uint8_t *dst = out + i * s->cluster_size;

            if (off) {
                ret = bd_child_pread(n->file, (int64_t)off,
                                     (int64_t)s->cluster_size, dst, 0);
                if (ret < 0) {
                    bd_error_setg_errno(errp, -ret, "Could not read bitmap "
                                        "data");
                    goto out;
                }
            } else if (e & 1) {
                memset(dst, 0xff, s->cluster_size);
            }
        }
        *bits = out;
        out = NULL;
        ret = 0;
        goto out;
    }
    bd_error_setg(errp, "Bitmap '%s' not found", name);
out:
    free(out);
    free(table);
    free(dir);
    return ret;
}
