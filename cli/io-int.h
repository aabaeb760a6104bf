/*
 * cli/io-int.h - internals of `blkrig io` shared by cli/io.c (options,
 * opening, the command loop) and cli/io-cmds.c (the command table).
 *
 * Contract:
 *  - One struct io_ctx per invocation; it owns the graph and the backend of
 *    the open image (blk NULL when no image is open).
 *  - io_command() runs one command line and returns 0 or a negative errno;
 *    the caller turns any failure into exit status 1, as qemu-io 10.0 does.
 *  - Asynchronous requests (aio_read/aio_write) run on worker threads. Their
 *    results are printed only by the main thread, at the points where
 *    qemu-io runs its event loop (I/O commands, aio_flush, sleep,
 *    wait_break, close, exit), in submission order, so output is
 *    deterministic for a given completion state. Waiting for them resumes
 *    a request left suspended at a breakpoint (with a warning) instead of
 *    hanging.
 *  - All output goes through stdout/stderr with qemu-io's stream choices.
 */
#ifndef BLKRIG_IO_INT_H
#define BLKRIG_IO_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/error.h"
#include "driver/block.h"

struct io_aio;

struct io_ctx {
    const char *prog;            /* "qemu-io" or "blkrig io" */
    struct bd_graph *graph;
    struct bd_blk *blk;          /* NULL: no image open */
    uint64_t perm;               /* permissions blk holds */
    bool quit;

    /* aio bookkeeping: the list is in submission order. */
    pthread_mutex_t aio_lock;
    pthread_cond_t aio_cond;
    struct io_aio *aio_head;
    struct io_aio *aio_tail;

    /* Tags of `break` commands (main thread only). */
    char **bp_tags;
    int n_bp_tags;
};

/* How an image is opened (command line or the `open` command). */
struct io_open_args {
    const char *filename;        /* may be NULL with options */
    json_t *opts;                /* flat options, consumed; may be NULL */
    bool read_only;
    bool force_share;
    bool writethrough;           /* cache mode without write cache */
    bool image_opts;             /* filename is a key=value option string */
    int flags;                   /* extra BD_O_* flags (cache, aio, discard) */
};

void io_ctx_init(struct io_ctx *ctx, const char *prog);
/* Close the image (draining aio) and free the graph. */
void io_ctx_destroy(struct io_ctx *ctx);

/* Open an image as qemu-io's command line and `open` do; prints errors
 * ("<prog>: can't open device ...") itself. Returns 0 or -errno. */
int io_open_image(struct io_ctx *ctx, struct io_open_args *a);
/* Wait for every aio request and print their results; close the image. */
void io_close_image(struct io_ctx *ctx);

/*
 * Cache and aio modes as qemu-io -t / -i spell them. Return 0 and update
 * *flags (and *writethrough for -t), or -EINVAL for an unknown name.
 */
int io_parse_cache(const char *mode, int *flags, bool *writethrough);
int io_parse_aio(const char *mode, int *flags);
int io_parse_discard(const char *mode, int *flags);

/* Split a command line at spaces (empty words dropped, like qemu-io).
 * Returns a NULL-terminated vector pointing into buf. */
char **io_breakline(char *buf, int *argc);
int io_command(struct io_ctx *ctx, const char *line);

/* aio: print finished results (all when wait is true, after waiting). */
void io_aio_poll(struct io_ctx *ctx, bool wait);
/* aio: has some submitted request not finished yet? */
bool io_aio_pending(struct io_ctx *ctx);

#endif
