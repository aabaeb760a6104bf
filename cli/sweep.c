/*
 * cli/sweep.c - `blkrig sweep SCENARIO`: find the fault nobody thought of.
 *
 * A first run of the scenario, fault-free, records every fault point: each
 * request a driver is about to execute on any node (driver/block.h,
 * bd_graph_set_fault_hook), in order. Then the scenario runs again once
 * per point and mode, with that request failed:
 *  - transient: only the Nth request fails;
 *  - persistent: the Nth request and every later one on the same node.
 * Each trial runs in a child process in sweep mode (scenarios/scenario.h):
 * the invariants are no crash, no hang, error policies keeping their
 * promises, jobs that end when cancelled, copies equal when every job
 * succeeded, images that check clean (leaks allowed). A broken invariant is
 * printed with a one-line command that reproduces the trial alone.
 *
 * Points are numbered in request order. With concurrent jobs that order
 * can vary between runs, so the reproduction command names the point and
 * the node: the trial says which request it actually failed.
 */
#include "common/config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/run.h"
#include "cli/verbs.h"
#include "common/cutils.h"
#include "common/rng.h"
#include "driver/block.h"

static const char *const fault_type_names[BD_FAULT__MAX] = {
    [BD_FAULT_READ] = "read",
    [BD_FAULT_WRITE] = "write",
    [BD_FAULT_WRITE_ZEROES] = "write-zeroes",
    [BD_FAULT_DISCARD] = "discard",
    [BD_FAULT_FLUSH] = "flush",
};

enum sweep_mode { MODE_TRANSIENT, MODE_PERSISTENT };
static const char *const mode_names[] = { "transient", "persistent" };

/* The fault hook's state in one child process. */
struct sweep_fault {
    atomic_long counter;
    atomic_bool quiet;
    long target;                 /* 1-based point to fail; 0: record only */
    enum sweep_mode mode;
    int err;
    FILE *rec;                   /* enumeration: one line per point */
    pthread_mutex_t lock;
    bool triggered;
    char node[128];              /* the node the fault hit */
    char what[256];              /* the request the fault hit */
};

static int fault_hook(void *opaque, struct bd_node *n, enum bd_fault_type t,
                      int64_t off, int64_t bytes)
{
    struct sweep_fault *f = opaque;
    long k;
    int r = 0;

    if (atomic_load(&f->quiet)) {
        return 0;
    }
    k = atomic_fetch_add(&f->counter, 1) + 1;
    pthread_mutex_lock(&f->lock);
    if (f->rec) {
        fprintf(f->rec, "%ld %s %s %" PRId64 " %" PRId64 "\n", k,
                fault_type_names[t], bd_node_name(n), off, bytes);
    } else if (k == f->target) {
        f->triggered = true;
        snprintf(f->node, sizeof(f->node), "%s", bd_node_name(n));
        snprintf(f->what, sizeof(f->what), "%s on %s at %" PRId64 "+%" PRId64,
                 fault_type_names[t], bd_node_name(n), off, bytes);
        r = -f->err;
    } else if (f->triggered && f->mode == MODE_PERSISTENT &&
               !strcmp(f->node, bd_node_name(n))) {
        r = -f->err;
    }
    pthread_mutex_unlock(&f->lock);
    return r;
}

static void install_hook(void *opaque, struct bd_graph *g)
{
    bd_graph_set_fault_hook(g, fault_hook, opaque);
}

static void quiesce(void *opaque, bool on)
{
    struct sweep_fault *f = opaque;

    atomic_store(&f->quiet, on);
}

struct sweep_opts {
    const char *scenario;
    const char *self;
    int err;
    int jobs;
    int shard_k, shard_n;
    long max;
    uint64_t seed;
    bool have_seed;
    long point;                  /* --point: one trial, verbose */
    int mode_mask;               /* bit per sweep_mode */
    int step_timeout;
    int wait_timeout;
};

/* A trial's exit status, past the count of broken invariants (1..100). */
#define TRIAL_EXIT_ERROR 110    /* a step failed with no fault injected yet */
#define TRIAL_EXIT_DIVERGED 111 /* the fault made a later step fail */

/* Run the scenario in this (child) process; target 0 records points into
 * rec. Exit status: 0, the number of broken invariants (capped at 100),
 * or one of the TRIAL_EXIT_* codes. */
static int child_run(const struct sweep_opts *so, const char *dir, long target,
                     enum sweep_mode mode, FILE *rec)
{
    struct sweep_fault f = { .target = target, .mode = mode,
                             .err = so->err, .rec = rec };
    struct sc_options o = { 0 };
    struct bd_error *err = NULL;
    char *abs = realpath(so->scenario, NULL);
    int r;

    pthread_mutex_init(&f.lock, NULL);
    run_watchdog_init(so->step_timeout);
    if (chdir(dir) < 0) {
        return 2;
    }
    o.test_dir = dir;
    o.blkrig = so->self;
    o.io = run_io;
    o.io_busy = run_io_busy;
    o.step_hook = run_step_hook;
    o.out = stdout;
    o.sweep = true;
    o.graph_hook = install_hook;
    o.quiesce = quiesce;
    o.sweep_opaque = &f;
    /* A fault often stops what a `wait` waits for. Sweep mode ends such
     * a wait at once when nothing can send an event any more; the short
     * timeout bounds the rest (a job that runs on but never sends it). */
    o.wait_timeout_s = so->wait_timeout;
    r = sc_run_file(abs ? abs : so->scenario, &o, &err);
    alarm(0);
    if (target) {
        printf("FAULT: %s\n", f.triggered ? f.what : "(point not reached)");
    }
    if (err) {
        printf("error: %s\n", bd_error_msg(err));
        bd_error_free(err);
    }
    fflush(stdout);
    if (rec) {
        fflush(rec);
    }
    free(abs);
    if (r < 0) {
        /* A fault may well make a later step impossible (a node it kept
         * from being added, a job it ended early): that is the scenario
         * diverging, not a broken promise; the invariants were checked
         * all the same. Without the fault, a failing step is the
         * scenario's own error. */
        return f.triggered ? TRIAL_EXIT_DIVERGED : TRIAL_EXIT_ERROR;
    }
    return r > 100 ? 100 : r;
}

struct trial {
    long point;
    enum sweep_mode mode;
    pid_t pid;
    char *dir;
    int status;
};

struct trial_child {
    const struct sweep_opts *so;
    struct trial *t;
    const char *recpath;
};

static int trial_child_fn(void *arg, const char *scratch)
{
    struct trial_child *tc = arg;
    FILE *rec = tc->recpath ? fopen(tc->recpath, "w") : NULL;

    return child_run(tc->so, scratch, tc->t->point, tc->t->mode, rec);
}

static pid_t start_trial(const struct sweep_opts *so, struct trial *t,
                         const char *recpath)
{
    struct trial_child tc = { so, t, recpath };

    t->pid = run_spawn("blkrig-sweep", &t->dir, trial_child_fn, &tc);
    return t->pid;
}

/* The lines of a trial's transcript that matter for a report. */
static char *trial_report(const struct trial *t, bool all)
{
    char *path = bd_strdup_printf("%s/transcript", t->dir);
    FILE *f = fopen(path, "r");
    char *line = NULL, *res = bd_strdup("");
    size_t cap = 0;

    free(path);
    if (!f) {
        return res;
    }
    while (getline(&line, &cap, f) >= 0) {
        if (all || !strncmp(line, "VIOLATION:", 10) ||
            !strncmp(line, "FAULT:", 6) || !strncmp(line, "error:", 6) ||
            strstr(line, "step timed out")) {
            char *n = bd_strdup_printf("%s    %s", res, line);

            free(res);
            res = n;
        }
    }
    free(line);
    fclose(f);
    return res;
}

/* Did the trial break an invariant (or crash, hang, fail without a
 * fault)? *diverged: the fault stopped the scenario early, invariants
 * held. */
static bool trial_failed(const struct trial *t, char **why, bool *diverged)
{
    int st = t->status;

    *diverged = false;
    if (WIFSIGNALED(st)) {
        *why = bd_strdup_printf("crashed (signal %d)", WTERMSIG(st));
        return true;
    }
    switch (WEXITSTATUS(st)) {
    case 0:
        return false;
    case TRIAL_EXIT_DIVERGED:
        *diverged = true;
        return false;
    case 124:
        *why = bd_strdup("hung (a step timed out)");
        return true;
    case TRIAL_EXIT_ERROR:
        *why = bd_strdup("the scenario stopped with an error before the "
                         "fault");
        return true;
    default:
        *why = bd_strdup_printf("%d invariant(s) broken",
                                WEXITSTATUS(st));
        return true;
    }
}

static void usage(FILE *f)
{
    fprintf(f,
"Usage: blkrig sweep [OPTIONS] SCENARIO\n"
"Re-run SCENARIO with a fault at every fault point (each request on each\n"
"node, in order) and check invariants after each trial.\n"
"\n"
"  --errno N        errno of the injected fault (default 5, EIO)\n"
"  --mode MODE      transient, persistent or both (default both)\n"
"  --shard K/N      run only the K-th of N interleaved slices of trials\n"
"  --max M          run at most M trials, chosen with --seed\n"
"  --seed S         seed for --max's choice (default 0)\n"
"  --point P        run only the trial at point P and print its transcript\n"
"  -j, --jobs N     run N trials at once (default: one per CPU)\n"
"  --step-timeout S a step longer than S seconds is a hang (default 60)\n"
"  --wait-timeout S a `wait` gives up after S seconds (default 2)\n"
"\n"
"Exit status: 0 when no invariant broke, 1 otherwise.\n");
}

static int parse_args(int argc, char **argv, struct sweep_opts *so)
{
    static const struct option longopts[] = {
        { "errno", required_argument, NULL, 'e' },
        { "mode", required_argument, NULL, 'm' },
        { "shard", required_argument, NULL, 's' },
        { "max", required_argument, NULL, 'M' },
        { "seed", required_argument, NULL, 'S' },
        { "point", required_argument, NULL, 'p' },
        { "jobs", required_argument, NULL, 'j' },
        { "step-timeout", required_argument, NULL, 't' },
        { "wait-timeout", required_argument, NULL, 'w' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    int64_t v;

    while ((c = getopt_long(argc, argv, "j:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'e':
            if (bd_parse_int(optarg, &so->err) < 0 || so->err <= 0 ||
                so->err > 4095) {
                fprintf(stderr, "blkrig sweep: --errno: invalid value '%s'\n",
                        optarg);
                return -1;
            }
            break;
        case 'm':
            if (!strcmp(optarg, "transient")) {
                so->mode_mask = 1 << MODE_TRANSIENT;
            } else if (!strcmp(optarg, "persistent")) {
                so->mode_mask = 1 << MODE_PERSISTENT;
            } else if (!strcmp(optarg, "both")) {
                so->mode_mask = 3;
            } else {
                fprintf(stderr, "blkrig sweep: --mode: invalid value '%s' "
                        "(transient, persistent, both)\n", optarg);
                return -1;
            }
            break;
        case 's':
            if (sscanf(optarg, "%d/%d", &so->shard_k, &so->shard_n) != 2 ||
                so->shard_n < 1 || so->shard_k < 1 ||
                so->shard_k > so->shard_n) {
                fprintf(stderr, "blkrig sweep: --shard: invalid value '%s' "
                        "(K/N with 1 <= K <= N)\n", optarg);
                return -1;
            }
            break;
        case 'M':
            if (bd_parse_i64(optarg, &v) < 0 || v < 1) {
                fprintf(stderr, "blkrig sweep: --max: invalid value '%s'\n",
                        optarg);
                return -1;
            }
            so->max = (long)v;
            break;
        case 'S':
            if (bd_parse_u64(optarg, &so->seed) < 0) {
                fprintf(stderr, "blkrig sweep: --seed: invalid value '%s'\n",
                        optarg);
                return -1;
            }
            so->have_seed = true;
            break;
        case 'p':
            if (bd_parse_i64(optarg, &v) < 0 || v < 1) {
                fprintf(stderr, "blkrig sweep: --point: invalid value '%s'\n",
                        optarg);
                return -1;
            }
            so->point = (long)v;
            break;
        case 'j':
            if (bd_parse_int(optarg, &so->jobs) < 0 || so->jobs < 1 ||
                so->jobs > 64) {
                fprintf(stderr, "blkrig sweep: -j: invalid value '%s' "
                        "(1 to 64)\n", optarg);
                return -1;
            }
            break;
        case 't':
            if (bd_parse_int(optarg, &so->step_timeout) < 0 ||
                so->step_timeout < 1) {
                fprintf(stderr, "blkrig sweep: --step-timeout: invalid "
                        "value '%s'\n", optarg);
                return -1;
            }
            break;
        case 'w':
            if (bd_parse_int(optarg, &so->wait_timeout) < 0 ||
                so->wait_timeout < 1) {
                fprintf(stderr, "blkrig sweep: --wait-timeout: invalid "
                        "value '%s'\n", optarg);
                return -1;
            }
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "blkrig sweep: expected one SCENARIO\n");
        usage(stderr);
        return -1;
    }
    so->scenario = argv[optind];
    if (access(so->scenario, R_OK) < 0) {
        fprintf(stderr, "blkrig sweep: %s: %s\n", so->scenario,
                strerror(errno));
        return -1;
    }
    return 0;
}

static int wait_trial(struct trial *trials, int n)
{
    int st, i;
    pid_t pid;

    do {
        pid = waitpid(-1, &st, 0);
    } while (pid < 0 && errno == EINTR);
    for (i = 0; i < n; i++) {
        if (trials[i].pid == pid) {
            trials[i].status = st;
            trials[i].pid = 0;
            return i;
        }
    }
    return -1;
}

int verb_sweep(int argc, char **argv)
{
    struct sweep_opts so = { .err = 5, .shard_k = 1,
                             .shard_n = 1, .mode_mask = 3,
                             .step_timeout = 60, .wait_timeout = 2 };
    char self[PATH_MAX];
    struct trial base = { 0 };
    struct trial *trials;
    char recpath[] = "/tmp/blkrig-sweep-points.XXXXXX";
    long npoints = 0, ntrials = 0, i, next = 0, done = 0;
    int fd, running = 0, violations = 0, m;
    long ndiverged = 0;
    bool diverged;
    int64_t t0;
    char *why = NULL, *rep;
    FILE *rf;
    char *line = NULL;
    size_t cap = 0;
    bool tty = isatty(STDERR_FILENO);
    ssize_t sl;
    long ncpu;

    /* Trials spend little time waiting now (hopeless waits end at once),
     * so one per CPU keeps the machine busy without oversubscribing it. */
    ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    so.jobs = (int)BD_MAX(1, BD_MIN(64, ncpu));
    if (parse_args(argc, argv, &so) < 0) {
        return 1;
    }
    sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (sl <= 0) {
        fprintf(stderr, "blkrig sweep: cannot find my own binary\n");
        return 1;
    }
    self[sl] = '\0';
    so.self = self;

    if (so.point) {
        /* One trial, shown whole: the reproduction command. */
        int rc = 0;

        for (m = 0; m < 2; m++) {
            struct trial t = { .point = so.point, .mode = m };

            if (!(so.mode_mask & (1 << m))) {
                continue;
            }
            if (start_trial(&so, &t, NULL) < 0) {
                return 1;
            }
            wait_trial(&t, 1);
            rep = trial_report(&t, true);
            printf("== point %ld, %s, errno %d\n%s", so.point, mode_names[m],
                   so.err, rep);
            if (trial_failed(&t, &why, &diverged)) {
                printf("RESULT: %s\n", why);
                free(why);
                rc = 1;
            } else if (diverged) {
                printf("RESULT: ok (the fault stopped the scenario early)\n");
            } else {
                printf("RESULT: ok\n");
            }
            free(rep);
            run_remove_tree(t.dir);
            free(t.dir);
        }
        return rc;
    }

    /* The fault-free run: it must hold the invariants too, and it lists
     * the fault points. */
    fd = mkstemp(recpath);
    if (fd < 0) {
        fprintf(stderr, "blkrig sweep: %s\n", strerror(errno));
        return 1;
    }
    close(fd);
    t0 = bd_clock_ns();
    if (start_trial(&so, &base, recpath) < 0) {
        return 1;
    }
    wait_trial(&base, 1);
    if (trial_failed(&base, &why, &diverged)) {
        rep = trial_report(&base, true);
        printf("sweep: the fault-free run fails: %s\n%s", why, rep);
        free(rep);
        free(why);
        run_remove_tree(base.dir);
        unlink(recpath);
        return 1;
    }
    run_remove_tree(base.dir);
    free(base.dir);
    rf = fopen(recpath, "r");
    while (rf && getline(&line, &cap, rf) >= 0) {
        npoints++;
    }
    if (rf) {
        fclose(rf);
    }
    free(line);
    unlink(recpath);

    /* Trials: point-major, both modes; this shard's slice; a seeded
     * sample when --max is smaller. */
    trials = bd_malloc0(sizeof(*trials) * (size_t)(npoints * 2 + 1));
    for (i = 0; i < npoints * 2; i++) {
        long point = i / 2 + 1;
        enum sweep_mode mode = (enum sweep_mode)(i % 2);

        if (!(so.mode_mask & (1 << mode)) ||
            i % so.shard_n != so.shard_k - 1) {
            continue;
        }
        trials[ntrials].point = point;
        trials[ntrials].mode = mode;
        ntrials++;
    }
    if (so.max && so.max < ntrials) {
        struct bd_rng rng;

        bd_rng_seed(&rng, so.seed);
        for (i = 0; i < so.max; i++) {
            long j = i + (long)(bd_rng_next(&rng) %
                                (uint64_t)(ntrials - i));
            struct trial tmp = trials[i];

            trials[i] = trials[j];
            trials[j] = tmp;
        }
        ntrials = so.max;
    }
    printf("sweep: %s: %ld fault points, %ld trials (errno %d, shard %d/%d)"
           "\n", so.scenario, npoints, ntrials, so.err, so.shard_k,
           so.shard_n);
    fflush(stdout);

    while (done < ntrials) {
        int k;

        while (running < so.jobs && next < ntrials) {
            if (start_trial(&so, &trials[next], NULL) < 0) {
                fprintf(stderr, "blkrig sweep: cannot start a trial: %s\n",
                        strerror(errno));
                return 1;
            }
            next++;
            running++;
        }
        k = wait_trial(trials, (int)next);
        if (k < 0) {
            break;
        }
        running--;
        done++;
        if (!trial_failed(&trials[k], &why, &diverged)) {
            ndiverged += diverged;
        } else {
            violations++;
            rep = trial_report(&trials[k], false);
            if (tty) {
                fprintf(stderr, "\r\033[K");
            }
            printf("VIOLATION at point %ld (%s, errno %d): %s\n%s"
                   "  repro: blkrig sweep --point %ld --mode %s --errno %d "
                   "%s\n", trials[k].point, mode_names[trials[k].mode],
                   so.err, why, rep, trials[k].point,
                   mode_names[trials[k].mode], so.err, so.scenario);
            fflush(stdout);
            free(rep);
            free(why);
        }
        run_remove_tree(trials[k].dir);
        free(trials[k].dir);
        trials[k].dir = NULL;
        if (tty) {
            int w = 30, filled = (int)(done * w / ntrials);

            fprintf(stderr, "\r[%.*s%*s] %ld/%ld trials, %d violation(s)",
                    filled, "##############################", w - filled, "",
                    done, ntrials, violations);
            if (done == ntrials) {
                fprintf(stderr, "\n");
            }
        }
    }
    printf("sweep: %ld trials, %d violation(s), %ld stopped early by their "
           "fault, %.1f trials/s\n", ntrials, violations, ndiverged,
           (double)ntrials / ((double)(bd_clock_ns() - t0) / 1e9 + 1e-9));
    free(trials);
    return violations ? 1 : 0;
}
