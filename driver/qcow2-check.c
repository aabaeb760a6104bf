/*
 * driver/qcow2-check.c - the consistency check behind `blkrig img check`
 * (and the repair of a dirty image at open): count every reference the
 * metadata makes (header, L1/L2 tables and data of the active image and of
 * every snapshot, the snapshot table, refcount structures, the bitmap
 * directory and bitmap tables), compare with the stored refcounts, report
 * leaks and corruptions with qemu-img's lines, and optionally repair.
 *
 * The reference array has one entry per cluster of the file; a reference
 * beyond the end of the file is a corruption, never an allocation, so a
 * hostile image cannot make the check allocate without bound.
 */
#include "common/config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cutils.h"
#include "driver/qcow2-int.h"

struct check_ctx {
    struct bd_node *bs;
    struct qcow2_state *s;
    struct qcow2_check_result *res;
    uint32_t *refs;             /* computed references per cluster */
    uint64_t nb_clusters;       /* clusters compared (grows a little) */
    uint64_t alloc_clusters;    /* entries in refs */
    uint64_t next_contiguous;   /* fragmentation accounting */
    uint64_t highest;           /* last referenced cluster */
};

static void inc_refs(struct check_ctx *c, uint64_t offset, uint64_t size)
{
    struct qcow2_state *s = c->s;
    uint64_t first, last, i;

    if (!size) {
        return;
    }
    first = offset >> s->cluster_bits;
    last = (offset + size - 1) >> s->cluster_bits;
    if (last >= c->nb_clusters && last < c->nb_clusters + 1024 &&
        last < c->alloc_clusters) {
        /* A little past the end of the file: count it, so the compare
         * reports it the way qemu-img does. */
        c->nb_clusters = last + 1;
    }
    for (i = first; i <= last; i++) {
        if (i >= c->nb_clusters) {
            fprintf(stderr, "ERROR: cluster %" PRIu64 " beyond the end of "
                    "the image is referenced\n", i);
            c->res->corruptions++;
            return;
        }
        if (c->refs[i] < UINT32_MAX) {
            c->refs[i]++;
        }
    }
}

static int read_table(struct check_ctx *c, uint64_t off, uint64_t bytes,
                      uint8_t **out)
{
    uint8_t *buf = bd_malloc(BD_MAX(bytes, 1));
    int ret;

    ret = bytes ? bd_child_pread(c->bs->file, (int64_t)off, (int64_t)bytes,
                                 buf, 0) : 0;
    if (ret < 0) {
        free(buf);
        c->res->check_errors++;
        return ret;
    }
    *out = buf;
    return 0;
}

static int check_l2(struct check_ctx *c, uint64_t l2_off, bool active)
{
    struct qcow2_state *s = c->s;
    uint8_t *t;
    uint32_t i;
    int ret;

    ret = read_table(c, l2_off, s->cluster_size, &t);
    if (ret < 0) {
        return ret;
    }
    for (i = 0; i < s->l2_size; i++) {
        uint64_t e = qcow2_be64(t + 8 * i);
        uint64_t off = e & L2E_OFFSET_MASK;

        switch (qcow2_get_cluster_type(s, e)) {
        case QCOW2_CLUSTER_COMPRESSED: {
            uint64_t coff = e & s->cluster_offset_mask;
            uint64_t nsec = ((e >> s->csize_shift) & s->csize_mask) + 1;

            if (active) {
                c->res->allocated_clusters++;
                c->res->compressed_clusters++;
                c->res->fragmented_clusters++;
            }
            inc_refs(c, coff, nsec * 512 - (coff & 511));
            break;
        }
        case QCOW2_CLUSTER_ZERO_ALLOC:
        case QCOW2_CLUSTER_NORMAL:
            if (qcow2_offset_into_cluster(s, off)) {
                /* Reported, then counted like QEMU counts it (the
                 * reference spills into the next cluster). */
                fprintf(stderr, "ERROR offset=%" PRIx64 ": Data cluster is "
                        "not properly aligned; L2 entry corrupted.\n", off);
                c->res->corruptions++;
            }
            if (active) {
                c->res->allocated_clusters++;
                if (c->next_contiguous && off != c->next_contiguous) {
                    c->res->fragmented_clusters++;
                }
                c->next_contiguous = off + s->cluster_size;
            }
            inc_refs(c, off, s->cluster_size);
            break;
        default:
            break;
        }
    }
    free(t);
    return 0;
}

static int check_l1(struct check_ctx *c, uint64_t l1_off, uint32_t l1_size,
                    bool active)
{
    struct qcow2_state *s = c->s;
    uint8_t *t;
    uint32_t i;
    int ret;

    inc_refs(c, l1_off, (uint64_t)l1_size * 8);
    if ((uint64_t)l1_size * 8 > QCOW2_MAX_L1_BYTES) {
        c->res->corruptions++;
        return 0;
    }
    ret = read_table(c, l1_off, (uint64_t)l1_size * 8, &t);
    if (ret < 0) {
        return ret;
    }
    for (i = 0; i < l1_size; i++) {
        uint64_t l2 = qcow2_be64(t + 8 * i) & L1E_OFFSET_MASK;

        if (!l2) {
            continue;
        }
        if (qcow2_offset_into_cluster(s, l2)) {
            fprintf(stderr, "ERROR l2_offset=%" PRIx64 ": Table is not "
                    "cluster aligned; L1 entry corrupted\n", l2);
            c->res->corruptions++;
            continue;
        }
        if ((l2 >> s->cluster_bits) >= c->nb_clusters) {
            fprintf(stderr, "ERROR l2_offset=%" PRIx64 ": Table is beyond "
                    "the end of the image\n", l2);
            c->res->corruptions++;
            continue;
        }
        inc_refs(c, l2, s->cluster_size);
        ret = check_l2(c, l2, active);
        if (ret < 0) {
            break;
        }
    }
    free(t);
    return ret;
}

static int check_snapshots(struct check_ctx *c)
{
    struct qcow2_state *s = c->s;
    uint64_t off = s->snapshots_offset;
    uint32_t i;
    int ret;

    for (i = 0; i < s->nb_snapshots; i++) {
        uint8_t h[40];
        uint64_t l1;
        uint32_t l1_size, extra;
        uint16_t id_len, name_len;
        uint64_t start = off;

        ret = bd_child_pread(c->bs->file, (int64_t)off, 40, h, 0);
        if (ret < 0) {
            c->res->check_errors++;
            return ret;
        }
        l1 = qcow2_be64(h);
        l1_size = qcow2_be32(h + 8);
        id_len = (uint16_t)((h[12] << 8) | h[13]);
        name_len = (uint16_t)((h[14] << 8) | h[15]);
        extra = qcow2_be32(h + 36);
        off += 40 + extra + id_len + name_len;
        off = BD_ROUND_UP(off, 8);
        (void)start;
        ret = check_l1(c, l1, l1_size, false);
        if (ret < 0) {
            return ret;
        }
    }
    inc_refs(c, s->snapshots_offset, off - s->snapshots_offset);
    return 0;
}

static int check_bitmaps(struct check_ctx *c)
{
    struct qcow2_state *s = c->s;
    uint8_t ext[24];
    uint8_t *dir = NULL;
    uint64_t dir_size, dir_off, pos;
    uint32_t nb, i;
    int ret;

    if (!s->has_bitmaps_ext || s->bitmaps_ext_len < 24 ||
        !(s->autoclear & QCOW2_AUTOCLEAR_BITMAPS)) {
        return 0;
    }
    ret = bd_child_pread(c->bs->file, (int64_t)s->bitmaps_ext_offset, 24,
                         ext, 0);
    if (ret < 0) {
        c->res->check_errors++;
        return ret;
    }
    nb = qcow2_be32(ext);
    dir_size = qcow2_be64(ext + 8);
    dir_off = qcow2_be64(ext + 16);
    if (dir_size > (64u << 20)) {
        c->res->corruptions++;
        return 0;
    }
    inc_refs(c, dir_off, dir_size);
    ret = read_table(c, dir_off, dir_size, &dir);
    if (ret < 0) {
        return ret;
    }
    pos = 0;
    for (i = 0; i < nb && pos + 24 <= dir_size; i++) {
        uint64_t toff = qcow2_be64(dir + pos);
        uint32_t tsize = qcow2_be32(dir + pos + 8);
        uint16_t name_len = (uint16_t)((dir[pos + 18] << 8) | dir[pos + 19]);
        uint32_t extra = qcow2_be32(dir + pos + 20);
        uint8_t *tab = NULL;
        uint32_t k;

        inc_refs(c, toff, (uint64_t)tsize * 8);
        if ((uint64_t)tsize * 8 <= QCOW2_MAX_L1_BYTES &&
            read_table(c, toff, (uint64_t)tsize * 8, &tab) == 0) {
            for (k = 0; k < tsize; k++) {
                uint64_t e = qcow2_be64(tab + 8 * k) & L2E_OFFSET_MASK;
                if (e) {
                    inc_refs(c, e, s->cluster_size);
                }
            }
            free(tab);
        }
        pos += BD_ROUND_UP(24 + (uint64_t)extra + name_len, 8);
    }
    free(dir);
    return 0;
}

/* The OFLAG_COPIED flags of the active tables agree with refcount 1. */
static int check_copied(struct check_ctx *c, int fix)
{
    struct qcow2_state *s = c->s;
    uint32_t i, k;
    int ret = 0;

    for (i = 0; i < s->l1_size; i++) {
        uint64_t l1e = s->l1_table[i];
        uint64_t l2 = l1e & L1E_OFFSET_MASK;
        uint64_t rc;
        uint64_t *t;

        if (!l2 || qcow2_offset_into_cluster(s, l2) ||
            (l2 >> s->cluster_bits) >= c->nb_clusters) {
            continue;
        }
        ret = qcow2_get_refcount(c->bs, l2 >> s->cluster_bits, &rc);
        if (ret < 0) {
            c->res->check_errors++;
            continue;
        }
        if ((rc == 1) != ((l1e & QCOW_OFLAG_COPIED) != 0)) {
            bool repair = fix & QCOW2_FIX_ERRORS;

            fprintf(stderr, "%s OFLAG_COPIED L2 cluster: l1_index=%" PRIu32
                    " l1_entry=%" PRIx64 " refcount=%" PRIu64 "\n",
                    repair ? "Repairing" : "ERROR", i, l1e, rc);
            if (repair) {
                s->l1_table[i] = rc == 1 ? l1e | QCOW_OFLAG_COPIED
                                         : l1e & ~QCOW_OFLAG_COPIED;
                if (qcow2_write_l1_entry(c->bs, i) == 0) {
                    c->res->corruptions_fixed++;
                } else {
                    c->res->check_errors++;
                }
            } else {
                c->res->corruptions++;
            }
        }
        ret = qcow2_cache_get(c->bs, s->l2_cache, l2, (void **)&t);
        if (ret < 0) {
            c->res->check_errors++;
            continue;
        }
        for (k = 0; k < s->l2_size; k++) {
            uint64_t e = qcow2_be64(&t[k]);
            enum qcow2_cluster_type ty = qcow2_get_cluster_type(s, e);
            uint64_t off = e & L2E_OFFSET_MASK;

            if ((ty != QCOW2_CLUSTER_NORMAL &&
                 ty != QCOW2_CLUSTER_ZERO_ALLOC) ||
                qcow2_offset_into_cluster(s, off) ||
                (off >> s->cluster_bits) >= c->nb_clusters) {
                continue;
            }
            if (qcow2_get_refcount(c->bs, off >> s->cluster_bits, &rc) < 0) {
                c->res->check_errors++;
                continue;
            }
            if ((rc == 1) != ((e & QCOW_OFLAG_COPIED) != 0)) {
                bool repair = fix & QCOW2_FIX_ERRORS;

                fprintf(stderr, "%s OFLAG_COPIED data cluster: l2_entry=%"
                        PRIx64 " refcount=%" PRIu64 "\n",
                        repair ? "Repairing" : "ERROR", e, rc);
                if (repair) {
                    qcow2_put_be64(&t[k], rc == 1 ? e | QCOW_OFLAG_COPIED
                                                  : e & ~QCOW_OFLAG_COPIED);
                    qcow2_cache_mark_dirty(s->l2_cache, t);
                    c->res->corruptions_fixed++;
                } else {
                    c->res->corruptions++;
                }
            }
        }
        qcow2_cache_put(s->l2_cache, (void **)&t);
    }
    return 0;
}

/* One pass over every cluster: print the mismatches, count and repair
 * them when asked. Returns 0 or the last error. */
static int compare_refcounts(struct check_ctx *c, int fix, bool count)
{
    struct bd_node *bs = c->bs;
    struct qcow2_state *s = c->s;
    struct qcow2_check_result *res = c->res;
    uint64_t i;
    int ret = 0;

    for (i = 0; i < c->nb_clusters; i++) {
        uint64_t rc;
        uint64_t ref = c->refs[i];
        int r;

        r = qcow2_get_refcount(bs, i, &rc);
        if (r < 0) {
            fprintf(stderr, "Can't get refcount for cluster %" PRIu64
                    ": %s\n", i, bd_strerror(-r));
            if (count) {
                res->check_errors++;
            }
            continue;
        }
        if (ref) {
            c->highest = i;
        }
        if (rc != ref) {
            int64_t *fixed = NULL;

            if (rc > ref && (fix & QCOW2_FIX_LEAKS)) {
                fixed = &res->leaks_fixed;
            } else if (rc < ref && (fix & QCOW2_FIX_ERRORS)) {
                fixed = &res->corruptions_fixed;
            }
            fprintf(stderr, "%s cluster %" PRIu64 " refcount=%" PRIu64
                    " reference=%" PRIu64 "\n",
                    fixed ? "Repairing" : rc < ref ? "ERROR" : "Leaked",
                    i, rc, ref);
            if (!count) {
                continue;
            }
            if (fixed) {
                r = qcow2_update_refcount(bs, i << s->cluster_bits,
                                          s->cluster_size,
                                          (int)((int64_t)ref -
                                                (int64_t)rc));
                if (r == 0) {
                    (*fixed)++;
                    continue;
                }
                res->check_errors++;
                ret = r;
            }
            if (rc < ref) {
                res->corruptions++;
            } else {
                res->leaks++;
            }
        }
    }
    return ret;
}

int qcow2_check(struct bd_node *bs, struct qcow2_check_result *res, int fix)
{
    struct qcow2_state *s = bs->opaque;
    struct check_ctx c;
    int64_t flen;
    uint64_t i, highest = 0;
    int ret;

    memset(res, 0, sizeof(*res));
    memset(&c, 0, sizeof(c));
    c.bs = bs;
    c.s = s;
    c.res = res;
    if (bs->read_only) {
        fix = 0;
    }
    pthread_mutex_lock(&s->lock);
    if (!bs->read_only) {
        /* Judge what is on disk, not what sits in the caches. */
        ret = qcow2_cache_write(bs, s->l2_cache);
        if (ret == 0) {
            ret = qcow2_cache_write(bs, s->refblock_cache);
        }
        if (ret < 0) {
            res->check_errors++;
            goto out;
        }
    }
    flen = bd_getlength(bs->file->node);
    if (flen < 0) {
        res->check_errors++;
        ret = (int)flen;
        goto out;
    }
    c.nb_clusters = qcow2_size_to_clusters(s, (uint64_t)flen);
    c.alloc_clusters = c.nb_clusters + 1024;
    c.refs = calloc(c.alloc_clusters, sizeof(uint32_t));
    if (!c.refs) {
        res->check_errors++;
        ret = -ENOMEM;
        goto out;
    }
    res->total_clusters = (int64_t)qcow2_size_to_clusters(s, s->size);

    /* Refcount table entries themselves. */
    for (i = 0; i < s->reftable_size; i++) {
        uint64_t rb = s->reftable[i] & REFT_OFFSET_MASK;

        if (!rb) {
            continue;
        }
        if (qcow2_offset_into_cluster(s, rb)) {
            fprintf(stderr, "ERROR refcount block %" PRIu64 " is not "
                    "cluster aligned; refcount table entry corrupted\n", i);
            res->corruptions++;
            continue;
        }
        if ((rb >> s->cluster_bits) >= c.nb_clusters) {
            fprintf(stderr, "ERROR refcount block %" PRIu64 " is outside "
                    "image\n", i);
            res->corruptions++;
            continue;
        }
        inc_refs(&c, rb, s->cluster_size);
    }
    inc_refs(&c, 0, s->cluster_size);
    ret = check_l1(&c, s->l1_offset, s->l1_size, true);
    if (ret == 0 && s->nb_snapshots) {
        ret = check_snapshots(&c);
    }
    if (ret == 0) {
        inc_refs(&c, s->reftable_offset, (uint64_t)s->reftable_size * 8);
        ret = check_bitmaps(&c);
    }
    if (ret < 0) {
        goto out;
    }

    /* Compare: with a repair, QEMU first reports what it found, then
     * repairs (and reports again). */
    if (fix) {
        compare_refcounts(&c, 0, false);
    }
    ret = compare_refcounts(&c, fix, true);
    highest = c.highest;
    ret = check_copied(&c, fix);
    if (fix && !bs->read_only) {
        int r2 = qcow2_cache_write(bs, s->refblock_cache);
        if (r2 == 0) {
            r2 = qcow2_cache_write(bs, s->l2_cache);
        }
        if (r2 == 0) {
            r2 = bd_child_flush(bs->file);
        }
        if (r2 < 0) {
            res->check_errors++;
        }
    }
    res->image_end_offset = (int64_t)((highest + 1) << s->cluster_bits);
    if (fix && !bs->read_only && !res->corruptions && !res->check_errors &&
        (s->incompatible & (QCOW2_INCOMPAT_CORRUPT | QCOW2_INCOMPAT_DIRTY))) {
        /* Repaired: the image may be written again. */
        if (qcow2_write_incompat(bs, s->incompatible &
                                 ~(QCOW2_INCOMPAT_CORRUPT |
                                   QCOW2_INCOMPAT_DIRTY)) < 0) {
            res->check_errors++;
        }
    }
out:
    free(c.refs);
    pthread_mutex_unlock(&s->lock);
    return ret < 0 ? ret : 0;
}
