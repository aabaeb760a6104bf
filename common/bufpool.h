/*
 * common/bufpool.h - a small pool of equal, aligned I/O buffers for reuse.
 *
 * Why: a fresh buffer of a megabyte per request is an mmap, hundreds of
 * page faults (or, when nothing writes it, a slow get_user_pages in the
 * kernel when it is copied out) and a munmap. Paths that handle one large
 * request after another (block-copy chunks, FUSE reads and writes) keep
 * their buffers instead.
 *
 * Contract: bd_bufpool_get(p, n) returns a buffer of at least n bytes
 * aligned to the pool's alignment (never NULL: allocation failure aborts,
 * as bd_memalign does), zero-filled when it is new and holding whatever
 * its last user left otherwise; buffers larger than the pool's size are allocated
 * and freed each time. Give every buffer back with bd_bufpool_put with the
 * same n. At most `max` buffers are kept; the rest are freed. Thread-safe.
 * bd_bufpool_destroy frees what is kept; no buffer may be out then.
 */
#ifndef BLKRIG_BUFPOOL_H
#define BLKRIG_BUFPOOL_H

#include <pthread.h>
#include <stddef.h>

struct bd_bufpool {
    pthread_mutex_t lock;
    size_t size;     /* bytes of each pooled buffer */
    size_t align;
    int max;         /* buffers kept at most */
    int n;           /* buffers kept now (lock) */
    void **spare;    /* (lock) */
};

void bd_bufpool_init(struct bd_bufpool *p, size_t size, size_t align,
                     int max);
void *bd_bufpool_get(struct bd_bufpool *p, size_t n);
void bd_bufpool_put(struct bd_bufpool *p, void *buf, size_t n);
void bd_bufpool_destroy(struct bd_bufpool *p);

#endif
