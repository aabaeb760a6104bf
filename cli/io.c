/*
 * cli/io.c - `blkrig io`: qemu-io compatible command line, image opening
 * and the command loop. The commands themselves live in cli/io-cmds.c.
 *
 * The program calls itself "qemu-io" in messages when it was started under
 * that name (a symlink), "blkrig io" otherwise, so that scripts filtering
 * "qemu-io:" prefixes work either way.
 */
#include "common/config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/io-int.h"
#include "cli/verbs.h"
#include "common/cutils.h"
#include "common/opts.h"

/* ------------------------------------------------------------------ */
/* Context                                                              */

void io_ctx_init(struct io_ctx *ctx, const char *prog)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->prog = prog;
    ctx->graph = bd_graph_new();
    pthread_mutex_init(&ctx->aio_lock, NULL);
    pthread_cond_init(&ctx->aio_cond, NULL);
}

void io_ctx_destroy(struct io_ctx *ctx)
{
    io_close_image(ctx);
    bd_graph_free(ctx->graph);
    ctx->graph = NULL;
    while (ctx->n_bp_tags > 0) {
        free(ctx->bp_tags[--ctx->n_bp_tags]);
    }
    free(ctx->bp_tags);
    ctx->bp_tags = NULL;
    pthread_cond_destroy(&ctx->aio_cond);
    pthread_mutex_destroy(&ctx->aio_lock);
}

/* ------------------------------------------------------------------ */
/* Modes                                                                */

int io_parse_cache(const char *mode, int *flags, bool *writethrough)
{
    int f = *flags & ~(BD_O_NOCACHE | BD_O_NO_FLUSH);
    bool wt;

    if (!strcmp(mode, "off") || !strcmp(mode, "none")) {
        f |= BD_O_NOCACHE;
        wt = false;
    } else if (!strcmp(mode, "directsync")) {
        f |= BD_O_NOCACHE;
        wt = true;
    } else if (!strcmp(mode, "writeback")) {
        wt = false;
    } else if (!strcmp(mode, "unsafe")) {
        f |= BD_O_NO_FLUSH;
        wt = false;
    } else if (!strcmp(mode, "writethrough")) {
        wt = true;
    } else {
        return -EINVAL;
    }
    *flags = f;
    *writethrough = wt;
    return 0;
}

int io_parse_aio(const char *mode, int *flags)
{
    if (!strcmp(mode, "threads")) {
        *flags &= ~BD_O_NATIVE_AIO;
    } else if (!strcmp(mode, "native")) {
        *flags |= BD_O_NATIVE_AIO;
    } else {
        /* io_uring is not built in: refuse it like an unknown mode. */
        return -EINVAL;
    }
    return 0;
}

int io_parse_discard(const char *mode, int *flags)
{
    if (!strcmp(mode, "off") || !strcmp(mode, "ignore")) {
        *flags &= ~BD_O_UNMAP;
    } else if (!strcmp(mode, "on") || !strcmp(mode, "unmap")) {
        *flags |= BD_O_UNMAP;
    } else {
        return -EINVAL;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Opening                                                              */

int io_open_image(struct io_ctx *ctx, struct io_open_args *a)
{
    struct bd_error *err = NULL;
    struct bd_node *n = NULL;
    struct bd_blk *b = NULL;
    json_t *opts = a->opts;
    const char *filename = a->filename;
    int flags = a->flags;
    uint64_t perm;

    a->opts = NULL;
    if (ctx->blk) {
        fprintf(stderr, "%s: file open already, try 'help close'\n",
                ctx->prog);
        json_decref(opts);
        return -EBUSY;
    }
    if (!opts) {
        opts = json_object();
    }
    if (a->read_only) {
        flags &= ~BD_O_RDWR;
    } else {
        flags |= BD_O_RDWR;
    }
    if (a->force_share) {
        flags |= BD_O_FORCE_SHARE;
    }
    if (a->force_share && !a->read_only) {
        /* Sharing write permission with another writer would let both
         * corrupt the image; the block layer refuses it as QEMU's does. */
        bd_error_setg(&err, "force-share=on can only be used with "
                      "read-only images");
        json_decref(opts);
        n = NULL;
    } else {
        n = bd_open(ctx->graph, filename, opts, flags, &err);
    }
    if (!n) {
        char *prefix = filename
            ? bd_strdup_printf("%s: can't open device %s", ctx->prog, filename)
            : bd_strdup_printf("%s: can't open", ctx->prog);

        bd_error_report_err(prefix, err);
        free(prefix);
        return -EINVAL;
    }
    /* Like qemu-io: read (and write when opened so) up front; commands
     * that need more (truncate) ask for it when they run. */
    perm = BD_PERM_CONSISTENT_READ;
    if (!bd_is_read_only(n)) {
        perm |= BD_PERM_WRITE;
    }
    b = bd_blk_new(ctx->graph, NULL, perm, BD_PERM_ALL);
    if (bd_blk_insert(b, n, &err) < 0) {
        char *prefix = filename
            ? bd_strdup_printf("%s: can't open device %s", ctx->prog, filename)
            : bd_strdup_printf("%s: can't open", ctx->prog);

        bd_error_report_err(prefix, err);
        free(prefix);
        bd_blk_free(b);
        bd_unref(n);
        return -EINVAL;
    }
    bd_unref(n);
    bd_blk_set_write_cache(b, !a->writethrough);
    ctx->blk = b;
    ctx->perm = perm;
    return 0;
}

void io_close_image(struct io_ctx *ctx)
{
    io_aio_poll(ctx, true);
    if (ctx->blk) {
        bd_blk_remove(ctx->blk);
        bd_blk_free(ctx->blk);
        ctx->blk = NULL;
    }
}

/* ------------------------------------------------------------------ */
/* Command line                                                         */

static void usage(const char *prog, FILE *f)
{
    fprintf(f,
"Usage: %s [OPTIONS]... [-c STRING]... [file]\n"
"Run qemu-io compatible I/O commands on a disk image.\n"
"\n"
"  --image-opts         the file argument is an option string\n"
"                       (driver=raw,file.filename=a.img,...)\n"
"  -c, --cmd STRING     run STRING as a command (repeatable); without -c\n"
"                       commands are read from standard input\n"
"  -f, --format FMT     use the block driver FMT (no probing)\n"
"  -o, --options OPTS   extra key=value options for the image\n"
"  -r, --read-only      open the image read-only\n"
"  -n, --nocache        bypass the host cache (same as -t none)\n"
"  -i, --aio=MODE       I/O mode of the file driver (threads, native)\n"
"  -t, --cache=MODE     cache mode: none, writeback, writethrough,\n"
"                       directsync, unsafe\n"
"  -d, --discard=MODE   discard mode: ignore/off, unmap/on\n"
"  -U, --force-share    take no locks, share every permission\n"
"  -T, --trace SPEC     accepted for compatibility, ignored\n"
"  -h, --help           print this help and exit\n"
"  -V, --version        print the version and exit\n"
"\n"
"Run '%s -c help' for the list of commands.\n", prog, prog);
}

static const char *prog_name(void)
{
    /* A qemu-io symlink to blkrig keeps qemu-io's message prefix. */
    if (program_invocation_short_name &&
        !strcmp(program_invocation_short_name, "qemu-io")) {
        return "qemu-io";
    }
    return "blkrig io";
}

static int command_loop(struct io_ctx *ctx, char **cmds, int ncmds)
{
    int last_error = 0;
    int i;

    if (ncmds > 0) {
        for (i = 0; i < ncmds && !ctx->quit; i++) {
            int ret = io_command(ctx, cmds[i]);

            if (ret < 0) {
                last_error = ret;
            }
        }
        return last_error;
    }
    for (;;) {
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        int ret;

        printf("qemu-io> ");
        fflush(stdout);
        len = getline(&line, &cap, stdin);
        if (len < 0) {
            free(line);
            break;
        }
        if (len > 0 && line[len - 1] == '\n') {
            line[len - 1] = '\0';
        }
        ret = io_command(ctx, line);
        free(line);
        if (ret < 0) {
            last_error = ret;
        }
        fflush(stdout);
        if (ctx->quit) {
            break;
        }
    }
    return last_error;
}

enum {
    OPT_IMAGE_OPTS = 256,
    OPT_OBJECT,
};

int verb_io(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { "cmd", required_argument, NULL, 'c' },
        { "format", required_argument, NULL, 'f' },
        { "options", required_argument, NULL, 'o' },
        { "read-only", no_argument, NULL, 'r' },
        { "nocache", no_argument, NULL, 'n' },
        { "aio", required_argument, NULL, 'i' },
        { "native-aio", no_argument, NULL, 'k' },
        { "cache", required_argument, NULL, 't' },
        { "discard", required_argument, NULL, 'd' },
        { "trace", required_argument, NULL, 'T' },
        { "force-share", no_argument, NULL, 'U' },
        { "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
        { "object", required_argument, NULL, OPT_OBJECT },
        { NULL, 0, NULL, 0 },
    };
    const char *prog = prog_name();
    struct io_open_args oa;
    struct io_ctx ctx;
    struct bd_error *err = NULL;
    const char *format = NULL;
    const char *extra_opts = NULL;
    char **cmds = NULL;
    int ncmds = 0;
    int ret = 0;
    int c;

    memset(&oa, 0, sizeof(oa));
    oa.writethrough = true;          /* qemu-io's default cache mode */
    oa.flags = BD_O_UNMAP;
    /* getopt prints "<argv[0]>: invalid option": make that the program. */
    argv[0] = (char *)prog;
    optind = 0;
    while ((c = getopt_long(argc, argv, "hVc:f:o:rnki:t:d:T:U", longopts,
                            NULL)) != -1) {
        switch (c) {
        case 'h':
            usage(prog, stdout);
            free(cmds);
            return 0;
        case 'V':
            printf("%s version %s (qemu-io %d.%d.%d compatible)\n", prog,
                   BLKRIG_VERSION, BLKRIG_QEMU_COMPAT_MAJOR,
                   BLKRIG_QEMU_COMPAT_MINOR, BLKRIG_QEMU_COMPAT_MICRO);
            free(cmds);
            return 0;
        case 'c':
            cmds = bd_realloc(cmds, sizeof(*cmds) * (size_t)(ncmds + 1));
            cmds[ncmds++] = optarg;
            break;
        case 'f':
            format = optarg;
            break;
        case 'o':
            extra_opts = optarg;
            break;
        case 'r':
            oa.read_only = true;
            break;
        case 'n':
            oa.flags |= BD_O_NOCACHE;
            oa.writethrough = false;
            break;
        case 'k':
            oa.flags |= BD_O_NATIVE_AIO;
            break;
        case 'i':
            if (io_parse_aio(optarg, &oa.flags) < 0) {
                fprintf(stderr, "%s: Invalid aio option: %s\n", prog, optarg);
                free(cmds);
                return 1;
            }
            break;
        case 't':
            if (io_parse_cache(optarg, &oa.flags, &oa.writethrough) < 0) {
                fprintf(stderr, "%s: Invalid cache option: %s\n", prog,
                        optarg);
                free(cmds);
                return 1;
            }
            break;
        case 'd':
            if (io_parse_discard(optarg, &oa.flags) < 0) {
                fprintf(stderr, "%s: Invalid discard option: %s\n", prog,
                        optarg);
                free(cmds);
                return 1;
            }
            break;
        case 'T':
        case OPT_OBJECT:
            /* Tracing and QOM objects: accepted so command lines written
             * for qemu-io run unchanged; there is nothing to configure. */
            break;
        case 'U':
            oa.force_share = true;
            break;
        case OPT_IMAGE_OPTS:
            oa.image_opts = true;
            break;
        default:
            usage(prog, stdout);
            free(cmds);
            return 1;
        }
    }
    if (argc - optind > 1) {
        usage(prog, stdout);
        free(cmds);
        return 1;
    }
    if (oa.image_opts && format) {
        fprintf(stderr, "%s: --image-opts and -f are mutually exclusive\n",
                prog);
        free(cmds);
        return 1;
    }

    io_ctx_init(&ctx, prog);
    if (optind < argc) {
        if (oa.image_opts) {
            oa.opts = bd_opts_parse(argv[optind], NULL, &err);
            oa.filename = NULL;
        } else {
            oa.opts = json_object();
            oa.filename = argv[optind];
            if (format) {
                json_object_set_new(oa.opts, "driver", json_string(format));
            }
        }
        if (oa.opts && extra_opts) {
            json_t *more = bd_opts_parse(extra_opts, NULL, &err);

            if (more) {
                json_object_update(oa.opts, more);
                json_decref(more);
            } else {
                json_decref(oa.opts);
                oa.opts = NULL;
            }
        }
        if (!oa.opts) {
            bd_error_report_err(prog, err);
            io_ctx_destroy(&ctx);
            free(cmds);
            return 1;
        }
        if (io_open_image(&ctx, &oa) < 0) {
            io_ctx_destroy(&ctx);
            free(cmds);
            return 1;
        }
    }
    ret = command_loop(&ctx, cmds, ncmds);
    io_ctx_destroy(&ctx);
    fflush(stdout);
    free(cmds);
    return ret < 0 ? 1 : 0;
}
