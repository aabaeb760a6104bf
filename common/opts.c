/*
 * common/opts.c - flat option dictionaries and QemuOpts-style conversion.
 *
 * Why flat dictionaries: QEMU hands options to drivers as a flat QDict and
 * every driver error message ("Block protocol 'x' doesn't support the option
 * 'k'", list errors of blkdebug) is phrased in terms of the dotted keys, so
 * reproducing the messages is easiest with the same shape.
 */
#include "common/config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cutils.h"
#include "common/opts.h"

/* Read one element up to an unescaped stop char; ",," becomes ','. */
static const char *read_token(const char *p, const char *stops, char **out)
{
    size_t cap = strlen(p) + 1;
    char *buf = bd_malloc(cap);
    size_t n = 0;

    while (*p) {
        if (*p == ',') {
            if (p[1] == ',') {
                buf[n++] = ',';
                p += 2;
                continue;
            }
            break;
        }
        if (strchr(stops, *p)) {
            break;
        }
        buf[n++] = *p++;
    }
    buf[n] = '\0';
    *out = buf;
    return p;
}

json_t *bd_opts_parse(const char *str, const char *implied_key,
                      struct bd_error **errp)
{
    json_t *obj = json_object();
    const char *p = str;
    bool first = true;

    while (*p) {
        char *key = NULL;
        char *val = NULL;

        p = read_token(p, "=", &key);
        if (*p == '=') {
            p = read_token(p + 1, "", &val);
        } else if (first && implied_key) {
            val = key;
            key = bd_strdup(implied_key);
        } else {
            val = bd_strdup("on");
        }
        if (!*key) {
            bd_error_setg(errp, "Invalid parameter ''");
            free(key);
            free(val);
            json_decref(obj);
            return NULL;
        }
        json_object_set_new(obj, key, json_string(val));
        free(key);
        free(val);
        first = false;
        if (*p == ',') {
            p++;
        }
    }
    return obj;
}

static void flatten_into(json_t *dst, json_t *v, const char *prefix)
{
    if (prefix && (json_is_object(v) || json_is_array(v)) &&
        (json_is_object(v) ? json_object_size(v) : json_array_size(v)) == 0) {
        /* An empty list or object stays a value, as in QEMU's
         * qdict_flatten: no driver takes one, so `"inject-error": []`
         * is refused as an unsupported option, as QEMU refuses it. */
        json_object_set(dst, prefix, v);
    } else if (json_is_object(v)) {
        const char *k;
        json_t *child;

        json_object_foreach(v, k, child) {
            char *path = prefix ? bd_strdup_printf("%s.%s", prefix, k)
                                : bd_strdup(k);
            flatten_into(dst, child, path);
            free(path);
        }
    } else if (json_is_array(v) && prefix) {
        size_t i;
        json_t *child;

        json_array_foreach(v, i, child) {
            char *path = bd_strdup_printf("%s.%zu", prefix, i);
            flatten_into(dst, child, path);
            free(path);
        }
    } else if (prefix) {
        json_object_set(dst, prefix, v);
    }
}

json_t *bd_opts_flatten(json_t *nested)
{
    json_t *flat = json_object();

    flatten_into(flat, nested, NULL);
    return flat;
}

static bool is_index(const char *s)
{
    if (!*s) {
        return false;
    }
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s)) {
            return false;
        }
    }
    return true;
}

/* Turn objects whose keys are exactly 0..N-1 into arrays, recursively. */
static json_t *listify(json_t *v, const char *path, struct bd_error **errp)
{
    const char *k;
    json_t *child;
    size_t n = 0;
    bool any_index = false;
    bool all_index = true;

    if (!json_is_object(v)) {
        return json_incref(v);
    }
    json_object_foreach(v, k, child) {
        n++;
        if (is_index(k)) {
            any_index = true;
        } else {
            all_index = false;
        }
    }
    if (any_index && !all_index) {
        bd_error_setg(errp, "Parameter '%s%s' mixes list indices and keys",
                      path ? path : "", path ? "" : "");
        return NULL;
    }
    if (any_index) {
        json_t *arr = json_array();
        size_t i;

        for (i = 0; i < n; i++) {
            char idx[24];
            json_t *elem;
            json_t *conv;

            snprintf(idx, sizeof(idx), "%zu", i);
            elem = json_object_get(v, idx);
            if (!elem) {
                bd_error_setg(errp, "Parameter '%s.%zu' missing",
                              path ? path : "", i);
                json_decref(arr);
                return NULL;
            }
            conv = listify(elem, path, errp);
            if (!conv) {
                json_decref(arr);
                return NULL;
            }
            json_array_append_new(arr, conv);
        }
        return arr;
    } else {
        json_t *obj = json_object();

        json_object_foreach(v, k, child) {
            char *sub = path ? bd_strdup_printf("%s.%s", path, k)
                             : bd_strdup(k);
            json_t *conv = listify(child, sub, errp);
            free(sub);
            if (!conv) {
                json_decref(obj);
                return NULL;
            }
            json_object_set_new(obj, k, conv);
        }
        return obj;
    }
}

json_t *bd_opts_crumple(json_t *flat, struct bd_error **errp)
{
    json_t *root = json_object();
    json_t *result = NULL;
    const char *key;
    json_t *val;

    json_object_foreach(flat, key, val) {
        char *dup = bd_strdup(key);
        char *save = NULL;
        char *part = strtok_r(dup, ".", &save);
        json_t *cur = root;

        while (part) {
            char *next = strtok_r(NULL, ".", &save);
            json_t *sub = json_object_get(cur, part);

            if (!next) {
                if (sub) {
                    bd_error_setg(errp, "Parameter '%s' used inconsistently",
                                  key);
                    free(dup);
                    json_decref(root);
                    return NULL;
                }
                json_object_set(cur, part, val);
            } else {
                if (!sub) {
                    sub = json_object();
                    json_object_set_new(cur, part, sub);
                } else if (!json_is_object(sub)) {
                    bd_error_setg(errp, "Parameter '%s' used inconsistently",
                                  key);
                    free(dup);
                    json_decref(root);
                    return NULL;
                }
                cur = sub;
            }
            part = next;
        }
        free(dup);
    }
    result = listify(root, NULL, errp);
    json_decref(root);
    return result;
}

json_t *bd_opts_extract(json_t *flat, const char *prefix)
{
    json_t *sub = json_object();
    size_t plen = strlen(prefix);
    const char *key;
    json_t *val;
    void *tmp;

    json_object_foreach_safe(flat, tmp, key, val) {
        if (!strncmp(key, prefix, plen) && key[plen] == '.') {
            json_object_set(sub, key + plen + 1, val);
            json_object_del(flat, key);
        }
    }
    return sub;
}

bool bd_opts_has_prefix(json_t *flat, const char *prefix)
{
    size_t plen = strlen(prefix);
    const char *key;
    json_t *val;

    json_object_foreach(flat, key, val) {
        if (!strncmp(key, prefix, plen) &&
            (key[plen] == '.' || key[plen] == '\0')) {
            return true;
        }
    }
    return false;
}

char *bd_opts_scalar_string(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        return bd_strdup(json_string_value(v));
    case JSON_INTEGER:
        return bd_strdup_printf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
    case JSON_REAL:
        return bd_strdup_printf("%.17g", json_real_value(v));
    case JSON_TRUE:
        return bd_strdup("true");
    case JSON_FALSE:
        return bd_strdup("false");
    case JSON_NULL:
        return bd_strdup("null");
    default:
        return NULL;
    }
}

/* Fetch and remove a scalar as a string; 0 absent, 1 present. */
static int take_string(json_t *opts, const char *key, char **out)
{
    json_t *v = json_object_get(opts, key);

    if (!v) {
        return 0;
    }
    *out = bd_opts_scalar_string(v);
    if (!*out) {
        *out = bd_strdup("");
    }
    json_object_del(opts, key);
    return 1;
}

int bd_opts_take_str(json_t *opts, const char *key, char **out)
{
    return take_string(opts, key, out);
}

int bd_opts_take_size(json_t *opts, const char *key, uint64_t *out,
                      struct bd_error **errp)
{
    char *s = NULL;
    uint64_t v;
    int ret;

    if (!take_string(opts, key, &s)) {
        return 0;
    }
    ret = bd_parse_size(s, &v);
    if (ret == -ERANGE) {
        bd_error_setg(errp, "Value '%s' is out of range for parameter '%s'",
                      s, key);
    } else if (ret < 0) {
        bd_error_setg(errp,
                      "Parameter '%s' expects a non-negative number below 2^64",
                      key);
    } else {
        *out = v;
    }
    free(s);
    return ret < 0 ? -1 : 1;
}

int bd_opts_take_number(json_t *opts, const char *key, uint64_t *out,
                        struct bd_error **errp)
{
    char *s = NULL;
    uint64_t v;
    int ret;

    if (!take_string(opts, key, &s)) {
        return 0;
    }
    ret = bd_parse_u64(s, &v);
    if (ret < 0) {
        bd_error_setg(errp, "Parameter '%s' expects a number", key);
    } else {
        *out = v;
    }
    free(s);
    return ret < 0 ? -1 : 1;
}

int bd_opts_take_bool(json_t *opts, const char *key, bool *out,
                      struct bd_error **errp)
{
    char *s = NULL;
    bool ok;

    if (!take_string(opts, key, &s)) {
        return 0;
    }
    ok = bd_parse_bool(s, out);
    if (!ok) {
        bd_error_setg(errp, "Parameter '%s' expects 'on' or 'off'", key);
    }
    free(s);
    return ok ? 1 : -1;
}

int bd_opts_take_enum(json_t *opts, const char *key,
                      const char *const *values, int *out,
                      struct bd_error **errp)
{
    char *s = NULL;
    int i;

    if (!take_string(opts, key, &s)) {
        return 0;
    }
    for (i = 0; values[i]; i++) {
        if (!strcmp(values[i], s)) {
            *out = i;
            free(s);
            return 1;
        }
    }
    bd_error_setg(errp, "Parameter '%s' does not accept value '%s'", key, s);
    free(s);
    return -1;
}

const char *bd_opts_peek_str(const json_t *opts, const char *key)
{
    json_t *v = json_object_get(opts, key);

    return json_is_string(v) ? json_string_value(v) : NULL;
}

const char *bd_opts_first_key(const json_t *opts)
{
    void *it = json_object_iter((json_t *)opts);

    return it ? json_object_iter_key(it) : NULL;
}

json_t *bd_json_parse_options(const char *text, struct bd_error **errp)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);

    if (!v) {
        bool eoi = jerr.position >= (int)strlen(text) ||
                   strstr(jerr.text, "end of file") != NULL;
        bd_error_setg(errp, "Could not parse the JSON options: "
                      "JSON parse error, %s",
                      eoi ? "premature EOI" : jerr.text);
        return NULL;
    }
    if (!json_is_object(v)) {
        bd_error_setg(errp, "Invalid JSON object given");
        json_decref(v);
        return NULL;
    }
    return v;
}
