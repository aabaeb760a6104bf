/*
 * tests/helpers/test-drivers.c - test-only drivers (see test-drivers.h).
 */
#include "common/config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cutils.h"
#include "common/opts.h"
#include "driver/block-int.h"
#include "tests/helpers/test-drivers.h"

/* ------------------------------------------------------------------ */
/* The log                                                              */

void td_log_init(struct td_log *l)
{
    memset(l, 0, sizeof(*l));
    pthread_mutex_init(&l->lock, NULL);
}

void td_log_clear(struct td_log *l)
{
    size_t i;

    pthread_mutex_lock(&l->lock);
    for (i = 0; i < l->n; i++) {
        free(l->lines[i]);
    }
    l->n = 0;
    pthread_mutex_unlock(&l->lock);
}

void td_log_destroy(struct td_log *l)
{
    td_log_clear(l);
    free(l->lines);
    pthread_mutex_destroy(&l->lock);
}

void td_log_add(struct td_log *l, const char *fmt, ...)
{
    char buf[256];
    va_list ap;

    if (!l) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&l->lock);
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 32;
        l->lines = bd_realloc(l->lines, l->cap * sizeof(*l->lines));
    }
    l->lines[l->n++] = bd_strdup(buf);
    pthread_mutex_unlock(&l->lock);
}

char *td_log_grep(struct td_log *l, const char *needle)
{
    size_t len = 1;
    size_t i;
    char *out = NULL;

    pthread_mutex_lock(&l->lock);
    for (i = 0; i < l->n; i++) {
        len += strlen(l->lines[i]) + 1;
    }
    out = bd_malloc0(len);
    for (i = 0; i < l->n; i++) {
        if (needle && !strstr(l->lines[i], needle)) {
            continue;
        }
        if (out[0]) {
            strcat(out, "|");
        }
        strcat(out, l->lines[i]);
    }
    pthread_mutex_unlock(&l->lock);
    return out;
}

size_t td_log_count(struct td_log *l, const char *needle)
{
    size_t i;
    size_t n = 0;

    pthread_mutex_lock(&l->lock);
    for (i = 0; i < l->n; i++) {
        n += strstr(l->lines[i], needle) != NULL;
    }
    pthread_mutex_unlock(&l->lock);
    return n;
}

char *td_log_join(struct td_log *l)
{
    return td_log_grep(l, NULL);
}

json_int_t td_log_opt(struct td_log *l)
{
    return (json_int_t)(uintptr_t)l;
}

static int take_log(json_t *options, struct td_log **out,
                    struct bd_error **errp)
{
    uint64_t addr = 0;

    if (bd_opts_take_number(options, "log", &addr, errp) < 0) {
        return -EINVAL;
    }
    *out = (struct td_log *)(uintptr_t)addr;
    return 0;
}

/* ------------------------------------------------------------------ */
/* test-log                                                             */

struct log_state {
    struct td_log *log;
};

static void log_op(struct bd_node *bs, const char *op)
{
    struct log_state *s = bs->opaque;

    td_log_add(s->log, "%s %s", bs->node_name, op);
}

static int log_ret(struct bd_node *bs, const char *op, int ret)
{
    struct log_state *s = bs->opaque;

    td_log_add(s->log, "%s %s=%d", bs->node_name, op, ret);
    return ret;
}

static int log_open(struct bd_node *bs, json_t *options, int flags,
                    struct bd_error **errp)
{
    struct log_state *s = bs->opaque;
    struct bd_child *c = NULL;

    (void)flags;
    if (take_log(options, &s->log, errp) < 0) {
        return -EINVAL;
    }
    log_op(bs, "open");
    c = bd_open_child(bs, options, "file", NULL,
                      BD_ROLE_FILTERED | BD_ROLE_PRIMARY, false, errp);
    /* Pass flags through: FUA is honoured (or emulated) further down. */
    bs->supported_write_flags = BD_REQ_FUA;
    bs->supported_zero_flags = BD_REQ_FUA | BD_REQ_MAY_UNMAP |
                               BD_REQ_NO_FALLBACK;
    return log_ret(bs, "open", c ? 0 : -EINVAL);
}

static void log_close(struct bd_node *bs)
{
    log_op(bs, "close");
}

static int log_preadv(struct bd_node *bs, int64_t off, int64_t bytes,
                      struct bd_qiov *qiov, int flags)
{
    log_op(bs, "read");
    return log_ret(bs, "read",
                   bd_child_preadv(bs->file, off, bytes, qiov, flags));
}

static int log_pwritev(struct bd_node *bs, int64_t off, int64_t bytes,
                       struct bd_qiov *qiov, int flags)
{
    log_op(bs, (flags & BD_REQ_FUA) ? "write fua" : "write");
    return log_ret(bs, "write",
                   bd_child_pwritev(bs->file, off, bytes, qiov, flags));
}

static int log_pwrite_zeroes(struct bd_node *bs, int64_t off, int64_t bytes,
                             int flags)
{
    log_op(bs, "zeroes");
    return log_ret(bs, "zeroes",
                   bd_child_pwrite_zeroes(bs->file, off, bytes, flags));
}

static int log_pdiscard(struct bd_node *bs, int64_t off, int64_t bytes)
{
    log_op(bs, "discard");
    return log_ret(bs, "discard", bd_child_pdiscard(bs->file, off, bytes));
}

/* The core flushes the children after this returns: nothing to forward. */
static int log_flush(struct bd_node *bs)
{
    log_op(bs, "flush");
    return 0;
}

static void log_drain_begin(struct bd_node *bs)
{
    log_op(bs, "drain_begin");
}

static void log_drain_end(struct bd_node *bs)
{
    log_op(bs, "drain_end");
}

static const struct bd_driver log_driver = {
    .struct_size = sizeof(struct bd_driver),
    .name = "test-log",
    .is_filter = true,
    .instance_size = sizeof(struct log_state),
    .open = log_open,
    .close = log_close,
    .preadv = log_preadv,
    .pwritev = log_pwritev,
    .pwrite_zeroes = log_pwrite_zeroes,
    .pdiscard = log_pdiscard,
    .flush_to_disk = log_flush,
    .drain_begin = log_drain_begin,
    .drain_end = log_drain_end,
};

const struct bd_driver *td_driver_log(void)
{
    return &log_driver;
}

/* ------------------------------------------------------------------ */
/* test-fail                                                            */

struct fail_state {
    int err;
    bool read;
    bool write;
    bool zeroes;
    bool discard;
    bool flush;
};

static int fail_open(struct bd_node *bs, json_t *options, int flags,
                     struct bd_error **errp)
{
    struct fail_state *s = bs->opaque;
    uint64_t e = EIO;
    bool fail_open_flag = false;

    (void)flags;
    if (bd_opts_take_number(options, "errno", &e, errp) < 0 ||
        bd_opts_take_bool(options, "fail-open", &fail_open_flag, errp) < 0 ||
        bd_opts_take_bool(options, "fail-read", &s->read, errp) < 0 ||
        bd_opts_take_bool(options, "fail-write", &s->write, errp) < 0 ||
        bd_opts_take_bool(options, "fail-zeroes", &s->zeroes, errp) < 0 ||
        bd_opts_take_bool(options, "fail-discard", &s->discard, errp) < 0 ||
        bd_opts_take_bool(options, "fail-flush", &s->flush, errp) < 0) {
        return -EINVAL;
    }
    if (e == 0 || e >= 4096) {
        bd_error_setg(errp, "test-fail: errno must be 1..4095");
        return -EINVAL;
    }
    s->err = (int)e;
    if (!bd_open_child(bs, options, "file", NULL,
                       BD_ROLE_FILTERED | BD_ROLE_PRIMARY, false, errp)) {
        return -EINVAL;
    }
    bs->supported_write_flags = BD_REQ_FUA;
    bs->supported_zero_flags = BD_REQ_FUA | BD_REQ_MAY_UNMAP |
                               BD_REQ_NO_FALLBACK;
    if (fail_open_flag) {
        bd_error_setg_errno(errp, s->err, "test-fail: injected open failure");
        return -s->err;
    }
    return 0;
}

static int fail_preadv(struct bd_node *bs, int64_t off, int64_t bytes,
                       struct bd_qiov *qiov, int flags)
{
    struct fail_state *s = bs->opaque;

    return s->read ? -s->err
                   : bd_child_preadv(bs->file, off, bytes, qiov, flags);
}

static int fail_pwritev(struct bd_node *bs, int64_t off, int64_t bytes,
                        struct bd_qiov *qiov, int flags)
{
    struct fail_state *s = bs->opaque;

    return s->write ? -s->err
                    : bd_child_pwritev(bs->file, off, bytes, qiov, flags);
}

static int fail_pwrite_zeroes(struct bd_node *bs, int64_t off, int64_t bytes,
                              int flags)
{
    struct fail_state *s = bs->opaque;

    return s->zeroes ? -s->err
                     : bd_child_pwrite_zeroes(bs->file, off, bytes, flags);
}

static int fail_pdiscard(struct bd_node *bs, int64_t off, int64_t bytes)
{
    struct fail_state *s = bs->opaque;

    return s->discard ? -s->err : bd_child_pdiscard(bs->file, off, bytes);
}

static int fail_flush(struct bd_node *bs)
{
    struct fail_state *s = bs->opaque;

    return s->flush ? -s->err : 0;
}

static const struct bd_driver fail_driver = {
    .struct_size = sizeof(struct bd_driver),
    .name = "test-fail",
    .is_filter = true,
    .instance_size = sizeof(struct fail_state),
    .open = fail_open,
    .preadv = fail_preadv,
    .pwritev = fail_pwritev,
    .pwrite_zeroes = fail_pwrite_zeroes,
    .pdiscard = fail_pdiscard,
    .flush_to_disk = fail_flush,
};

const struct bd_driver *td_driver_fail(void)
{
    return &fail_driver;
}

/* ------------------------------------------------------------------ */
/* test-mem                                                             */

struct mem_state {
    /* Set in open, immutable. */
    uint32_t align;
    uint64_t max_transfer;
    uint64_t max_discard;
    uint64_t max_zeroes;
    bool fua;
    bool zeroes;
    struct td_log *log;
    struct td_mem_stats st;

    /* Contents and size: under lock (requests of many threads). */
    pthread_mutex_t lock;
    uint8_t *data;
    int64_t size;
};

/* The core promised this request is aligned and within limits. */
static bool mem_check(struct bd_node *bs, int64_t off, int64_t bytes,
                      uint64_t max, bool need_align)
{
    struct mem_state *s = bs->opaque;
    bool ok = off >= 0 && bytes > 0 && (!max || (uint64_t)bytes <= max);

    if (need_align && (off % s->align || bytes % s->align)) {
        ok = false;
    }
    if (!ok) {
        atomic_fetch_add(&s->st.violations, 1);
        td_log_add(s->log, "%s VIOLATION off=%lld bytes=%lld",
                   bs->node_name, (long long)off, (long long)bytes);
    }
    return ok;
}

static int mem_open(struct bd_node *bs, json_t *options, int flags,
                    struct bd_error **errp)
{
    struct mem_state *s = bs->opaque;
    uint64_t size = 1 << 20;
    uint64_t align = 1;
    uint64_t discard_align = 0;

    (void)flags;
    s->zeroes = true;
    if (bd_opts_take_size(options, "size", &size, errp) < 0 ||
        bd_opts_take_number(options, "align", &align, errp) < 0 ||
        bd_opts_take_size(options, "max-transfer", &s->max_transfer,
                          errp) < 0 ||
        bd_opts_take_size(options, "max-discard", &s->max_discard,
                          errp) < 0 ||
        bd_opts_take_size(options, "discard-align", &discard_align,
                          errp) < 0 ||
        bd_opts_take_size(options, "max-zeroes", &s->max_zeroes, errp) < 0 ||
        bd_opts_take_bool(options, "fua", &s->fua, errp) < 0 ||
        bd_opts_take_bool(options, "zeroes", &s->zeroes, errp) < 0 ||
        take_log(options, &s->log, errp) < 0) {
        return -EINVAL;
    }
    if (!bd_is_power_of_2(align) || align > 65536 || size > (1ULL << 32)) {
        bd_error_setg(errp, "test-mem: bad align or size");
        return -EINVAL;
    }
    s->align = (uint32_t)align;
    s->size = BD_ROUND_UP((int64_t)size, (int64_t)BD_SECTOR_SIZE);
    s->data = bd_malloc0(s->size ? (size_t)s->size : 1);
    pthread_mutex_init(&s->lock, NULL);
    bs->bl.request_alignment = s->align;
    bs->bl.max_transfer = s->max_transfer;
    bs->bl.max_pdiscard = s->max_discard;
    bs->bl.pdiscard_alignment = (uint32_t)discard_align;
    bs->bl.max_pwrite_zeroes = s->max_zeroes;
    bs->supported_write_flags = s->fua ? BD_REQ_FUA : 0;
    bs->supported_zero_flags = BD_REQ_MAY_UNMAP | BD_REQ_NO_FALLBACK |
                               (s->fua ? BD_REQ_FUA : 0);
    return 0;
}

static void mem_close(struct bd_node *bs)
{
    struct mem_state *s = bs->opaque;

    pthread_mutex_destroy(&s->lock);
    free(s->data);
}

static int64_t mem_getlength(struct bd_node *bs)
{
    struct mem_state *s = bs->opaque;
    int64_t size;

    pthread_mutex_lock(&s->lock);
    size = s->size;
    pthread_mutex_unlock(&s->lock);
    return size;
}

static int mem_preadv(struct bd_node *bs, int64_t off, int64_t bytes,
                      struct bd_qiov *qiov, int flags)
{
    struct mem_state *s = bs->opaque;
    int ret = 0;

    (void)flags;
    if (!mem_check(bs, off, bytes, s->max_transfer, true)) {
        return -EINVAL;
    }
    atomic_fetch_add(&s->st.reads, 1);
    td_log_add(s->log, "%s read %lld+%lld", bs->node_name, (long long)off,
               (long long)bytes);
    pthread_mutex_lock(&s->lock);
    if (off >= BD_ROUND_UP(s->size, (int64_t)s->align)) {
        /* Whole blocks past the end are the core's to zero-fill. */
        atomic_fetch_add(&s->st.violations, 1);
        ret = -EINVAL;
    } else {
        /* The block holding the end may be read whole (as from a file
         * whose size is not a multiple of the alignment): zeroes past it. */
        int64_t n = BD_MIN(bytes, s->size - off);

        bd_qiov_from_buf(qiov, 0, s->data + off, (size_t)n);
        bd_qiov_memset(qiov, (size_t)n, 0, (size_t)(bytes - n));
    }
    pthread_mutex_unlock(&s->lock);
    return ret;
}

static int mem_pwritev(struct bd_node *bs, int64_t off, int64_t bytes,
                       struct bd_qiov *qiov, int flags)
{
    struct mem_state *s = bs->opaque;
    int ret = 0;

    if (!mem_check(bs, off, bytes, s->max_transfer, true)) {
        return -EINVAL;
    }
    if ((flags & BD_REQ_FUA) && !s->fua) {
        atomic_fetch_add(&s->st.violations, 1);
        return -EINVAL;
    }
    atomic_fetch_add(&s->st.writes, 1);
    if (flags & BD_REQ_FUA) {
        atomic_fetch_add(&s->st.writes_fua, 1);
    }
    td_log_add(s->log, "%s write %lld+%lld%s", bs->node_name,
               (long long)off, (long long)bytes,
               (flags & BD_REQ_FUA) ? " fua" : "");
    pthread_mutex_lock(&s->lock);
    if (off + bytes > s->size) {
        ret = -ENOSPC;
    } else {
        bd_qiov_to_buf(qiov, 0, s->data + off, (size_t)bytes);
    }
    pthread_mutex_unlock(&s->lock);
    return ret;
}

static int mem_pwrite_zeroes(struct bd_node *bs, int64_t off, int64_t bytes,
                             int flags)
{
    struct mem_state *s = bs->opaque;
    int ret = 0;

    if (!s->zeroes) {
        return -ENOTSUP;
    }
    if (!mem_check(bs, off, bytes, s->max_zeroes, true)) {
        return -EINVAL;
    }
    atomic_fetch_add(&s->st.zeroes, 1);
    if (flags & BD_REQ_MAY_UNMAP) {
        atomic_fetch_add(&s->st.zeroes_unmap, 1);
    }
    td_log_add(s->log, "%s zeroes %lld+%lld%s", bs->node_name,
               (long long)off, (long long)bytes,
               (flags & BD_REQ_MAY_UNMAP) ? " unmap" : "");
    pthread_mutex_lock(&s->lock);
    if (off + bytes > s->size) {
        ret = -ENOSPC;
    } else {
        memset(s->data + off, 0, (size_t)bytes);
    }
    pthread_mutex_unlock(&s->lock);
    return ret;
}

/* Discard may be unaligned (QEMU passes sub-alignment pieces down); the
 * discarded range reads back as zeroes, like a punched hole. */
static int mem_pdiscard(struct bd_node *bs, int64_t off, int64_t bytes)
{
    struct mem_state *s = bs->opaque;

    if (!mem_check(bs, off, bytes, s->max_discard, false)) {
        return -EINVAL;
    }
    atomic_fetch_add(&s->st.discards, 1);
    td_log_add(s->log, "%s discard %lld+%lld", bs->node_name, (long long)off,
               (long long)bytes);
    pthread_mutex_lock(&s->lock);
    if (off < s->size) {
        memset(s->data + off, 0, (size_t)BD_MIN(bytes, s->size - off));
    }
    pthread_mutex_unlock(&s->lock);
    return 0;
}

static int mem_flush(struct bd_node *bs)
{
    struct mem_state *s = bs->opaque;

    atomic_fetch_add(&s->st.flushes, 1);
    td_log_add(s->log, "%s flush", bs->node_name);
    return 0;
}

static int mem_truncate(struct bd_node *bs, int64_t size, bool exact,
                        enum bd_prealloc prealloc, int flags,
                        struct bd_error **errp)
{
    struct mem_state *s = bs->opaque;

    (void)exact;
    (void)flags;
    if (prealloc != BD_PREALLOC_OFF || size > (1LL << 32)) {
        bd_error_setg(errp, "test-mem: unsupported truncate");
        return -ENOTSUP;
    }
    size = BD_ROUND_UP(size, (int64_t)BD_SECTOR_SIZE);
    pthread_mutex_lock(&s->lock);
    s->data = bd_realloc(s->data, size ? (size_t)size : 1);
    if (size > s->size) {
        memset(s->data + s->size, 0, (size_t)(size - s->size));
    }
    s->size = size;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

static const struct bd_driver mem_driver = {
    .struct_size = sizeof(struct bd_driver),
    .name = "test-mem",
    .instance_size = sizeof(struct mem_state),
    .open = mem_open,
    .close = mem_close,
    .getlength = mem_getlength,
    .preadv = mem_preadv,
    .pwritev = mem_pwritev,
    .pwrite_zeroes = mem_pwrite_zeroes,
    .pdiscard = mem_pdiscard,
    .flush_to_disk = mem_flush,
    .truncate = mem_truncate,
};

const struct bd_driver *td_driver_mem(void)
{
    return &mem_driver;
}

struct td_mem_stats *td_mem_stats(struct bd_node *n)
{
    assert(n->drv == &mem_driver);
    return &((struct mem_state *)n->opaque)->st;
}

uint8_t *td_mem_data(struct bd_node *n)
{
    assert(n->drv == &mem_driver);
    return ((struct mem_state *)n->opaque)->data;
}

int64_t td_mem_size(struct bd_node *n)
{
    return mem_getlength(n);
}

/* ------------------------------------------------------------------ */
/* Graph and open helpers                                               */

static const struct bd_driver *const test_drivers[] = {
    &log_driver, &fail_driver, &mem_driver, NULL,
};

struct bd_graph *td_graph_new(void)
{
    struct bd_graph *g = bd_graph_new();

    bd_graph_set_extra_drivers(g, test_drivers);
    return g;
}

struct bd_node *td_open(struct bd_graph *g, json_t *nested, int flags,
                        struct bd_error **errp)
{
    json_t *flat = bd_opts_flatten(nested);

    json_decref(nested);
    return bd_open(g, NULL, flat, flags, errp);
}

struct bd_node *td_open_json(struct bd_graph *g, const char *json, int flags,
                             struct bd_error **errp)
{
    json_error_t jerr;
    json_t *nested = json_loads(json, 0, &jerr);
    json_t *flat = NULL;

    if (!nested) {
        bd_error_setg(errp, "td_open_json: %s", jerr.text);
        return NULL;
    }
    flat = bd_opts_flatten(nested);
    json_decref(nested);
    return bd_open(g, NULL, flat, flags, errp);
}
