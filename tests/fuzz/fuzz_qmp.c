/*
 * tests/fuzz/fuzz_qmp.c - fuzz target for the QMP input path: framing
 * (json-stream), the dispatcher's envelope checks, argument validation,
 * the control and block command handlers, and the QAPI validator in both
 * JSON and keyval modes.
 *
 * Two ways to run it:
 *  - LLVMFuzzerTestOneInput is the libFuzzer entry point (build with
 *    -DBLKRIG_LIBFUZZER and -fsanitize=fuzzer to explore freely);
 *  - without libFuzzer, main() runs a bounded, seeded mutation loop over
 *    built-in seed messages (check-fuzz-qmp runs it under ASan/UBSan), or
 *    replays the files named on the command line.
 *
 *   fuzz_qmp [-n ITERATIONS] [-s SEED] [FILE...]
 *
 * Inputs never touch the host: requests that name the file driver are
 * validated but not executed.
 */
#include "common/config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cutils.h"
#include "common/opts.h"
#include "common/qapi.h"
#include "common/rng.h"
#include "driver/block-int.h"
#include "monitor/json-stream.h"
#include "monitor/monitor-int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct run {
    struct qmp_context ctx;
    struct qmp_session sess;
    int messages;
};

/* True if some string in v is "file" (the driver that opens host paths). */
static bool mentions_file_driver(json_t *v)
{
    const char *key;
    json_t *el;
    size_t i;

    if (json_is_string(v)) {
        return !strcmp(json_string_value(v), "file");
    }
    if (json_is_object(v)) {
        json_object_foreach(v, key, el) {
            if (mentions_file_driver(el)) {
                return true;
            }
        }
    }
    if (json_is_array(v)) {
        json_array_foreach(v, i, el) {
            if (mentions_file_driver(el)) {
                return true;
            }
        }
    }
    return false;
}

/* Every scalar as a string: what keyval syntax would have produced. */
static json_t *stringify(json_t *v)
{
    const char *key;
    json_t *el;
    json_t *out;
    size_t i;
    char *s;

    if (json_is_object(v)) {
        out = json_object();
        json_object_foreach(v, key, el) {
            json_object_set_new(out, key, stringify(el));
        }
        return out;
    }
    if (json_is_array(v)) {
        out = json_array();
        json_array_foreach(v, i, el) {
            json_array_append_new(out, stringify(el));
        }
        return out;
    }
    s = bd_opts_scalar_string(v);
    out = json_string(s ? s : "");
    free(s);
    return out;
}

static void exercise_validator(json_t *v)
{
    struct bd_error *err = NULL;
    json_t *kv = NULL;
    json_t *conv = NULL;

    qapi_validate(&bd_qapi_blockdev_options, v, false, &err);
    bd_error_free(err);
    err = NULL;
    kv = stringify(v);
    qapi_validate(&bd_qapi_blockdev_options, kv, true, &err);
    bd_error_free(err);
    err = NULL;
    conv = qapi_keyval_to_json(&bd_qapi_blockdev_options, kv, &err);
    bd_error_free(err);
    json_decref(conv);
    json_decref(kv);
}

static int on_message(void *opaque, json_t *msg, struct bd_error *err)
{
    struct run *r = opaque;
    json_t *reply = NULL;
    char *text = NULL;

    if (err) {
        bd_error_free(err);
        return 0;
    }
    /* Bound the work one input can cause (nodes, replies). */
    if (++r->messages > 64) {
        json_decref(msg);
        return 1;
    }
    exercise_validator(json_object_get(msg, "arguments") ?
                       json_object_get(msg, "arguments") : msg);
    if (!mentions_file_driver(msg)) {
        reply = qmp_handle_request(&r->ctx, &r->sess, msg);
        text = json_dumps(reply, JSON_ENSURE_ASCII);
        if (!text || !(json_object_get(reply, "return") ||
                       json_object_get(reply, "error"))) {
            abort();   /* every request gets a return or an error */
        }
        free(text);
        json_decref(reply);
    }
    json_decref(msg);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct run r;
    struct qmp_splitter sp;
    size_t cut;

    memset(&r, 0, sizeof(r));
    r.ctx.graph = bd_graph_new();
    /* The first byte picks the negotiation state and where the input is
     * split into two reads, so partial messages are exercised too. */
    r.sess.negotiated = size > 0 && (data[0] & 1);
    cut = size > 1 ? data[1] % size : 0;
    qmp_splitter_init(&sp);
    if (!qmp_splitter_feed(&sp, (const char *)data, cut, on_message, &r)) {
        qmp_splitter_feed(&sp, (const char *)data + cut, size - cut,
                          on_message, &r);
    }
    qmp_splitter_destroy(&sp);
    bd_graph_free(r.ctx.graph);
    return 0;
}

#ifndef BLKRIG_LIBFUZZER

static const char *const seeds[] = {
    "\x01\x00{\"execute\":\"qmp_capabilities\"}\n",
    "\x01\x05{\"execute\":\"query-version\",\"id\":1}\n",
    "\x01\x00{\"execute\":\"query-commands\"} {\"execute\":\"query-version\"}",
    "\x00\x00{\"execute\":\"qmp_capabilities\",\"arguments\":"
    "{\"enable\":[\"oob\"]}}\n{\"exec-oob\":\"query-version\"}\n",
    "\x01\x09{\"execute\":\"blockdev-add\",\"arguments\":{\"driver\":"
    "\"null-co\",\"node-name\":\"n\",\"size\":4096,\"read-zeroes\":true,"
    "\"cache\":{\"direct\":false}}}\n{\"execute\":\"query-named-block-nodes\""
    "}\n",
    "\x01\x00{\"execute\":\"blockdev-add\",\"arguments\":{\"driver\":\"raw\","
    "\"node-name\":\"r\",\"file\":{\"driver\":\"null-aio\",\"latency-ns\":1},"
    "\"offset\":512,\"size\":1024,\"detect-zeroes\":\"on\"}}\n"
    "{\"execute\":\"blockdev-del\",\"arguments\":{\"node-name\":\"r\"}}\n",
    "\x01\x00{\"execute\":\"query-blockstats\",\"arguments\":"
    "{\"query-nodes\":true}}\n",
    "\x01\x00{\"execute\":\"block-latency-histogram-set\",\"arguments\":"
    "{\"id\":\"x\",\"boundaries\":[10,20,30]}}\n",
    "\x00\x03{'execute': 'qmp_capabilities', 'id': 'it\\'s'}\n",
    "\x01\x00[[[[{\"a\":[1,2,{\"b\":null}]}]]]]\n garbage 1 -2.5e3 }\n",
    "\x01\x00{\"execute\":\"blockdev-add\",\"arguments\":{\"driver\":"
    "\"null-co\",\"node-name\":\"n\",\"cache\":{\"no-flush\":\"x\"},"
    "\"bogus\":[{}]}}\n",
};

static const char *const tokens[] = {
    "{", "}", "[", "]", "\"", "'", "\\", ":", ",", "\n", "null", "true",
    "-1", "1e999", "18446744073709551616", "\\u0000", "\\ud800",
    "\"execute\"", "\"arguments\"", "\"id\"", "\"driver\"", "\"raw\"",
    "\"null-co\"", "\"blockdev-add\"", "\"node-name\"", "\"file\":",
    "[[[[[[[[[[[[[[[[", "\xff", "\xc3\xa9",
};

static size_t mutate(struct bd_rng *rng, char *buf, size_t len, size_t cap)
{
    int n = 1 + (int)(bd_rng_next(rng) % 4);

    while (n-- > 0) {
        uint64_t op = bd_rng_next(rng) % 5;
        size_t pos = len ? bd_rng_next(rng) % len : 0;

        if (op == 0 && len) {                       /* flip a bit */
            buf[pos] ^= (char)(1u << (bd_rng_next(rng) % 8));
        } else if (op == 1 && len) {                /* delete a run */
            size_t k = 1 + bd_rng_next(rng) % 8;

            k = k > len - pos ? len - pos : k;
            memmove(buf + pos, buf + pos + k, len - pos - k);
            len -= k;
        } else if (op == 2) {                       /* insert a token */
            const char *t = tokens[bd_rng_next(rng) %
                                   (sizeof(tokens) / sizeof(tokens[0]))];
            size_t k = strlen(t);

            if (len + k < cap) {
                memmove(buf + pos + k, buf + pos, len - pos);
                memcpy(buf + pos, t, k);
                len += k;
            }
        } else if (op == 3 && len) {                /* duplicate a chunk */
            size_t k = 1 + bd_rng_next(rng) % 32;

            k = k > len - pos ? len - pos : k;
            if (len + k < cap) {
                memmove(buf + pos + k, buf + pos, len - pos);
                len += k;
            }
        } else if (len) {                           /* random byte */
            buf[pos] = (char)(bd_rng_next(rng) & 0xff);
        }
    }
    return len;
}

static int replay(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long len;

    if (!f) {
        perror(path);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = bd_malloc(len > 0 ? (size_t)len : 1);
    if (len > 0 && fread(buf, 1, (size_t)len, f) != (size_t)len) {
        perror(path);
        fclose(f);
        free(buf);
        return 1;
    }
    fclose(f);
    LLVMFuzzerTestOneInput((const uint8_t *)buf, len > 0 ? (size_t)len : 0);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    enum { CAP = 8192 };
    const size_t nseeds = sizeof(seeds) / sizeof(seeds[0]);
    long iterations = 10000;
    uint64_t seed = 1;
    struct bd_rng rng;
    char *buf = bd_malloc(CAP);
    int i;
    long it;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc) {
            iterations = atol(argv[++i]);
        } else if (!strcmp(argv[i], "-s") && i + 1 < argc) {
            seed = strtoull(argv[++i], NULL, 0);
        } else {
            int rc = replay(argv[i]);

            if (rc) {
                free(buf);
                return rc;
            }
            if (i == argc - 1) {
                free(buf);
                return 0;
            }
        }
    }
    bd_rng_seed(&rng, seed);
    for (it = 0; it < iterations; it++) {
        const char *s = seeds[it % (long)nseeds];
        size_t len = strlen(s + 2) + 2;   /* seeds start with two raw bytes */

        memcpy(buf, s, len);
        if (it >= (long)nseeds) {
            len = mutate(&rng, buf, len, CAP);
        }
        LLVMFuzzerTestOneInput((const uint8_t *)buf, len);
    }
    printf("fuzz_qmp: %ld inputs (seed %llu), no failure\n", iterations,
           (unsigned long long)seed);
    free(buf);
    return 0;
}

#endif
