/*
 * jobs/txn-actions.c - a standalone command is a one-action transaction.
 */
#include "common/config.h"

#include "jobs/txn-actions.h"

json_t *txn_run_single(const struct txn_action_ops *ops,
                       const struct qmp_context *ctx, json_t *args,
                       struct bd_error **errp)
{
    struct txn_action_env env = { .ctx = ctx, .job_txn = NULL };
    void *state = NULL;
    int ret;

    ret = ops->prepare(&env, args, &state, errp);
    if (ret < 0) {
        if (ops->abort) {
            ops->abort(state);
        }
    } else if (ops->commit) {
        ops->commit(state);
    }
    if (ops->clean) {
        ops->clean(state);
    }
    return ret < 0 ? NULL : json_object();
}
