/*
 * monitor/qmp-block.c - block-layer commands: blockdev-add, blockdev-del,
 * query-named-block-nodes, query-blockstats, block-latency-histogram-set.
 *
 * Replies carry QEMU 10.0.2's members (BlockDeviceInfo, ImageInfo,
 * BlockStats) so scripts written against qemu-storage-daemon read them
 * unchanged; members describing features blkrig has no use for (I/O
 * throttling, encryption) are present with QEMU's neutral values.
 */
#include "common/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/cutils.h"
#include "driver/block-int.h"
#include "driver/dirty-bitmap.h"
#include "fuse/export.h"
#include "monitor/monitor-int.h"

/* The FUSE export module may not be linked in (weak, as the command
 * tables in qmp-cmds.h): without it the address is NULL. */
#pragma weak fx_exports_use_node
#pragma weak fx_export_query

/* ------------------------------------------------------------------ */
/* blockdev-add / blockdev-del                                          */

static json_t *blockdev_add(const struct qmp_context *ctx, json_t *args,
                            struct bd_error **errp)
{
    if (!bd_blockdev_add(ctx->graph, args, false, errp)) {
        return NULL;
    }
    return json_object();
}

static const struct qapi_member node_name_members[] = {
    { "node-name", &qapi_type_str, false },
    { NULL, NULL, false },
};
static const struct qapi_type blockdev_del_args = {
    .kind = QAPI_STRUCT, .name = "q_obj_blockdev-del-arg",
    .members = node_name_members,
};

static json_t *blockdev_del(const struct qmp_context *ctx, json_t *args,
                            struct bd_error **errp)
{
    const char *name = qapi_get_str(args, "node-name", "");

    /* An export holds a backend on its node, which the core refuses
     * anyway; asking the exports first keeps QEMU's wording even while an
     * export is being set up. */
    if (ctx->exports && fx_exports_use_node &&
        bd_graph_find_node(ctx->graph, name) &&
        fx_exports_use_node(ctx->exports, name)) {
        bd_error_setg(errp, "Node %s is in use", name);
        return NULL;
    }
    if (bd_blockdev_del(ctx->graph, name, errp) < 0) {
        return NULL;
    }
    return json_object();
}

/* ------------------------------------------------------------------ */
/* query-named-block-nodes                                              */

static const char *const detect_zeroes_names[] = { "off", "on", "unmap" };

/* Bytes the image occupies on the host: the protocol leaf's allocation
 * (QEMU asks the same leaf; null-co and friends occupy nothing). */
static int64_t actual_size(struct bd_node *n)
{
    struct bd_node *leaf = n;
    struct stat st;

    while (bd_node_file(leaf)) {
        leaf = bd_node_file(leaf);
    }
    if (strcmp(bd_node_driver_name(leaf), "file") != 0) {
        return 0;
    }
    if (stat(leaf->filename ? leaf->filename : "", &st) < 0) {
        return -1;
    }
    return (int64_t)st.st_blocks * 512;
}

/* blockdev-add members that do not change what a node reads (QEMU
 * leaves them out of generated filenames). */
static bool weak_option(const char *drv, const char *key)
{
    static const char *const generic[] = {
        "driver", "node-name", "discard", "cache", "read-only",
        "auto-read-only", "force-share", "detect-zeroes", NULL,
    };
    const char *const *g;

    for (g = generic; *g; g++) {
        if (!strcmp(*g, key)) {
            return true;
        }
    }
    /* null-co's own filename hook ignores its latency. */
    return !strncmp(drv, "null-", 5) && !strcmp(key, "latency-ns");
}

/*
 * The name QEMU shows for a node: what it was opened from, else its
 * filtered/file child's; for protocol drivers that need no file (null-co)
 * "<protocol>://", or json:{"driver": .., options} when options that
 * change the content were given.
 */
static const char *node_filename(struct bd_node *n)
{
    static __thread char gen[4096];
    const char *f = bd_node_filename(n);
    const char *key;
    json_t *v;
    json_t *strong = NULL;
    char *text = NULL;

    if (f && *f) {
        return f;
    }
    if (bd_node_file(n)) {
        return node_filename(bd_node_file(n));
    }
    if (!n->drv->protocol_name) {
        return "";
    }
    strong = json_pack("{s:s}", "driver", n->drv->name);
    json_object_foreach(n->open_options, key, v) {
        if (!weak_option(n->drv->name, key)) {
            json_object_set(strong, key, v);
        }
    }
    if (json_object_size(strong) == 1) {
        snprintf(gen, sizeof(gen), "%s://", n->drv->protocol_name);
    } else {
        text = json_dumps(strong, 0);
        snprintf(gen, sizeof(gen), "json:%s", text ? text : "{}");
        free(text);
    }
    json_decref(strong);
    return gen;
}

static json_t *image_info(struct bd_node *n, bool flat)
{
    struct bd_node_info info;
    struct bd_node *backing = bd_node_backing(n);
    json_t *img = json_object();
    bool has_info = n->drv->get_info != NULL;
    int64_t asz = actual_size(n);

    bd_get_info(n, &info);
    json_object_set_new(img, "filename", json_string(node_filename(n)));
    json_object_set_new(img, "format", json_string(bd_node_driver_name(n)));
    /* QEMU's file-posix answers get_info with no data: that is where its
     * "dirty-flag" and empty format-specific come from. */
    if (!strcmp(bd_node_driver_name(n), "file")) {
        has_info = true;
        if (!info.format_specific) {
            info.format_specific = json_pack("{s:s, s:{}}", "type", "file",
                                             "data");
        }
    }
    if (has_info) {
        json_object_set_new(img, "dirty-flag", json_boolean(info.is_dirty));
    }
    if (asz >= 0) {
        json_object_set_new(img, "actual-size", json_integer(asz));
    }
    json_object_set_new(img, "virtual-size", json_integer(bd_getlength(n)));
    if (info.cluster_size > 0) {
        json_object_set_new(img, "cluster-size",
                            json_integer(info.cluster_size));
    }
    if (backing) {
        json_object_set_new(img, "backing-filename",
                            json_string(node_filename(backing)));
        json_object_set_new(img, "full-backing-filename",
                            json_string(node_filename(backing)));
        json_object_set_new(img, "backing-filename-format",
                            json_string(bd_node_driver_name(backing)));
        if (!flat) {
            json_object_set_new(img, "backing-image",
                                image_info(backing, flat));
        }
    }
    if (info.format_specific) {
        json_object_set_new(img, "format-specific", info.format_specific);
    }
    return img;
}

static json_t *block_device_info(struct bd_node *n, bool flat)
{
    json_t *o = json_object();
    struct bd_node *b;
    int depth = 0;
    int flags = bd_node_open_flags(n);
    json_t *bitmaps = NULL;
    int dz = n->detect_zeroes;

    for (b = bd_node_backing(n); b; b = bd_node_backing(b)) {
        depth++;
    }
    json_object_set_new(o, "file", json_string(node_filename(n)));
    json_object_set_new(o, "node-name", json_string(bd_node_name(n)));
    json_object_set_new(o, "ro", json_boolean(bd_is_read_only(n)));
    json_object_set_new(o, "drv", json_string(bd_node_driver_name(n)));
    if (bd_node_backing(n)) {
        json_object_set_new(o, "backing_file",
                            json_string(node_filename(bd_node_backing(n))));
    }
    json_object_set_new(o, "backing_file_depth", json_integer(depth));
    json_object_set_new(o, "encrypted", json_false());
    json_object_set_new(o, "detect_zeroes",
                        json_string(detect_zeroes_names[dz >= 0 && dz < 3
                                                        ? dz : 0]));
    json_object_set_new(o, "bps", json_integer(0));
    json_object_set_new(o, "bps_rd", json_integer(0));
    json_object_set_new(o, "bps_wr", json_integer(0));
    json_object_set_new(o, "iops", json_integer(0));
    json_object_set_new(o, "iops_rd", json_integer(0));
    json_object_set_new(o, "iops_wr", json_integer(0));
    json_object_set_new(o, "image", image_info(n, flat));
    /* A node has no write cache of its own; QEMU reports writeback for
     * every node (the backend's mode is not the node's). */
    json_object_set_new(o, "cache",
                        json_pack("{s:b, s:b, s:b}", "writeback", 1,
                                  "direct", !!(flags & BD_O_NOCACHE),
                                  "no-flush", !!(flags & BD_O_NO_FLUSH)));
    json_object_set_new(o, "write_threshold", json_integer(0));
    bitmaps = bd_dirty_bitmap_query(n);
    if (bitmaps && json_array_size(bitmaps)) {
        json_object_set_new(o, "dirty-bitmaps", bitmaps);
    } else {
        json_decref(bitmaps);
    }
    json_object_set_new(o, "active", json_true());
    return o;
}

static int collect_named(struct bd_node *n, void *opaque)
{
    if (!bd_node_name_generated(n)) {
        json_array_append_new(opaque, json_pack("{s:s}", "name",
                                                bd_node_name(n)));
    }
    return 0;
}

static const struct qapi_member flat_members[] = {
    { "flat", &qapi_type_bool, true },
    { NULL, NULL, false },
};
static const struct qapi_type query_nodes_args = {
    .kind = QAPI_STRUCT, .name = "q_obj_query-named-block-nodes-arg",
    .members = flat_members,
};

static json_t *query_named_block_nodes(const struct qmp_context *ctx,
                                       json_t *args, struct bd_error **errp)
{
    bool flat = qapi_get_bool(args, "flat", false);
    json_t *names = json_array();
    json_t *list = json_array();
    size_t i;

    (void)errp;
    /* Names first, then look each up: building the reply takes node
     * locks the graph walk must not hold. QEMU lists the newest first. */
    bd_graph_foreach_node(ctx->graph, collect_named, names);
    for (i = json_array_size(names); i-- > 0;) {
        const char *nm = json_string_value(
            json_object_get(json_array_get(names, i), "name"));
        struct bd_node *n = bd_graph_find_node(ctx->graph, nm);

        if (n) {
            bd_ref(n);
            json_array_append_new(list, block_device_info(n, flat));
            bd_unref(n);
        }
    }
    json_decref(names);
    return list;
}

/* ------------------------------------------------------------------ */
/* query-blockstats                                                     */

static const char *const acct_prefix[BD_ACCT__MAX] = {
    "rd", "wr", "flush", "unmap", "zone_append",
};

static json_t *hist_info(const struct bd_acct_hist *h)
{
    json_t *b = json_array();
    json_t *bins = json_array();
    int i;

    for (i = 0; i < h->nbounds; i++) {
        json_array_append_new(b, json_integer((json_int_t)h->boundaries[i]));
    }
    for (i = 0; i <= h->nbounds; i++) {
        json_array_append_new(bins, json_integer((json_int_t)h->bins[i]));
    }
    return json_pack("{s:o, s:o}", "boundaries", b, "bins", bins);
}

/* BlockDeviceStats from counters; st NULL gives QEMU's all-zero node
 * statistics (accounting lives in backends). */
static json_t *device_stats(const struct bd_acct_stats *st,
                            struct bd_acct_hist hist[BD_ACCT__MAX])
{
    static const struct bd_acct_stats zero;
    json_t *o = json_object();
    int t;

    if (!st) {
        st = &zero;
    }
    for (t = 0; t < BD_ACCT__MAX; t++) {
        char key[64];

        if (t == BD_ACCT_FLUSH) {
            continue;   /* flushes have no byte count */
        }
        snprintf(key, sizeof(key), "%s_bytes", acct_prefix[t]);
        json_object_set_new(o, key, json_integer((json_int_t)st->bytes[t]));
    }
    for (t = 0; t < BD_ACCT__MAX; t++) {
        char key[64];

        snprintf(key, sizeof(key), "%s_operations", acct_prefix[t]);
        json_object_set_new(o, key, json_integer((json_int_t)st->ops[t]));
        snprintf(key, sizeof(key), "%s_total_time_ns", acct_prefix[t]);
        json_object_set_new(o, key,
                            json_integer((json_int_t)st->total_time_ns[t]));
        snprintf(key, sizeof(key), "failed_%s_operations", acct_prefix[t]);
        json_object_set_new(o, key,
                            json_integer((json_int_t)st->failed_ops[t]));
        snprintf(key, sizeof(key), "invalid_%s_operations", acct_prefix[t]);
        json_object_set_new(o, key,
                            json_integer((json_int_t)st->invalid_ops[t]));
        if (t != BD_ACCT_FLUSH) {
            snprintf(key, sizeof(key), "%s_merged", acct_prefix[t]);
            json_object_set_new(o, key,
                                json_integer((json_int_t)st->merged[t]));
        }
    }
    json_object_set_new(o, "wr_highest_offset",
                        json_integer((json_int_t)st->wr_highest_offset));
    if (st->last_access_ns > 0) {
        int64_t idle = bd_clock_ns() - st->last_access_ns;

        json_object_set_new(o, "idle_time_ns",
                            json_integer(idle > 0 ? idle : 0));
    }
    json_object_set_new(o, "account_invalid", json_boolean(st != &zero));
    json_object_set_new(o, "account_failed", json_boolean(st != &zero));
    json_object_set_new(o, "timed_stats", json_array());
    for (t = 0; hist && t < BD_ACCT__MAX; t++) {
        char key[64];

        if (!hist[t].boundaries) {
            continue;
        }
        snprintf(key, sizeof(key), "%s_latency_histogram", acct_prefix[t]);
        json_object_set_new(o, key, hist_info(&hist[t]));
    }
    return o;
}

/* Node-level BlockStats, with "parent" for the file child and "backing"
 * as QEMU nests them. */
static json_t *node_stats(struct bd_node *n)
{
    json_t *o = json_object();

    if (!bd_node_name_generated(n)) {
        json_object_set_new(o, "node-name", json_string(bd_node_name(n)));
    }
    json_object_set_new(o, "stats", device_stats(NULL, NULL));
    if (bd_node_file(n)) {
        json_object_set_new(o, "parent", node_stats(bd_node_file(n)));
    }
    if (bd_node_backing(n)) {
        json_object_set_new(o, "backing", node_stats(bd_node_backing(n)));
    }
    return o;
}

static int add_blk_stats(struct bd_blk *b, void *opaque)
{
    struct bd_acct_stats st;
    struct bd_acct_hist hist[BD_ACCT__MAX];
    struct bd_node *n = bd_blk_node(b);
    json_t *o;
    int t;

    /* QEMU shows only named backends, which qsd does not have; blkrig
     * shows every backend on a named node (exports, jobs) so their
     * counters and histograms are reachable, anonymous ones with the
     * empty device name QEMU uses for them elsewhere. */
    if (!n || bd_node_name_generated(n)) {
        return 0;
    }
    bd_blk_get_stats(b, &st, hist);
    o = json_object();
    json_object_set_new(o, "device",
                        json_string(bd_blk_name(b) ? bd_blk_name(b) : ""));
    if (n && !bd_node_name_generated(n)) {
        json_object_set_new(o, "node-name", json_string(bd_node_name(n)));
    }
    json_object_set_new(o, "stats", device_stats(&st, hist));
    if (n && bd_node_file(n)) {
        json_object_set_new(o, "parent", node_stats(bd_node_file(n)));
    }
    for (t = 0; t < BD_ACCT__MAX; t++) {
        bd_acct_hist_free(&hist[t]);
    }
    json_array_append_new(opaque, o);
    return 0;
}

static int add_node_stats(struct bd_node *n, void *opaque)
{
    if (!bd_node_name_generated(n)) {
        json_array_append_new(opaque, node_stats(n));
    }
    return 0;
}

static const struct qapi_member blockstats_members[] = {
    { "query-nodes", &qapi_type_bool, true },
    { NULL, NULL, false },
};
static const struct qapi_type blockstats_args = {
    .kind = QAPI_STRUCT, .name = "q_obj_query-blockstats-arg",
    .members = blockstats_members,
};

static json_t *query_blockstats(const struct qmp_context *ctx, json_t *args,
                                struct bd_error **errp)
{
    json_t *list = json_array();

    (void)errp;
    if (qapi_get_bool(args, "query-nodes", false)) {
        bd_graph_foreach_node(ctx->graph, add_node_stats, list);
    } else {
        bd_graph_foreach_blk(ctx->graph, add_blk_stats, list);
    }
    return list;
}

/* ------------------------------------------------------------------ */
/* block-latency-histogram-set                                          */

static const struct qapi_type u64_list = {
    .kind = QAPI_LIST, .name = "uint64List", .element = &qapi_type_uint64,
};
static const struct qapi_member histogram_members[] = {
    { "id", &qapi_type_str, false },
    { "boundaries", &u64_list, true },
    { "boundaries-read", &u64_list, true },
    { "boundaries-write", &u64_list, true },
    { "boundaries-zap", &u64_list, true },
    { "boundaries-flush", &u64_list, true },
    { NULL, NULL, false },
};
static const struct qapi_type histogram_args = {
    .kind = QAPI_STRUCT, .name = "q_obj_block-latency-histogram-set-arg",
    .members = histogram_members,
};

struct blk_find {
    const char *id;
    struct bd_blk *by_name;
    struct bd_blk *by_node;
};

static int find_blk(struct bd_blk *b, void *opaque)
{
    struct blk_find *f = opaque;
    struct bd_node *n = bd_blk_node(b);

    if (bd_blk_name(b) && !strcmp(bd_blk_name(b), f->id)) {
        f->by_name = b;
        return 1;
    }
    if (!f->by_node && n && !strcmp(bd_node_name(n), f->id)) {
        f->by_node = b;
    }
    return 0;
}

static int set_one(struct bd_blk *b, enum bd_acct_type t, json_t *list)
{
    size_t n = json_array_size(list), i;
    uint64_t *bounds = NULL;
    int r;

    if (!n) {
        return -EINVAL;
    }
    bounds = bd_malloc(n * sizeof(*bounds));
    for (i = 0; i < n; i++) {
        bounds[i] = (uint64_t)json_integer_value(json_array_get(list, i));
    }
    r = bd_blk_set_histogram(b, t, bounds, (int)n);
    free(bounds);
    return r;
}

static json_t *block_latency_histogram_set(const struct qmp_context *ctx,
                                           json_t *args,
                                           struct bd_error **errp)
{
    static const struct {
        const char *key, *what;
        enum bd_acct_type type;
    } kinds[] = {
        { "boundaries-read", "read", BD_ACCT_READ },
        { "boundaries-write", "write", BD_ACCT_WRITE },
        { "boundaries-zap", "zap", BD_ACCT_ZONE_APPEND },
        { "boundaries-flush", "flush", BD_ACCT_FLUSH },
    };
    struct blk_find f = { .id = qapi_get_str(args, "id", "") };
    json_t *all = json_object_get(args, "boundaries");
    struct bd_blk *b;
    size_t i;
    bool any = all != NULL;

    bd_graph_foreach_blk(ctx->graph, find_blk, &f);
    if (!f.by_name && ctx->exports && fx_export_query) {
        /* An export id names the export's backend. */
        json_t *exports = fx_export_query(ctx->exports);
        json_t *e;

        json_array_foreach(exports, i, e) {
            if (!strcmp(qapi_get_str(e, "id", ""), f.id)) {
                struct blk_find byexp = {
                    .id = qapi_get_str(e, "node-name", ""),
                };

                bd_graph_foreach_blk(ctx->graph, find_blk, &byexp);
                f.by_node = byexp.by_node ? byexp.by_node : f.by_node;
                break;
            }
        }
        json_decref(exports);
    }
    b = f.by_name ? f.by_name : f.by_node;
    if (!b) {
        bd_error_set(errp, BD_ERR_DEVICE_NOT_FOUND, "Device '%s' not found",
                     f.id);
        return NULL;
    }
    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        any = any || json_object_get(args, kinds[i].key);
    }
    if (!any) {
        /* No boundaries at all: remove every histogram. */
        for (i = 0; i < BD_ACCT__MAX; i++) {
            bd_blk_set_histogram(b, (enum bd_acct_type)i, NULL, 0);
        }
        return json_object();
    }
    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        json_t *l = json_object_get(args, kinds[i].key);

        if (!l) {
            l = all;
        }
        if (l && set_one(b, kinds[i].type, l) < 0) {
            bd_error_setg(errp, "Device '%s' set %s boundaries fail", f.id,
                          kinds[i].what);
            return NULL;
        }
    }
    return json_object();
}

const struct qmp_command qmp_cmds_block[] = {
    { "blockdev-add", &bd_qapi_blockdev_options, blockdev_add, 0 },
    { "blockdev-del", &blockdev_del_args, blockdev_del, 0 },
    { "query-named-block-nodes", &query_nodes_args, query_named_block_nodes,
      0 },
    { "query-blockstats", &blockstats_args, query_blockstats, 0 },
    { "block-latency-histogram-set", &histogram_args,
      block_latency_histogram_set, 0 },
    { NULL, NULL, NULL, 0 },
};
