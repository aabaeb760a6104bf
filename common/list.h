/*
 * common/list.h - intrusive doubly linked lists (Linux-kernel style).
 *
 * An empty list is a head whose next and prev point at itself. Nodes are
 * embedded in the owning struct; BD_LIST_ENTRY recovers the owner. No
 * locking: the owner of the list decides which lock protects it.
 */
#ifndef BLKRIG_LIST_H
#define BLKRIG_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct bd_list {
    struct bd_list *next;
    struct bd_list *prev;
};

#define BD_LIST_INIT(name) { &(name), &(name) }
#define BD_LIST_ENTRY(ptr, type, member) \
    ((type *)((char *)(ptr) - offsetof(type, member)))
#define bd_list_for_each(pos, head) \
    for ((pos) = (head)->next; (pos) != (head); (pos) = (pos)->next)
#define bd_list_for_each_safe(pos, tmp, head) \
    for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head); \
         (pos) = (tmp), (tmp) = (pos)->next)

static inline void bd_list_init(struct bd_list *h)
{
    h->next = h;
    h->prev = h;
}

static inline bool bd_list_empty(const struct bd_list *h)
{
    return h->next == h;
}

static inline void bd_list_insert_between(struct bd_list *n,
                                          struct bd_list *prev,
                                          struct bd_list *next)
{
    n->prev = prev;
    n->next = next;
    prev->next = n;
    next->prev = n;
}

/* Insert at the tail (before head). */
static inline void bd_list_add_tail(struct bd_list *h, struct bd_list *n)
{
    bd_list_insert_between(n, h->prev, h);
}

/* Insert at the front (after head). */
static inline void bd_list_add_head(struct bd_list *h, struct bd_list *n)
{
    bd_list_insert_between(n, h, h->next);
}

static inline void bd_list_del(struct bd_list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n;
    n->prev = n;
}

#endif
