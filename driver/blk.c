/*
 * driver/blk.c - block backends: the root edge through which users (exports,
 * qemu-io, jobs) reach a node. A backend adds what QEMU's BlockBackend adds:
 * bounds checks against the node length (-EIO past the end), writethrough
 * mode (FUA on every write), waiting out drained sections, and accounting
 * with optional latency histograms for query-blockstats.
 */
#include "common/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cutils.h"
#include "driver/blk-int.h"
#include "driver/block-int.h"

struct bd_blk {
    struct bd_list link;          /* in the graph's backend list */
    struct bd_graph *graph;
    char *name;                   /* NULL: anonymous */
    uint64_t perm;
    uint64_t shared;
    /* root_lock orders request entry against insert/remove: a request
     * reads root and counts itself in flight under it, so remove (which
     * clears root under it, then drains) never frees an edge or node a
     * request is entering through. */
    pthread_mutex_t root_lock;
    struct bd_child *root;        /* NULL while no node is inserted */
    atomic_bool write_cache;

    pthread_mutex_t stats_lock;   /* protects stats and hist */
    struct bd_acct_stats stats;
    struct bd_acct_hist hist[BD_ACCT__MAX];
};

struct bd_blk *bd_blk_from_link(struct bd_list *link)
{
    return BD_LIST_ENTRY(link, struct bd_blk, link);
}

struct bd_blk *bd_blk_find(struct bd_graph *g, const char *name)
{
    struct bd_list *pos;
    struct bd_blk *found = NULL;

    bd_graph_lock(g);
    bd_list_for_each(pos, bd_graph_blk_list(g)) {
        struct bd_blk *b = bd_blk_from_link(pos);
        if (b->name && !strcmp(b->name, name)) {
            found = b;
            break;
        }
    }
    bd_graph_unlock(g);
    return found;
}

void bd_blk_root_lock(struct bd_blk *b)
{
    pthread_mutex_lock(&b->root_lock);
}

void bd_blk_root_unlock(struct bd_blk *b)
{
    pthread_mutex_unlock(&b->root_lock);
}

void bd_blk_drain_notify(struct bd_graph *g, bool begin)
{
    (void)g;
    (void)begin;
}

struct bd_blk *bd_blk_new(struct bd_graph *g, const char *name,
                          uint64_t perm, uint64_t shared)
{
    struct bd_blk *b = bd_malloc0(sizeof(*b));

    b->graph = g;
    b->name = bd_strdup(name);
    b->perm = perm;
    b->shared = shared;
    atomic_store(&b->write_cache, true);
    pthread_mutex_init(&b->stats_lock, NULL);
    pthread_mutex_init(&b->root_lock, NULL);
    bd_graph_lock(g);
    bd_list_add_tail(bd_graph_blk_list(g), &b->link);
    bd_graph_unlock(g);
    return b;
}

int bd_blk_insert(struct bd_blk *b, struct bd_node *n, struct bd_error **errp)
{
    struct bd_child *c = bd_malloc0(sizeof(*c));
    int ret;

    assert(!b->root);
    c->name = bd_strdup("root");
    c->role = BD_ROLE_DATA | BD_ROLE_PRIMARY;
    c->blk = b;
    c->node = n;
    c->perm = b->perm;
    c->shared = b->shared;
    bd_list_init(&c->parent_link);
    bd_ref(n);
    bd_graph_lock(b->graph);
    bd_list_add_head(&n->parents, &c->node_link);
    ret = bd_refresh_perms(n, errp);
    if (ret < 0) {
        bd_list_del(&c->node_link);
        bd_refresh_perms(n, NULL);
        bd_graph_unlock(b->graph);
        bd_unref(n);
        free(c->name);
        free(c);
        return ret;
    }
    pthread_mutex_lock(&b->root_lock);
    b->root = c;
    pthread_mutex_unlock(&b->root_lock);
    bd_graph_bump(b->graph);
    bd_graph_unlock(b->graph);
    return 0;
}

void bd_blk_remove(struct bd_blk *b)
{
    struct bd_child *c = NULL;
    struct bd_node *n = NULL;

    /* Unpublish first: no request can enter after this, and the ones that
     * already entered are counted in flight on the node, so the drain
     * below waits for them before the edge goes away. */
    pthread_mutex_lock(&b->root_lock);
    c = b->root;
    b->root = NULL;
    pthread_mutex_unlock(&b->root_lock);
    if (!c) {
        return;
    }
    bd_graph_lock(b->graph);
    n = c->node;
    bd_graph_unlock(b->graph);
    bd_drained_begin(n);
    bd_graph_lock(b->graph);
    bd_list_del(&c->node_link);
    bd_refresh_perms(n, NULL);
    bd_graph_bump(b->graph);
    bd_graph_unlock(b->graph);
    bd_drained_end(n);
    free(c->name);
    free(c);
    bd_unref(n);
}

void bd_blk_free(struct bd_blk *b)
{
    int t;

    if (!b) {
        return;
    }
    bd_blk_remove(b);
    bd_graph_lock(b->graph);
    bd_list_del(&b->link);
    bd_graph_unlock(b->graph);
    for (t = 0; t < BD_ACCT__MAX; t++) {
        bd_acct_hist_free(&b->hist[t]);
    }
    pthread_mutex_destroy(&b->stats_lock);
    pthread_mutex_destroy(&b->root_lock);
    free(b->name);
    free(b);
}

struct bd_node *bd_blk_node(struct bd_blk *b)
{
    struct bd_node *n = NULL;

    pthread_mutex_lock(&b->root_lock);
    n = b->root ? b->root->node : NULL;
    pthread_mutex_unlock(&b->root_lock);
    return n;
}

const char *bd_blk_name(const struct bd_blk *b)
{
    return b->name ? b->name : "";
}

int bd_blk_set_perm(struct bd_blk *b, uint64_t perm, uint64_t shared,
                    struct bd_error **errp)
{
    uint64_t old_perm = b->perm;
    uint64_t old_shared = b->shared;
    int ret = 0;

    b->perm = perm;
    b->shared = shared;
    if (b->root) {
        bd_graph_lock(b->graph);
        b->root->perm = perm;
        b->root->shared = shared;
        ret = bd_refresh_perms(b->root->node, errp);
        if (ret < 0) {
            b->perm = b->root->perm = old_perm;
            b->shared = b->root->shared = old_shared;
            bd_refresh_perms(b->root->node, NULL);
        }
        bd_graph_unlock(b->graph);
    }
    return ret;
}

void bd_blk_set_write_cache(struct bd_blk *b, bool enable)
{
    atomic_store(&b->write_cache, enable);
}

bool bd_blk_write_cache(const struct bd_blk *b)
{
    return atomic_load(&b->write_cache);
}

int64_t bd_blk_getlength(struct bd_blk *b)
{
    struct bd_node *n = bd_blk_node(b);

    return n ? bd_getlength(n) : -ENOMEDIUM;
}

/* ------------------------------------------------------------------ */
/* Request entry and accounting                                         */

/*
 * Enter a request: count it in flight on the root node, then back off while
 * a drained section covers the node. Counting first and checking second
 * pairs with drain's set-then-wait, so no request slips into a drained
 * section. Returns the node, or NULL when nothing is inserted.
 */
static struct bd_node *blk_enter(struct bd_blk *b)
{
    for (;;) {
        struct bd_child *c = NULL;
        struct bd_node *n = NULL;

        pthread_mutex_lock(&b->root_lock);
        c = b->root;
        n = c ? c->node : NULL;
        if (!n) {
            pthread_mutex_unlock(&b->root_lock);
            return NULL;
        }
        bd_inc_in_flight(n);
        /* c->node only moves inside a drained section (bd_replace_node),
         * so after the quiesce check it is stable for this request. */
        if (atomic_load(&n->quiesce_counter) == 0 && c->node == n) {
            pthread_mutex_unlock(&b->root_lock);
            return n;
        }
        /* Keep n alive while waiting: a remove may run meanwhile. The
         * in-flight count drops only after root_lock is released, because
         * it may take the graph's drain lock (lock order: graph lock ->
         * root_lock, drain lock never under root_lock). */
        bd_ref(n);
        pthread_mutex_unlock(&b->root_lock);
        bd_dec_in_flight(n);
        bd_wait_quiesce_end(n);
        bd_unref(n);
    }
}

static int blk_check_range(struct bd_node *n, int64_t off, int64_t bytes)
{
    int64_t len;

    if (off < 0 || bytes < 0) {
        return -EIO;
    }
    len = bd_getlength(n);
    if (len < 0) {
        return (int)len;
    }
    if (off > len || bytes > len - off) {
        return -EIO;
    }
    return 0;
}

static void hist_account(struct bd_acct_hist *h, uint64_t ns)
{
    int lo = 0;
    int hi;

    if (!h->bins) {
        return;
    }
    /* bins[i] covers [boundaries[i-1], boundaries[i]). */
    hi = h->nbounds;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (ns < h->boundaries[mid]) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    h->bins[lo]++;
}

static void account(struct bd_blk *b, enum bd_acct_type t, int64_t bytes,
                    int64_t start_ns, int ret, int64_t end_off)
{
    int64_t now = bd_clock_ns();

    pthread_mutex_lock(&b->stats_lock);
    if (ret == -EIO && start_ns == 0) {
        b->stats.invalid_ops[t]++;
    } else if (ret < 0) {
        b->stats.failed_ops[t]++;
        hist_account(&b->hist[t], (uint64_t)(now - start_ns));
    } else {
        b->stats.ops[t]++;
        b->stats.bytes[t] += (uint64_t)bytes;
        b->stats.total_time_ns[t] += (uint64_t)(now - start_ns);
        hist_account(&b->hist[t], (uint64_t)(now - start_ns));
        if (t == BD_ACCT_WRITE && (uint64_t)end_off > b->stats.wr_highest_offset) {
            b->stats.wr_highest_offset = (uint64_t)end_off;
        }
    }
    b->stats.last_access_ns = now;
    pthread_mutex_unlock(&b->stats_lock);
}

int bd_blk_preadv(struct bd_blk *b, int64_t off, int64_t bytes,
                  struct bd_qiov *qiov, int flags)
{
    struct bd_node *n = blk_enter(b);
    int64_t t0;
    int ret;

    if (!n) {
        return -ENOMEDIUM;
    }
    ret = blk_check_range(n, off, bytes);
    if (ret < 0) {
        account(b, BD_ACCT_READ, 0, 0, ret, 0);
        bd_dec_in_flight(n);
        return ret;
    }
    t0 = bd_clock_ns();
    ret = bd_node_preadv(n, off, bytes, qiov, flags);
    account(b, BD_ACCT_READ, bytes, t0, ret, 0);
    bd_dec_in_flight(n);
    return ret;
}

static int blk_write_common(struct bd_blk *b, int64_t off, int64_t bytes,
                            struct bd_qiov *qiov, int flags,
                            enum bd_acct_type t)
{
    struct bd_node *n = blk_enter(b);
    int64_t t0;
    int ret;

    if (!n) {
        return -ENOMEDIUM;
    }
    if (!(b->perm & BD_PERM_WRITE)) {
        bd_dec_in_flight(n);
        return -EPERM;
    }
    ret = blk_check_range(n, off, bytes);
    if (ret < 0) {
        account(b, t, 0, 0, ret, 0);
        bd_dec_in_flight(n);
        return ret;
    }
    if (!atomic_load(&b->write_cache) && t != BD_ACCT_UNMAP) {
        flags |= BD_REQ_FUA;
    }
    t0 = bd_clock_ns();
    if (t == BD_ACCT_UNMAP) {
        ret = bd_node_pdiscard(n, off, bytes);
    } else {
        ret = bd_node_pwritev(n, off, bytes, qiov, flags);
    }
    account(b, t, bytes, t0, ret, off + bytes);
    bd_dec_in_flight(n);
    return ret;
}

int bd_blk_pwritev(struct bd_blk *b, int64_t off, int64_t bytes,
                   struct bd_qiov *qiov, int flags)
{
    return blk_write_common(b, off, bytes, qiov, flags, BD_ACCT_WRITE);
}

int bd_blk_pread(struct bd_blk *b, int64_t off, int64_t bytes, void *buf,
                 int flags)
{
    struct bd_qiov q;

    bd_qiov_init_buf(&q, buf, (size_t)bytes);
    return bd_blk_preadv(b, off, bytes, &q, flags);
}

int bd_blk_pwrite(struct bd_blk *b, int64_t off, int64_t bytes,
                  const void *buf, int flags)
{
    struct bd_qiov q;

    bd_qiov_init_buf(&q, (void *)buf, (size_t)bytes);
    return bd_blk_pwritev(b, off, bytes, &q, flags);
}

int bd_blk_pwrite_zeroes(struct bd_blk *b, int64_t off, int64_t bytes,
                         int flags)
{
    return blk_write_common(b, off, bytes, NULL, flags | BD_REQ_ZERO_WRITE,
                            BD_ACCT_WRITE);
}

int bd_blk_pdiscard(struct bd_blk *b, int64_t off, int64_t bytes)
{
    return blk_write_common(b, off, bytes, NULL, 0, BD_ACCT_UNMAP);
}

int bd_blk_flush(struct bd_blk *b)
{
    struct bd_node *n = blk_enter(b);
    int64_t t0;
    int ret;

    if (!n) {
        return 0;
    }
    t0 = bd_clock_ns();
    ret = bd_node_flush(n);
    account(b, BD_ACCT_FLUSH, 0, t0, ret, 0);
    bd_dec_in_flight(n);
    return ret;
}

int bd_blk_truncate(struct bd_blk *b, int64_t size, bool exact,
                    enum bd_prealloc prealloc, struct bd_error **errp)
{
    struct bd_node *n = bd_blk_node(b);

    if (!n) {
        bd_error_setg(errp, "No medium inserted");
        return -ENOMEDIUM;
    }
    if (!(b->perm & BD_PERM_RESIZE)) {
        bd_error_setg(errp, "Image is read-only");
        return -EPERM;
    }
    return bd_node_truncate(n, size, exact, prealloc, errp);
}

/* ------------------------------------------------------------------ */
/* Statistics                                                           */

static void hist_copy(struct bd_acct_hist *dst, const struct bd_acct_hist *src)
{
    memset(dst, 0, sizeof(*dst));
    if (!src->bins) {
        return;
    }
    dst->nbounds = src->nbounds;
    dst->boundaries = bd_malloc(sizeof(uint64_t) * (size_t)src->nbounds);
    dst->bins = bd_malloc(sizeof(uint64_t) * (size_t)(src->nbounds + 1));
    memcpy(dst->boundaries, src->boundaries,
           sizeof(uint64_t) * (size_t)src->nbounds);
    memcpy(dst->bins, src->bins, sizeof(uint64_t) * (size_t)(src->nbounds + 1));
}

void bd_blk_get_stats(struct bd_blk *b, struct bd_acct_stats *st,
                      struct bd_acct_hist hist[BD_ACCT__MAX])
{
    int t;

    pthread_mutex_lock(&b->stats_lock);
    *st = b->stats;
    if (hist) {
        for (t = 0; t < BD_ACCT__MAX; t++) {
            hist_copy(&hist[t], &b->hist[t]);
        }
    }
    pthread_mutex_unlock(&b->stats_lock);
}

void bd_acct_hist_free(struct bd_acct_hist *h)
{
    free(h->boundaries);
    free(h->bins);
    memset(h, 0, sizeof(*h));
}

int bd_blk_set_histogram(struct bd_blk *b, enum bd_acct_type t,
                         const uint64_t *boundaries, int nbounds)
{
    struct bd_acct_hist nh = { 0 };
    int i;

    if (boundaries) {
        if (nbounds <= 0) {
            return -EINVAL;
        }
        for (i = 0; i < nbounds; i++) {
            if (boundaries[i] == 0 || (i > 0 && boundaries[i] <= boundaries[i - 1])) {
                return -EINVAL;
            }
        }
        nh.nbounds = nbounds;
        nh.boundaries = bd_malloc(sizeof(uint64_t) * (size_t)nbounds);
        memcpy(nh.boundaries, boundaries, sizeof(uint64_t) * (size_t)nbounds);
        nh.bins = bd_malloc0(sizeof(uint64_t) * (size_t)(nbounds + 1));
    }
    pthread_mutex_lock(&b->stats_lock);
    bd_acct_hist_free(&b->hist[t]);
    b->hist[t] = nh;
    pthread_mutex_unlock(&b->stats_lock);
    return 0;
}

int bd_graph_foreach_blk(struct bd_graph *g,
                         int (*fn)(struct bd_blk *b, void *opaque),
                         void *opaque)
{
    struct bd_list *pos;
    int ret = 0;

    bd_graph_lock(g);
    bd_list_for_each(pos, bd_graph_blk_list(g)) {
        ret = fn(bd_blk_from_link(pos), opaque);
        if (ret) {
            break;
        }
    }
    bd_graph_unlock(g);
    return ret;
}
