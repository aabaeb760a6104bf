/*
 * driver/qiov.c - scatter/gather lists.
 *
 * Slicing is the hot operation (every max-transfer fragment and every
 * padded request slices), so lists of up to BD_QIOV_INLINE entries never
 * touch the heap.
 */
#include "common/config.h"

#include <stdlib.h>
#include <string.h>

#include "common/cutils.h"
#include "driver/block.h"

void bd_qiov_init(struct bd_qiov *q)
{
    q->iov = q->inline_iov;
    q->niov = 0;
    q->nalloc = 0;
    q->size = 0;
}

void bd_qiov_init_buf(struct bd_qiov *q, void *buf, size_t len)
{
    bd_qiov_init(q);
    q->inline_iov[0].iov_base = buf;
    q->inline_iov[0].iov_len = len;
    q->niov = 1;
    q->size = len;
}

void bd_qiov_add(struct bd_qiov *q, void *base, size_t len)
{
    int cap = q->nalloc ? q->nalloc : BD_QIOV_INLINE;

    if (len == 0) {
        return;
    }
    if (q->niov == cap) {
        int ncap = cap * 2;
        struct iovec *n = bd_malloc(sizeof(*n) * ncap);

        memcpy(n, q->iov, sizeof(*n) * q->niov);
        if (q->nalloc) {
            free(q->iov);
        }
        q->iov = n;
        q->nalloc = ncap;
    }
    q->iov[q->niov].iov_base = base;
    q->iov[q->niov].iov_len = len;
    q->niov++;
    q->size += len;
}

void bd_qiov_slice(struct bd_qiov *dst, const struct bd_qiov *src,
                   size_t off, size_t len)
{
    int i;

    bd_qiov_init(dst);
    for (i = 0; i < src->niov && len > 0; i++) {
        size_t l = src->iov[i].iov_len;

        if (off >= l) {
            off -= l;
            continue;
        }
        l = BD_MIN(l - off, len);
        bd_qiov_add(dst, (char *)src->iov[i].iov_base + off, l);
        len -= l;
        off = 0;
    }
}

void bd_qiov_destroy(struct bd_qiov *q)
{
    if (q->nalloc) {
        free(q->iov);
    }
    bd_qiov_init(q);
}

void bd_qiov_memset(struct bd_qiov *q, size_t off, int c, size_t len)
{
    int i;

    for (i = 0; i < q->niov && len > 0; i++) {
        size_t l = q->iov[i].iov_len;

        if (off >= l) {
            off -= l;
            continue;
        }
        l = BD_MIN(l - off, len);
        memset((char *)q->iov[i].iov_base + off, c, l);
        len -= l;
        off = 0;
    }
}

size_t bd_qiov_to_buf(const struct bd_qiov *q, size_t off, void *buf,
                      size_t len)
{
    size_t done = 0;
    int i;

    for (i = 0; i < q->niov && done < len; i++) {
        size_t l = q->iov[i].iov_len;

        if (off >= l) {
            off -= l;
            continue;
        }
        l = BD_MIN(l - off, len - done);
        memcpy((char *)buf + done, (char *)q->iov[i].iov_base + off, l);
        done += l;
        off = 0;
    }
    return done;
}

size_t bd_qiov_from_buf(struct bd_qiov *q, size_t off, const void *buf,
                        size_t len)
{
    size_t done = 0;
    int i;

    for (i = 0; i < q->niov && done < len; i++) {
        size_t l = q->iov[i].iov_len;

        if (off >= l) {
            off -= l;
            continue;
        }
        l = BD_MIN(l - off, len - done);
        memcpy((char *)q->iov[i].iov_base + off, (const char *)buf + done, l);
        done += l;
        off = 0;
    }
    return done;
}

bool bd_qiov_is_zero(const struct bd_qiov *q)
{
    int i;

    for (i = 0; i < q->niov; i++) {
        if (!bd_buffer_is_zero(q->iov[i].iov_base, q->iov[i].iov_len)) {
            return false;
        }
    }
    return true;
}
