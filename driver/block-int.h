/*
 * driver/block-int.h - the contract between the block core and drivers.
 *
 * A driver is one file with one `static const struct bd_driver` table,
 * listed in driver/registry.c. The core allocates `instance_size` bytes of
 * per-node state (node->opaque) before open and frees it after close.
 * Drivers have no mutable file-scope globals.
 *
 * Every request reaches a driver through driver/io.c, which has already:
 *  - checked the range against the node length (reads/writes past the end
 *    never arrive; zero-length requests never arrive except flush);
 *  - aligned offset and length to bl.request_alignment (unaligned writes were
 *    turned into read-modify-write cycles);
 *  - split requests larger than bl.max_transfer (or max_pwrite_zeroes /
 *    max_pdiscard);
 *  - raised the generic events (pwritev, pwritev_zero, pwritev_done,
 *    pwritev_rmw_*, flush_to_os, flush_to_disk);
 *  - counted the request as in flight for drain.
 * A driver may be entered by many threads at once and locks what it shares.
 * It must never hold a lock while it sleeps or waits for a breakpoint: a
 * delayed or suspended request holds only its own thread.
 *
 * Return convention of every I/O callback: 0 on success or a negative errno
 * (io.c asserts this). Setup callbacks take errp last.
 */
#ifndef BLKRIG_BLOCK_INT_H
#define BLKRIG_BLOCK_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "common/list.h"
#include "common/opts.h"
#include "common/qapi.h"
#include "driver/block.h"
#include "injector/events.h"

/* Child roles (bit set, QEMU's BdrvChildRole). */
#define BD_ROLE_DATA      0x01  /* child holds guest data */
#define BD_ROLE_METADATA  0x02  /* child holds format metadata */
#define BD_ROLE_FILTERED  0x04  /* child of a filter: same content */
#define BD_ROLE_COW       0x08  /* backing file */
#define BD_ROLE_PRIMARY   0x10  /* the node's primary child */
#define BD_ROLE_STORAGE   (BD_ROLE_DATA | BD_ROLE_METADATA)

/* Node lengths are whole 512-byte sectors, as in QEMU (see bd_getlength). */
#define BD_SECTOR_SIZE 512

struct bd_limits {
    uint32_t request_alignment;      /* >= 1, power of two */
    uint64_t max_transfer;           /* 0: unlimited; multiple of alignment */
    uint64_t opt_transfer;           /* 0: no preference */
    uint32_t pwrite_zeroes_alignment;/* 0: request_alignment */
    uint64_t max_pwrite_zeroes;      /* 0: unlimited */
    uint32_t pdiscard_alignment;     /* 0: request_alignment */
    uint64_t max_pdiscard;           /* 0: unlimited */
    size_t min_mem_alignment;        /* buffers for O_DIRECT */
};

struct bd_child {
    /* Immutable after attach. */
    char *name;                 /* "file", "backing", "image", "target", ... */
    unsigned role;              /* BD_ROLE_* */
    struct bd_node *parent;     /* NULL for a backend's root edge */
    struct bd_blk *blk;         /* the backend, for root edges */
    /* Protected by the graph lock; node changes only while drained, but a
     * request already on its way down reads it without the lock: changes
     * are published with bd_child_set_node, requests read it with
     * bd_child_node (release/acquire), so a new node is seen whole. */
    struct bd_node *node;       /* the child node */
    uint64_t perm;              /* permissions this edge takes */
    uint64_t shared;            /* permissions it lets other edges take */
    bool quiesced_parent;       /* node is drained and has quiesced the
                                   parent through this edge (core.c) */
    struct bd_list parent_link; /* in parent->children */
    struct bd_list node_link;   /* in node->parents */
};

struct bd_tracked_req;

struct bd_node {
    /* Set at creation and immutable afterwards. */
    struct bd_graph *graph;
    const struct bd_driver *drv;
    void *opaque;                   /* instance_size bytes for the driver */
    char node_name[32];
    bool name_generated;            /* "#blockNNN" */
    int open_flags;                 /* BD_O_* */
    bool read_only;
    char *filename;                 /* as opened (may be empty) */
    json_t *open_options;           /* nested options for json: filenames */
    int detect_zeroes;              /* 0 off, 1 on, 2 unmap */
    bool probed;                    /* the format was guessed by probing */
    bool closing;                   /* drv->close ran or is running: no more
                                       driver callbacks (graph lock) */

    /* Set by the driver in open / refresh_limits. */
    struct bd_limits bl;
    int supported_write_flags;      /* BD_REQ_FUA, ... the driver honours */
    int supported_zero_flags;       /* BD_REQ_FUA | MAY_UNMAP | NO_FALLBACK */

    /* Graph links: protected by the graph lock. */
    struct bd_list children;        /* struct bd_child.parent_link */
    struct bd_list parents;         /* struct bd_child.node_link */
    struct bd_child *file;          /* shortcut: child named "file"/"image" */
    struct bd_child *backing;       /* shortcut: child named "backing" */
    struct bd_list graph_link;      /* in the graph's node list */
    atomic_int refcnt;
    bool in_graph_named;            /* added by blockdev-add: graph holds a ref */

    /* Requests: protected by reqs_lock. */
    pthread_mutex_t reqs_lock;
    pthread_cond_t reqs_cond;       /* broadcast when a request ends */
    struct bd_list tracked_reqs;    /* struct bd_tracked_req */
    atomic_uint in_flight;
    atomic_int quiesce_counter;     /* > 0 while drained */
    atomic_uint_fast64_t write_gen; /* bumped when a write completes */
    uint64_t flushed_gen;           /* write_gen of the last good flush */
    pthread_mutex_t flush_lock;     /* serialises flushes of this node */
    atomic_int_fast64_t cached_length; /* -1 when unknown */

    /* Dirty bitmaps and write hooks (driver/dirty-bitmap.c, jobs). */
    pthread_mutex_t bitmaps_lock;
    struct bd_list bitmaps;
};

struct bd_driver {
    /* sizeof(struct bd_driver) at compile time: lets the table grow safely. */
    size_t struct_size;
    /* Driver name ("file", "raw", "qcow2", "blkdebug", ...). */
    const char *name;
    /* Filename prefix for protocol drivers ("blkdebug" for "blkdebug:..."),
     * NULL for none. */
    const char *protocol_name;
    /* Format drivers sit on a protocol child ("Block format 'x' does not
     * support ..."); protocol drivers open a resource ("Block protocol 'x'
     * doesn't support ..."). */
    bool is_format;
    /* Filters forward every callback they leave NULL to their filtered child
     * (the one with BD_ROLE_FILTERED). A filter that must not forward an
     * operation implements it and returns -ENOTSUP. */
    bool is_filter;
    bool supports_backing;
    size_t instance_size;
    /* The driver's own members of BlockdevOptions (a QAPI_STRUCT, see
     * common/qapi.h) for blockdev-add validation; NULL: not described
     * yet (only the generic checks apply). */
    const struct qapi_type *qapi_options;

    /*
     * Probe: score 0..100 how likely buf (first bytes of the file, up to
     * 2048) is this format. NULL: never probed.
     */
    int (*probe)(const uint8_t *buf, int len, const char *filename);
    /*
     * Turn a protocol filename ("blkdebug:conf:img", "null-co://") into
     * options; called before open when a filename is given. May be NULL.
     */
    int (*parse_filename)(const char *filename, json_t *options,
                          struct bd_error **errp);
    /*
     * Open. options is the node's flat dict; consume the keys you know with
     * bd_opts_take_* and open children with bd_open_child(); leftover keys
     * are reported by the core. flags are the node's BD_O_* flags.
     * Must set bs->bl (the core pre-fills alignment 1) and may set
     * supported_*_flags. Returns 0 or -errno with errp set.
     */
    int (*open)(struct bd_node *bs, json_t *options, int flags,
                struct bd_error **errp);
    /* Close: release everything open acquired. Children are detached by the
     * core afterwards. Called with no request in flight. */
    void (*close)(struct bd_node *bs);
    /* Recompute bs->bl after the children's limits are known; may reject
     * impossible constraints. NULL: inherit from the primary child. */
    int (*refresh_limits)(struct bd_node *bs, struct bd_error **errp);
    /* Current length in bytes, or -errno. Required unless a filter. */
    int64_t (*getlength)(struct bd_node *bs);

    /* Data path. qiov covers exactly [off, off+bytes). */
    int (*preadv)(struct bd_node *bs, int64_t off, int64_t bytes,
                  struct bd_qiov *qiov, int flags);
    int (*pwritev)(struct bd_node *bs, int64_t off, int64_t bytes,
                   struct bd_qiov *qiov, int flags);
    /* -ENOTSUP makes the core write a zero buffer instead (unless the
     * request has BD_REQ_NO_FALLBACK). */
    int (*pwrite_zeroes)(struct bd_node *bs, int64_t off, int64_t bytes,
                         int flags);
    /* -ENOTSUP is treated as success (discard is advisory). */
    int (*pdiscard)(struct bd_node *bs, int64_t off, int64_t bytes);
    /* Flush this node's own caches to its children ("to OS"). */
    int (*flush_to_os)(struct bd_node *bs);
    /* Make written data stable ("to disk"). Skipped by the core when nothing
     * was written since the last good flush, or with cache.no-flush. */
    int (*flush_to_disk)(struct bd_node *bs);
    /*
     * Block status of [off, off+bytes): return BD_BLOCK_* and set *pnum
     * (1..bytes). For BD_BLOCK_OFFSET_VALID set *map and *file. NULL:
     * everything is DATA|ALLOCATED (formats) or DATA|OFFSET_VALID to itself.
     */
    int (*block_status)(struct bd_node *bs, bool want_zero, int64_t off,
                        int64_t bytes, int64_t *pnum, int64_t *map,
                        struct bd_node **file);
    int (*truncate)(struct bd_node *bs, int64_t size, bool exact,
                    enum bd_prealloc prealloc, int flags,
                    struct bd_error **errp);

    /* Debug events raised on this node (blkdebug). NULL: ignored. */
    void (*debug_event)(struct bd_node *bs, enum bd_event ev);
    int (*debug_breakpoint)(struct bd_node *bs, const char *event,
                            const char *tag);
    int (*debug_remove_breakpoint)(struct bd_node *bs, const char *tag);
    int (*debug_resume)(struct bd_node *bs, const char *tag);
    bool (*debug_is_suspended)(struct bd_node *bs, const char *tag);
    json_t *(*debug_query)(struct bd_node *bs);

    /*
     * Permissions this node takes on child c (role), given the cumulative
     * perm/shared of its own parents. NULL: bd_default_perms().
     */
    void (*child_perm)(struct bd_node *bs, struct bd_child *c, unsigned role,
                       uint64_t parent_perm, uint64_t parent_shared,
                       uint64_t *nperm, uint64_t *nshared);
    /* The node's cumulative permissions changed (file locking). check may
     * refuse with errp; set applies (cannot fail). */
    int (*check_perm)(struct bd_node *bs, uint64_t perm, uint64_t shared,
                      struct bd_error **errp);
    void (*set_perm)(struct bd_node *bs, uint64_t perm, uint64_t shared);

    /* qemu-io `info` / qemu-img info. */
    int (*get_info)(struct bd_node *bs, struct bd_node_info *info);
    /* qemu-img create: create an image file from flat options. */
    int (*create)(const char *filename, json_t *options,
                  struct bd_error **errp);
    /* True if the node's content reads as zeroes when never written. */
    int (*has_zero_init)(struct bd_node *bs);

    /*
     * Drained sections (QEMU's bdrv_drain_begin/end): drain_begin is called
     * when the node's quiesce counter goes 0 -> 1, after the same call on
     * its parents (stop top-down); drain_end when it goes 1 -> 0, before
     * its parents (restart bottom-up). Called with the graph lock held and
     * requests possibly still in flight (the core waits for them after
     * drain_begin). Must not issue I/O or block. NULL: nothing to do.
     */
    void (*drain_begin)(struct bd_node *bs);
    void (*drain_end)(struct bd_node *bs);
};

/* ------------------------------------------------------------------ */
/* driver/registry.c                                                    */

/* Each driver file keeps its table `static const` and exports it through
 * one accessor, which registry.c lists. */
#define BD_DRIVER_EXPORT(table, accessor) \
    const struct bd_driver *accessor(void) \
    { \
        return &(table); \
    }

const struct bd_driver *bd_find_driver(const char *name);
/* The protocol driver for filename: `file` for a plain path (no colon, or
 * a '/' before the first colon), NULL for an unknown "proto:" prefix. */
const struct bd_driver *bd_find_protocol(const char *filename);
/* Probe formats over buf; returns the best driver (raw when nothing else). */
const struct bd_driver *bd_probe_format(const uint8_t *buf, int len,
                                        const char *filename);
/* NULL-terminated list of all drivers (registration order). */
const struct bd_driver *const *bd_driver_list(void);
/* Extra drivers that "driver" may name in graph g only (after the
 * registry, which they cannot shadow): the hook for test-only drivers
 * (tests/helpers/test-drivers.h). list is NULL-terminated and must outlive
 * the graph; set it before opening nodes. */
void bd_graph_set_extra_drivers(struct bd_graph *g,
                                const struct bd_driver *const *list);

/* ------------------------------------------------------------------ */
/* driver/qapi-block.c: the blockdev-add schema (common/qapi.h)         */

/* BlockdevOptions: the generic members plus, chosen by "driver", the
 * members in each registered driver's qapi_options. */
extern const struct qapi_type bd_qapi_blockdev_options;
/* A child: a node-name string or a nested BlockdevOptions ("file"). */
extern const struct qapi_type bd_qapi_blockdev_ref;
/* Same, or null ("backing": null). */
extern const struct qapi_type bd_qapi_blockdev_ref_or_null;
/* Drivers besides the registry's that validation on this thread accepts
 * (a test graph's extra drivers; NULL to reset). */
void bd_qapi_set_extra_drivers(const struct bd_driver *const *list);

/* ------------------------------------------------------------------ */
/* driver/core.c: helpers for drivers                                   */

/*
 * Open child `name` of bs from options: either a reference ("file":
 * "node-name" as a string value) to an existing node, or the sub-dict
 * "name.*" describing a new one, or (for the primary child only) `filename`.
 * allow_none: return NULL without error when nothing describes the child.
 */
struct bd_child *bd_open_child(struct bd_node *bs, json_t *options,
                               const char *name, const char *filename,
                               unsigned role, bool allow_none,
                               struct bd_error **errp);
/* Attach an existing node as a child (takes a reference). */
struct bd_child *bd_attach_child(struct bd_node *parent, struct bd_node *child,
                                 const char *name, unsigned role,
                                 struct bd_error **errp);
/* Detach and drop the reference (drained by the caller if I/O may run). */
void bd_detach_child(struct bd_child *c);
/* Make every parent of `from` (edges and backends) point to `to` instead.
 * Edges of `to` itself that point at `from` are kept (filter insertion). */
int bd_replace_node(struct bd_node *from, struct bd_node *to,
                    struct bd_error **errp);
/* Recompute and check permissions below n after a change. */
int bd_refresh_perms(struct bd_node *n, struct bd_error **errp);
void bd_default_perms(struct bd_node *bs, struct bd_child *c, unsigned role,
                      uint64_t parent_perm, uint64_t parent_shared,
                      uint64_t *nperm, uint64_t *nshared);
/* Cumulative perm/shared of all parents of n. */
void bd_node_parent_perms(struct bd_node *n, uint64_t *perm,
                          uint64_t *shared);
/*
 * Open a node with the given driver table instead of looking "driver" up in
 * the registry (bd_open's rules otherwise). For test-only drivers
 * (tests/helpers/test-drivers.c) and embedders; children named in options
 * are still opened through the registry, or referenced by node name.
 */
struct bd_node *bd_open_driver(struct bd_graph *g,
                               const struct bd_driver *drv,
                               json_t *options, int flags,
                               struct bd_error **errp);
/* Find a child by name. */
struct bd_child *bd_node_child(struct bd_node *bs, const char *name);
/* The filtered child of a filter, else NULL. */
struct bd_child *bd_filter_child(struct bd_node *bs);
/* Update the cached length after a driver changed it. */
void bd_node_refresh_length(struct bd_node *bs);

/* The graph's fault hook for a request the driver is about to run
 * (block.h, bd_graph_set_fault_hook): 0 or the -errno to fail it with. */
int bd_fault_point(struct bd_node *bs, enum bd_fault_type type, int64_t off,
                   int64_t bytes);

/* Raise a debug event on a child edge's node / on a node. Costs one
 * pointer test when the node has no debug_event callback. */
static inline void bd_node_event(struct bd_node *n, enum bd_event ev)
{
    if (n && n->drv->debug_event) {
        n->drv->debug_event(n, ev);
    }
}

static inline struct bd_node *bd_child_node(struct bd_child *c)
{
    return __atomic_load_n(&c->node, __ATOMIC_ACQUIRE);
}

static inline void bd_child_set_node(struct bd_child *c, struct bd_node *n)
{
    __atomic_store_n(&c->node, n, __ATOMIC_RELEASE);
}

static inline void bd_event(struct bd_child *c, enum bd_event ev)
{
    if (c) {
        bd_node_event(bd_child_node(c), ev);
    }
}

/* ------------------------------------------------------------------ */
/* driver/io.c: requests on a child (full request path on c->node)      */

int bd_child_preadv(struct bd_child *c, int64_t off, int64_t bytes,
                    struct bd_qiov *qiov, int flags);
int bd_child_pwritev(struct bd_child *c, int64_t off, int64_t bytes,
                     struct bd_qiov *qiov, int flags);
int bd_child_pread(struct bd_child *c, int64_t off, int64_t bytes, void *buf,
                   int flags);
int bd_child_pwrite(struct bd_child *c, int64_t off, int64_t bytes,
                    const void *buf, int flags);
int bd_child_pwrite_zeroes(struct bd_child *c, int64_t off, int64_t bytes,
                           int flags);
int bd_child_pdiscard(struct bd_child *c, int64_t off, int64_t bytes);
int bd_child_flush(struct bd_child *c);
int bd_child_block_status(struct bd_child *c, int64_t off, int64_t bytes,
                          int64_t *pnum, int64_t *map,
                          struct bd_node **file);
int bd_child_truncate(struct bd_child *c, int64_t size, bool exact,
                      enum bd_prealloc prealloc, int flags,
                      struct bd_error **errp);

/* Block-status helper for filters: everything maps 1:1 onto the filtered
 * child (BD_BLOCK_RAW | BD_BLOCK_OFFSET_VALID). */
int bd_block_status_passthrough(struct bd_node *bs, bool want_zero,
                                int64_t off, int64_t bytes, int64_t *pnum,
                                int64_t *map, struct bd_node **file);

/* Internal to core.c/io.c: called by bd_node_* wrappers. */
void bd_inc_in_flight(struct bd_node *bs);
void bd_dec_in_flight(struct bd_node *bs);
/* Wait while the node is quiesced (backend-originated requests only). */
void bd_wait_quiesce_end(struct bd_node *bs);

#endif
