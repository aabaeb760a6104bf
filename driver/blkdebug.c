/*
 * driver/blkdebug.c - the blkdebug filter: QEMU's BlockdevOptionsBlkdebug
 * over one child "image", with one injector per node deciding the fate of
 * every request (spec ../shared/specs/blkdebug.md, extensions in
 * docs/injector.md, user guide docs/blkdebug.md).
 *
 * Open follows QEMU's order so that the first error is QEMU's first error:
 * scalar options, rules (config file, then inline), state 1, permission
 * lists, the child, limits, then the event `none`.
 *
 * Nothing here blocks other requests: a delay sleeps in the request's own
 * thread, and a breakpoint waits inside the injector with its lock
 * released.
 */
#include "common/config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cutils.h"
#include "common/log.h"
#include "driver/blkdebug.h"
#include "driver/block-int.h"
#include "driver/drivers.h"
#include "injector/injector.h"
#include "injector/trace.h"

struct blkdebug_state {
    struct bd_node *bs;
    struct inj *inj;
    char *config_file;
    uint64_t align;
    uint64_t max_transfer;
    uint64_t opt_write_zero;
    uint64_t max_write_zero;
    uint64_t opt_discard;
    uint64_t max_discard;
    uint64_t take_perms;
    uint64_t unshare_perms;
};

/* ------------------------------------------------------------------ */
/* Schema (BlockdevOptionsBlkdebug and our extensions)                  */

static const char *const event_values[] = {
#define BD_EV(e, n) n,
#include "injector/events.def"
#undef BD_EV
    NULL
};

static const char *const iotype_values[] = {
    "read", "write", "write-zeroes", "discard", "flush", "block-status", NULL
};

static const char *const perm_values[] = {
    "consistent-read", "write", "write-unchanged", "resize", NULL
};

const struct qapi_type bd_qapi_blkdebug_event = {
    .kind = QAPI_ENUM, .name = "BlkdebugEvent", .enum_values = event_values,
};
static const struct qapi_type t_iotype = {
    .kind = QAPI_ENUM, .name = "BlkdebugIOType",
    .enum_values = iotype_values,
};
static const struct qapi_type t_perm = {
    .kind = QAPI_ENUM, .name = "BlockPermission", .enum_values = perm_values,
};
static const struct qapi_type t_perm_list = {
    .kind = QAPI_LIST, .name = "BlockPermissionList", .element = &t_perm,
};

static const struct qapi_member inject_members[] = {
    { "event", &bd_qapi_blkdebug_event, false },
    { "state", &qapi_type_int, true },
    { "iotype", &t_iotype, true },
    { "errno", &qapi_type_int, true },
    { "sector", &qapi_type_int, true },
    { "once", &qapi_type_bool, true },
    { "immediately", &qapi_type_bool, true },
    { "length", &qapi_type_int, true },
    { "sectors", &qapi_type_str, true },
    { "probability", &qapi_type_number, true },
    { "skip", &qapi_type_int, true },
    { "count", &qapi_type_int, true },
    { "delay-ns", &qapi_type_int, true },
    { "corrupt", &qapi_type_int, true },
    { "torn", &qapi_type_int, true },
    { "lost", &qapi_type_bool, true },
    { NULL, NULL, false },
};

static const struct qapi_member set_state_members[] = {
    { "event", &bd_qapi_blkdebug_event, false },
    { "state", &qapi_type_int, true },
    { "new_state", &qapi_type_int, false },
    { NULL, NULL, false },
};

const struct qapi_type bd_qapi_blkdebug_inject = {
    .kind = QAPI_STRUCT, .name = "BlkdebugInjectErrorOptions",
    .members = inject_members,
};
const struct qapi_type bd_qapi_blkdebug_set_state = {
    .kind = QAPI_STRUCT, .name = "BlkdebugSetStateOptions",
    .members = set_state_members,
};
static const struct qapi_type t_inject_list = {
    .kind = QAPI_LIST, .name = "BlkdebugInjectErrorOptionsList",
    .element = &bd_qapi_blkdebug_inject,
};
static const struct qapi_type t_set_state_list = {
    .kind = QAPI_LIST, .name = "BlkdebugSetStateOptionsList",
    .element = &bd_qapi_blkdebug_set_state,
};

static const struct qapi_member blkdebug_members[] = {
    { "image", &bd_qapi_blockdev_ref, false },
    { "config", &qapi_type_str, true },
    { "align", &qapi_type_int, true },
    { "max-transfer", &qapi_type_int32, true },
    { "opt-write-zero", &qapi_type_int32, true },
    { "max-write-zero", &qapi_type_int32, true },
    { "opt-discard", &qapi_type_int32, true },
    { "max-discard", &qapi_type_int32, true },
    { "inject-error", &t_inject_list, true },
    { "set-state", &t_set_state_list, true },
    { "take-child-perms", &t_perm_list, true },
    { "unshare-child-perms", &t_perm_list, true },
    /* blkrig extensions */
    { "seed", &qapi_type_uint64, true },
    { "log", &qapi_type_bool, true },
    { NULL, NULL, false },
};

static const struct qapi_type blkdebug_options = {
    .kind = QAPI_STRUCT, .name = "BlockdevOptionsBlkdebug",
    .members = blkdebug_members,
};

/* ------------------------------------------------------------------ */
/* Injector hooks: qemu-io's messages, the injection log, QMP events     */

static void blkdebug_suspended(void *opaque, const char *tag)
{
    struct blkdebug_state *s = opaque;

    printf("blkdebug: Suspended request '%s'\n", tag);
    fflush(stdout);
    bd_graph_emit_qevent(s->bs->graph, "BLKDEBUG_SUSPEND",
                         json_pack("{s:s, s:s}", "node",
                                   bd_node_name(s->bs), "tag", tag));
}

static void blkdebug_resumed(void *opaque, const char *tag)
{
    struct blkdebug_state *s = opaque;

    printf("blkdebug: Resuming request '%s'\n", tag);
    fflush(stdout);
    bd_graph_emit_qevent(s->bs->graph, "BLKDEBUG_RESUME",
                         json_pack("{s:s, s:s}", "node",
                                   bd_node_name(s->bs), "tag", tag));
}

static void blkdebug_injected(void *opaque, const char *line, json_t *detail)
{
    struct blkdebug_state *s = opaque;

    if (line) {
        bd_log_line("%s", line);
    }
    if (detail && inj_trace_enabled()) {
        /* Injection coverage (coverage/injection.sh); trace.h. */
        inj_trace("inject event=%s iotype=%s action=%s node=%s",
                  json_string_value(json_object_get(detail, "event")),
                  json_string_value(json_object_get(detail, "iotype")),
                  json_string_value(json_object_get(detail, "action")),
                  bd_node_name(s->bs));
    }
    bd_graph_emit_qevent(s->bs->graph, "BLKDEBUG_INJECT", detail);
}

/* ------------------------------------------------------------------ */
/* Open / close                                                         */

static int blkdebug_parse_filename(const char *filename, json_t *options,
                                   struct bd_error **errp)
{
    const char *p = filename;
    const char *colon;

    if (strncmp(p, "blkdebug:", 9)) {
        /* Not our syntax: the whole string names the image. */
        json_object_set_new(options, "x-image", json_string(filename));
        return 0;
    }
    p += 9;
    colon = strchr(p, ':');
    if (!colon) {
        bd_error_setg(errp, "blkdebug requires both config file and image "
                      "path");
        return -EINVAL;
    }
    if (colon != p) {
        json_object_set_new(options, "config",
                            json_stringn(p, (size_t)(colon - p)));
    }
    json_object_set_new(options, "x-image", json_string(colon + 1));
    return 0;
}

/* "take-child-perms.0=write,..." into a permission mask. */
static int take_perm_list(json_t *options, const char *key, uint64_t *mask,
                          struct bd_error **errp)
{
    json_t *sub = bd_opts_extract(options, key);
    int ret = 0;
    int i;

    for (i = 0;; i++) {
        char idx[24];
        char *val = NULL;
        int v = 0;
        int r;

        snprintf(idx, sizeof(idx), "%d", i);
        val = json_object_get(sub, idx) ?
              bd_opts_scalar_string(json_object_get(sub, idx)) : NULL;
        r = bd_opts_take_enum(sub, idx, perm_values, &v, NULL);
        if (r == 0) {
            free(val);
            break;
        }
        if (r < 0) {
            /* QEMU names the list element 'null' (spec §11.1 #11). */
            bd_error_setg(errp, "Parameter 'null' does not accept value "
                          "'%s'", val ? val : "");
            free(val);
            ret = -EINVAL;
            goto out;
        }
        free(val);
        *mask |= UINT64_C(1) << v;
    }
    if (json_object_size(sub)) {
        bd_error_setg(errp, "Block protocol 'blkdebug' doesn't support the "
                      "option '%s.%s'", key, bd_opts_first_key(sub));
        ret = -EINVAL;
    }
out:
    json_decref(sub);
    return ret;
}

/* The limit checks of spec §2.1, against the child's alignment. */
static int check_limits(struct blkdebug_state *s, struct bd_error **errp)
{
    uint64_t a = BD_MAX(s->align, (uint64_t)s->bs->file->node->bl
                        .request_alignment);

    if (s->align && (s->align >= INT_MAX || !bd_is_power_of_2(s->align))) {
        bd_error_setg(errp, "Cannot meet constraints with align %llu",
                      (unsigned long long)s->align);
        return -EINVAL;
    }
    if (s->max_transfer &&
        (s->max_transfer >= INT_MAX || s->max_transfer % a)) {
        bd_error_setg(errp, "Cannot meet constraints with max-transfer %llu",
                      (unsigned long long)s->max_transfer);
        return -EINVAL;
    }
    if (s->opt_write_zero &&
        (s->opt_write_zero >= INT_MAX || s->opt_write_zero % a)) {
        bd_error_setg(errp, "Cannot meet constraints with opt-write-zero "
                      "%llu", (unsigned long long)s->opt_write_zero);
        return -EINVAL;
    }
    if (s->max_write_zero &&
        (s->max_write_zero >= INT_MAX ||
         s->max_write_zero % BD_MAX(s->opt_write_zero, a))) {
        bd_error_setg(errp, "Cannot meet constraints with max-write-zero "
                      "%llu", (unsigned long long)s->max_write_zero);
        return -EINVAL;
    }
    if (s->opt_discard &&
        (s->opt_discard >= INT_MAX || s->opt_discard % a)) {
        bd_error_setg(errp, "Cannot meet constraints with opt-discard %llu",
                      (unsigned long long)s->opt_discard);
        return -EINVAL;
    }
    if (s->max_discard &&
        (s->max_discard >= INT_MAX ||
         s->max_discard % BD_MAX(s->opt_discard, a))) {
        bd_error_setg(errp, "Cannot meet constraints with max-discard %llu",
                      (unsigned long long)s->max_discard);
        return -EINVAL;
    }
    return 0;
}

/* Only config and the image given? Then the node has QEMU's plain
 * "blkdebug:CONFIG:IMAGE" filename (spec §2.1, E35). */
static bool only_config_and_image(json_t *options)
{
    const char *k;
    json_t *v;

    json_object_foreach(options, k, v) {
        if (strcmp(k, "config") && strcmp(k, "x-image") &&
            strcmp(k, "image") && strncmp(k, "image.", 6)) {
            return false;
        }
    }
    return true;
}

static void set_plain_filename(struct blkdebug_state *s)
{
    const char *img = bd_node_filename(s->bs->file->node);
    char *fn;

    if (s->bs->filename && s->bs->filename[0]) {
        return;             /* the legacy filename it was opened with */
    }
    if (!img || !img[0] || !strncmp(img, "json:", 5)) {
        return;
    }
    fn = bd_strdup_printf("blkdebug:%s:%s",
                          s->config_file ? s->config_file : "", img);
    if (strlen(fn) >= 4096) {
        free(fn);
        return;
    }
    free(s->bs->filename);
    s->bs->filename = fn;
}

static int blkdebug_open(struct bd_node *bs, json_t *options, int flags,
                         struct bd_error **errp)
{
    struct blkdebug_state *s = bs->opaque;
    struct inj_hooks hooks = {
        .suspended = blkdebug_suspended,
        .resumed = blkdebug_resumed,
        .injected = blkdebug_injected,
        .opaque = s,
    };
    char *x_image = NULL;
    uint64_t seed = 0;
    bool log = false;
    bool plain = only_config_and_image(options);
    int ret = -EINVAL;

    (void)flags;
    s->bs = bs;
    bd_opts_take_str(options, "config", &s->config_file);
    bd_opts_take_str(options, "x-image", &x_image);
    if (bd_opts_take_size(options, "align", &s->align, errp) < 0 ||
        bd_opts_take_size(options, "max-transfer", &s->max_transfer,
                          errp) < 0 ||
        bd_opts_take_size(options, "opt-write-zero", &s->opt_write_zero,
                          errp) < 0 ||
        bd_opts_take_size(options, "max-write-zero", &s->max_write_zero,
                          errp) < 0 ||
        bd_opts_take_size(options, "opt-discard", &s->opt_discard,
                          errp) < 0 ||
        bd_opts_take_size(options, "max-discard", &s->max_discard,
                          errp) < 0 ||
        bd_opts_take_number(options, "seed", &seed, errp) < 0 ||
        bd_opts_take_bool(options, "log", &log, errp) < 0) {
        goto fail;
    }
    s->inj = inj_new(bd_node_name(bs));
    inj_set_seed(s->inj, seed);
    inj_set_log(s->inj, log);
    inj_set_hooks(s->inj, &hooks);
    if (inj_load(s->inj, s->config_file, options, errp) < 0) {
        goto fail;
    }
    if (take_perm_list(options, "take-child-perms", &s->take_perms,
                       errp) < 0 ||
        take_perm_list(options, "unshare-child-perms", &s->unshare_perms,
                       errp) < 0) {
        goto fail;
    }
    /* A filename for the image besides a description of it: QEMU's
     * messages for the two ways of saying it twice. */
    if (x_image && json_is_string(json_object_get(options, "image"))) {
        bd_error_setg(errp, "Cannot reference an existing block device with "
                      "additional options or a new filename");
        goto fail;
    }
    if (x_image && json_object_get(options, "image.filename")) {
        bd_error_setg(errp, "Can't specify 'file' and 'filename' options at "
                      "the same time");
        goto fail;
    }
    if (!bd_open_child(bs, options, "image", x_image,
                       BD_ROLE_FILTERED | BD_ROLE_PRIMARY | BD_ROLE_DATA,
                       false, errp)) {
        goto fail;
    }
    /* FUA is always accepted and passed down: a child without native FUA
     * emulates it with its own flush. QEMU's file-posix has native FUA, so
     * there a writethrough write never runs blkdebug's flush rules either;
     * emulating FUA here instead would fail writes on flush rules (E15). */
    bs->supported_write_flags = BD_REQ_WRITE_UNCHANGED | BD_REQ_FUA;
    bs->supported_zero_flags = BD_REQ_WRITE_UNCHANGED | BD_REQ_FUA |
        (bs->file->node->supported_zero_flags &
         (BD_REQ_MAY_UNMAP | BD_REQ_NO_FALLBACK));
    if (check_limits(s, errp) < 0) {
        goto fail;
    }
    free(x_image);
    if (plain) {
        set_plain_filename(s);
    }
    /* Rules on `none` are armed from the start (spec §3.2). */
    inj_event(s->inj, BD_EV_NONE);
    return 0;

fail:
    free(x_image);
    inj_free(s->inj);
    s->inj = NULL;
    free(s->config_file);
    s->config_file = NULL;
    return ret;
}

static void blkdebug_close(struct bd_node *bs)
{
    struct blkdebug_state *s = bs->opaque;

    inj_free(s->inj);
    s->inj = NULL;
    free(s->config_file);
    s->config_file = NULL;
}

static int blkdebug_refresh_limits(struct bd_node *bs, struct bd_error **errp)
{
    struct blkdebug_state *s = bs->opaque;

    (void)errp;
    if (s->align) {
        bs->bl.request_alignment = (uint32_t)s->align;
    }
    if (s->max_transfer) {
        bs->bl.max_transfer = s->max_transfer;
    }
    if (s->opt_write_zero) {
        bs->bl.pwrite_zeroes_alignment = (uint32_t)s->opt_write_zero;
    }
    if (s->max_write_zero) {
        bs->bl.max_pwrite_zeroes = s->max_write_zero;
    }
    if (s->opt_discard) {
        bs->bl.pdiscard_alignment = (uint32_t)s->opt_discard;
    }
    if (s->max_discard) {
        bs->bl.max_pdiscard = s->max_discard;
    }
    return 0;
}

static void blkdebug_child_perm(struct bd_node *bs, struct bd_child *c,
                                unsigned role, uint64_t parent_perm,
                                uint64_t parent_shared, uint64_t *nperm,
                                uint64_t *nshared)
{
    struct blkdebug_state *s = bs->opaque;

    bd_default_perms(bs, c, role, parent_perm, parent_shared, nperm,
                     nshared);
    *nperm |= s->take_perms;
    *nshared &= ~s->unshare_perms;
}

/* ------------------------------------------------------------------ */
/* Requests                                                             */

/*
 * Ask the injector about a request and carry out what does not need the
 * data: the delay, a plain error, a lost request. Returns 1 when the
 * request must go on to the child (v says what else to do), 0 or -errno
 * when it is complete.
 */
static int precheck(struct blkdebug_state *s, int iotype, int64_t off,
                    int64_t bytes, struct inj_verdict *v)
{
    if (!inj_check(s->inj, iotype, off, bytes, v)) {
        return 1;
    }
    if (v->delay_ns > 0) {
        /* Only this request's thread sleeps. */
        bd_sleep_ns(v->delay_ns);
    }
    if (v->lost) {
        return 0;
    }
    if (v->err > 0 && v->torn < 0) {
        return -v->err;
    }
    return 1;
}

static int blkdebug_preadv(struct bd_node *bs, int64_t off, int64_t bytes,
                           struct bd_qiov *qiov, int flags)
{
    struct blkdebug_state *s = bs->opaque;
    struct inj_verdict v;
    int ret = precheck(s, BD_IOTYPE_READ, off, bytes, &v);

    if (ret <= 0) {
        return ret;
    }
    ret = bd_child_preadv(bs->file, off, bytes, qiov, flags);
    if (ret == 0 && v.corrupt) {
        uint8_t *buf = bd_malloc((size_t)bytes);

        bd_qiov_to_buf(qiov, 0, buf, (size_t)bytes);
        inj_corrupt_buf(&v, buf, (size_t)bytes);
        bd_qiov_from_buf(qiov, 0, buf, (size_t)bytes);
        free(buf);
    }
    if (ret == 0 && v.torn >= 0) {
        ret = -v.err;
    }
    return ret;
}

static int blkdebug_pwritev(struct bd_node *bs, int64_t off, int64_t bytes,
                            struct bd_qiov *qiov, int flags)
{
    struct blkdebug_state *s = bs->opaque;
    struct inj_verdict v;
    int ret = precheck(s, BD_IOTYPE_WRITE, off, bytes, &v);

    if (ret <= 0) {
        return ret;
    }
    if (v.torn >= 0) {
        /* A torn write: the prefix reaches the image, the caller sees the
         * error. */
        if (v.torn > 0) {
            struct bd_qiov part;

            bd_qiov_slice(&part, qiov, 0, (size_t)v.torn);
            ret = bd_child_pwritev(bs->file, off, v.torn, &part,
                                   flags & ~BD_REQ_FUA);
            bd_qiov_destroy(&part);
            if (ret < 0) {
                return ret;
            }
        }
        return -v.err;
    }
    return bd_child_pwritev(bs->file, off, bytes, qiov, flags);
}

static int blkdebug_pwrite_zeroes(struct bd_node *bs, int64_t off,
                                  int64_t bytes, int flags)
{
    struct blkdebug_state *s = bs->opaque;
    uint32_t z = BD_MAX(bs->bl.request_alignment,
                        bs->bl.pwrite_zeroes_alignment);
    struct inj_verdict v;
    int ret;

    /* Small requests go back to the zero-buffer fallback before any rule
     * is consulted: QEMU's deliberate test aid (spec §5.3). */
    if (bytes < (int64_t)z) {
        return -ENOTSUP;
    }
    ret = precheck(s, BD_IOTYPE_WRITE_ZEROES, off, bytes, &v);
    if (ret <= 0) {
        return ret;
    }
    if (v.torn >= 0) {
        int64_t prefix = BD_ROUND_DOWN(v.torn, (int64_t)z);

        if (prefix > 0) {
            ret = bd_child_pwrite_zeroes(bs->file, off, prefix,
                                         flags & ~BD_REQ_FUA);
            if (ret < 0) {
                return ret;
            }
        }
        return -v.err;
    }
    return bd_child_pwrite_zeroes(bs->file, off, bytes, flags);
}

static int blkdebug_pdiscard(struct bd_node *bs, int64_t off, int64_t bytes)
{
    struct blkdebug_state *s = bs->opaque;
    struct inj_verdict v;
    int ret;

    if (bytes < (int64_t)bs->bl.request_alignment) {
        return -ENOTSUP;
    }
    ret = precheck(s, BD_IOTYPE_DISCARD, off, bytes, &v);
    if (ret <= 0) {
        return ret;
    }
    if (v.torn >= 0) {
        return -v.err;
    }
    return bd_child_pdiscard(bs->file, off, bytes);
}

/* The core flushes the child itself afterwards; blkdebug only decides
 * whether the flush fails. */
static int blkdebug_flush_to_disk(struct bd_node *bs)
{
    struct blkdebug_state *s = bs->opaque;
    struct inj_verdict v;
    int ret = precheck(s, BD_IOTYPE_FLUSH, 0, 0, &v);

    if (ret <= 0) {
        return ret;
    }
    return v.torn >= 0 ? -v.err : 0;
}

static int blkdebug_block_status(struct bd_node *bs, bool want_zero,
                                 int64_t off, int64_t bytes, int64_t *pnum,
                                 int64_t *map, struct bd_node **file)
{
    struct blkdebug_state *s = bs->opaque;
    struct inj_verdict v;
    int ret = precheck(s, BD_IOTYPE_BLOCK_STATUS, off, bytes, &v);

    if (ret < 0) {
        return ret;
    }
    if (v.torn >= 0) {
        return -v.err;
    }
    return bd_block_status_passthrough(bs, want_zero, off, bytes, pnum, map,
                                       file);
}

/* ------------------------------------------------------------------ */
/* Debug hooks                                                          */

static void blkdebug_debug_event(struct bd_node *bs, enum bd_event ev)
{
    struct blkdebug_state *s = bs->opaque;

    inj_trace("event %s node=%s", bd_event_name(ev), bd_node_name(bs));
    if (s->inj) {
        inj_event(s->inj, ev);
    }
}

static int blkdebug_debug_breakpoint(struct bd_node *bs, const char *event,
                                     const char *tag)
{
    struct blkdebug_state *s = bs->opaque;

    return inj_break(s->inj, event, tag);
}

static int blkdebug_debug_remove_breakpoint(struct bd_node *bs,
                                            const char *tag)
{
    struct blkdebug_state *s = bs->opaque;

    return inj_remove_break(s->inj, tag);
}

static int blkdebug_debug_resume(struct bd_node *bs, const char *tag)
{
    struct blkdebug_state *s = bs->opaque;

    return inj_resume(s->inj, tag);
}

static bool blkdebug_debug_is_suspended(struct bd_node *bs, const char *tag)
{
    struct blkdebug_state *s = bs->opaque;

    return inj_is_suspended(s->inj, tag);
}

static json_t *blkdebug_debug_query(struct bd_node *bs)
{
    struct blkdebug_state *s = bs->opaque;
    json_t *o = inj_query(s->inj);

    json_object_set_new(o, "node-name", json_string(bd_node_name(bs)));
    return o;
}

static const struct bd_driver blkdebug_driver = {
    .struct_size = sizeof(struct bd_driver),
    .name = "blkdebug",
    .protocol_name = "blkdebug",
    .is_filter = true,
    .instance_size = sizeof(struct blkdebug_state),
    .qapi_options = &blkdebug_options,
    .parse_filename = blkdebug_parse_filename,
    .open = blkdebug_open,
    .close = blkdebug_close,
    .refresh_limits = blkdebug_refresh_limits,
    .preadv = blkdebug_preadv,
    .pwritev = blkdebug_pwritev,
    .pwrite_zeroes = blkdebug_pwrite_zeroes,
    .pdiscard = blkdebug_pdiscard,
    .flush_to_disk = blkdebug_flush_to_disk,
    .block_status = blkdebug_block_status,
    .debug_event = blkdebug_debug_event,
    .debug_breakpoint = blkdebug_debug_breakpoint,
    .debug_remove_breakpoint = blkdebug_debug_remove_breakpoint,
    .debug_resume = blkdebug_debug_resume,
    .debug_is_suspended = blkdebug_debug_is_suspended,
    .debug_query = blkdebug_debug_query,
    .child_perm = blkdebug_child_perm,
};

BD_DRIVER_EXPORT(blkdebug_driver, bd_driver_blkdebug)

struct inj *bd_blkdebug_injector(struct bd_node *n)
{
    if (!n || n->drv != &blkdebug_driver) {
        return NULL;
    }
    return ((struct blkdebug_state *)n->opaque)->inj;
}

static int release_node_breaks(struct bd_node *n, void *opaque)
{
    struct inj *inj = bd_blkdebug_injector(n);

    (void)opaque;
    if (inj) {
        inj_release_breaks(inj);
    }
    return 0;
}

void bd_blkdebug_release_all_breaks(struct bd_graph *g)
{
    bd_graph_foreach_node(g, release_node_breaks, NULL);
}
