/*
 * cli/img.c - `blkrig img`: the qemu-img subset scripts use on raw and
 * qcow2 images: create, info, check, map, compare. Output lines, JSON
 * layout, messages and exit codes follow qemu-img 10.0.2 (see
 * docs/img.md); error lines start "blkrig img:" where qemu-img prints
 * "qemu-img:".
 */
#include "common/config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/verbs.h"
#include "common/cutils.h"
#include "common/opts.h"
#include "driver/block-int.h"
#include "driver/qcow2-int.h"
#include "driver/qcow2.h"

#define PROG "blkrig img"

static void img_error(const char *fmt, ...) BD_PRINTF(1, 2);
static void img_error(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, PROG ": ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* qemu's size_to_str: three significant digits, binary units. */
static void size_to_str(uint64_t val, char *buf, size_t n)
{
    static const char *const suffixes[] = { "B", "KiB", "MiB", "GiB", "TiB",
                                            "PiB", "EiB" };
    int i = 0;

    frexp((double)val / (1000.0 / 1024.0), &i);
    i = (i - 1) / 10;
    if (i < 0) {
        i = 0;
    }
    snprintf(buf, n, "%0.3g %s", (double)val / (double)(1ULL << (i * 10)),
             suffixes[i]);
}

/* QEMU's JSON pretty printer: 4 spaces, "[\n<indent>]" for empties. */
static void json_print(const json_t *v, int indent)
{
    const char *k;
    json_t *x;
    size_t i;
    bool first = true;

    switch (json_typeof(v)) {
    case JSON_OBJECT:
        printf("{\n");
        json_object_foreach((json_t *)v, k, x) {
            printf("%s%*s\"%s\": ", first ? "" : ",\n", indent + 4, "", k);
            json_print(x, indent + 4);
            first = false;
        }
        printf("%s%*s}", first ? "" : "\n", indent, "");
        break;
    case JSON_ARRAY:
        printf("[\n");
        json_array_foreach(v, i, x) {
            printf("%s%*s", first ? "" : ",\n", indent + 4, "");
            json_print(x, indent + 4);
            first = false;
        }
        printf("%s%*s]", first ? "" : "\n", indent, "");
        break;
    default: {
        char *s = json_dumps(v, JSON_ENCODE_ANY);
        printf("%s", s);
        free(s);
        break;
    }
    }
}

static struct bd_node *img_open(struct bd_graph *g, const char *filename,
                                const char *fmt, int flags)
{
    struct bd_error *err = NULL;
    json_t *opts = json_object();
    struct bd_node *n;

    if (fmt) {
        json_object_set_new(opts, "driver", json_string(fmt));
    }
    n = bd_open(g, filename, opts, flags, &err);
    if (!n) {
        img_error("Could not open '%s': %s", filename, bd_error_msg(err));
        bd_error_free(err);
    }
    return n;
}

static int64_t allocated_file_size(struct bd_node *n)
{
    struct stat st;

    while (n && !n->drv->is_format && n->file) {
        n = n->file->node;
    }
    while (n && n->drv->is_format && n->file) {
        n = n->file->node;
    }
    if (!n || !n->filename || stat(n->filename, &st) < 0) {
        return -1;
    }
    return (int64_t)st.st_blocks * 512;
}

/* ------------------------------------------------------------------ */
/* create                                                               */

static void create_usage_error(const char *what)
{
    img_error("%s", what);
}

static int img_create(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "quiet", no_argument, NULL, 'q' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = "raw";
    const char *backing = NULL, *backing_fmt = NULL;
    char *optstr = NULL;
    const char *filename, *size_str = NULL;
    bool quiet = false;
    struct bd_error *err = NULL;
    json_t *opts = NULL;
    uint64_t size = 0;
    bool have_size = false;
    const struct bd_driver *drv;
    int c, ret = 1;

    while ((c = getopt_long(argc, argv, "+hf:o:b:F:qu", longopts,
                            NULL)) != -1) {
        switch (c) {
        case 'f':
            fmt = optarg;
            break;
        case 'o': {
            char *n = optstr ? bd_strdup_printf("%s,%s", optstr, optarg)
                             : bd_strdup(optarg);
            free(optstr);
            optstr = n;
            break;
        }
        case 'b':
            backing = optarg;
            break;
        case 'F':
            backing_fmt = optarg;
            break;
        case 'q':
            quiet = true;
            break;
        case 'u':
            break;
        case 'h':
            printf("usage: blkrig img create [-q] [-f fmt] [-b backing_file "
                   "[-F backing_fmt]] [-o options] filename [size]\n");
            free(optstr);
            return 0;
        default:
            free(optstr);
            return 1;
        }
    }
    if (optind >= argc) {
        create_usage_error("Expecting image file name");
        goto out;
    }
    filename = argv[optind++];
    if (optind < argc) {
        size_str = argv[optind++];
    }
    if (optind < argc) {
        img_error("Unexpected argument: %s", argv[optind]);
        goto out;
    }
    if (size_str) {
        if (bd_parse_size(size_str, &size) < 0 || size > INT64_MAX) {
            img_error("Invalid image size specified: '%s'.", size_str);
            goto out;
        }
        have_size = true;
    }
    drv = bd_find_driver(fmt);
    if (!drv || !drv->create || !drv->is_format) {
        img_error("%s: Unknown file format '%s'", filename, fmt);
        goto out;
    }
    opts = json_object();
    if (optstr) {
        json_t *o = bd_opts_parse(optstr, NULL, &err);
        const char *k;
        json_t *v;

        if (!o) {
            img_error("%s: %s", filename, bd_error_msg(err));
            bd_error_free(err);
            goto out;
        }
        json_object_foreach(o, k, v) {
            json_object_set(opts, k, v);
        }
        json_decref(o);
    }
    if (backing) {
        json_object_set_new(opts, "backing_file", json_string(backing));
    }
    if (backing_fmt) {
        json_object_set_new(opts, "backing_fmt", json_string(backing_fmt));
    }
    {
        /* Options the format does not know are refused up front. */
        static const char *const qcow2_keys[] = {
            "size", "cluster_size", "preallocation", "backing_file",
            "backing_fmt", "compat", "lazy_refcounts", "refcount_bits",
            "extended_l2", "compression_type", NULL,
        };
        static const char *const raw_keys[] = { "size", "preallocation",
                                                NULL };
        const char *const *keys = strcmp(fmt, "qcow2") ? raw_keys
                                                       : qcow2_keys;
        const char *k;
        json_t *v;

        json_object_foreach(opts, k, v) {
            int i;

            for (i = 0; keys[i] && strcmp(keys[i], k); i++) {
            }
            if (!keys[i]) {
                img_error("%s: Invalid parameter '%s'", filename, k);
                goto out;
            }
        }
    }
    if (!strcmp(fmt, "qcow2")) {
        const char *bf = bd_opts_peek_str(opts, "backing_file");
        const char *bfmt = bd_opts_peek_str(opts, "backing_fmt");
        const char *e;

        e = bd_opts_peek_str(opts, "extended_l2");
        if (e && strcmp(e, "off")) {
            img_error("%s: Extended L2 entries are not supported",
                      filename);
            goto out;
        }
        e = bd_opts_peek_str(opts, "compression_type");
        if (e && strcmp(e, "zlib")) {
            img_error("%s: Compression type '%s' is not supported",
                      filename, e);
            goto out;
        }
        if (bf && !strcmp(bf, filename)) {
            img_error("%s: Error: Trying to create an image with the same "
                      "filename as the backing file", filename);
            goto out;
        }
        if (bf) {
            /* The backing file must open; it gives the default size. */
            struct bd_graph *g = bd_graph_new();
            json_t *bo = json_object();
            struct bd_node *bn;
            char *path;

            if (bf[0] != '/' && strrchr(filename, '/')) {
                path = bd_strdup_printf("%.*s/%s",
                                        (int)(strrchr(filename, '/') -
                                              filename), filename, bf);
            } else {
                path = bd_strdup(bf);
            }
            if (bfmt) {
                json_object_set_new(bo, "driver", json_string(bfmt));
            }
            bn = bd_open(g, path, bo, BD_O_NO_BACKING, &err);
            free(path);
            if (!bn) {
                img_error("%s: %s", filename, bd_error_msg(err));
                fprintf(stderr, "Could not open backing image.\n");
                bd_error_free(err);
                bd_graph_free(g);
                goto out;
            }
            if (!bfmt) {
                /* QEMU opens (and probes) the backing file first. */
                img_error("%s: Backing file specified without backing "
                          "format", filename);
                fprintf(stderr, "Detected format of %s.\n",
                        bn->drv->name);
                bd_unref(bn);
                bd_graph_free(g);
                goto out;
            }
            if (!have_size) {
                size = (uint64_t)bd_getlength(bn);
                have_size = true;
            }
            bd_unref(bn);
            bd_graph_free(g);
        }
    }
    if (!have_size && !json_object_get(opts, "size")) {
        img_error("%s: Image creation needs a size parameter", filename);
        goto out;
    }
    if (have_size) {
        json_object_set_new(opts, "size", json_integer((json_int_t)size));
    }
    if (!quiet) {
        /* qemu-img's "Formatting" line: a fixed key order per format. */
        static const char *const qorder[] = {
            "cluster_size", "extended_l2", "preallocation",
            "compression_type", "size", "backing_file", "backing_fmt",
            "compat", "lazy_refcounts", "refcount_bits", NULL,
        };
        static const char *const rorder[] = { "size", "preallocation",
                                              NULL };
        bool q = !strcmp(fmt, "qcow2");
        const char *const *order = q ? qorder : rorder;
        int i;

        printf("Formatting '%s', fmt=%s", filename, fmt);
        for (i = 0; order[i]; i++) {
            json_t *v = json_object_get(opts, order[i]);
            char *s = NULL;

            if (v) {
                s = bd_opts_scalar_string(v);
                if (!strcmp(order[i], "cluster_size") ||
                    !strcmp(order[i], "size")) {
                    uint64_t x;

                    if (s && bd_parse_size(s, &x) == 0) {
                        free(s);
                        s = bd_strdup_printf("%" PRIu64, x);
                    }
                }
            } else if (q && !strcmp(order[i], "cluster_size")) {
                s = bd_strdup("65536");
            } else if (q && !strcmp(order[i], "extended_l2")) {
                s = bd_strdup("off");
            } else if (q && !strcmp(order[i], "compression_type")) {
                s = bd_strdup("zlib");
            } else if (q && !strcmp(order[i], "lazy_refcounts")) {
                s = bd_strdup("off");
            } else if (q && !strcmp(order[i], "refcount_bits")) {
                s = bd_strdup("16");
            }
            if (s) {
                printf(" %s=%s", order[i], s);
                free(s);
            }
        }
        printf("\n");
        fflush(stdout);
    }
    json_object_del(opts, "extended_l2");
    json_object_del(opts, "compression_type");
    if (drv->create(filename, opts, &err) < 0) {
        img_error("%s: %s", filename, bd_error_msg(err));
        bd_error_free(err);
        goto out;
    }
    ret = 0;
out:
    json_decref(opts);
    free(optstr);
    return ret;
}

/* ------------------------------------------------------------------ */
/* info                                                                 */

static char *full_backing_name(const char *image, const char *backing)
{
    if (backing[0] == '/' || !strrchr(image, '/')) {
        return bd_strdup(backing);
    }
    return bd_strdup_printf("%.*s/%s", (int)(strrchr(image, '/') - image),
                            image, backing);
}

static json_t *file_info_json(struct bd_node *f)
{
    json_t *o = json_object();
    json_t *fs = json_object();
    int64_t len = bd_getlength(f);

    json_object_set_new(o, "children", json_array());
    json_object_set_new(o, "virtual-size",
                        json_integer(BD_ROUND_UP(len, 512)));
    json_object_set_new(o, "filename", json_string(bd_node_filename(f)));
    json_object_set_new(o, "format", json_string(f->drv->name));
    json_object_set_new(o, "actual-size",
                        json_integer(allocated_file_size(f)));
    json_object_set_new(fs, "type", json_string(f->drv->name));
    json_object_set_new(fs, "data", json_object());
    json_object_set_new(o, "format-specific", fs);
    json_object_set_new(o, "dirty-flag", json_false());
    return o;
}

static json_t *image_info_json(struct bd_node *n, const char *filename)
{
    json_t *o = json_object();
    json_t *children = json_array();
    struct bd_node_info info;
    const char *bf = qcow2_node_backing_file(n);
    const char *bfmt = qcow2_node_backing_format(n);

    memset(&info, 0, sizeof(info));
    bd_get_info(n, &info);
    if (n->file) {
        json_t *c = json_object();

        json_object_set_new(c, "name", json_string("file"));
        json_object_set_new(c, "info", file_info_json(n->file->node));
        json_array_append_new(children, c);
    }
    json_object_set_new(o, "children", children);
    if (bf && bfmt) {
        json_object_set_new(o, "backing-filename-format", json_string(bfmt));
    }
    json_object_set_new(o, "virtual-size", json_integer(bd_getlength(n)));
    json_object_set_new(o, "filename", json_string(filename));
    if (info.cluster_size) {
        json_object_set_new(o, "cluster-size",
                            json_integer(info.cluster_size));
    }
    json_object_set_new(o, "format", json_string(n->drv->name));
    json_object_set_new(o, "actual-size",
                        json_integer(allocated_file_size(n)));
    if (info.format_specific) {
        json_t *fs = json_object();

        json_object_set_new(fs, "type", json_string(n->drv->name));
        json_object_set_new(fs, "data", info.format_specific);
        json_object_set_new(o, "format-specific", fs);
    }
    if (bf) {
        char *full = full_backing_name(filename, bf);

        json_object_set_new(o, "full-backing-filename", json_string(full));
        free(full);
        json_object_set_new(o, "backing-filename", json_string(bf));
    }
    json_object_set_new(o, "dirty-flag", json_boolean(info.is_dirty));
    return o;
}

/* qemu-img's human form of nested format-specific data. */
static void print_human_value(const char *key, const json_t *v, int indent)
{
    char k[64];
    size_t j;

    snprintf(k, sizeof(k), "%s", key);
    for (j = 0; k[j]; j++) {
        if (k[j] == '-') {
            k[j] = ' ';
        }
    }
    if (json_is_string(v)) {
        printf("%*s%s: %s\n", indent, "", k, json_string_value(v));
    } else if (json_is_boolean(v)) {
        printf("%*s%s: %s\n", indent, "", k, json_is_true(v) ? "true"
                                                          : "false");
    } else if (json_is_integer(v)) {
        printf("%*s%s: %" JSON_INTEGER_FORMAT "\n", indent, "", k,
               json_integer_value(v));
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;

        printf("%*s%s:\n", indent, "", k);
        json_array_foreach(v, i, x) {
            char idx[32];

            snprintf(idx, sizeof(idx), "[%zu]", i);
            print_human_value(idx, x, indent + 4);
        }
    } else if (json_is_object(v)) {
        const char *ck;
        json_t *x;

        printf("%*s%s:\n", indent, "", k);
        json_object_foreach((json_t *)v, ck, x) {
            print_human_value(ck, x, indent + 4);
        }
    }
}

static void print_info_human(json_t *o)
{
    json_t *fs = json_object_get(o, "format-specific");
    json_t *children = json_object_get(o, "children");
    char a[64], b[64];
    size_t i;
    json_t *c;

    size_to_str((uint64_t)json_integer_value(json_object_get(o,
                "virtual-size")), a, sizeof(a));
    printf("image: %s\nfile format: %s\nvirtual size: %s (%" JSON_INTEGER_FORMAT
           " bytes)\n", json_string_value(json_object_get(o, "filename")),
           json_string_value(json_object_get(o, "format")), a,
           json_integer_value(json_object_get(o, "virtual-size")));
    if (json_integer_value(json_object_get(o, "actual-size")) >= 0) {
        size_to_str((uint64_t)json_integer_value(json_object_get(o,
                    "actual-size")), b, sizeof(b));
        printf("disk size: %s\n", b);
    } else {
        printf("disk size: unavailable\n");
    }
    if (json_object_get(o, "cluster-size")) {
        printf("cluster_size: %" JSON_INTEGER_FORMAT "\n",
               json_integer_value(json_object_get(o, "cluster-size")));
    }
    if (json_object_get(o, "backing-filename")) {
        const char *bfn = json_string_value(json_object_get(o,
                                            "backing-filename"));
        const char *full = json_string_value(json_object_get(o,
                                             "full-backing-filename"));
        printf("backing file: %s", bfn);
        if (full && strcmp(full, bfn)) {
            printf(" (actual path: %s)", full);
        }
        printf("\n");
        if (json_object_get(o, "backing-filename-format")) {
            printf("backing file format: %s\n", json_string_value(
                   json_object_get(o, "backing-filename-format")));
        }
    }
    if (json_is_true(json_object_get(o, "dirty-flag"))) {
        printf("cleanly shut down: no\n");
    }
    if (fs) {
        json_t *d = json_object_get(fs, "data");
        const char *k;
        json_t *v;

        printf("Format specific information:\n");
        json_object_foreach(d, k, v) {
            print_human_value(k, v, 4);
        }
    }
    json_array_foreach(children, i, c) {
        json_t *ci = json_object_get(c, "info");
        int64_t len = json_integer_value(json_object_get(ci, "virtual-size"));

        printf("Child node '/%s':\n", json_string_value(json_object_get(c,
               "name")));
        printf("    filename: %s\n", json_string_value(json_object_get(ci,
               "filename")));
        printf("    protocol type: %s\n", json_string_value(
               json_object_get(ci, "format")));
        size_to_str((uint64_t)len, a, sizeof(a));
        printf("    file length: %s (%" PRId64 " bytes)\n", a, len);
        size_to_str((uint64_t)json_integer_value(json_object_get(ci,
                    "actual-size")), b, sizeof(b));
        printf("    disk size: %s\n", b);
    }
}

static int parse_output(const char *verb, const char *arg, bool *json)
{
    if (!strcmp(arg, "json")) {
        *json = true;
        return 0;
    }
    if (!strcmp(arg, "human")) {
        *json = false;
        return 0;
    }
    img_error("--output expects 'human' or 'json' not '%s'", arg);
    fprintf(stderr, "Try 'blkrig img %s --help' for more info\n", verb);
    return -1;
}

enum { OPT_OUTPUT = 256, OPT_BACKING_CHAIN, OPT_IMAGE_OPTS };

static int img_info(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "format", required_argument, NULL, 'f' },
        { "output", required_argument, NULL, OPT_OUTPUT },
        { "backing-chain", no_argument, NULL, OPT_BACKING_CHAIN },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL;
    bool json = false, chain = false;
    int flags = BD_O_NO_BACKING;
    struct bd_graph *g;
    struct bd_node *n;
    char *fmt_copy = NULL;
    json_t *list;
    char *name;
    int c, ret = 0;

    while ((c = getopt_long(argc, argv, "+hf:U", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            fmt = optarg;
            break;
        case 'U':
            flags |= BD_O_FORCE_SHARE;
            break;
        case OPT_OUTPUT:
            if (parse_output("info", optarg, &json) < 0) {
                return 1;
            }
            break;
        case OPT_BACKING_CHAIN:
            chain = true;
            break;
        case 'h':
            printf("usage: blkrig img info [-f fmt] [--output=human|json] "
                   "[--backing-chain] [-U] filename\n");
            return 0;
        default:
            return 1;
        }
    }
    if (optind != argc - 1) {
        img_error("Expecting one image file name");
        return 1;
    }
    g = bd_graph_new();
    list = json_array();
    name = bd_strdup(argv[optind]);
    while (name) {
        const char *bf, *bfmt;
        char *next = NULL;

        n = img_open(g, name, fmt, flags);
        if (!n) {
            ret = 1;
            free(name);
            break;
        }
        json_array_append_new(list, image_info_json(n, name));
        bf = qcow2_node_backing_file(n);
        bfmt = qcow2_node_backing_format(n);
        if (chain && bf) {
            size_t i;
            json_t *o;

            next = full_backing_name(name, bf);
            free(fmt_copy);
            fmt_copy = bfmt ? bd_strdup(bfmt) : NULL;
            fmt = fmt_copy;
            json_array_foreach(list, i, o) {
                if (!strcmp(json_string_value(json_object_get(o,
                            "filename")), next)) {
                    img_error("Backing file '%s' creates an infinite loop.",
                              bf);
                    free(next);
                    next = NULL;
                    ret = 1;
                    break;
                }
            }
        }
        bd_unref(n);
        free(name);
        name = next;
    }
    if (ret == 0) {
        size_t i;
        json_t *o;

        if (json && chain) {
            json_print(list, 0);
            printf("\n");
        } else if (json) {
            json_print(json_array_get(list, 0), 0);
            printf("\n");
        } else {
            json_array_foreach(list, i, o) {
                if (i) {
                    printf("\n");
                }
                print_info_human(o);
            }
        }
    }
    json_decref(list);
    free(fmt_copy);
    bd_graph_free(g);
    return ret;
}

/* ------------------------------------------------------------------ */
/* check                                                                */

static int img_check(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "format", required_argument, NULL, 'f' },
        { "repair", required_argument, NULL, 'r' },
        { "output", required_argument, NULL, OPT_OUTPUT },
        { "quiet", no_argument, NULL, 'q' },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL;
    bool json = false, quiet = false;
    int fix = 0;
    int flags = 0;
    struct bd_graph *g;
    struct bd_node *n;
    struct qcow2_check_result res;
    const char *filename;
    int c, ret;

    while ((c = getopt_long(argc, argv, "+hf:r:qU", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            fmt = optarg;
            break;
        case 'r':
            if (!strcmp(optarg, "leaks")) {
                fix = QCOW2_FIX_LEAKS;
            } else if (!strcmp(optarg, "all")) {
                fix = QCOW2_FIX_LEAKS | QCOW2_FIX_ERRORS;
            } else {
                img_error("--repair (-r) expects 'leaks' or 'all' not '%s'",
                          optarg);
                fprintf(stderr, "Try 'blkrig img check --help' for more "
                        "info\n");
                return 1;
            }
            flags |= BD_O_RDWR | BD_O_CHECK;
            break;
        case 'q':
            quiet = true;
            break;
        case 'U':
            flags |= BD_O_FORCE_SHARE;
            break;
        case OPT_OUTPUT:
            if (parse_output("check", optarg, &json) < 0) {
                return 1;
            }
            break;
        case 'h':
            printf("usage: blkrig img check [-q] [-f fmt] "
                   "[--output=human|json] [-r leaks|all] filename\n");
            return 0;
        default:
            return 1;
        }
    }
    if (optind != argc - 1) {
        img_error("Expecting one image file name");
        return 1;
    }
    filename = argv[optind];
    g = bd_graph_new();
    n = img_open(g, filename, fmt, flags | BD_O_NO_BACKING);
    if (!n) {
        bd_graph_free(g);
        return 1;
    }
    if (!qcow2_is_node(n)) {
        img_error("This image format does not support checks");
        bd_unref(n);
        bd_graph_free(g);
        return 63;
    }
    ret = qcow2_node_check(n, &res, fix);
    if (ret == 0 && (res.leaks_fixed || res.corruptions_fixed)) {
        struct qcow2_check_result again;
        int64_t lf = res.leaks_fixed, cf = res.corruptions_fixed;

        if (!json && !quiet) {
            printf("The following inconsistencies were found and "
                   "repaired:\n\n    %" PRId64 " leaked clusters\n    %"
                   PRId64 " corruptions\n\nDouble checking the fixed image "
                   "now...\n", lf, cf);
        }
        ret = qcow2_node_check(n, &again, 0);
        res = again;
        res.leaks_fixed = lf;
        res.corruptions_fixed = cf;
    }
    if (ret < 0) {
        img_error("Check failed: %s", bd_strerror(-ret));
        bd_unref(n);
        bd_graph_free(g);
        return 1;
    }
    if (json) {
        json_t *o = json_object();

        json_object_set_new(o, "image-end-offset",
                            json_integer(res.image_end_offset));
        if (res.compressed_clusters) {
            json_object_set_new(o, "compressed-clusters",
                                json_integer(res.compressed_clusters));
        }
        json_object_set_new(o, "total-clusters",
                            json_integer(res.total_clusters));
        /* qemu-img's (hash) order of the optional keys. */
        if (res.corruptions) {
            json_object_set_new(o, "corruptions",
                                json_integer(res.corruptions));
        }
        if (res.corruptions_fixed) {
            json_object_set_new(o, "corruptions-fixed",
                                json_integer(res.corruptions_fixed));
        }
        json_object_set_new(o, "check-errors",
                            json_integer(res.check_errors));
        if (res.leaks) {
            json_object_set_new(o, "leaks", json_integer(res.leaks));
        }
        if (res.leaks_fixed) {
            json_object_set_new(o, "leaks-fixed",
                                json_integer(res.leaks_fixed));
        }
        if (res.allocated_clusters) {
            json_object_set_new(o, "allocated-clusters",
                                json_integer(res.allocated_clusters));
        }
        json_object_set_new(o, "filename", json_string(filename));
        json_object_set_new(o, "format", json_string(n->drv->name));
        if (res.fragmented_clusters) {
            json_object_set_new(o, "fragmented-clusters",
                                json_integer(res.fragmented_clusters));
        }
        json_print(o, 0);
        printf("\n");
        json_decref(o);
    } else if (!quiet) {
        if (!res.corruptions && !res.leaks && !res.check_errors) {
            printf("No errors were found on the image.\n");
        } else {
            if (res.corruptions) {
                printf("\n%" PRId64 " errors were found on the image.\n"
                       "Data may be corrupted, or further writes to the "
                       "image may corrupt it.\n", res.corruptions);
            }
            if (res.leaks) {
                printf("\n%" PRId64 " leaked clusters were found on the "
                       "image.\nThis means waste of disk space, but no harm "
                       "to data.\n", res.leaks);
            }
            if (res.check_errors) {
                printf("\n%" PRId64 " internal errors have occurred during "
                       "the check.\n", res.check_errors);
            }
        }
        if (res.total_clusters && res.allocated_clusters) {
            printf("%" PRId64 "/%" PRId64 " = %0.2f%% allocated, %0.2f%% "
                   "fragmented, %0.2f%% compressed clusters\n",
                   res.allocated_clusters, res.total_clusters,
                   res.allocated_clusters * 100.0 / res.total_clusters,
                   res.fragmented_clusters * 100.0 / res.allocated_clusters,
                   res.compressed_clusters * 100.0 / res.allocated_clusters);
        }
        if (res.image_end_offset) {
            printf("Image end offset: %" PRId64 "\n", res.image_end_offset);
        }
    }
    bd_unref(n);
    bd_graph_free(g);
    if (res.check_errors) {
        return 1;
    }
    if (res.corruptions) {
        return 2;
    }
    if (res.leaks) {
        return 3;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* map                                                                  */

struct map_entry {
    int64_t start, length, offset;
    int depth;
    bool present, zero, data, compressed, has_offset;
    const char *file;
};

static int map_one(struct bd_node *top, int64_t off, int64_t bytes,
                   struct map_entry *e)
{
    struct bd_node *n = top;
    int depth = 0;
    int64_t len = bytes;

    memset(e, 0, sizeof(*e));
    e->start = off;
    for (;;) {
        int64_t pnum = 0, map = 0;
        struct bd_node *file = NULL;
        int ret = bd_node_block_status(n, off, len, &pnum, &map, &file);

        if (ret < 0) {
            return ret;
        }
        if (pnum > 0 && pnum < len) {
            len = pnum;
        }
        if ((ret & BD_BLOCK_ALLOCATED) || !n->backing ||
            off >= bd_getlength(n->backing->node)) {
            e->depth = depth;
            e->present = ret & BD_BLOCK_ALLOCATED;
            e->zero = ret & BD_BLOCK_ZERO;
            e->data = ret & BD_BLOCK_DATA;
            if (!e->present && !(ret & BD_BLOCK_DATA)) {
                e->zero = true;
            }
            if ((ret & BD_BLOCK_OFFSET_VALID) && file) {
                e->has_offset = true;
                e->offset = map;
                e->file = bd_node_filename(file);
            }
            if (e->present && e->data && !e->has_offset) {
                uint64_t cnt = 0;
                int cz = qcow2_node_compressed_at(n, (uint64_t)off,
                                                  (uint64_t)len, &cnt);
                if (cz > 0) {
                    e->compressed = true;
                }
                if (cnt && (int64_t)cnt < len) {
                    len = (int64_t)cnt;
                }
            }
            break;
        }
        n = n->backing->node;
        depth++;
    }
    e->length = len;
    return 0;
}

static bool map_mergeable(const struct map_entry *a, const struct map_entry *b)
{
    return a->depth == b->depth && a->present == b->present &&
           a->zero == b->zero && a->data == b->data &&
           a->compressed == b->compressed && a->has_offset == b->has_offset &&
           (!a->has_offset || (a->offset + a->length == b->offset &&
                               !strcmp(a->file, b->file)));
}

static int map_print(const struct map_entry *e, bool json, bool first)
{
    if (json) {
        printf("%s{ \"start\": %" PRId64 ", \"length\": %" PRId64 ", "
               "\"depth\": %d, \"present\": %s, \"zero\": %s, \"data\": %s, "
               "\"compressed\": %s", first ? "[" : ",\n", e->start,
               e->length, e->depth, e->present ? "true" : "false",
               e->zero ? "true" : "false", e->data ? "true" : "false",
               e->compressed ? "true" : "false");
        if (e->has_offset) {
            printf(", \"offset\": %" PRId64, e->offset);
        }
        printf("}");
        return 0;
    }
    if (e->data && !e->has_offset) {
        img_error("File contains external, encrypted or compressed "
                  "clusters.");
        return -1;
    }
    if (e->data) {
        printf("%#-16" PRIx64 "%#-16" PRIx64 "%#-16" PRIx64 "%s\n",
               (uint64_t)e->start, (uint64_t)e->length, (uint64_t)e->offset,
               e->file);
    }
    return 0;
}

static int img_map(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "format", required_argument, NULL, 'f' },
        { "output", required_argument, NULL, OPT_OUTPUT },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL;
    bool json = false;
    int flags = 0;
    struct bd_graph *g;
    struct bd_node *n;
    struct map_entry cur, e;
    bool have = false, first = true;
    int64_t len, off = 0;
    int c, ret = 0;

    while ((c = getopt_long(argc, argv, "+hf:U", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            fmt = optarg;
            break;
        case 'U':
            flags |= BD_O_FORCE_SHARE;
            break;
        case OPT_OUTPUT:
            if (parse_output("map", optarg, &json) < 0) {
                return 1;
            }
            break;
        case 'h':
            printf("usage: blkrig img map [-f fmt] [--output=human|json] "
                   "filename\n");
            return 0;
        default:
            return 1;
        }
    }
    if (optind != argc - 1) {
        img_error("Expecting one image file name");
        return 1;
    }
    g = bd_graph_new();
    n = img_open(g, argv[optind], fmt, flags);
    if (!n) {
        bd_graph_free(g);
        return 1;
    }
    if (!json) {
        printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to",
               "File");
    }
    len = bd_getlength(n);
    while (off < len) {
        ret = map_one(n, off, BD_MIN(len - off, (int64_t)1 << 30), &e);
        if (ret < 0) {
            img_error("Could not read file metadata: %s", bd_strerror(-ret));
            ret = 1;
            goto out;
        }
        if (have && map_mergeable(&cur, &e)) {
            cur.length += e.length;
        } else {
            if (have && map_print(&cur, json, first) < 0) {
                ret = 1;
                goto out;
            }
            if (have) {
                first = false;
            }
            cur = e;
            have = true;
        }
        off += e.length;
    }
    if (have && map_print(&cur, json, first) < 0) {
        ret = 1;
        goto out;
    }
    if (json) {
        printf("%s]\n", have ? "" : "[");
    }
out:
    fflush(stdout);
    bd_unref(n);
    bd_graph_free(g);
    return ret;
}

/* ------------------------------------------------------------------ */
/* compare                                                              */

#define CMP_CHUNK (1 << 20)

/* First differing 512-byte sector, or -1. */
static int64_t first_diff(const uint8_t *a, const uint8_t *b, int64_t n)
{
    int64_t i;

    for (i = 0; i < n; i += 512) {
        int64_t k = BD_MIN((int64_t)512, n - i);
        if (memcmp(a + i, b + i, (size_t)k)) {
            return i;
        }
    }
    return -1;
}

static int64_t first_nonzero(const uint8_t *a, int64_t n)
{
    int64_t i;

    for (i = 0; i < n; i += 512) {
        if (!bd_buffer_is_zero(a + i, (size_t)BD_MIN((int64_t)512, n - i))) {
            return i;
        }
    }
    return -1;
}

static int read_node(struct bd_node *n, int64_t off, int64_t len, void *buf)
{
    struct bd_qiov q;

    bd_qiov_init_buf(&q, buf, (size_t)len);
    return bd_node_preadv(n, off, len, &q, 0);
}

static int img_compare(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt1 = NULL, *fmt2 = NULL;
    bool strict = false, quiet = false;
    int flags = 0;
    struct bd_graph *g;
    struct bd_node *n1 = NULL, *n2 = NULL;
    int64_t l1, l2, off, common;
    uint8_t *b1 = NULL, *b2 = NULL;
    int c, ret = 2;

    while ((c = getopt_long(argc, argv, "+hf:F:sqU", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            fmt1 = optarg;
            break;
        case 'F':
            fmt2 = optarg;
            break;
        case 's':
            strict = true;
            break;
        case 'q':
            quiet = true;
            break;
        case 'U':
            flags |= BD_O_FORCE_SHARE;
            break;
        case 'h':
            printf("usage: blkrig img compare [-f fmt] [-F fmt] [-s] [-q] "
                   "filename1 filename2\n");
            return 0;
        default:
            return 2;
        }
    }
    if (!fmt2) {
        fmt2 = fmt1;
    }
    if (optind != argc - 2) {
        img_error("Expecting two image file names");
        return 2;
    }
    g = bd_graph_new();
    n1 = img_open(g, argv[optind], fmt1, flags);
    if (!n1) {
        goto out;
    }
    n2 = img_open(g, argv[optind + 1], fmt2, flags);
    if (!n2) {
        goto out;
    }
    l1 = bd_getlength(n1);
    l2 = bd_getlength(n2);
    if (l1 != l2) {
        if (strict) {
            if (!quiet) {
                printf("Strict mode: Image size mismatch!\n");
            }
            ret = 1;
            goto out;
        }
        if (!quiet) {
            printf("Warning: Image size mismatch!\n");
        }
    }
    b1 = bd_memalign(4096, CMP_CHUNK);
    b2 = bd_memalign(4096, CMP_CHUNK);
    common = BD_MIN(l1, l2);
    for (off = 0; off < common; ) {
        int64_t p1 = 0, p2 = 0, n;
        int a1 = bd_is_allocated_above(n1, NULL, off, common - off, &p1);
        int a2 = bd_is_allocated_above(n2, NULL, off, common - off, &p2);
        int64_t d;

        if (a1 < 0 || a2 < 0) {
            img_error("Error while reading offset %" PRId64 ": %s", off,
                      bd_strerror(a1 < 0 ? -a1 : -a2));
            ret = 4;
            goto out;
        }
        n = BD_MIN(BD_MIN(p1, p2), (int64_t)CMP_CHUNK);
        if (n <= 0) {
            n = BD_MIN(common - off, (int64_t)CMP_CHUNK);
        }
        if (strict && a1 != a2) {
            if (!quiet) {
                printf("Strict mode: Offset %" PRId64 " block status "
                       "mismatch!\n", off);
            }
            ret = 1;
            goto out;
        }
        if (read_node(n1, off, n, b1) < 0 || read_node(n2, off, n, b2) < 0) {
            img_error("Error while reading offset %" PRId64, off);
            ret = 4;
            goto out;
        }
        d = first_diff(b1, b2, n);
        if (d >= 0) {
            if (!quiet) {
                printf("Content mismatch at offset %" PRId64 "!\n", off + d);
            }
            ret = 1;
            goto out;
        }
        off += n;
    }
    /* The longer image must read as zeroes past the common part. */
    if (l1 != l2) {
        struct bd_node *big = l1 > l2 ? n1 : n2;
        int64_t end = BD_MAX(l1, l2);

        for (off = common; off < end; ) {
            int64_t n = BD_MIN(end - off, (int64_t)CMP_CHUNK);
            int64_t d;

            if (read_node(big, off, n, b1) < 0) {
                img_error("Error while reading offset %" PRId64, off);
                ret = 4;
                goto out;
            }
            d = first_nonzero(b1, n);
            if (d >= 0) {
                if (!quiet) {
                    printf("Content mismatch at offset %" PRId64 "!\n",
                           off + d);
                }
                ret = 1;
                goto out;
            }
            off += n;
        }
    }
    if (!quiet) {
        printf("Images are identical.\n");
    }
    ret = 0;
out:
    free(b1);
    free(b2);
    if (n1) {
        bd_unref(n1);
    }
    if (n2) {
        bd_unref(n2);
    }
    bd_graph_free(g);
    return ret;
}

/* ------------------------------------------------------------------ */

int verb_img(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int argc, char **argv);
    } cmds[] = {
        { "create", img_create }, { "info", img_info },
        { "check", img_check }, { "map", img_map },
        { "compare", img_compare },
    };
    size_t i;

    if (argc < 2) {
        img_error("Not enough arguments");
        fprintf(stderr, "Try 'blkrig img --help' for more information\n");
        return 1;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        printf("usage: blkrig img COMMAND [OPTIONS...]\n\nCommands: create, "
               "info, check, map, compare (qemu-img compatible)\n");
        return 0;
    }
    for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (!strcmp(argv[1], cmds[i].name)) {
            optind = 1;
            return cmds[i].fn(argc - 1, argv + 1);
        }
    }
    img_error("Command not found: %s", argv[1]);
    return 1;
}
