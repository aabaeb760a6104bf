/*
 * scenarios/engine/engine.c - parse and execute one scenario
 * (scenarios/scenario.h, docs/scenarios.md).
 *
 * The engine is line-at-a-time: a line is read (with backslash
 * continuations), variables are expanded, and the first word picks the
 * command. Anything that is not a scenario keyword but names a QMP command
 * is sent as one, so `blockdev-backup job-id=j,device=a,...` reads as it
 * would in qmp-shell. QMP goes through a small transport so the same code
 * runs in-process and against a live daemon.
 */
#include "common/config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cutils.h"
#include "common/opts.h"
#include "common/qapi.h"
#include "driver/blkdebug.h"
#include "driver/block.h"
#include "fuse/export.h"
#include "injector/injector.h"
#include "jobs/job.h"
#include "monitor/monitor-int.h"
#include "monitor/monitor.h"
#include "scenarios/scenario.h"

#define SC_MAX_INCLUDE_DEPTH 8
#define SC_READ_CHUNK (1 << 20)
/* Sweep: how long nothing must be able to send an event, with no event
 * arriving, before a `wait` is given up as hopeless (sc_cmd_wait). */
#define SC_HOPELESS_GRACE_NS (20 * 1000 * 1000)

/* ------------------------------------------------------------------ */
/* State                                                                */

struct sc_event {
    struct sc_event *next;
    json_t *ev;                   /* {"event": .., "data": ..} */
};

struct sc {
    const struct sc_options *o;
    FILE *out;
    json_t *vars;                 /* name -> string */
    json_t *last_reply;           /* the last QMP reply shown */
    int failures;
    bool quit;
    json_t *evlog;                /* sweep: every event, in order */
    int wait_timeout_s;

    /* In-process back end. */
    struct bd_graph *graph;
    struct job_manager *jobs;
    struct fx_exports *exports;
    struct qmp_server *server;

    /* Socket back end. */
    int fd;
    char *rbuf;
    size_t rlen, rcap;

    /* Events not yet waited for, oldest first. The sink runs on job and
     * I/O threads, hence the lock. */
    pthread_mutex_t ev_lock;
    pthread_cond_t ev_cond;
    struct sc_event *ev_head, *ev_tail;
    unsigned long ev_count;       /* events pushed so far (ev_lock) */
};

/* Where a line came from, for messages. */
struct sc_loc {
    const char *file;
    int line;
};

static void sc_out(struct sc *sc, const char *fmt, ...) BD_PRINTF(2, 3);

static void sc_out(struct sc *sc, const char *fmt, ...)
{
    va_list ap;
    char *text, *line, *save = NULL, *filtered;

    va_start(ap, fmt);
    if (vasprintf(&text, fmt, ap) < 0) {
        va_end(ap);
        abort();
    }
    va_end(ap);
    for (line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        filtered = sc_filter_line(line, sc->o->test_dir);
        /* `sh "${BLKRIG}" ...` echoes the binary's path, which depends on
         * where the tree was built: goldens must not. */
        filtered = sc_replace_path(filtered, sc->o->blkrig, "BLKRIG");
        fprintf(sc->out, "%s\n", filtered);
        free(filtered);
    }
    free(text);
    fflush(sc->out);
}

static int sc_fail(struct sc *sc, const struct sc_loc *loc, const char *fmt,
                   ...) BD_PRINTF(3, 4);

/* A failed expectation: in the transcript, counted, the scenario goes on. */
static int sc_fail(struct sc *sc, const struct sc_loc *loc, const char *fmt,
                   ...)
{
    va_list ap;
    char *msg;

    if (sc->o->sweep) {
        /* With a fault injected, the scenario's own expectations may
         * fail; only the sweep's invariants count (sc_violation). */
        return 0;
    }
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0) {
        va_end(ap);
        abort();
    }
    va_end(ap);
    sc_out(sc, "%s:%d: expect failed: %s", loc->file, loc->line, msg);
    free(msg);
    sc->failures++;
    return 0;
}

static void sc_violation(struct sc *sc, const struct sc_loc *loc,
                         const char *fmt, ...) BD_PRINTF(3, 4);

/* A broken sweep invariant (sweep mode only). */
static void sc_violation(struct sc *sc, const struct sc_loc *loc,
                         const char *fmt, ...)
{
    va_list ap;
    char *msg;

    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0) {
        va_end(ap);
        abort();
    }
    va_end(ap);
    if (loc) {
        sc_out(sc, "VIOLATION: %s:%d: %s", loc->file, loc->line, msg);
    } else {
        sc_out(sc, "VIOLATION: %s", msg);
    }
    free(msg);
    sc->failures++;
}

/* ------------------------------------------------------------------ */
/* Filters                                                              */

char *sc_filter_line(const char *line, const char *test_dir)
{
    char *s = bd_strdup(line);
    char *p;

    /* qemu-io's timing line: "...; 00.00 sec (12.3 MiB/sec and 4 ops/sec)",
     * or past a second "...; 0:00:01.12 (...)". */
    p = strrchr(s, ';');
    if (p && p[1] == ' ' && s[strlen(s) - 1] == ')') {
        const char *q = p + 2;
        size_t tlen = strspn(q, "0123456789:.");

        if (tlen && (!strncmp(q + tlen, " sec (", 6) ||
                     (!strncmp(q + tlen, " (", 2) && strchr(q, ':') &&
                      strchr(q, ':') < q + tlen))) {
            char *t = bd_strdup_printf("%.*s XX.XX sec (timing elided)",
                                       (int)(p + 1 - s), s);
            free(s);
            s = t;
        }
    }
    /* The scratch directory. */
    return sc_replace_path(s, test_dir, "TEST_DIR");
}

char *sc_replace_path(char *s, const char *path, const char *token)
{
    size_t n = path ? strlen(path) : 0;
    char *p;

    if (!n) {
        return s;
    }
    while ((p = strstr(s, path))) {
        char *t = bd_strdup_printf("%.*s%s%s", (int)(p - s), s, token, p + n);

        free(s);
        s = t;
    }
    return s;
}

/* One line of JSON, keys sorted, timestamp dropped: stable transcripts. */
static char *sc_json_text(json_t *v)
{
    json_t *copy = json_deep_copy(v);
    char *text;

    if (json_is_object(copy)) {
        json_object_del(copy, "timestamp");
    }
    text = json_dumps(copy, JSON_SORT_KEYS | JSON_ENCODE_ANY);
    json_decref(copy);
    return text;
}

static void sc_out_json(struct sc *sc, json_t *v)
{
    char *text = sc_json_text(v);

    sc_out(sc, "%s", text);
    free(text);
}

/* ------------------------------------------------------------------ */
/* Events                                                               */

static void sc_push_event(struct sc *sc, json_t *ev)
{
    struct sc_event *e = bd_malloc0(sizeof(*e));

    e->ev = ev;
    pthread_mutex_lock(&sc->ev_lock);
    if (sc->evlog) {
        json_array_append(sc->evlog, ev);
    }
    if (sc->ev_tail) {
        sc->ev_tail->next = e;
    } else {
        sc->ev_head = e;
    }
    sc->ev_tail = e;
    sc->ev_count++;
    pthread_cond_broadcast(&sc->ev_cond);
    pthread_mutex_unlock(&sc->ev_lock);
}

static void sc_event_sink(void *opaque, const char *name, json_t *data)
{
    struct sc *sc = opaque;
    json_t *ev = json_object();

    json_object_set_new(ev, "event", json_string(name));
    json_object_set_new(ev, "data", data ? data : json_object());
    sc_push_event(sc, ev);
}

/* ------------------------------------------------------------------ */
/* Socket transport                                                     */

/* Read one JSON line from the daemon within deadline_ns (absolute,
 * bd_clock_ns). Returns a new reference, or NULL on EOF/timeout/error. */
static json_t *sock_read_json(struct sc *sc, int64_t deadline_ns)
{
    for (;;) {
        char *nl = sc->rlen ? memchr(sc->rbuf, '\n', sc->rlen) : NULL;

        if (nl) {
            size_t n = (size_t)(nl - sc->rbuf) + 1;
            json_t *v = json_loadb(sc->rbuf, n, JSON_DECODE_ANY, NULL);

            memmove(sc->rbuf, sc->rbuf + n, sc->rlen - n);
            sc->rlen -= n;
            if (v) {
                return v;
            }
            continue;   /* blank line */
        }
        if (sc->rcap - sc->rlen < 4096) {
            sc->rcap = sc->rcap ? sc->rcap * 2 : 65536;
            sc->rbuf = bd_realloc(sc->rbuf, sc->rcap);
        }
        int64_t left = deadline_ns - bd_clock_ns();
        struct pollfd pfd = { .fd = sc->fd, .events = POLLIN };

        if (left <= 0) {
            return NULL;
        }
        if (poll(&pfd, 1, (int)(left / 1000000 + 1)) <= 0) {
            continue;
        }
        ssize_t r = read(sc->fd, sc->rbuf + sc->rlen, sc->rcap - sc->rlen);

        if (r <= 0) {
            return NULL;
        }
        sc->rlen += (size_t)r;
    }
}

static int sock_send(struct sc *sc, json_t *cmd)
{
    char *text = json_dumps(cmd, JSON_COMPACT);
    size_t len = strlen(text), off = 0;

    while (off < len) {
        ssize_t w = write(sc->fd, text + off, len - off);

        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            free(text);
            return -EPIPE;
        }
        off += (size_t)w;
    }
    free(text);
    return write(sc->fd, "\n", 1) == 1 ? 0 : -EPIPE;
}

static int sock_connect(struct sc *sc, const char *path,
                        struct bd_error **errp)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    json_t *greeting, *reply;
    json_t *caps;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        bd_error_setg(errp, "--qmp: socket path too long: '%s'", path);
        return -EINVAL;
    }
    strcpy(sa.sun_path, path);
    sc->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sc->fd < 0 ||
        connect(sc->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        bd_error_setg_errno(errp, errno, "--qmp: cannot connect to '%s'",
                            path);
        return -errno;
    }
    greeting = sock_read_json(sc, bd_clock_ns() + 10LL * 1000000000);
    if (!json_is_object(greeting) || !json_object_get(greeting, "QMP")) {
        json_decref(greeting);
        bd_error_setg(errp, "--qmp: '%s' sent no QMP greeting", path);
        return -EPROTO;
    }
    json_decref(greeting);
    caps = json_pack("{s:s}", "execute", "qmp_capabilities");
    sock_send(sc, caps);
    json_decref(caps);
    reply = sock_read_json(sc, bd_clock_ns() + 10LL * 1000000000);
    if (!reply || !json_object_get(reply, "return")) {
        json_decref(reply);
        bd_error_setg(errp, "--qmp: capabilities negotiation with '%s' "
                      "failed", path);
        return -EPROTO;
    }
    json_decref(reply);
    return 0;
}

/* ------------------------------------------------------------------ */
/* QMP                                                                  */

static json_t *sc_execute(struct sc *sc, json_t *cmd)
{
    if (sc->server) {
        return qmp_server_execute(sc->server, cmd);
    }
    if (sock_send(sc, cmd) < 0) {
        return NULL;
    }
    for (;;) {
        /* Commands may block for a while (blockdev-add of a big image,
         * job-cancel of a draining job), but not forever. */
        json_t *v = sock_read_json(sc, bd_clock_ns() + 120LL * 1000000000);

        if (!v) {
            return NULL;
        }
        if (json_object_get(v, "event")) {
            sc_push_event(sc, v);
            continue;
        }
        return v;
    }
}

/* Execute "name" with args (stolen; NULL = none) without showing it. */
static json_t *sc_query(struct sc *sc, const char *name, json_t *args)
{
    json_t *cmd = json_pack("{s:s}", "execute", name);
    json_t *reply;

    if (args) {
        json_object_set_new(cmd, "arguments", args);
    }
    reply = sc_execute(sc, cmd);
    json_decref(cmd);
    return reply;
}

/* Turn the text after a command name into its arguments object: JSON when
 * it starts with '{', else key=value as qmp-shell and qsd's command line
 * take it, typed through the command's schema. */
static json_t *sc_parse_args(const char *cmdname, const char *text,
                             struct bd_error **errp)
{
    const struct qmp_command *c;
    json_t *flat, *nested, *typed;

    while (*text == ' ' || *text == '\t') {
        text++;
    }
    if (!*text) {
        return NULL;
    }
    if (*text == '{') {
        json_error_t jerr;
        json_t *v = json_loads(text, 0, &jerr);

        if (!v) {
            bd_error_setg(errp, "bad JSON arguments: %s", jerr.text);
        }
        return v;
    }
    flat = bd_opts_parse(text, NULL, errp);
    if (!flat) {
        return NULL;
    }
    nested = bd_opts_crumple(flat, errp);
    json_decref(flat);
    if (!nested) {
        return NULL;
    }
    c = qmp_find_command(cmdname);
    if (!c || !c->args) {
        return nested;
    }
    typed = qapi_keyval_to_json(c->args, nested, errp);
    json_decref(nested);
    return typed;
}

static void sc_show_reply(struct sc *sc, json_t *reply)
{
    if (!reply) {
        sc_out(sc, "(no reply: the daemon went away)");
        sc->quit = true;
        return;
    }
    sc_out_json(sc, reply);
    json_decref(sc->last_reply);
    sc->last_reply = reply;
}

static int sc_qmp(struct sc *sc, const char *name, const char *argtext,
                  const struct sc_loc *loc, struct bd_error **errp)
{
    struct bd_error *err = NULL;
    json_t *args = sc_parse_args(name, argtext, &err);
    json_t *cmd;

    if (err) {
        bd_error_setg(errp, "%s:%d: %s: %s", loc->file, loc->line, name,
                      bd_error_msg(err));
        bd_error_free(err);
        return -EINVAL;
    }
    cmd = json_pack("{s:s}", "execute", name);
    if (args) {
        json_object_set_new(cmd, "arguments", args);
    }
    sc_show_reply(sc, sc_execute(sc, cmd));
    json_decref(cmd);
    if (!strcmp(name, "quit")) {
        sc->quit = true;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Words and key=value matches                                          */

/* Split at blanks; double quotes group (and are removed). Returns the
 * number of words; words point into buf. */
static int sc_split(char *buf, char **words, int max)
{
    int n = 0;
    char *p = buf;

    while (*p && n < max) {
        char *w;

        while (*p == ' ' || *p == '\t') {
            p++;
        }
        if (!*p) {
            break;
        }
        w = p;
        words[n++] = w;
        char *d = p;
        bool quoted = false;

        while (*p && (quoted || (*p != ' ' && *p != '\t'))) {
            if (*p == '"') {
                quoted = !quoted;
                p++;
                continue;
            }
            *d++ = *p++;
        }
        if (*p) {
            p++;
        }
        *d = '\0';
    }
    return n;
}

/* A value's text for comparisons: strings bare, the rest as JSON. */
static char *sc_value_text(json_t *v)
{
    if (!v) {
        return bd_strdup("<absent>");
    }
    if (json_is_string(v)) {
        return bd_strdup(json_string_value(v));
    }
    return json_dumps(v, JSON_ENCODE_ANY | JSON_SORT_KEYS | JSON_COMPACT);
}

/* Follow a dotted path ("return.0.status") through objects and arrays. */
static json_t *sc_path(json_t *v, const char *path)
{
    char *copy = bd_strdup(path), *save = NULL, *part;

    for (part = strtok_r(copy, ".", &save); part && v;
         part = strtok_r(NULL, ".", &save)) {
        if (json_is_array(v)) {
            char *end;
            long i = strtol(part, &end, 10);

            v = (*end || i < 0) ? NULL : json_array_get(v, (size_t)i);
        } else {
            v = json_object_get(v, part);
        }
    }
    free(copy);
    return v;
}

/* Check "key=value" words against obj; returns the first mismatch as a
 * message, NULL if all match. A word without '=' is a syntax error
 * reported through *bad. */
static char *sc_match(json_t *obj, char **words, int n, const char **bad)
{
    int i;

    *bad = NULL;
    for (i = 0; i < n; i++) {
        char *eq = strchr(words[i], '=');
        char *have;

        if (!eq) {
            *bad = words[i];
            return NULL;
        }
        *eq = '\0';
        have = sc_value_text(sc_path(obj, words[i]));
        if (strcmp(have, eq + 1)) {
            char *msg = bd_strdup_printf("%s is '%s', not '%s'", words[i],
                                         have, eq + 1);

            *eq = '=';
            free(have);
            return msg;
        }
        *eq = '=';
        free(have);
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Commands                                                             */

/*
 * Sweep mode: can nothing send an event before the scenario's next step?
 * Events come from job threads (job and block-job events), from requests
 * (BLKDEBUG_SUSPEND/RESUME/INJECT are raised on the requesting thread)
 * and from QMP commands, which only the scenario sends. So: no export
 * (its clients are other processes), no `io` request still running, no
 * job able to progress without a verb or a guest write, and no request
 * in flight. The order matters: with no export and no `io` request
 * running no guest write can start, so a job found idle stays idle; then
 * nothing starts a request, so an in-flight count of 0 read last stays 0.
 * Only the in-process back end can tell; a daemon's state is out of
 * reach.
 */
static bool sc_nothing_can_emit(struct sc *sc)
{
    if (!sc->o->sweep || !sc->server || fx_exports_any(sc->exports)) {
        return false;
    }
    if (sc->o->io_busy && sc->o->io_busy(sc->o->io_opaque)) {
        return false;
    }
    if (job_manager_can_progress(sc->jobs)) {
        return false;
    }
    return bd_graph_in_flight(sc->graph) == 0;
}

static int sc_cmd_wait(struct sc *sc, char *args, const struct sc_loc *loc,
                       struct bd_error **errp)
{
    char *words[32];
    int n = sc_split(args, words, 32), i, nmatch = 0;
    char *match[32];
    int timeout = sc->wait_timeout_s;
    int64_t deadline, quiet_since = 0;
    unsigned long quiet_events = 0;

    if (n < 1) {
        bd_error_setg(errp, "%s:%d: wait: missing event name", loc->file,
                      loc->line);
        return -EINVAL;
    }
    for (i = 1; i < n; i++) {
        if (!strncmp(words[i], "timeout=", 8)) {
            if (bd_parse_int(words[i] + 8, &timeout) < 0 || timeout <= 0) {
                bd_error_setg(errp, "%s:%d: wait: bad timeout '%s'",
                              loc->file, loc->line, words[i] + 8);
                return -EINVAL;
            }
        } else if (strchr(words[i], '=')) {
            match[nmatch++] = words[i];
        } else {
            bd_error_setg(errp, "%s:%d: wait: expected KEY=VALUE, got '%s'",
                          loc->file, loc->line, words[i]);
            return -EINVAL;
        }
    }
    deadline = bd_clock_ns() + (int64_t)timeout * 1000000000;
    for (;;) {
        struct sc_event **pp, *e;
        json_t *found = NULL;
        bool hopeless = false;
        int64_t now;

        /* Decide before the scan: if nothing could send an event at this
         * point, every event that will ever come is already queued. The
         * state must last a short grace with no event arriving, for
         * helper threads outside the checks (a copy-before-write copy
         * that outlived its cbw-timeout runs between two requests). */
        bool quiet = sc_nothing_can_emit(sc);

        now = bd_clock_ns();
        pthread_mutex_lock(&sc->ev_lock);
        if (!quiet) {
            quiet_since = 0;
        } else if (!quiet_since || quiet_events != sc->ev_count) {
            quiet_since = now;
            quiet_events = sc->ev_count;
        }
        for (pp = &sc->ev_head; (e = *pp); pp = &e->next) {
            const char *bad;
            char *miss;

            if (strcmp(json_string_value(json_object_get(e->ev, "event")),
                       words[0])) {
                continue;
            }
            miss = sc_match(json_object_get(e->ev, "data"), match, nmatch,
                            &bad);
            if (miss) {
                free(miss);
                continue;
            }
            /* Matched: unlink it; earlier, unmatched events stay queued
             * for later waits, as iotests' event_wait keeps them. */
            *pp = e->next;
            if (sc->ev_tail == e) {
                struct sc_event *t = sc->ev_head;

                while (t && t->next) {
                    t = t->next;
                }
                sc->ev_tail = t;
            }
            found = e->ev;
            free(e);
            break;
        }
        if (!found && quiet_since &&
            now - quiet_since >= SC_HOPELESS_GRACE_NS) {
            hopeless = true;
        } else if (!found && sc->server) {
            struct timespec ts;
            int64_t left = deadline - bd_clock_ns();
            int64_t slice = quiet_since ? SC_HOPELESS_GRACE_NS : 100000000;

            if (left > 0) {
                clock_gettime(CLOCK_REALTIME, &ts);
                int64_t ns = ts.tv_nsec + (left < slice ? left : slice);
                ts.tv_sec += ns / 1000000000;
                ts.tv_nsec = ns % 1000000000;
                pthread_cond_timedwait(&sc->ev_cond, &sc->ev_lock, &ts);
            }
        }
        pthread_mutex_unlock(&sc->ev_lock);
        if (found) {
            sc_out_json(sc, found);
            json_decref(found);
            return 0;
        }
        if (hopeless) {
            /* Sweep mode only: a diverged scenario, not a failure; the
             * line tells the reader of a reproduced trial why the wait
             * ended at once. */
            sc_out(sc, "wait: hopeless: no job can progress and no request "
                   "is running, so no %s can come", words[0]);
            return sc_fail(sc, loc, "no event %s can come", words[0]);
        }
        if (bd_clock_ns() >= deadline) {
            return sc_fail(sc, loc, "no event %s within %d s", words[0],
                           timeout);
        }
        if (!sc->server) {
            json_t *v = sock_read_json(sc, bd_clock_ns() + 100000000);

            if (v) {
                sc_push_event(sc, v);
            }
        }
    }
}

/* expect job ID KEY=VALUE...: fields of query-jobs merged with those of
 * query-block-jobs (io-status, busy, offset...). */
static int sc_expect_job(struct sc *sc, char **w, int n,
                         const struct sc_loc *loc, struct bd_error **errp)
{
    json_t *jobs, *bjobs, *merged = NULL;
    const char *bad;
    char *miss;
    size_t i;
    json_t *j;

    if (n < 2) {
        bd_error_setg(errp, "%s:%d: expect job: missing job id", loc->file,
                      loc->line);
        return -EINVAL;
    }
    jobs = sc_query(sc, "query-jobs", NULL);
    bjobs = sc_query(sc, "query-block-jobs", NULL);
    json_array_foreach(json_object_get(jobs, "return"), i, j) {
        if (!strcmp(w[1], json_string_value(json_object_get(j, "id")) ?: "")) {
            merged = json_deep_copy(j);
        }
    }
    json_array_foreach(json_object_get(bjobs, "return"), i, j) {
        if (!strcmp(w[1],
                    json_string_value(json_object_get(j, "device")) ?: "")) {
            if (!merged) {
                merged = json_object();
            }
            json_object_update_missing(merged, j);
        }
    }
    json_decref(jobs);
    json_decref(bjobs);
    if (!merged) {
        /* A dismissed job: only "status=null" can match. */
        merged = json_pack("{s:s}", "status", "null");
    }
    miss = sc_match(merged, w + 2, n - 2, &bad);
    json_decref(merged);
    if (bad) {
        bd_error_setg(errp, "%s:%d: expect job: expected KEY=VALUE, got '%s'",
                      loc->file, loc->line, bad);
        return -EINVAL;
    }
    if (miss) {
        sc_fail(sc, loc, "job %s: %s", w[1], miss);
        free(miss);
    }
    return 0;
}

/* expect bitmap NODE NAME KEY=VALUE... (BlockDirtyInfo fields), or
 * expect bitmap NODE NAME absent. */
static int sc_expect_bitmap(struct sc *sc, char **w, int n,
                            const struct sc_loc *loc, struct bd_error **errp)
{
    json_t *nodes, *bm = NULL, *node;
    const char *bad;
    char *miss;
    size_t i, k;

    if (n < 3) {
        bd_error_setg(errp, "%s:%d: expect bitmap: usage: expect bitmap "
                      "NODE NAME KEY=VALUE...", loc->file, loc->line);
        return -EINVAL;
    }
    nodes = sc_query(sc, "query-named-block-nodes", NULL);
    json_array_foreach(json_object_get(nodes, "return"), i, node) {
        json_t *b;

        if (strcmp(w[1], json_string_value(json_object_get(node,
                                                           "node-name"))
                   ?: "")) {
            continue;
        }
        json_array_foreach(json_object_get(node, "dirty-bitmaps"), k, b) {
            if (!strcmp(w[2],
                        json_string_value(json_object_get(b, "name")) ?: "")) {
                bm = json_incref(b);
            }
        }
    }
    json_decref(nodes);
    if (n == 4 && !strcmp(w[3], "absent")) {
        if (bm) {
            sc_fail(sc, loc, "bitmap %s on %s exists", w[2], w[1]);
        }
        json_decref(bm);
        return 0;
    }
    if (!bm) {
        return sc_fail(sc, loc, "no bitmap %s on node %s", w[2], w[1]);
    }
    miss = sc_match(bm, w + 3, n - 3, &bad);
    json_decref(bm);
    if (bad) {
        bd_error_setg(errp, "%s:%d: expect bitmap: expected KEY=VALUE, got "
                      "'%s'", loc->file, loc->line, bad);
        return -EINVAL;
    }
    if (miss) {
        sc_fail(sc, loc, "bitmap %s on %s: %s", w[2], w[1], miss);
        free(miss);
    }
    return 0;
}

static struct bd_node *sc_node(struct sc *sc, const char *name,
                               const struct sc_loc *loc,
                               struct bd_error **errp)
{
    struct bd_node *n;

    if (!sc->graph) {
        bd_error_setg(errp, "%s:%d: this command needs the in-process "
                      "graph (not available with --qmp)", loc->file,
                      loc->line);
        return NULL;
    }
    n = bd_graph_find_node(sc->graph, name);
    if (!n) {
        bd_error_setg(errp, "%s:%d: no node '%s'", loc->file, loc->line,
                      name);
    }
    return n;
}

static int sc_read(struct bd_node *n, int64_t off, int64_t len, void *buf)
{
    struct bd_qiov q;
    int r;

    bd_qiov_init_buf(&q, buf, (size_t)len);
    r = bd_node_preadv(n, off, len, &q, 0);
    bd_qiov_destroy(&q);
    return r;
}

/* expect equal NODE1 NODE2: same length, same bytes. */
/* Sweep: did every job finish well? Only then must copies be equal. At
 * least one job must have completed, and none failed, was cancelled or
 * met an error it was told to ignore. */
static bool sc_jobs_clean(struct sc *sc)
{
    size_t i;
    json_t *ev;
    bool completed = false;

    pthread_mutex_lock(&sc->ev_lock);
    json_array_foreach(sc->evlog, i, ev) {
        const char *name = json_string_value(json_object_get(ev, "event"));
        json_t *data = json_object_get(ev, "data");

        if (!strcmp(name, "BLOCK_JOB_COMPLETED")) {
            if (json_object_get(data, "error")) {
                completed = false;
                break;
            }
            completed = true;
        } else if (!strcmp(name, "BLOCK_JOB_CANCELLED") ||
                   !strcmp(name, "BLOCK_JOB_ERROR")) {
            completed = false;
            break;
        }
    }
    pthread_mutex_unlock(&sc->ev_lock);
    return completed;
}

static int sc_expect_equal(struct sc *sc, char **w, int n,
                           const struct sc_loc *loc, struct bd_error **errp)
{
    struct bd_node *a, *b;
    int64_t la, lb, off;
    char *ba, *bb;
    char *why = NULL;
    int r = 0;

    if (n != 3) {
        bd_error_setg(errp, "%s:%d: expect equal: usage: expect equal NODE "
                      "NODE", loc->file, loc->line);
        return -EINVAL;
    }
    if (!(a = sc_node(sc, w[1], loc, errp)) ||
        !(b = sc_node(sc, w[2], loc, errp))) {
        return -EINVAL;
    }
    la = bd_getlength(a);
    lb = bd_getlength(b);
    if (la != lb) {
        why = bd_strdup_printf("%s is %" PRId64 " bytes, %s is %" PRId64,
                               w[1], la, w[2], lb);
        la = 0;
    }
    ba = bd_malloc(SC_READ_CHUNK);
    bb = bd_malloc(SC_READ_CHUNK);
    for (off = 0; off < la; off += SC_READ_CHUNK) {
        int64_t len = la - off < SC_READ_CHUNK ? la - off : SC_READ_CHUNK;
        int64_t i;

        if ((r = sc_read(a, off, len, ba)) < 0 ||
            (r = sc_read(b, off, len, bb)) < 0) {
            if (sc->o->sweep) {
                /* The scenario's own fault rules can outlive a run the
                 * sweep diverted: unreadable is unverified, not unequal. */
                sc_out(sc, "expect equal: not verified: read failed at "
                       "offset %" PRId64 ": %s", off, bd_strerror(-r));
                r = 0;
                break;
            }
            why = bd_strdup_printf("read failed at offset %" PRId64 ": %s",
                                   off, bd_strerror(-r));
            break;
        }
        if (memcmp(ba, bb, (size_t)len)) {
            for (i = 0; ba[i] == bb[i]; i++) {
            }
            why = bd_strdup_printf("%s and %s differ at offset %" PRId64,
                                   w[1], w[2], off + i);
            break;
        }
    }
    free(ba);
    free(bb);
    if (why) {
        if (!sc->o->sweep) {
            sc_fail(sc, loc, "%s", why);
        } else if (sc_jobs_clean(sc)) {
            sc_violation(sc, loc, "every job completed without error, but "
                         "%s", why);
        }
        free(why);
    }
    return 0;
}

/* expect pattern NODE OFFSET LENGTH BYTE */
static int sc_expect_pattern(struct sc *sc, char **w, int n,
                             const struct sc_loc *loc, struct bd_error **errp)
{
    struct bd_node *node;
    uint64_t off, len;
    int64_t i;
    int64_t pat;
    unsigned char *buf;
    int r;

    if (n != 5 || bd_parse_size(w[2], &off) < 0 ||
        bd_parse_size(w[3], &len) < 0 || bd_parse_i64(w[4], &pat) < 0 ||
        pat < 0 || pat > 255 || len > (1u << 30)) {
        bd_error_setg(errp, "%s:%d: expect pattern: usage: expect pattern "
                      "NODE OFFSET LENGTH BYTE", loc->file, loc->line);
        return -EINVAL;
    }
    if (!(node = sc_node(sc, w[1], loc, errp))) {
        return -EINVAL;
    }
    buf = bd_malloc(len ? len : 1);
    r = sc_read(node, (int64_t)off, (int64_t)len, buf);
    if (r < 0) {
        sc_fail(sc, loc, "read of %s failed: %s", w[1], bd_strerror(-r));
    } else {
        for (i = 0; i < (int64_t)len; i++) {
            if (buf[i] != pat) {
                sc_fail(sc, loc, "%s: byte at offset %" PRIu64 " is 0x%02x, "
                        "not 0x%02x", w[1], off + (uint64_t)i, buf[i],
                        (unsigned)pat);
                break;
            }
        }
    }
    free(buf);
    return 0;
}

/* Run a shell command in the scratch directory; returns its exit status
 * and, when out is not NULL, its output (stdout and stderr). */
static int sc_shell(struct sc *sc, const char *cmd, char **out)
{
    char *full = bd_strdup_printf("cd '%s' && BLKRIG='%s' TEST_DIR='%s' "
                                  "exec 2>&1 </dev/null; %s",
                                  sc->o->test_dir, sc->o->blkrig,
                                  sc->o->test_dir, cmd);
    FILE *p;
    char *buf = NULL;
    size_t len = 0;
    char chunk[4096];
    size_t r;
    int st;

    fflush(NULL);
    p = popen(full, "r");
    free(full);
    if (!p) {
        if (out) {
            *out = bd_strdup("popen failed\n");
        }
        return 127;
    }
    while ((r = fread(chunk, 1, sizeof(chunk), p)) > 0) {
        buf = bd_realloc(buf, len + r + 1);
        memcpy(buf + len, chunk, r);
        len += r;
    }
    st = pclose(p);
    if (buf) {
        buf[len] = '\0';
    }
    if (out) {
        *out = buf ? buf : bd_strdup("");
    } else {
        free(buf);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* expect clean FILE: `blkrig img check` finds no corruption and no leak. */
static int sc_expect_clean(struct sc *sc, char **w, int n,
                           const struct sc_loc *loc, struct bd_error **errp)
{
    char *cmd, *out = NULL;
    int st;

    if (n != 2) {
        bd_error_setg(errp, "%s:%d: expect clean: usage: expect clean FILE",
                      loc->file, loc->line);
        return -EINVAL;
    }
    cmd = bd_strdup_printf("\"$BLKRIG\" img check -U '%s'", w[1]);
    st = sc_shell(sc, cmd, &out);
    free(cmd);
    if (sc->o->sweep) {
        /* After a fault, leaked clusters are allowed (exit 3, as in
         * QEMU); corruption or an image that no longer opens is not. */
        if (st != 0 && st != 3) {
            sc_violation(sc, loc, "image %s is not clean after the fault "
                         "(check exit %d):\n%s", w[1], st, out);
        }
    } else if (st != 0) {
        sc_fail(sc, loc, "check of %s failed (exit %d):\n%s", w[1], st, out);
    }
    free(out);
    return 0;
}

static int sc_cmd_expect(struct sc *sc, char *args, const struct sc_loc *loc,
                         struct bd_error **errp)
{
    char *w[64];
    int n = sc_split(args, w, 64);

    if (n < 1) {
        bd_error_setg(errp, "%s:%d: expect: missing what to expect",
                      loc->file, loc->line);
        return -EINVAL;
    }
    if (!strcmp(w[0], "job")) {
        return sc_expect_job(sc, w, n, loc, errp);
    }
    if (!strcmp(w[0], "bitmap")) {
        return sc_expect_bitmap(sc, w, n, loc, errp);
    }
    if (!strcmp(w[0], "equal")) {
        return sc_expect_equal(sc, w, n, loc, errp);
    }
    if (!strcmp(w[0], "pattern")) {
        return sc_expect_pattern(sc, w, n, loc, errp);
    }
    if (!strcmp(w[0], "clean")) {
        return sc_expect_clean(sc, w, n, loc, errp);
    }
    if (!strcmp(w[0], "reply")) {
        const char *bad;
        char *miss;

        if (!sc->last_reply) {
            return sc_fail(sc, loc, "no QMP reply yet");
        }
        miss = sc_match(sc->last_reply, w + 1, n - 1, &bad);
        if (bad) {
            bd_error_setg(errp, "%s:%d: expect reply: expected KEY=VALUE, "
                          "got '%s'", loc->file, loc->line, bad);
            return -EINVAL;
        }
        if (miss) {
            sc_fail(sc, loc, "reply: %s", miss);
            free(miss);
        }
        return 0;
    }
    bd_error_setg(errp, "%s:%d: expect: unknown kind '%s' (job, bitmap, "
                  "equal, pattern, clean, reply)", loc->file, loc->line,
                  w[0]);
    return -EINVAL;
}

static int sc_cmd_io(struct sc *sc, char *args, const struct sc_loc *loc,
                     struct bd_error **errp)
{
    char *node = args, *cmd;
    struct bd_node *n;

    while (*node == ' ') {
        node++;
    }
    cmd = node + strcspn(node, " \t");
    if (*cmd) {
        *cmd++ = '\0';
    }
    while (*cmd == ' ' || *cmd == '\t') {
        cmd++;
    }
    if (!*node || !*cmd) {
        bd_error_setg(errp, "%s:%d: io: usage: io NODE COMMAND", loc->file,
                      loc->line);
        return -EINVAL;
    }
    if (!sc->o->io) {
        bd_error_setg(errp, "%s:%d: io: no qemu-io engine in this build",
                      loc->file, loc->line);
        return -ENOTSUP;
    }
    if (!(n = sc_node(sc, node, loc, errp))) {
        return -EINVAL;
    }
    /* qemu-io writes to stdout; keep the transcript in order. */
    fflush(sc->out);
    fflush(stdout);
    sc->o->io(sc->o->io_opaque, sc->graph, n, cmd);
    fflush(stdout);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Sweep mode: steps parked behind a breakpoint                          */

/*
 * A synchronous step (`io`, `expect`) whose request hits a blkdebug
 * breakpoint waits for a `blkdebug-resume` that only a later step could
 * send. In a normal run that is the scenario's own bug; in a sweep trial it
 * is the fault diverting the story (a job it failed never reached the
 * breakpoint set for it, so the scenario's own read parks there). The
 * guard releases the breakpoints once a request has stayed parked for
 * SC_PARKED_NS during such a step, and the transcript says so, instead of
 * the trial hanging until the step watchdog.
 */
#define SC_PARKED_NS (2LL * 1000 * 1000 * 1000)

struct sc_guard {
    struct bd_graph *g;
    pthread_t th;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool running;
    bool done;          /* the step finished (lock) */
    bool released;      /* breakpoints were released */
};

static int sc_count_parked(struct bd_node *n, void *opaque)
{
    struct inj *inj = bd_blkdebug_injector(n);

    if (inj) {
        json_t *q = inj_query(inj);

        *(size_t *)opaque += json_array_size(json_object_get(q, "suspended"));
        json_decref(q);
    }
    return 0;
}

static void *sc_guard_fn(void *arg)
{
    struct sc_guard *gd = arg;
    int64_t since = -1;

    pthread_mutex_lock(&gd->lock);
    while (!gd->done) {
        struct timespec ts;
        size_t parked = 0;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&gd->cond, &gd->lock, &ts);
        if (gd->done) {
            break;
        }
        pthread_mutex_unlock(&gd->lock);
        bd_graph_foreach_node(gd->g, sc_count_parked, &parked);
        if (!parked) {
            since = -1;
        } else if (since < 0) {
            since = bd_clock_ns();
        } else if (bd_clock_ns() - since >= SC_PARKED_NS) {
            bd_blkdebug_release_all_breaks(gd->g);
            gd->released = true;
            since = -1;
        }
        pthread_mutex_lock(&gd->lock);
    }
    pthread_mutex_unlock(&gd->lock);
    return NULL;
}

static void sc_guard_start(struct sc *sc, struct sc_guard *gd)
{
    memset(gd, 0, sizeof(*gd));
    if (!sc->o->sweep || !sc->graph) {
        return;
    }
    gd->g = sc->graph;
    pthread_mutex_init(&gd->lock, NULL);
    pthread_cond_init(&gd->cond, NULL);
    gd->running = pthread_create(&gd->th, NULL, sc_guard_fn, gd) == 0;
    if (!gd->running) {
        pthread_mutex_destroy(&gd->lock);
        pthread_cond_destroy(&gd->cond);
    }
}

static void sc_guard_stop(struct sc *sc, struct sc_guard *gd)
{
    if (!gd->running) {
        return;
    }
    pthread_mutex_lock(&gd->lock);
    gd->done = true;
    pthread_cond_signal(&gd->cond);
    pthread_mutex_unlock(&gd->lock);
    pthread_join(gd->th, NULL);
    pthread_mutex_destroy(&gd->lock);
    pthread_cond_destroy(&gd->cond);
    if (gd->released) {
        sc_out(sc, "sweep: a request stayed parked at a breakpoint that "
               "only a later step could resume; breakpoints released");
    }
}

static int sc_cmd_sh(struct sc *sc, const char *args)
{
    char *out = NULL;
    int st = sc_shell(sc, args, &out);

    if (*out) {
        size_t l = strlen(out);

        if (out[l - 1] == '\n') {
            out[l - 1] = '\0';
        }
        sc_out(sc, "%s", out);
    }
    if (st) {
        sc_out(sc, "[exit=%d]", st);
    }
    free(out);
    return 0;
}

/* create [-f FMT] [-o OPTS] FILE SIZE: an image through `blkrig img`,
 * quietly (qemu-img's "Formatting ..." line would only be noise). */
static int sc_cmd_create(struct sc *sc, const char *args,
                         const struct sc_loc *loc, struct bd_error **errp)
{
    char *cmd = bd_strdup_printf("\"$BLKRIG\" img create -q %s", args);
    char *out = NULL;
    int st = sc_shell(sc, cmd, &out);

    free(cmd);
    if (st) {
        bd_error_setg(errp, "%s:%d: create failed: %s", loc->file, loc->line,
                      out);
        free(out);
        return -EIO;
    }
    free(out);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Lines                                                                */

/* Expand ${NAME}; unknown names are errors (a typo must not silently
 * become an empty string). */
static char *sc_expand(struct sc *sc, const char *line,
                       const struct sc_loc *loc, struct bd_error **errp)
{
    char *res = bd_strdup("");
    const char *p = line;

    while (*p) {
        const char *d = strstr(p, "${");
        const char *end;
        char *name, *t;
        const char *val;

        if (!d) {
            t = bd_strdup_printf("%s%s", res, p);
            free(res);
            return t;
        }
        end = strchr(d, '}');
        if (!end) {
            bd_error_setg(errp, "%s:%d: unterminated '${'", loc->file,
                          loc->line);
            free(res);
            return NULL;
        }
        name = bd_strdup_printf("%.*s", (int)(end - d - 2), d + 2);
        val = json_string_value(json_object_get(sc->vars, name));
        if (!val) {
            bd_error_setg(errp, "%s:%d: unknown variable '%s'", loc->file,
                          loc->line, name);
            free(name);
            free(res);
            return NULL;
        }
        free(name);
        t = bd_strdup_printf("%s%.*s%s", res, (int)(d - p), p, val);
        free(res);
        res = t;
        p = end + 1;
    }
    return res;
}

static int sc_run_path(struct sc *sc, const char *path, int depth,
                       struct bd_error **errp);

static int sc_line(struct sc *sc, const char *raw, const struct sc_loc *loc,
                   int depth, struct bd_error **errp)
{
    char *line = sc_expand(sc, raw, loc, errp);
    char *verb, *args;
    size_t vlen;
    int r = 0;

    if (!line) {
        return -EINVAL;
    }
    if (sc->o->step_hook) {
        char *where = bd_strdup_printf("%s:%d", loc->file, loc->line);

        sc->o->step_hook(sc->o->step_opaque, where);
        free(where);
    }
    if (line[0] == '{') {
        /* Raw QMP: the whole line is the command object. */
        json_error_t jerr;
        json_t *cmd = json_loads(line, 0, &jerr);

        sc_out(sc, "> %s", line);
        if (!json_is_object(cmd)) {
            bd_error_setg(errp, "%s:%d: bad QMP JSON: %s", loc->file,
                          loc->line, jerr.text);
            json_decref(cmd);
            free(line);
            return -EINVAL;
        }
        sc_show_reply(sc, sc_execute(sc, cmd));
        json_decref(cmd);
        free(line);
        return 0;
    }
    /* Echo every step: the transcript reads like the script. Includes and
     * variable assignments are not steps. */
    verb = line;
    vlen = strcspn(verb, " \t");
    args = verb + vlen;
    if (*args) {
        *args++ = '\0';
    }
    if (!strcmp(verb, "echo")) {
        /* Narration: the text alone. */
        sc_out(sc, "%s", args);
    } else if (strcmp(verb, "include") && strcmp(verb, "set") &&
               strcmp(verb, "timeout")) {
        sc_out(sc, "> %s%s%s", verb, *args ? " " : "", args);
    }
    if (!strcmp(verb, "set")) {
        char *name = args, *val = args + strcspn(args, " \t");

        if (*val) {
            *val++ = '\0';
        }
        while (*val == ' ' || *val == '\t' || *val == '=') {
            val++;
        }
        if (!*name) {
            bd_error_setg(errp, "%s:%d: set: usage: set NAME VALUE",
                          loc->file, loc->line);
            r = -EINVAL;
        } else {
            json_object_set_new(sc->vars, name, json_string(val));
        }
    } else if (!strcmp(verb, "timeout")) {
        if (bd_parse_int(args, &sc->wait_timeout_s) < 0 ||
            sc->wait_timeout_s <= 0) {
            bd_error_setg(errp, "%s:%d: timeout: bad value '%s'", loc->file,
                          loc->line, args);
            r = -EINVAL;
        }
    } else if (!strcmp(verb, "include")) {
        char *dir = bd_strdup(loc->file), *slash = strrchr(dir, '/');
        char *p;

        if (depth >= SC_MAX_INCLUDE_DEPTH) {
            bd_error_setg(errp, "%s:%d: include: nested too deeply",
                          loc->file, loc->line);
            r = -ELOOP;
        } else {
            if (args[0] == '/' || !slash) {
                p = bd_strdup(args);
            } else {
                *slash = '\0';
                p = bd_strdup_printf("%s/%s", dir, args);
            }
            r = sc_run_path(sc, p, depth + 1, errp);
            if (r == -ENOENT) {
                bd_error_prepend(errp, "%s:%d: ", loc->file, loc->line);
            }
            free(p);
        }
        free(dir);
    } else if (!strcmp(verb, "echo")) {
        /* Already printed. */
    } else if (!strcmp(verb, "io")) {
        struct sc_guard gd;

        sc_guard_start(sc, &gd);
        r = sc_cmd_io(sc, args, loc, errp);
        sc_guard_stop(sc, &gd);
    } else if (!strcmp(verb, "wait")) {
        r = sc_cmd_wait(sc, args, loc, errp);
    } else if (!strcmp(verb, "expect")) {
        struct sc_guard gd;

        if (sc->o->quiesce) {
            sc->o->quiesce(sc->o->sweep_opaque, true);
        }
        sc_guard_start(sc, &gd);
        r = sc_cmd_expect(sc, args, loc, errp);
        sc_guard_stop(sc, &gd);
        if (sc->o->quiesce) {
            sc->o->quiesce(sc->o->sweep_opaque, false);
        }
    } else if (!strcmp(verb, "sh")) {
        r = sc_cmd_sh(sc, args);
    } else if (!strcmp(verb, "create")) {
        r = sc_cmd_create(sc, args, loc, errp);
    } else if (!strcmp(verb, "qmp")) {
        char *name = args, *rest = args + strcspn(args, " \t");

        if (*rest) {
            *rest++ = '\0';
        }
        if (!*name) {
            bd_error_setg(errp, "%s:%d: qmp: usage: qmp COMMAND [ARGS]",
                          loc->file, loc->line);
            r = -EINVAL;
        } else {
            r = sc_qmp(sc, name, rest, loc, errp);
        }
    } else if (qmp_find_command(verb)) {
        r = sc_qmp(sc, verb, args, loc, errp);
    } else {
        bd_error_setg(errp, "%s:%d: unknown command '%s'", loc->file,
                      loc->line, verb);
        r = -EINVAL;
    }
    free(line);
    return r;
}

static int sc_run_path(struct sc *sc, const char *path, int depth,
                       struct bd_error **errp)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL, *acc = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0, start = 0, r = 0;

    if (!f) {
        bd_error_setg_errno(errp, errno, "cannot open scenario '%s'", path);
        return -ENOENT;
    }
    while (!sc->quit && (len = getline(&buf, &cap, f)) >= 0) {
        struct sc_loc loc = { .file = path };
        char *s = buf, *t;
        bool cont;

        lineno++;
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) {
            buf[--len] = '\0';
        }
        cont = len > 0 && buf[len - 1] == '\\';
        if (cont) {
            buf[--len] = '\0';
        }
        if (!acc) {
            start = lineno;
            while (*s == ' ' || *s == '\t') {
                s++;
            }
            acc = bd_strdup(s);
        } else {
            while (*s == ' ' || *s == '\t') {
                s++;
            }
            t = bd_strdup_printf("%s%s", acc, s);
            free(acc);
            acc = t;
        }
        if (cont) {
            continue;
        }
        loc.line = start;
        if (acc[0] && acc[0] != '#') {
            r = sc_line(sc, acc, &loc, depth, errp);
        }
        free(acc);
        acc = NULL;
        if (r < 0) {
            break;
        }
    }
    if (acc && r == 0 && !sc->quit) {
        struct sc_loc loc = { .file = path, .line = start };

        r = sc_line(sc, acc, &loc, depth, errp);
    }
    free(acc);
    free(buf);
    fclose(f);
    return r;
}

/* ------------------------------------------------------------------ */
/* Setup and teardown                                                   */

static void sc_quit(void *opaque)
{
    struct sc *sc = opaque;

    sc->quit = true;
}

static int sc_setup(struct sc *sc, struct bd_error **errp)
{
    struct qmp_context ctx = { 0 };

    sc->fd = -1;
    pthread_mutex_init(&sc->ev_lock, NULL);
    pthread_cond_init(&sc->ev_cond, NULL);
    if (sc->o->qmp_socket) {
        return sock_connect(sc, sc->o->qmp_socket, errp);
    }
    sc->graph = bd_graph_new();
    sc->jobs = job_manager_new(sc->graph);
    sc->exports = fx_exports_new(sc->graph);
    ctx.graph = sc->graph;
    ctx.exports = sc->exports;
    ctx.jobs = sc->jobs;
    ctx.quit = sc_quit;
    ctx.quit_opaque = sc;
    sc->server = qmp_server_new(&ctx);
    if (!sc->server) {
        bd_error_setg(errp, "cannot start the in-process QMP server");
        return -ENOMEM;
    }
    /* The transcript, not a socket client, receives the events. */
    bd_graph_set_qevent_sink(sc->graph, sc_event_sink, sc);
    if (sc->o->graph_hook) {
        sc->o->graph_hook(sc->o->sweep_opaque, sc->graph);
    }
    return 0;
}

static void sc_teardown(struct sc *sc)
{
    struct sc_event *e;

    if (sc->server) {
        qmp_server_free(sc->server);
    }
    if (sc->jobs) {
        job_manager_free(sc->jobs);
    }
    if (sc->exports) {
        fx_exports_free(sc->exports);
    }
    if (sc->graph) {
        bd_graph_set_qevent_sink(sc->graph, NULL, NULL);
        bd_drain_all(sc->graph);
        bd_graph_free(sc->graph);
    }
    if (sc->fd >= 0) {
        close(sc->fd);
    }
    free(sc->rbuf);
    while ((e = sc->ev_head)) {
        sc->ev_head = e->next;
        json_decref(e->ev);
        free(e);
    }
    json_decref(sc->last_reply);
    json_decref(sc->vars);
    json_decref(sc->evlog);
    pthread_cond_destroy(&sc->ev_cond);
    pthread_mutex_destroy(&sc->ev_lock);
}

/* What the events after a point in the log say about one job, up to its
 * first end (sc_check_policies). */
enum {
    SC_AFTER_PAUSED = 1,          /* a JOB_STATUS_CHANGE to paused */
    SC_AFTER_END_BAD = 2,         /* ends with BLOCK_JOB_COMPLETED, no error */
};

/* The promises of the error policies, from the whole event log: after a
 * BLOCK_JOB_ERROR with action "report" the job's next end is not a
 * success; with "stop" the job pauses before its next end. One pass from
 * the end of the log keeps, per job, what follows the current point: a
 * job with `ignore` on a persistent fault logs an error per retry, and
 * rescanning the rest of the log for each made long trials quadratic. */
static void sc_check_policies(struct sc *sc)
{
    size_t n = json_array_size(sc->evlog), i;
    json_t *after = json_object();          /* job id -> SC_AFTER_* bits */
    unsigned char *bad = bd_malloc0(n ? n : 1);

    for (i = n; i-- > 0;) {
        json_t *ev = json_array_get(sc->evlog, i);
        json_t *d = json_object_get(ev, "data");
        const char *name = json_string_value(json_object_get(ev, "event"));
        const char *id = json_string_value(json_object_get(d, "device"));
        const char *action;
        json_int_t bits;

        if (!id) {
            id = json_string_value(json_object_get(d, "id"));
        }
        if (!name || !id) {
            continue;
        }
        bits = json_integer_value(json_object_get(after, id));
        if (!strcmp(name, "BLOCK_JOB_COMPLETED")) {
            bits = json_object_get(d, "error") ? 0 : SC_AFTER_END_BAD;
        } else if (!strcmp(name, "BLOCK_JOB_CANCELLED")) {
            bits = 0;
        } else if (!strcmp(name, "JOB_STATUS_CHANGE") &&
                   !strcmp(json_string_value(json_object_get(d, "status"))
                           ?: "", "paused")) {
            bits |= SC_AFTER_PAUSED;
        } else if (!strcmp(name, "BLOCK_JOB_ERROR") &&
                   json_object_get(d, "device") &&
                   (action = json_string_value(json_object_get(d,
                                                              "action")))) {
            if (!strcmp(action, "report") && (bits & SC_AFTER_END_BAD)) {
                bad[i] |= SC_AFTER_END_BAD;
            }
            if (!strcmp(action, "stop") && !(bits & SC_AFTER_PAUSED)) {
                bad[i] |= SC_AFTER_PAUSED;
            }
            continue;
        } else {
            continue;
        }
        json_object_set_new(after, id, json_integer(bits));
    }
    /* In log order, as the errors happened. */
    for (i = 0; i < n; i++) {
        const char *dev = json_string_value(json_object_get(
            json_object_get(json_array_get(sc->evlog, i), "data"), "device"));

        if (bad[i] & SC_AFTER_END_BAD) {
            sc_violation(sc, NULL, "job %s met an error with action 'report' "
                         "but completed without error", dev);
        }
        if (bad[i] & SC_AFTER_PAUSED) {
            sc_violation(sc, NULL, "job %s met an error with action 'stop' "
                         "but never paused", dev);
        }
    }
    free(bad);
    json_decref(after);
}

/* Jobs left over must go away when cancelled: anything else is a job
 * that a fault left stuck. */
static void sc_sweep_final(struct sc *sc)
{
    int64_t deadline;
    json_t *jobs, *j;
    size_t i;
    bool busy;

    sc_check_policies(sc);
    /* The jobs' 10 s start at the cancel: time spent on the log above
     * (long on a loaded machine) is not theirs. */
    deadline = bd_clock_ns() + 10LL * 1000000000;
    jobs = sc_query(sc, "query-jobs", NULL);
    json_array_foreach(json_object_get(jobs, "return"), i, j) {
        const char *st = json_string_value(json_object_get(j, "status"));

        if (strcmp(st, "concluded") && strcmp(st, "null")) {
            /* force: a paused or ready job must go too (block jobs are
             * the only ones a scenario starts). */
            json_decref(sc_query(sc, "block-job-cancel",
                                 json_pack("{s:O,s:b}", "device",
                                           json_object_get(j, "id"),
                                           "force", 1)));
        }
        if (!strcmp(st, "pending")) {
            json_decref(sc_query(sc, "job-finalize",
                                 json_pack("{s:O}", "id",
                                           json_object_get(j, "id"))));
        }
    }
    json_decref(jobs);
    do {
        busy = false;
        jobs = sc_query(sc, "query-jobs", NULL);
        json_array_foreach(json_object_get(jobs, "return"), i, j) {
            const char *st = json_string_value(json_object_get(j, "status"));

            if (strcmp(st, "concluded") && strcmp(st, "null")) {
                busy = true;
                if (bd_clock_ns() >= deadline) {
                    sc_violation(sc, NULL, "job %s stuck in status '%s' "
                                 "after job-cancel",
                                 json_string_value(json_object_get(j, "id")),
                                 st);
                }
            }
        }
        json_decref(jobs);
        if (busy && bd_clock_ns() < deadline) {
            bd_sleep_ns(10 * 1000 * 1000);
        }
    } while (busy && bd_clock_ns() < deadline);
}

int sc_run_file(const char *path, const struct sc_options *opts,
                struct bd_error **errp)
{
    struct sc sc = { .o = opts };
    int r;
    const char *base = strrchr(path, '/');
    char *name;

    sc.out = opts->out ? opts->out : stdout;
    sc.wait_timeout_s = opts->wait_timeout_s > 0 ? opts->wait_timeout_s : 30;
    sc.vars = json_object();
    json_object_set_new(sc.vars, "TEST_DIR", json_string(opts->test_dir));
    json_object_set_new(sc.vars, "BLKRIG", json_string(opts->blkrig));
    name = bd_strdup(base ? base + 1 : path);
    name[strcspn(name, ".")] = '\0';
    json_object_set_new(sc.vars, "CASE", json_string(name));
    free(name);
    if (opts->sweep) {
        sc.evlog = json_array();
    }
    r = sc_setup(&sc, errp);
    if (r == 0) {
        r = sc_run_path(&sc, path, 0, errp);
        /* In a sweep the invariants hold also when the fault stopped the
         * scenario early: jobs must still conclude, policies still keep
         * their promises. */
        if (opts->sweep) {
            if (opts->quiesce) {
                opts->quiesce(opts->sweep_opaque, true);
            }
            sc_sweep_final(&sc);
        }
    }
    sc_teardown(&sc);
    /* A broken invariant outranks the step error that followed it. */
    if (opts->sweep && sc.failures > 0) {
        return sc.failures;
    }
    return r < 0 ? r : sc.failures;
}

char *sc_file_groups(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL, *res;
    size_t cap = 0;

    if (!f) {
        return NULL;
    }
    res = bd_strdup("");
    while (getline(&buf, &cap, f) >= 0) {
        const char *p = buf;

        while (*p == ' ' || *p == '\t') {
            p++;
        }
        if (!strncmp(p, "# group:", 8)) {
            char *t;

            p += 8;
            t = bd_strdup_printf("%s %s", res, p);
            free(res);
            res = t;
            res[strcspn(res, "\n")] = ' ';
        }
    }
    free(buf);
    fclose(f);
    return res;
}
