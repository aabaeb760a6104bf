/*
 * tests/tools/qmp-testd.c - a minimal QMP daemon for the monitor's golden
 * and compat tests: one graph, no exports, the monitor on a unix socket
 * (or on stdin/stdout with --stdio). Exits on `quit`, SIGINT or SIGTERM,
 * removing its socket. SIGUSR1 emits a TESTD_SIGNAL event (with a
 * counter), so tests can check event delivery and `blkrig qmp --wait`.
 *
 *   qmp-testd SOCKET
 *   qmp-testd --stdio
 */
#include "common/config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "driver/block.h"
#include "monitor/monitor.h"

static pthread_mutex_t quit_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t quit_cond = PTHREAD_COND_INITIALIZER;
static int quitting;

static void on_quit(void *opaque)
{
    (void)opaque;
    pthread_mutex_lock(&quit_lock);
    quitting = 1;
    pthread_cond_signal(&quit_cond);
    pthread_mutex_unlock(&quit_lock);
}

static struct bd_graph *graph;

/* Signals arrive on this thread, which only waits for them. */
static void *signal_thread(void *opaque)
{
    sigset_t *set = opaque;
    int count = 0;

    for (;;) {
        int sig = 0;

        sigwait(set, &sig);
        if (sig != SIGUSR1) {
            break;
        }
        bd_graph_emit_qevent(graph, "TESTD_SIGNAL",
                             json_pack("{s:i}", "count", ++count));
    }
    on_quit(NULL);
    return NULL;
}

int main(int argc, char **argv)
{
    struct bd_error *err = NULL;
    struct bd_graph *g = NULL;
    struct qmp_server *s = NULL;
    struct qmp_context ctx;
    sigset_t set;
    pthread_t sig_thread;
    bool stdio_mode;
    int fd;

    if (argc != 2) {
        fprintf(stderr, "usage: qmp-testd SOCKET | --stdio\n");
        return 2;
    }
    stdio_mode = !strcmp(argv[1], "--stdio");
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    g = bd_graph_new();
    graph = g;
    pthread_create(&sig_thread, NULL, signal_thread, &set);
    pthread_detach(sig_thread);

    memset(&ctx, 0, sizeof(ctx));
    ctx.graph = g;
    ctx.quit = on_quit;
    s = qmp_server_new(&ctx);
    if (!s) {
        fprintf(stderr, "qmp-testd: cannot start the monitor\n");
        return 1;
    }
    if (stdio_mode) {
        fd = qmp_server_add_stdio(s, 0, 1, &err);
    } else {
        fd = qmp_listen_unix(argv[1], &err);
        if (fd >= 0) {
            fd = qmp_server_add_listener(s, fd, &err);
        }
    }
    if (fd < 0) {
        bd_error_report_err("qmp-testd", err);
        qmp_server_free(s);
        bd_graph_free(g);
        return 1;
    }
    pthread_mutex_lock(&quit_lock);
    while (!quitting) {
        pthread_cond_wait(&quit_cond, &quit_lock);
    }
    pthread_mutex_unlock(&quit_lock);
    qmp_server_free(s);
    bd_graph_free(g);
    if (!stdio_mode) {
        unlink(argv[1]);
    }
    return 0;
}
