/*
 * driver/qcow2-refcount.c - refcount table and blocks: lookup, updates,
 * cluster allocation and freeing, refcount-table growth.
 *
 * Refcount entries may be 1..64 bits wide (refcount_order 0..6); all
 * widths are read and written through one pair of accessors. Every call
 * here runs with the metadata lock held.
 *
 * Events follow QEMU's points: refblock_alloc at the start of every
 * "find the refcount block for cluster N" step, refblock_load before each
 * lookup of an existing block, refblock_alloc_write/hookup when a new block
 * is written and linked into the table, reftable_grow and the
 * refblock_alloc_write_blocks/_table/switch_table trio when the table
 * itself moves, cluster_alloc / cluster_alloc_bytes / cluster_free.
 */
#include "common/config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cutils.h"
#include "driver/qcow2-int.h"

uint64_t qcow2_refcount_get_entry(const void *block, int order,
                                  uint64_t index)
{
    const uint8_t *b = block;
    int bits = 1 << order;

    switch (order) {
    case 3:
        return b[index];
    case 4:
        return ((uint64_t)b[2 * index] << 8) | b[2 * index + 1];
    case 5:
        return qcow2_be32(b + 4 * index);
    case 6:
        return qcow2_be64(b + 8 * index);
    default: {
        /* Sub-byte widths: entry i lives in byte i*bits/8, LSB first. */
        uint64_t bit = index * (uint64_t)bits;
        return (b[bit / 8] >> (bit % 8)) & ((1u << bits) - 1);
    }
    }
}

void qcow2_refcount_set_entry(void *block, int order, uint64_t index,
                              uint64_t value)
{
    uint8_t *b = block;
    int bits = 1 << order;

    switch (order) {
    case 3:
        b[index] = (uint8_t)value;
        break;
    case 4:
        b[2 * index] = (uint8_t)(value >> 8);
        b[2 * index + 1] = (uint8_t)value;
        break;
    case 5:
        qcow2_put_be32(b + 4 * index, (uint32_t)value);
        break;
    case 6:
        qcow2_put_be64(b + 8 * index, value);
        break;
    default: {
        uint64_t bit = index * (uint64_t)bits;
        uint8_t mask = (uint8_t)(((1u << bits) - 1) << (bit % 8));

        b[bit / 8] = (uint8_t)((b[bit / 8] & ~mask) |
                               ((value << (bit % 8)) & mask));
        break;
    }
    }
}

int qcow2_refcount_init(struct bd_node *bs, struct bd_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    size_t bytes = (size_t)s->reftable_size * 8;
    uint8_t *buf;
    uint32_t i;
    int ret;

    s->refblock_cache = qcow2_cache_create(4, s->cluster_size, -1,
                                           BD_EV_REFBLOCK_UPDATE_PART);
    s->reftable = bd_malloc0(BD_MAX(bytes, 8));
    if (!bytes) {
        return 0;
    }
    buf = bd_malloc(bytes);
    bd_event(bs->file, BD_EV_REFTABLE_LOAD);
    ret = bd_child_pread(bs->file, (int64_t)s->reftable_offset,
                         (int64_t)bytes, buf, 0);
    if (ret < 0) {
        free(buf);
        bd_error_setg_errno(errp, -ret, "Could not initialize refcount "
                            "handling");
        return ret;
    }
    for (i = 0; i < s->reftable_size; i++) {
        s->reftable[i] = qcow2_be64(buf + 8 * i);
    }
    free(buf);
    return 0;
}

void qcow2_refcount_close(struct bd_node *bs)
{
    struct qcow2_state *s = bs->opaque;

    qcow2_cache_destroy(s->refblock_cache);
    s->refblock_cache = NULL;
    free(s->reftable);
    s->reftable = NULL;
}

/* Refcount block offset for a reftable entry, checked. */
static int refblock_offset(struct bd_node *bs, uint64_t rt_index,
                           uint64_t *off)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t o;

    /* Defined on every path, the error path included. */
    *off = 0;
    if (rt_index >= s->reftable_size) {
        return 0;
    }
    o = s->reftable[rt_index] & REFT_OFFSET_MASK;
    if (o && qcow2_offset_into_cluster(s, o)) {
        return qcow2_signal_corruption(bs, true, (int64_t)o, -1,
                                       "Refblock offset %#" PRIx64
                                       " unaligned (reftable index: %#"
                                       PRIx64 ")", o, rt_index);
    }
    *off = o;
    return 0;
}

int qcow2_get_refcount(struct bd_node *bs, uint64_t cluster_index,
                       uint64_t *refcount)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t rt_index = cluster_index >> s->refblock_bits;
    uint64_t rb;
    void *block;
    int ret;

    ret = refblock_offset(bs, rt_index, &rb);
    if (ret < 0) {
        return ret;
    }
    if (!rb) {
        *refcount = 0;
        return 0;
    }
    ret = qcow2_cache_get(bs, s->refblock_cache, rb, &block);
    if (ret < 0) {
        return ret;
    }
    *refcount = qcow2_refcount_get_entry(block, s->refcount_order,
                                         cluster_index &
                                         (s->refblock_size - 1));
    qcow2_cache_put(s->refblock_cache, &block);
    return 0;
}

/* First run of n clusters with refcount 0 at or after the hint. */
static int64_t find_free(struct bd_node *bs, uint64_t n)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t start = s->free_cluster_index;
    uint64_t i;
    int ret;

retry:
    for (i = 0; i < n; i++) {
        uint64_t rc;

        ret = qcow2_get_refcount(bs, start + i, &rc);
        if (ret < 0) {
            return ret;
        }
        if (rc) {
            start += i + 1;
            goto retry;
        }
    }
    /* The offset field of L2/reftable entries ends at bit 55. */
    if ((start + n) << s->cluster_bits > (1ULL << 56)) {
        return -EFBIG;
    }
    if (n == 1 || s->free_cluster_index == start) {
        s->free_cluster_index = start + (n == 1 ? 1 : n);
    }
    return (int64_t)(start << s->cluster_bits);
}

static int ensure_refblock(struct bd_node *bs, uint64_t cluster_index);

/*
 * Move the refcount table: new refcount blocks for [area, area_end) and
 * the new table go at the end of the image, describing themselves.
 */
static int grow_reftable(struct bd_node *bs, uint64_t need_entries)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t cs = s->cluster_size;
    int64_t flen = bd_getlength(bs->file->node);
    uint64_t area, nb_blocks = 0, table_clusters, new_size, area_end;
    uint64_t first_rb, last_rb, prev = (uint64_t)-1, i, c;
    uint64_t *new_table = NULL;
    uint8_t *buf = NULL;
    uint8_t hdr[12];
    uint64_t old_offset = s->reftable_offset;
    uint32_t old_clusters;
    int ret;

    if (flen < 0) {
        return (int)flen;
    }
    bd_event(bs->file, BD_EV_REFTABLE_GROW);
    area = BD_MAX(qcow2_size_to_clusters(s, (uint64_t)flen),
                  s->free_cluster_index);
    new_size = BD_MAX(need_entries, (uint64_t)s->reftable_size * 3 / 2 + 1);
    /* Iterate until the refcount blocks and the table cover themselves. */
    for (;;) {
        table_clusters = BD_DIV_ROUND_UP(new_size * 8, cs);
        area_end = area + nb_blocks + table_clusters;
        first_rb = area >> s->refblock_bits;
        last_rb = (area_end - 1) >> s->refblock_bits;
        if (last_rb + 1 > new_size) {
            new_size = last_rb + 1;
            continue;
        }
        c = 0;
        for (i = first_rb; i <= last_rb; i++) {
            if (i >= s->reftable_size || !s->reftable[i]) {
                c++;
            }
        }
        if (c == nb_blocks) {
            break;
        }
        nb_blocks = c;
    }
    if (new_size * 8 > QCOW2_MAX_REFTABLE_BYTES) {
        return -EFBIG;
    }
    new_size = table_clusters * cs / 8;
    new_table = bd_malloc0(table_clusters * cs);
    for (i = 0; i < s->reftable_size; i++) {
        new_table[i] = s->reftable[i];
    }
    /* Write the new refcount blocks; existing ones get +1 in place. */
    bd_event(bs->file, BD_EV_REFBLOCK_ALLOC_WRITE_BLOCKS);
    buf = bd_memalign(4096, cs);
    c = area;
    for (i = first_rb; i <= last_rb; i++) {
        uint64_t lo = BD_MAX(area, i << s->refblock_bits);
        uint64_t hi = BD_MIN(area_end, (i + 1) << s->refblock_bits);
        uint64_t k;

        if (i < s->reftable_size && s->reftable[i]) {
            void *block;

            ret = qcow2_cache_get(bs, s->refblock_cache,
                                  s->reftable[i] & REFT_OFFSET_MASK, &block);
            if (ret < 0) {
                goto out;
            }
            for (k = lo; k < hi; k++) {
                qcow2_refcount_set_entry(block, s->refcount_order,
                                         k & (s->refblock_size - 1), 1);
            }
            qcow2_cache_mark_dirty(s->refblock_cache, block);
            qcow2_cache_put(s->refblock_cache, &block);
            continue;
        }
        memset(buf, 0, cs);
        for (k = lo; k < hi; k++) {
            qcow2_refcount_set_entry(buf, s->refcount_order,
                                     k & (s->refblock_size - 1), 1);
        }
        new_table[i] = c << s->cluster_bits;
        ret = bd_child_pwrite(bs->file, (int64_t)(c << s->cluster_bits),
                              (int64_t)cs, buf, 0);
        if (ret < 0) {
            goto out;
        }
        c++;
    }
    ret = qcow2_cache_flush(bs, s->refblock_cache);
    if (ret < 0) {
        goto out;
    }
    /* Write the new table. */
    bd_event(bs->file, BD_EV_REFBLOCK_ALLOC_WRITE_TABLE);
    for (i = 0; i < new_size; i++) {
        qcow2_put_be64((uint8_t *)&new_table[i], new_table[i]);
    }
    ret = bd_child_pwrite(bs->file, (int64_t)(c << s->cluster_bits),
                          (int64_t)(table_clusters * cs), new_table, 0);
    for (i = 0; i < new_size; i++) {
        new_table[i] = qcow2_be64(&new_table[i]);
    }
    if (ret == 0) {
        ret = bd_child_flush(bs->file);
    }
    if (ret < 0) {
        goto out;
    }
    /* Switch the header to it. */
    bd_event(bs->file, BD_EV_REFBLOCK_ALLOC_SWITCH_TABLE);
    qcow2_put_be64(hdr, c << s->cluster_bits);
    qcow2_put_be32(hdr + 8, (uint32_t)table_clusters);
    ret = bd_child_pwrite(bs->file, QH_REFTABLE_OFFSET, 12, hdr, 0);
    if (ret == 0) {
        ret = bd_child_flush(bs->file);
    }
    if (ret < 0) {
        goto out;
    }
    old_clusters = (uint32_t)BD_DIV_ROUND_UP((uint64_t)s->reftable_size * 8,
                                             cs);
    free(s->reftable);
    s->reftable = new_table;
    new_table = NULL;
    s->reftable_size = (uint32_t)new_size;
    s->reftable_offset = c << s->cluster_bits;
    s->free_cluster_index = BD_MAX(s->free_cluster_index, area_end);
    (void)prev;
    qcow2_free_clusters(bs, old_offset, (uint64_t)old_clusters * cs);
    ret = 0;
out:
    free(buf);
    free(new_table);
    return ret;
}

/* Make sure the refcount block covering cluster_index exists. */
static int ensure_refblock(struct bd_node *bs, uint64_t cluster_index)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t rt_index = cluster_index >> s->refblock_bits;
    int64_t new_block;
    void *block;
    uint64_t nb_index;
    uint8_t be[8];
    int ret;

    bd_event(bs->file, BD_EV_REFBLOCK_ALLOC);
    if (rt_index < s->reftable_size && s->reftable[rt_index]) {
        return 0;
    }
    if (rt_index >= s->reftable_size) {
        ret = grow_reftable(bs, rt_index + 1);
        if (ret < 0) {
            return ret;
        }
        if (s->reftable[rt_index]) {
            return 0;
        }
    }
    new_block = find_free(bs, 1);
    if (new_block < 0) {
        return (int)new_block;
    }
    nb_index = (uint64_t)new_block >> s->cluster_bits;
    if ((nb_index >> s->refblock_bits) != rt_index) {
        /* The block lives elsewhere: its own refcount comes first. */
        ret = qcow2_update_refcount(bs, (uint64_t)new_block, 1, 1);
        if (ret < 0) {
            return ret;
        }
    }
    bd_event(bs->file, BD_EV_REFBLOCK_ALLOC_WRITE);
    ret = qcow2_cache_get_empty(bs, s->refblock_cache, (uint64_t)new_block,
                                &block);
    if (ret < 0) {
        return ret;
    }
    memset(block, 0, s->cluster_size);
    if ((nb_index >> s->refblock_bits) == rt_index) {
        qcow2_refcount_set_entry(block, s->refcount_order,
                                 nb_index & (s->refblock_size - 1), 1);
    }
    qcow2_cache_mark_dirty(s->refblock_cache, block);
    qcow2_cache_put(s->refblock_cache, &block);
    ret = qcow2_cache_flush(bs, s->refblock_cache);
    if (ret < 0) {
        qcow2_cache_discard(s->refblock_cache, (uint64_t)new_block);
        return ret;
    }
    bd_event(bs->file, BD_EV_REFBLOCK_ALLOC_HOOKUP);
    qcow2_put_be64(be, (uint64_t)new_block);
    ret = bd_child_pwrite(bs->file, (int64_t)(s->reftable_offset +
                                              rt_index * 8), 8, be, 0);
    if (ret == 0) {
        ret = bd_child_flush(bs->file);
    }
    if (ret < 0) {
        qcow2_cache_discard(s->refblock_cache, (uint64_t)new_block);
        return ret;
    }
    s->reftable[rt_index] = (uint64_t)new_block;
    return 0;
}

int qcow2_update_refcount(struct bd_node *bs, uint64_t offset,
                          uint64_t length, int addend)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t first, last, c;
    int ret;

    if (!length) {
        return 0;
    }
    first = offset >> s->cluster_bits;
    last = (offset + length - 1) >> s->cluster_bits;
    for (c = first; c <= last; c++) {
        uint64_t rt_index = c >> s->refblock_bits;
        uint64_t rb, rc;
        void *block;

        ret = ensure_refblock(bs, c);
        if (ret < 0) {
            return ret;
        }
        ret = refblock_offset(bs, rt_index, &rb);
        if (ret < 0) {
            return ret;
        }
        if (addend < 0) {
            /* The dropped reference must reach the disk first. */
            ret = qcow2_cache_set_dependency(bs, s->refblock_cache,
                                             s->l2_cache);
            if (ret < 0) {
                return ret;
            }
        }
        bd_event(bs->file, BD_EV_REFBLOCK_LOAD);
        ret = qcow2_cache_get(bs, s->refblock_cache, rb, &block);
        if (ret < 0) {
            return ret;
        }
        rc = qcow2_refcount_get_entry(block, s->refcount_order,
                                      c & (s->refblock_size - 1));
        if ((addend < 0 && rc < (uint64_t)-addend) ||
            (addend > 0 && rc + (uint64_t)addend > s->refcount_max)) {
            qcow2_cache_put(s->refblock_cache, &block);
            return -EINVAL;
        }
        rc += (uint64_t)(int64_t)addend;
        qcow2_refcount_set_entry(block, s->refcount_order,
                                 c & (s->refblock_size - 1), rc);
        qcow2_cache_mark_dirty(s->refblock_cache, block);
        qcow2_cache_put(s->refblock_cache, &block);
        if (rc == 0) {
            /* Never pack compressed data into a freed (reusable) cluster. */
            if (s->free_byte_offset &&
                (s->free_byte_offset >> s->cluster_bits) == c) {
                s->free_byte_offset = 0;
            }
            if (c < s->free_cluster_index) {
                s->free_cluster_index = c;
            }
            qcow2_cache_discard(s->l2_cache, c << s->cluster_bits);
            qcow2_cache_discard(s->refblock_cache, c << s->cluster_bits);
        }
    }
    return 0;
}

/* Find n free clusters whose refcount blocks exist, and count them. */
static int64_t alloc_counted(struct bd_node *bs, uint64_t n)
{
    struct qcow2_state *s = bs->opaque;
    int64_t off;
    uint64_t i, rc;
    int ret;

    for (;;) {
        bool still_free = true;

        off = find_free(bs, n);
        if (off < 0) {
            return off;
        }
        /* Creating refcount blocks may take clusters of the run. */
        for (i = 0; i < n; i++) {
            uint64_t c = ((uint64_t)off >> s->cluster_bits) + i;

            if (i == 0 || !(c & (s->refblock_size - 1))) {
                ret = ensure_refblock(bs, c);
                if (ret < 0) {
                    return ret;
                }
            }
        }
        for (i = 0; i < n && still_free; i++) {
            ret = qcow2_get_refcount(bs, ((uint64_t)off >> s->cluster_bits)
                                     + i, &rc);
            if (ret < 0) {
                return ret;
            }
            still_free = rc == 0;
        }
        if (still_free) {
            break;
        }
    }
    ret = qcow2_update_refcount(bs, (uint64_t)off, n << s->cluster_bits, 1);
    if (ret < 0) {
        return ret;
    }
    return off;
}

int64_t qcow2_alloc_clusters(struct bd_node *bs, uint64_t size)
{
    struct qcow2_state *s = bs->opaque;

    bd_event(bs->file, BD_EV_CLUSTER_ALLOC);
    return alloc_counted(bs, qcow2_size_to_clusters(s, size));
}

int64_t qcow2_alloc_clusters_at(struct bd_node *bs, uint64_t offset,
                                uint64_t n)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t first = offset >> s->cluster_bits;
    uint64_t i, rc;
    int ret;

    for (i = 0; i < n; i++) {
        if (i == 0 || !((first + i) & (s->refblock_size - 1))) {
            ret = ensure_refblock(bs, first + i);
            if (ret < 0) {
                return ret;
            }
        }
        ret = qcow2_get_refcount(bs, first + i, &rc);
        if (ret < 0) {
            return ret;
        }
        if (rc) {
            break;
        }
    }
    if (i == 0) {
        return 0;
    }
    ret = qcow2_update_refcount(bs, offset, i << s->cluster_bits, 1);
    if (ret < 0) {
        return ret;
    }
    return (int64_t)i;
}

int64_t qcow2_alloc_bytes(struct bd_node *bs, uint32_t size)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t off = s->free_byte_offset;
    int64_t cl;
    int ret;

    bd_event(bs->file, BD_EV_CLUSTER_ALLOC_BYTES);
    if (off && qcow2_offset_into_cluster(s, off) &&
        s->cluster_size - qcow2_offset_into_cluster(s, off) >= size) {
        uint64_t rc;

        /* Another compressed cluster starts in this host cluster. */
        ret = qcow2_get_refcount(bs, off >> s->cluster_bits, &rc);
        if (ret < 0) {
            return ret;
        }
        if (rc > 0 && rc < s->refcount_max) {
            ret = qcow2_update_refcount(bs, off, 1, 1);
            if (ret < 0) {
                return ret;
            }
            s->free_byte_offset = off + size;
            if (!qcow2_offset_into_cluster(s, s->free_byte_offset)) {
                s->free_byte_offset = 0;
            }
            return (int64_t)off;
        }
    }
    cl = alloc_counted(bs, 1);
    if (cl < 0) {
        return cl;
    }
    s->free_byte_offset = (uint64_t)cl + size;
    if (!qcow2_offset_into_cluster(s, s->free_byte_offset)) {
        s->free_byte_offset = 0;
    }
    return cl;
}

void qcow2_free_clusters(struct bd_node *bs, uint64_t offset,
                         uint64_t length)
{
    int ret;

    bd_event(bs->file, BD_EV_CLUSTER_FREE);
    /* A failure leaks the clusters, which is safe (QEMU's line). */
    ret = qcow2_update_refcount(bs, offset, length, -1);
    if (ret < 0) {
        fprintf(stderr, "qcow2_free_clusters failed: %s\n",
                bd_strerror(-ret));
    }
}

void qcow2_free_any_cluster(struct bd_node *bs, uint64_t l2e, uint32_t n)
{
    struct qcow2_state *s = bs->opaque;

    switch (qcow2_get_cluster_type(s, l2e)) {
    case QCOW2_CLUSTER_COMPRESSED: {
        uint64_t coff = l2e & s->cluster_offset_mask;
        uint64_t nsec = ((l2e >> s->csize_shift) & s->csize_mask) + 1;
        uint64_t csize = nsec * 512 - (coff & 511);

        qcow2_free_clusters(bs, coff, csize);
        break;
    }
    case QCOW2_CLUSTER_NORMAL:
    case QCOW2_CLUSTER_ZERO_ALLOC:
        qcow2_free_clusters(bs, l2e & L2E_OFFSET_MASK,
                            (uint64_t)n << s->cluster_bits);
        break;
    default:
        break;
    }
}
