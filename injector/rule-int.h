/*
 * injector/rule-int.h - field tables shared by the config-file reader and
 * the rule builder (internal to injector/).
 *
 * A rule arrives as a flat dict of field -> string (config files, dotted
 * options) or typed scalar (JSON). inj_field_check validates one field when
 * it is read, the way QemuOpts does while parsing (unknown key, number and
 * bool syntax); enums (event, iotype) are checked later, when the rule is
 * created, which is where QEMU checks them too.
 */
#ifndef BLKRIG_INJECTOR_RULE_INT_H
#define BLKRIG_INJECTOR_RULE_INT_H

#include <stdbool.h>

#include "common/error.h"

enum inj_field_type {
    INJ_F_STR,
    INJ_F_NUM,      /* QemuOpts number: C syntax, '-' wraps */
    INJ_F_BOOL,
    INJ_F_PROB,     /* a probability in [0, 1] */
};

/* Is group "inject-error" or "set-state"? */
bool inj_group_known(const char *group);
/* Type of field key in group; -1 when the group has no such field. */
int inj_field_type(const char *group, const char *key);
/*
 * Check one field value (string form). Unknown key: the message is
 * unknown[0] + key + unknown[1]. Returns 0 or -EINVAL.
 */
int inj_field_check(const char *group, const char *key, const char *value,
                    const char *const unknown[2], struct bd_error **errp);

#endif
