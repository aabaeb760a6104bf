/*
 * monitor/monitor.c - the QMP server: listeners, clients, framing,
 * negotiation, replies and events.
 *
 * One thread per server polls a wake pipe, the listening sockets and every
 * client. Commands run on that thread one at a time (cmd_lock also
 * serialises qmp_server_execute from other threads), as QEMU's monitor runs
 * them under the big lock. Clients and listeners are owned by the thread;
 * other threads hand new ones over through `pending` under `lock`, and the
 * graph's event sink queues events there too, so emitting an event never
 * waits for a slow client.
 *
 * A client whose output backs up beyond OUT_LIMIT (it stopped reading) is
 * disconnected rather than letting its buffer grow without bound.
 */
#include "common/config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/cutils.h"
#include "common/log.h"
#include "driver/block.h"
#include "monitor/json-stream.h"
#include "monitor/monitor-int.h"

#define OUT_LIMIT (64u << 20)
#define READ_CHUNK 65536

struct qmp_client {
    struct qmp_server *s;
    int in_fd;
    int out_fd;
    bool is_socket;     /* in_fd == out_fd, ours to close */
    bool dead;
    struct qmp_session sess;
    struct qmp_splitter sp;
    char *out;
    size_t out_len, out_cap;
    struct qmp_client *next;
};

struct qmp_event {
    json_t *msg;
    struct qmp_event *next;
};

struct qmp_listener {
    int fd;
    struct qmp_listener *next;
};

struct qmp_server {
    struct qmp_context ctx;
    pthread_t thread;
    int wake_rd, wake_wr;
    pthread_mutex_t cmd_lock;       /* one command at a time */

    pthread_mutex_t lock;           /* everything below */
    bool stop;
    struct qmp_client *pending_clients;
    struct qmp_listener *pending_listeners;
    struct qmp_event *ev_head, *ev_tail;
    int nclients;

    /* Owned by the monitor thread. */
    struct qmp_client *clients;
    struct qmp_listener *listeners;
};

static void wake(struct qmp_server *s)
{
    char c = 1;
    ssize_t r;

    do {
        r = write(s->wake_wr, &c, 1);
    } while (r < 0 && errno == EINTR);
    /* EAGAIN: the pipe is full, the thread will wake anyway. */
}

/* ------------------------------------------------------------------ */
/* Output                                                               */

static void client_flush(struct qmp_client *c)
{
    size_t off = 0;

    while (off < c->out_len && !c->dead) {
        ssize_t r;

        if (c->is_socket) {
            r = send(c->out_fd, c->out + off, c->out_len - off,
                     MSG_NOSIGNAL | MSG_DONTWAIT);
        } else {
            r = write(c->out_fd, c->out + off, c->out_len - off);
        }
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                break;
            }
            c->dead = true;   /* EPIPE: the client went away */
            break;
        }
        off += (size_t)r;
    }
    if (c->dead) {
        c->out_len = 0;
        return;
    }
    memmove(c->out, c->out + off, c->out_len - off);
    c->out_len -= off;
}

static void client_send(struct qmp_client *c, json_t *msg)
{
    char *text = NULL;
    size_t n;

    if (c->dead) {
        return;
    }
    text = json_dumps(msg, JSON_ENSURE_ASCII);
    if (!text) {
        return;
    }
    n = strlen(text);
    if (c->out_len + n + 2 > OUT_LIMIT) {
        bd_log(BD_LOG_WARN, "QMP client stopped reading; disconnecting it");
        c->dead = true;
        free(text);
        return;
    }
    if (c->out_len + n + 2 > c->out_cap) {
        c->out_cap = (c->out_len + n + 2) * 2;
        c->out = bd_realloc(c->out, c->out_cap);
    }
    memcpy(c->out + c->out_len, text, n);
    memcpy(c->out + c->out_len + n, "\r\n", 2);
    c->out_len += n + 2;
    free(text);
    client_flush(c);
}

/* ------------------------------------------------------------------ */
/* Events                                                               */

static void event_sink(void *opaque, const char *name, json_t *data)
{
    struct qmp_server *s = opaque;
    struct qmp_event *ev = bd_malloc0(sizeof(*ev));
    struct timeval tv;

    gettimeofday(&tv, NULL);
    ev->msg = json_pack("{s:{s:I, s:I}, s:s}", "timestamp",
                        "seconds", (json_int_t)tv.tv_sec,
                        "microseconds", (json_int_t)tv.tv_usec,
                        "event", name);
    if (data) {
        json_object_set_new(ev->msg, "data", data);
    }
    pthread_mutex_lock(&s->lock);
    if (s->ev_tail) {
        s->ev_tail->next = ev;
    } else {
        s->ev_head = ev;
    }
    s->ev_tail = ev;
    pthread_mutex_unlock(&s->lock);
    wake(s);
}

/* Monitor thread: send queued events to every negotiated client. */
static void deliver_events(struct qmp_server *s)
{
    struct qmp_event *ev;

    pthread_mutex_lock(&s->lock);
    ev = s->ev_head;
    s->ev_head = s->ev_tail = NULL;
    pthread_mutex_unlock(&s->lock);
    while (ev) {
        struct qmp_event *next = ev->next;
        struct qmp_client *c;

        for (c = s->clients; c; c = c->next) {
            if (c->sess.negotiated) {
                client_send(c, ev->msg);
            }
        }
        json_decref(ev->msg);
        free(ev);
        ev = next;
    }
}

/* ------------------------------------------------------------------ */
/* Requests                                                             */

static int on_message(void *opaque, json_t *msg, struct bd_error *err)
{
    struct qmp_client *c = opaque;
    struct qmp_server *s = c->s;
    json_t *reply = NULL;

    if (err) {
        reply = json_pack("{s:{s:s, s:s}}", "error", "class",
                          bd_error_class_name(err->cls), "desc",
                          bd_error_msg(err));
        bd_error_free(err);
    } else {
        pthread_mutex_lock(&s->cmd_lock);
        reply = qmp_handle_request(&s->ctx, &c->sess, msg);
        pthread_mutex_unlock(&s->cmd_lock);
        json_decref(msg);
    }
    /* Events the command raised go out before its reply, as in QEMU. */
    deliver_events(s);
    client_send(c, reply);
    json_decref(reply);
    if (c->sess.quit) {
        c->sess.quit = false;
        if (s->ctx.quit) {
            s->ctx.quit(s->ctx.quit_opaque);
        }
    }
    return c->dead;
}

static void client_read(struct qmp_client *c)
{
    char buf[READ_CHUNK];
    ssize_t r;

    do {
        r = read(c->in_fd, buf, sizeof(buf));
    } while (r < 0 && errno == EINTR);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return;
    }
    if (r <= 0) {
        c->dead = true;
        return;
    }
    qmp_splitter_feed(&c->sp, buf, (size_t)r, on_message, c);
}

/* ------------------------------------------------------------------ */
/* Clients                                                              */

static struct qmp_client *client_new(struct qmp_server *s, int in_fd,
                                     int out_fd, bool is_socket)
{
    struct qmp_client *c = bd_malloc0(sizeof(*c));

    c->s = s;
    c->in_fd = in_fd;
    c->out_fd = out_fd;
    c->is_socket = is_socket;
    qmp_splitter_init(&c->sp);
    return c;
}

static void client_free(struct qmp_client *c)
{
    if (c->is_socket) {
        close(c->in_fd);
    }
    qmp_splitter_destroy(&c->sp);
    free(c->out);
    free(c);
}

static void client_greet(struct qmp_client *c)
{
    json_t *g = json_pack("{s:{s:o, s:[s]}}", "QMP", "version",
                          qmp_version_info(), "capabilities", "oob");

    client_send(c, g);
    json_decref(g);
}

/* Monitor thread: adopt what other threads handed over. */
static void adopt_pending(struct qmp_server *s)
{
    struct qmp_client *pc;
    struct qmp_listener *pl;

    pthread_mutex_lock(&s->lock);
    pc = s->pending_clients;
    pl = s->pending_listeners;
    s->pending_clients = NULL;
    s->pending_listeners = NULL;
    pthread_mutex_unlock(&s->lock);
    while (pl) {
        struct qmp_listener *next = pl->next;

        pl->next = s->listeners;
        s->listeners = pl;
        pl = next;
    }
    while (pc) {
        struct qmp_client *next = pc->next;

        pc->next = s->clients;
        s->clients = pc;
        client_greet(pc);
        pc = next;
    }
}

static void accept_clients(struct qmp_server *s, int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct qmp_client *c;

        if (fd < 0) {
            /* EAGAIN: drained. Out of descriptors or memory: the listener
             * stays readable, so pause briefly instead of spinning on it
             * until a client leaves. */
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                errno == ENOMEM) {
                bd_sleep_ns(10 * 1000 * 1000);
            }
            return;
        }
        c = client_new(s, fd, fd, true);
        c->next = s->clients;
        s->clients = c;
        pthread_mutex_lock(&s->lock);
        s->nclients++;
        pthread_mutex_unlock(&s->lock);
        client_greet(c);
    }
}

static void reap_clients(struct qmp_server *s)
{
    struct qmp_client **pp = &s->clients;
    int gone = 0;

    while (*pp) {
        struct qmp_client *c = *pp;

        if (c->dead) {
            *pp = c->next;
            client_free(c);
            gone++;
        } else {
            pp = &c->next;
        }
    }
    if (gone) {
        pthread_mutex_lock(&s->lock);
        s->nclients -= gone;
        pthread_mutex_unlock(&s->lock);
    }
}

/* ------------------------------------------------------------------ */
/* The thread                                                           */

static void *monitor_thread(void *opaque)
{
    struct qmp_server *s = opaque;
    struct pollfd *pfd = NULL;
    struct qmp_client **who = NULL;
    size_t cap = 0;
    sigset_t set;

    /* A write to a vanished stdio peer must fail with EPIPE, not kill the
     * daemon; a blocked synchronous SIGPIPE is simply discarded. */
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    for (;;) {
        struct qmp_listener *l;
        struct qmp_client *c;
        size_t n = 0, nl = 0, i;
        bool stop;

        pthread_mutex_lock(&s->lock);
        stop = s->stop;
        pthread_mutex_unlock(&s->lock);
        if (stop) {
            break;
        }
        adopt_pending(s);
        deliver_events(s);
        reap_clients(s);

        for (l = s->listeners; l; l = l->next) {
            nl++;
        }
        for (c = s->clients; c; c = c->next) {
            n += 2;
        }
        if (1 + nl + n > cap) {
            cap = (1 + nl + n) * 2;
            pfd = bd_realloc(pfd, cap * sizeof(*pfd));
            who = bd_realloc(who, cap * sizeof(*who));
        }
        n = 0;
        pfd[n] = (struct pollfd){ .fd = s->wake_rd, .events = POLLIN };
        who[n++] = NULL;
        for (l = s->listeners; l; l = l->next) {
            pfd[n] = (struct pollfd){ .fd = l->fd, .events = POLLIN };
            who[n++] = NULL;
        }
        for (c = s->clients; c; c = c->next) {
            if (c->in_fd == c->out_fd) {
                pfd[n] = (struct pollfd){
                    .fd = c->in_fd,
                    .events = POLLIN | (c->out_len ? POLLOUT : 0),
                };
                who[n++] = c;
            } else {
                pfd[n] = (struct pollfd){ .fd = c->in_fd, .events = POLLIN };
                who[n++] = c;
                if (c->out_len) {
                    pfd[n] = (struct pollfd){ .fd = c->out_fd,
                                              .events = POLLOUT };
                    who[n++] = c;
                }
            }
        }
        if (poll(pfd, n, -1) < 0) {
            if (errno != EINTR) {
                bd_log(BD_LOG_ERROR, "QMP monitor: poll: %s",
                       bd_strerror(errno));
                bd_sleep_ns(10 * 1000 * 1000);
            }
            continue;
        }
        if (pfd[0].revents) {
            char drain[256];

            while (read(s->wake_rd, drain, sizeof(drain)) > 0) {
            }
        }
        for (i = 1; i < 1 + nl; i++) {
            if (pfd[i].revents & POLLIN) {
                accept_clients(s, pfd[i].fd);
            }
        }
        for (i = 1 + nl; i < n; i++) {
            c = who[i];
            if (c->dead || !pfd[i].revents) {
                continue;
            }
            if (pfd[i].revents & POLLOUT) {
                client_flush(c);
            }
            if (pfd[i].fd == c->in_fd &&
                (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))) {
                client_read(c);
            } else if (pfd[i].revents & (POLLHUP | POLLERR)) {
                c->dead = true;
            }
        }
    }
    free(pfd);
    free(who);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* API                                                                  */

struct qmp_server *qmp_server_new(const struct qmp_context *ctx)
{
    struct qmp_server *s = bd_malloc0(sizeof(*s));
    int p[2];

    s->ctx = *ctx;
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) {
        bd_log(BD_LOG_ERROR, "QMP monitor: pipe: %s", bd_strerror(errno));
        free(s);
        return NULL;
    }
    s->wake_rd = p[0];
    s->wake_wr = p[1];
    pthread_mutex_init(&s->cmd_lock, NULL);
    pthread_mutex_init(&s->lock, NULL);
    if (pthread_create(&s->thread, NULL, monitor_thread, s) != 0) {
        close(p[0]);
        close(p[1]);
        pthread_mutex_destroy(&s->cmd_lock);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
    }
    if (s->ctx.graph) {
        bd_graph_set_qevent_sink(s->ctx.graph, event_sink, s);
    }
    return s;
}

int qmp_server_add_listener(struct qmp_server *s, int listen_fd,
                            struct bd_error **errp)
{
    struct qmp_listener *l = NULL;
    int fl = fcntl(listen_fd, F_GETFL);

    if (fl < 0 || fcntl(listen_fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        bd_error_setg_errno(errp, errno, "QMP listener");
        close(listen_fd);
        return -EINVAL;
    }
    l = bd_malloc0(sizeof(*l));
    l->fd = listen_fd;
    pthread_mutex_lock(&s->lock);
    l->next = s->pending_listeners;
    s->pending_listeners = l;
    pthread_mutex_unlock(&s->lock);
    wake(s);
    return 0;
}

int qmp_server_add_stdio(struct qmp_server *s, int in_fd, int out_fd,
                         struct bd_error **errp)
{
    struct qmp_client *c = NULL;

    if (in_fd < 0 || out_fd < 0) {
        bd_error_setg(errp, "QMP stdio: invalid file descriptor");
        return -EINVAL;
    }
    /* The fds stay blocking: they may be shared with the terminal. Reads
     * happen only after poll reported data, so they do not block. */
    c = client_new(s, in_fd, out_fd, false);
    pthread_mutex_lock(&s->lock);
    c->next = s->pending_clients;
    s->pending_clients = c;
    s->nclients++;
    pthread_mutex_unlock(&s->lock);
    wake(s);
    return 0;
}

json_t *qmp_server_execute(struct qmp_server *s, json_t *cmd)
{
    struct qmp_session sess = { .negotiated = true };
    json_t *reply = NULL;

    pthread_mutex_lock(&s->cmd_lock);
    reply = qmp_handle_request(&s->ctx, &sess, cmd);
    pthread_mutex_unlock(&s->cmd_lock);
    if (sess.quit && s->ctx.quit) {
        s->ctx.quit(s->ctx.quit_opaque);
    }
    return reply;
}

int qmp_server_client_count(struct qmp_server *s)
{
    int n;

    pthread_mutex_lock(&s->lock);
    n = s->nclients;
    pthread_mutex_unlock(&s->lock);
    return n;
}

void qmp_server_free(struct qmp_server *s)
{
    struct qmp_event *ev;

    if (!s) {
        return;
    }
    /* No new events from now on; the sink call in progress, if any, has
     * finished when this returns (the graph holds its event lock). */
    if (s->ctx.graph) {
        bd_graph_set_qevent_sink(s->ctx.graph, NULL, NULL);
    }
    pthread_mutex_lock(&s->lock);
    s->stop = true;
    pthread_mutex_unlock(&s->lock);
    wake(s);
    pthread_join(s->thread, NULL);

    adopt_pending(s);
    while (s->clients) {
        struct qmp_client *c = s->clients;

        s->clients = c->next;
        client_flush(c);
        client_free(c);
    }
    while (s->listeners) {
        struct qmp_listener *l = s->listeners;

        s->listeners = l->next;
        close(l->fd);
        free(l);
    }
    for (ev = s->ev_head; ev;) {
        struct qmp_event *next = ev->next;

        json_decref(ev->msg);
        free(ev);
        ev = next;
    }
    close(s->wake_rd);
    close(s->wake_wr);
    pthread_mutex_destroy(&s->cmd_lock);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

int qmp_listen_unix(const char *path, struct bd_error **errp)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    struct stat st;
    int fd;

    if (strlen(path) >= sizeof(addr.sun_path)) {
        bd_error_setg(errp, "UNIX socket path '%s' is too long", path);
        return -ENAMETOOLONG;
    }
    strcpy(addr.sun_path, path);
    /* A socket left by a killed daemon would make bind fail; anything
     * else at that path is not ours to remove. */
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
        unlink(path);
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        bd_error_setg_errno(errp, e, "Failed to create socket");
        return -e;
    }
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        listen(fd, 128) < 0) {
        int e = errno;
        bd_error_setg_errno(errp, e, "Failed to bind socket to %s", path);
        close(fd);
        return -e;
    }
    return fd;
}
