/*
 * driver/qcow2-cluster.c - guest-to-host mapping: L1/L2 lookups, L2 table
 * allocation, L1 entry updates and L1 growth. Every call runs with the
 * metadata lock held.
 */
#include "common/config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/cutils.h"
#include "driver/qcow2-int.h"

enum qcow2_cluster_type qcow2_get_cluster_type(const struct qcow2_state *s,
                                               uint64_t l2e)
{
    if (l2e & QCOW_OFLAG_COMPRESSED) {
        return QCOW2_CLUSTER_COMPRESSED;
    }
    if ((l2e & QCOW_OFLAG_ZERO) && s->version >= 3) {
        return (l2e & L2E_OFFSET_MASK) ? QCOW2_CLUSTER_ZERO_ALLOC
                                       : QCOW2_CLUSTER_ZERO_PLAIN;
    }
    if (!(l2e & L2E_OFFSET_MASK)) {
        return QCOW2_CLUSTER_UNALLOCATED;
    }
    return QCOW2_CLUSTER_NORMAL;
}

static int check_l2_offset(struct bd_node *bs, uint32_t l1i, uint64_t *l2_off)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t o = s->l1_table[l1i] & L1E_OFFSET_MASK;

    if (o && qcow2_offset_into_cluster(s, o)) {
        return qcow2_signal_corruption(bs, true, (int64_t)o, -1,
                                       "L2 table offset %#" PRIx64
                                       " unaligned (L1 index: %#" PRIx32 ")",
                                       o, l1i);
    }
    *l2_off = o;
    return 0;
}

int qcow2_get_host_offset(struct bd_node *bs, uint64_t off, uint64_t bytes,
                          uint64_t *count, uint64_t *l2e_out)
{
    struct qcow2_state *s = bs->opaque;
    uint32_t l1i = qcow2_l1_index(s, off);
    uint32_t l2i = qcow2_l2_index(s, off);
    uint64_t in_cluster = qcow2_offset_into_cluster(s, off);
    uint64_t l2_range = (uint64_t)(s->l2_size - l2i) << s->cluster_bits;
    uint64_t max = BD_MIN(bytes, l2_range - in_cluster);
    uint64_t l2_off, l2e, first, n;
    enum qcow2_cluster_type type;
    uint64_t *table;
    uint32_t i;
    int ret;

    *l2e_out = 0;
    if (l1i >= s->l1_size) {
        *count = max;
        return 0;
    }
    ret = check_l2_offset(bs, l1i, &l2_off);
    if (ret < 0) {
        return ret;
    }
    if (!l2_off) {
        *count = max;
        return 0;
    }
    ret = qcow2_cache_get(bs, s->l2_cache, l2_off, (void **)&table);
    if (ret < 0) {
        return ret;
    }
    first = qcow2_be64(&table[l2i]);
    type = qcow2_get_cluster_type(s, first);
    if ((type == QCOW2_CLUSTER_NORMAL || type == QCOW2_CLUSTER_ZERO_ALLOC) &&
        qcow2_offset_into_cluster(s, first & L2E_OFFSET_MASK)) {
        qcow2_cache_put(s->l2_cache, (void **)&table);
        return qcow2_signal_corruption(bs, true, -1, -1,
                                       "Cluster allocation offset %#"
                                       PRIx64 " unaligned (L2 offset: %#"
                                       PRIx64 ", L2 index: %#" PRIx32 ")",
                                       (uint64_t)(first & L2E_OFFSET_MASK),
                                       l2_off, l2i);
    }
    n = s->cluster_size - in_cluster;
    if (type != QCOW2_CLUSTER_COMPRESSED) {
        for (i = l2i + 1; i < s->l2_size && n < max; i++) {
            l2e = qcow2_be64(&table[i]);
            if (qcow2_get_cluster_type(s, l2e) != type) {
                break;
            }
            if (type == QCOW2_CLUSTER_NORMAL &&
                ((l2e & L2E_OFFSET_MASK) != (first & L2E_OFFSET_MASK) +
                 ((uint64_t)(i - l2i) << s->cluster_bits) ||
                 (l2e & QCOW_OFLAG_COPIED) != (first & QCOW_OFLAG_COPIED))) {
                break;
            }
            n += s->cluster_size;
        }
    }
    qcow2_cache_put(s->l2_cache, (void **)&table);
    *count = BD_MIN(n, max);
    *l2e_out = first;
    return 0;
}

int qcow2_write_l1_entry(struct bd_node *bs, uint32_t i)
{
    struct qcow2_state *s = bs->opaque;
    uint32_t align = BD_MAX(8u, BD_MIN(bs->file->node->bl.request_alignment,
                                       s->cluster_size));
    uint32_t per = align / 8;
    uint32_t start = i - i % per;
    uint8_t *buf = bd_memalign(4096, align);
    uint32_t k;
    int ret;

    memset(buf, 0, align);
    for (k = 0; k < per && start + k < s->l1_size; k++) {
        qcow2_put_be64(buf + 8 * k, s->l1_table[start + k]);
    }
    bd_event(bs->file, BD_EV_L1_UPDATE);
    ret = bd_child_pwrite(bs->file, (int64_t)(s->l1_offset + 8ULL * start),
                          align, buf, 0);
    if (ret == 0) {
        ret = bd_child_flush(bs->file);
    }
    free(buf);
    return ret;
}

/* Allocate a new L2 table for L1 entry l1i (copying the old one, if any). */
static int l2_allocate(struct bd_node *bs, uint32_t l1i, uint64_t **table)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t old = s->l1_table[l1i] & L1E_OFFSET_MASK;
    uint64_t old_entry = s->l1_table[l1i];
    uint64_t *t = NULL;
    int64_t l2_off;
    int ret;

    l2_off = qcow2_alloc_clusters(bs, s->cluster_size);
    if (l2_off < 0) {
        return (int)l2_off;
    }
    /* The new table's refcount goes to disk before anything points at it. */
    ret = qcow2_cache_flush(bs, s->refblock_cache);
    if (ret < 0) {
        goto fail;
    }
    ret = qcow2_cache_get_empty(bs, s->l2_cache, (uint64_t)l2_off,
                                (void **)&t);
    if (ret < 0) {
        goto fail;
    }
    if (old) {
        uint64_t *ot;

        bd_event(bs->file, BD_EV_L2_ALLOC_COW_READ);
        ret = qcow2_cache_get(bs, s->l2_cache, old, (void **)&ot);
        if (ret < 0) {
            qcow2_cache_put(s->l2_cache, (void **)&t);
            goto fail;
        }
        memcpy(t, ot, s->cluster_size);
        qcow2_cache_put(s->l2_cache, (void **)&ot);
    } else {
        memset(t, 0, s->cluster_size);
    }
    bd_event(bs->file, BD_EV_L2_ALLOC_WRITE);
    qcow2_cache_mark_dirty(s->l2_cache, t);
    ret = qcow2_cache_flush(bs, s->l2_cache);
    if (ret < 0) {
        qcow2_cache_put(s->l2_cache, (void **)&t);
        qcow2_cache_discard(s->l2_cache, (uint64_t)l2_off);
        goto fail;
    }
    s->l1_table[l1i] = (uint64_t)l2_off | QCOW_OFLAG_COPIED;
    ret = qcow2_write_l1_entry(bs, l1i);
    if (ret < 0) {
        s->l1_table[l1i] = old_entry;
        qcow2_cache_put(s->l2_cache, (void **)&t);
        qcow2_cache_discard(s->l2_cache, (uint64_t)l2_off);
        goto fail;
    }
    if (old) {
        qcow2_free_clusters(bs, old, s->cluster_size);
    }
    *table = t;
    return 0;

fail:
    qcow2_free_clusters(bs, (uint64_t)l2_off, s->cluster_size);
    return ret;
}

int qcow2_get_l2_for_write(struct bd_node *bs, uint64_t off,
                           uint64_t **l2_table, uint32_t *index)
{
    struct qcow2_state *s = bs->opaque;
    uint32_t l1i = qcow2_l1_index(s, off);
    uint64_t l2_off;
    int ret;

    if (l1i >= s->l1_size) {
        ret = qcow2_grow_l1_table(bs, (uint64_t)l1i + 1);
        if (ret < 0) {
            return ret;
        }
    }
    ret = check_l2_offset(bs, l1i, &l2_off);
    if (ret < 0) {
        return ret;
    }
    *index = qcow2_l2_index(s, off);
    if (l2_off && (s->l1_table[l1i] & QCOW_OFLAG_COPIED)) {
        return qcow2_cache_get(bs, s->l2_cache, l2_off, (void **)l2_table);
    }
    return l2_allocate(bs, l1i, l2_table);
}

/* Move the L1 table to a new place with exactly new_size entries. */
int qcow2_resize_l1(struct bd_node *bs, uint64_t new_size)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t bytes = new_size * 8;
    uint64_t old_off = s->l1_offset;
    uint64_t old_bytes = (uint64_t)s->l1_size * 8;
    uint64_t *nt;
    uint8_t *buf;
    uint8_t hdr[12];
    int64_t new_off;
    uint64_t i;
    int ret;

    if (bytes > QCOW2_MAX_L1_BYTES) {
        return -EFBIG;
    }
    bd_event(bs->file, BD_EV_L1_GROW_ALLOC_TABLE);
    new_off = qcow2_alloc_clusters(bs, BD_MAX(bytes, 1));
    if (new_off < 0) {
        return (int)new_off;
    }
    ret = qcow2_cache_flush(bs, s->refblock_cache);
    if (ret < 0) {
        goto fail;
    }
    buf = bd_memalign(4096, BD_ROUND_UP(BD_MAX(bytes, 8), 512));
    memset(buf, 0, BD_ROUND_UP(BD_MAX(bytes, 8), 512));
    for (i = 0; i < BD_MIN(new_size, (uint64_t)s->l1_size); i++) {
        qcow2_put_be64(buf + 8 * i, s->l1_table[i]);
    }
    bd_event(bs->file, BD_EV_L1_GROW_WRITE_TABLE);
    ret = bytes ? bd_child_pwrite(bs->file, new_off, (int64_t)bytes, buf, 0)
                : 0;
    free(buf);
    if (ret == 0) {
        ret = bd_child_flush(bs->file);
    }
    if (ret < 0) {
        goto fail;
    }
    bd_event(bs->file, BD_EV_L1_GROW_ACTIVATE_TABLE);
    qcow2_put_be32(hdr, (uint32_t)new_size);
    qcow2_put_be64(hdr + 4, (uint64_t)new_off);
    ret = bd_child_pwrite(bs->file, QH_L1_SIZE, 12, hdr, 0);
    if (ret == 0) {
        ret = bd_child_flush(bs->file);
    }
    if (ret < 0) {
        goto fail;
    }
    nt = bd_malloc0(BD_MAX(bytes, 8));
    for (i = 0; i < BD_MIN(new_size, (uint64_t)s->l1_size); i++) {
        nt[i] = s->l1_table[i];
    }
    free(s->l1_table);
    s->l1_table = nt;
    s->l1_size = (uint32_t)new_size;
    s->l1_offset = (uint64_t)new_off;
    if (old_bytes) {
        qcow2_free_clusters(bs, old_off, old_bytes);
    }
    return 0;

fail:
    qcow2_free_clusters(bs, (uint64_t)new_off, BD_MAX(bytes, 1));
    return ret;
}

int qcow2_grow_l1_table(struct bd_node *bs, uint64_t min_size)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t new_size = s->l1_size;

    if (min_size <= s->l1_size) {
        return 0;
    }
    if (!new_size) {
        new_size = 1;
    }
    while (min_size > new_size) {
        new_size = BD_DIV_ROUND_UP(new_size * 3, 2);
    }
    if (new_size * 8 > QCOW2_MAX_L1_BYTES) {
        if (min_size * 8 > QCOW2_MAX_L1_BYTES) {
            return -EFBIG;
        }
        new_size = QCOW2_MAX_L1_BYTES / 8;
    }
    return qcow2_resize_l1(bs, new_size);
}
