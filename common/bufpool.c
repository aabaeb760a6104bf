/*
 * common/bufpool.c - a small pool of equal, aligned I/O buffers
 * (contract in bufpool.h).
 */
#include "common/config.h"

#include <stdlib.h>
#include <string.h>

#include "common/bufpool.h"
#include "common/cutils.h"

void bd_bufpool_init(struct bd_bufpool *p, size_t size, size_t align,
                     int max)
{
    pthread_mutex_init(&p->lock, NULL);
    p->size = size;
    p->align = align ? align : 1;
    p->max = max > 0 ? max : 0;
    p->n = 0;
    p->spare = p->max ? bd_malloc0(sizeof(void *) * (size_t)p->max) : NULL;
}

void *bd_bufpool_get(struct bd_bufpool *p, size_t n)
{
    void *buf = NULL;

    if (n > p->size) {
        return bd_memalign(p->align, n);
    }
    pthread_mutex_lock(&p->lock);
    if (p->n > 0) {
        buf = p->spare[--p->n];
    }
    pthread_mutex_unlock(&p->lock);
    if (!buf) {
        buf = bd_memalign(p->align, p->size);
        /* Give the buffer real pages now: one never written maps the
         * shared zero page, which the kernel's get_user_pages cannot take
         * on its fast path, so every copy out of it (a FUSE reply from a
         * node that leaves the buffer alone, null-co) went the slow way. */
        memset(buf, 0, p->size);
    }
    return buf;
}

void bd_bufpool_put(struct bd_bufpool *p, void *buf, size_t n)
{
    if (buf && n <= p->size) {
        pthread_mutex_lock(&p->lock);
        if (p->n < p->max) {
            p->spare[p->n++] = buf;
            buf = NULL;
        }
        pthread_mutex_unlock(&p->lock);
    }
    free(buf);
}

void bd_bufpool_destroy(struct bd_bufpool *p)
{
    while (p->n > 0) {
        free(p->spare[--p->n]);
    }
    free(p->spare);
    p->spare = NULL;
    pthread_mutex_destroy(&p->lock);
}
