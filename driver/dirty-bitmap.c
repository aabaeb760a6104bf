/*
 * driver/dirty-bitmap.c - flat bit arrays, one bit per granule.
 *
 * Flat arrays are simple and fast enough for the sizes blkrig serves (a
 * 1 TiB node at 64 KiB granularity is 2 MiB of bits). All bit operations
 * take node->bitmaps_lock: marking runs on I/O threads while QMP and jobs
 * read and change bitmaps.
 */
#include "common/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cutils.h"
#include "common/qapi.h"
#include "driver/block-int.h"
#include "driver/dirty-bitmap.h"

static uint64_t nbits_for(int64_t size, uint64_t gran)
{
    return size <= 0 ? 0 : (uint64_t)BD_DIV_ROUND_UP((uint64_t)size, gran);
}

static void bits_set_range(struct bd_dirty_bitmap *bm, uint64_t first,
                           uint64_t last)
{
    uint64_t i;

    for (i = first; i <= last && i < bm->nbits; i++) {
        uint64_t mask = 1ULL << (i % 64);
        if (!(bm->bits[i / 64] & mask)) {
            bm->bits[i / 64] |= mask;
            bm->set_bits++;
        }
    }
}

static void bits_reset_range(struct bd_dirty_bitmap *bm, uint64_t first,
                             uint64_t last)
{
    uint64_t i;

    for (i = first; i <= last && i < bm->nbits; i++) {
        uint64_t mask = 1ULL << (i % 64);
        if (bm->bits[i / 64] & mask) {
            bm->bits[i / 64] &= ~mask;
            bm->set_bits--;
        }
    }
}

static void set_locked(struct bd_dirty_bitmap *bm, int64_t off, int64_t bytes)
{
    if (bytes <= 0 || bm->nbits == 0) {
        return;
    }
    bits_set_range(bm, (uint64_t)off / bm->granularity,
                   (uint64_t)(off + bytes - 1) / bm->granularity);
}

void bd_dirty_bitmaps_mark(struct bd_node *bs, int64_t off, int64_t bytes)
{
    struct bd_list *pos;

    if (bd_list_empty(&bs->bitmaps)) {
        return;
    }
    pthread_mutex_lock(&bs->bitmaps_lock);
    bd_list_for_each(pos, &bs->bitmaps) {
        struct bd_dirty_bitmap *bm =
            BD_LIST_ENTRY(pos, struct bd_dirty_bitmap, link);
        if (bm->enabled) {
            set_locked(bm, off, bytes);
        }
    }
    pthread_mutex_unlock(&bs->bitmaps_lock);
}

static void resize_locked(struct bd_dirty_bitmap *bm, int64_t size)
{
    uint64_t nbits = nbits_for(size, bm->granularity);
    uint64_t words = BD_DIV_ROUND_UP(nbits, 64);
    uint64_t old_words = BD_DIV_ROUND_UP(bm->nbits, 64);

    if (nbits < bm->nbits) {
        bits_reset_range(bm, nbits, bm->nbits - 1);
    }
    bm->bits = bd_realloc(bm->bits, (words ? words : 1) * sizeof(uint64_t));
    if (words > old_words) {
        memset(bm->bits + old_words, 0,
               (words - old_words) * sizeof(uint64_t));
    }
    bm->nbits = nbits;
    bm->size = size;
}

void bd_dirty_bitmaps_truncate(struct bd_node *bs, int64_t size)
{
    struct bd_list *pos;

    if (size < 0) {
        return;
    }
    pthread_mutex_lock(&bs->bitmaps_lock);
    bd_list_for_each(pos, &bs->bitmaps) {
        resize_locked(BD_LIST_ENTRY(pos, struct bd_dirty_bitmap, link), size);
    }
    pthread_mutex_unlock(&bs->bitmaps_lock);
}

struct bd_dirty_bitmap *bd_dirty_bitmap_create(struct bd_node *bs,
                                               uint64_t granularity,
                                               const char *name,
                                               struct bd_error **errp)
{
    struct bd_dirty_bitmap *bm = NULL;
    int64_t size = bd_getlength(bs);

    if (size < 0) {
        bd_error_setg_errno(errp, (int)-size, "could not get length of device");
        return NULL;
    }
    if (name && bd_dirty_bitmap_find(bs, name)) {
        bd_error_setg(errp, "Bitmap already exists: %s", name);
        return NULL;
    }
    bm = bd_malloc0(sizeof(*bm));
    bm->node = bs;
    bm->name = bd_strdup(name);
    bm->granularity = granularity;
    bm->enabled = true;
    resize_locked(bm, size);
    pthread_mutex_lock(&bs->bitmaps_lock);
    /* Newest first, as QEMU lists them. */
    bd_list_add_head(&bs->bitmaps, &bm->link);
    pthread_mutex_unlock(&bs->bitmaps_lock);
    return bm;
}

void bd_dirty_bitmap_release(struct bd_dirty_bitmap *bm)
{
    struct bd_node *bs = bm->node;

    pthread_mutex_lock(&bs->bitmaps_lock);
    bd_list_del(&bm->link);
    pthread_mutex_unlock(&bs->bitmaps_lock);
    free(bm->name);
    free(bm->bits);
    free(bm);
}

struct bd_dirty_bitmap *bd_dirty_bitmap_find(struct bd_node *bs,
                                             const char *name)
{
    struct bd_list *pos;
    struct bd_dirty_bitmap *found = NULL;

    pthread_mutex_lock(&bs->bitmaps_lock);
    bd_list_for_each(pos, &bs->bitmaps) {
        struct bd_dirty_bitmap *bm =
            BD_LIST_ENTRY(pos, struct bd_dirty_bitmap, link);
        if (bm->name && !strcmp(bm->name, name)) {
            found = bm;
            break;
        }
    }
    pthread_mutex_unlock(&bs->bitmaps_lock);
    return found;
}

void bd_dirty_bitmap_set(struct bd_dirty_bitmap *bm, int64_t off,
                         int64_t bytes)
{
    pthread_mutex_lock(&bm->node->bitmaps_lock);
    set_locked(bm, off, bytes);
    pthread_mutex_unlock(&bm->node->bitmaps_lock);
}

void bd_dirty_bitmap_reset(struct bd_dirty_bitmap *bm, int64_t off,
                           int64_t bytes)
{
    pthread_mutex_lock(&bm->node->bitmaps_lock);
    if (bytes > 0 && bm->nbits) {
        bits_reset_range(bm, (uint64_t)off / bm->granularity,
                         (uint64_t)(off + bytes - 1) / bm->granularity);
    }
    pthread_mutex_unlock(&bm->node->bitmaps_lock);
}

void bd_dirty_bitmap_clear(struct bd_dirty_bitmap *bm)
{
    pthread_mutex_lock(&bm->node->bitmaps_lock);
    memset(bm->bits, 0, BD_DIV_ROUND_UP(bm->nbits, 64) * sizeof(uint64_t));
    bm->set_bits = 0;
    pthread_mutex_unlock(&bm->node->bitmaps_lock);
}

bool bd_dirty_bitmap_get(struct bd_dirty_bitmap *bm, int64_t off)
{
    uint64_t i = (uint64_t)off / bm->granularity;
    bool r;

    pthread_mutex_lock(&bm->node->bitmaps_lock);
    r = i < bm->nbits && (bm->bits[i / 64] & (1ULL << (i % 64)));
    pthread_mutex_unlock(&bm->node->bitmaps_lock);
    return r;
}

uint64_t bd_dirty_bitmap_count(struct bd_dirty_bitmap *bm)
{
    uint64_t n;

    pthread_mutex_lock(&bm->node->bitmaps_lock);
    n = bm->set_bits * bm->granularity;
    pthread_mutex_unlock(&bm->node->bitmaps_lock);
    return n;
}

int64_t bd_dirty_bitmap_next_dirty(struct bd_dirty_bitmap *bm, int64_t off)
{
    uint64_t i = (uint64_t)off / bm->granularity;
    int64_t r = -1;

    pthread_mutex_lock(&bm->node->bitmaps_lock);
    while (i < bm->nbits) {
        uint64_t w = bm->bits[i / 64] >> (i % 64);
        if (w) {
            i += (uint64_t)__builtin_ctzll(w);
            if (i < bm->nbits) {
                r = (int64_t)(i * bm->granularity);
            }
            break;
        }
        i = (i / 64 + 1) * 64;
    }
    pthread_mutex_unlock(&bm->node->bitmaps_lock);
    if (r >= 0 && r < off) {
        r = off;
    }
    return r;
}

void bd_dirty_bitmap_merge(struct bd_dirty_bitmap *dst,
                           struct bd_dirty_bitmap *src)
{
    uint64_t *copy = NULL;
    uint64_t nbits;
    uint64_t gran;
    uint64_t i;

    /* Copy the source first so that dst == src and cross-node merges need
     * only one lock at a time. */
    pthread_mutex_lock(&src->node->bitmaps_lock);
    nbits = src->nbits;
    gran = src->granularity;
    copy = bd_malloc((BD_DIV_ROUND_UP(nbits, 64) + 1) * sizeof(uint64_t));
    memcpy(copy, src->bits, BD_DIV_ROUND_UP(nbits, 64) * sizeof(uint64_t));
    pthread_mutex_unlock(&src->node->bitmaps_lock);

    pthread_mutex_lock(&dst->node->bitmaps_lock);
    for (i = 0; i < nbits; i++) {
        if (copy[i / 64] & (1ULL << (i % 64))) {
            set_locked(dst, (int64_t)(i * gran), (int64_t)gran);
        }
    }
    pthread_mutex_unlock(&dst->node->bitmaps_lock);
    free(copy);
}

uint64_t *bd_dirty_bitmap_backup(struct bd_dirty_bitmap *bm)
{
    size_t n;
    uint64_t *copy = NULL;

    pthread_mutex_lock(&bm->node->bitmaps_lock);
    n = BD_DIV_ROUND_UP(bm->nbits, 64);
    copy = bd_malloc((n + 1) * sizeof(uint64_t));
    memcpy(copy, bm->bits, n * sizeof(uint64_t));
    pthread_mutex_unlock(&bm->node->bitmaps_lock);
    return copy;
}

void bd_dirty_bitmap_restore(struct bd_dirty_bitmap *bm, uint64_t *backup)
{
    size_t n;
    uint64_t i;

    pthread_mutex_lock(&bm->node->bitmaps_lock);
    n = BD_DIV_ROUND_UP(bm->nbits, 64);
    memcpy(bm->bits, backup, n * sizeof(uint64_t));
    bm->set_bits = 0;
    for (i = 0; i < n; i++) {
        bm->set_bits += (uint64_t)__builtin_popcountll(bm->bits[i]);
    }
    pthread_mutex_unlock(&bm->node->bitmaps_lock);
    free(backup);
}

json_t *bd_dirty_bitmap_query(struct bd_node *bs)
{
    json_t *list = json_array();
    struct bd_list *pos;

    pthread_mutex_lock(&bs->bitmaps_lock);
    bd_list_for_each(pos, &bs->bitmaps) {
        struct bd_dirty_bitmap *bm =
            BD_LIST_ENTRY(pos, struct bd_dirty_bitmap, link);
        json_t *o;

        /* Anonymous bitmaps belong to jobs; QEMU lists them without a
         * name, and so do we. */
        o = json_object();
        if (bm->name) {
            json_object_set_new(o, "name", json_string(bm->name));
        }
        json_object_set_new(o, "recording",
                            json_boolean(bm->enabled ||
                                         (bm->successor &&
                                          bm->successor->enabled)));
        json_object_set_new(o, "persistent", json_boolean(bm->persistent));
        json_object_set_new(o, "busy", json_boolean(bm->busy));
        json_object_set_new(o, "count",
                            json_integer((json_int_t)(bm->set_bits *
                                                      bm->granularity)));
        json_object_set_new(o, "granularity",
                            json_integer((json_int_t)bm->granularity));
        if (bm->inconsistent) {
            json_object_set_new(o, "inconsistent", json_true());
        }
        json_array_append_new(list, o);
    }
    pthread_mutex_unlock(&bs->bitmaps_lock);
    return list;
}

/* ------------------------------------------------------------------ */
/* Usage rules and job successors                                       */

int bd_dirty_bitmap_check(struct bd_dirty_bitmap *bm, unsigned flags,
                          struct bd_error **errp)
{
    const char *name = bm->name ? bm->name : "";

    if ((flags & BD_BITMAP_BUSY) && bm->busy) {
        bd_error_setg(errp, "Bitmap '%s' is currently in use by another "
                      "operation and cannot be used", name);
        return -EBUSY;
    }
    if ((flags & BD_BITMAP_RO) && bm->readonly) {
        bd_error_setg(errp, "Bitmap '%s' is readonly and cannot be modified",
                      name);
        return -EPERM;
    }
    if ((flags & BD_BITMAP_INCONSISTENT) && bm->inconsistent) {
        bd_error_setg(errp, "Bitmap '%s' is inconsistent and cannot be used",
                      name);
        bd_error_append_hint(errp, "Try block-dirty-bitmap-remove to delete "
                             "this bitmap from disk\n");
        return -EINVAL;
    }
    return 0;
}

bool bd_dirty_bitmap_recording(struct bd_dirty_bitmap *bm)
{
    bool r;

    pthread_mutex_lock(&bm->node->bitmaps_lock);
    r = bm->enabled || (bm->successor && bm->successor->enabled);
    pthread_mutex_unlock(&bm->node->bitmaps_lock);
    return r;
}

void bd_dirty_bitmap_set_enabled(struct bd_dirty_bitmap *bm, bool enabled)
{
    pthread_mutex_lock(&bm->node->bitmaps_lock);
    bm->enabled = enabled;
    pthread_mutex_unlock(&bm->node->bitmaps_lock);
}

int64_t bd_dirty_bitmap_size(struct bd_dirty_bitmap *bm)
{
    int64_t r;

    pthread_mutex_lock(&bm->node->bitmaps_lock);
    r = bm->size;
    pthread_mutex_unlock(&bm->node->bitmaps_lock);
    return r;
}

int bd_dirty_bitmap_create_successor(struct bd_dirty_bitmap *bm,
                                     struct bd_error **errp)
{
    struct bd_dirty_bitmap *succ;

    if (bd_dirty_bitmap_check(bm, BD_BITMAP_BUSY, errp) < 0) {
        return -EBUSY;
    }
    if (bm->successor) {
        bd_error_setg(errp, "Cannot create a successor for a bitmap that "
                      "already has one");
        return -EINVAL;
    }
    succ = bd_dirty_bitmap_create(bm->node, bm->granularity, NULL, errp);
    if (!succ) {
        return -ENOMEM;
    }
    /* Switch under the lock so that no write is lost between the two:
     * every write lands in exactly one of them. */
    pthread_mutex_lock(&bm->node->bitmaps_lock);
    succ->enabled = bm->enabled;
    bm->enabled = false;
    bm->busy = true;
    bm->successor = succ;
    pthread_mutex_unlock(&bm->node->bitmaps_lock);
    return 0;
}

static void end_freeze(struct bd_dirty_bitmap *bm, bool keep_old)
{
    struct bd_dirty_bitmap *succ = bm->successor;

    if (!succ) {
        return;
    }
    /* Hand recording back to bm first, under the lock, so that a write
     * racing with us lands in bm itself or in succ before we merge it. */
    pthread_mutex_lock(&bm->node->bitmaps_lock);
    if (!keep_old) {
        memset(bm->bits, 0, BD_DIV_ROUND_UP(bm->nbits, 64) * sizeof(uint64_t));
        bm->set_bits = 0;
    }
    bm->enabled = succ->enabled;
    succ->enabled = false;
    pthread_mutex_unlock(&bm->node->bitmaps_lock);
    bd_dirty_bitmap_merge(bm, succ);
    pthread_mutex_lock(&bm->node->bitmaps_lock);
    bm->busy = false;
    bm->successor = NULL;
    pthread_mutex_unlock(&bm->node->bitmaps_lock);
    bd_dirty_bitmap_release(succ);
}

void bd_dirty_bitmap_abdicate(struct bd_dirty_bitmap *bm)
{
    end_freeze(bm, false);
}

void bd_dirty_bitmap_reclaim(struct bd_dirty_bitmap *bm)
{
    end_freeze(bm, true);
}

static const struct qapi_member block_dirty_bitmap_members[] = {
    { "node", &qapi_type_str, false },
    { "name", &qapi_type_str, false },
    { NULL, NULL, false },
};
const struct qapi_type bd_qapi_block_dirty_bitmap = {
    .kind = QAPI_STRUCT, .name = "BlockDirtyBitmap",
    .members = block_dirty_bitmap_members,
};
