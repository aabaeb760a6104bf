/*
 * monitor/json-stream.h - QMP input framing: split a byte stream into JSON
 * values the way QEMU's JSON streamer does (by bracket balance, not by
 * line), with QEMU's single-quoted string extension and its limits.
 *
 * Each complete value is handed to the callback either parsed (msg) or as
 * an error with QEMU's "JSON parse error, ..." wording (err); the callback
 * owns both and returns non-zero to stop (the rest of the chunk is
 * dropped). After an error the splitter skips to the next newline, so one
 * bad line costs one error reply.
 *
 * Not thread-safe: one splitter per client.
 */
#ifndef BLKRIG_JSON_STREAM_H
#define BLKRIG_JSON_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#include "common/error.h"

/* QEMU's json-streamer limits. */
#define QMP_MAX_NESTING 1024
#define QMP_MAX_MESSAGE (64u << 20)

struct qmp_splitter {
    char *buf;
    size_t len, cap;
    int depth;
    char quote;         /* '"' or '\'' inside a string, else 0 */
    bool esc;           /* previous char was a backslash (in a string) */
    bool scalar;        /* a bare token at depth 0 is being collected */
    bool recovering;    /* skipping to the next newline after an error */
};

typedef int qmp_split_fn(void *opaque, json_t *msg, struct bd_error *err);

void qmp_splitter_init(struct qmp_splitter *sp);
void qmp_splitter_destroy(struct qmp_splitter *sp);
/* Returns non-zero if the callback asked to stop. */
int qmp_splitter_feed(struct qmp_splitter *sp, const char *data, size_t len,
                      qmp_split_fn *fn, void *opaque);

#endif
