/*
 * tests/helpers/test-drivers.h - drivers that exist only in unit tests.
 *
 * They are never in driver/registry.c. A test makes them openable by name
 * in one graph with td_graph_new() (bd_graph_set_extra_drivers), so nested
 * options such as file.driver=test-log,file.file.driver=null-co work, or
 * opens one directly with bd_open_driver().
 *
 *  test-log   filter; records every callback it gets (entry and result)
 *             into a shared struct td_log, labelled with its node name:
 *             "f2 read", "f2 read=0", "f2 open", "f2 drain_begin", ...
 *             Options: file (child), log (address of the struct td_log,
 *             as an integer; may be absent: nothing is recorded).
 *  test-fail  filter; fails chosen operations with errno (default EIO):
 *             bools fail-open (after opening its child), fail-read,
 *             fail-write, fail-zeroes, fail-discard, fail-flush; number
 *             errno. Forwards everything else.
 *  test-mem   memory-backed data node (the contents are in a malloc'd
 *             buffer) that checks the core's promises to drivers: every
 *             request aligned to `align`, no longer than max-transfer /
 *             max-discard / max-zeroes, inside the node. Violations are
 *             counted (td_mem_stats) and fail with -EINVAL.
 *             Options: size (default 1M), align (1), max-transfer,
 *             max-discard, discard-align, max-zeroes (0 = no limit), fua
 *             (driver honours FUA; default off), zeroes (driver implements
 *             write-zeroes; default on), log.
 *
 * All per-node state lives in node->opaque; the log is owned by the test.
 */
#ifndef BLKRIG_TEST_DRIVERS_H
#define BLKRIG_TEST_DRIVERS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "common/error.h"

struct bd_driver;
struct bd_graph;
struct bd_node;

/* A thread-safe list of text lines. */
struct td_log {
    pthread_mutex_t lock;
    char **lines;
    size_t n;
    size_t cap;
};

void td_log_init(struct td_log *l);
void td_log_destroy(struct td_log *l);
void td_log_clear(struct td_log *l);
void td_log_add(struct td_log *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Lines joined by "|" ("" when empty); caller frees. */
char *td_log_join(struct td_log *l);
/* Lines containing needle, joined by "|"; caller frees. */
char *td_log_grep(struct td_log *l, const char *needle);
/* Number of lines containing needle. */
size_t td_log_count(struct td_log *l, const char *needle);
/* The log's address as the integer the "log" option takes. */
json_int_t td_log_opt(struct td_log *l);

const struct bd_driver *td_driver_log(void);
const struct bd_driver *td_driver_fail(void);
const struct bd_driver *td_driver_mem(void);

/* A graph in which the three test drivers can be named. */
struct bd_graph *td_graph_new(void);

/* Counters kept by a test-mem node (read with atomic loads). */
struct td_mem_stats {
    atomic_uint reads;
    atomic_uint writes;
    atomic_uint writes_fua;
    atomic_uint zeroes;
    atomic_uint zeroes_unmap;
    atomic_uint discards;
    atomic_uint flushes;
    atomic_uint violations;   /* broken driver preconditions */
};

struct td_mem_stats *td_mem_stats(struct bd_node *n);
/* The node's contents (td_mem_size bytes); tests may read and seed it
 * while no request runs. */
uint8_t *td_mem_data(struct bd_node *n);
int64_t td_mem_size(struct bd_node *n);

/* Open a node from nested options (reference stolen); flags are BD_O_*. */
struct bd_node *td_open(struct bd_graph *g, json_t *nested, int flags,
                        struct bd_error **errp);
/* Open a node from a JSON text of nested options ("{'driver': ...}" with
 * double quotes); the flags are BD_O_*. Sets errp on failure. */
struct bd_node *td_open_json(struct bd_graph *g, const char *json, int flags,
                             struct bd_error **errp);

#endif
