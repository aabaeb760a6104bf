/*
 * injector/config.c - blkdebug's rule file: QEMU's -readconfig ini dialect
 * with every quirk of spec §6 (column-0 comments only, blank-only lines are
 * a parse error, unquoted values silently empty, a blank needed before '=',
 * text after the closing quote ignored, lines split at 1023 bytes).
 *
 * The per-line matching uses sscanf patterns because their exact behaviour
 * (a %s conversion stops at the first blank, a failed literal after a
 * successful conversion still counts that conversion) *is* the dialect:
 * every quirk above falls out of four patterns tried in order.
 */
#include "common/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cutils.h"
#include "injector/injector.h"
#include "injector/rule-int.h"

/* Line buffer of QEMU's reader: longer lines arrive in pieces. */
#define LINE_MAX_BYTES 1024

static json_t *new_section(json_t *sections, const char *group,
                           const char *id, struct bd_error **errp)
{
    json_t *sec = NULL;
    size_t i;
    json_t *s;

    if (!inj_group_known(group)) {
        bd_error_setg(errp, "There is no option group '%s'", group);
        return NULL;
    }
    if (id) {
        if (!bd_id_wellformed(id, 127)) {
            bd_error_setg(errp, "Parameter 'id' expects an identifier");
            bd_error_append_hint(errp, "Identifiers consist of letters, "
                                 "digits, '-', '.', '_', starting with a "
                                 "letter.\n");
            return NULL;
        }
        json_array_foreach(sections, i, s) {
            const char *g = json_string_value(json_object_get(s, "group"));
            const char *sid = json_string_value(json_object_get(s, "id"));

            if (sid && g && !strcmp(g, group) && !strcmp(sid, id)) {
                bd_error_setg(errp, "Duplicate ID '%s' for %s", id, group);
                return NULL;
            }
        }
    }
    sec = json_object();
    json_object_set_new(sec, "group", json_string(group));
    if (id) {
        json_object_set_new(sec, "id", json_string(id));
    }
    json_object_set_new(sec, "opts", json_object());
    json_array_append_new(sections, sec);
    return sec;
}

int inj_config_parse(FILE *f, json_t *sections, struct bd_error **errp)
{
    char line[LINE_MAX_BYTES];
    char group[64];
    char id[64];
    char key[64];
    char value[1024];
    json_t *cur = NULL;
    static const char *const unknown[2] = { "Invalid parameter '", "'" };

    while (fgets(line, sizeof(line), f)) {
        if (line[0] == '\n' || line[0] == '#') {
            /* Only an exactly empty line or a column-0 '#' is skipped. */
            continue;
        }
        if (sscanf(line, "[%63s \"%63[^\"]\"]", group, id) == 2) {
            cur = new_section(sections, group, id, errp);
            if (!cur) {
                return -EINVAL;
            }
            continue;
        }
        if (sscanf(line, "[%63[^]]]", group) == 1) {
            cur = new_section(sections, group, NULL, errp);
            if (!cur) {
                return -EINVAL;
            }
            continue;
        }
        if (sscanf(line, " %63s = \"%1023[^\"]\"", key, value) != 2) {
            /* The fallback pattern matches any first word: whatever
             * follows it, the key gets an empty value. */
            value[0] = '\0';
            if (sscanf(line, " %63s = \"\"", key) != 1) {
                bd_error_setg(errp, "parse error");
                return -EINVAL;
            }
        }
        if (!cur) {
            bd_error_setg(errp, "no group defined");
            return -EINVAL;
        }
        if (inj_field_check(json_string_value(json_object_get(cur, "group")),
                            key, value, unknown, errp) < 0) {
            return -EINVAL;
        }
        json_object_set_new(json_object_get(cur, "opts"), key,
                            json_string(value));
    }
    if (ferror(f)) {
        bd_error_setg_errno(errp, EIO, "Cannot read config file");
        return -EIO;
    }
    return 0;
}
