/*
 * tests/fuzz/fuzz_blkdebug_config.c - a self-contained fuzz driver (no
 * libFuzzer needed) for blkdebug's config-file dialect and inline rule
 * options. It mutates a corpus of valid and tricky inputs with a seeded
 * generator and feeds each result to the parsers and the rule loader,
 * then exercises the loaded engine with events and requests. Run it under
 * the sanitizers: a crash, a leak or a hang is the failure.
 *
 *   fuzz_blkdebug_config [-n ITERATIONS] [-s SEED] [FILE...]
 * With files, each file is one input (reproducing a finding); otherwise
 * ITERATIONS random inputs from SEED.
 */
#include "common/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cutils.h"
#include "common/opts.h"
#include "common/rng.h"
#include "injector/injector.h"

static const char *const corpus[] = {
    "[inject-error]\nevent = \"read_aio\"\nerrno = \"28\"\nonce = \"on\"\n",
    "[set-state]\nevent = \"write_aio\"\nstate = \"1\"\nnew_state = \"2\"\n"
    "[inject-error]\nevent = \"read_aio\"\nstate = \"2\"\n",
    "# comment\n\n[inject-error \"r1\"]\n  event  =  \"none\"\n"
    "sector = \"0x8\"\nlength = \"4\"\niotype = \"write\"\n",
    "[inject-error]\nevent = \"none\"\nsectors = \"1;3-4;100+2\"\n"
    "probability = \"0.5\"\nskip = \"1\"\ncount = \"2\"\n",
    "[inject-error]\nevent = \"none\"\ncorrupt = \"3\"\n[inject-error]\n"
    "event = \"none\"\ntorn = \"100\"\n[inject-error]\nevent = \"none\"\n"
    "lost = \"on\"\n[inject-error]\nevent = \"none\"\ndelay-ns = \"1\"\n",
    "[inject-error\nevent = read_aio\n   \ngarbage\nerrno=\"7\"\n",
    "[inject-error \"a\"]\n[inject-error \"a\"]\n[set-state]\n",
};

static const char *const opt_corpus[] = {
    "inject-error.event=read_aio,inject-error.errno=28",
    "inject-error.0.event=none,inject-error.0.sector=8,"
    "inject-error.1.event=pwritev,inject-error.1.iotype=write",
    "set-state.0.event=write_aio,set-state.0.new_state=2,"
    "inject-error.event=read_aio,inject-error.state=2",
    "inject-error.event=read_aio,inject-error.0.event=x,inject-error.1=y",
    "inject-error.0.event=none,inject-error.0.sectors=0-7,"
    "inject-error.0.probability=0.25",
};

static const char *const tokens[] = {
    "[", "]", "\"", "=", " ", "\n", "#", "inject-error", "set-state",
    "event", "errno", "sector", "sectors", "state", "new_state", "once",
    "iotype", "none", "read_aio", "write_aio", "pwritev", "0x", "-1",
    "18446744073709551615", "on", "off", "1.5", "0.5", ".", ",", ",,",
    "0.", "1.", "length", "torn", "lost", "corrupt", "delay-ns", "skip",
    "count", "probability", "\t", "-", "+", ";", "\0",
};

#define NTOK (sizeof(tokens) / sizeof(tokens[0]))

static size_t mutate(struct bd_rng *r, const char *seed, char *out,
                     size_t cap)
{
    size_t len = strlen(seed);
    int rounds = 1 + (int)(bd_rng_next(r) % 8);
    int i;

    if (len >= cap) {
        len = cap - 1;
    }
    memcpy(out, seed, len);
    for (i = 0; i < rounds; i++) {
        uint64_t op = bd_rng_next(r) % 5;
        size_t pos = len ? (size_t)(bd_rng_next(r) % (len + 1)) : 0;

        if (op == 0 && len) {                   /* flip a byte */
            out[pos % len] = (char)bd_rng_next(r);
        } else if (op == 1 && len) {            /* delete a span */
            size_t n = (size_t)(bd_rng_next(r) % 16);

            if (pos + n > len) {
                n = len - pos;
            }
            memmove(out + pos, out + pos + n, len - pos - n);
            len -= n;
        } else {                                /* insert a token */
            const char *t = tokens[bd_rng_next(r) % NTOK];
            size_t n = strlen(t) ? strlen(t) : 1;

            if (len + n >= cap) {
                continue;
            }
            memmove(out + pos + n, out + pos, len - pos);
            memcpy(out + pos, t, n);
            len += n;
        }
    }
    /* Sometimes a line longer than the reader's buffer. */
    if (bd_rng_next(r) % 50 == 0 && len + 1500 < cap) {
        memset(out + len, 'x', 1500);
        len += 1500;
    }
    out[len] = '\0';
    return len;
}

/* Load what parsed and drive the engine a little. */
static void exercise(struct inj *inj, struct bd_rng *r)
{
    struct inj_verdict v;
    int i;
    json_t *q;

    for (i = 0; i < 8; i++) {
        inj_event(inj, (enum bd_event)(bd_rng_next(r) % BD_EV__MAX));
        inj_check(inj, (int)(bd_rng_next(r) % BD_IOTYPE__MAX),
                  (int64_t)(bd_rng_next(r) % (1 << 20)),
                  (int64_t)(bd_rng_next(r) % 65536), &v);
    }
    q = inj_query(inj);
    json_decref(q);
}

static void one_config(const char *data, size_t len, struct bd_rng *r)
{
    FILE *f = fmemopen((void *)data, len ? len : 1, "r");
    json_t *sections = json_array();
    struct bd_error *err = NULL;

    if (!f) {
        json_decref(sections);
        return;
    }
    if (inj_config_parse(f, sections, &err) < 0) {
        bd_error_free(err);
    }
    fclose(f);
    json_decref(sections);

    /* The same bytes through the file path of the loader. */
    {
        char path[] = "/tmp/fuzz_blkdebug.XXXXXX";
        int fd = mkstemp(path);
        struct inj *inj = inj_new("fuzz");

        if (fd >= 0) {
            if (write(fd, data, len) == (ssize_t)len) {
                err = NULL;
                if (inj_load(inj, path, NULL, &err) < 0) {
                    bd_error_free(err);
                } else {
                    exercise(inj, r);
                }
            }
            close(fd);
            unlink(path);
        }
        inj_free(inj);
    }
}

static void one_options(const char *data, struct bd_rng *r)
{
    struct bd_error *err = NULL;
    json_t *o = bd_opts_parse(data, NULL, &err);
    struct inj *inj;

    if (!o) {
        bd_error_free(err);
        return;
    }
    inj = inj_new("fuzz");
    if (inj_load(inj, NULL, o, &err) < 0) {
        bd_error_free(err);
    } else {
        exercise(inj, r);
    }
    inj_free(inj);
    json_decref(o);
}

int main(int argc, char **argv)
{
    unsigned long iters = 2000;
    unsigned long seed = 1;
    struct bd_rng r;
    static char buf[8192];
    unsigned long i;
    int c;

    while ((c = getopt(argc, argv, "n:s:")) != -1) {
        if (c == 'n') {
            iters = strtoul(optarg, NULL, 0);
        } else if (c == 's') {
            seed = strtoul(optarg, NULL, 0);
        } else {
            fprintf(stderr, "usage: %s [-n N] [-s SEED] [FILE...]\n",
                    argv[0]);
            return 2;
        }
    }
    bd_rng_seed(&r, seed);
    if (optind < argc) {
        for (; optind < argc; optind++) {
            FILE *f = fopen(argv[optind], "rb");
            size_t n;

            if (!f) {
                perror(argv[optind]);
                return 1;
            }
            n = fread(buf, 1, sizeof(buf) - 1, f);
            fclose(f);
            buf[n] = '\0';
            one_config(buf, n, &r);
            one_options(buf, &r);
        }
        return 0;
    }
    for (i = 0; i < iters; i++) {
        size_t n;

        if (i % 2) {
            n = mutate(&r, corpus[bd_rng_next(&r) %
                                  (sizeof(corpus) / sizeof(corpus[0]))],
                       buf, sizeof(buf));
            one_config(buf, n, &r);
        } else {
            mutate(&r, opt_corpus[bd_rng_next(&r) %
                                  (sizeof(opt_corpus) /
                                   sizeof(opt_corpus[0]))],
                   buf, sizeof(buf));
            one_options(buf, &r);
        }
    }
    printf("fuzz_blkdebug_config: %lu inputs, seed %lu, no crash\n", iters,
           seed);
    return 0;
}
