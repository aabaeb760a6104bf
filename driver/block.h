/*
 * driver/block.h - the block layer as its users see it.
 *
 * Users are the verbs (io, serve, run), the FUSE export, the QMP monitor and
 * the jobs. They build a graph of nodes in a struct bd_graph, attach to a
 * node through a struct bd_blk (a "block backend": a root edge with
 * permissions, statistics and a write-cache mode) and issue requests on it.
 *
 * Threading: every request function here is synchronous and thread-safe:
 * any number of threads may issue requests on the same bd_blk or node at
 * once. Graph changes (open, close, attach, replace) are serialised by the
 * graph lock; changes that move edges under live I/O happen inside a drained
 * section (bd_drained_begin/end).
 *
 * Errors: request functions return 0 (or a non-negative result where stated)
 * or -errno. Setup functions take struct bd_error **errp last (see
 * common/error.h).
 */
#ifndef BLKRIG_BLOCK_H
#define BLKRIG_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <jansson.h>

#include "common/error.h"

struct bd_graph;
struct bd_node;
struct bd_child;
struct bd_blk;

/* ------------------------------------------------------------------ */
/* I/O vectors                                                          */

#define BD_QIOV_INLINE 4

/*
 * A scatter/gather list with its total size. Small lists live inline so that
 * slicing a one-buffer request (the common case: FUSE, qemu-io) never
 * allocates. A qiov does not own the buffers it points at.
 */
struct bd_qiov {
    struct iovec *iov;
    int niov;
    int nalloc;       /* 0 while iov points at inline_iov */
    size_t size;
    struct iovec inline_iov[BD_QIOV_INLINE];
};

void bd_qiov_init(struct bd_qiov *q);
void bd_qiov_init_buf(struct bd_qiov *q, void *buf, size_t len);
void bd_qiov_add(struct bd_qiov *q, void *base, size_t len);
/* dst = bytes [off, off+len) of src; dst must be uninitialised or destroyed */
void bd_qiov_slice(struct bd_qiov *dst, const struct bd_qiov *src,
                   size_t off, size_t len);
void bd_qiov_destroy(struct bd_qiov *q);
void bd_qiov_memset(struct bd_qiov *q, size_t off, int c, size_t len);
/* Copy between a qiov (starting at off) and a flat buffer; return bytes. */
size_t bd_qiov_to_buf(const struct bd_qiov *q, size_t off, void *buf,
                      size_t len);
size_t bd_qiov_from_buf(struct bd_qiov *q, size_t off, const void *buf,
                        size_t len);
bool bd_qiov_is_zero(const struct bd_qiov *q);

/* ------------------------------------------------------------------ */
/* Flags                                                                */

/* Open flags (node->open_flags). */
#define BD_O_RDWR          0x0001  /* open for writing */
#define BD_O_NOCACHE       0x0002  /* cache.direct: bypass the host cache */
#define BD_O_NO_FLUSH      0x0004  /* cache.no-flush: flush_to_disk is a no-op */
#define BD_O_NATIVE_AIO    0x0008  /* aio=native (file driver) */
#define BD_O_UNMAP         0x0010  /* discard=unmap: discards reach the driver */
#define BD_O_FORCE_SHARE   0x0020  /* -U: don't take locks, share everything */
#define BD_O_PROTOCOL      0x0040  /* filename names a protocol node only */
#define BD_O_NO_BACKING    0x0080  /* don't open backing files */
#define BD_O_AUTO_RDONLY   0x0100  /* fall back to read-only when RW fails */
#define BD_O_NO_IO         0x0200  /* metadata only (qemu-img info) */
/* qcow2 (qemu-img check -r): open damaged or corrupt-marked images so they
 * can be repaired; never inherited by children. */
#define BD_O_CHECK         0x0400
#define BD_O_INHERIT_MASK  (BD_O_RDWR | BD_O_NOCACHE | BD_O_NO_FLUSH | \
                            BD_O_NATIVE_AIO | BD_O_UNMAP | BD_O_FORCE_SHARE | \
                            BD_O_AUTO_RDONLY | BD_O_NO_IO)

/* Request flags. */
#define BD_REQ_FUA             0x0001  /* write through to stable storage */
#define BD_REQ_MAY_UNMAP       0x0002  /* write-zeroes may deallocate */
#define BD_REQ_NO_FALLBACK     0x0004  /* write-zeroes: fail rather than write
                                          a zero buffer */
#define BD_REQ_WRITE_UNCHANGED 0x0008  /* data is unchanged (CBW skips it) */
#define BD_REQ_ZERO_WRITE      0x0010  /* pwritev carrying zeroes: take the
                                          write-zeroes path */
#define BD_REQ_WRITE_COMPRESSED 0x0020 /* compressed write (qcow2) */
#define BD_REQ_NO_SERIALISE    0x0040  /* internal: skip overlap waiting */
#define BD_REQ_VMSTATE         0x0080  /* qemu-io -b: VM state area */

/* Permissions on an edge (QEMU's BlockPermission bit order). */
#define BD_PERM_CONSISTENT_READ 0x01
#define BD_PERM_WRITE           0x02
#define BD_PERM_WRITE_UNCHANGED 0x04
#define BD_PERM_RESIZE          0x08
#define BD_PERM_ALL             0x0f
#define BD_PERM__COUNT          4

const char *bd_perm_name(unsigned bit_index);
/* "write, resize" style list of the bits in perm (static per-thread buf). */
const char *bd_perm_names(uint64_t perm);

/* Block status result bits. */
#define BD_BLOCK_DATA          0x01  /* reads come from this node's data */
#define BD_BLOCK_ZERO          0x02  /* reads return zeroes */
#define BD_BLOCK_OFFSET_VALID  0x04  /* *map is a valid offset in *file */
#define BD_BLOCK_RAW           0x08  /* filter: ask *file at *map */
#define BD_BLOCK_ALLOCATED     0x10  /* content is defined in this layer */
#define BD_BLOCK_EOF           0x20  /* range reaches the end of the node */
#define BD_BLOCK_RECURSE       0x40  /* ask *file for ZERO */

/* ------------------------------------------------------------------ */
/* Graph                                                                */

struct bd_graph *bd_graph_new(void);
/* Close every node and backend still in the graph. */
void bd_graph_free(struct bd_graph *g);
struct bd_node *bd_graph_find_node(struct bd_graph *g, const char *name);
/* Call fn for every node (creation order) under the graph lock; fn must not
 * change the graph. Stops early when fn returns non-zero. */
int bd_graph_foreach_node(struct bd_graph *g,
                          int (*fn)(struct bd_node *n, void *opaque),
                          void *opaque);
/* Monotonic counter bumped by every graph change (for cheap cache checks). */
uint64_t bd_graph_generation(struct bd_graph *g);
/* Requests in flight on every node of g, summed (a request suspended at a
 * blkdebug breakpoint counts): 0 means no request can still complete and
 * raise an event, unless some thread starts a new one. */
unsigned bd_graph_in_flight(struct bd_graph *g);

/*
 * Asynchronous events (QMP events: BLOCK_JOB_*, BLOCK_EXPORT_DELETED, our
 * BLKDEBUG_* events). Any layer emits them through its graph; the monitor
 * (or a scenario transcript) installs the sink. name is the QMP event name,
 * data the event's "data" object (reference stolen; may be NULL). The sink
 * is called in the emitting thread and must not block on I/O. Without a
 * sink events are dropped.
 */
typedef void bd_qevent_fn(void *opaque, const char *name, json_t *data);
void bd_graph_set_qevent_sink(struct bd_graph *g, bd_qevent_fn *fn,
                              void *opaque);
void bd_graph_emit_qevent(struct bd_graph *g, const char *name,
                          json_t *data);

/*
 * Fault points (blkrig sweep): when a hook is set, every request a driver
 * is about to execute on any node of the graph (reads, writes, write-zeroes,
 * discards, flushes to disk; after splitting and alignment, not the
 * pass-through of filters without their own callback) is first offered to
 * it. A non-zero return (-errno) fails that request without reaching the
 * driver. The hook runs on the requesting thread and must be thread-safe.
 * Set it before I/O starts; NULL removes it.
 */
enum bd_fault_type {
    BD_FAULT_READ,
    BD_FAULT_WRITE,
    BD_FAULT_WRITE_ZEROES,
    BD_FAULT_DISCARD,
    BD_FAULT_FLUSH,
    BD_FAULT__MAX
};
typedef int bd_fault_hook_fn(void *opaque, struct bd_node *n,
                             enum bd_fault_type type, int64_t off,
                             int64_t bytes);
void bd_graph_set_fault_hook(struct bd_graph *g, bd_fault_hook_fn *fn,
                             void *opaque);

/*
 * Open a node as qemu-io / bdrv_open does.
 *  filename: may be NULL; may be "json:{...}", "blkdebug:CONF:IMG", a
 *            protocol-prefixed name or a plain path.
 *  options:  flat dict (common/opts.h), consumed (the reference is stolen);
 *            may be NULL. "driver" picks the driver; without it the format is
 *            probed (raw or qcow2) over a protocol node opened from filename.
 *  flags:    BD_O_* flags.
 * Returns the new node with one reference held by the caller.
 */
struct bd_node *bd_open(struct bd_graph *g, const char *filename,
                        json_t *options, int flags, struct bd_error **errp);
/*
 * blockdev-add: open a node from a nested (QAPI-shaped) options object that
 * must carry "driver" and, at the top level, "node-name". keyval is true
 * when the scalars are strings from dotted key=value syntax (qsd's
 * --blockdev driver=...), false for JSON (QMP, --blockdev '{...}'): QEMU
 * words type errors differently for the two ("Parameter 'size' expects
 * integer" vs "Invalid parameter type for 'size', expected: integer").
 * The graph keeps the reference; the node stays until bd_blockdev_del().
 */
struct bd_node *bd_blockdev_add(struct bd_graph *g, json_t *nested,
                                bool keyval, struct bd_error **errp);
/* blockdev-del: refuses nodes that have parents or users. */
int bd_blockdev_del(struct bd_graph *g, const char *node_name,
                    struct bd_error **errp);

void bd_ref(struct bd_node *n);
void bd_unref(struct bd_node *n);

/* ------------------------------------------------------------------ */
/* Node properties                                                      */

const char *bd_node_name(const struct bd_node *n);
/* True for generated names ("#block123"): not user-visible as node-name. */
bool bd_node_name_generated(const struct bd_node *n);
const char *bd_node_driver_name(const struct bd_node *n);
/* The filename as qemu-img info would print it (may be json:{...}). */
const char *bd_node_filename(struct bd_node *n);
int64_t bd_getlength(struct bd_node *n);
bool bd_is_read_only(const struct bd_node *n);
int bd_node_open_flags(const struct bd_node *n);
struct bd_graph *bd_node_graph(const struct bd_node *n);
/* The node's primary child (file, or the filtered child of a filter),
 * backing child, and for filters the filtered child; NULL if none. */
struct bd_node *bd_node_file(struct bd_node *n);
struct bd_node *bd_node_backing(struct bd_node *n);
struct bd_node *bd_node_filtered(struct bd_node *n);
bool bd_node_is_filter(const struct bd_node *n);
/* Skip filters downwards from n (n itself if it is not a filter). */
struct bd_node *bd_skip_filters(struct bd_node *n);
uint32_t bd_node_request_alignment(const struct bd_node *n);

struct bd_node_info {
    const char *format_name;
    int64_t cluster_size;        /* 0 when the format has none */
    int64_t vm_state_offset;
    bool is_dirty;
    json_t *format_specific;     /* owned by caller; may be NULL */
};
int bd_get_info(struct bd_node *n, struct bd_node_info *info);

/* ------------------------------------------------------------------ */
/* Direct node requests (for jobs and tools that own the node).         */
/* These run the full request path (events, alignment, splitting) on   */
/* the node itself, like QEMU's bdrv_* functions.                       */

int bd_node_preadv(struct bd_node *n, int64_t off, int64_t bytes,
                   struct bd_qiov *qiov, int flags);
int bd_node_pwritev(struct bd_node *n, int64_t off, int64_t bytes,
                    struct bd_qiov *qiov, int flags);
int bd_node_pwrite_zeroes(struct bd_node *n, int64_t off, int64_t bytes,
                          int flags);
int bd_node_pdiscard(struct bd_node *n, int64_t off, int64_t bytes);
int bd_node_flush(struct bd_node *n);
/*
 * Block status of [off, off+bytes). Returns BD_BLOCK_* bits or -errno;
 * *pnum receives the length of the run with identical status (> 0 unless at
 * EOF); *map and *file, when not NULL, the mapping for OFFSET_VALID.
 */
int bd_node_block_status(struct bd_node *n, int64_t off, int64_t bytes,
                         int64_t *pnum, int64_t *map, struct bd_node **file);
/* Is [off, off+bytes) allocated in n (1) or not (0), run length in *pnum. */
int bd_node_is_allocated(struct bd_node *n, int64_t off, int64_t bytes,
                         int64_t *pnum);
/* Allocated anywhere in the backing chain from top down to (not including)
 * base; base NULL = whole chain. Semantics of qemu-io's `map`. */
int bd_is_allocated_above(struct bd_node *top, struct bd_node *base,
                          int64_t off, int64_t bytes, int64_t *pnum);
enum bd_prealloc {
    BD_PREALLOC_OFF,
    BD_PREALLOC_METADATA,
    BD_PREALLOC_FALLOC,
    BD_PREALLOC_FULL,
    BD_PREALLOC__MAX
};
extern const char *const bd_prealloc_names[];
int bd_node_truncate(struct bd_node *n, int64_t size, bool exact,
                     enum bd_prealloc prealloc, struct bd_error **errp);

/* ------------------------------------------------------------------ */
/* Drain                                                                */

/* Stop new requests from the backends (and jobs) above n, wait until no
 * request is in flight in n or below. Nests. */
void bd_drained_begin(struct bd_node *n);
void bd_drained_end(struct bd_node *n);
/* Drain every node of the graph (shutdown). */
void bd_drain_all(struct bd_graph *g);

/* ------------------------------------------------------------------ */
/* Block backends                                                       */

/*
 * A backend is a named or anonymous user of one root node: exports, qemu-io,
 * jobs. It holds a root edge with permissions, keeps I/O statistics and the
 * write-cache mode (writethrough = every write carries FUA).
 * name may be NULL ("an unnamed block device" in permission messages).
 */
struct bd_blk *bd_blk_new(struct bd_graph *g, const char *name,
                          uint64_t perm, uint64_t shared);
/* Attach to node (takes a reference); checks permissions. */
int bd_blk_insert(struct bd_blk *b, struct bd_node *n, struct bd_error **errp);
/* Detach from the node (drops the reference). */
void bd_blk_remove(struct bd_blk *b);
void bd_blk_free(struct bd_blk *b);
struct bd_node *bd_blk_node(struct bd_blk *b);
const char *bd_blk_name(const struct bd_blk *b);
int bd_blk_set_perm(struct bd_blk *b, uint64_t perm, uint64_t shared,
                    struct bd_error **errp);
void bd_blk_set_write_cache(struct bd_blk *b, bool enable);
bool bd_blk_write_cache(const struct bd_blk *b);
int64_t bd_blk_getlength(struct bd_blk *b);

int bd_blk_preadv(struct bd_blk *b, int64_t off, int64_t bytes,
                  struct bd_qiov *qiov, int flags);
int bd_blk_pwritev(struct bd_blk *b, int64_t off, int64_t bytes,
                   struct bd_qiov *qiov, int flags);
int bd_blk_pread(struct bd_blk *b, int64_t off, int64_t bytes, void *buf,
                 int flags);
int bd_blk_pwrite(struct bd_blk *b, int64_t off, int64_t bytes,
                  const void *buf, int flags);
int bd_blk_pwrite_zeroes(struct bd_blk *b, int64_t off, int64_t bytes,
                         int flags);
int bd_blk_pdiscard(struct bd_blk *b, int64_t off, int64_t bytes);
int bd_blk_flush(struct bd_blk *b);
int bd_blk_truncate(struct bd_blk *b, int64_t size, bool exact,
                    enum bd_prealloc prealloc, struct bd_error **errp);

/* Accounting, as query-blockstats reports it. */
enum bd_acct_type {
    BD_ACCT_READ,
    BD_ACCT_WRITE,
    BD_ACCT_FLUSH,
    BD_ACCT_UNMAP,
    BD_ACCT_ZONE_APPEND,   /* never used; keeps QEMU's histogram slots */
    BD_ACCT__MAX
};
struct bd_acct_hist {
    uint64_t *boundaries;   /* nbounds entries, strictly increasing, > 0 */
    int nbounds;
    uint64_t *bins;         /* nbounds + 1 entries */
};
struct bd_acct_stats {
    uint64_t bytes[BD_ACCT__MAX];
    uint64_t ops[BD_ACCT__MAX];
    uint64_t failed_ops[BD_ACCT__MAX];
    uint64_t invalid_ops[BD_ACCT__MAX];
    uint64_t total_time_ns[BD_ACCT__MAX];
    uint64_t merged[BD_ACCT__MAX];
    int64_t last_access_ns;   /* 0 = never */
    uint64_t wr_highest_offset;
};
/* Snapshot of the counters (histograms are copied into hist[], caller frees
 * with bd_acct_hist_free). */
void bd_blk_get_stats(struct bd_blk *b, struct bd_acct_stats *st,
                      struct bd_acct_hist hist[BD_ACCT__MAX]);
void bd_acct_hist_free(struct bd_acct_hist *h);
/* Replace (nbounds > 0) or remove (boundaries NULL) the histogram of type t.
 * Returns -EINVAL if boundaries are not strictly increasing and positive. */
int bd_blk_set_histogram(struct bd_blk *b, enum bd_acct_type t,
                         const uint64_t *boundaries, int nbounds);

/* Enumerate backends of the graph (creation order). */
int bd_graph_foreach_blk(struct bd_graph *g,
                         int (*fn)(struct bd_blk *b, void *opaque),
                         void *opaque);

/* ------------------------------------------------------------------ */
/* Debug hooks (blkdebug breakpoints), found by walking down from n     */
/* through file and filtered children to the first node that has them. */
/* All return 0 or -errno (-ENOTSUP when no node implements them).      */

int bd_debug_breakpoint(struct bd_node *n, const char *event,
                        const char *tag);
int bd_debug_remove_breakpoint(struct bd_node *n, const char *tag);
int bd_debug_resume(struct bd_node *n, const char *tag);
bool bd_debug_is_suspended(struct bd_node *n, const char *tag);
/* Rules, state, hit counters and suspended requests of the first node below
 * n that has them, as JSON (blkrig io `blkdebug_info`, QMP query-blkdebug);
 * NULL when there is none. Caller owns the result. */
json_t *bd_debug_query(struct bd_node *n);

#endif
