/*
 * injector/trace.h - the injection-coverage trace (coverage/injection.sh).
 *
 * Contract: when the environment variable BLKRIG_INJECT_TRACE names a
 * file, inj_trace() appends one line (printf format, newline added) to it
 * with a single O_APPEND write, so concurrent processes and threads never
 * interleave within a line. When the variable is unset or empty it does
 * nothing but one getenv(); failures to write are ignored (the trace is a
 * measurement aid, never a reason for I/O to fail). No state is kept.
 *
 * Line kinds written by blkrig (see docs/scenarios.md "Coverage"):
 *   event NAME node=NODE                    blkdebug saw an event raised
 *   inject event=E iotype=T action=A node=N a rule injected a fault
 *   policy job=TYPE side=source|target policy=P errno=N action=A
 */
#ifndef BLKRIG_INJECTOR_TRACE_H
#define BLKRIG_INJECTOR_TRACE_H

#include <stdbool.h>

/* True when BLKRIG_INJECT_TRACE is set (lets callers skip formatting). */
bool inj_trace_enabled(void);

void inj_trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
