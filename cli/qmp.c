/*
 * cli/qmp.c - `blkrig qmp`: a small QMP client for shell scripts.
 *
 *   blkrig qmp [OPTIONS] SOCKET [COMMAND]...
 *
 * Connects to a QMP unix socket (blkrig serve or qemu-storage-daemon),
 * negotiates capabilities, sends each COMMAND (a JSON object, or a bare
 * command name for one without arguments; "-" reads one command per line
 * from stdin) and prints each reply on one line. With --wait EVENT it then
 * waits for that event (counting events that arrived while the commands
 * ran) and prints it.
 *
 * Exit status: 0 all commands returned; 1 some command got an error reply
 * (printed like the others); 2 usage, connection or protocol failure; 3
 * --timeout expired before the event came.
 */
#include "common/config.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <jansson.h>

#include "cli/verbs.h"
#include "common/cutils.h"

struct client {
    int fd;
    char *buf;           /* bytes received, not yet split into lines */
    size_t len, cap;
    size_t dump_flags;   /* jansson flags for printing */
    bool print_events;
    const char *wait_event;
    json_t *seen_event;  /* the awaited event, once it arrived */
    int64_t deadline;    /* CLOCK_MONOTONIC ns, or -1 */
    bool timed_out;
};

static void usage(FILE *f)
{
    fprintf(f,
        "Usage: blkrig qmp [OPTIONS] SOCKET [COMMAND]...\n"
        "\n"
        "Send QMP commands to a blkrig serve / qemu-storage-daemon monitor\n"
        "socket and print the replies, one line each.\n"
        "\n"
        "  COMMAND              a JSON object ({\"execute\": ..}), a bare\n"
        "                       command name, or - to read commands (one per\n"
        "                       line) from stdin; anything else is sent as\n"
        "                       it is, and one reply is read per COMMAND\n"
        "  -w, --wait EVENT     after the commands, wait for EVENT and print it\n"
        "  -t, --timeout SECS   give up after SECS in all (exit status 3)\n"
        "  -e, --events         also print every event received\n"
        "  -s, --sort-keys      print objects with sorted keys (comparable\n"
        "                       output from different servers)\n"
        "  -r, --raw            no negotiation, no bare names: print the\n"
        "                       greeting and send the commands as they are\n"
        "  -h, --help           this text\n"
        "\n"
        "Exit status: 0 all commands returned, 1 a command failed, 2 usage or\n"
        "connection error, 3 timeout.\n");
}

static int connect_unix(const char *path)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    int fd;

    if (strlen(path) >= sizeof(a.sun_path)) {
        fprintf(stderr, "blkrig qmp: socket path '%s' is too long\n", path);
        return -1;
    }
    strcpy(a.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        fprintf(stderr, "blkrig qmp: cannot connect to '%s': %s\n", path,
                strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return fd;
}

static void print_msg(struct client *c, json_t *v)
{
    char *s = json_dumps(v, c->dump_flags);

    if (s) {
        printf("%s\n", s);
        fflush(stdout);
        free(s);
    }
}

/*
 * Next message from the server. deadline_ns < 0 waits forever. Returns the
 * message, or NULL on EOF/error (*timed_out says which).
 */
static json_t *next_msg(struct client *c, int64_t deadline_ns,
                        bool *timed_out)
{
    *timed_out = false;
    for (;;) {
        char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;
        struct pollfd p = { .fd = c->fd, .events = POLLIN };
        int timeout_ms = -1;
        ssize_t r;

        if (nl) {
            size_t linelen = (size_t)(nl - c->buf) + 1;
            json_error_t jerr;
            json_t *v = json_loadb(c->buf, linelen, JSON_ALLOW_NUL, &jerr);

            memmove(c->buf, c->buf + linelen, c->len - linelen);
            c->len -= linelen;
            if (!v) {
                fprintf(stderr, "blkrig qmp: bad message from the server: "
                        "%s\n", jerr.text);
                return NULL;
            }
            return v;
        }
        if (deadline_ns >= 0) {
            int64_t left = deadline_ns - bd_clock_ns();

            if (left <= 0) {
                *timed_out = true;
                return NULL;
            }
            timeout_ms = (int)((left + 999999) / 1000000);
        }
        r = poll(&p, 1, timeout_ms);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r == 0) {
            continue;   /* the deadline check above decides */
        }
        if (c->len + 65536 > c->cap) {
            c->cap = (c->len + 65536) * 2;
            c->buf = bd_realloc(c->buf, c->cap);
        }
        do {
            r = read(c->fd, c->buf + c->len, 65536);
        } while (r < 0 && errno == EINTR);
        if (r <= 0) {
            return NULL;
        }
        c->len += (size_t)r;
    }
}

/* An event arrived: remember the awaited one, print if asked. */
static void on_event(struct client *c, json_t *ev)
{
    const char *name = json_string_value(json_object_get(ev, "event"));

    if (c->wait_event && !c->seen_event && name &&
        !strcmp(name, c->wait_event)) {
        c->seen_event = json_incref(ev);
        return;
    }
    if (c->print_events) {
        print_msg(c, ev);
    }
}

/* Read until a reply (not an event) comes. */
static json_t *read_reply(struct client *c)
{
    for (;;) {
        json_t *v = next_msg(c, c->deadline, &c->timed_out);

        if (!v) {
            return NULL;
        }
        if (json_object_get(v, "event")) {
            on_event(c, v);
            json_decref(v);
            continue;
        }
        return v;
    }
}

static int send_all(int fd, const char *s, size_t len)
{
    while (len) {
        ssize_t r = send(fd, s, len, MSG_NOSIGNAL);

        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        s += r;
        len -= (size_t)r;
    }
    return 0;
}

static bool is_command_name(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))) {
        return false;
    }
    for (; *s; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '-' || *s == '_')) {
            return false;
        }
    }
    return true;
}

/* Send one command text; returns 0 returned, 1 error reply, 2 failure. */
static int run_command(struct client *c, const char *text, bool raw)
{
    const char *p = text;
    char *line = NULL;
    json_t *reply = NULL;
    int rc;

    while (*p == ' ' || *p == '\t') {
        p++;
    }
    if (!*p) {
        return 0;
    }
    if (!raw && is_command_name(p)) {
        /* A bare command name. */
        json_t *o = json_pack("{s:s}", "execute", p);
        char *t = json_dumps(o, JSON_COMPACT);

        line = bd_strdup_printf("%s\n", t);
        free(t);
        json_decref(o);
    } else {
        line = bd_strdup_printf("%s\n", p);
    }
    /* One write: the server may act on the command (quit) and close the
     * socket as soon as the closing brace arrives. */
    if (send_all(c->fd, line, strlen(line)) < 0) {
        fprintf(stderr, "blkrig qmp: connection lost: %s\n",
                strerror(errno));
        free(line);
        return 2;
    }
    free(line);
    reply = read_reply(c);
    if (!reply) {
        if (c->timed_out) {
            fprintf(stderr, "blkrig qmp: timed out waiting for the reply\n");
            return 3;
        }
        fprintf(stderr, "blkrig qmp: connection closed before the reply\n");
        return 2;
    }
    print_msg(c, reply);
    rc = json_object_get(reply, "error") ? 1 : 0;
    json_decref(reply);
    return rc;
}

static int run_stdin(struct client *c, bool raw)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;

    while ((n = getline(&line, &cap, stdin)) >= 0) {
        int r;

        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
            line[--n] = '\0';
        }
        r = run_command(c, line, raw);
        if (r >= 2) {
            rc = r;
            break;
        }
        rc = rc ? rc : r;
    }
    free(line);
    return rc;
}

int verb_qmp(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "wait", required_argument, NULL, 'w' },
        { "timeout", required_argument, NULL, 't' },
        { "events", no_argument, NULL, 'e' },
        { "sort-keys", no_argument, NULL, 's' },
        { "raw", no_argument, NULL, 'r' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct client c = { .fd = -1 };
    double timeout = -1;
    bool raw = false;
    json_t *greeting = NULL;
    int rc = 0;
    int opt;
    int i;

    c.dump_flags = JSON_ENSURE_ASCII;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "w:t:esrh", longopts, NULL))
           != -1) {
        switch (opt) {
        case 'w':
            c.wait_event = optarg;
            break;
        case 't': {
            char *end = NULL;

            timeout = strtod(optarg, &end);
            if (!*optarg || *end || !(timeout >= 0) || timeout > 1e9) {
                fprintf(stderr, "blkrig qmp: invalid timeout '%s'\n",
                        optarg);
                return 2;
            }
            break;
        }
        case 'e':
            c.print_events = true;
            break;
        case 's':
            c.dump_flags |= JSON_SORT_KEYS;
            break;
        case 'r':
            raw = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "blkrig qmp: missing SOCKET\n");
        usage(stderr);
        return 2;
    }
    /* The deadline covers the whole run, so a hung command cannot make
     * a script wait forever either. */
    c.deadline = timeout >= 0 ? bd_clock_ns() + (int64_t)(timeout * 1e9)
                              : -1;
    c.fd = connect_unix(argv[optind]);
    if (c.fd < 0) {
        return 2;
    }
    greeting = next_msg(&c, c.deadline, &c.timed_out);
    if (!greeting || !json_object_get(greeting, "QMP")) {
        fprintf(stderr, "blkrig qmp: no QMP greeting from '%s'\n",
                argv[optind]);
        rc = 2;
        goto out;
    }
    if (raw) {
        print_msg(&c, greeting);
    } else {
        json_t *r = NULL;
        static const char caps[] = "{\"execute\":\"qmp_capabilities\"}\n";

        if (send_all(c.fd, caps, sizeof(caps) - 1) < 0 ||
            !(r = read_reply(&c)) || !json_object_get(r, "return")) {
            fprintf(stderr, "blkrig qmp: capabilities negotiation failed\n");
            json_decref(r);
            rc = 2;
            goto out;
        }
        json_decref(r);
    }
    for (i = optind + 1; i < argc && rc < 2; i++) {
        int r = !strcmp(argv[i], "-") ? run_stdin(&c, raw)
                                       : run_command(&c, argv[i], raw);

        rc = (r >= 2 || !rc) ? r : rc;
    }
    if (rc < 2 && c.wait_event) {
        while (!c.seen_event) {
            json_t *v = next_msg(&c, c.deadline, &c.timed_out);

            if (!v) {
                if (c.timed_out) {
                    fprintf(stderr, "blkrig qmp: timed out waiting for "
                            "event %s\n", c.wait_event);
                    rc = 3;
                } else {
                    fprintf(stderr, "blkrig qmp: connection closed before "
                            "event %s\n", c.wait_event);
                    rc = 2;
                }
                goto out;
            }
            if (json_object_get(v, "event")) {
                on_event(&c, v);
            }
            json_decref(v);
        }
        print_msg(&c, c.seen_event);
    }
out:
    json_decref(greeting);
    json_decref(c.seen_event);
    free(c.buf);
    close(c.fd);
    return rc;
}
