/*
 * driver/qcow2-int.h - internals shared by the qcow2 driver's files:
 * on-disk constants, the per-node state, and the functions one file offers
 * the others. Users of the driver include driver/qcow2.h instead.
 *
 * Locking: every field under "metadata, protected by lock" (the L1 table,
 * both caches, the refcount table, the free-cluster hint, the in-flight
 * allocation list) is read and written with s->lock held. Guest data I/O
 * never holds the lock: a writer that allocates a cluster registers the
 * guest cluster in s->allocs, drops the lock, writes the data and takes the
 * lock again to link the new cluster into its L2 table. Other writers of
 * that same guest cluster wait on s->alloc_cond; writers of other clusters
 * run in parallel.
 *
 * Metadata ordering (what keeps an interrupted or failed update safe): a
 * refcount block is always written before an L2 table that points at a
 * newly counted cluster (the L2 cache depends on the refcount cache), and
 * an L2 table before the L1 entry that points at it. So a failure between
 * two steps can leak clusters but never leave a reference to an
 * unreferenced cluster.
 */
#ifndef BLKRIG_QCOW2_INT_H
#define BLKRIG_QCOW2_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/list.h"
#include "driver/block-int.h"

#define QCOW2_MAGIC 0x514649fbu
#define QCOW2_HEADER_V2_SIZE 72
#define QCOW2_HEADER_V3_SIZE 104
#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21
/* QEMU's limits: 32 MiB of L1 table, 8 MiB of refcount table. */
#define QCOW2_MAX_L1_BYTES (32u << 20)
#define QCOW2_MAX_REFTABLE_BYTES (8u << 20)
#define QCOW2_MAX_BACKING_NAME 1023

#define QCOW_OFLAG_COPIED (1ULL << 63)
#define QCOW_OFLAG_COMPRESSED (1ULL << 62)
#define QCOW_OFLAG_ZERO 1ULL
#define L1E_OFFSET_MASK 0x00fffffffffffe00ULL
#define L2E_OFFSET_MASK 0x00fffffffffffe00ULL
#define REFT_OFFSET_MASK 0xfffffffffffffe00ULL
#define L1E_RESERVED_MASK 0x7f000000000001ffULL
#define L2E_STD_RESERVED_MASK 0x3f000000000001feULL

/* Header extension types. */
#define QCOW2_EXT_END 0
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acau
#define QCOW2_EXT_FEATURE_TABLE 0x6803f857u
#define QCOW2_EXT_BITMAPS 0x23852875u
#define QCOW2_EXT_CRYPTO 0x0537be77u
#define QCOW2_EXT_DATA_FILE 0x44415441u

/* Feature bits. */
#define QCOW2_INCOMPAT_DIRTY (1ULL << 0)
#define QCOW2_INCOMPAT_CORRUPT (1ULL << 1)
#define QCOW2_INCOMPAT_DATA_FILE (1ULL << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ULL << 3)
#define QCOW2_INCOMPAT_EXTL2 (1ULL << 4)
#define QCOW2_INCOMPAT_KNOWN (QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT)
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ULL << 0)
#define QCOW2_AUTOCLEAR_BITMAPS (1ULL << 0)

/* Header field offsets (big endian on disk). */
#define QH_VERSION 4
#define QH_BACKING_OFFSET 8
#define QH_BACKING_SIZE 16
#define QH_CLUSTER_BITS 20
#define QH_SIZE 24
#define QH_CRYPT 32
#define QH_L1_SIZE 36
#define QH_L1_OFFSET 40
#define QH_REFTABLE_OFFSET 48
#define QH_REFTABLE_CLUSTERS 56
#define QH_NB_SNAPSHOTS 60
#define QH_SNAPSHOTS_OFFSET 64
#define QH_INCOMPAT 72
#define QH_COMPAT 80
#define QH_AUTOCLEAR 88
#define QH_REFCOUNT_ORDER 96
#define QH_HEADER_LENGTH 100
#define QH_COMPRESSION_TYPE 104

enum qcow2_cluster_type {
    QCOW2_CLUSTER_UNALLOCATED,
    QCOW2_CLUSTER_ZERO_PLAIN,   /* zero flag, no host cluster */
    QCOW2_CLUSTER_ZERO_ALLOC,   /* zero flag, host cluster preallocated */
    QCOW2_CLUSTER_NORMAL,
    QCOW2_CLUSTER_COMPRESSED,
};

/* ------------------------------------------------------------------ */
/* qcow2-cache.c: fixed-size caches of cluster-sized tables           */

struct qcow2_cache_entry {
    uint64_t offset;    /* 0: slot unused */
    void *table;
    int ref;            /* > 0 while a caller holds the table */
    bool dirty;
    uint64_t lru;
};

struct qcow2_cache {
    struct qcow2_cache_entry *entries;
    int size;
    size_t table_size;
    uint64_t lru_counter;
    int load_event;             /* enum bd_event raised on a miss, or -1 */
    int update_event;           /* raised before each write-back */
    /* Written back (and the file flushed) before any entry of this cache:
     * the L2 cache depends on the refcount cache after an allocation. */
    struct qcow2_cache *depends;
};

struct qcow2_state;

struct qcow2_cache *qcow2_cache_create(int size, size_t table_size,
                                       int load_event, int update_event);
void qcow2_cache_destroy(struct qcow2_cache *c);
int qcow2_cache_get(struct bd_node *bs, struct qcow2_cache *c,
                    uint64_t offset, void **table);
/* Like get, but the caller fills the table (no read). */
int qcow2_cache_get_empty(struct bd_node *bs, struct qcow2_cache *c,
                          uint64_t offset, void **table);
void qcow2_cache_put(struct qcow2_cache *c, void **table);
void qcow2_cache_mark_dirty(struct qcow2_cache *c, void *table);
/* Write back dirty entries (dependencies first) without flushing. */
int qcow2_cache_write(struct bd_node *bs, struct qcow2_cache *c);
/* Write back, then flush the file child. */
int qcow2_cache_flush(struct bd_node *bs, struct qcow2_cache *c);
/* Forget a cached table (its cluster is being freed). */
void qcow2_cache_discard(struct qcow2_cache *c, uint64_t offset);
/* Drop every entry, dirty or not (after a failed open). */
void qcow2_cache_empty(struct qcow2_cache *c);
/* Entries of c may only be written after dep's (set before changing an
 * entry of c that relies on dep). Writes out pending work rather than let
 * the two caches depend on each other. */
int qcow2_cache_set_dependency(struct bd_node *bs, struct qcow2_cache *c,
                               struct qcow2_cache *dep);

/* ------------------------------------------------------------------ */
/* The per-node state                                                   */

/* A guest cluster range being allocated by a writer (lock dropped). */
struct qcow2_alloc {
    uint64_t guest_start;   /* cluster-aligned */
    uint64_t guest_end;
    struct bd_list link;
};

struct qcow2_state {
    /* Set in open, immutable afterwards. */
    int version;
    int cluster_bits;
    uint32_t cluster_size;
    int l2_bits;
    uint32_t l2_size;           /* entries per L2 table */
    int refcount_order;
    int refcount_bits;
    uint64_t refcount_max;
    int refblock_bits;          /* log2(entries per refcount block) */
    uint32_t refblock_size;
    int csize_shift;            /* compressed descriptor layout */
    uint64_t csize_mask;
    uint64_t cluster_offset_mask;
    uint32_t header_length;
    uint64_t compatible;
    uint64_t autoclear;
    bool lazy_refcounts;
    char *backing_file;         /* from the header, NULL if none */
    char *backing_format;       /* from the extension, NULL if none */
    uint64_t bitmaps_ext_offset;/* header offset of the bitmaps ext data */
    uint32_t bitmaps_ext_len;
    bool has_bitmaps_ext;
    bool has_feature_table;
    uint32_t nb_snapshots;
    uint64_t snapshots_offset;

    /* Metadata, protected by lock. */
    pthread_mutex_t lock;
    pthread_cond_t alloc_cond;
    struct bd_list allocs;      /* struct qcow2_alloc */
    uint64_t size;              /* virtual size */
    uint64_t incompatible;
    uint64_t *l1_table;         /* host byte order */
    uint32_t l1_size;
    uint64_t l1_offset;
    uint64_t *reftable;         /* host byte order */
    uint32_t reftable_size;     /* entries */
    uint64_t reftable_offset;
    uint64_t free_cluster_index;
    uint64_t free_byte_offset;  /* compressed packing, 0 = none */
    struct qcow2_cache *l2_cache;
    struct qcow2_cache *refblock_cache;
    bool corrupt_reported;
};

/* ------------------------------------------------------------------ */
/* Helpers                                                              */

static inline uint64_t qcow2_be64(const void *p)
{
    const uint8_t *b = p;
    return ((uint64_t)b[0] << 56) | ((uint64_t)b[1] << 48) |
           ((uint64_t)b[2] << 40) | ((uint64_t)b[3] << 32) |
           ((uint64_t)b[4] << 24) | ((uint64_t)b[5] << 16) |
           ((uint64_t)b[6] << 8) | b[7];
}

static inline uint32_t qcow2_be32(const void *p)
{
    const uint8_t *b = p;
    return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) |
           ((uint32_t)b[2] << 8) | b[3];
}

static inline void qcow2_put_be64(void *p, uint64_t v)
{
    uint8_t *b = p;
    int i;

    for (i = 7; i >= 0; i--) {
        b[i] = (uint8_t)v;
        v >>= 8;
    }
}

static inline void qcow2_put_be32(void *p, uint32_t v)
{
    uint8_t *b = p;

    b[0] = (uint8_t)(v >> 24);
    b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8);
    b[3] = (uint8_t)v;
}

static inline uint64_t qcow2_offset_into_cluster(const struct qcow2_state *s,
                                                 uint64_t off)
{
    return off & (s->cluster_size - 1);
}

static inline uint64_t qcow2_start_of_cluster(const struct qcow2_state *s,
                                              uint64_t off)
{
    return off & ~(uint64_t)(s->cluster_size - 1);
}

static inline uint64_t qcow2_size_to_clusters(const struct qcow2_state *s,
                                              uint64_t size)
{
    return (size + s->cluster_size - 1) >> s->cluster_bits;
}

static inline uint32_t qcow2_l1_index(const struct qcow2_state *s,
                                      uint64_t off)
{
    return (uint32_t)(off >> (s->l2_bits + s->cluster_bits));
}

static inline uint32_t qcow2_l2_index(const struct qcow2_state *s,
                                      uint64_t off)
{
    return (uint32_t)((off >> s->cluster_bits) & (s->l2_size - 1));
}

/* Entries needed for size bytes of guest data (QEMU's formula). */
static inline uint64_t qcow2_l1_entries_for(int cluster_bits, uint64_t size)
{
    int shift = cluster_bits + cluster_bits - 3;
    return (size + (1ULL << shift) - 1) >> shift;
}

enum qcow2_cluster_type qcow2_get_cluster_type(const struct qcow2_state *s,
                                               uint64_t l2e);

/* Report metadata corruption: print QEMU's line, set the corrupt bit when
 * fatal (and the image is writable). Returns -EIO. Lock held. */
int qcow2_signal_corruption(struct bd_node *bs, bool fatal, int64_t offset,
                            int64_t size, const char *fmt, ...)
    BD_PRINTF(5, 6);
/* Update the incompatible-features field on disk (lock held). */
int qcow2_write_incompat(struct bd_node *bs, uint64_t bits);

/* ------------------------------------------------------------------ */
/* qcow2-refcount.c (lock held unless stated)                          */

int qcow2_refcount_init(struct bd_node *bs, struct bd_error **errp);
void qcow2_refcount_close(struct bd_node *bs);
uint64_t qcow2_refcount_get_entry(const void *block, int order,
                                  uint64_t index);
void qcow2_refcount_set_entry(void *block, int order, uint64_t index,
                              uint64_t value);
int qcow2_get_refcount(struct bd_node *bs, uint64_t cluster_index,
                       uint64_t *refcount);
/* Allocate n contiguous clusters (refcount 1); returns the host offset or
 * -errno. Raises cluster_alloc. */
int64_t qcow2_alloc_clusters(struct bd_node *bs, uint64_t size);
/* Allocate n clusters at a fixed offset if free; returns how many clusters
 * from offset could be allocated (0..n) or -errno. */
int64_t qcow2_alloc_clusters_at(struct bd_node *bs, uint64_t offset,
                                uint64_t n);
/* Sub-cluster allocation for compressed data. */
int64_t qcow2_alloc_bytes(struct bd_node *bs, uint32_t size);
/* Add addend (+1/-1) to the refcount of [offset, offset+length). Frees
 * (refcount reaching 0) raise cluster_free and discard cached tables. */
int qcow2_update_refcount(struct bd_node *bs, uint64_t offset,
                          uint64_t length, int addend);
void qcow2_free_clusters(struct bd_node *bs, uint64_t offset,
                         uint64_t length);
/* Free whatever an L2 entry points at (normal or compressed). */
void qcow2_free_any_cluster(struct bd_node *bs, uint64_t l2e, uint32_t n);

/* Consistency check and repair (qemu-img check). */
struct qcow2_check_result {
    int64_t corruptions;
    int64_t leaks;
    int64_t check_errors;
    int64_t corruptions_fixed;
    int64_t leaks_fixed;
    int64_t image_end_offset;
    int64_t total_clusters;
    int64_t allocated_clusters;
    int64_t fragmented_clusters;
    int64_t compressed_clusters;
};
#define QCOW2_FIX_LEAKS 1
#define QCOW2_FIX_ERRORS 2
/* Not under the lock: takes it. Messages go to stderr as qemu-img's. */
int qcow2_check(struct bd_node *bs, struct qcow2_check_result *res, int fix);

/* ------------------------------------------------------------------ */
/* qcow2-cluster.c (lock held)                                         */

/*
 * Look up the mapping of guest offset off: *l2e receives the L2 entry of
 * its cluster (0 when unallocated), *count the number of bytes from off
 * that share the same kind of mapping (contiguous on the host for normal
 * clusters), capped at bytes.
 */
int qcow2_get_host_offset(struct bd_node *bs, uint64_t off, uint64_t bytes,
                          uint64_t *count, uint64_t *l2e);
/* Get the L2 table for guest offset off, allocating it if needed. Returns
 * the table (held, put it back) and the index into it. */
int qcow2_get_l2_for_write(struct bd_node *bs, uint64_t off,
                           uint64_t **l2_table, uint32_t *index);
/* Write L1 entry i to disk (l1_update). */
int qcow2_write_l1_entry(struct bd_node *bs, uint32_t i);
/* Grow the L1 table to at least min_size entries. */
int qcow2_grow_l1_table(struct bd_node *bs, uint64_t min_size);
/* Move the L1 table to a new place with exactly new_size entries. */
int qcow2_resize_l1(struct bd_node *bs, uint64_t new_size);

/* qcow2-bitmap.c: mark stored bitmaps in use (read-write open). */
int qcow2_bitmaps_mark_in_use(struct bd_node *bs);
/* Create the node's persistent in-memory bitmaps from the image (open). */
int qcow2_bitmaps_load_all(struct bd_node *bs, struct bd_error **errp);


/* qcow2.c: compression helpers (also used by qcow2-cluster.c) */
int qcow2_decompress(const void *src, size_t slen, void *dst, size_t dlen);
ssize_t qcow2_compress(const void *src, size_t slen, void *dst, size_t dlen);

#endif
