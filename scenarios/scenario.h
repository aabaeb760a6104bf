/*
 * scenarios/scenario.h - the scenario language (docs/scenarios.md).
 *
 * A scenario is a plain-text script, one command a line: build a graph,
 * add fault rules, do I/O, run QMP commands and jobs, wait for events,
 * check expectations. sc_run_file() executes one scenario and writes its
 * transcript (each command echoed as "> LINE", then what it produced:
 * QMP replies, waited-for events, qemu-io output, expectation failures) to
 * opts->out. The transcript is what `blkrig run` compares with a golden
 * .out file, so everything written to it is deterministic: timestamps and
 * timings are elided, the scratch directory is written as TEST_DIR.
 *
 * Two back ends run the same scenario:
 *  - in-process (opts->qmp_socket NULL): a private graph, job manager and
 *    FUSE export set behind an in-process QMP server; `io` lines run the
 *    qemu-io command engine supplied by the caller (opts->io), so the
 *    scenario layer does not depend on cli/;
 *  - a live daemon (opts->qmp_socket): every QMP command and event goes
 *    over the socket of `blkrig serve` or qemu-storage-daemon; lines that
 *    need the graph in-process (`io`, `expect equal/pattern`) are errors.
 *
 * Errors: a syntax error, an unknown command or a failed include stops the
 * scenario with "FILE:LINE: message" (return -EINVAL); a failed expectation
 * is written to the transcript as "FILE:LINE: expect failed: ..." and
 * counted, and the scenario goes on (return value: number of failures).
 * A step that must time out (wait) does so by itself; a step that hangs is
 * the caller's to kill (opts->step_hook marks each step's start).
 */
#ifndef BLKRIG_SCENARIO_H
#define BLKRIG_SCENARIO_H

#include <stdbool.h>
#include <stdio.h>

#include "common/error.h"

struct bd_graph;
struct bd_node;

/* Runs one qemu-io command line on node n of graph g, printing to stdout
 * as qemu-io does. Returns 0 or -errno (the transcript shows the output,
 * not the code). */
typedef int sc_io_fn(void *opaque, struct bd_graph *g, struct bd_node *n,
                     const char *cmdline);

struct sc_options {
    const char *test_dir;     /* scratch directory: cwd of the scenario */
    const char *blkrig;       /* this binary, for ${BLKRIG} and `create` */
    const char *qmp_socket;   /* NULL: in-process */
    int wait_timeout_s;       /* default for `wait` (0: 30) */
    sc_io_fn *io;             /* NULL: `io` lines are errors */
    void *io_opaque;
    /* Is a request that an `io` line started still running (qemu-io's
     * aio_read/aio_write)? NULL: `io` leaves nothing running. */
    bool (*io_busy)(void *io_opaque);
    /* Called before each step with "FILE:LINE" (for watchdogs). */
    void (*step_hook)(void *opaque, const char *where);
    void *step_opaque;
    FILE *out;                /* transcript (also receives io's stdout) */

    /*
     * Sweep mode (blkrig sweep): the scenario runs with a fault injected
     * somewhere, so its own expectations may legitimately fail. Only the
     * sweep's invariants count, each reported as "VIOLATION: ..." and
     * counted in the return value:
     *  - `expect equal` must hold when every job completed without error;
     *  - `expect clean` images may leak clusters but not be corrupt;
     *  - a job error reported with action "report" must end the job with
     *    an error; with "stop" the job must pause;
     *  - at the end, jobs still running are cancelled and must conclude.
     * A `wait` that times out is not a failure (the fault may have stopped
     * what it waits for), and a `wait` that nothing can satisfy any more
     * ends at once, without waiting its timeout: no job able to progress
     * without a QMP verb (jobs/job.h, job_manager_can_progress), no
     * request in flight on the graph, no `io` request running (io_busy)
     * and no export whose clients could send one - then no event can come
     * before the scenario's next step, and every event already sent is
     * queued. The transcript then says "wait: hopeless ...". graph_hook
     * is called once the in-process graph exists (to install a fault
     * hook); quiesce(opaque, true/false) brackets the engine's own reads
     * and checks, which are not fault points.
     */
    bool sweep;
    void (*graph_hook)(void *opaque, struct bd_graph *g);
    void (*quiesce)(void *opaque, bool on);
    void *sweep_opaque;
};

/* Run the scenario in path. Returns the number of failed expectations
 * (0: passed) or -errno with errp set for an error that stopped it. */
int sc_run_file(const char *path, const struct sc_options *opts,
                struct bd_error **errp);

/* The groups of a scenario (its "# group:" lines), space-separated, as a
 * new string; "" when it has none, NULL when the file cannot be read. */
char *sc_file_groups(const char *path);

/* Elide what changes from run to run in one transcript line: qemu-io
 * timing figures, QMP event timestamps, the scratch directory. Returns a
 * new string. */
char *sc_filter_line(const char *line, const char *test_dir);
/* Replace every occurrence of PATH in S (freed) with TOKEN; S itself when
 * PATH is NULL or empty. */
char *sc_replace_path(char *s, const char *path, const char *token);

#endif
