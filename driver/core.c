/*
 * driver/core.c - the node graph: opening nodes the way bdrv_open does,
 * children and their roles, reference counts, permissions, drain, and the
 * lookup of debug hooks.
 *
 * Locking: the graph lock (recursive, because opening a node opens its
 * children) protects the node list, the backend list and every child edge.
 * Request paths read child pointers without it; edges under live I/O are
 * only moved inside a drained section, which guarantees no request is in
 * flight in the nodes concerned.
 */
#include "common/config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cutils.h"
#include "common/log.h"
#include "driver/block-int.h"
#include "driver/blk-int.h"
#include "driver/dirty-bitmap.h"
#include "driver/file-sys.h"

struct bd_graph {
    pthread_mutex_t lock;              /* recursive */
    struct bd_list nodes;
    struct bd_list blks;
    uint64_t next_auto_id;
    atomic_uint_fast64_t generation;
    /* Drain: waiters sleep on drain_cond; request completions broadcast it
     * only while somebody drains (drainers > 0). */
    pthread_mutex_t drain_lock;
    pthread_cond_t drain_cond;
    atomic_int drainers;
    /* Drivers known to this graph only (test drivers), NULL-terminated. */
    const struct bd_driver *const *extra_drivers;
    /* Syscall table for file nodes (tests swap it; see file-sys.h). */
    const struct bd_file_sys *file_sys;
    /* QMP-style event sink (monitor or scenario transcript). */
    pthread_mutex_t qevent_lock;
    bd_qevent_fn *qevent_fn;
    void *qevent_opaque;
    /* Fault-point hook (blkrig sweep); set before I/O starts, read on
     * every driver request, so an unhooked graph pays one load. */
    _Atomic(bd_fault_hook_fn *) fault_hook;
    void *fault_opaque;
};

static const char *const perm_names[BD_PERM__COUNT] = {
    "consistent read", "write", "write unchanged", "resize",
};

const char *const bd_prealloc_names[] = {
    "off", "metadata", "falloc", "full", NULL,
};

const char *bd_perm_name(unsigned bit_index)
{
    return bit_index < BD_PERM__COUNT ? perm_names[bit_index] : "?";
}

const char *bd_perm_names(uint64_t perm)
{
    static __thread char buf[128];
    unsigned i;

    buf[0] = '\0';
    for (i = 0; i < BD_PERM__COUNT; i++) {
        if (perm & (1ULL << i)) {
            if (buf[0]) {
                strcat(buf, ", ");
            }
            strcat(buf, perm_names[i]);
        }
    }
    return buf;
}

/* ------------------------------------------------------------------ */
/* Graph                                                                */

struct bd_graph *bd_graph_new(void)
{
    struct bd_graph *g = bd_malloc0(sizeof(*g));
    pthread_mutexattr_t attr;

    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&g->lock, &attr);
    pthread_mutexattr_destroy(&attr);
    pthread_mutex_init(&g->drain_lock, NULL);
    pthread_cond_init(&g->drain_cond, NULL);
    pthread_mutex_init(&g->qevent_lock, NULL);
    bd_list_init(&g->nodes);
    bd_list_init(&g->blks);
    return g;
}

void bd_graph_lock(struct bd_graph *g)
{
    pthread_mutex_lock(&g->lock);
}

void bd_graph_unlock(struct bd_graph *g)
{
    pthread_mutex_unlock(&g->lock);
}

struct bd_list *bd_graph_blk_list(struct bd_graph *g)
{
    return &g->blks;
}

void bd_graph_bump(struct bd_graph *g)
{
    atomic_fetch_add(&g->generation, 1);
}

const struct bd_file_sys *bd_graph_file_sys(struct bd_graph *g)
{
    return g->file_sys ? g->file_sys : &bd_file_sys_default;
}

void bd_graph_set_file_sys(struct bd_graph *g, const struct bd_file_sys *sys)
{
    g->file_sys = sys;
}

void bd_graph_set_extra_drivers(struct bd_graph *g,
                                const struct bd_driver *const *list)
{
    g->extra_drivers = list;
}

/* The registry first, so a graph can add drivers but never shadow one. */
static const struct bd_driver *graph_find_driver(struct bd_graph *g,
                                                 const char *name)
{
    const struct bd_driver *drv = bd_find_driver(name);
    const struct bd_driver *const *d;

    for (d = g->extra_drivers; !drv && d && *d; d++) {
        if (!strcmp((*d)->name, name)) {
            drv = *d;
        }
    }
    return drv;
}

void bd_graph_set_qevent_sink(struct bd_graph *g, bd_qevent_fn *fn,
                              void *opaque)
{
    pthread_mutex_lock(&g->qevent_lock);
    g->qevent_fn = fn;
    g->qevent_opaque = opaque;
    pthread_mutex_unlock(&g->qevent_lock);
}

void bd_graph_set_fault_hook(struct bd_graph *g, bd_fault_hook_fn *fn,
                             void *opaque)
{
    g->fault_opaque = opaque;
    atomic_store(&g->fault_hook, fn);
}

int bd_fault_point(struct bd_node *bs, enum bd_fault_type type, int64_t off,
                   int64_t bytes)
{
    struct bd_graph *g = bs->graph;
    bd_fault_hook_fn *fn = g ? atomic_load(&g->fault_hook) : NULL;

    return fn ? fn(g->fault_opaque, bs, type, off, bytes) : 0;
}

void bd_graph_emit_qevent(struct bd_graph *g, const char *name, json_t *data)
{
    /* The lock also orders events: sinks see them in emission order. */
    pthread_mutex_lock(&g->qevent_lock);
    if (g->qevent_fn) {
        g->qevent_fn(g->qevent_opaque, name, data);
    } else {
        json_decref(data);
    }
    pthread_mutex_unlock(&g->qevent_lock);
}

uint64_t bd_graph_generation(struct bd_graph *g)
{
    return atomic_load(&g->generation);
}

void bd_graph_free(struct bd_graph *g)
{
    if (!g) {
        return;
    }
    bd_drain_all(g);
    /* Backends first: they hold the roots. */
    while (!bd_list_empty(&g->blks)) {
        struct bd_blk *b = bd_blk_from_link(g->blks.next);
        bd_blk_free(b);
    }
    /* Then the nodes the monitor still owns, newest first so that parents
     * go before their children. */
    for (;;) {
        struct bd_list *pos;
        struct bd_node *victim = NULL;

        pthread_mutex_lock(&g->lock);
        for (pos = g->nodes.prev; pos != &g->nodes; pos = pos->prev) {
            struct bd_node *n = BD_LIST_ENTRY(pos, struct bd_node, graph_link);
            if (n->in_graph_named && bd_list_empty(&n->parents)) {
                victim = n;
                break;
            }
        }
        if (victim) {
            victim->in_graph_named = false;
        }
        pthread_mutex_unlock(&g->lock);
        if (!victim) {
            break;
        }
        bd_unref(victim);
    }
    if (!bd_list_empty(&g->nodes)) {
        bd_log(BD_LOG_WARN, "graph freed with nodes still referenced");
    }
    pthread_mutex_destroy(&g->lock);
    pthread_mutex_destroy(&g->drain_lock);
    pthread_cond_destroy(&g->drain_cond);
    pthread_mutex_destroy(&g->qevent_lock);
    free(g);
}

struct bd_node *bd_graph_find_node(struct bd_graph *g, const char *name)
{
    struct bd_list *pos;
    struct bd_node *found = NULL;

    if (!name) {
        return NULL;
    }
    pthread_mutex_lock(&g->lock);
    bd_list_for_each(pos, &g->nodes) {
        struct bd_node *n = BD_LIST_ENTRY(pos, struct bd_node, graph_link);
        if (!strcmp(n->node_name, name)) {
            found = n;
            break;
        }
    }
    pthread_mutex_unlock(&g->lock);
    return found;
}

int bd_graph_foreach_node(struct bd_graph *g,
                          int (*fn)(struct bd_node *n, void *opaque),
                          void *opaque)
{
    struct bd_list *pos;
    int ret = 0;

    pthread_mutex_lock(&g->lock);
    bd_list_for_each(pos, &g->nodes) {
        ret = fn(BD_LIST_ENTRY(pos, struct bd_node, graph_link), opaque);
        if (ret) {
            break;
        }
    }
    pthread_mutex_unlock(&g->lock);
    return ret;
}

/* ------------------------------------------------------------------ */
/* Node properties                                                      */

const char *bd_node_name(const struct bd_node *n)
{
    return n->node_name;
}

bool bd_node_name_generated(const struct bd_node *n)
{
    return n->name_generated;
}

const char *bd_node_driver_name(const struct bd_node *n)
{
    return n->drv->name;
}

const char *bd_node_filename(struct bd_node *n)
{
    if (n->filename && n->filename[0]) {
        return n->filename;
    }
    if (n->file) {
        return bd_node_filename(n->file->node);
    }
    return n->filename ? n->filename : "";
}

bool bd_is_read_only(const struct bd_node *n)
{
    return n->read_only;
}

int bd_node_open_flags(const struct bd_node *n)
{
    return n->open_flags;
}

struct bd_graph *bd_node_graph(const struct bd_node *n)
{
    return n->graph;
}

struct bd_child *bd_node_child(struct bd_node *bs, const char *name)
{
    struct bd_list *pos;

    bd_list_for_each(pos, &bs->children) {
        struct bd_child *c = BD_LIST_ENTRY(pos, struct bd_child, parent_link);
        if (!strcmp(c->name, name)) {
            return c;
        }
    }
    return NULL;
}

struct bd_child *bd_filter_child(struct bd_node *bs)
{
    struct bd_list *pos;

    if (!bs->drv->is_filter) {
        return NULL;
    }
    bd_list_for_each(pos, &bs->children) {
        struct bd_child *c = BD_LIST_ENTRY(pos, struct bd_child, parent_link);
        if (c->role & BD_ROLE_FILTERED) {
            return c;
        }
    }
    return NULL;
}

struct bd_node *bd_node_file(struct bd_node *n)
{
    struct bd_child *c = n->file ? n->file : bd_filter_child(n);

    return c ? c->node : NULL;
}

struct bd_node *bd_node_backing(struct bd_node *n)
{
    return n->backing ? n->backing->node : NULL;
}

struct bd_node *bd_node_filtered(struct bd_node *n)
{
    struct bd_child *c = bd_filter_child(n);

    return c ? c->node : NULL;
}

bool bd_node_is_filter(const struct bd_node *n)
{
    return n->drv->is_filter;
}

struct bd_node *bd_skip_filters(struct bd_node *n)
{
    while (n && n->drv->is_filter) {
        struct bd_node *f = bd_node_filtered(n);
        if (!f) {
            break;
        }
        n = f;
    }
    return n;
}

uint32_t bd_node_request_alignment(const struct bd_node *n)
{
    return n->bl.request_alignment;
}

static int64_t getlength_uncached(struct bd_node *n)
{
    struct bd_child *fc = NULL;
    int64_t len;

    if (!n->drv) {
        return -ENOMEDIUM;
    }
    if (n->drv->getlength) {
        len = n->drv->getlength(n);
    } else {
        fc = bd_filter_child(n);
        if (!fc) {
            fc = n->file;
        }
        len = fc ? bd_getlength(fc->node) : -ENOTSUP;
    }
    /* QEMU keeps node sizes in 512-byte sectors, rounding up: a 1000-byte
     * file is a 1024-byte node whose tail reads as zeroes. Scripts see the
     * length (qemu-io `length`, the bounds of `read`), so do the same. */
    if (len > INT64_MAX - (BD_SECTOR_SIZE - 1)) {
        return -EFBIG;
    }
    return len < 0 ? len : BD_ROUND_UP(len, (int64_t)BD_SECTOR_SIZE);
}

/* The length is cached: writes past the end and truncates refresh it, so
 * the request path never asks the driver (an fstat per request). */
int64_t bd_getlength(struct bd_node *n)
{
    int64_t len = atomic_load(&n->cached_length);

    return len >= 0 ? len : getlength_uncached(n);
}

void bd_node_refresh_length(struct bd_node *bs)
{
    int64_t len = getlength_uncached(bs);
    struct bd_list *pos;

    atomic_store(&bs->cached_length, len);
    /* Filters and formats above may report our length as theirs. */
    bd_list_for_each(pos, &bs->parents) {
        struct bd_child *c = BD_LIST_ENTRY(pos, struct bd_child, node_link);
        if (c->parent && c->parent->drv->is_filter &&
            (c->role & BD_ROLE_FILTERED)) {
            bd_node_refresh_length(c->parent);
        }
    }
}

int bd_get_info(struct bd_node *n, struct bd_node_info *info)
{
    memset(info, 0, sizeof(*info));
    info->format_name = n->drv->name;
    if (n->drv->get_info) {
        return n->drv->get_info(n, info);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* In-flight accounting and drain                                       */

void bd_inc_in_flight(struct bd_node *bs)
{
    atomic_fetch_add(&bs->in_flight, 1);
}

void bd_dec_in_flight(struct bd_node *bs)
{
    struct bd_graph *g = bs->graph;

    if (atomic_fetch_sub(&bs->in_flight, 1) == 1 &&
        atomic_load(&g->drainers) > 0) {
        pthread_mutex_lock(&g->drain_lock);
        pthread_cond_broadcast(&g->drain_cond);
        pthread_mutex_unlock(&g->drain_lock);
    }
}

void bd_wait_quiesce_end(struct bd_node *bs)
{
    struct bd_graph *g = bs->graph;

    if (atomic_load(&bs->quiesce_counter) == 0) {
        return;
    }
    pthread_mutex_lock(&g->drain_lock);
    while (atomic_load(&bs->quiesce_counter) > 0) {
        pthread_cond_wait(&g->drain_cond, &g->drain_lock);
    }
    pthread_mutex_unlock(&g->drain_lock);
}

/*
 * Quiescing, QEMU's way. A node's quiesce_counter counts the drained
 * sections on it plus its quiesced child edges. When the counter leaves 0
 * the node quiesces every parent edge once (bd_child.quiesced_parent), so
 * the parents above it stop too; when it returns to 0 they are released.
 * Edges that appear, move or vanish while a node is drained keep the
 * parents' counts balanced (edge_quiesce_sync), which is what makes graph
 * changes inside a drained section (filter insertion by jobs) safe.
 * Parents quiesce before the node's drain_begin and resume after its
 * drain_end, so a filter stops its own activity only once nothing above
 * can send it more. Called with the graph lock held.
 */
static void node_drain_begin(struct bd_node *n);
static void node_drain_end(struct bd_node *n);

static void parent_drain_begin(struct bd_child *c)
{
    if (!c->quiesced_parent) {
        c->quiesced_parent = true;
        if (c->parent) {
            node_drain_begin(c->parent);
        }
    }
}

static void parent_drain_end(struct bd_child *c)
{
    if (c->quiesced_parent) {
        c->quiesced_parent = false;
        if (c->parent) {
            node_drain_end(c->parent);
        }
    }
}

static void node_drain_begin(struct bd_node *n)
{
    struct bd_list *pos;

    if (atomic_fetch_add(&n->quiesce_counter, 1) != 0) {
        return;
    }
    bd_list_for_each(pos, &n->parents) {
        parent_drain_begin(BD_LIST_ENTRY(pos, struct bd_child, node_link));
    }
    if (n->drv->drain_begin && !n->closing) {
        n->drv->drain_begin(n);
    }
}

static void node_drain_end(struct bd_node *n)
{
    struct bd_graph *g = n->graph;
    struct bd_list *pos;
    int old = atomic_fetch_sub(&n->quiesce_counter, 1);

    assert(old > 0);
    if (old != 1) {
        return;
    }
    /* A closing node's children are detached after its close callback;
     * releasing their drains must not call back into the closed driver. */
    if (n->drv->drain_end && !n->closing) {
        n->drv->drain_end(n);
    }
    bd_list_for_each(pos, &n->parents) {
        parent_drain_end(BD_LIST_ENTRY(pos, struct bd_child, node_link));
    }
    /* Wake backends waiting in bd_wait_quiesce_end. */
    pthread_mutex_lock(&g->drain_lock);
    pthread_cond_broadcast(&g->drain_cond);
    pthread_mutex_unlock(&g->drain_lock);
}

/* Edge c now points at c->node (or at nothing, node NULL): its parent is
 * quiesced exactly when that node is. */
static void edge_quiesce_sync(struct bd_child *c, struct bd_node *node)
{
    if (node && atomic_load(&node->quiesce_counter) > 0) {
        parent_drain_begin(c);
    } else {
        parent_drain_end(c);
    }
}

static unsigned busy_below(struct bd_node *n)
{
    struct bd_list *pos;
    unsigned sum = atomic_load(&n->in_flight);

    bd_list_for_each(pos, &n->children) {
        struct bd_child *c = BD_LIST_ENTRY(pos, struct bd_child, parent_link);
        sum += busy_below(c->node);
    }
    return sum;
}

static unsigned busy_above(struct bd_node *n)
{
    struct bd_list *pos;
    unsigned sum = 0;

    bd_list_for_each(pos, &n->parents) {
        struct bd_child *c = BD_LIST_ENTRY(pos, struct bd_child, node_link);
        if (c->parent) {
            sum += atomic_load(&c->parent->in_flight) + busy_above(c->parent);
        }
    }
    return sum;
}

/* Sleep until a request completes somewhere in g, or 10 ms: completions
 * broadcast drain_cond, and the timeout covers a completion that happened
 * between the caller's busy check and this wait (and requests that were
 * between their in-flight increment and their quiesce check). */
static void drain_wait(struct bd_graph *g)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 10 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&g->drain_lock);
    pthread_cond_timedwait(&g->drain_cond, &g->drain_lock, &ts);
    pthread_mutex_unlock(&g->drain_lock);
}

void bd_drained_begin(struct bd_node *n)
{
    struct bd_graph *g = n->graph;

    pthread_mutex_lock(&g->lock);
    node_drain_begin(n);
    pthread_mutex_unlock(&g->lock);
    bd_blk_drain_notify(g, true);
    atomic_fetch_add(&g->drainers, 1);
    for (;;) {
        unsigned busy;

        /* Never hold drain_lock while taking the graph lock: request
         * completions take drain_lock, and some run under the graph lock
         * (probing reads during an open). */
        pthread_mutex_lock(&g->lock);
        busy = busy_below(n) + busy_above(n);
        pthread_mutex_unlock(&g->lock);
        if (!busy) {
            break;
        }
        drain_wait(g);
    }
    atomic_fetch_sub(&g->drainers, 1);
}

void bd_drained_end(struct bd_node *n)
{
    struct bd_graph *g = n->graph;

    pthread_mutex_lock(&g->lock);
    node_drain_end(n);
    pthread_mutex_unlock(&g->lock);
    bd_blk_drain_notify(g, false);
}

unsigned bd_graph_in_flight(struct bd_graph *g)
{
    struct bd_list *pos;
    unsigned busy = 0;

    pthread_mutex_lock(&g->lock);
    bd_list_for_each(pos, &g->nodes) {
        busy += atomic_load(
            &BD_LIST_ENTRY(pos, struct bd_node, graph_link)->in_flight);
    }
    pthread_mutex_unlock(&g->lock);
    return busy;
}

void bd_drain_all(struct bd_graph *g)
{
    atomic_fetch_add(&g->drainers, 1);
    while (bd_graph_in_flight(g)) {
        drain_wait(g);
    }
    atomic_fetch_sub(&g->drainers, 1);
}

/* ------------------------------------------------------------------ */
/* Permissions                                                          */

static char *edge_desc(struct bd_child *c)
{
    const char *user = NULL;
    char *who = NULL;
    char *s = NULL;

    if (c->parent) {
        who = bd_strdup_printf("node '%s'", c->parent->node_name);
    } else {
        user = c->blk ? bd_blk_name(c->blk) : NULL;
        who = (user && *user) ? bd_strdup_printf("block device '%s'", user)
                              : bd_strdup("an unnamed block device");
    }
    s = bd_strdup_printf("%s (uses node '%s' as '%s' child)", who,
                         c->node->node_name, c->name);
    free(who);
    return s;
}

void bd_node_parent_perms(struct bd_node *n, uint64_t *perm, uint64_t *shared)
{
    struct bd_list *pos;

    *perm = 0;
    *shared = BD_PERM_ALL;
    bd_list_for_each(pos, &n->parents) {
        struct bd_child *c = BD_LIST_ENTRY(pos, struct bd_child, node_link);
        *perm |= c->perm;
        *shared &= c->shared;
    }
}

void bd_default_perms(struct bd_node *bs, struct bd_child *c, unsigned role,
                      uint64_t parent_perm, uint64_t parent_shared,
                      uint64_t *nperm, uint64_t *nshared)
{
    uint64_t perm = parent_perm;
    uint64_t shared = parent_shared;

    (void)c;
    if (role & BD_ROLE_FILTERED) {
        /* Filters forward their parents' needs unchanged. */
        *nperm = perm;
        *nshared = shared;
        return;
    }
    if (role & BD_ROLE_COW) {
        /* A backing file is only read; nobody may change it under us. */
        *nperm = perm ? BD_PERM_CONSISTENT_READ : 0;
        *nshared = BD_PERM_ALL & ~(BD_PERM_WRITE | BD_PERM_RESIZE);
        if (bs->open_flags & BD_O_FORCE_SHARE) {
            *nshared = BD_PERM_ALL;
        }
        return;
    }
    if (role & BD_ROLE_METADATA) {
        /* Formats update metadata even if the guest does not write, and
         * cannot let others write or resize the file under them. */
        if (!bs->read_only) {
            perm |= BD_PERM_WRITE | BD_PERM_RESIZE;
        }
        if (!(bs->open_flags & BD_O_NO_IO)) {
            perm |= BD_PERM_CONSISTENT_READ;
        }
        shared &= ~(BD_PERM_WRITE | BD_PERM_RESIZE);
    }
    if (role & BD_ROLE_DATA) {
        if (perm & BD_PERM_WRITE) {
            perm |= BD_PERM_RESIZE;
        }
    }
    if (bs->open_flags & BD_O_FORCE_SHARE) {
        shared = BD_PERM_ALL;
    }
    *nperm = perm;
    *nshared = shared;
}

/* Check that the parents of n agree with each other and with n itself. */
static int check_node_perms(struct bd_node *n, struct bd_error **errp)
{
    struct bd_list *pa;
    struct bd_list *pb;
    uint64_t perm;
    uint64_t shared;

    bd_node_parent_perms(n, &perm, &shared);
    if ((perm & (BD_PERM_WRITE | BD_PERM_RESIZE)) && n->read_only) {
        bd_error_setg(errp, "Block node is read-only");
        return -EPERM;
    }
    bd_list_for_each(pa, &n->parents) {
        struct bd_child *a = BD_LIST_ENTRY(pa, struct bd_child, node_link);

        bd_list_for_each(pb, &n->parents) {
            struct bd_child *b = BD_LIST_ENTRY(pb, struct bd_child, node_link);
            uint64_t clash;

            if (a == b) {
                continue;
            }
            /* QEMU asks "does a allow b?" with a in the outer loop, so
             * the first conflict it reports names the inner edge as the
             * one requiring and the outer one as unsharing. */
            clash = b->perm & ~a->shared;
            if (clash) {
                char *da = edge_desc(b);
                char *db = edge_desc(a);

                bd_error_setg(errp, "Permission conflict on node '%s': "
                              "permissions '%s' are both required by %s and "
                              "unshared by %s.", n->node_name,
                              bd_perm_names(clash), da, db);
                free(da);
                free(db);
                return -EPERM;
            }
        }
    }
    if (n->drv->check_perm) {
        return n->drv->check_perm(n, perm, shared, errp);
    }
    return 0;
}

struct perm_undo {
    struct bd_child *c;
    uint64_t perm;
    uint64_t shared;
};

struct perm_txn {
    struct perm_undo *v;
    size_t n;
    size_t cap;
};

static void txn_record(struct perm_txn *t, struct bd_child *c)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->v = bd_realloc(t->v, t->cap * sizeof(*t->v));
    }
    t->v[t->n].c = c;
    t->v[t->n].perm = c->perm;
    t->v[t->n].shared = c->shared;
    t->n++;
}

/* Recompute the perms of n's child edges and check every node below. */
static int refresh_below(struct bd_node *n, struct perm_txn *t,
                         struct bd_error **errp)
{
    struct bd_list *pos;
    uint64_t pperm;
    uint64_t pshared;
    int ret;

    bd_node_parent_perms(n, &pperm, &pshared);
    bd_list_for_each(pos, &n->children) {
        struct bd_child *c = BD_LIST_ENTRY(pos, struct bd_child, parent_link);
        uint64_t nperm;
        uint64_t nshared;

        if (n->drv->child_perm) {
            n->drv->child_perm(n, c, c->role, pperm, pshared, &nperm,
                               &nshared);
        } else {
            bd_default_perms(n, c, c->role, pperm, pshared, &nperm, &nshared);
        }
        txn_record(t, c);
        c->perm = nperm;
        c->shared = nshared;
    }
    bd_list_for_each(pos, &n->children) {
        struct bd_child *c = BD_LIST_ENTRY(pos, struct bd_child, parent_link);

        ret = check_node_perms(c->node, errp);
        if (ret < 0) {
            return ret;
        }
        ret = refresh_below(c->node, t, errp);
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

static void set_perms_below(struct bd_node *n)
{
    struct bd_list *pos;
    uint64_t perm;
    uint64_t shared;

    if (n->drv->set_perm) {
        bd_node_parent_perms(n, &perm, &shared);
        n->drv->set_perm(n, perm, shared);
    }
    bd_list_for_each(pos, &n->children) {
        set_perms_below(BD_LIST_ENTRY(pos, struct bd_child,
                                      parent_link)->node);
    }
}

int bd_refresh_perms(struct bd_node *n, struct bd_error **errp)
{
    struct perm_txn t = { 0 };
    int ret;

    pthread_mutex_lock(&n->graph->lock);
    ret = check_node_perms(n, errp);
    if (ret == 0) {
        ret = refresh_below(n, &t, errp);
    }
    if (ret < 0) {
        /* Roll back in reverse order so each edge gets its oldest value. */
        while (t.n > 0) {
            t.n--;
            t.v[t.n].c->perm = t.v[t.n].perm;
            t.v[t.n].c->shared = t.v[t.n].shared;
        }
    } else {
        set_perms_below(n);
    }
    pthread_mutex_unlock(&n->graph->lock);
    free(t.v);
    return ret;
}

/* ------------------------------------------------------------------ */
/* Children                                                             */

static struct bd_child *link_child(struct bd_node *parent,
                                   struct bd_node *child, const char *name,
                                   unsigned role)
{
    struct bd_child *c = bd_malloc0(sizeof(*c));

    c->name = bd_strdup(name);
    c->role = role;
    c->parent = parent;
    c->node = child;
    c->shared = BD_PERM_ALL;
    bd_ref(child);
    bd_list_add_tail(&parent->children, &c->parent_link);
    /* Newest parent first, as QEMU's parent list (permission messages). */
    bd_list_add_head(&child->parents, &c->node_link);
    edge_quiesce_sync(c, child);
    if (!strcmp(name, "file") || !strcmp(name, "image") ||
        ((role & BD_ROLE_PRIMARY) && !parent->file)) {
        if (!parent->file) {
            parent->file = c;
        }
    }
    if (role & BD_ROLE_COW) {
        parent->backing = c;
    }
    bd_graph_bump(parent->graph);
    return c;
}

static void unlink_child(struct bd_child *c)
{
    struct bd_node *parent = c->parent;

    bd_list_del(&c->parent_link);
    bd_list_del(&c->node_link);
    edge_quiesce_sync(c, NULL);
    if (parent->file == c) {
        parent->file = NULL;
    }
    if (parent->backing == c) {
        parent->backing = NULL;
    }
    bd_graph_bump(parent->graph);
}

struct bd_child *bd_attach_child(struct bd_node *parent, struct bd_node *child,
                                 const char *name, unsigned role,
                                 struct bd_error **errp)
{
    struct bd_child *c = NULL;
    int ret;

    pthread_mutex_lock(&parent->graph->lock);
    c = link_child(parent, child, name, role);
    ret = bd_refresh_perms(parent, errp);
    if (ret < 0) {
        unlink_child(c);
        pthread_mutex_unlock(&parent->graph->lock);
        bd_unref(child);
        free(c->name);
        free(c);
        return NULL;
    }
    pthread_mutex_unlock(&parent->graph->lock);
    return c;
}

void bd_detach_child(struct bd_child *c)
{
    struct bd_node *child = c->node;
    struct bd_graph *g = child->graph;

    pthread_mutex_lock(&g->lock);
    unlink_child(c);
    /* Losing a parent can only relax permissions: this cannot fail. */
    bd_refresh_perms(child, NULL);
    pthread_mutex_unlock(&g->lock);
    free(c->name);
    free(c);
    bd_unref(child);
}

struct bd_child *bd_open_child(struct bd_node *bs, json_t *options,
                               const char *name, const char *filename,
                               unsigned role, bool allow_none,
                               struct bd_error **errp)
{
    json_t *ref = json_object_get(options, name);
    struct bd_node *child = NULL;
    struct bd_child *c = NULL;
    json_t *sub = NULL;
    int child_flags;

    if (ref) {
        /* "file": "node-name" references an existing node. */
        char *refname = bd_opts_scalar_string(ref);

        json_object_del(options, name);
        if (bd_opts_has_prefix(options, name)) {
            bd_error_setg(errp, "Cannot reference an existing block device "
                          "with additional options or a new filename");
            free(refname);
            return NULL;
        }
        child = refname ? bd_graph_find_node(bs->graph, refname) : NULL;
        if (!child) {
            /* QEMU looks the name up as a device and as a node name. */
            bd_error_setg(errp, "Cannot find device='%s' nor node-name='%s'",
                          refname ? refname : "", refname ? refname : "");
            free(refname);
            return NULL;
        }
        free(refname);
        return bd_attach_child(bs, child, name, role, errp);
    }
    sub = bd_opts_extract(options, name);
    if (json_object_size(sub) == 0 && !filename) {
        json_decref(sub);
        if (!allow_none) {
            bd_error_setg(errp, "A block device must be specified for \"%s\"",
                          name);
        }
        return NULL;
    }
    /* Children inherit cache, discard and sharing flags; a data child of
     * a format is opened as a protocol when given by filename. */
    child_flags = bs->open_flags & BD_O_INHERIT_MASK;
    if (bs->read_only) {
        child_flags &= ~BD_O_RDWR;
    }
    if (role & BD_ROLE_COW) {
        child_flags &= ~BD_O_RDWR;
    }
    if (filename && !json_object_get(sub, "driver") &&
        (role & BD_ROLE_STORAGE)) {
        child_flags |= BD_O_PROTOCOL;
    }
    child = bd_open(bs->graph, filename, sub, child_flags, errp);
    if (!child) {
        return NULL;
    }
    c = bd_attach_child(bs, child, name, role, errp);
    bd_unref(child);
    return c;
}

/* Does `n` reach `target` through its children? */
static bool reaches(struct bd_node *n, struct bd_node *target)
{
    struct bd_list *pos;

    if (n == target) {
        return true;
    }
    bd_list_for_each(pos, &n->children) {
        if (reaches(BD_LIST_ENTRY(pos, struct bd_child, parent_link)->node,
                    target)) {
            return true;
        }
    }
    return false;
}

int bd_replace_node(struct bd_node *from, struct bd_node *to,
                    struct bd_error **errp)
{
    struct bd_graph *g = from->graph;
    struct bd_list *pos;
    struct bd_list *tmp;
    struct bd_list moved;
    int ret;

    bd_list_init(&moved);
    pthread_mutex_lock(&g->lock);
    bd_ref(from);
    bd_list_for_each_safe(pos, tmp, &from->parents) {
        struct bd_child *c = BD_LIST_ENTRY(pos, struct bd_child, node_link);

        /* Keep to's own path down to from (filter insertion), and never
         * create a loop. */
        if (c->parent && reaches(to, c->parent)) {
            continue;
        }
        bd_list_del(&c->node_link);
        if (c->blk) {
            /* Requests read a backend's root node under its root lock. */
            bd_blk_root_lock(c->blk);
            bd_child_set_node(c, to);
            bd_blk_root_unlock(c->blk);
        } else {
            bd_child_set_node(c, to);
        }
        bd_ref(to);
        bd_list_add_head(&to->parents, &c->node_link);
        edge_quiesce_sync(c, to);
        bd_unref(from);
    }
    bd_graph_bump(g);
    ret = bd_refresh_perms(to, errp);
    if (ret == 0) {
        bd_refresh_perms(from, NULL);
    }
    pthread_mutex_unlock(&g->lock);
    bd_unref(from);
    (void)moved;
    return ret;
}

/* ------------------------------------------------------------------ */
/* Open                                                                 */

static bool node_name_taken(struct bd_graph *g, const char *name)
{
    return bd_graph_find_node(g, name) != NULL || bd_blk_find(g, name);
}

static int assign_node_name(struct bd_node *bs, const char *name,
                            struct bd_error **errp)
{
    struct bd_graph *g = bs->graph;

    if (name) {
        /* QEMU checks the syntax first, then the length, each with its
         * own message. */
        if (!bd_id_wellformed(name, 0)) {
            bd_error_setg(errp, "Invalid node-name: '%s'", name);
            return -EINVAL;
        }
        if (strlen(name) >= sizeof(bs->node_name)) {
            bd_error_setg(errp, "Node name too long");
            return -EINVAL;
        }
        if (bd_blk_find(g, name)) {
            bd_error_setg(errp, "node-name=%s is conflicting with a device id",
                          name);
            return -EINVAL;
        }
        if (bd_graph_find_node(g, name)) {
            bd_error_setg(errp, "Duplicate nodes with node-name='%s'", name);
            return -EINVAL;
        }
        snprintf(bs->node_name, sizeof(bs->node_name), "%s", name);
        return 0;
    }
    do {
        snprintf(bs->node_name, sizeof(bs->node_name), "#block%" PRIu64,
                 g->next_auto_id++);
    } while (node_name_taken(g, bs->node_name));
    bs->name_generated = true;
    return 0;
}

/* Like bd_opts_take_enum, but a bad value stays in options (for the
 * caller's message) and is reported as -1 without an error set. */
static int take_enum_quiet(json_t *options, const char *key,
                           const char *const *names, int *out)
{
    json_t *v = json_object_get(options, key);
    char *str = NULL;
    int i;

    if (!v) {
        return 0;
    }
    str = bd_opts_scalar_string(v);
    for (i = 0; str && names[i]; i++) {
        if (!strcmp(names[i], str)) {
            free(str);
            *out = i;
            json_object_del(options, key);
            return 1;
        }
    }
    free(str);
    return -1;
}

/* Read the generic per-node options every driver accepts. */
static int take_common_options(json_t *options, int *flags,
                               int *detect_zeroes, char **node_name,
                               struct bd_error **errp)
{
    static const char *const dz_names[] = { "off", "on", "unmap", NULL };
    static const char *const discard_names[] = {
        "ignore", "off", "unmap", "on", NULL
    };
    bool b;
    int v;
    int r;

    bd_opts_take_str(options, "node-name", node_name);
    r = bd_opts_take_bool(options, "read-only", &b, errp);
    if (r < 0) {
        return -EINVAL;
    }
    if (r > 0) {
        *flags = b ? (*flags & ~BD_O_RDWR) : (*flags | BD_O_RDWR);
    }
    r = bd_opts_take_bool(options, "auto-read-only", &b, errp);
    if (r < 0) {
        return -EINVAL;
    }
    if (r > 0) {
        *flags = b ? (*flags | BD_O_AUTO_RDONLY) : (*flags & ~BD_O_AUTO_RDONLY);
    }
    r = bd_opts_take_bool(options, "cache.direct", &b, errp);
    if (r < 0) {
        return -EINVAL;
    }
    if (r > 0) {
        *flags = b ? (*flags | BD_O_NOCACHE) : (*flags & ~BD_O_NOCACHE);
    }
    r = bd_opts_take_bool(options, "cache.no-flush", &b, errp);
    if (r < 0) {
        return -EINVAL;
    }
    if (r > 0) {
        *flags = b ? (*flags | BD_O_NO_FLUSH) : (*flags & ~BD_O_NO_FLUSH);
    }
    r = bd_opts_take_bool(options, "force-share", &b, errp);
    if (r < 0) {
        return -EINVAL;
    }
    if (r > 0) {
        *flags = b ? (*flags | BD_O_FORCE_SHARE) : (*flags & ~BD_O_FORCE_SHARE);
    }
    /* bdrv_open's own wording for these two (QMP's schema validation
     * catches bad values earlier with QAPI's message). */
    r = take_enum_quiet(options, "discard", discard_names, &v);
    if (r < 0) {
        bd_error_setg(errp, "Invalid discard option");
        return -EINVAL;
    }
    if (r > 0) {
        *flags = (v >= 2) ? (*flags | BD_O_UNMAP) : (*flags & ~BD_O_UNMAP);
    }
    r = take_enum_quiet(options, "detect-zeroes", dz_names, &v);
    if (r < 0) {
        char *bad = bd_opts_scalar_string(json_object_get(options,
                                                          "detect-zeroes"));

        bd_error_setg(errp, "invalid parameter value: %s", bad ? bad : "");
        free(bad);
        return -EINVAL;
    }
    if (r > 0) {
        *detect_zeroes = v;
    }
    if (*detect_zeroes == 2 && !(*flags & BD_O_UNMAP)) {
        bd_error_setg(errp, "setting detect-zeroes to unmap is not allowed "
                      "without setting discard operation to unmap");
        return -EINVAL;
    }
    return 0;
}

static struct bd_node *node_new(struct bd_graph *g, const struct bd_driver *drv)
{
    struct bd_node *bs = bd_malloc0(sizeof(*bs));

    bs->graph = g;
    bs->drv = drv;
    bs->opaque = drv->instance_size ? bd_malloc0(drv->instance_size) : NULL;
    bd_list_init(&bs->children);
    bd_list_init(&bs->parents);
    bd_list_init(&bs->tracked_reqs);
    bd_list_init(&bs->bitmaps);
    bd_list_init(&bs->graph_link);
    pthread_mutex_init(&bs->reqs_lock, NULL);
    pthread_cond_init(&bs->reqs_cond, NULL);
    pthread_mutex_init(&bs->flush_lock, NULL);
    pthread_mutex_init(&bs->bitmaps_lock, NULL);
    atomic_store(&bs->refcnt, 1);
    atomic_store(&bs->cached_length, -1);
    bs->bl.request_alignment = 1;
    return bs;
}

static void node_free(struct bd_node *bs)
{
    pthread_mutex_destroy(&bs->reqs_lock);
    pthread_cond_destroy(&bs->reqs_cond);
    pthread_mutex_destroy(&bs->flush_lock);
    pthread_mutex_destroy(&bs->bitmaps_lock);
    json_decref(bs->open_options);
    free(bs->filename);
    free(bs->opaque);
    free(bs);
}

/* Inherit limits from the data/filtered children where the driver did not
 * set them, then let the driver have the last word. */
static int refresh_limits(struct bd_node *bs, struct bd_error **errp)
{
    struct bd_list *pos;

    bd_list_for_each(pos, &bs->children) {
        struct bd_child *c = BD_LIST_ENTRY(pos, struct bd_child, parent_link);
        struct bd_limits *cl = &c->node->bl;

        if (!(c->role & (BD_ROLE_DATA | BD_ROLE_FILTERED))) {
            continue;
        }
        if (cl->max_transfer &&
            (!bs->bl.max_transfer || cl->max_transfer < bs->bl.max_transfer)) {
            bs->bl.max_transfer = cl->max_transfer;
        }
        bs->bl.opt_transfer = BD_MAX(bs->bl.opt_transfer, cl->opt_transfer);
        bs->bl.min_mem_alignment = BD_MAX(bs->bl.min_mem_alignment,
                                          cl->min_mem_alignment);
        if (c->role & BD_ROLE_FILTERED) {
            bs->bl.request_alignment = BD_MAX(bs->bl.request_alignment,
                                              cl->request_alignment);
            bs->bl.pwrite_zeroes_alignment = cl->pwrite_zeroes_alignment;
            bs->bl.max_pwrite_zeroes = cl->max_pwrite_zeroes;
            bs->bl.pdiscard_alignment = cl->pdiscard_alignment;
            bs->bl.max_pdiscard = cl->max_pdiscard;
        }
    }
    if (bs->drv->refresh_limits) {
        return bs->drv->refresh_limits(bs, errp);
    }
    return 0;
}

/* Open the protocol layer for filename and probe the format over it. */
static struct bd_node *open_protocol_and_probe(struct bd_graph *g,
                                               const char *filename,
                                               json_t *file_opts, int flags,
                                               const struct bd_driver **fmt,
                                               struct bd_error **errp)
{
    struct bd_node *proto = NULL;
    uint8_t buf[2048] = { 0 };
    int64_t len;
    int n = 0;

    proto = bd_open(g, filename, file_opts, flags | BD_O_PROTOCOL, errp);
    if (!proto) {
        return NULL;
    }
    if (*fmt) {
        return proto;
    }
    len = bd_getlength(proto);
    if (len > 0) {
        struct bd_qiov q;
        int ret;

        n = (int)BD_MIN(len, (int64_t)sizeof(buf));
        n = BD_ROUND_DOWN(n, (int)proto->bl.request_alignment);
        if (n > 0) {
            uint8_t *abuf = bd_memalign(4096, (size_t)n);

            bd_qiov_init_buf(&q, abuf, (size_t)n);
            ret = bd_node_preadv(proto, 0, n, &q, 0);
            memcpy(buf, abuf, (size_t)n);
            free(abuf);
            if (ret < 0) {
                bd_error_setg_errno(errp, -ret,
                                    "Could not read image for determining "
                                    "its format");
                bd_unref(proto);
                return NULL;
            }
        }
    }
    *fmt = bd_probe_format(buf, n, filename);
    return proto;
}

static struct bd_node *open_node(struct bd_graph *g, const char *filename,
                                 json_t *options, int flags,
                                 const struct bd_driver *forced,
                                 struct bd_error **errp);

struct bd_node *bd_open(struct bd_graph *g, const char *filename,
                        json_t *options, int flags, struct bd_error **errp)
{
    return open_node(g, filename, options, flags, NULL, errp);
}

struct bd_node *bd_open_driver(struct bd_graph *g,
                               const struct bd_driver *drv,
                               json_t *options, int flags,
                               struct bd_error **errp)
{
    assert(drv);
    return open_node(g, NULL, options, flags, drv, errp);
}

static struct bd_node *open_node(struct bd_graph *g, const char *filename,
                                 json_t *options, int flags,
                                 const struct bd_driver *forced,
                                 struct bd_error **errp)
{
    const struct bd_driver *drv = NULL;
    struct bd_node *bs = NULL;
    struct bd_node *proto = NULL;
    bool probed = false;
    const char *orig_filename = NULL;
    char *drvname = NULL;
    char *node_name = NULL;
    int detect_zeroes = 0;
    const char *left = NULL;
    int ret;

    if (!options) {
        options = json_object();
    }
    if (filename && !strncmp(filename, "json:", 5)) {
        json_t *nested = bd_json_parse_options(filename + 5, errp);
        json_t *flat = NULL;
        const char *k;
        json_t *v;

        if (!nested) {
            json_decref(options);
            return NULL;
        }
        flat = bd_opts_flatten(nested);
        json_decref(nested);
        /* Explicit options win over the ones inside json:{}. */
        json_object_foreach(flat, k, v) {
            if (!json_object_get(options, k)) {
                json_object_set(options, k, v);
            }
        }
        json_decref(flat);
        filename = NULL;
    }
    if (filename && !*filename && !(flags & BD_O_PROTOCOL)) {
        filename = NULL;
    }

    pthread_mutex_lock(&g->lock);
    if (forced) {
        drv = forced;
    } else if (bd_opts_take_str(options, "driver", &drvname)) {
        drv = graph_find_driver(g, drvname);
        if (!drv) {
            bd_error_setg(errp, "Unknown driver '%s'", drvname);
            goto fail;
        }
    } else if (filename && (flags & BD_O_PROTOCOL)) {
        drv = bd_find_protocol(filename);
        if (!drv) {
            bd_error_setg(errp, "Unknown protocol '%.*s'",
                          (int)(strchr(filename, ':') - filename), filename);
            goto fail;
        }
    } else if ((flags & BD_O_PROTOCOL) &&
               bd_opts_peek_str(options, "filename")) {
        /* --image-opts file.filename=X: the protocol comes from X too. */
        drv = bd_find_protocol(bd_opts_peek_str(options, "filename"));
    }
    if ((drv && drv->is_format) || !drv) {
        if (filename || bd_opts_has_prefix(options, "file")) {
            if (!json_object_get(options, "file")) {
                json_t *file_opts = bd_opts_extract(options, "file");
                /* The format's own options are not parsed yet, so its
                 * discard setting cannot be inherited here. QEMU lets
                 * lower layers default to discard=unmap whatever the
                 * parent says, since the parent filters discards itself;
                 * so does this implicit protocol node. */
                int pflags = (flags & BD_O_INHERIT_MASK) | BD_O_UNMAP;

                probed = drv == NULL;
                proto = open_protocol_and_probe(g, filename, file_opts,
                                                pflags, &drv, errp);
                if (!proto) {
                    goto fail;
                }
                json_object_set_new(options, "file",
                                    json_string(proto->node_name));
            } else if (!drv) {
                /* "file" references a node: probe over it. */
                const char *ref = bd_opts_peek_str(options, "file");
                struct bd_node *fnode = bd_graph_find_node(g, ref ? ref : "");
                uint8_t buf[2048] = { 0 };
                int n = 0;

                if (fnode && bd_getlength(fnode) > 0) {
                    struct bd_qiov q;

                    n = (int)BD_MIN(bd_getlength(fnode), (int64_t)sizeof(buf));
                    bd_qiov_init_buf(&q, buf, (size_t)n);
                    if (bd_node_preadv(fnode, 0, n, &q, 0) < 0) {
                        n = 0;
                    }
                }
                drv = bd_probe_format(buf, n, ref);
                probed = true;
            }
            filename = NULL;
        } else if (!drv) {
            bd_error_setg(errp, "Must specify either driver or file");
            goto fail;
        }
    }

    bs = node_new(g, drv);
    bs->probed = probed;
    orig_filename = filename;
    if (filename && drv->parse_filename) {
        ret = drv->parse_filename(filename, options, errp);
        if (ret < 0) {
            goto fail;
        }
    } else if (filename && !json_object_get(options, "filename")) {
        json_object_set_new(options, "filename", json_string(filename));
    }
    ret = take_common_options(options, &flags, &detect_zeroes, &node_name,
                              errp);
    if (ret < 0) {
        goto fail;
    }
    ret = assign_node_name(bs, node_name, errp);
    if (ret < 0) {
        goto fail;
    }
    bs->open_flags = flags;
    bs->read_only = !(flags & BD_O_RDWR);
    bs->detect_zeroes = detect_zeroes;
    bs->filename = bd_strdup(bd_opts_peek_str(options, "filename"));
    if (!bs->filename && orig_filename) {
        bs->filename = bd_strdup(orig_filename);
    }
    /* Visible to children's permission and name checks while they open. */
    bd_list_add_tail(&g->nodes, &bs->graph_link);

    ret = drv->open(bs, options, flags, errp);
    if (ret < 0) {
        bd_list_del(&bs->graph_link);
        goto fail_children;
    }
    left = bd_opts_first_key(options);
    if (left) {
        bd_error_setg(errp, drv->is_format
                      ? "Block format '%s' does not support the option '%s'"
                      : "Block protocol '%s' doesn't support the option '%s'",
                      drv->name, left);
        goto fail_close;
    }
    ret = refresh_limits(bs, errp);
    if (ret < 0) {
        goto fail_close;
    }
    atomic_store(&bs->cached_length, getlength_uncached(bs));
    if (bs->filename == NULL && bs->file) {
        bs->filename = bd_strdup(bd_node_filename(bs->file->node));
    }
    bd_graph_bump(g);
    pthread_mutex_unlock(&g->lock);
    if (proto) {
        bd_unref(proto);
    }
    free(drvname);
    free(node_name);
    json_decref(options);
    return bs;

fail_close:
    bs->closing = true;
    if (drv->close) {
        drv->close(bs);
    }
    bd_list_del(&bs->graph_link);
fail_children:
    /* A failed open is not an open node: no drain callbacks either. */
    bs->closing = true;
    while (!bd_list_empty(&bs->children)) {
        bd_detach_child(BD_LIST_ENTRY(bs->children.next, struct bd_child,
                                      parent_link));
    }
fail:
    pthread_mutex_unlock(&g->lock);
    if (bs) {
        node_free(bs);
    }
    if (proto) {
        bd_unref(proto);
    }
    free(drvname);
    free(node_name);
    json_decref(options);
    return NULL;
}

void bd_ref(struct bd_node *n)
{
    atomic_fetch_add(&n->refcnt, 1);
}

static void node_close(struct bd_node *bs)
{
    struct bd_graph *g = bs->graph;

    /* Nobody references us any more, so nothing new can start; wait for
     * stragglers (a job thread finishing its last request). */
    while (atomic_load(&bs->in_flight) > 0) {
        bd_sleep_ns(1000 * 1000);
    }
    pthread_mutex_lock(&g->lock);
    bs->closing = true;
    pthread_mutex_unlock(&g->lock);
    if (bs->drv->close) {
        bs->drv->close(bs);
    }
    while (!bd_list_empty(&bs->bitmaps)) {
        bd_dirty_bitmap_release(BD_LIST_ENTRY(bs->bitmaps.next,
                                              struct bd_dirty_bitmap, link));
    }
    pthread_mutex_lock(&g->lock);
    while (!bd_list_empty(&bs->children)) {
        bd_detach_child(BD_LIST_ENTRY(bs->children.next, struct bd_child,
                                      parent_link));
    }
    bd_list_del(&bs->graph_link);
    bd_graph_bump(g);
    pthread_mutex_unlock(&g->lock);
    node_free(bs);
}

void bd_unref(struct bd_node *n)
{
    if (!n) {
        return;
    }
    if (atomic_fetch_sub(&n->refcnt, 1) == 1) {
        node_close(n);
    }
}

/* ------------------------------------------------------------------ */
/* blockdev-add / blockdev-del                                          */

struct bd_node *bd_blockdev_add(struct bd_graph *g, json_t *nested,
                                bool keyval, struct bd_error **errp)
{
    json_t *flat = NULL;
    struct bd_node *bs = NULL;
    int flags = BD_O_RDWR;
    int r;

    /* QEMU checks the whole tree against the schema before opening
     * anything, so a bad member deep down is reported first. */
    bd_qapi_set_extra_drivers(g->extra_drivers);
    r = qapi_validate(&bd_qapi_blockdev_options, nested, keyval, errp);
    bd_qapi_set_extra_drivers(NULL);
    if (r < 0) {
        return NULL;
    }
    if (!json_object_get(nested, "node-name")) {
        bd_error_setg(errp, "'node-name' must be specified for the root node");
        return NULL;
    }
    flat = bd_opts_flatten(nested);
    bs = bd_open(g, NULL, flat, flags, errp);
    if (!bs) {
        return NULL;
    }
    /* Keep the options typed whatever the syntax, as QEMU does (they
     * show up in generated json: filenames). */
    bs->open_options = keyval
        ? qapi_keyval_to_json(&bd_qapi_blockdev_options, nested, NULL)
        : json_deep_copy(nested);
    if (!bs->open_options) {
        bs->open_options = json_deep_copy(nested);
    }
    bs->in_graph_named = true;   /* the reference bd_open gave us */
    return bs;
}

static bool node_has_blk(struct bd_node *bs)
{
    struct bd_list *pos;

    bd_list_for_each(pos, &bs->parents) {
        if (BD_LIST_ENTRY(pos, struct bd_child, node_link)->blk) {
            return true;
        }
    }
    return false;
}

int bd_blockdev_del(struct bd_graph *g, const char *node_name,
                    struct bd_error **errp)
{
    struct bd_node *bs = NULL;

    pthread_mutex_lock(&g->lock);
    bs = bd_graph_find_node(g, node_name);
    if (!bs) {
        pthread_mutex_unlock(&g->lock);
        bd_error_setg(errp, "Failed to find node with node-name='%s'",
                      node_name);
        return -ENOENT;
    }
    /* QEMU's order and words: a backend (export, device) first, then
     * monitor ownership, then any other reference (parents, jobs). */
    if (node_has_blk(bs)) {
        pthread_mutex_unlock(&g->lock);
        bd_error_setg(errp, "Node %s is in use", node_name);
        return -EBUSY;
    }
    if (!bs->in_graph_named) {
        pthread_mutex_unlock(&g->lock);
        bd_error_setg(errp, "Node %s is not owned by the monitor",
                      bs->node_name);
        return -EINVAL;
    }
    if (!bd_list_empty(&bs->parents) || atomic_load(&bs->refcnt) > 1) {
        pthread_mutex_unlock(&g->lock);
        bd_error_setg(errp, "Block device %s is in use", bs->node_name);
        return -EBUSY;
    }
    bs->in_graph_named = false;
    pthread_mutex_unlock(&g->lock);
    bd_unref(bs);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Debug hooks                                                          */

enum debug_op { DBG_BREAK, DBG_REMOVE, DBG_RESUME, DBG_IS_SUSPENDED,
                DBG_QUERY };

static bool has_debug_op(const struct bd_driver *drv, enum debug_op op)
{
    switch (op) {
    case DBG_BREAK:
        return drv->debug_breakpoint != NULL;
    case DBG_REMOVE:
        return drv->debug_remove_breakpoint != NULL;
    case DBG_RESUME:
        return drv->debug_resume != NULL;
    case DBG_IS_SUSPENDED:
        return drv->debug_is_suspended != NULL;
    case DBG_QUERY:
    default:
        return drv->debug_query != NULL;
    }
}

/* Walk down file and filtered children to the first node providing op
 * (QEMU walks the same way, so a breakpoint on a qcow2 root finds the
 * blkdebug node under it). */
static struct bd_node *find_debug_node(struct bd_node *n, enum debug_op op)
{
    while (n) {
        struct bd_child *c = NULL;

        if (has_debug_op(n->drv, op)) {
            return n;
        }
        c = n->file ? n->file : bd_filter_child(n);
        n = c ? c->node : NULL;
    }
    return NULL;
}

int bd_debug_breakpoint(struct bd_node *n, const char *event, const char *tag)
{
    n = find_debug_node(n, DBG_BREAK);
    return n ? n->drv->debug_breakpoint(n, event, tag) : -ENOTSUP;
}

int bd_debug_remove_breakpoint(struct bd_node *n, const char *tag)
{
    n = find_debug_node(n, DBG_REMOVE);
    return n ? n->drv->debug_remove_breakpoint(n, tag) : -ENOTSUP;
}

int bd_debug_resume(struct bd_node *n, const char *tag)
{
    n = find_debug_node(n, DBG_RESUME);
    return n ? n->drv->debug_resume(n, tag) : -ENOTSUP;
}

bool bd_debug_is_suspended(struct bd_node *n, const char *tag)
{
    n = find_debug_node(n, DBG_IS_SUSPENDED);
    return n ? n->drv->debug_is_suspended(n, tag) : false;
}

json_t *bd_debug_query(struct bd_node *n)
{
    n = find_debug_node(n, DBG_QUERY);
    return n ? n->drv->debug_query(n) : NULL;
}
