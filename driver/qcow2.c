/*
 * driver/qcow2.c - the qcow2 format (versions 2 and 3), interchangeable
 * with QEMU's: the one ops table, open/close and header handling, the data
 * path, block status, write-zeroes, discard, compressed clusters, resize,
 * image creation and `info`.
 *
 * The mapping and refcount machinery lives in qcow2-cluster.c and
 * qcow2-refcount.c, the table caches in qcow2-cache.c, the consistency
 * check in qcow2-check.c; locking rules are in qcow2-int.h.
 *
 * Header extensions are never rewritten: the header is only ever patched
 * field by field (size, L1, refcount table, feature bits), so extensions
 * this driver does not interpret (bitmaps, crypto, unknown ones) survive
 * every write intact.
 */
#include "common/config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "common/cutils.h"
#include "driver/drivers.h"
#include "driver/qcow2-int.h"
#include "driver/qcow2.h"

/*
 * error_report-style lines: "<program>: <message>". The program is what
 * QEMU would print ("qemu-io" when blkrig runs as a qemu-io symlink,
 * otherwise "blkrig <verb>"). A verb may provide bd_report_prefix();
 * without it the name is read from /proc/self/cmdline on each (rare) call,
 * so the driver keeps no global state for it.
 */
const char *bd_report_prefix(void) __attribute__((weak));

void qcow2_report(const char *fmt, ...)
{
    char prefix[300] = "blkrig";
    va_list ap;

    if (bd_report_prefix) {
        snprintf(prefix, sizeof(prefix), "%s", bd_report_prefix());
    } else {
        FILE *fp = fopen("/proc/self/cmdline", "r");
        char cmd[256];
        size_t n = fp ? fread(cmd, 1, sizeof(cmd) - 1, fp) : 0;

        if (fp) {
            fclose(fp);
        }
        cmd[n] = 0;
        if (n) {
            const char *base = strrchr(cmd, '/') ? strrchr(cmd, '/') + 1
                                                 : cmd;
            size_t l0 = strlen(cmd) + 1;

            if (!strcmp(base, "blkrig") && l0 < n) {
                snprintf(prefix, sizeof(prefix), "blkrig %s", cmd + l0);
            } else {
                snprintf(prefix, sizeof(prefix), "%s", base);
            }
        }
    }
    fprintf(stderr, "%s: ", prefix);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ------------------------------------------------------------------ */
/* Compression (zlib raw deflate, 4 KiB window, as QEMU writes it)     */

int qcow2_decompress(const void *src, size_t slen, void *dst, size_t dlen)
{
    z_stream z;
    int ret;

    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, -12) != Z_OK) {
        return -EIO;
    }
    z.next_in = (Bytef *)(uintptr_t)src;
    z.avail_in = (uInt)slen;
    z.next_out = dst;
    z.avail_out = (uInt)dlen;
    ret = inflate(&z, Z_FINISH);
    /* Trailing bytes up to the sector boundary are allowed. */
    if ((ret != Z_STREAM_END && ret != Z_BUF_ERROR) || z.avail_out != 0) {
        ret = -EIO;
    } else {
        ret = 0;
    }
    inflateEnd(&z);
    return ret;
}

ssize_t qcow2_compress(const void *src, size_t slen, void *dst, size_t dlen)
{
    z_stream z;
    ssize_t ret;

    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
        return -EIO;
    }
    z.next_in = (Bytef *)(uintptr_t)src;
    z.avail_in = (uInt)slen;
    z.next_out = dst;
    z.avail_out = (uInt)dlen;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
        ret = -ENOMEM;          /* did not fit: store uncompressed */
    } else {
        ret = (ssize_t)(dlen - z.avail_out);
    }
    deflateEnd(&z);
    return ret;
}

/* ------------------------------------------------------------------ */
/* Corruption and header field updates                                  */

int qcow2_write_incompat(struct bd_node *bs, uint64_t bits)
{
    struct qcow2_state *s = bs->opaque;
    uint8_t be[8];
    int ret;

    if (s->version < 3) {
        return 0;
    }
    qcow2_put_be64(be, bits);
    ret = bd_child_pwrite(bs->file, QH_INCOMPAT, 8, be, 0);
    if (ret == 0) {
        ret = bd_child_flush(bs->file);
    }
    if (ret == 0) {
        s->incompatible = bits;
    }
    return ret;
}

int qcow2_signal_corruption(struct bd_node *bs, bool fatal, int64_t offset,
                            int64_t size, const char *fmt, ...)
{
    struct qcow2_state *s = bs->opaque;
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    (void)offset;
    (void)size;
    if (s->corrupt_reported) {
        return -EIO;
    }
    /* QEMU prints these two without the program name. */
    if (fatal && !bs->read_only) {
        fprintf(stderr, "qcow2: Marking image as corrupt: %s; further "
                "corruption events will be suppressed\n", msg);
        s->corrupt_reported = true;
        qcow2_write_incompat(bs, s->incompatible | QCOW2_INCOMPAT_CORRUPT);
    } else {
        fprintf(stderr, "qcow2: Image is corrupt: %s; further non-fatal "
                "corruption events will be suppressed\n", msg);
        s->corrupt_reported = true;
    }
    return -EIO;
}

/* ------------------------------------------------------------------ */
/* Probe and open                                                       */

static int qcow2_probe(const uint8_t *buf, int len, const char *filename)
{
    (void)filename;
    if (len >= 8 && qcow2_be32(buf) == QCOW2_MAGIC &&
        qcow2_be32(buf + 4) >= 2) {
        return 100;
    }
    return 0;
}

static const char *const feature_names_incompat[] = {
    "dirty bit", "corrupt bit", "external data file", "compression type",
    "extended L2 entries",
};

/* QEMU's "Unsupported IMGFMT feature(s): a, b" list, from the image's own
 * feature table when it names the bit. */
static void report_unsupported(struct bd_error **errp, const uint8_t *hdr,
                               size_t hlen, uint64_t ext_start,
                               uint64_t unknown)
{
    char list[1024] = "";
    size_t used = 0;
    int bit;

    for (bit = 0; bit < 64; bit++) {
        const char *name = NULL;
        char tmp[64];
        uint64_t off = ext_start;

        if (!(unknown & (1ULL << bit))) {
            continue;
        }
        /* Look the name up in the image's feature table. */
        while (off + 8 <= hlen) {
            uint32_t type = qcow2_be32(hdr + off);
            uint32_t len = qcow2_be32(hdr + off + 4);
            uint32_t i;

            if (type == QCOW2_EXT_END || off + 8 + len > hlen) {
                break;
            }
            if (type == QCOW2_EXT_FEATURE_TABLE) {
                for (i = 0; i + 48 <= len; i += 48) {
                    const uint8_t *e = hdr + off + 8 + i;
                    if (e[0] == 0 && e[1] == bit) {
                        snprintf(tmp, sizeof(tmp), "%.46s",
                                 (const char *)e + 2);
                        name = tmp;
                    }
                }
            }
            off += 8 + BD_ROUND_UP((uint64_t)len, 8);
        }
        if (!name && bit < 5) {
            name = feature_names_incompat[bit];
        }
        if (!name) {
            snprintf(tmp, sizeof(tmp), "Unknown incompatible feature: %"
                     PRIx64, (uint64_t)1 << bit);
            name = tmp;
        }
        used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
                                 used ? ", " : "", name);
        if (used >= sizeof(list)) {
            break;
        }
    }
    bd_error_setg(errp, "Unsupported qcow2 feature(s): %s", list);
}

/* A table of 8-byte entries: bounded size, cluster-aligned, no offset
 * overflow. Tables past the end of the file read as zeroes (as in QEMU). */
static int validate_table(struct qcow2_state *s, uint64_t offset,
                          uint64_t entries, uint64_t max_bytes,
                          const char *what, struct bd_error **errp)
{
    if (entries > max_bytes / 8) {
        bd_error_setg(errp, "%s too large", what);
        return -EFBIG;
    }
    if (qcow2_offset_into_cluster(s, offset) ||
        offset > (uint64_t)INT64_MAX - entries * 8) {
        bd_error_setg(errp, "%s offset invalid", what);
        return -EINVAL;
    }
    return 0;
}

static int parse_extensions(struct bd_node *bs, const uint8_t *hdr,
                            size_t hlen, uint64_t start, uint64_t end,
                            struct bd_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t off = start;

    while (off + 8 <= end) {
        uint32_t type = qcow2_be32(hdr + off);
        uint32_t len = qcow2_be32(hdr + off + 4);

        off += 8;
        if (type == QCOW2_EXT_END) {
            return 0;
        }
        if (len > end - off) {
            bd_error_setg(errp, "Invalid extension length");
            return -EINVAL;
        }
        switch (type) {
        case QCOW2_EXT_BACKING_FORMAT:
            if (len > 15) {
                /* QEMU keeps at most 15 characters here. */
                bd_error_setg(errp, "ERROR: ext_backing_format: len=%" PRIu32
                              " too large (>=%d)", len, 16);
                return -EINVAL;
            }
            free(s->backing_format);
            s->backing_format = bd_malloc0(len + 1);
            memcpy(s->backing_format, hdr + off, len);
            break;
        case QCOW2_EXT_FEATURE_TABLE:
            s->has_feature_table = true;
            break;
        case QCOW2_EXT_BITMAPS:
            s->has_bitmaps_ext = true;
            s->bitmaps_ext_offset = off;
            s->bitmaps_ext_len = len;
            break;
        case QCOW2_EXT_CRYPTO:
            bd_error_setg(errp, "CRYPTO header extension only expected with "
                          "LUKS encryption method");
            return -EINVAL;
        default:
            break;
        }
        (void)hlen;
        off += BD_ROUND_UP((uint64_t)len, 8);
    }
    return 0;
}

static int open_backing(struct bd_node *bs, json_t *options,
                        struct bd_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    json_t *b = json_object_get(options, "backing");
    struct bd_child *c;
    char *path = NULL;
    json_t *opts;
    struct bd_node *n;
    struct bd_list *pos;

    if (b && json_is_null(b)) {
        json_object_del(options, "backing");
        return 0;
    }
    if (b || bd_opts_has_prefix(options, "backing")) {
        c = bd_open_child(bs, options, "backing", NULL, BD_ROLE_COW, true,
                          errp);
        return c ? 0 : -EINVAL;
    }
    if (!s->backing_file || (bs->open_flags & BD_O_NO_BACKING)) {
        return 0;
    }
    /* Relative names are relative to the image's directory. */
    if (s->backing_file[0] != '/' && bs->file->node->filename &&
        strrchr(bs->file->node->filename, '/') &&
        !strstr(s->backing_file, ":")) {
        const char *fn = bs->file->node->filename;
        int dirlen = (int)(strrchr(fn, '/') - fn);

        path = bd_strdup_printf("%.*s/%s", dirlen, fn, s->backing_file);
    } else {
        path = bd_strdup(s->backing_file);
    }
    /* A chain that comes back to an image already open above is a loop. */
    for (n = bs; n; ) {
        struct bd_node *parent = NULL;

        if (n != bs && n->file && n->file->node->filename &&
            !strcmp(n->file->node->filename, path)) {
            bd_error_setg(errp, "Backing file '%s' creates a loop",
                          s->backing_file);
            free(path);
            return -ELOOP;
        }
        bd_list_for_each(pos, &n->parents) {
            struct bd_child *pc = BD_LIST_ENTRY(pos, struct bd_child,
                                                node_link);
            if (pc->parent && pc->parent->backing == pc) {
                parent = pc->parent;
            }
        }
        n = parent;
    }
    if (bs->file->node->filename && !strcmp(bs->file->node->filename, path)) {
        bd_error_setg(errp, "Backing file '%s' creates a loop",
                      s->backing_file);
        free(path);
        return -ELOOP;
    }
    opts = json_object();
    if (s->backing_format) {
        json_object_set_new(opts, "driver", json_string(s->backing_format));
    }
    n = bd_open(bs->graph, path, opts,
                (bs->open_flags & BD_O_INHERIT_MASK & ~BD_O_RDWR), errp);
    if (!n) {
        bd_error_prepend(errp, "Could not open backing file: ");
        free(path);
        return -EINVAL;
    }
    c = bd_attach_child(bs, n, "backing", BD_ROLE_COW, errp);
    bd_unref(n);
    free(path);
    return c ? 0 : -EINVAL;
}

static int qcow2_open(struct bd_node *bs, json_t *options, int flags,
                      struct bd_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    uint8_t *hdr = NULL;
    size_t hlen;
    int64_t file_len;
    uint64_t l1_bytes, ext_end;
    uint32_t crypt, i;
    int ret;

    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->alloc_cond, NULL);
    bd_list_init(&s->allocs);
    if (!bd_open_child(bs, options, "file", NULL,
                       BD_ROLE_DATA | BD_ROLE_METADATA | BD_ROLE_PRIMARY,
                       false, errp)) {
        return -EINVAL;
    }
    file_len = bd_getlength(bs->file->node);
    if (file_len < 0) {
        bd_error_setg_errno(errp, (int)-file_len, "Could not get image size");
        return (int)file_len;
    }
    hlen = QCOW2_HEADER_V3_SIZE;
    hdr = bd_malloc0(4096);
    ret = bd_child_pread(bs->file, 0, QCOW2_HEADER_V2_SIZE, hdr, 0);
    if (ret < 0) {
        bd_error_setg_errno(errp, -ret, "Could not read qcow2 header");
        goto fail;
    }
    if (qcow2_be32(hdr) != QCOW2_MAGIC) {
        bd_error_setg(errp, "Image is not in qcow2 format");
        ret = -EINVAL;
        goto fail;
    }
    s->version = (int)qcow2_be32(hdr + QH_VERSION);
    if (s->version < 2 || s->version > 3) {
        bd_error_setg(errp, "Unsupported qcow2 version %d", s->version);
        ret = -ENOTSUP;
        goto fail;
    }
    s->cluster_bits = (int)qcow2_be32(hdr + QH_CLUSTER_BITS);
    if (s->cluster_bits < QCOW2_MIN_CLUSTER_BITS ||
        s->cluster_bits > QCOW2_MAX_CLUSTER_BITS) {
        bd_error_setg(errp, "Unsupported cluster size: 2^%d",
                      s->cluster_bits);
        ret = -EINVAL;
        goto fail;
    }
    s->cluster_size = 1u << s->cluster_bits;
    if (s->version >= 3) {
        ret = bd_child_pread(bs->file, QCOW2_HEADER_V2_SIZE,
                             QCOW2_HEADER_V3_SIZE - QCOW2_HEADER_V2_SIZE,
                             hdr + QCOW2_HEADER_V2_SIZE, 0);
        if (ret < 0) {
            bd_error_setg_errno(errp, -ret, "Could not read qcow2 header");
            goto fail;
        }
        s->incompatible = qcow2_be64(hdr + QH_INCOMPAT);
        s->compatible = qcow2_be64(hdr + QH_COMPAT);
        s->autoclear = qcow2_be64(hdr + QH_AUTOCLEAR);
        s->refcount_order = (int)qcow2_be32(hdr + QH_REFCOUNT_ORDER);
        s->header_length = qcow2_be32(hdr + QH_HEADER_LENGTH);
        if (s->header_length < QCOW2_HEADER_V3_SIZE) {
            bd_error_setg(errp, "qcow2 header too short");
            ret = -EINVAL;
            goto fail;
        }
        if (s->header_length > s->cluster_size) {
            bd_error_setg(errp, "qcow2 header exceeds cluster size");
            ret = -EINVAL;
            goto fail;
        }
    } else {
        s->refcount_order = 4;
        s->header_length = QCOW2_HEADER_V2_SIZE;
    }
    /* Header and extensions: everything up to the end of cluster 0. */
    hlen = (size_t)BD_MIN((int64_t)s->cluster_size, file_len);
    free(hdr);
    hdr = bd_malloc0(BD_MAX(hlen, (size_t)4096));
    ret = bd_child_pread(bs->file, 0, (int64_t)hlen, hdr, 0);
    if (ret < 0) {
        bd_error_setg_errno(errp, -ret, "Could not read qcow2 header");
        goto fail;
    }
    ext_end = qcow2_be64(hdr + QH_BACKING_OFFSET);
    if (!ext_end || ext_end > hlen) {
        ext_end = hlen;
    }
    if (s->incompatible & ~QCOW2_INCOMPAT_KNOWN) {
        report_unsupported(errp, hdr, hlen, s->header_length,
                           s->incompatible & ~QCOW2_INCOMPAT_KNOWN);
        ret = -ENOTSUP;
        goto fail;
    }
    if ((s->incompatible & QCOW2_INCOMPAT_CORRUPT) && !bs->read_only &&
        !(flags & BD_O_CHECK)) {
        bd_error_setg(errp, "qcow2: Image is corrupt; cannot be opened "
                      "read/write");
        ret = -EACCES;
        goto fail;
    }
    if (s->refcount_order > 6) {
        bd_error_setg(errp, "Reference count entry width too large; may not "
                      "exceed 64 bits");
        ret = -EINVAL;
        goto fail;
    }
    s->refcount_bits = 1 << s->refcount_order;
    s->refcount_max = s->refcount_bits == 64 ? UINT64_MAX
                                             : (1ULL << s->refcount_bits) - 1;
    s->refblock_bits = s->cluster_bits - (s->refcount_order - 3);
    s->refblock_size = 1u << s->refblock_bits;
    crypt = qcow2_be32(hdr + QH_CRYPT);
    if (crypt) {
        bd_error_setg(errp, "Unsupported encryption method: %" PRIu32, crypt);
        ret = -EINVAL;
        goto fail;
    }
    s->l2_bits = s->cluster_bits - 3;
    s->l2_size = 1u << s->l2_bits;
    s->csize_shift = 62 - (s->cluster_bits - 8);
    s->csize_mask = (1ULL << (s->cluster_bits - 8)) - 1;
    s->cluster_offset_mask = (1ULL << s->csize_shift) - 1;
    s->size = qcow2_be64(hdr + QH_SIZE);
    s->l1_size = qcow2_be32(hdr + QH_L1_SIZE);
    s->l1_offset = qcow2_be64(hdr + QH_L1_OFFSET);
    s->reftable_offset = qcow2_be64(hdr + QH_REFTABLE_OFFSET);
    s->reftable_size = qcow2_be32(hdr + QH_REFTABLE_CLUSTERS);
    s->nb_snapshots = qcow2_be32(hdr + QH_NB_SNAPSHOTS);
    s->snapshots_offset = qcow2_be64(hdr + QH_SNAPSHOTS_OFFSET);
    s->lazy_refcounts = s->compatible & QCOW2_COMPAT_LAZY_REFCOUNTS;
    if ((uint64_t)s->reftable_size * s->cluster_size >
        QCOW2_MAX_REFTABLE_BYTES) {
        bd_error_setg(errp, "Reference count table too large");
        ret = -EINVAL;
        goto fail;
    }
    if (s->reftable_size == 0) {
        bd_error_setg(errp, "Image does not contain a reference count table");
        ret = -EINVAL;
        goto fail;
    }
    s->reftable_size = (uint32_t)((uint64_t)s->reftable_size *
                                  s->cluster_size / 8);
    ret = validate_table(s, s->reftable_offset, s->reftable_size,
                         QCOW2_MAX_REFTABLE_BYTES,
                         "Reference count table", errp);
    if (ret < 0) {
        goto fail;
    }
    if (s->l1_size > QCOW2_MAX_L1_BYTES / 8) {
        bd_error_setg(errp, "Active L1 table too large");
        ret = -EFBIG;
        goto fail;
    }
    if (s->l1_size < qcow2_l1_entries_for(s->cluster_bits, s->size)) {
        bd_error_setg(errp, "L1 table is too small");
        ret = -EINVAL;
        goto fail;
    }
    ret = validate_table(s, s->l1_offset, s->l1_size, QCOW2_MAX_L1_BYTES,
                         "Active L1 table", errp);
    if (ret < 0) {
        goto fail;
    }
    if (s->nb_snapshots) {
        ret = validate_table(s, s->snapshots_offset, 0, 8,
                             "Snapshot table", errp);
        if (ret < 0) {
            goto fail;
        }
    }
    /* Extensions sit between the header and the backing file name. */
    ret = parse_extensions(bs, hdr, hlen, s->header_length, ext_end, errp);
    if (ret < 0) {
        goto fail;
    }
    if (qcow2_be64(hdr + QH_BACKING_OFFSET)) {
        uint64_t boff = qcow2_be64(hdr + QH_BACKING_OFFSET);
        uint32_t blen = qcow2_be32(hdr + QH_BACKING_SIZE);

        if (blen > QCOW2_MAX_BACKING_NAME || boff + blen > s->cluster_size) {
            bd_error_setg(errp, "Backing file name too long");
            ret = -EINVAL;
            goto fail;
        }
        if (boff + blen <= hlen && blen) {
            s->backing_file = bd_malloc0(blen + 1);
            memcpy(s->backing_file, hdr + boff, blen);
        }
    }

    /* L1 table. */
    l1_bytes = (uint64_t)s->l1_size * 8;
    s->l1_table = bd_malloc0(BD_MAX(l1_bytes, 8));
    if (l1_bytes) {
        uint8_t *buf = bd_malloc(l1_bytes);

        ret = bd_child_pread(bs->file, (int64_t)s->l1_offset,
                             (int64_t)l1_bytes, buf, 0);
        if (ret < 0) {
            free(buf);
            bd_error_setg_errno(errp, -ret, "Could not read L1 table");
            goto fail;
        }
        for (i = 0; i < s->l1_size; i++) {
            s->l1_table[i] = qcow2_be64(buf + 8 * i);
        }
        free(buf);
    }
    s->l2_cache = qcow2_cache_create(
        (int)BD_MAX(4u, BD_MIN(64u, (8u << 20) / s->cluster_size)),
        s->cluster_size, BD_EV_L2_LOAD, BD_EV_L2_UPDATE);
    ret = qcow2_refcount_init(bs, errp);
    if (ret < 0) {
        goto fail;
    }
    ret = open_backing(bs, options, errp);
    if (ret < 0) {
        goto fail;
    }
    free(hdr);
    hdr = NULL;

    if ((s->incompatible & QCOW2_INCOMPAT_DIRTY) && !bs->read_only &&
        !(flags & BD_O_CHECK)) {
        struct qcow2_check_result res;

        /* Refcounts may be stale after a crash with lazy refcounts. */
        ret = qcow2_check(bs, &res, QCOW2_FIX_ERRORS | QCOW2_FIX_LEAKS);
        if (ret < 0 || res.corruptions || res.check_errors) {
            bd_error_setg_errno(errp, ret < 0 ? -ret : EIO,
                                "Could not repair dirty image");
            ret = ret < 0 ? ret : -EIO;
            goto fail;
        }
        ret = qcow2_write_incompat(bs, s->incompatible &
                                   ~QCOW2_INCOMPAT_DIRTY);
        if (ret < 0) {
            bd_error_setg_errno(errp, -ret, "Could not clear the dirty bit");
            goto fail;
        }
    }
    ret = qcow2_bitmaps_load_all(bs, errp);
    if (ret < 0) {
        goto fail;
    }
    if (!bs->read_only) {
        ret = qcow2_bitmaps_mark_in_use(bs);
        if (ret < 0) {
            bd_error_setg_errno(errp, -ret, "Could not mark the persistent "
                                "bitmaps in use");
            goto fail;
        }
    }
    /* FUA is taken (and emulated here with a flush) so that compressed
     * and VM-state writes can skip it, as QEMU's do. Compressed writes
     * and the VM state area are announced because the request path sends
     * them only to a node that has them (driver/io.c), and backup's
     * compress option looks for the former (QEMU: the driver has the
     * callbacks). */
    bs->supported_write_flags = BD_REQ_FUA | BD_REQ_WRITE_COMPRESSED |
                                BD_REQ_VMSTATE;
    bs->supported_zero_flags = BD_REQ_MAY_UNMAP | BD_REQ_NO_FALLBACK |
                               BD_REQ_FUA;
    return 0;

fail:
    free(hdr);
    if (s->l2_cache) {
        qcow2_cache_empty(s->l2_cache);
    }
    if (s->refblock_cache) {
        qcow2_cache_empty(s->refblock_cache);
    }
    qcow2_cache_destroy(s->l2_cache);
    s->l2_cache = NULL;
    qcow2_refcount_close(bs);
    free(s->l1_table);
    s->l1_table = NULL;
    free(s->backing_file);
    s->backing_file = NULL;
    free(s->backing_format);
    s->backing_format = NULL;
    pthread_cond_destroy(&s->alloc_cond);
    pthread_mutex_destroy(&s->lock);
    return ret;
}

/* Write both caches back (flush_to_os). Lock held. */
static int write_caches(struct bd_node *bs)
{
    struct qcow2_state *s = bs->opaque;
    int ret;

    ret = qcow2_cache_write(bs, s->l2_cache);
    if (ret == 0) {
        ret = qcow2_cache_write(bs, s->refblock_cache);
    }
    return ret;
}

static void qcow2_close(struct bd_node *bs)
{
    struct qcow2_state *s = bs->opaque;
    int ret;

    if (!bs->read_only) {
        /* bdrv_close flushes the node before the driver closes (events
         * included), then inactivate flushes each cache and says which
         * one failed. */
        if (atomic_load(&bs->write_gen) != bs->flushed_gen) {
            (void)bd_node_flush(bs);
        }
        /* Persistent bitmaps go to the image on close, as QEMU's
         * inactivate does; a failure leaves them marked in use. */
        ret = qcow2_bitmaps_store(bs, false);
        if (ret < 0) {
            qcow2_report("Failed to store dirty bitmaps: %s",
                         bd_strerror(-ret));
        }
        pthread_mutex_lock(&s->lock);
        ret = qcow2_cache_flush(bs, s->l2_cache);
        if (ret < 0) {
            qcow2_report("Failed to flush the L2 table cache: %s",
                         bd_strerror(-ret));
        }
        ret = qcow2_cache_flush(bs, s->refblock_cache);
        if (ret < 0) {
            qcow2_report("Failed to flush the refcount block cache: %s",
                         bd_strerror(-ret));
        }
        pthread_mutex_unlock(&s->lock);
    }
    qcow2_cache_destroy(s->l2_cache);
    qcow2_refcount_close(bs);
    free(s->l1_table);
    free(s->backing_file);
    free(s->backing_format);
    pthread_cond_destroy(&s->alloc_cond);
    pthread_mutex_destroy(&s->lock);
}

static int qcow2_refresh_limits(struct bd_node *bs, struct bd_error **errp)
{
    struct qcow2_state *s = bs->opaque;

    (void)errp;
    bs->bl.request_alignment = 1;
    bs->bl.max_transfer = 0;
    bs->bl.pwrite_zeroes_alignment = s->cluster_size;
    bs->bl.pdiscard_alignment = s->cluster_size;
    bs->bl.opt_transfer = s->cluster_size;
    return 0;
}

static int64_t qcow2_getlength(struct bd_node *bs)
{
    struct qcow2_state *s = bs->opaque;
    int64_t len;

    pthread_mutex_lock(&s->lock);
    len = (int64_t)s->size;
    pthread_mutex_unlock(&s->lock);
    return len;
}

/* Where VM state lives: after the last L1 entry the disk needs. */
static uint64_t vm_state_offset(struct qcow2_state *s)
{
    return qcow2_l1_entries_for(s->cluster_bits, s->size) <<
           (s->cluster_bits + s->l2_bits);
}

/* ------------------------------------------------------------------ */
/* Reads                                                                */

static int read_compressed(struct bd_node *bs, uint64_t l2e,
                           uint8_t *cluster)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t coff = l2e & s->cluster_offset_mask;
    uint64_t nsec = ((l2e >> s->csize_shift) & s->csize_mask) + 1;
    uint64_t csize = nsec * 512 - (coff & 511);
    int64_t flen = bd_getlength(bs->file->node);
    uint8_t *cbuf;
    uint64_t rlen = csize;
    int ret;

    if (flen >= 0 && coff + rlen > (uint64_t)flen) {
        /* The last sector of a compressed cluster may be cut short. */
        rlen = coff < (uint64_t)flen ? (uint64_t)flen - coff : 0;
    }
    cbuf = bd_malloc0(csize + 1);
    bd_event(bs->file, BD_EV_READ_COMPRESSED);
    ret = rlen ? bd_child_pread(bs->file, (int64_t)coff, (int64_t)rlen,
                                cbuf, 0) : 0;
    if (ret == 0) {
        ret = qcow2_decompress(cbuf, csize, cluster, s->cluster_size);
    }
    free(cbuf);
    return ret;
}

/* Read guest range [off, off+bytes) that this image leaves unallocated. */
static int read_unallocated(struct bd_node *bs, uint64_t off, uint64_t bytes,
                            struct bd_qiov *q)
{
    int64_t blen;
    uint64_t n = 0;
    int ret = 0;

    if (bs->backing) {
        blen = bd_getlength(bs->backing->node);
        if (blen < 0) {
            return (int)blen;
        }
        if (off < (uint64_t)blen) {
            n = BD_MIN(bytes, (uint64_t)blen - off);
        }
    }
    if (n) {
        struct bd_qiov part;

        bd_event(bs->file, BD_EV_READ_BACKING_AIO);
        bd_qiov_slice(&part, q, 0, n);
        ret = bd_child_preadv(bs->backing, (int64_t)off, (int64_t)n,
                              &part, 0);
        bd_qiov_destroy(&part);
    }
    if (ret == 0 && n < bytes) {
        bd_qiov_memset(q, n, 0, bytes - n);
    }
    return ret;
}

static int do_preadv(struct bd_node *bs, uint64_t off, uint64_t bytes,
                     struct bd_qiov *qiov, size_t qoff)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t done = 0;
    int ret = 0;

    while (done < bytes && ret == 0) {
        uint64_t cur = off + done;
        uint64_t count, l2e;
        struct bd_qiov part;

        pthread_mutex_lock(&s->lock);
        ret = qcow2_get_host_offset(bs, cur, bytes - done, &count, &l2e);
        pthread_mutex_unlock(&s->lock);
        if (ret < 0) {
            break;
        }
        bd_qiov_slice(&part, qiov, qoff + done, count);
        switch (qcow2_get_cluster_type(s, l2e)) {
        case QCOW2_CLUSTER_UNALLOCATED:
            ret = read_unallocated(bs, cur, count, &part);
            break;
        case QCOW2_CLUSTER_ZERO_PLAIN:
        case QCOW2_CLUSTER_ZERO_ALLOC:
            bd_qiov_memset(&part, 0, 0, count);
            break;
        case QCOW2_CLUSTER_NORMAL:
            bd_event(bs->file, BD_EV_READ_AIO);
            ret = bd_child_preadv(bs->file,
                                  (int64_t)((l2e & L2E_OFFSET_MASK) +
                                            qcow2_offset_into_cluster(s, cur)),
                                  (int64_t)count, &part, 0);
            break;
        case QCOW2_CLUSTER_COMPRESSED: {
            uint8_t *cl = bd_malloc(s->cluster_size);

            ret = read_compressed(bs, l2e, cl);
            if (ret == 0) {
                bd_qiov_from_buf(&part, 0,
                                 cl + qcow2_offset_into_cluster(s, cur),
                                 count);
            }
            free(cl);
            break;
        }
        }
        bd_qiov_destroy(&part);
        done += count;
    }
    return ret;
}

static int qcow2_preadv(struct bd_node *bs, int64_t off, int64_t bytes,
                        struct bd_qiov *qiov, int flags)
{
    struct qcow2_state *s = bs->opaque;

    if (flags & BD_REQ_VMSTATE) {
        bd_event(bs->file, BD_EV_VMSTATE_LOAD);
        off += (int64_t)vm_state_offset(s);
    }
    return do_preadv(bs, (uint64_t)off, (uint64_t)bytes, qiov, 0);
}

/* ------------------------------------------------------------------ */
/* Allocation bookkeeping (lock held)                                   */

static struct qcow2_alloc *alloc_overlap(struct qcow2_state *s,
                                         uint64_t start, uint64_t end)
{
    struct bd_list *pos;

    bd_list_for_each(pos, &s->allocs) {
        struct qcow2_alloc *a = BD_LIST_ENTRY(pos, struct qcow2_alloc, link);
        if (a->guest_start < end && start < a->guest_end) {
            return a;
        }
    }
    return NULL;
}

static void wait_allocs(struct qcow2_state *s, uint64_t start, uint64_t end)
{
    while (alloc_overlap(s, start, end)) {
        pthread_cond_wait(&s->alloc_cond, &s->lock);
    }
}

/* Link guest cluster `guest` to host cluster `host` (lock held). */
static int link_l2(struct bd_node *bs, uint64_t guest, uint64_t entry,
                   uint64_t *old)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t *table;
    uint32_t idx;
    int ret;

    ret = qcow2_get_l2_for_write(bs, guest, &table, &idx);
    if (ret < 0) {
        return ret;
    }
    /* The new cluster's refcount must be on disk before this table. */
    ret = qcow2_cache_set_dependency(bs, s->l2_cache, s->refblock_cache);
    if (ret < 0) {
        qcow2_cache_put(s->l2_cache, (void **)&table);
        return ret;
    }
    *old = qcow2_be64(&table[idx]);
    qcow2_put_be64(&table[idx], entry);
    qcow2_cache_mark_dirty(s->l2_cache, table);
    qcow2_cache_put(s->l2_cache, (void **)&table);
    return 0;
}

/* Does the range read as zeroes without looking at data (no backing data
 * under an unallocated cluster)? */
static bool backing_is_zero(struct bd_node *bs, uint64_t off, uint64_t bytes)
{
    int64_t blen;

    if (!bs->backing) {
        return true;
    }
    blen = bd_getlength(bs->backing->node);
    return blen >= 0 && off >= (uint64_t)blen;
    (void)bytes;
}

/*
 * Write [off, off+n) inside one guest cluster that needs a new host
 * cluster (old mapping in l2e). Called with the lock held and the guest
 * cluster registered in s->allocs; drops the lock around data I/O.
 */
static int write_new_cluster(struct bd_node *bs, uint64_t off, uint64_t n,
                             struct bd_qiov *data, uint64_t l2e,
                             uint64_t *host_out)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t cs = s->cluster_size;
    uint64_t gstart = qcow2_start_of_cluster(s, off);
    uint64_t in = off - gstart;
    uint64_t vend = BD_MIN(cs, s->size > gstart ? s->size - gstart : cs);
    enum qcow2_cluster_type type = qcow2_get_cluster_type(s, l2e);
    bool need_cow = in > 0 || in + n < vend;
    bool cow_zero;
    int64_t host;
    uint8_t *buf = NULL;
    int ret;

    if (type == QCOW2_CLUSTER_ZERO_ALLOC && (l2e & QCOW_OFLAG_COPIED)) {
        host = (int64_t)(l2e & L2E_OFFSET_MASK);
    } else {
        uint64_t *table;
        uint32_t idx;

        /* The L2 table first, as QEMU does: same layout on disk. */
        ret = qcow2_get_l2_for_write(bs, gstart, &table, &idx);
        if (ret < 0) {
            return ret;
        }
        qcow2_cache_put(s->l2_cache, (void **)&table);
        host = qcow2_alloc_clusters(bs, cs);
        if (host < 0) {
            return (int)host;
        }
    }
    /* Beyond the disk (VM state) QEMU cannot prove zeroes by block
     * status and copies the (zero) regions instead. */
    cow_zero = gstart < s->size &&
               (type == QCOW2_CLUSTER_ZERO_PLAIN ||
                type == QCOW2_CLUSTER_ZERO_ALLOC ||
                (type == QCOW2_CLUSTER_UNALLOCATED &&
                 backing_is_zero(bs, gstart, cs)));
    pthread_mutex_unlock(&s->lock);

    ret = 0;
    if (need_cow && cow_zero) {
        /* Nothing to preserve: zero the whole cluster, then write. */
        bd_event(bs->file, BD_EV_CLUSTER_ALLOC_SPACE);
        ret = bd_child_pwrite_zeroes(bs->file, host, (int64_t)cs,
                                     BD_REQ_NO_FALLBACK);
        if (ret == 0) {
            bd_event(bs->file, BD_EV_WRITE_AIO);
            ret = bd_child_pwritev(bs->file, host + (int64_t)in, (int64_t)n,
                                   data, 0);
        } else {
            need_cow = true;
            cow_zero = false;
            ret = 0;
            buf = bd_memalign(4096, cs);
            memset(buf, 0, cs);
            goto merged;
        }
    } else if (need_cow) {
        buf = bd_memalign(4096, cs);
        memset(buf, 0, cs);
        bd_event(bs->file, BD_EV_COW_READ);
        if (type == QCOW2_CLUSTER_COMPRESSED) {
            ret = read_compressed(bs, l2e, buf);
        } else if (type == QCOW2_CLUSTER_NORMAL) {
            bd_event(bs->file, BD_EV_READ_AIO);
            ret = bd_child_pread(bs->file, (int64_t)(l2e & L2E_OFFSET_MASK),
                                 (int64_t)cs, buf, 0);
        } else {
            struct bd_qiov q;

            bd_qiov_init_buf(&q, buf, vend);
            ret = read_unallocated(bs, gstart, vend, &q);
        }
merged:
        if (ret == 0) {
            struct bd_qiov q;

            bd_qiov_to_buf(data, 0, buf + in, n);
            bd_event(bs->file, BD_EV_WRITE_AIO);
            bd_event(bs->file, BD_EV_COW_WRITE);
            bd_qiov_init_buf(&q, buf, cs);
            ret = bd_child_pwritev(bs->file, host, (int64_t)cs, &q, 0);
        }
    } else {
        bd_event(bs->file, BD_EV_WRITE_AIO);
        ret = bd_child_pwritev(bs->file, host + (int64_t)in, (int64_t)n,
                               data, 0);
    }
    free(buf);
    pthread_mutex_lock(&s->lock);
    if (ret < 0) {
        if ((uint64_t)host != (l2e & L2E_OFFSET_MASK)) {
            qcow2_free_clusters(bs, (uint64_t)host, cs);
        }
        return ret;
    }
    *host_out = (uint64_t)host;
    return 0;
}

/*
 * QEMU's overlap check (the cheap part of its default "cached" mode): a
 * data write must not land on the header, the active L1 table, the
 * refcount table or a refcount block. Lock held. Returns 0 or -EIO after
 * marking the image corrupt.
 */
static int overlap_check(struct bd_node *bs, uint64_t host, uint64_t len)
{
    struct qcow2_state *s = bs->opaque;
    const char *what = NULL;
    uint32_t i;

    if (host < s->cluster_size) {
        what = "qcow2_header";
    } else if (s->l1_size && host < s->l1_offset + 8ULL * s->l1_size &&
               s->l1_offset < host + len) {
        what = "active L1 table";
    } else if (host < s->reftable_offset + 8ULL * s->reftable_size &&
               s->reftable_offset < host + len) {
        what = "refcount table";
    } else if (s->reftable_size <= 65536) {
        for (i = 0; i < s->reftable_size; i++) {
            uint64_t rb = s->reftable[i] & REFT_OFFSET_MASK;

            if (rb && host < rb + s->cluster_size && rb < host + len) {
                what = "refcount block";
                break;
            }
        }
    }
    if (!what) {
        return 0;
    }
    return qcow2_signal_corruption(bs, true, (int64_t)host, (int64_t)len,
                                   "Preventing invalid write on metadata "
                                   "(overlaps with %s)", what);
}

static int write_one(struct bd_node *bs, uint64_t off, uint64_t n,
                     struct bd_qiov *data)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t gstart = qcow2_start_of_cluster(s, off);
    struct qcow2_alloc a;
    uint64_t count, l2e, host = 0, old = 0;
    int ret;

    pthread_mutex_lock(&s->lock);
    for (;;) {
        wait_allocs(s, gstart, gstart + s->cluster_size);
        ret = qcow2_get_host_offset(bs, off, n, &count, &l2e);
        if (ret < 0) {
            goto out;
        }
        if (qcow2_get_cluster_type(s, l2e) == QCOW2_CLUSTER_NORMAL &&
            (l2e & QCOW_OFLAG_COPIED)) {
            ret = overlap_check(bs, (l2e & L2E_OFFSET_MASK) + (off - gstart),
                                n);
            if (ret < 0) {
                goto out;
            }
            pthread_mutex_unlock(&s->lock);
            bd_event(bs->file, BD_EV_WRITE_AIO);
            return bd_child_pwritev(bs->file,
                                    (int64_t)((l2e & L2E_OFFSET_MASK) +
                                              (off - gstart)),
                                    (int64_t)n, data, 0);
        }
        if (!alloc_overlap(s, gstart, gstart + s->cluster_size)) {
            break;
        }
    }
    a.guest_start = gstart;
    a.guest_end = gstart + s->cluster_size;
    bd_list_add_tail(&s->allocs, &a.link);
    ret = write_new_cluster(bs, off, n, data, l2e, &host);
    if (ret == 0) {
        ret = link_l2(bs, gstart, host | QCOW_OFLAG_COPIED, &old);
        if (ret < 0) {
            if (host != (l2e & L2E_OFFSET_MASK)) {
                qcow2_free_clusters(bs, host, s->cluster_size);
            }
        } else if ((old & L2E_OFFSET_MASK) != host ||
                   qcow2_get_cluster_type(s, old) ==
                   QCOW2_CLUSTER_COMPRESSED) {
            qcow2_free_any_cluster(bs, old, 1);
        }
    }
    bd_list_del(&a.link);
    pthread_cond_broadcast(&s->alloc_cond);
out:
    pthread_mutex_unlock(&s->lock);
    return ret;
}

/* Clusters one batched allocating write covers at most (2 MiB of 64 KiB
 * clusters): the run is one data request, as in QEMU's handle_alloc. */
#define QCOW2_ALLOC_RUN_MAX 32

/*
 * Write whole guest clusters from cluster-aligned off, n bytes (a multiple
 * of the cluster size, at least two clusters), when they are a run of
 * unallocated or plain-zero entries of one L2 table with no allocation in
 * flight: one contiguous host allocation, one data write, then the links.
 * A cluster-by-cluster write of a fresh 1 MiB chunk was 16 requests to
 * the file where QEMU issues one (a backup into a qcow2 target made 17,000
 * io_submit calls per GiB against qemu-storage-daemon's 85).
 * Returns the bytes written (> 0), 0 when the run does not qualify (the
 * caller writes cluster by cluster; *plain then holds how many bytes from
 * off are mapped alike and need not be asked about again), or -errno.
 */
static int64_t write_new_run(struct bd_node *bs, uint64_t off, uint64_t n,
                             struct bd_qiov *data, uint64_t *plain)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t cs = s->cluster_size;
    uint64_t count, l2e, k, i, *table;
    enum qcow2_cluster_type type;
    struct qcow2_alloc a;
    struct bd_qiov part;
    uint32_t idx;
    int64_t host = 0;
    int ret;

    *plain = 0;
    pthread_mutex_lock(&s->lock);
    ret = qcow2_get_host_offset(bs, off, n, &count, &l2e);
    type = qcow2_get_cluster_type(s, l2e);
    if (ret == 0 && (count < 2 * cs ||
                     (type != QCOW2_CLUSTER_UNALLOCATED &&
                      type != QCOW2_CLUSTER_ZERO_PLAIN))) {
        /* Nothing in this run qualifies: already mapped, or too short. */
        *plain = count;
    }
    count = BD_MIN(count, QCOW2_ALLOC_RUN_MAX * cs);
    if (ret < 0 || *plain || off + count > s->size ||
        alloc_overlap(s, off, off + count)) {
        pthread_mutex_unlock(&s->lock);
        return ret < 0 ? ret : 0;
    }
    k = count / cs;
    a.guest_start = off;
    a.guest_end = off + k * cs;
    bd_list_add_tail(&s->allocs, &a.link);
    /* The L2 table first, as for a single cluster. */
    ret = qcow2_get_l2_for_write(bs, off, &table, &idx);
    if (ret == 0) {
        qcow2_cache_put(s->l2_cache, (void **)&table);
        host = qcow2_alloc_clusters(bs, k * cs);
        ret = host < 0 ? (int)host : 0;
    }
    if (ret < 0) {
        goto out;
    }
    pthread_mutex_unlock(&s->lock);
    bd_qiov_slice(&part, data, 0, k * cs);
    bd_event(bs->file, BD_EV_WRITE_AIO);
    ret = bd_child_pwritev(bs->file, host, (int64_t)(k * cs), &part, 0);
    bd_qiov_destroy(&part);
    pthread_mutex_lock(&s->lock);
    if (ret < 0) {
        qcow2_free_clusters(bs, (uint64_t)host, k * cs);
        goto out;
    }
    for (i = 0; i < k; i++) {
        uint64_t old = 0;

        ret = link_l2(bs, off + i * cs,
                      ((uint64_t)host + i * cs) | QCOW_OFLAG_COPIED, &old);
        if (ret < 0) {
            /* Clusters not linked yet are leaked, as in QEMU. */
            qcow2_free_clusters(bs, (uint64_t)host + i * cs, (k - i) * cs);
            break;
        }
    }
out:
    bd_list_del(&a.link);
    pthread_cond_broadcast(&s->alloc_cond);
    pthread_mutex_unlock(&s->lock);
    return ret < 0 ? ret : (int64_t)(k * cs);
}

static int write_compressed(struct bd_node *bs, uint64_t off, uint64_t bytes,
                            struct bd_qiov *qiov);

static int qcow2_pwritev(struct bd_node *bs, int64_t off, int64_t bytes,
                         struct bd_qiov *qiov, int flags)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t done = 0;
    uint64_t plain_end = 0;     /* below: known not to batch (mapped) */
    int ret = 0;

    if (flags & BD_REQ_WRITE_COMPRESSED) {
        return write_compressed(bs, (uint64_t)off, (uint64_t)bytes, qiov);
    }
    if (flags & BD_REQ_VMSTATE) {
        bd_event(bs->file, BD_EV_VMSTATE_SAVE);
        off += (int64_t)vm_state_offset(s);
    }
    while (done < (uint64_t)bytes && ret == 0) {
        uint64_t cur = (uint64_t)off + done;
        uint64_t n = BD_MIN((uint64_t)bytes - done,
                            s->cluster_size -
                            qcow2_offset_into_cluster(s, cur));
        uint64_t whole = BD_ROUND_DOWN((uint64_t)bytes - done,
                                       s->cluster_size);
        struct bd_qiov part;

        if (!(flags & BD_REQ_VMSTATE) && !qcow2_offset_into_cluster(s, cur) &&
            whole >= 2 * s->cluster_size && cur >= plain_end) {
            uint64_t plain = 0;
            int64_t w;

            bd_qiov_slice(&part, qiov, done, whole);
            w = write_new_run(bs, cur, whole, &part, &plain);
            bd_qiov_destroy(&part);
            if (w < 0) {
                ret = (int)w;
                break;
            }
            if (w > 0) {
                done += (uint64_t)w;
                continue;
            }
            plain_end = cur + plain;
        }
        bd_qiov_slice(&part, qiov, done, n);
        ret = write_one(bs, cur, n, &part);
        bd_qiov_destroy(&part);
        done += n;
    }
    if (ret == 0 && (flags & BD_REQ_FUA)) {
        /* Like QEMU's emulation, the flush runs before this write counts
         * as unflushed on this node: it reaches the disk through the
         * children, and flush_to_disk is not raised for the first write. */
        ret = bd_node_flush(bs);
    }
    return ret;
}

static int write_compressed(struct bd_node *bs, uint64_t off, uint64_t bytes,
                            struct bd_qiov *qiov)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t cs = s->cluster_size;
    uint8_t *src = NULL, *dst = NULL;
    struct qcow2_alloc a;
    uint64_t count, l2e, old, entry, nsec;
    int64_t coff;
    ssize_t clen;
    int ret;

    if (qcow2_offset_into_cluster(s, off)) {
        return -EINVAL;
    }
    if (bytes > cs) {
        /* Cluster by cluster. */
        uint64_t done = 0;

        ret = 0;
        while (done < bytes && ret == 0) {
            struct bd_qiov part;
            uint64_t n = BD_MIN(cs, bytes - done);

            bd_qiov_slice(&part, qiov, done, n);
            ret = write_compressed(bs, off + done, n, &part);
            bd_qiov_destroy(&part);
            done += n;
        }
        return ret;
    }
    if (bytes < cs && off + bytes != s->size) {
        return -EINVAL;
    }
    src = bd_malloc0(cs);
    dst = bd_malloc(cs);
    bd_qiov_to_buf(qiov, 0, src, bytes);
    clen = qcow2_compress(src, cs, dst, cs - 1);
    if (clen < 0) {
        /* Incompressible: an ordinary write. */
        struct bd_qiov q;

        free(dst);
        bd_qiov_init_buf(&q, src, bytes);
        ret = qcow2_pwritev(bs, (int64_t)off, (int64_t)bytes, &q, 0);
        free(src);
        return ret;
    }
    pthread_mutex_lock(&s->lock);
    wait_allocs(s, off, off + cs);
    ret = qcow2_get_host_offset(bs, off, cs, &count, &l2e);
    if (ret < 0) {
        goto out;
    }
    if (l2e & L2E_OFFSET_MASK) {
        /* Compression never overwrites an allocated cluster. */
        ret = -EIO;
        goto out;
    }
    {
        uint64_t *table;
        uint32_t idx;

        ret = qcow2_get_l2_for_write(bs, off, &table, &idx);
        if (ret < 0) {
            goto out;
        }
        qcow2_cache_put(s->l2_cache, (void **)&table);
    }
    coff = qcow2_alloc_bytes(bs, (uint32_t)clen);
    if (coff < 0) {
        ret = (int)coff;
        goto out;
    }
    a.guest_start = off;
    a.guest_end = off + cs;
    bd_list_add_tail(&s->allocs, &a.link);
    nsec = (((uint64_t)coff + (uint64_t)clen - 1) >> 9) -
           ((uint64_t)coff >> 9);
    entry = QCOW_OFLAG_COMPRESSED | (uint64_t)coff |
            (nsec << s->csize_shift);
    /* QEMU's order: the L2 entry (in the cache), then the data. The entry
     * reaches the disk only at the next cache write-back, after the data,
     * and is undone if the data write fails. */
    bd_event(bs->file, BD_EV_L2_UPDATE_COMPRESSED);
    ret = link_l2(bs, off, entry, &old);
    if (ret == 0) {
        pthread_mutex_unlock(&s->lock);
        bd_event(bs->file, BD_EV_WRITE_COMPRESSED);
        ret = bd_child_pwrite(bs->file, coff, clen, dst, 0);
        pthread_mutex_lock(&s->lock);
        if (ret < 0) {
            uint64_t dummy;

            (void)link_l2(bs, off, old, &dummy);
        }
    }
    if (ret < 0) {
        /* Undo quietly (QEMU leaves the entry and says nothing); a failure
         * here only leaks the bytes. */
        (void)qcow2_update_refcount(bs, (uint64_t)coff, (uint64_t)clen, -1);
    }
    bd_list_del(&a.link);
    pthread_cond_broadcast(&s->alloc_cond);
out:
    pthread_mutex_unlock(&s->lock);
    free(src);
    free(dst);
    return ret;
}

/* ------------------------------------------------------------------ */
/* Write-zeroes and discard                                             */

/* Does every byte of [off, off+bytes) already read as zero? Lock held. */
static int reads_as_zero(struct bd_node *bs, uint64_t off, uint64_t bytes)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t done = 0;

    while (done < bytes) {
        uint64_t count, l2e;
        int ret = qcow2_get_host_offset(bs, off + done, bytes - done,
                                        &count, &l2e);
        enum qcow2_cluster_type t;

        if (ret < 0) {
            return ret;
        }
        t = qcow2_get_cluster_type(s, l2e);
        if (t == QCOW2_CLUSTER_UNALLOCATED) {
            if (!backing_is_zero(bs, off + done, count)) {
                return 0;
            }
        } else if (t != QCOW2_CLUSTER_ZERO_PLAIN &&
                   t != QCOW2_CLUSTER_ZERO_ALLOC) {
            return 0;
        }
        done += count;
    }
    return 1;
}

/* Rewrite the L2 entries of whole clusters [off, off+bytes). Lock held. */
static int zero_or_discard(struct bd_node *bs, uint64_t off, uint64_t bytes,
                           bool zero, bool unmap)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t cur;
    int ret = 0;

    for (cur = off; cur < off + bytes; cur += s->cluster_size) {
        uint64_t count, l2e, entry, old;
        enum qcow2_cluster_type t;
        bool free_old;

        ret = qcow2_get_host_offset(bs, cur, s->cluster_size, &count, &l2e);
        if (ret < 0) {
            return ret;
        }
        t = qcow2_get_cluster_type(s, l2e);
        if (zero) {
            if (t == QCOW2_CLUSTER_ZERO_PLAIN ||
                (t == QCOW2_CLUSTER_ZERO_ALLOC && !unmap)) {
                continue;
            }
            free_old = unmap || t == QCOW2_CLUSTER_COMPRESSED ||
                       !(l2e & QCOW_OFLAG_COPIED);
            entry = QCOW_OFLAG_ZERO;
            if (!free_old && (t == QCOW2_CLUSTER_NORMAL ||
                              t == QCOW2_CLUSTER_ZERO_ALLOC)) {
                entry |= l2e & (L2E_OFFSET_MASK | QCOW_OFLAG_COPIED);
            }
        } else {
            if (t == QCOW2_CLUSTER_UNALLOCATED && !bs->backing) {
                continue;
            }
            free_old = true;
            /* A discarded cluster reads back as zeroes on v3 (QEMU's
             * discard without full_discard): a zero cluster replaces
             * allocated data, and with a backing file the backing data
             * must not show again. unmap false is the full discard of a
             * shrink, which leaves nothing behind. */
            entry = (unmap && s->version >= 3 &&
                     (bs->backing || t == QCOW2_CLUSTER_NORMAL ||
                      t == QCOW2_CLUSTER_COMPRESSED ||
                      t == QCOW2_CLUSTER_ZERO_ALLOC)) ? QCOW_OFLAG_ZERO : 0;
            if (t == QCOW2_CLUSTER_ZERO_PLAIN && unmap) {
                continue;
            }
        }
        ret = link_l2(bs, cur, entry, &old);
        if (ret < 0) {
            return ret;
        }
        if (free_old) {
            qcow2_free_any_cluster(bs, old, 1);
        }
    }
    return ret;
}

static int qcow2_pwrite_zeroes(struct bd_node *bs, int64_t off, int64_t bytes,
                               int flags)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t o = (uint64_t)off, b = (uint64_t)bytes;
    uint64_t head = qcow2_offset_into_cluster(s, o);
    uint64_t end = o + b;
    int ret;

    pthread_mutex_lock(&s->lock);
    wait_allocs(s, qcow2_start_of_cluster(s, o), end + s->cluster_size);
    if (head || (qcow2_offset_into_cluster(s, end) && end != s->size)) {
        /* A partial cluster is fine when it reads as zero already. */
        ret = reads_as_zero(bs, qcow2_start_of_cluster(s, o),
                            BD_MIN(BD_ROUND_UP(end, s->cluster_size),
                                   s->size) - qcow2_start_of_cluster(s, o));
        if (ret <= 0) {
            pthread_mutex_unlock(&s->lock);
            return ret < 0 ? ret : -ENOTSUP;
        }
        o = qcow2_start_of_cluster(s, o);
        end = BD_MIN(BD_ROUND_UP(end, s->cluster_size), s->size);
    }
    if (s->version < 3) {
        ret = reads_as_zero(bs, o, end - o);
        pthread_mutex_unlock(&s->lock);
        if (ret > 0 && (flags & BD_REQ_FUA)) {
            ret = bd_node_flush(bs) < 0 ? -EIO : 1;
        }
        return ret < 0 ? ret : ret ? 0 : -ENOTSUP;
    }
    ret = zero_or_discard(bs, o, end - o, true,
                          (flags & BD_REQ_MAY_UNMAP) != 0);
    pthread_mutex_unlock(&s->lock);
    if (ret == 0 && (flags & BD_REQ_FUA)) {
        ret = bd_node_flush(bs);
    }
    return ret;
}

static int qcow2_pdiscard(struct bd_node *bs, int64_t off, int64_t bytes)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t o = (uint64_t)off;
    uint64_t end = o + (uint64_t)bytes;
    int ret;

    /* Only whole clusters can be dropped (the tail at EOF counts). */
    o = BD_ROUND_UP(o, s->cluster_size);
    if (end != s->size) {
        end = qcow2_start_of_cluster(s, end);
    }
    if (o >= end) {
        return 0;
    }
    pthread_mutex_lock(&s->lock);
    wait_allocs(s, o, end);
    ret = zero_or_discard(bs, o, end - o, false, true);
    pthread_mutex_unlock(&s->lock);
    return ret;
}

/* ------------------------------------------------------------------ */
/* Flush, block status, info                                            */

static int qcow2_flush_to_os(struct bd_node *bs)
{
    struct qcow2_state *s = bs->opaque;
    int ret;

    if (bs->read_only) {
        return 0;
    }
    pthread_mutex_lock(&s->lock);
    ret = write_caches(bs);
    pthread_mutex_unlock(&s->lock);
    return ret;
}

static int qcow2_block_status(struct bd_node *bs, bool want_zero, int64_t off,
                              int64_t bytes, int64_t *pnum, int64_t *map,
                              struct bd_node **file)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t count, l2e;
    int ret;

    (void)want_zero;
    pthread_mutex_lock(&s->lock);
    ret = qcow2_get_host_offset(bs, (uint64_t)off, (uint64_t)bytes, &count,
                                &l2e);
    pthread_mutex_unlock(&s->lock);
    if (ret < 0) {
        return ret;
    }
    *pnum = (int64_t)count;
    switch (qcow2_get_cluster_type(s, l2e)) {
    case QCOW2_CLUSTER_UNALLOCATED:
        return 0;
    case QCOW2_CLUSTER_ZERO_PLAIN:
        return BD_BLOCK_ZERO;
    case QCOW2_CLUSTER_ZERO_ALLOC:
        *map = (int64_t)((l2e & L2E_OFFSET_MASK) +
                         qcow2_offset_into_cluster(s, (uint64_t)off));
        *file = bs->file->node;
        return BD_BLOCK_ZERO | BD_BLOCK_OFFSET_VALID;
    case QCOW2_CLUSTER_COMPRESSED:
        return BD_BLOCK_DATA;
    case QCOW2_CLUSTER_NORMAL:
    default:
        *map = (int64_t)((l2e & L2E_OFFSET_MASK) +
                         qcow2_offset_into_cluster(s, (uint64_t)off));
        *file = bs->file->node;
        return BD_BLOCK_DATA | BD_BLOCK_OFFSET_VALID;
    }
}

static int qcow2_get_info(struct bd_node *bs, struct bd_node_info *info)
{
    struct qcow2_state *s = bs->opaque;
    json_t *d;

    info->cluster_size = s->cluster_size;
    info->vm_state_offset = (int64_t)vm_state_offset(s);
    info->is_dirty = (s->incompatible & QCOW2_INCOMPAT_DIRTY) != 0;
    d = json_object();
    if (s->version == 2) {
        json_object_set_new(d, "compat", json_string("0.10"));
        json_object_set_new(d, "compression-type", json_string("zlib"));
        json_object_set_new(d, "refcount-bits",
                            json_integer(s->refcount_bits));
    } else {
        json_object_set_new(d, "compat", json_string("1.1"));
        json_object_set_new(d, "compression-type", json_string("zlib"));
        json_object_set_new(d, "lazy-refcounts",
                            json_boolean(s->lazy_refcounts));
        if (s->has_bitmaps_ext && (s->autoclear & QCOW2_AUTOCLEAR_BITMAPS)) {
            struct qcow2_bitmap_info *bl = NULL;
            int nb = qcow2_bitmap_list(bs, &bl, NULL);
            json_t *arr = json_array();
            int i;

            for (i = 0; i < nb; i++) {
                json_t *bm = json_object();
                json_t *fl = json_array();

                if (bl[i].flags & QCOW2_BITMAP_IN_USE) {
                    json_array_append_new(fl, json_string("in-use"));
                }
                if (bl[i].flags & QCOW2_BITMAP_AUTO) {
                    json_array_append_new(fl, json_string("auto"));
                }
                json_object_set_new(bm, "flags", fl);
                json_object_set_new(bm, "name", json_string(bl[i].name));
                json_object_set_new(bm, "granularity",
                                    json_integer(bl[i].granularity));
                json_array_append_new(arr, bm);
            }
            qcow2_bitmap_list_free(bl, nb);
            json_object_set_new(d, "bitmaps", arr);
        }
        json_object_set_new(d, "refcount-bits",
                            json_integer(s->refcount_bits));
        json_object_set_new(d, "corrupt",
                            json_boolean(s->incompatible &
                                         QCOW2_INCOMPAT_CORRUPT));
        json_object_set_new(d, "extended-l2", json_false());
    }
    info->format_specific = d;
    return 0;
}

static int qcow2_has_zero_init(struct bd_node *bs)
{
    (void)bs;
    return 1;
}

/* ------------------------------------------------------------------ */
/* Resize                                                               */

static int qcow2_truncate(struct bd_node *bs, int64_t size, bool exact,
                          enum bd_prealloc prealloc, int flags,
                          struct bd_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t new_size = (uint64_t)size;
    uint8_t be[8];
    int ret = 0;

    (void)exact;
    (void)flags;
    if (new_size % 512) {
        bd_error_setg(errp, "The new size must be a multiple of 512");
        return -EINVAL;
    }
    if (prealloc != BD_PREALLOC_OFF) {
        bd_error_setg(errp, "Unsupported preallocation mode '%s'",
                      bd_prealloc_names[prealloc]);
        return -ENOTSUP;
    }
    pthread_mutex_lock(&s->lock);
    wait_allocs(s, 0, UINT64_MAX);
    if (new_size < s->size) {
        uint64_t start = BD_ROUND_UP(new_size, s->cluster_size);

        if (start < s->size) {
            ret = zero_or_discard(bs, start, BD_ROUND_UP(s->size,
                                  s->cluster_size) - start, false, false);
        }
        if (ret == 0) {
            ret = write_caches(bs);
        }
        if (ret < 0) {
            bd_error_setg_errno(errp, -ret, "Failed to discard cropped "
                                "clusters");
        }
    } else {
        uint64_t need = qcow2_l1_entries_for(s->cluster_bits, new_size);

        if (need > s->l1_size) {
            ret = qcow2_resize_l1(bs, need);
            if (ret < 0) {
                bd_error_setg_errno(errp, -ret, "Failed to grow the L1 "
                                    "table");
            }
        }
    }
    if (ret == 0) {
        qcow2_put_be64(be, new_size);
        ret = bd_child_pwrite(bs->file, QH_SIZE, 8, be, 0);
        if (ret == 0) {
            ret = bd_child_flush(bs->file);
        }
        if (ret < 0) {
            bd_error_setg_errno(errp, -ret, "Failed to update the image "
                                "size");
        }
    }
    if (ret == 0) {
        s->size = new_size;
    }
    pthread_mutex_unlock(&s->lock);
    return ret;
}

/* ------------------------------------------------------------------ */
/* Metadata preallocation (create, and blkrig img create)               */

int qcow2_preallocate(struct bd_node *bs, enum bd_prealloc mode,
                      struct bd_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t off, old, end = 0;
    int64_t eof0 = bd_getlength(bs->file->node);
    int ret = 0;

    if (eof0 < 0) {
        bd_error_setg_errno(errp, (int)-eof0, "Could not get file size");
        return (int)eof0;
    }
    if (mode == BD_PREALLOC_FALLOC || mode == BD_PREALLOC_FULL) {
        /* Reserve the whole area first, as QEMU does, so the file's
         * allocation is one run from the old end of file. */
        uint64_t nd = qcow2_size_to_clusters(s, s->size);
        uint64_t nl2 = BD_DIV_ROUND_UP(nd, s->l2_size);
        uint64_t first = qcow2_size_to_clusters(s, (uint64_t)eof0);
        uint64_t last = first + nd + nl2;
        uint64_t rb = 0, k;

        for (k = first >> s->refblock_bits; k <= (last + rb) >>
             s->refblock_bits; k++) {
            if (k >= s->reftable_size || !s->reftable[k]) {
                rb++;
            }
        }
        ret = bd_child_truncate(bs->file, (int64_t)((last + rb) <<
                                                    s->cluster_bits),
                                false, mode, 0, errp);
        if (ret < 0) {
            return ret;
        }
    }
    pthread_mutex_lock(&s->lock);
    for (off = 0; off < s->size && ret == 0; off += s->cluster_size) {
        uint64_t *table;
        uint32_t idx;
        int64_t host;

        ret = qcow2_get_l2_for_write(bs, off, &table, &idx);
        if (ret < 0) {
            break;
        }
        qcow2_cache_put(s->l2_cache, (void **)&table);
        host = qcow2_alloc_clusters(bs, s->cluster_size);
        if (host < 0) {
            ret = (int)host;
            break;
        }
        end = (uint64_t)host + s->cluster_size;
        ret = link_l2(bs, off, (uint64_t)host | QCOW_OFLAG_COPIED, &old);
    }
    if (ret == 0) {
        ret = write_caches(bs);
    }
    pthread_mutex_unlock(&s->lock);
    if (ret == 0 && end && mode == BD_PREALLOC_METADATA) {
        ret = bd_child_truncate(bs->file, (int64_t)end, false,
                                BD_PREALLOC_OFF, 0, errp);
        if (ret < 0) {
            return ret;
        }
    }
    if (ret < 0) {
        bd_error_setg_errno(errp, -ret, "Could not preallocate metadata");
    }
    return ret;
}

/* ------------------------------------------------------------------ */
/* Create                                                               */

static const char *const compat_names[] = { "0.10", "1.1", "v2", "v3",
                                            NULL };

/* Header cluster: header, extensions, backing name. */
static int build_header(uint8_t *h, uint32_t cs, int cluster_bits,
                        int version, int refcount_order, bool lazy,
                        const char *backing, const char *backing_fmt,
                        uint64_t size, struct bd_error **errp)
{
    uint32_t hl = version >= 3 ? 112 : QCOW2_HEADER_V2_SIZE;
    uint32_t off = hl;
    size_t blen = backing ? strlen(backing) : 0;
    static const struct {
        uint8_t type, bit;
        const char *name;
    } features[] = {
        { 0, 0, "dirty bit" }, { 0, 1, "corrupt bit" },
        { 0, 2, "external data file" }, { 0, 3, "compression type" },
        { 0, 4, "extended L2 entries" }, { 1, 0, "lazy refcounts" },
        { 2, 0, "bitmaps" }, { 2, 1, "raw external data" },
    };
    uint32_t need;
    size_t i;

    memset(h, 0, cs);
    qcow2_put_be32(h, QCOW2_MAGIC);
    qcow2_put_be32(h + QH_VERSION, (uint32_t)version);
    qcow2_put_be32(h + QH_CLUSTER_BITS, (uint32_t)cluster_bits);
    qcow2_put_be64(h + QH_SIZE, size);
    qcow2_put_be64(h + QH_REFTABLE_OFFSET, cs);
    qcow2_put_be32(h + QH_REFTABLE_CLUSTERS, 1);
    if (version >= 3) {
        qcow2_put_be64(h + QH_COMPAT, lazy ? QCOW2_COMPAT_LAZY_REFCOUNTS : 0);
        qcow2_put_be32(h + QH_REFCOUNT_ORDER, (uint32_t)refcount_order);
        qcow2_put_be32(h + QH_HEADER_LENGTH, hl);
    }
    if (backing_fmt) {
        size_t fl = strlen(backing_fmt);

        qcow2_put_be32(h + off, QCOW2_EXT_BACKING_FORMAT);
        qcow2_put_be32(h + off + 4, (uint32_t)fl);
        memcpy(h + off + 8, backing_fmt, fl);
        off += 8 + (uint32_t)BD_ROUND_UP(fl, 8);
    }
    /* The feature table is optional: QEMU drops it when it does not fit. */
    need = off + 8 + 48 * 8 + 8 + (uint32_t)blen;
    if (need <= cs) {
        qcow2_put_be32(h + off, QCOW2_EXT_FEATURE_TABLE);
        qcow2_put_be32(h + off + 4, 48 * 8);
        for (i = 0; i < 8; i++) {
            uint8_t *e = h + off + 8 + 48 * i;

            e[0] = features[i].type;
            e[1] = features[i].bit;
            memcpy(e + 2, features[i].name, strlen(features[i].name));
        }
        off += 8 + 48 * 8;
    }
    off += 8;   /* end of extensions */
    if (backing) {
        if (off + blen > cs || blen > QCOW2_MAX_BACKING_NAME) {
            bd_error_setg(errp, "Backing file name too long");
            return -EINVAL;
        }
        qcow2_put_be64(h + QH_BACKING_OFFSET, off);
        qcow2_put_be32(h + QH_BACKING_SIZE, (uint32_t)blen);
        memcpy(h + off, backing, blen);
    }
    return 0;
}

int qcow2_create_file(const char *filename, const struct qcow2_create_opts *o,
                      struct bd_error **errp)
{
    uint32_t cs = o->cluster_size ? o->cluster_size : 65536;
    int cluster_bits = 0;
    int refcount_order = 0;
    int version = o->version ? o->version : 3;
    uint32_t rbits = o->refcount_bits ? o->refcount_bits : 16;
    uint8_t *buf = NULL;
    struct bd_graph *g = NULL;
    struct bd_node *n = NULL;
    json_t *fo, *opts;
    uint64_t i;
    int ret;

    while ((1u << cluster_bits) < cs) {
        cluster_bits++;
    }
    if (!bd_is_power_of_2(cs) || cluster_bits < QCOW2_MIN_CLUSTER_BITS ||
        cluster_bits > QCOW2_MAX_CLUSTER_BITS) {
        bd_error_setg(errp, "Cluster size must be a power of two between "
                      "512 and 2048k");
        return -EINVAL;
    }
    if (!bd_is_power_of_2(rbits) || rbits > 64) {
        bd_error_setg(errp, "Refcount width must be a power of two and may "
                      "not exceed 64 bits");
        return -EINVAL;
    }
    while ((1u << refcount_order) < rbits) {
        refcount_order++;
    }
    if (version < 3 && rbits != 16) {
        bd_error_setg(errp, "Different refcount widths than 16 bits require "
                      "compatibility level 1.1 or above (use version=v3 or "
                      "greater)");
        return -EINVAL;
    }
    if (version < 3 && o->lazy_refcounts) {
        bd_error_setg(errp, "Lazy refcounts only supported with "
                      "compatibility level 1.1 and above (use version=v3 "
                      "or greater)");
        return -EINVAL;
    }
    if (o->backing_fmt && !o->backing_file) {
        bd_error_setg(errp, "Backing format cannot be used without backing "
                      "file");
        return -EINVAL;
    }
    if (o->size % 512) {
        bd_error_setg(errp, "Image size must be a multiple of 512 bytes");
        return -EINVAL;
    }
    fo = json_object();
    json_object_set_new(fo, "size", json_integer(0));
    ret = bd_driver_file_create(filename, fo, errp);
    json_decref(fo);
    if (ret < 0) {
        return ret;
    }
    /* Cluster 0 header, 1 refcount table, 2 first refcount block. */
    buf = bd_malloc0((size_t)cs * 3);
    ret = build_header(buf, cs, cluster_bits, version, refcount_order,
                       o->lazy_refcounts, o->backing_file, o->backing_fmt,
                       0, errp);
    if (ret < 0) {
        goto out;
    }
    qcow2_put_be64(buf + cs, 2ULL * cs);
    for (i = 0; i < 3; i++) {
        qcow2_refcount_set_entry(buf + 2 * cs, refcount_order, i, 1);
    }
    g = bd_graph_new();
    fo = json_object();
    json_object_set_new(fo, "driver", json_string("file"));
    n = bd_open(g, filename, fo, BD_O_RDWR | BD_O_PROTOCOL, errp);
    if (!n) {
        ret = -EIO;
        goto out;
    }
    {
        struct bd_qiov q;

        bd_qiov_init_buf(&q, buf, (size_t)cs * 3);
        ret = bd_node_pwritev(n, 0, (int64_t)cs * 3, &q, 0);
    }
    bd_unref(n);
    n = NULL;
    if (ret < 0) {
        bd_error_setg_errno(errp, -ret, "Could not write qcow2 header");
        goto out;
    }
    /* Open it as qcow2 and size it through the driver's own paths. */
    opts = json_object();
    json_object_set_new(opts, "driver", json_string("qcow2"));
    n = bd_open(g, filename, opts, BD_O_RDWR | BD_O_NO_BACKING, errp);
    if (!n) {
        ret = -EIO;
        goto out;
    }
    ret = qcow2_truncate(n, (int64_t)o->size, true, BD_PREALLOC_OFF, 0, errp);
    if (ret == 0 && o->prealloc != BD_PREALLOC_OFF) {
        ret = qcow2_preallocate(n, o->prealloc, errp);
    }
    if (ret == 0) {
        ret = bd_node_flush(n);
        if (ret < 0) {
            bd_error_setg_errno(errp, -ret, "Could not flush the image");
        }
    }
out:
    if (n) {
        bd_unref(n);
    }
    if (g) {
        bd_graph_free(g);
    }
    free(buf);
    return ret;
}

static int qcow2_create(const char *filename, json_t *options,
                        struct bd_error **errp)
{
    struct qcow2_create_opts o;
    uint64_t v = 0;
    char *str = NULL;
    bool b = false;
    int e = 0;
    int ret = -EINVAL;

    memset(&o, 0, sizeof(o));
    if (bd_opts_take_size(options, "size", &o.size, errp) < 0) {
        return -EINVAL;
    }
    if (bd_opts_take_size(options, "cluster_size", &v, errp) < 0) {
        return -EINVAL;
    }
    o.cluster_size = (uint32_t)(v > UINT32_MAX ? 3 : v);
    if (bd_opts_take_enum(options, "preallocation", bd_prealloc_names, &e,
                          errp) < 0) {
        return -EINVAL;
    }
    o.prealloc = (enum bd_prealloc)e;
    bd_opts_take_str(options, "backing_file", &o.backing_file);
    bd_opts_take_str(options, "backing_fmt", &o.backing_fmt);
    if (bd_opts_take_str(options, "compat", &str) > 0) {
        int k;

        for (k = 0; compat_names[k] && strcmp(compat_names[k], str); k++) {
        }
        if (!compat_names[k]) {
            bd_error_setg(errp, "Parameter 'version' does not accept value "
                          "'%s'", str);
            free(str);
            goto out;
        }
        o.version = (k % 2) ? 3 : 2;
        free(str);
    }
    if (bd_opts_take_bool(options, "lazy_refcounts", &b, errp) < 0) {
        goto out;
    }
    o.lazy_refcounts = b;
    v = 0;
    if (bd_opts_take_number(options, "refcount_bits", &v, errp) < 0) {
        goto out;
    }
    o.refcount_bits = (uint32_t)(v > 128 ? 3 : v);
    ret = qcow2_create_file(filename, &o, errp);
out:
    free(o.backing_file);
    free(o.backing_fmt);
    return ret;
}

/*
 * BlockdevOptionsQcow2, as blockdev-add validates it: every member QEMU
 * 10.0 knows, so a mistyped value gets QEMU's message before anything is
 * opened. Only file and backing are taken by qcow2_open; the others pass
 * validation and are then refused as unsupported options (docs/compat.md).
 * overlap-check (an alternate) and encrypt (a union) are checked as JSON
 * values of any shape.
 */
static const struct qapi_member qcow2_qapi_members[] = {
    { "file", &bd_qapi_blockdev_ref, false },
    { "backing", &bd_qapi_blockdev_ref_or_null, true },
    { "lazy-refcounts", &qapi_type_bool, true },
    { "pass-discard-request", &qapi_type_bool, true },
    { "pass-discard-snapshot", &qapi_type_bool, true },
    { "pass-discard-other", &qapi_type_bool, true },
    { "discard-no-unref", &qapi_type_bool, true },
    { "overlap-check", &qapi_type_any, true },
    { "cache-size", &qapi_type_int, true },
    { "l2-cache-size", &qapi_type_int, true },
    { "l2-cache-entry-size", &qapi_type_int, true },
    { "refcount-cache-size", &qapi_type_int, true },
    { "cache-clean-interval", &qapi_type_int, true },
    { "encrypt", &qapi_type_any, true },
    { "data-file", &bd_qapi_blockdev_ref, true },
    { NULL, NULL, false },
};
static const struct qapi_type qcow2_qapi_options = {
    .kind = QAPI_STRUCT, .name = "BlockdevOptionsQcow2",
    .members = qcow2_qapi_members,
};

static const struct bd_driver qcow2_driver = {
    .struct_size = sizeof(struct bd_driver),
    .name = "qcow2",
    .qapi_options = &qcow2_qapi_options,
    .is_format = true,
    .supports_backing = true,
    .instance_size = sizeof(struct qcow2_state),
    .probe = qcow2_probe,
    .open = qcow2_open,
    .close = qcow2_close,
    .refresh_limits = qcow2_refresh_limits,
    .getlength = qcow2_getlength,
    .preadv = qcow2_preadv,
    .pwritev = qcow2_pwritev,
    .pwrite_zeroes = qcow2_pwrite_zeroes,
    .pdiscard = qcow2_pdiscard,
    .flush_to_os = qcow2_flush_to_os,
    .block_status = qcow2_block_status,
    .truncate = qcow2_truncate,
    .get_info = qcow2_get_info,
    .create = qcow2_create,
    .has_zero_init = qcow2_has_zero_init,
};

BD_DRIVER_EXPORT(qcow2_driver, bd_driver_qcow2)

/* ------------------------------------------------------------------ */
/* Public helpers (driver/qcow2.h)                                      */

bool qcow2_is_node(const struct bd_node *n)
{
    return n && n->drv == &qcow2_driver;
}

int qcow2_node_check(struct bd_node *n, struct qcow2_check_result *res,
                     int fix)
{
    if (!qcow2_is_node(n)) {
        return -ENOTSUP;
    }
    return qcow2_check(n, res, fix);
}

const char *qcow2_node_backing_file(struct bd_node *n)
{
    struct qcow2_state *s;

    if (!qcow2_is_node(n)) {
        return NULL;
    }
    s = n->opaque;
    return s->backing_file;
}

const char *qcow2_node_backing_format(struct bd_node *n)
{
    struct qcow2_state *s;

    if (!qcow2_is_node(n)) {
        return NULL;
    }
    s = n->opaque;
    return s->backing_format;
}

int qcow2_node_compressed_at(struct bd_node *n, uint64_t off, uint64_t bytes,
                             uint64_t *count)
{
    struct qcow2_state *s;
    uint64_t l2e;
    int ret;

    if (!qcow2_is_node(n)) {
        *count = bytes;
        return 0;
    }
    s = n->opaque;
    pthread_mutex_lock(&s->lock);
    ret = qcow2_get_host_offset(n, off, bytes, count, &l2e);
    pthread_mutex_unlock(&s->lock);
    if (ret < 0) {
        return ret;
    }
    return qcow2_get_cluster_type(s, l2e) == QCOW2_CLUSTER_COMPRESSED;
}
