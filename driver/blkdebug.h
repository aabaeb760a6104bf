/*
 * driver/blkdebug.h - what other layers may ask of a blkdebug node.
 *
 * The node itself is an ordinary filter (driver "blkdebug", child "image",
 * registered in driver/registry.c); everything about its rules goes
 * through its injector (injector/injector.h). The QMP fault-control
 * commands (monitor/qmp-blkdebug.c) use this to reach the injector of a
 * live node by name.
 */
#ifndef BLKRIG_BLKDEBUG_H
#define BLKRIG_BLKDEBUG_H

#include <stdbool.h>

#include "common/qapi.h"

struct bd_node;
struct inj;

/* The rule schemas (BlkdebugInjectErrorOptions with our extensions,
 * BlkdebugSetStateOptions) and the event enum, shared with the QMP
 * commands, whose arguments extend them (qapi_type.base). */
extern const struct qapi_type bd_qapi_blkdebug_event;
extern const struct qapi_type bd_qapi_blkdebug_inject;
extern const struct qapi_type bd_qapi_blkdebug_set_state;

/* The node's injector, or NULL when n is not a blkdebug node. The pointer
 * lives as long as the node. */
struct inj *bd_blkdebug_injector(struct bd_node *n);

/* Resume every request of every blkdebug node of g held at a breakpoint
 * (inj_release_breaks). For shutdowns and hopeless waits: with nobody left
 * to send `resume`, a parked request would hold up every drain above it. */
struct bd_graph;
void bd_blkdebug_release_all_breaks(struct bd_graph *g);

#endif
