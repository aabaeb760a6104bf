/*
 * cli/serve.c - `blkrig serve`: qemu-storage-daemon's command line.
 *
 * Options are handled in two passes, as qemu-storage-daemon does: the
 * first one settles --help, --version, --daemonize and --pidfile before
 * anything else exists (forking once threads run would lose them); the
 * second one builds the graph, the exports and the monitors in command
 * line order, so a node must be defined before the export that uses it.
 *
 * Lifecycle: every thread the daemon starts inherits a mask that blocks
 * SIGINT, SIGTERM, SIGHUP and SIGUSR1; the main thread waits for them with
 * sigwait() and then shuts down in one place: monitors first (no new
 * commands), then every export (stop intake, finish in-flight requests,
 * flush, unmount), then the graph; last, the sockets and the pid file are
 * removed. QMP `quit` sends SIGUSR1 to the main thread. With --daemonize
 * the parent waits on a pipe until the child reports a complete start-up,
 * so errors still reach the caller's terminal and exit status.
 */
#include "common/config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/verbs.h"
#include "common/cutils.h"
#include "common/error.h"
#include "common/opts.h"
#include "driver/blkdebug.h"
#include "driver/block.h"
#include "fuse/export.h"
#include "jobs/job.h"
#include "fuse/fx-int.h"
#include "injector/injector.h"
#include "monitor/monitor.h"

#define PROG "blkrig serve"

enum {
    OPT_BLOCKDEV = 256,
    OPT_CHARDEV,
    OPT_DAEMONIZE,
    OPT_EXPORT,
    OPT_MONITOR,
    OPT_NBD_SERVER,
    OPT_OBJECT,
    OPT_PIDFILE,
};

static const struct option long_opts[] = {
    { "blockdev", required_argument, NULL, OPT_BLOCKDEV },
    { "chardev", required_argument, NULL, OPT_CHARDEV },
    { "daemonize", no_argument, NULL, OPT_DAEMONIZE },
    { "export", required_argument, NULL, OPT_EXPORT },
    { "help", no_argument, NULL, 'h' },
    { "monitor", required_argument, NULL, OPT_MONITOR },
    { "nbd-server", required_argument, NULL, OPT_NBD_SERVER },
    { "object", required_argument, NULL, OPT_OBJECT },
    { "pidfile", required_argument, NULL, OPT_PIDFILE },
    { "trace", required_argument, NULL, 'T' },
    { "version", no_argument, NULL, 'V' },
    { NULL, 0, NULL, 0 },
};
static const char short_opts[] = "-hT:V";

struct chardev {
    char *id;
    char *path;          /* absolute; NULL for stdio */
    int fd;              /* listening socket, -1 once handed over */
    bool is_stdio;
    bool used;
};

struct daemon_state {
    struct bd_graph *graph;
    struct fx_exports *exports;
    struct qmp_server *qmp;
    struct qmp_context ctx;
    struct chardev *chardevs;
    int nchardevs;
    bool daemonize;
    char *pidfile;        /* as given */
    char *pidfile_abs;    /* absolute, for removal after chdir("/") */
    int pidfile_fd;
    pthread_t main_thread;
};

static void usage(void)
{
    printf("Usage: " PROG " [options]\n"
           "blkrig storage daemon (qemu-storage-daemon compatible)\n"
           "\n"
           "  -h, --help             display this help and exit\n"
           "  -V, --version          output version information and exit\n"
           "\n"
           "  --blockdev [driver=]<driver>[,node-name=<N>]"
           "[,discard=ignore|unmap]\n"
           "             [,cache.direct=on|off][,cache.no-flush=on|off]\n"
           "             [,read-only=on|off][,auto-read-only=on|off]\n"
           "             [,driver specific parameters...]\n"
           "  --blockdev '{\"driver\":...}'\n"
           "                         configure a block node\n"
           "\n"
           "  --chardev socket,id=<id>,path=<path>,server=on,wait=off\n"
           "  --chardev stdio,id=<id>\n"
           "                         configure a character device for a "
           "monitor\n"
           "\n"
           "  --daemonize            daemonize the process, and have the "
           "parent exit\n"
           "                         once startup is complete\n"
           "\n"
           "  --export [type=]fuse,id=<id>,node-name=<node-name>,"
           "mountpoint=<file>\n"
           "           [,growable=on|off][,writable=on|off]"
           "[,allow-other=on|off|auto]\n"
           "           [,writethrough=on|off][,flush-on-close=on|off]\n"
           "                         export the specified block node over "
           "FUSE\n"
           "\n"
           "  --monitor [chardev=]name[,mode=control][,pretty[=on|off]]\n"
           "                         configure a QMP monitor\n"
           "\n"
           "  --pidfile <path>       write process ID to a file after "
           "startup\n"
           "\n"
           "SIGINT, SIGTERM and QMP 'quit' stop the daemon cleanly: "
           "in-flight requests\n"
           "finish, nodes are flushed, mounts, sockets and the pid file are "
           "removed.\n");
}

static void report(const char *opt, const char *arg, struct bd_error *err)
{
    fprintf(stderr, PROG ": --%s %s: %s\n", opt, arg, bd_error_msg(err));
    if (err->hint) {
        fputs(err->hint, stderr);
    }
    bd_error_free(err);
}

/* "key=value" (implied first key) or JSON, as qsd accepts for --blockdev
 * and --export. Returns a nested object and whether it came from keyval. */
static json_t *parse_dict(const char *arg, const char *implied, bool *keyval,
                          struct bd_error **errp)
{
    json_t *flat = NULL;
    json_t *nested = NULL;

    if (arg[0] == '{') {
        *keyval = false;
        nested = bd_json_parse_options(arg, errp);
        if (nested && !json_is_object(nested)) {
            json_decref(nested);
            bd_error_setg(errp, "JSON options must be an object");
            return NULL;
        }
        return nested;
    }
    *keyval = true;
    flat = bd_opts_parse(arg, implied, errp);
    if (!flat) {
        return NULL;
    }
    nested = bd_opts_crumple(flat, errp);
    json_decref(flat);
    return nested;
}

static int do_blockdev(struct daemon_state *d, const char *arg)
{
    struct bd_error *err = NULL;
    bool keyval = false;
    json_t *o = parse_dict(arg, "driver", &keyval, &err);

    if (o && !bd_blockdev_add(d->graph, o, keyval, &err)) {
        json_decref(o);
        o = NULL;
    }
    if (!o) {
        report("blockdev", arg, err);
        return -1;
    }
    json_decref(o);
    return 0;
}

static int do_export(struct daemon_state *d, const char *arg)
{
    struct bd_error *err = NULL;
    bool keyval = false;
    json_t *o = parse_dict(arg, "type", &keyval, &err);

    if (o && fx_export_add(d->exports, o, keyval, &err) < 0) {
        json_decref(o);
        o = NULL;
    }
    if (!o) {
        report("export", arg, err);
        return -1;
    }
    json_decref(o);
    return 0;
}

static struct chardev *find_chardev(struct daemon_state *d, const char *id)
{
    int i;

    for (i = 0; i < d->nchardevs; i++) {
        if (!strcmp(d->chardevs[i].id, id)) {
            return &d->chardevs[i];
        }
    }
    return NULL;
}

/* Bind a listening unix socket; a stale socket file left by a killed
 * daemon is replaced (qemu does the same). */
static int listen_unix(const char *path, struct bd_error **errp)
{
    struct sockaddr_un sa;
    struct stat st;
    int fd;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        bd_error_setg(errp, "UNIX socket path '%s' is too long", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            bd_error_setg(errp, "Failed to bind socket to %s: File exists",
                          path);
            return -1;
        }
        if (unlink(path) < 0) {
            bd_error_setg_errno(errp, errno, "Failed to unlink socket %s",
                                path);
            return -1;
        }
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        bd_error_setg_errno(errp, errno, "Failed to create socket");
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        bd_error_setg_errno(errp, errno, "Failed to bind socket to %s", path);
        close(fd);
        return -1;
    }
    if (listen(fd, 16) < 0) {
        bd_error_setg_errno(errp, errno, "Failed to listen on socket");
        close(fd);
        unlink(path);
        return -1;
    }
    return fd;
}

static int do_chardev(struct daemon_state *d, const char *arg)
{
    struct bd_error *err = NULL;
    json_t *o = bd_opts_parse(arg, "backend", &err);
    const char *backend = NULL;
    const char *id = NULL;
    const char *path = NULL;
    struct chardev cd;
    const char *key = NULL;
    json_t *v = NULL;

    memset(&cd, 0, sizeof(cd));
    cd.fd = -1;
    if (!o) {
        goto fail;
    }
    backend = bd_opts_peek_str(o, "backend");
    id = bd_opts_peek_str(o, "id");
    if (!backend) {
        bd_error_setg(&err, "chardev: \"%s\" missing backend",
                      id ? id : "");
        goto fail;
    }
    if (!id) {
        bd_error_setg(&err, "Parameter 'id' is missing");
        goto fail;
    }
    if (find_chardev(d, id)) {
        bd_error_setg(&err, "Duplicate ID '%s' for chardev", id);
        goto fail;
    }
    if (!strcmp(backend, "stdio")) {
        cd.is_stdio = true;
    } else if (!strcmp(backend, "socket")) {
        bool b = false;

        path = bd_opts_peek_str(o, "path");
        json_object_foreach(o, key, v) {
            const char *s = json_string_value(v);

            if (!strcmp(key, "server") || !strcmp(key, "wait")) {
                if (!bd_parse_bool(s, &b)) {
                    bd_error_setg(&err, "Parameter '%s' expects 'on' or "
                                  "'off'", key);
                    goto fail;
                }
                if (!strcmp(key, "server") && !b) {
                    bd_error_setg(&err, "blkrig serve only listens: "
                                  "server=off is not supported");
                    goto fail;
                }
            } else if (strcmp(key, "backend") && strcmp(key, "id") &&
                       strcmp(key, "path")) {
                bd_error_setg(&err, "Invalid parameter '%s'", key);
                goto fail;
            }
        }
        if (!path) {
            bd_error_setg(&err, "chardev: socket: 'path' is required "
                          "(blkrig serve listens on unix sockets only)");
            goto fail;
        }
        cd.fd = listen_unix(path, &err);
        if (cd.fd < 0) {
            goto fail;
        }
        cd.path = fx_canonical_path(path);
        if (!cd.path) {
            cd.path = bd_strdup(path);
        }
    } else {
        bd_error_setg(&err, "chardev backend '%s' is not supported by "
                      "blkrig serve (use socket or stdio)", backend);
        goto fail;
    }
    cd.id = bd_strdup(id);
    d->chardevs = bd_realloc(d->chardevs, sizeof(*d->chardevs) *
                             (size_t)(d->nchardevs + 1));
    d->chardevs[d->nchardevs++] = cd;
    json_decref(o);
    return 0;

fail:
    json_decref(o);
    report("chardev", arg, err);
    return -1;
}

static void qmp_quit(void *opaque)
{
    struct daemon_state *d = opaque;

    pthread_kill(d->main_thread, SIGUSR1);
}

static int do_monitor(struct daemon_state *d, const char *arg)
{
    struct bd_error *err = NULL;
    json_t *o = bd_opts_parse(arg, "chardev", &err);
    const char *id = NULL;
    const char *mode = NULL;
    struct chardev *cd = NULL;
    bool pretty = false;

    if (!o) {
        goto fail;
    }
    id = bd_opts_peek_str(o, "chardev");
    mode = bd_opts_peek_str(o, "mode");
    if (!id) {
        bd_error_setg(&err, "Parameter 'chardev' is missing");
        goto fail;
    }
    if (mode && strcmp(mode, "control")) {
        bd_error_setg(&err, "Only mode=control is supported");
        goto fail;
    }
    if (bd_opts_peek_str(o, "pretty") &&
        !bd_parse_bool(bd_opts_peek_str(o, "pretty"), &pretty)) {
        bd_error_setg(&err, "Parameter 'pretty' expects 'on' or 'off'");
        goto fail;
    }
    cd = find_chardev(d, id);
    if (!cd) {
        bd_error_setg(&err, "chardev \"%s\" not found", id);
        goto fail;
    }
    if (cd->used) {
        bd_error_setg(&err, "chardev \"%s\" is already in use", id);
        goto fail;
    }
    if (!d->qmp) {
        d->qmp = qmp_server_new(&d->ctx);
        if (!d->qmp) {
            bd_error_setg(&err, "Failed to start the QMP server");
            goto fail;
        }
    }
    if (cd->is_stdio) {
        if (qmp_server_add_stdio(d->qmp, STDIN_FILENO, STDOUT_FILENO,
                                 &err) < 0) {
            goto fail;
        }
    } else {
        if (qmp_server_add_listener(d->qmp, cd->fd, &err) < 0) {
            goto fail;
        }
        cd->fd = -1;   /* the server owns and closes it now */
    }
    cd->used = true;
    json_decref(o);
    return 0;

fail:
    json_decref(o);
    report("monitor", arg, err);
    return -1;
}

/* Create the pid file, lock it (a second daemon with the same file fails)
 * and write our pid. */
static int write_pidfile(struct daemon_state *d)
{
    char buf[32];
    struct flock fl;
    int fd;
    int n;

    fd = open(d->pidfile, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, PROG ": Cannot open pid file '%s': %s\n",
                d->pidfile, bd_strerror(errno));
        return -1;
    }
    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, F_SETLK, &fl) < 0) {
        fprintf(stderr, PROG ": Cannot lock pid file '%s': %s\n",
                d->pidfile, bd_strerror(errno));
        close(fd);
        return -1;
    }
    n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
    if (ftruncate(fd, 0) < 0 || write(fd, buf, (size_t)n) != n) {
        fprintf(stderr, PROG ": Failed to write pid file '%s': %s\n",
                d->pidfile, bd_strerror(errno));
        close(fd);
        unlink(d->pidfile);
        return -1;
    }
    d->pidfile_fd = fd;
    d->pidfile_abs = fx_canonical_path(d->pidfile);
    return 0;
}

/* Fork; the parent waits for the child's verdict on the pipe and exits
 * with it. Returns the write end in the child. */
static int daemonize_start(void)
{
    int pfd[2];
    pid_t pid;

    if (pipe2(pfd, O_CLOEXEC) < 0) {
        fprintf(stderr, PROG ": pipe: %s\n", bd_strerror(errno));
        exit(1);
    }
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, PROG ": fork: %s\n", bd_strerror(errno));
        exit(1);
    }
    if (pid > 0) {
        char c = 0;
        ssize_t n;
        int status = 0;

        close(pfd[1]);
        do {
            n = read(pfd[0], &c, 1);
        } while (n < 0 && errno == EINTR);
        if (n == 1 && c == 0) {
            _exit(0);
        }
        /* The child failed during start-up; it has printed why. */
        waitpid(pid, &status, 0);
        _exit(WIFEXITED(status) && WEXITSTATUS(status) ?
              WEXITSTATUS(status) : 1);
    }
    close(pfd[0]);
    setsid();
    return pfd[1];
}

static void daemonize_finish(int fd)
{
    char c = 0;
    int nul = open("/dev/null", O_RDWR);

    if (nul >= 0) {
        dup2(nul, STDIN_FILENO);
        dup2(nul, STDOUT_FILENO);
        dup2(nul, STDERR_FILENO);
        if (nul > STDERR_FILENO) {
            close(nul);
        }
    }
    if (chdir("/") < 0) {
        /* Nothing uses relative paths any more; keep going. */
    }
    if (write(fd, &c, 1) != 1) {
        /* The parent is gone; nobody to tell. */
    }
    close(fd);
}

static void cleanup(struct daemon_state *d)
{
    int i;

    /* Monitors first: no command may start while exports go away. */
    if (d->qmp) {
        qmp_server_free(d->qmp);
        d->qmp = NULL;
    }
    if (d->graph) {
        /* With the monitors gone nobody can send `resume`: a request parked
         * at a breakpoint would hold up the jobs and exports below. */
        bd_blkdebug_release_all_breaks(d->graph);
    }
    /* Jobs before exports: cancelling a mirror moves export edges. */
    if (d->ctx.jobs) {
        job_manager_free(d->ctx.jobs);
        d->ctx.jobs = NULL;
    }
    if (d->exports) {
        fx_exports_free(d->exports);
        d->exports = NULL;
    }
    if (d->graph) {
        bd_drain_all(d->graph);
        bd_graph_free(d->graph);
        d->graph = NULL;
    }
    for (i = 0; i < d->nchardevs; i++) {
        struct chardev *cd = &d->chardevs[i];

        if (cd->fd >= 0) {
            close(cd->fd);
        }
        if (cd->path) {
            unlink(cd->path);
        }
        free(cd->path);
        free(cd->id);
    }
    free(d->chardevs);
    d->chardevs = NULL;
    d->nchardevs = 0;
    if (d->pidfile_fd >= 0) {
        unlink(d->pidfile_abs ? d->pidfile_abs : d->pidfile);
        close(d->pidfile_fd);
        d->pidfile_fd = -1;
    }
    free(d->pidfile_abs);
    d->pidfile_abs = NULL;
}

static void block_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, set, NULL);
}

int verb_serve(int argc, char **argv)
{
    struct daemon_state d;
    sigset_t set;
    int daemon_fd = -1;
    int c;
    int sig = 0;
    int ret = 1;

    memset(&d, 0, sizeof(d));
    d.pidfile_fd = -1;
    argv[0] = (char *)PROG;

    /* Pass 1: what must be settled before any thread or file exists. */
    opterr = 1;
    optind = 1;
    while ((c = getopt_long(argc, argv, short_opts, long_opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            usage();
            return 0;
        case 'V':
            printf(PROG " version %s (qemu-storage-daemon %d.%d.%d "
                   "compatible)\n", BLKRIG_VERSION,
                   BLKRIG_QEMU_COMPAT_MAJOR, BLKRIG_QEMU_COMPAT_MINOR,
                   BLKRIG_QEMU_COMPAT_MICRO);
            return 0;
        case OPT_DAEMONIZE:
            d.daemonize = true;
            break;
        case OPT_PIDFILE:
            d.pidfile = optarg;
            break;
        case 1:
            fprintf(stderr, PROG ": Unexpected argument: %s\n", optarg);
            return 1;
        case '?':
            return 1;
        default:
            break;
        }
    }
    if (d.daemonize) {
        fflush(stdout);
        fflush(stderr);
        daemon_fd = daemonize_start();
    }

    /* Before the first thread: every thread inherits this mask. */
    block_signals(&set);
    signal(SIGPIPE, SIG_IGN);
    d.main_thread = pthread_self();
    d.graph = bd_graph_new();
    d.exports = fx_exports_new(d.graph);
    d.ctx.graph = d.graph;
    d.ctx.exports = d.exports;
    /* Block jobs (mirror, backup): QMP's job commands act on this. */
    d.ctx.jobs = job_manager_new(d.graph);
    d.ctx.quit = qmp_quit;
    d.ctx.quit_opaque = &d;

    /* Pass 2: in command line order. */
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, short_opts, long_opts, NULL)) != -1) {
        int r = 0;

        switch (c) {
        case OPT_BLOCKDEV:
            r = do_blockdev(&d, optarg);
            break;
        case OPT_EXPORT:
            r = do_export(&d, optarg);
            break;
        case OPT_CHARDEV:
            r = do_chardev(&d, optarg);
            break;
        case OPT_MONITOR:
            r = do_monitor(&d, optarg);
            break;
        case OPT_NBD_SERVER:
            fprintf(stderr, PROG ": --nbd-server %s: NBD is not supported "
                    "by blkrig serve\n", optarg);
            r = -1;
            break;
        case OPT_OBJECT:
            fprintf(stderr, PROG ": --object %s: objects are not supported "
                    "by blkrig serve\n", optarg);
            r = -1;
            break;
        default:
            break;
        }
        if (r < 0) {
            goto out;
        }
    }
    if (d.pidfile && write_pidfile(&d) < 0) {
        goto out;
    }
    if (daemon_fd >= 0) {
        daemonize_finish(daemon_fd);
        daemon_fd = -1;
    }

    for (;;) {
        if (sigwait(&set, &sig) != 0) {
            continue;
        }
        if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP ||
            sig == SIGUSR1) {
            break;
        }
    }
    ret = 0;
out:
    cleanup(&d);
    return ret;
}
