/*
 * driver/qcow2-cache.c - write-back caches of cluster-sized metadata
 * tables (L2 tables and refcount blocks), as QEMU keeps them.
 *
 * A table is held (ref > 0) between get and put and is never evicted while
 * held. Eviction takes the least recently used unheld slot and writes it
 * back first when dirty. The caller holds the driver's metadata lock for
 * every call; the cache has no lock of its own.
 */
#include "common/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cutils.h"
#include "driver/qcow2-int.h"

struct qcow2_cache *qcow2_cache_create(int size, size_t table_size,
                                       int load_event, int update_event)
{
    struct qcow2_cache *c = bd_malloc0(sizeof(*c));
    int i;

    c->entries = bd_malloc0(sizeof(c->entries[0]) * (size_t)size);
    c->size = size;
    c->table_size = table_size;
    c->load_event = load_event;
    c->update_event = update_event;
    for (i = 0; i < size; i++) {
        c->entries[i].table = bd_memalign(4096, table_size);
    }
    return c;
}

void qcow2_cache_destroy(struct qcow2_cache *c)
{
    int i;

    if (!c) {
        return;
    }
    for (i = 0; i < c->size; i++) {
        free(c->entries[i].table);
    }
    free(c->entries);
    free(c);
}

int qcow2_cache_set_dependency(struct bd_node *bs, struct qcow2_cache *c,
                               struct qcow2_cache *dep)
{
    int ret;

    /* Never let a cycle form: if dep already waits for something (c,
     * typically), write that out now. Allocations need refcounts before
     * L2 tables and frees need L2 tables before refcounts, so the two
     * caches alternate; each switch costs one write-back. */
    if (dep->depends) {
        ret = qcow2_cache_flush(bs, dep->depends);
        if (ret < 0) {
            return ret;
        }
        dep->depends = NULL;
    }
    if (c->depends && c->depends != dep) {
        ret = qcow2_cache_flush(bs, c->depends);
        if (ret < 0) {
            return ret;
        }
        c->depends = NULL;
    }
    c->depends = dep;
    return 0;
}

static int entry_writeback(struct bd_node *bs, struct qcow2_cache *c,
                           struct qcow2_cache_entry *e)
{
    int ret;

    if (!e->dirty || !e->offset) {
        return 0;
    }
    if (c->depends) {
        /* Refcounts must be on disk before tables that rely on them (and
         * dropped references before the refcounts that free them). The
         * link is cleared first: two caches may depend on each other. */
        struct qcow2_cache *dep = c->depends;

        c->depends = NULL;
        ret = qcow2_cache_flush(bs, dep);
        if (ret < 0) {
            c->depends = dep;
            return ret;
        }
    }
    bd_event(bs->file, (enum bd_event)c->update_event);
    ret = bd_child_pwrite(bs->file, (int64_t)e->offset,
                          (int64_t)c->table_size, e->table, 0);
    if (ret < 0) {
        return ret;
    }
    e->dirty = false;
    return 0;
}

int qcow2_cache_write(struct bd_node *bs, struct qcow2_cache *c)
{
    int result = 0;
    int i;

    for (i = 0; i < c->size; i++) {
        int ret = entry_writeback(bs, c, &c->entries[i]);
        if (ret < 0 && result != -ENOSPC) {
            result = ret;
        }
    }
    return result;
}

int qcow2_cache_flush(struct bd_node *bs, struct qcow2_cache *c)
{
    int ret = qcow2_cache_write(bs, c);

    if (ret == 0) {
        ret = bd_child_flush(bs->file);
    }
    return ret;
}

static struct qcow2_cache_entry *find(struct qcow2_cache *c, uint64_t offset)
{
    int i;

    for (i = 0; i < c->size; i++) {
        if (c->entries[i].offset == offset) {
            return &c->entries[i];
        }
    }
    return NULL;
}

static int do_get(struct bd_node *bs, struct qcow2_cache *c, uint64_t offset,
                  void **table, bool read)
{
    struct qcow2_cache_entry *e = find(c, offset);
    struct qcow2_cache_entry *victim = NULL;
    int i;
    int ret;

    if (e) {
        goto found;
    }
    for (i = 0; i < c->size; i++) {
        struct qcow2_cache_entry *x = &c->entries[i];

        if (x->ref == 0 && (!victim || x->lru < victim->lru)) {
            victim = x;
        }
    }
    if (!victim) {
        /* Every slot is held: a bug in a caller (tables are held briefly). */
        return -ENOSPC;
    }
    ret = entry_writeback(bs, c, victim);
    if (ret < 0) {
        return ret;
    }
    victim->offset = 0;
    if (read) {
        if (c->load_event >= 0) {
            bd_event(bs->file, (enum bd_event)c->load_event);
        }
        ret = bd_child_pread(bs->file, (int64_t)offset,
                             (int64_t)c->table_size, victim->table, 0);
        if (ret < 0) {
            return ret;
        }
    }
    victim->offset = offset;
    victim->dirty = false;
    e = victim;
found:
    e->ref++;
    e->lru = ++c->lru_counter;
    *table = e->table;
    return 0;
}

int qcow2_cache_get(struct bd_node *bs, struct qcow2_cache *c,
                    uint64_t offset, void **table)
{
    return do_get(bs, c, offset, table, true);
}

int qcow2_cache_get_empty(struct bd_node *bs, struct qcow2_cache *c,
                          uint64_t offset, void **table)
{
    return do_get(bs, c, offset, table, false);
}

static struct qcow2_cache_entry *entry_of(struct qcow2_cache *c,
                                          const void *table)
{
    int i;

    for (i = 0; i < c->size; i++) {
        if (c->entries[i].table == table) {
            return &c->entries[i];
        }
    }
    return NULL;
}

void qcow2_cache_put(struct qcow2_cache *c, void **table)
{
    struct qcow2_cache_entry *e = entry_of(c, *table);

    if (e && e->ref > 0) {
        e->ref--;
    }
    *table = NULL;
}

void qcow2_cache_mark_dirty(struct qcow2_cache *c, void *table)
{
    struct qcow2_cache_entry *e = entry_of(c, table);

    if (e) {
        e->dirty = true;
    }
}

void qcow2_cache_discard(struct qcow2_cache *c, uint64_t offset)
{
    struct qcow2_cache_entry *e = find(c, offset);

    if (e && e->ref == 0) {
        e->offset = 0;
        e->dirty = false;
    }
}

void qcow2_cache_empty(struct qcow2_cache *c)
{
    int i;

    for (i = 0; i < c->size; i++) {
        c->entries[i].offset = 0;
        c->entries[i].dirty = false;
        c->entries[i].ref = 0;
    }
    c->depends = NULL;
}
