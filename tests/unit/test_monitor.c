/*
 * tests/unit/test_monitor.c - monitor/: the dispatcher through
 * qmp_server_execute, and the server over real unix sockets and pipes
 * (greeting, negotiation, framing, events, many clients, bad clients).
 * Expected texts are qemu-storage-daemon 10.0.2's for the same input.
 */
#include "common/config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/cutils.h"
#include "driver/block.h"
#include "monitor/json-stream.h"
#include "monitor/monitor.h"
#include "tests/unit/unit.h"

/* Generous: only guards against a hang, never measures anything. */
#define IO_TIMEOUT_MS 20000

struct fixture {
    struct bd_graph *g;
    struct qmp_server *s;
    char path[108];
    int quits;
};

static void on_quit(void *opaque)
{
    struct fixture *f = opaque;

    __atomic_add_fetch(&f->quits, 1, __ATOMIC_SEQ_CST);
}

static int setup(void **state)
{
    struct fixture *f = bd_malloc0(sizeof(*f));
    struct qmp_context ctx = { 0 };
    struct bd_error *err = NULL;
    int fd;

    f->g = bd_graph_new();
    ctx.graph = f->g;
    ctx.quit = on_quit;
    ctx.quit_opaque = f;
    f->s = qmp_server_new(&ctx);
    assert_non_null(f->s);
    snprintf(f->path, sizeof(f->path), "/tmp/blkrig-qmp-unit.%d.sock",
             (int)getpid());
    fd = qmp_listen_unix(f->path, &err);
    assert_true(fd >= 0);
    assert_int_equal(qmp_server_add_listener(f->s, fd, &err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    qmp_server_free(f->s);
    bd_graph_free(f->g);
    unlink(f->path);
    free(f);
    return 0;
}

/* ------------------------------------------------------------------ */
/* In-process execution                                                 */

static json_t *exec(struct fixture *f, const char *text)
{
    json_t *cmd = json_loads(text, 0, NULL);
    json_t *r = NULL;

    assert_non_null(cmd);
    r = qmp_server_execute(f->s, cmd);
    json_decref(cmd);
    return r;
}

static void expect_error(struct fixture *f, const char *text,
                         const char *cls, const char *desc)
{
    json_t *r = exec(f, text);
    json_t *e = json_object_get(r, "error");

    if (!e) {
        fail_msg("%s: no error in %s", text, json_dumps(r, 0));
    }
    assert_string_equal(json_string_value(json_object_get(e, "class")), cls);
    assert_string_equal(json_string_value(json_object_get(e, "desc")), desc);
    json_decref(r);
}

static json_t *expect_return(struct fixture *f, const char *text)
{
    json_t *r = exec(f, text);
    json_t *ret = json_object_get(r, "return");

    if (!ret) {
        fail_msg("%s: no return in %s", text, json_dumps(r, 0));
    }
    json_incref(ret);
    json_decref(r);
    return ret;
}

static void test_monitor_dispatch_errors(void **state)
{
    struct fixture *f = *state;
    json_t *r = NULL;

    expect_error(f, "{\"execute\":\"foo\"}", "CommandNotFound",
                 "The command foo has not been found");
    expect_error(f, "[1]", "GenericError", "QMP input must be a JSON object");
    expect_error(f, "{\"execute\":1}", "GenericError",
                 "QMP input member 'execute' must be a string");
    expect_error(f, "{\"id\":1}", "GenericError",
                 "QMP input lacks member 'execute'");
    expect_error(f, "{\"execute\":\"query-version\",\"arguments\":[]}",
                 "GenericError",
                 "QMP input member 'arguments' must be an object");
    expect_error(f, "{\"execute\":\"query-version\",\"arguments\":{\"a\":1}}",
                 "GenericError", "Parameter 'a' is unexpected");
    expect_error(f, "{\"execute\":\"query-version\",\"extra\":1}",
                 "GenericError", "QMP input member 'extra' is unexpected");
    expect_error(f, "{\"exec-oob\":\"query-version\"}", "GenericError",
                 "QMP input member 'exec-oob' is unexpected");
    expect_error(f, "{\"execute\":\"qmp_capabilities\"}", "CommandNotFound",
                 "Capabilities negotiation is already complete, command "
                 "ignored");
    expect_error(f, "{\"execute\":\"blockdev-del\"}", "GenericError",
                 "Parameter 'node-name' is missing");
    expect_error(f, "{\"execute\":\"blockdev-del\",\"arguments\":"
                 "{\"node-name\":3}}", "GenericError",
                 "Invalid parameter type for 'node-name', expected: string");

    /* The id is echoed on errors and returns, whatever its type. */
    r = exec(f, "{\"execute\":\"foo\",\"id\":[1,{\"a\":2}]}");
    assert_int_equal(json_array_size(json_object_get(r, "id")), 2);
    json_decref(r);
    r = exec(f, "{\"execute\":\"query-version\",\"id\":\"x\"}");
    assert_string_equal(json_string_value(json_object_get(r, "id")), "x");
    json_decref(r);
}

static void test_monitor_control(void **state)
{
    struct fixture *f = *state;
    json_t *v = expect_return(f, "{\"execute\":\"query-version\"}");
    json_t *cmds = NULL;
    size_t i;
    json_t *c;
    bool seen_add = false, seen_caps = false;

    assert_int_equal(json_integer_value(json_object_get(
        json_object_get(v, "qemu"), "major")), BLKRIG_QEMU_COMPAT_MAJOR);
    assert_non_null(json_string_value(json_object_get(v, "package")));
    json_decref(v);

    cmds = expect_return(f, "{\"execute\":\"query-commands\"}");
    json_array_foreach(cmds, i, c) {
        const char *n = json_string_value(json_object_get(c, "name"));

        seen_add |= !strcmp(n, "blockdev-add");
        seen_caps |= !strcmp(n, "qmp_capabilities");
    }
    assert_true(seen_add && seen_caps);
    json_decref(cmds);

    v = expect_return(f, "{\"execute\":\"quit\"}");
    json_decref(v);
    assert_int_equal(f->quits, 1);
}

static json_t *find_node(json_t *list, const char *name)
{
    size_t i;
    json_t *n;

    json_array_foreach(list, i, n) {
        if (!strcmp(json_string_value(json_object_get(n, "node-name")),
                    name)) {
            return n;
        }
    }
    return NULL;
}

static void test_monitor_blockdev(void **state)
{
    struct fixture *f = *state;
    json_t *r = NULL;
    json_t *n = NULL;

    expect_error(f, "{\"execute\":\"blockdev-add\",\"arguments\":"
                 "{\"driver\":\"null-co\",\"node-name\":\"n\",\"size\":\"x\"}}",
                 "GenericError",
                 "Invalid parameter type for 'size', expected: integer");
    expect_error(f, "{\"execute\":\"blockdev-add\",\"arguments\":"
                 "{\"driver\":\"null-co\"}}", "GenericError",
                 "'node-name' must be specified for the root node");
    json_decref(expect_return(f, "{\"execute\":\"blockdev-add\",\"arguments\":"
        "{\"driver\":\"null-co\",\"node-name\":\"n\",\"size\":1048576}}"));
    json_decref(expect_return(f, "{\"execute\":\"blockdev-add\",\"arguments\":"
        "{\"driver\":\"raw\",\"node-name\":\"r\",\"file\":\"n\","
        "\"read-only\":true,\"cache\":{\"no-flush\":true},"
        "\"detect-zeroes\":\"on\"}}"));

    r = expect_return(f, "{\"execute\":\"query-named-block-nodes\"}");
    assert_int_equal(json_array_size(r), 2);
    /* Newest first, as QEMU lists them. */
    assert_string_equal(json_string_value(json_object_get(
        json_array_get(r, 0), "node-name")), "r");
    n = find_node(r, "r");
    assert_string_equal(json_string_value(json_object_get(n, "drv")), "raw");
    assert_true(json_is_true(json_object_get(n, "ro")));
    assert_string_equal(json_string_value(json_object_get(n,
                        "detect_zeroes")), "on");
    assert_true(json_is_true(json_object_get(json_object_get(n, "cache"),
                                             "no-flush")));
    /* A null-co node with a size reads differently from "null-co://",
     * so QEMU names it by its options. */
    assert_string_equal(json_string_value(json_object_get(n, "file")),
                        "json:{\"driver\": \"null-co\", \"size\": 1048576}");
    assert_int_equal(json_integer_value(json_object_get(
        json_object_get(n, "image"), "virtual-size")), 1048576);
    n = find_node(r, "n");
    assert_string_equal(json_string_value(json_object_get(
        json_object_get(n, "image"), "format")), "null-co");
    json_decref(r);

    expect_error(f, "{\"execute\":\"blockdev-del\",\"arguments\":"
                 "{\"node-name\":\"n\"}}", "GenericError",
                 "Block device n is in use");
    expect_error(f, "{\"execute\":\"blockdev-del\",\"arguments\":"
                 "{\"node-name\":\"zz\"}}", "GenericError",
                 "Failed to find node with node-name='zz'");
    json_decref(expect_return(f, "{\"execute\":\"blockdev-del\","
                              "\"arguments\":{\"node-name\":\"r\"}}"));
    json_decref(expect_return(f, "{\"execute\":\"blockdev-del\","
                              "\"arguments\":{\"node-name\":\"n\"}}"));
    r = expect_return(f, "{\"execute\":\"query-named-block-nodes\"}");
    assert_int_equal(json_array_size(r), 0);
    json_decref(r);
}

/* Histograms: n boundaries give n+1 bins, per I/O type, visible in
 * query-blockstats; bad boundaries are refused. */
static void test_monitor_histogram(void **state)
{
    struct fixture *f = *state;
    struct bd_error *err = NULL;
    struct bd_blk *b = NULL;
    char buf[512] = { 0 };
    json_t *r = NULL;
    json_t *st = NULL;
    json_t *h = NULL;
    json_t *bins = NULL;
    uint64_t total = 0;
    size_t i;
    json_t *v;

    json_decref(expect_return(f, "{\"execute\":\"blockdev-add\",\"arguments\":"
        "{\"driver\":\"null-co\",\"node-name\":\"n\",\"size\":1048576}}"));
    b = bd_blk_new(f->g, "dev0", BD_PERM_CONSISTENT_READ | BD_PERM_WRITE,
                   BD_PERM_ALL);
    assert_int_equal(bd_blk_insert(b, bd_graph_find_node(f->g, "n"), &err),
                     0);

    expect_error(f, "{\"execute\":\"block-latency-histogram-set\","
                 "\"arguments\":{\"id\":\"nope\"}}", "DeviceNotFound",
                 "Device 'nope' not found");
    expect_error(f, "{\"execute\":\"block-latency-histogram-set\","
                 "\"arguments\":{\"id\":\"dev0\",\"boundaries\":[10,5]}}",
                 "GenericError", "Device 'dev0' set read boundaries fail");
    expect_error(f, "{\"execute\":\"block-latency-histogram-set\","
                 "\"arguments\":{\"id\":\"dev0\",\"boundaries-write\":[0]}}",
                 "GenericError", "Device 'dev0' set write boundaries fail");
    json_decref(expect_return(f, "{\"execute\":\"block-latency-histogram-set\","
        "\"arguments\":{\"id\":\"dev0\",\"boundaries\":[1000,1000000],"
        "\"boundaries-write\":[5]}}"));
    for (i = 0; i < 3; i++) {
        assert_int_equal(bd_blk_pread(b, 0, sizeof(buf), buf, 0), 0);
    }
    assert_int_equal(bd_blk_pwrite(b, 0, sizeof(buf), buf, 0), 0);

    r = expect_return(f, "{\"execute\":\"query-blockstats\"}");
    assert_int_equal(json_array_size(r), 1);
    assert_string_equal(json_string_value(json_object_get(
        json_array_get(r, 0), "device")), "dev0");
    st = json_object_get(json_array_get(r, 0), "stats");
    assert_int_equal(json_integer_value(json_object_get(st,
                     "rd_operations")), 3);
    assert_int_equal(json_integer_value(json_object_get(st, "rd_bytes")),
                     3 * sizeof(buf));
    h = json_object_get(st, "rd_latency_histogram");
    bins = json_object_get(h, "bins");
    assert_int_equal(json_array_size(json_object_get(h, "boundaries")), 2);
    assert_int_equal(json_array_size(bins), 3);
    json_array_foreach(bins, i, v) {
        total += (uint64_t)json_integer_value(v);
    }
    assert_int_equal(total, 3);
    h = json_object_get(st, "wr_latency_histogram");
    assert_int_equal(json_array_size(json_object_get(h, "bins")), 2);
    assert_non_null(json_object_get(st, "flush_latency_histogram"));
    json_decref(r);

    /* No boundaries at all removes every histogram. */
    json_decref(expect_return(f, "{\"execute\":\"block-latency-histogram-set\","
        "\"arguments\":{\"id\":\"n\"}}"));
    r = expect_return(f, "{\"execute\":\"query-blockstats\"}");
    st = json_object_get(json_array_get(r, 0), "stats");
    assert_null(json_object_get(st, "rd_latency_histogram"));
    json_decref(r);
    bd_blk_free(b);
}

/* ------------------------------------------------------------------ */
/* Sockets                                                              */

static int connect_client(struct fixture *f)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    strcpy(a.sun_path, f->path);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

/* Read one "\r\n"-terminated line (byte by byte: tests are small). */
static json_t *read_msg_fd(int fd, char **raw)
{
    char line[65536];
    size_t n = 0;
    json_t *v = NULL;

    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ssize_t r;

        if (poll(&p, 1, IO_TIMEOUT_MS) != 1) {
            fail_msg("no reply from the monitor");
        }
        r = read(fd, line + n, 1);
        if (r <= 0) {
            return NULL;   /* closed */
        }
        n++;
        assert_true(n < sizeof(line));
        if (n >= 2 && line[n - 2] == '\r' && line[n - 1] == '\n') {
            break;
        }
    }
    line[n - 2] = '\0';
    v = json_loads(line, 0, NULL);
    assert_non_null(v);
    if (raw) {
        *raw = bd_strdup(line);
    }
    return v;
}

static void send_str(int fd, const char *s)
{
    size_t len = strlen(s);

    assert_int_equal(write(fd, s, len), (ssize_t)len);
}

static const char *err_desc(json_t *r)
{
    return json_string_value(json_object_get(json_object_get(r, "error"),
                                             "desc"));
}

static void negotiate(int fd)
{
    json_t *g = read_msg_fd(fd, NULL);
    json_t *r = NULL;

    assert_non_null(json_object_get(g, "QMP"));
    json_decref(g);
    send_str(fd, "{\"execute\":\"qmp_capabilities\"}\n");
    r = read_msg_fd(fd, NULL);
    assert_non_null(json_object_get(r, "return"));
    json_decref(r);
}

static void test_monitor_socket_protocol(void **state)
{
    struct fixture *f = *state;
    int fd = connect_client(f);
    char *raw = NULL;
    json_t *g = read_msg_fd(fd, &raw);
    json_t *r = NULL;

    /* The greeting, byte for byte in QEMU's layout. */
    assert_string_equal(raw, "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": "
                        "2, \"minor\": 0, \"major\": 10}, \"package\": "
                        "\"blkrig " BLKRIG_VERSION "\"}, \"capabilities\": "
                        "[\"oob\"]}}");
    free(raw);
    json_decref(g);

    send_str(fd, "{\"execute\":\"query-version\"}\n");
    r = read_msg_fd(fd, NULL);
    assert_string_equal(err_desc(r), "Expecting capabilities negotiation "
                        "with 'qmp_capabilities'");
    assert_string_equal(json_string_value(json_object_get(
        json_object_get(r, "error"), "class")), "CommandNotFound");
    json_decref(r);
    send_str(fd, "{\"execute\":\"qmp_capabilities\",\"arguments\":"
             "{\"enable\":[\"foo\"]}}\n");
    r = read_msg_fd(fd, NULL);
    assert_string_equal(err_desc(r),
                        "Parameter 'null' does not accept value 'foo'");
    json_decref(r);
    send_str(fd, "garbage\n");
    r = read_msg_fd(fd, NULL);
    assert_string_equal(err_desc(r),
                        "JSON parse error, invalid keyword 'garbage'");
    json_decref(r);
    /* QEMU's single-quoted strings, with \' and a bare " inside. */
    send_str(fd, "{'execute': 'qmp_capabilities', 'id': 'it\\'s \"q\"'}\n");
    r = read_msg_fd(fd, NULL);
    assert_non_null(json_object_get(r, "return"));
    assert_string_equal(json_string_value(json_object_get(r, "id")),
                        "it's \"q\"");
    json_decref(r);

    /* Two commands in one write, one command across two writes. */
    send_str(fd, "{\"execute\":\"query-version\",\"id\":1} "
             "{\"execute\":\"query-version\",\"id\":2}");
    r = read_msg_fd(fd, NULL);
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 1);
    json_decref(r);
    r = read_msg_fd(fd, NULL);
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 2);
    json_decref(r);
    send_str(fd, "{\"execute\":\"query-ver");
    send_str(fd, "sion\",\"id\":3}");
    r = read_msg_fd(fd, NULL);
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 3);
    json_decref(r);

    send_str(fd, "{\"execute\": }\n");
    r = read_msg_fd(fd, NULL);
    assert_string_equal(err_desc(r), "JSON parse error, expecting value");
    json_decref(r);
    send_str(fd, "{\"a\" 1}\n");
    r = read_msg_fd(fd, NULL);
    assert_string_equal(err_desc(r),
                        "JSON parse error, missing : in object pair");
    json_decref(r);
    send_str(fd, "1\n");
    r = read_msg_fd(fd, NULL);
    assert_string_equal(err_desc(r), "QMP input must be a JSON object");
    json_decref(r);
    /* Too deep: one error, then the next line is served again. */
    {
        char *deep = bd_malloc(2100);

        memset(deep, '[', 2000);
        strcpy(deep + 2000, "\n");
        send_str(fd, deep);
        free(deep);
    }
    r = read_msg_fd(fd, NULL);
    assert_string_equal(err_desc(r), "JSON nesting depth limit exceeded");
    json_decref(r);
    send_str(fd, "{\"execute\":\"query-version\",\"id\":4}\n");
    r = read_msg_fd(fd, NULL);
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 4);
    json_decref(r);
    close(fd);
}

/* Events reach negotiated clients only, with a timestamp, before the
 * reply of the command that raised them. */
static void test_monitor_events(void **state)
{
    struct fixture *f = *state;
    int a = connect_client(f);
    int b = connect_client(f);
    json_t *g = NULL;
    json_t *ev = NULL;
    json_t *ts = NULL;
    json_t *r = NULL;

    negotiate(a);
    g = read_msg_fd(b, NULL);   /* b stays in negotiation mode */
    json_decref(g);

    bd_graph_emit_qevent(f->g, "TEST_EVENT", json_pack("{s:s}", "id", "x"));
    ev = read_msg_fd(a, NULL);
    assert_string_equal(json_string_value(json_object_get(ev, "event")),
                        "TEST_EVENT");
    assert_string_equal(json_string_value(json_object_get(
        json_object_get(ev, "data"), "id")), "x");
    ts = json_object_get(ev, "timestamp");
    assert_true(json_integer_value(json_object_get(ts, "seconds")) > 0);
    assert_true(json_integer_value(json_object_get(ts, "microseconds")) >= 0);
    assert_true(json_integer_value(json_object_get(ts, "microseconds")) <
                1000000);
    json_decref(ev);
    bd_graph_emit_qevent(f->g, "NO_DATA", NULL);
    ev = read_msg_fd(a, NULL);
    assert_null(json_object_get(ev, "data"));
    json_decref(ev);

    /* b gets no event: its next message is the reply to its command. */
    send_str(b, "{\"execute\":\"qmp_capabilities\",\"id\":\"b\"}\n");
    r = read_msg_fd(b, NULL);
    assert_string_equal(json_string_value(json_object_get(r, "id")), "b");
    json_decref(r);
    close(a);
    close(b);
}

static void wait_clients(struct fixture *f, int n)
{
    int i;

    for (i = 0; i < IO_TIMEOUT_MS && qmp_server_client_count(f->s) != n;
         i++) {
        bd_sleep_ns(1000 * 1000);
    }
    assert_int_equal(qmp_server_client_count(f->s), n);
}

/* 100 clients at once, each served; a client that sends a command and
 * goes away, and one that sends half a command, leave the others alone. */
static void test_monitor_many_clients(void **state)
{
    struct fixture *f = *state;
    int fds[100];
    size_t i;
    json_t *r = NULL;
    int rude;

    for (i = 0; i < 100; i++) {
        fds[i] = connect_client(f);
    }
    for (i = 0; i < 100; i++) {
        negotiate(fds[i]);
    }
    for (i = 0; i < 100; i++) {
        char cmd[96];

        snprintf(cmd, sizeof(cmd),
                 "{\"execute\":\"query-version\",\"id\":%zu}\n", i);
        send_str(fds[i], cmd);
    }
    for (i = 0; i < 100; i++) {
        r = read_msg_fd(fds[i], NULL);
        assert_int_equal(json_integer_value(json_object_get(r, "id")),
                         (json_int_t)i);
        json_decref(r);
    }
    wait_clients(f, 100);

    rude = connect_client(f);
    negotiate(rude);
    send_str(rude, "{\"execute\":\"query-named-block-nodes\"}\n"
             "{\"execute\":\"query-vers");
    close(rude);
    for (i = 0; i < 100; i++) {
        send_str(fds[i], "{\"execute\":\"query-version\",\"id\":\"again\"}\n");
        r = read_msg_fd(fds[i], NULL);
        assert_string_equal(json_string_value(json_object_get(r, "id")),
                            "again");
        json_decref(r);
        close(fds[i]);
    }
    wait_clients(f, 0);
}

/* --chardev stdio: one client on a pair of fds. */
static void test_monitor_stdio(void **state)
{
    struct fixture *f = *state;
    struct bd_error *err = NULL;
    int to_srv[2], from_srv[2];
    json_t *r = NULL;

    assert_int_equal(pipe(to_srv), 0);
    assert_int_equal(pipe(from_srv), 0);
    assert_int_equal(qmp_server_add_stdio(f->s, to_srv[0], from_srv[1],
                                          &err), 0);
    {
        json_t *g = read_msg_fd(from_srv[0], NULL);

        assert_non_null(json_object_get(g, "QMP"));
        json_decref(g);
    }
    send_str(to_srv[1], "{\"execute\":\"qmp_capabilities\"}\n"
             "{\"execute\":\"query-commands\",\"id\":7}\n");
    r = read_msg_fd(from_srv[0], NULL);
    json_decref(r);
    r = read_msg_fd(from_srv[0], NULL);
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 7);
    assert_true(json_array_size(json_object_get(r, "return")) >= 4);
    json_decref(r);
    /* EOF on input ends the client; the server keeps its fds open. */
    close(to_srv[1]);
    wait_clients(f, 0);
    close(to_srv[0]);
    close(from_srv[0]);
    close(from_srv[1]);
}


/* ------------------------------------------------------------------ */
/* Framing (json-stream) on its own                                     */

struct collected {
    json_t *list;   /* parsed messages, or {"err": text} */
};

static int collect(void *opaque, json_t *msg, struct bd_error *err)
{
    struct collected *c = opaque;

    if (err) {
        json_array_append_new(c->list, json_pack("{s:s}", "err", err->msg));
        bd_error_free(err);
    } else {
        json_array_append_new(c->list, msg);
    }
    return 0;
}

/* Feeding byte by byte gives exactly what feeding at once gives. */
static void test_monitor_framing_chunks(void **state)
{
    static const char input[] =
        "{\"a\": [1, {\"b\": \"}]\\\"\"}]} {'c': 'it\\'s'}\n"
        "garbage\n[1,\n2]\n\"str\"\n{\"d\": 1}}\n"
        "{\"e\":\"\\u00e9\"} 12 ";
    struct collected whole = { json_array() }, bytes = { json_array() };
    struct qmp_splitter sp;
    size_t i;

    (void)state;
    qmp_splitter_init(&sp);
    qmp_splitter_feed(&sp, input, strlen(input), collect, &whole);
    qmp_splitter_destroy(&sp);
    qmp_splitter_init(&sp);
    for (i = 0; i < strlen(input); i++) {
        qmp_splitter_feed(&sp, input + i, 1, collect, &bytes);
    }
    qmp_splitter_destroy(&sp);
    assert_true(json_equal(whole.list, bytes.list));
    /* {a}, {c}, garbage, [1,2], "str", {d}, stray }, {e}, 12 */
    assert_int_equal(json_array_size(whole.list), 9);
    assert_string_equal(json_string_value(json_object_get(
        json_array_get(whole.list, 0), "a") ? json_object_get(
        json_array_get(json_object_get(json_array_get(whole.list, 0), "a"),
                       1), "b") : NULL), "}]\"");
    assert_string_equal(json_string_value(json_object_get(
        json_array_get(whole.list, 1), "c")), "it's");
    assert_string_equal(json_string_value(json_object_get(
        json_array_get(whole.list, 2), "err")),
        "JSON parse error, invalid keyword 'garbage'");
    assert_string_equal(json_string_value(json_object_get(
        json_array_get(whole.list, 6), "err")),
        "JSON parse error, expecting value");
    assert_string_equal(json_string_value(json_object_get(
        json_array_get(whole.list, 7), "e")), "\xc3\xa9");
    assert_int_equal(json_integer_value(json_array_get(whole.list, 8)), 12);
    json_decref(whole.list);
    json_decref(bytes.list);
}

/* Past 64 MiB a message is dropped with QEMU's error, and the stream
 * resynchronises at the next newline. */
static void test_monitor_framing_limit(void **state)
{
    struct collected c = { json_array() };
    struct qmp_splitter sp;
    size_t big = QMP_MAX_MESSAGE + 16;
    char *buf = bd_malloc(big);

    (void)state;
    buf[0] = '[';
    buf[1] = '"';
    memset(buf + 2, 'x', big - 2);
    qmp_splitter_init(&sp);
    qmp_splitter_feed(&sp, buf, big, collect, &c);
    qmp_splitter_feed(&sp, "\"]\n{\"ok\": true}\n", 15, collect, &c);
    qmp_splitter_destroy(&sp);
    free(buf);
    assert_int_equal(json_array_size(c.list), 2);
    assert_string_equal(json_string_value(json_object_get(
        json_array_get(c.list, 0), "err")), "JSON token size limit exceeded");
    assert_true(json_is_true(json_object_get(json_array_get(c.list, 1),
                                             "ok")));
    json_decref(c.list);
}

int unit_run_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_monitor_dispatch_errors, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_monitor_control, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_monitor_blockdev, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_monitor_histogram, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_monitor_socket_protocol, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_monitor_events, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_monitor_many_clients, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_monitor_stdio, setup, teardown),
        cmocka_unit_test(test_monitor_framing_chunks),
        cmocka_unit_test(test_monitor_framing_limit),
    };

    return cmocka_run_group_tests_name("monitor", tests, NULL, NULL);
}
