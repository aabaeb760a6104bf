/*
 * tests/unit/backup-fixture.h - the fixture test_backup and test_cbw share
 * (linked into those two binaries only, see tests/module.mk): a graph with
 * raw nodes src, tgt, tgt2 and small on files in a temporary directory, a
 * job manager, a "guest" backend on src, QMP commands run through their
 * table entries, the events in one log line, and faults injected through
 * the file driver's syscall table (one fault at a time, per test).
 */
#ifndef BLKRIG_TESTS_BACKUP_FIXTURE_H
#define BLKRIG_TESTS_BACKUP_FIXTURE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "driver/block.h"
#include "jobs/job.h"
#include "monitor/qmp-cmds.h"

#define IMG_SIZE (4 << 20)
#define CL 65536

struct fixture {
    struct bd_graph *g;
    struct job_manager *m;
    struct qmp_context ctx;
    pthread_mutex_t lock;
    char log[16384];
    char dir[64];
    char src[128], tgt[128], tgt2[128], small[128];
    struct bd_blk *guest;
};

/* Fail (or, with a delay set, slow down) the next `times` reads or
 * writes (-1: all) at or after min_off of the file at path. */
void set_fault(const char *path, bool on_write, int err, int times,
               int64_t min_off);
/* The matching writes sleep ns and then succeed instead of failing. */
void set_fault_delay(int64_t ns);
void clear_fault(void);

/* cmocka setup and teardown: the graph, the files, the guest. */
int bf_setup(void **state);
int bf_teardown(void **state);

/* A file of size bytes: seed 0 zeroes, else a pattern of the seed. */
void make_file(const char *path, int64_t size, int seed);
/* blockdev-add a raw node named name over a file node on path. */
void add_raw(struct fixture *f, const char *name, const char *path);

/* Run a command; returns the reply ("return" value or NULL) and the
 * error message in *msg (caller frees). */
json_t *qmp(struct fixture *f, const char *name, const char *args,
            char **msg);
/* The command must succeed / fail with exactly want. */
void ok(struct fixture *f, const char *name, const char *args);
void err_is(struct fixture *f, const char *name, const char *args,
            const char *want);
/* Every job concluded (20 s at most). */
void wait_idle(struct fixture *f);

#endif
