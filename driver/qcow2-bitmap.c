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
#include "driver/dirty-bitmap.h"
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

/* ------------------------------------------------------------------ */
/* Loading into the node and storing back (persistent bitmaps)          */

/*
 * Turn every stored bitmap into a persistent in-memory bitmap, as QEMU
 * does on open: enabled when the "auto" flag is set, inconsistent (no
 * data, not recording) when the image says it was in use, readonly when
 * the node is. Runs before the bitmaps are marked in use on RW open.
 */
int qcow2_bitmaps_load_all(struct bd_node *bs, struct bd_error **errp)
{
    struct qcow2_bitmap_info *list = NULL;
    int nb, i, ret = 0;

    nb = qcow2_bitmap_list(bs, &list, errp);
    if (nb < 0) {
        return nb;
    }
    for (i = 0; i < nb && ret == 0; i++) {
        struct bd_dirty_bitmap *bm;
        uint8_t *bits = NULL;
        uint64_t nbits = 0, b;
        uint32_t gran = 0;

        bm = bd_dirty_bitmap_create(bs, list[i].granularity, list[i].name,
                                    errp);
        if (!bm) {
            ret = -EINVAL;
            break;
        }
        bm->persistent = true;
        bm->readonly = bs->read_only;
        if (list[i].flags & QCOW2_BITMAP_IN_USE) {
            bm->inconsistent = true;
            bm->enabled = false;
            continue;
        }
        bm->enabled = (list[i].flags & QCOW2_BITMAP_AUTO) != 0;
        ret = qcow2_bitmap_load(bs, list[i].name, &bits, &nbits, &gran,
                                errp);
        if (ret < 0) {
            break;
        }
        for (b = 0; b < nbits; b++) {
            if (bits[b / 8] & (1u << (b % 8))) {
                bd_dirty_bitmap_set(bm, (int64_t)(b * gran), gran);
            }
        }
        free(bits);
    }
    qcow2_bitmap_list_free(list, nb);
    return ret;
}

/* Read the current bitmaps extension into ext; false if there is none. */
static bool read_ext(struct bd_node *bs, uint8_t *ext)
{
    struct qcow2_state *s = bs->opaque;

    return s->has_bitmaps_ext && (s->autoclear & QCOW2_AUTOCLEAR_BITMAPS) &&
           s->bitmaps_ext_len >= 24 &&
           bd_child_pread(bs->file, (int64_t)s->bitmaps_ext_offset, 24, ext,
                          0) == 0;
}

/* Free the clusters of the directory described by ext (an old bitmaps
 * extension), its tables and data. Lock held. */
static void free_stored(struct bd_node *bs, const uint8_t *ext)
{
    struct qcow2_state *s = bs->opaque;
    uint8_t *dir;
    uint64_t dir_size, dir_off, pos = 0;
    uint32_t nb, k, j;

    nb = qcow2_be32(ext);
    dir_size = qcow2_be64(ext + 8);
    dir_off = qcow2_be64(ext + 16);
    if (nb > 65535 || !dir_size || dir_size > (64u << 20)) {
        return;
    }
    dir = bd_malloc(dir_size);
    if (bd_child_pread(bs->file, (int64_t)dir_off, (int64_t)dir_size, dir,
                       0) < 0) {
        free(dir);
        return;
    }
    for (k = 0; k < nb && pos + 24 <= dir_size; k++) {
        uint64_t toff = qcow2_be64(dir + pos);
        uint32_t tsize = qcow2_be32(dir + pos + 8);
        uint16_t name_len = (uint16_t)((dir[pos + 18] << 8) | dir[pos + 19]);
        uint32_t extra = qcow2_be32(dir + pos + 20);

        if (toff && tsize && (uint64_t)tsize * 8 <= QCOW2_MAX_L1_BYTES) {
            uint8_t *table = bd_malloc((size_t)tsize * 8);

            if (bd_child_pread(bs->file, (int64_t)toff, (int64_t)tsize * 8,
                               table, 0) == 0) {
                for (j = 0; j < tsize; j++) {
                    uint64_t off = qcow2_be64(table + 8 * j) &
                                   L2E_OFFSET_MASK;

                    if (off) {
                        qcow2_free_clusters(bs, off, s->cluster_size);
                    }
                }
                qcow2_free_clusters(bs, toff, BD_ROUND_UP(
                    (uint64_t)tsize * 8, s->cluster_size));
            }
            free(table);
        }
        pos += BD_ROUND_UP(24 + (uint64_t)extra + name_len, 8);
    }
    qcow2_free_clusters(bs, dir_off, BD_ROUND_UP(dir_size, s->cluster_size));
    free(dir);
}

/*
 * Rewrite the header extension area with `ext` (24 bytes, NULL: no
 * bitmaps extension) in place of the old bitmaps extension, keeping the
 * others and the backing file name, and set or clear the autoclear bit.
 */
static int write_header_ext(struct bd_node *bs, const uint8_t *bext)
{
    struct qcow2_state *s = bs->opaque;
    uint8_t *h = bd_malloc0(s->cluster_size);
    uint8_t *n = bd_malloc0(s->cluster_size);
    uint64_t off, np, boff, bsize, autoclear;
    int ret;

    ret = bd_child_pread(bs->file, 0, s->cluster_size, h, 0);
    if (ret < 0) {
        goto out;
    }
    off = s->version >= 3 ? s->header_length : 72;
    np = off;
    memcpy(n, h, off);
    if (bext) {
        qcow2_put_be32(n + np, QCOW2_EXT_BITMAPS);
        qcow2_put_be32(n + np + 4, 24);
        memcpy(n + np + 8, bext, 24);
        np += 32;
    }
    while (off + 8 <= s->cluster_size) {
        uint32_t type = qcow2_be32(h + off);
        uint32_t len = qcow2_be32(h + off + 4);
        uint64_t total = 8 + BD_ROUND_UP((uint64_t)len, 8);

        if (type == QCOW2_EXT_END || off + total > s->cluster_size) {
            break;
        }
        if (type != QCOW2_EXT_BITMAPS) {
            if (np + total > s->cluster_size) {
                ret = -ENOSPC;
                goto out;
            }
            memcpy(n + np, h + off, total);
            np += total;
        }
        off += total;
    }
    np += 8;                    /* end marker (zeroes) */
    boff = qcow2_be64(h + QH_BACKING_OFFSET);
    bsize = qcow2_be32(h + QH_BACKING_SIZE);
    if (boff && bsize) {
        if (boff + bsize > s->cluster_size || np + bsize > s->cluster_size) {
            ret = -ENOSPC;
            goto out;
        }
        memcpy(n + np, h + boff, bsize);
        qcow2_put_be64(n + QH_BACKING_OFFSET, np);
        np += bsize;
    }
    autoclear = s->autoclear & ~QCOW2_AUTOCLEAR_BITMAPS;
    if (bext) {
        autoclear |= QCOW2_AUTOCLEAR_BITMAPS;
    }
    if (s->version >= 3) {
        qcow2_put_be64(n + QH_AUTOCLEAR, autoclear);
    } else if (bext) {
        ret = -ENOTSUP;
        goto out;
    }
    ret = bd_child_pwrite(bs->file, 0, (int64_t)BD_MAX(np, off), n, 0);
    if (ret == 0) {
        ret = bd_child_flush(bs->file);
    }
    if (ret == 0) {
        s->autoclear = autoclear;
        s->has_bitmaps_ext = bext != NULL;
        s->bitmaps_ext_offset = (s->version >= 3 ? s->header_length : 72) + 8;
        s->bitmaps_ext_len = bext ? 24 : 0;
    }
out:
    free(h);
    free(n);
    return ret;
}

/* Write one bitmap's data and table; the table at *toff, *tsize entries describe the table.
 * An in-use bitmap gets an all-zero table (QEMU never reads it). */
static int store_one(struct bd_node *bs, struct bd_dirty_bitmap *bm,
                     bool data, uint64_t *toff, uint32_t *tsize)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t nbits = BD_DIV_ROUND_UP(s->size, bm->granularity);
    uint64_t bytes = BD_DIV_ROUND_UP(nbits, 8), b, i;
    uint64_t nclusters = BD_DIV_ROUND_UP(bytes, s->cluster_size);
    uint64_t tbytes = BD_ROUND_UP(BD_MAX(nclusters, 1) * 8, s->cluster_size);
    uint8_t *buf = bd_malloc0(BD_MAX(nclusters, 1) * s->cluster_size);
    uint8_t *table = bd_malloc0(tbytes);
    int64_t off;
    int ret = 0;

    if (data) {
        for (b = 0; b < nbits; b++) {
            /* bitmaps_lock is held by the caller: read the words. */
            if (b < bm->nbits && (bm->bits[b / 64] & (1ULL << (b % 64)))) {
                buf[b / 8] |= (uint8_t)(1u << (b % 8));
            }
        }
        for (i = 0; i < nclusters; i++) {
            uint8_t *c = buf + i * s->cluster_size;
            uint32_t k;

            for (k = 0; k < s->cluster_size && !c[k]; k++) {
            }
            if (k == s->cluster_size) {
                continue;       /* all zero: entry 0 */
            }
            off = qcow2_alloc_clusters(bs, s->cluster_size);
            if (off < 0) {
                ret = (int)off;
                goto out;
            }
            ret = bd_child_pwrite(bs->file, off, s->cluster_size, c, 0);
            if (ret < 0) {
                goto out;
            }
            qcow2_put_be64(table + 8 * i, (uint64_t)off);
        }
    }
    off = qcow2_alloc_clusters(bs, tbytes);
    if (off < 0) {
        ret = (int)off;
        goto out;
    }
    ret = bd_child_pwrite(bs->file, off, (int64_t)tbytes, table, 0);
    *toff = (uint64_t)off;
    *tsize = (uint32_t)nclusters;
out:
    free(buf);
    free(table);
    return ret;
}

static int gran_bits(uint64_t g)
{
    int k = 0;

    while ((1ull << k) < g) {
        k++;
    }
    return k;
}

int qcow2_bitmaps_store(struct bd_node *bs, bool in_use)
{
    struct qcow2_state *s = bs->opaque;
    struct bd_list *pos;
    uint8_t *dir = NULL;
    uint64_t dir_size = 0, cap = 0;
    uint32_t nb = 0;
    uint8_t ext[24];
    struct qcow2_bitmap_info *old = NULL;
    struct bd_dirty_bitmap **v;
    uint8_t old_ext[24];
    bool has_old;
    int nold, k, nv;
    int ret = 0;
    bool any_old;

    if (bs->read_only) {
        return 0;
    }
    any_old = s->has_bitmaps_ext;
    pthread_mutex_lock(&bs->bitmaps_lock);
    bd_list_for_each(pos, &bs->bitmaps) {
        struct bd_dirty_bitmap *bm = BD_LIST_ENTRY(pos,
                                                   struct bd_dirty_bitmap,
                                                   link);
        if (bm->persistent && bm->name) {
            nb++;
        }
    }
    pthread_mutex_unlock(&bs->bitmaps_lock);
    if (!nb && !any_old) {
        return 0;
    }
    if (s->version < 3) {
        return nb ? -ENOTSUP : 0;
    }
    /* QEMU's order: bitmaps already in the directory keep their place,
     * new ones follow in the node's list order (newest first). */
    nold = qcow2_bitmap_list(bs, &old, NULL);
    if (nold < 0) {
        nold = 0;
    }
    pthread_mutex_lock(&s->lock);
    has_old = read_ext(bs, old_ext);
    pthread_mutex_lock(&bs->bitmaps_lock);
    v = bd_malloc0(sizeof(*v) * (nb + 1));
    nv = 0;
    for (k = 0; k <= nold; k++) {
        bd_list_for_each(pos, &bs->bitmaps) {
            struct bd_dirty_bitmap *bm = BD_LIST_ENTRY(
                pos, struct bd_dirty_bitmap, link);
            bool listed = false;
            int j;

            if (!bm->persistent || !bm->name || (uint32_t)nv >= nb) {
                continue;
            }
            for (j = 0; j < nold; j++) {
                listed = listed || !strcmp(old[j].name, bm->name);
            }
            if (k < nold ? !strcmp(old[k].name, bm->name) : !listed) {
                v[nv++] = bm;
            }
        }
    }
    nb = 0;
    for (k = 0; k < nv && ret == 0; k++) {
        struct bd_dirty_bitmap *bm = v[k];
        size_t nl;
        uint64_t toff = 0, esize;
        uint32_t tsize = 0, flags = 0;
        bool inconsistent;

        inconsistent = bm->inconsistent || in_use;
        ret = store_one(bs, bm, !inconsistent, &toff, &tsize);
        if (ret < 0) {
            break;
        }
        nl = strlen(bm->name);
        esize = BD_ROUND_UP(24 + (uint64_t)nl, 8);
        if (dir_size + esize > cap) {
            cap = BD_MAX(cap * 2, dir_size + esize + 256);
            dir = realloc(dir, cap);
            if (!dir) {
                abort();
            }
        }
        memset(dir + dir_size, 0, esize);
        if (inconsistent) {
            flags |= QCOW2_BITMAP_IN_USE;
        }
        if (bm->enabled || (bm->successor && bm->successor->enabled)) {
            flags |= QCOW2_BITMAP_AUTO;
        }
        if (bm->inconsistent) {
            int j;

            /* Never loaded, so QEMU keeps the stored "auto" flag. */
            for (j = 0; j < nold; j++) {
                if (!strcmp(old[j].name, bm->name)) {
                    flags |= old[j].flags & QCOW2_BITMAP_AUTO;
                }
            }
        }
        qcow2_put_be64(dir + dir_size, toff);
        qcow2_put_be32(dir + dir_size + 8, tsize);
        qcow2_put_be32(dir + dir_size + 12, flags);
        dir[dir_size + 16] = 1;     /* type: dirty tracking bitmap */
        dir[dir_size + 17] = (uint8_t)gran_bits(bm->granularity);
        dir[dir_size + 18] = (uint8_t)(nl >> 8);
        dir[dir_size + 19] = (uint8_t)nl;
        memcpy(dir + dir_size + 24, bm->name, nl);
        dir_size += esize;
        nb++;
    }
    pthread_mutex_unlock(&bs->bitmaps_lock);
    if (ret == 0 && nb) {
        int64_t doff = qcow2_alloc_clusters(bs, BD_ROUND_UP(dir_size,
                                                            s->cluster_size));
        if (doff < 0) {
            ret = (int)doff;
        } else {
            ret = bd_child_pwrite(bs->file, doff, (int64_t)dir_size, dir, 0);
            qcow2_put_be32(ext, nb);
            qcow2_put_be32(ext + 4, 0);
            qcow2_put_be64(ext + 8, dir_size);
            qcow2_put_be64(ext + 16, (uint64_t)doff);
        }
    }
    if (ret == 0) {
        /* Refcounts first, then the header pointing at the new data. */
        ret = qcow2_cache_flush(bs, s->refblock_cache);
    }
    if (ret == 0) {
        ret = write_header_ext(bs, nb ? ext : NULL);
    }
    /* Only now that the header points at the new directory: a crash
     * before this leaks the old clusters, never frees live ones. */
    if (ret == 0 && has_old) {
        free_stored(bs, old_ext);
        ret = qcow2_cache_flush(bs, s->refblock_cache);
    }
    pthread_mutex_unlock(&s->lock);
    qcow2_bitmap_list_free(old, nold);
    free(v);
    free(dir);
    return ret;
}

bool qcow2_can_store_new_bitmap(struct bd_node *bs, const char *name,
                                struct bd_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    struct bd_list *pos;
    uint32_t nb = 0;

    if (s->version < 3) {
        /* No autoclear field to guard the extension with. */
        bd_error_setg(errp, "Can't make bitmap '%s' persistent in '%s': "
                      "Cannot store dirty bitmaps in qcow2 v2 files", name,
                      bd_node_name(bs));
        return false;
    }
    pthread_mutex_lock(&bs->bitmaps_lock);
    bd_list_for_each(pos, &bs->bitmaps) {
        struct bd_dirty_bitmap *bm = BD_LIST_ENTRY(pos,
                                                   struct bd_dirty_bitmap,
                                                   link);
        nb += bm->persistent && bm->name;
    }
    pthread_mutex_unlock(&bs->bitmaps_lock);
    if (nb >= 65535) {
        bd_error_setg(errp, "Can't make bitmap '%s' persistent in '%s': "
                      "Maximum number of persistent bitmaps is already "
                      "reached", name, bd_node_name(bs));
        return false;
    }
    return true;
}
