/*
 * monitor/qmp-bitmap.c - block-dirty-bitmap-add/remove/clear/enable/
 * disable/merge (specs/jobs.md §6.2), as transaction actions.
 *
 * Order of checks and messages are QEMU 10.0.2's, measured against
 * qemu-storage-daemon (tests/compat/25x). Each action does its change in
 * prepare and keeps what abort needs to undo it, so `transaction` can roll
 * back a group and the standalone command is the same code.
 */
#include "common/config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/cutils.h"
#include "driver/blk-int.h"
#include "driver/block.h"
#include "driver/dirty-bitmap.h"
#include "driver/qcow2.h"
#include "jobs/txn-actions.h"
#include "monitor/qmp-cmds.h"


#define BITMAP_NAME_MAX 1023

/* ------------------------------------------------------------------ */
/* Argument schemas                                                     */

static const struct qapi_member add_members[] = {
    { "node", &qapi_type_str, false },
    { "name", &qapi_type_str, false },
    { "granularity", &qapi_type_uint32, true },
    { "persistent", &qapi_type_bool, true },
    { "disabled", &qapi_type_bool, true },
    { NULL, NULL, false },
};
const struct qapi_type qmp_bitmap_add_args = {
    .kind = QAPI_STRUCT, .name = "BlockDirtyBitmapAdd", .members = add_members,
};


static const struct qapi_type *const bitmap_or_str_alts[] = {
    &qapi_type_str, &bd_qapi_block_dirty_bitmap, NULL,
};
static const struct qapi_type bitmap_or_str = {
    .kind = QAPI_ALTERNATE, .name = "BlockDirtyBitmapOrStr",
    .alternatives = bitmap_or_str_alts,
};
static const struct qapi_type bitmap_or_str_list = {
    .kind = QAPI_LIST, .name = "BlockDirtyBitmapOrStrList",
    .element = &bitmap_or_str,
};
static const struct qapi_member merge_members[] = {
    { "node", &qapi_type_str, false },
    { "target", &qapi_type_str, false },
    { "bitmaps", &bitmap_or_str_list, false },
    { NULL, NULL, false },
};
const struct qapi_type qmp_bitmap_merge_args = {
    .kind = QAPI_STRUCT, .name = "BlockDirtyBitmapMerge",
    .members = merge_members,
};

/* ------------------------------------------------------------------ */
/* Lookups                                                              */

static const char *arg_str(json_t *args, const char *key)
{
    return json_string_value(json_object_get(args, key));
}

/* A node by node name or by the name of a backend attached to it. */
static struct bd_node *lookup_bs(struct bd_graph *g, const char *name)
{
    struct bd_node *bs = bd_graph_find_node(g, name);
    struct bd_blk *blk;

    if (bs) {
        return bs;
    }
    blk = bd_blk_find(g, name);
    return blk ? bd_blk_node(blk) : NULL;
}

/* QEMU's block_dirty_bitmap_lookup: node first, then bitmap. */
static struct bd_dirty_bitmap *lookup_bitmap(struct bd_graph *g,
                                             const char *node,
                                             const char *name,
                                             struct bd_error **errp)
{
    struct bd_node *bs;
    struct bd_dirty_bitmap *bm;

    if (!node) {
        bd_error_setg(errp, "Parameter 'node' is missing");
        return NULL;
    }
    if (!name) {
        bd_error_setg(errp, "Parameter 'name' is missing");
        return NULL;
    }
    bs = lookup_bs(g, node);
    if (!bs) {
        bd_error_setg(errp, "Node '%s' not found", node);
        return NULL;
    }
    bm = bd_dirty_bitmap_find(bs, name);
    if (!bm) {
        bd_error_setg(errp, "Dirty bitmap '%s' not found", name);
    }
    return bm;
}

/* Default granularity: the node's cluster size clamped to [4k, 64k],
 * 64k when it has none (raw). */
static uint64_t default_granularity(struct bd_node *bs)
{
    struct bd_node_info info;

    memset(&info, 0, sizeof(info));
    if (bd_get_info(bs, &info) == 0 && info.cluster_size > 0) {
        json_decref(info.format_specific);
        return (uint64_t)BD_MIN(BD_MAX(info.cluster_size, 4096),
                                65536);
    }
    json_decref(info.format_specific);
    return 65536;
}

/* ------------------------------------------------------------------ */
/* add                                                                  */

static int add_prepare(const struct txn_action_env *env, json_t *args,
                       void **state, struct bd_error **errp)
{
    const char *node = arg_str(args, "node");
    const char *name = arg_str(args, "name");
    json_t *jg = json_object_get(args, "granularity");
    struct bd_dirty_bitmap *bm;
    struct bd_node *bs;
    uint64_t gran;

    *state = NULL;
    if (!name || !*name) {
        bd_error_setg(errp, "Bitmap name cannot be empty");
        return -EINVAL;
    }
    bs = node ? lookup_bs(env->ctx->graph, node) : NULL;
    if (!bs) {
        bd_error_setg(errp, "Cannot find device='%s' nor node-name='%s'",
                      node ? node : "", node ? node : "");
        return -ENOENT;
    }
    if (jg) {
        json_int_t v = json_integer_value(jg);

        if (!json_is_integer(jg) || v < 0 || v > (json_int_t)UINT32_MAX) {
            bd_error_setg(errp, "Parameter 'granularity' expects uint32_t");
            return -EINVAL;
        }
        gran = (uint64_t)v;
        if (gran < 512 || !bd_is_power_of_2(gran)) {
            bd_error_setg(errp, "Granularity must be power of 2 and at "
                          "least 512");
            return -EINVAL;
        }
    } else {
        gran = default_granularity(bs);
    }
    if (json_is_true(json_object_get(args, "persistent")) &&
        !qcow2_is_node(bs)) {
        /* Only qcow2 stores bitmaps. */
        bd_error_setg(errp, "Can't store persistent bitmaps to %s: "
                      "Operation not supported", bd_node_name(bs));
        return -ENOTSUP;
    }
    if (json_is_true(json_object_get(args, "persistent")) &&
        !qcow2_can_store_new_bitmap(bs, name, errp)) {
        return -ENOTSUP;
    }
    if (bd_dirty_bitmap_find(bs, name)) {
        bd_error_setg(errp, "Bitmap already exists: %s", name);
        return -EEXIST;
    }
    if (strlen(name) > BITMAP_NAME_MAX) {
        bd_error_setg(errp, "Bitmap name too long: %s", name);
        return -EINVAL;
    }
    bm = bd_dirty_bitmap_create(bs, gran, name, errp);
    if (!bm) {
        return -EINVAL;
    }
    if (json_is_true(json_object_get(args, "disabled"))) {
        bd_dirty_bitmap_set_enabled(bm, false);
    }
    /* Stored in the image when the node closes (qcow2_bitmaps_store). */
    bm->persistent = json_is_true(json_object_get(args, "persistent"));
    *state = bm;
    return 0;
}

static void add_abort(void *state)
{
    if (state) {
        bd_dirty_bitmap_release(state);
    }
}

/* ------------------------------------------------------------------ */
/* remove                                                               */

static int remove_prepare(const struct txn_action_env *env, json_t *args,
                          void **state, struct bd_error **errp)
{
    struct bd_dirty_bitmap *bm;

    *state = NULL;
    bm = lookup_bitmap(env->ctx->graph, arg_str(args, "node"),
                       arg_str(args, "name"), errp);
    if (!bm) {
        return -ENOENT;
    }
    if (bd_dirty_bitmap_check(bm, BD_BITMAP_BUSY | BD_BITMAP_RO, errp) < 0) {
        return -EBUSY;
    }
    /* Hidden from other actions until commit: busy. */
    bm->busy = true;
    *state = bm;
    return 0;
}

static void remove_commit(void *state)
{
    struct bd_dirty_bitmap *bm = state;
    struct bd_node *bs = bm->node;
    bool persistent = bm->persistent;

    bd_dirty_bitmap_release(bm);
    if (persistent) {
        /* QEMU deletes it from the image at once; the others stay flagged
         * in use while the image is open for writing. */
        (void)qcow2_bitmaps_store(bs, true);
    }
}

static void remove_abort(void *state)
{
    struct bd_dirty_bitmap *bm = state;

    if (bm) {
        bm->busy = false;
    }
}

/* ------------------------------------------------------------------ */
/* clear, enable, disable: change in prepare, undo from a snapshot      */

struct undo_state {
    struct bd_dirty_bitmap *bm;
    uint64_t *bits;             /* clear/merge: the old bits */
    bool was_enabled;           /* enable/disable */
};

static struct undo_state *undo_new(struct bd_dirty_bitmap *bm)
{
    struct undo_state *u = bd_malloc0(sizeof(*u));

    u->bm = bm;
    u->was_enabled = bm->enabled;
    return u;
}

static void undo_abort(void *state)
{
    struct undo_state *u = state;

    if (!u) {
        return;
    }
    if (u->bits) {
        bd_dirty_bitmap_restore(u->bm, u->bits);
        u->bits = NULL;
    }
    bd_dirty_bitmap_set_enabled(u->bm, u->was_enabled);
}

static void undo_clean(void *state)
{
    struct undo_state *u = state;

    if (u) {
        free(u->bits);
        free(u);
    }
}

static int clear_prepare(const struct txn_action_env *env, json_t *args,
                         void **state, struct bd_error **errp)
{
    struct bd_dirty_bitmap *bm;
    struct undo_state *u;

    *state = NULL;
    bm = lookup_bitmap(env->ctx->graph, arg_str(args, "node"),
                       arg_str(args, "name"), errp);
    if (!bm) {
        return -ENOENT;
    }
    if (bd_dirty_bitmap_check(bm, BD_BITMAP_DEFAULT, errp) < 0) {
        return -EBUSY;
    }
    u = undo_new(bm);
    u->bits = bd_dirty_bitmap_backup(bm);
    bd_dirty_bitmap_clear(bm);
    *state = u;
    return 0;
}

static int set_enabled(const struct txn_action_env *env, json_t *args,
                       void **state, bool enable, struct bd_error **errp)
{
    struct bd_dirty_bitmap *bm;

    *state = NULL;
    bm = lookup_bitmap(env->ctx->graph, arg_str(args, "node"),
                       arg_str(args, "name"), errp);
    if (!bm) {
        return -ENOENT;
    }
    if (bd_dirty_bitmap_check(bm, BD_BITMAP_ALLOW_RO, errp) < 0) {
        return -EBUSY;
    }
    *state = undo_new(bm);
    bd_dirty_bitmap_set_enabled(bm, enable);
    return 0;
}

static int enable_prepare(const struct txn_action_env *env, json_t *args,
                          void **state, struct bd_error **errp)
{
    return set_enabled(env, args, state, true, errp);
}

static int disable_prepare(const struct txn_action_env *env, json_t *args,
                           void **state, struct bd_error **errp)
{
    return set_enabled(env, args, state, false, errp);
}

/* ------------------------------------------------------------------ */
/* merge                                                                */

/* One source: a name on `node`, or {node, name} anywhere. */
static struct bd_dirty_bitmap *merge_source(struct bd_graph *g,
                                            struct bd_node *bs, json_t *item,
                                            struct bd_error **errp)
{
    struct bd_dirty_bitmap *src;

    if (json_is_string(item)) {
        src = bd_dirty_bitmap_find(bs, json_string_value(item));
        if (!src) {
            bd_error_setg(errp, "Dirty bitmap '%s' not found",
                          json_string_value(item));
        }
        return src;
    }
    if (json_is_object(item)) {
        return lookup_bitmap(g, arg_str(item, "node"), arg_str(item, "name"),
                             errp);
    }
    bd_error_setg(errp, "Invalid parameter type for 'null', expected: "
                  "BlockDirtyBitmapOrStr");
    return NULL;
}

static int merge_prepare(const struct txn_action_env *env, json_t *args,
                         void **state, struct bd_error **errp)
{
    struct bd_graph *g = env->ctx->graph;
    json_t *list = json_object_get(args, "bitmaps");
    struct bd_dirty_bitmap *dst;
    struct bd_dirty_bitmap **srcs = NULL;
    struct undo_state *u;
    size_t n;
    size_t i;
    int ret = 0;

    *state = NULL;
    dst = lookup_bitmap(g, arg_str(args, "node"), arg_str(args, "target"),
                        errp);
    if (!dst) {
        return -ENOENT;
    }
    if (!json_is_array(list)) {
        bd_error_setg(errp, "Parameter 'bitmaps' is missing");
        return -EINVAL;
    }
    /* Every source is checked before the target changes, so a failure
     * leaves the target as it was. */
    n = json_array_size(list);
    srcs = bd_malloc0((n + 1) * sizeof(*srcs));
    for (i = 0; i < n; i++) {
        struct bd_dirty_bitmap *src = merge_source(g, dst->node,
                                                   json_array_get(list, i),
                                                   errp);
        if (!src) {
            ret = -ENOENT;
            goto out;
        }
        if (bd_dirty_bitmap_check(src, BD_BITMAP_BUSY |
                                  BD_BITMAP_INCONSISTENT, errp) < 0) {
            ret = -EINVAL;
            goto out;
        }
        if (bd_dirty_bitmap_size(src) != bd_dirty_bitmap_size(dst)) {
            bd_error_setg(errp, "Bitmaps are of different sizes (destination "
                          "size is %" PRId64 ", source size is %" PRId64
                          ") and can't be merged",
                          bd_dirty_bitmap_size(dst),
                          bd_dirty_bitmap_size(src));
            ret = -EINVAL;
            goto out;
        }
        srcs[i] = src;
    }
    if (bd_dirty_bitmap_check(dst, BD_BITMAP_DEFAULT, errp) < 0) {
        ret = -EBUSY;
        goto out;
    }
    u = undo_new(dst);
    u->bits = bd_dirty_bitmap_backup(dst);
    for (i = 0; i < n; i++) {
        bd_dirty_bitmap_merge(dst, srcs[i]);
    }
    *state = u;
out:
    free(srcs);
    return ret;
}

/* ------------------------------------------------------------------ */
/* Tables                                                               */

static const struct txn_action_ops bitmap_actions[] = {
    { "block-dirty-bitmap-add", false, add_prepare, NULL, add_abort, NULL },
    { "block-dirty-bitmap-remove", false, remove_prepare, remove_commit,
      remove_abort, NULL },
    { "block-dirty-bitmap-clear", false, clear_prepare, NULL, undo_abort,
      undo_clean },
    { "block-dirty-bitmap-enable", false, enable_prepare, NULL, undo_abort,
      undo_clean },
    { "block-dirty-bitmap-disable", false, disable_prepare, NULL,
      undo_abort, undo_clean },
    { "block-dirty-bitmap-merge", false, merge_prepare, NULL, undo_abort,
      undo_clean },
    { NULL, false, NULL, NULL, NULL, NULL },
};

const struct txn_action_ops *txn_bitmap_action(const char *kind)
{
    const struct txn_action_ops *a;

    for (a = bitmap_actions; a->kind; a++) {
        if (!strcmp(a->kind, kind)) {
            return a;
        }
    }
    return NULL;
}

#define BITMAP_HANDLER(fn, kind) \
    static json_t *fn(const struct qmp_context *ctx, json_t *args, \
                      struct bd_error **errp) \
    { \
        return txn_run_single(txn_bitmap_action(kind), ctx, args, errp); \
    }

BITMAP_HANDLER(qmp_bitmap_add, "block-dirty-bitmap-add")
BITMAP_HANDLER(qmp_bitmap_remove, "block-dirty-bitmap-remove")
BITMAP_HANDLER(qmp_bitmap_clear, "block-dirty-bitmap-clear")
BITMAP_HANDLER(qmp_bitmap_enable, "block-dirty-bitmap-enable")
BITMAP_HANDLER(qmp_bitmap_disable, "block-dirty-bitmap-disable")
BITMAP_HANDLER(qmp_bitmap_merge, "block-dirty-bitmap-merge")

const struct qmp_command qmp_cmds_bitmap[] = {
    { "block-dirty-bitmap-add", &qmp_bitmap_add_args, qmp_bitmap_add, 0 },
    { "block-dirty-bitmap-remove", &bd_qapi_block_dirty_bitmap, qmp_bitmap_remove, 0 },
    { "block-dirty-bitmap-clear", &bd_qapi_block_dirty_bitmap, qmp_bitmap_clear, 0 },
    { "block-dirty-bitmap-enable", &bd_qapi_block_dirty_bitmap, qmp_bitmap_enable, 0 },
    { "block-dirty-bitmap-disable", &bd_qapi_block_dirty_bitmap, qmp_bitmap_disable,
      0 },
    { "block-dirty-bitmap-merge", &qmp_bitmap_merge_args, qmp_bitmap_merge,
      0 },
    { NULL, NULL, NULL, 0 },
};
