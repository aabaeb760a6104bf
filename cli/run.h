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

#endif
