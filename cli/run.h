/*
 * cli/run.h - what the scenario verbs (run, demo, sweep) share: the
 * qemu-io command engine as the scenario layer's `io` executor.
 */
#ifndef BLKRIG_CLI_RUN_H
#define BLKRIG_CLI_RUN_H

#include "scenarios/scenario.h"

/* sc_io_fn over cli/io-cmds.c: one qemu-io command line on node n, through
 * a temporary backend; output on stdout/stderr as qemu-io prints it. */
int run_io(void *opaque, struct bd_graph *g, struct bd_node *n,
           const char *cmdline);
/* sc_io_busy_fn over the same contexts: is an aio request that an `io`
 * line submitted still running (its worker may not have reached the
 * block layer yet, so the graph's in-flight count cannot tell)? */
bool run_io_busy(void *opaque);

/* Per-step watchdog for a scenario child process: run_step_hook (an
 * sc_options.step_hook) re-arms an alarm of timeout_s seconds at every
 * step; when it fires, "FILE:LINE: step timed out after N s" goes to stdout
 * and the process exits with status 124. */
void run_watchdog_init(int timeout_s);
void run_step_hook(void *opaque, const char *where);

/* Fork a scenario child in a fresh scratch root /tmp/PREFIX.XXXXXX (*dir,
 * caller frees): DIR/scratch is its working area, DIR/transcript receives
 * its stdout and stderr (line-buffered); it runs fn(arg, scratch) and exits
 * with the result. Returns the child's pid, or -1. */
#include <sys/types.h>
pid_t run_spawn(const char *prefix, char **dir,
                int (*fn)(void *arg, const char *scratch), void *arg);
/* Remove a scratch root, lazily unmounting any FUSE mount left in it by a
 * crashed child first, so nothing stays busy. */
void run_remove_tree(const char *dir);

#endif
