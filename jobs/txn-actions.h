/*
 * jobs/txn-actions.h - transactionable QMP actions (specs/jobs.md §1.9,
 * §6.2): the `transaction` command prepares every action in order and
 * commits them all, or aborts the prepared ones in reverse order when one
 * fails. The standalone commands (block-dirty-bitmap-add, blockdev-backup,
 * ...) run the same action as a one-action transaction, so both paths
 * share every check and message.
 *
 * Actions are implemented next to their commands: the bitmap actions in
 * monitor/qmp-bitmap.c, the backup actions in monitor/qmp-backup.c.
 */
#ifndef BLKRIG_TXN_ACTIONS_H
#define BLKRIG_TXN_ACTIONS_H

#include <stdbool.h>
#include <jansson.h>

#include "common/error.h"

struct qmp_context;
struct job_txn;

/* What one action's prepare sees. */
struct txn_action_env {
    const struct qmp_context *ctx;
    /* completion-mode grouped: the shared job transaction (NULL when each
     * job gets its own). */
    struct job_txn *job_txn;
};

struct txn_action_ops {
    const char *kind;               /* "block-dirty-bitmap-add", ... */
    bool grouped_ok;                /* allowed with completion-mode grouped */
    /* Validate and do the reversible part; *state is the action's. */
    int (*prepare)(const struct txn_action_env *env, json_t *args,
                   void **state, struct bd_error **errp);
    void (*commit)(void *state);    /* may be NULL */
    void (*abort)(void *state);     /* may be NULL */
    void (*clean)(void *state);     /* frees state; may be NULL */
};

/* Lookup by the "type" of a TransactionAction (NULL if unknown). */
const struct txn_action_ops *txn_bitmap_action(const char *kind);
const struct txn_action_ops *txn_backup_action(const char *kind);

/* Argument schemas shared with the transaction command's. */
struct qapi_type;
extern const struct qapi_type qmp_bitmap_add_args;
extern const struct qapi_type qmp_bitmap_merge_args;
extern const struct qapi_type qmp_blockdev_backup_args;
extern const struct qapi_type qmp_drive_backup_args;

/* The job verbs' table (monitor/qmp-jobs.c); a strong reference for
 * binaries that only reach the weak table otherwise. */
struct qmp_command;
const struct qmp_command *qmp_jobs_commands(void);

/* Run one action as its own transaction (the standalone command). */
json_t *txn_run_single(const struct txn_action_ops *ops,
                       const struct qmp_context *ctx, json_t *args,
                       struct bd_error **errp);

#endif
