/*
 * cli/run.c - `blkrig run [-g GROUP] [-j N] [--tap] [--junit FILE]
 * [--qmp SOCKET] [--step-timeout S] [CASES...]`: run scenarios and compare
 * each transcript with its golden .out, as iotests' `check` does.
 *
 * Every scenario runs in a child process of its own, in a fresh scratch
 * directory, with stdout and stderr going to its transcript: a crash, a
 * hang or a leaked mount in one scenario cannot spoil the others, and -j
 * runs several at once. A per-step watchdog (alarm) turns a hang into a
 * clear "timed out at FILE:LINE" in the transcript.
 */
#include "common/config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/io-int.h"
#include "cli/run.h"
#include "cli/verbs.h"
#include "common/cutils.h"
#include "driver/block.h"
#include "scenarios/scenario.h"

#define RUN_MAX_CASES 4096

struct run_case {
    char *path;          /* the .scn file */
    char *name;          /* basename without .scn */
    char *tmp;           /* scratch root: tmp/scratch and tmp/transcript */
    pid_t pid;
    int status;          /* wait status */
    int64_t start_ns, end_ns;
    bool passed;
    char *why;           /* failure summary */
};

struct run_opts {
    const char *group;
    int jobs;
    bool tap;
    const char *junit;
    const char *qmp;
    int step_timeout;
    const char *self;
};

/* ------------------------------------------------------------------ */
/* In the child                                                         */

/* The watchdog's message needs the current step from a signal handler:
 * a fixed buffer in this (single-scenario) child process. */
static char step_where[PATH_MAX + 32];
static int step_timeout_s;

static void on_alarm(int sig);

void run_watchdog_init(int timeout_s)
{
    step_timeout_s = timeout_s;
    signal(SIGALRM, on_alarm);
}

static void on_alarm(int sig)
{
    char msg[PATH_MAX + 128];
    int n;

    (void)sig;
    n = snprintf(msg, sizeof(msg), "%s: step timed out after %d s\n",
                 step_where, step_timeout_s);
    if (n > 0 && write(STDOUT_FILENO, msg, (size_t)n) < 0) {
        /* Nothing more to do: we are leaving. */
    }
    _exit(124);
}

void run_step_hook(void *opaque, const char *where)
{
    (void)opaque;
    snprintf(step_where, sizeof(step_where), "%s", where);
    alarm((unsigned)step_timeout_s);
}

/* The qemu-io contexts of this scenario, one per node: an `io` line
 * attaches a backend to its node and keeps it, as qemu-io's `open` does,
 * so aio requests (a read parked at a breakpoint, say) outlive the line
 * and a later `io NODE aio_flush` collects them. Detaching after every
 * line would drain the node and wait for such a request forever.
 * `io NODE close` detaches (qemu-io's `close`). The graph's teardown at
 * the end of the scenario closes what is left; the process ends there. */
struct run_io_keep {
    struct bd_node *node;
    struct io_ctx *ctx;
};
#define RUN_IO_KEEP_MAX 64
static struct run_io_keep io_keep[RUN_IO_KEEP_MAX];

int run_io(void *opaque, struct bd_graph *g, struct bd_node *n,
           const char *cmdline)
{
    struct io_ctx *ctx = NULL;
    struct bd_error *err = NULL;
    uint64_t perm = BD_PERM_CONSISTENT_READ;
    int r, i, slot = -1;

    (void)opaque;
    for (i = 0; i < RUN_IO_KEEP_MAX; i++) {
        /* A backend moved by a mirror pivot no longer serves this node. */
        if (io_keep[i].node == n && io_keep[i].ctx &&
            io_keep[i].ctx->blk && bd_blk_node(io_keep[i].ctx->blk) == n) {
            ctx = io_keep[i].ctx;
            slot = i;
        }
    }
    if (!ctx) {
        ctx = bd_malloc0(sizeof(*ctx));
        io_ctx_init(ctx, "qemu-io");
        /* Use the scenario's graph, not the fresh one io_ctx_init made. */
        bd_graph_free(ctx->graph);
        ctx->graph = g;
        if (!bd_is_read_only(n)) {
            perm |= BD_PERM_WRITE;
        }
        ctx->blk = bd_blk_new(g, NULL, perm, BD_PERM_ALL);
        if (bd_blk_insert(ctx->blk, n, &err) < 0) {
            bd_error_report_err("qemu-io", err);
            bd_blk_free(ctx->blk);
            ctx->blk = NULL;
        }
        for (i = 0; ctx->blk && slot < 0 && i < RUN_IO_KEEP_MAX; i++) {
            if (!io_keep[i].ctx) {
                io_keep[i].node = n;
                io_keep[i].ctx = ctx;
                slot = i;
            }
        }
    }
    r = ctx->blk ? io_command(ctx, cmdline) : -EINVAL;
    if (slot >= 0 && ctx->blk) {
        /* Print what finished meanwhile, as qemu-io's loop would. */
        io_aio_poll(ctx, false);
        return r;
    }
    /* Closed by the command, never attached, or no free slot. */
    if (slot >= 0) {
        io_keep[slot].ctx = NULL;
        io_keep[slot].node = NULL;
    }
    io_close_image(ctx);
    ctx->graph = NULL;
    io_ctx_destroy(ctx);
    free(ctx);
    return r;
}

bool run_io_busy(void *opaque)
{
    int i;

    (void)opaque;
    for (i = 0; i < RUN_IO_KEEP_MAX; i++) {
        if (io_keep[i].ctx && io_aio_pending(io_keep[i].ctx)) {
            return true;
        }
    }
    return false;
}

static int child_main(const struct run_opts *ro, struct run_case *c)
{
    struct sc_options o = { 0 };
    struct bd_error *err = NULL;
    char *scratch = bd_strdup_printf("%s/scratch", c->tmp);
    char *abs = realpath(c->path, NULL);
    int r;

    run_watchdog_init(ro->step_timeout);
    if (chdir(scratch) < 0) {
        perror("chdir");
        return 2;
    }
    o.test_dir = scratch;
    o.blkrig = ro->self;
    o.qmp_socket = ro->qmp;
    o.io = run_io;
    o.step_hook = run_step_hook;
    o.out = stdout;
    r = sc_run_file(abs ? abs : c->path, &o, &err);
    alarm(0);
    fflush(stdout);
    if (err) {
        /* The scenario stopped: say where, in the transcript. */
        char *msg = bd_strdup(bd_error_msg(err));

        printf("error: %s\n", msg);
        free(msg);
        bd_error_free(err);
    }
    fflush(stdout);
    free(abs);
    free(scratch);
    return r < 0 ? 2 : r > 0 ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* In the parent                                                        */

static bool has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);

    return a >= b && !strcmp(s + a - b, suf);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Add path (a .scn file or a directory of them) to the list. */
static int collect(const char *path, char **list, int *n)
{
    struct stat st;

    if (stat(path, &st) < 0) {
        fprintf(stderr, "blkrig run: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        char *found[RUN_MAX_CASES];
        int nf = 0, i;

        if (!d) {
            fprintf(stderr, "blkrig run: %s: %s\n", path, strerror(errno));
            return -1;
        }
        while ((e = readdir(d)) && nf < RUN_MAX_CASES) {
            if (has_suffix(e->d_name, ".scn")) {
                found[nf++] = bd_strdup_printf("%s/%s", path, e->d_name);
            }
        }
        closedir(d);
        qsort(found, (size_t)nf, sizeof(found[0]), cmp_str);
        for (i = 0; i < nf; i++) {
            if (*n < RUN_MAX_CASES) {
                list[(*n)++] = found[i];
            } else {
                free(found[i]);
            }
        }
        return 0;
    }
    if (!has_suffix(path, ".scn")) {
        fprintf(stderr, "blkrig run: %s: not a scenario (.scn) file\n", path);
        return -1;
    }
    if (*n < RUN_MAX_CASES) {
        list[(*n)++] = bd_strdup(path);
    }
    return 0;
}

static bool in_group(const char *path, const char *group)
{
    char *groups = sc_file_groups(path);
    char *tok, *save = NULL;
    bool yes = false;

    if (!groups) {
        return false;
    }
    for (tok = strtok_r(groups, " \t,", &save); tok;
         tok = strtok_r(NULL, " \t,", &save)) {
        if (!strcmp(tok, group)) {
            yes = true;
        }
    }
    free(groups);
    return yes;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t len = 0;
    char chunk[8192];
    size_t r;

    if (!f) {
        return NULL;
    }
    while ((r = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        buf = bd_realloc(buf, len + r + 1);
        memcpy(buf + len, chunk, r);
        len += r;
    }
    fclose(f);
    if (!buf) {
        buf = bd_strdup("");
    } else {
        buf[len] = '\0';
    }
    return buf;
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    if (!f) {
        return -errno;
    }
    fputs(text, f);
    return fclose(f) == 0 ? 0 : -EIO;
}

/* What changes from run to run leaves the transcript: timings, the
 * scratch directory, and where the case lives (so .out files compare
 * wherever the tree is checked out). */
static char *filter_transcript(const struct run_case *c, const char *tr)
{
    char *scratch = bd_strdup_printf("%s/scratch", c->tmp);
    char *abs = realpath(c->path, NULL);
    char *dir = bd_strdup(abs ? abs : c->path);
    char *copy = bd_strdup(tr), *line, *save = NULL;
    char *res = bd_strdup("");
    char *slash = strrchr(dir, '/');

    if (slash) {
        slash[1] = '\0';
    } else {
        dir[0] = '\0';
    }
    for (line = strtok_r(copy, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char *f, *p, *t;

        /* blkdebug prints this from the suspended request's own thread,
         * at a moment that races with the engine's output; the
         * BLKDEBUG_SUSPEND event a scenario waits for says the same in
         * a deterministic place. */
        if (!strncmp(line, "blkdebug: Suspended request '", 29)) {
            continue;
        }
        f = sc_filter_line(line, scratch);

        while (*dir && (p = strstr(f, dir))) {
            memmove(p, p + strlen(dir), strlen(p + strlen(dir)) + 1);
        }
        t = bd_strdup_printf("%s%s\n", res, f);
        free(res);
        free(f);
        res = t;
    }
    free(copy);
    free(dir);
    free(abs);
    free(scratch);
    return res;
}

pid_t run_spawn(const char *prefix, char **dir,
                int (*fn)(void *arg, const char *scratch), void *arg)
{
    char *tmpl = bd_strdup_printf("/tmp/%s.XXXXXX", prefix);
    char *scratch, *tr;
    pid_t pid;

    if (!mkdtemp(tmpl)) {
        free(tmpl);
        return -1;
    }
    *dir = tmpl;
    scratch = bd_strdup_printf("%s/scratch", tmpl);
    tr = bd_strdup_printf("%s/transcript", tmpl);
    mkdir(scratch, 0700);
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        int fd = open(tr, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 ||
            dup2(fd, STDERR_FILENO) < 0) {
            _exit(2);
        }
        /* Line buffering keeps our lines and the engine's in order. */
        setvbuf(stdout, NULL, _IOLBF, 0);
        _exit(fn(arg, scratch));
    }
    free(scratch);
    free(tr);
    return pid;
}

void run_remove_tree(const char *dir)
{
    char *cmd = bd_strdup_printf(
        "for m in $(awk '$2 ~ \"^%s/\" {print $2}' /proc/mounts); do "
        "fusermount3 -uz \"$m\" 2>/dev/null || umount -l \"$m\"; done; "
        "rm -rf '%s'", dir, dir);

    if (system(cmd) != 0) {
        /* Best effort; /tmp is cleaned eventually. */
    }
    free(cmd);
}

struct case_child {
    const struct run_opts *ro;
    struct run_case *c;
};

static int case_child_fn(void *arg, const char *scratch)
{
    struct case_child *cc = arg;

    (void)scratch;
    return child_main(cc->ro, cc->c);
}

static pid_t start_case(const struct run_opts *ro, struct run_case *c)
{
    struct case_child cc = { ro, c };

    c->start_ns = bd_clock_ns();
    c->pid = run_spawn("blkrig-run", &c->tmp, case_child_fn, &cc);
    return c->pid;
}

static void finish_case(struct run_case *c)
{
    char *tr_path = bd_strdup_printf("%s/transcript", c->tmp);
    char *golden = bd_strdup_printf("%.*s.out", (int)(strlen(c->path) - 4),
                                    c->path);
    char *bad = bd_strdup_printf("%s.bad", golden);
    char *tr = read_file(tr_path);
    char *want = read_file(golden);
    int st = c->status;

    if (!tr) {
        tr = bd_strdup("");
    } else {
        char *f = filter_transcript(c, tr);

        free(tr);
        tr = f;
    }
    if (WIFSIGNALED(st)) {
        c->why = bd_strdup_printf("crashed (signal %d)", WTERMSIG(st));
    } else if (WEXITSTATUS(st) == 124) {
        c->why = bd_strdup("a step timed out");
    } else if (WEXITSTATUS(st) == 2) {
        c->why = bd_strdup("stopped by an error");
    } else if (WEXITSTATUS(st) == 1) {
        c->why = bd_strdup("an expectation failed");
    }
    if (!want) {
        if (!c->why) {
            c->why = bd_strdup_printf("no golden output %s", golden);
        }
    } else if (strcmp(tr, want)) {
        if (!c->why) {
            c->why = bd_strdup("output differs");
        }
    } else if (!c->why) {
        c->passed = true;
    }
    if (c->passed) {
        unlink(bad);
    } else {
        write_file(bad, tr);
    }
    free(tr);
    free(want);
    free(tr_path);
    free(golden);
    free(bad);
    run_remove_tree(c->tmp);
}

static void print_diff(const struct run_case *c)
{
    char *golden = bd_strdup_printf("%.*s.out", (int)(strlen(c->path) - 4),
                                    c->path);
    char *cmd;

    if (access(golden, F_OK) == 0) {
        cmd = bd_strdup_printf("diff -u '%s' '%s.bad' | sed 's/^/    /' "
                               "| head -60", golden, golden);
    } else {
        cmd = bd_strdup_printf("sed 's/^/    /' '%s.bad' | head -60", golden);
    }
    fflush(stdout);
    if (system(cmd) != 0) {
        /* diff exits 1 on differences: expected. */
    }
    free(cmd);
    free(golden);
}

static void xml_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f); break;
        }
    }
}

static int write_junit(const char *path, struct run_case *cases, int n)
{
    FILE *f = fopen(path, "w");
    int i, nfail = 0;

    if (!f) {
        fprintf(stderr, "blkrig run: --junit: %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    for (i = 0; i < n; i++) {
        nfail += !cases[i].passed;
    }
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<testsuite name=\"blkrig-scenarios\" tests=\"%d\" "
            "failures=\"%d\">\n", n, nfail);
    for (i = 0; i < n; i++) {
        fprintf(f, "  <testcase classname=\"scenarios\" name=\"");
        xml_escape(f, cases[i].name);
        fprintf(f, "\" time=\"%.3f\"",
                (double)(cases[i].end_ns - cases[i].start_ns) / 1e9);
        if (cases[i].passed) {
            fprintf(f, "/>\n");
        } else {
            fprintf(f, ">\n    <failure message=\"");
            xml_escape(f, cases[i].why ? cases[i].why : "failed");
            fprintf(f, "\"/>\n  </testcase>\n");
        }
    }
    fprintf(f, "</testsuite>\n");
    return fclose(f) == 0 ? 0 : -1;
}

static void usage(FILE *f)
{
    fprintf(f,
"Usage: blkrig run [OPTIONS] [CASES...]\n"
"Run scenarios (.scn files, or directories of them; default\n"
"scenarios/cases) and compare each transcript with its golden .out.\n"
"\n"
"  -g, --group GROUP      only scenarios with GROUP in a '# group:' line\n"
"  -j, --jobs N           run N scenarios at once (default 1)\n"
"      --tap              print TAP instead of the human summary\n"
"      --junit FILE       also write a JUnit XML report to FILE\n"
"      --qmp SOCKET       run against a live blkrig serve or\n"
"                         qemu-storage-daemon instead of in-process\n"
"      --step-timeout S   fail a step that runs longer than S seconds\n"
"                         (default 120)\n"
"  -h, --help             this help\n"
"\n"
"A failing case keeps its transcript as CASE.out.bad and prints a diff.\n"
"Exit status: 0 when every case passed, 1 otherwise.\n");
}

int verb_run(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "group", required_argument, NULL, 'g' },
        { "jobs", required_argument, NULL, 'j' },
        { "tap", no_argument, NULL, 'T' },
        { "junit", required_argument, NULL, 'J' },
        { "qmp", required_argument, NULL, 'Q' },
        { "step-timeout", required_argument, NULL, 'S' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct run_opts ro = { .jobs = 1, .step_timeout = 120 };
    char **paths = bd_malloc0(sizeof(char *) * RUN_MAX_CASES);
    struct run_case *cases;
    int npaths = 0, ncases = 0, i, c, running = 0, next = 0, done = 0;
    int npass = 0;
    char self[PATH_MAX];
    ssize_t sl;

    while ((c = getopt_long(argc, argv, "g:j:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'g':
            ro.group = optarg;
            break;
        case 'j':
            if (bd_parse_int(optarg, &ro.jobs) < 0 || ro.jobs < 1 ||
                ro.jobs > 64) {
                fprintf(stderr, "blkrig run: -j: invalid value '%s' "
                        "(1 to 64)\n", optarg);
                return 1;
            }
            break;
        case 'T':
            ro.tap = true;
            break;
        case 'J':
            ro.junit = optarg;
            break;
        case 'Q':
            ro.qmp = optarg;
            break;
        case 'S':
            if (bd_parse_int(optarg, &ro.step_timeout) < 0 ||
                ro.step_timeout < 1) {
                fprintf(stderr, "blkrig run: --step-timeout: invalid value "
                        "'%s'\n", optarg);
                return 1;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 1;
        }
    }
    sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (sl <= 0) {
        fprintf(stderr, "blkrig run: cannot find my own binary\n");
        return 1;
    }
    self[sl] = '\0';
    ro.self = self;
    if (optind == argc) {
        if (collect("scenarios/cases", paths, &npaths) < 0) {
            return 1;
        }
    }
    for (i = optind; i < argc; i++) {
        if (collect(argv[i], paths, &npaths) < 0) {
            return 1;
        }
    }
    cases = bd_malloc0(sizeof(*cases) * (size_t)(npaths ? npaths : 1));
    for (i = 0; i < npaths; i++) {
        const char *base;

        if (ro.group && !in_group(paths[i], ro.group)) {
            free(paths[i]);
            continue;
        }
        cases[ncases].path = paths[i];
        base = strrchr(paths[i], '/');
        cases[ncases].name = bd_strdup(base ? base + 1 : paths[i]);
        cases[ncases].name[strlen(cases[ncases].name) - 4] = '\0';
        ncases++;
    }
    free(paths);
    if (ro.tap) {
        printf("1..%d\n", ncases);
    }
    while (done < ncases) {
        int st;
        pid_t pid;

        while (running < ro.jobs && next < ncases) {
            if (start_case(&ro, &cases[next]) < 0) {
                fprintf(stderr, "blkrig run: cannot start %s: %s\n",
                        cases[next].name, strerror(errno));
                return 1;
            }
            next++;
            running++;
        }
        pid = waitpid(-1, &st, 0);
        if (pid < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        for (i = 0; i < next; i++) {
            struct run_case *k = &cases[i];

            if (k->pid != pid) {
                continue;
            }
            k->status = st;
            k->end_ns = bd_clock_ns();
            k->pid = 0;
            finish_case(k);
            running--;
            done++;
            npass += k->passed;
            if (ro.tap) {
                printf("%s %d - %s%s%s\n", k->passed ? "ok" : "not ok", i + 1,
                       k->name, k->passed ? "" : " # ",
                       k->passed ? "" : k->why);
            } else if (k->passed) {
                printf("ok    %s (%.1fs)\n", k->name,
                       (double)(k->end_ns - k->start_ns) / 1e9);
            } else {
                printf("FAIL  %s: %s\n", k->name, k->why);
                print_diff(k);
            }
            fflush(stdout);
        }
    }
    if (!ro.tap) {
        printf("scenarios: %d passed, %d failed (of %d)\n", npass,
               ncases - npass, ncases);
    }
    if (ro.junit && write_junit(ro.junit, cases, ncases) < 0) {
        return 1;
    }
    for (i = 0; i < ncases; i++) {
        free(cases[i].path);
        free(cases[i].name);
        free(cases[i].tmp);
        free(cases[i].why);
    }
    free(cases);
    return npass == ncases ? 0 : 1;
}
