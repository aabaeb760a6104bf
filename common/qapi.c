/*
 * common/qapi.c - the QAPI validator: checks a JSON or keyval tree against
 * a static type table and words the first problem as QEMU 10.0.2's input
 * visitors do (see the message list in common/qapi.h).
 *
 * QEMU visits members in schema order and checks for unexpected members
 * only when a struct is finished, so a wrong type deep inside an object is
 * reported before an unknown key next to it; the walk below keeps that
 * order because scripts see whichever message comes first.
 */
#include "common/config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/cutils.h"
#include "common/qapi.h"

const struct qapi_type qapi_type_str = { .kind = QAPI_STR, .name = "str" };
const struct qapi_type qapi_type_int = { .kind = QAPI_INT, .name = "int" };
const struct qapi_type qapi_type_int32 = {
    .kind = QAPI_INT32, .name = "int32",
};
const struct qapi_type qapi_type_uint32 = {
    .kind = QAPI_UINT32, .name = "uint32",
};
const struct qapi_type qapi_type_uint64 = {
    .kind = QAPI_UINT64, .name = "uint64",
};
const struct qapi_type qapi_type_size = { .kind = QAPI_SIZE, .name = "size" };
const struct qapi_type qapi_type_bool = { .kind = QAPI_BOOL, .name = "bool" };
const struct qapi_type qapi_type_number = {
    .kind = QAPI_NUMBER, .name = "number",
};
const struct qapi_type qapi_type_any = { .kind = QAPI_ANY, .name = "any" };

/* Where the walk is: the full path for most messages and the bare member
 * name for the ones QEMU words with the name only (NULL in lists). */
struct vctx {
    bool keyval;
    struct bd_error **errp;
};

static const char *pname(const char *path)
{
    return path && *path ? path : "null";
}

static const char *bname(const char *bare)
{
    return bare ? bare : "null";
}

static char *member_path(const char *path, const char *name)
{
    return *path ? bd_strdup_printf("%s.%s", path, name) : bd_strdup(name);
}

static char *element_path(const char *path, size_t i, bool keyval)
{
    return keyval ? bd_strdup_printf("%s.%zu", path, i)
                  : bd_strdup_printf("%s[%zu]", path, i);
}

static int type_error(struct vctx *c, const char *path, const char *expected)
{
    bd_error_setg(c->errp, "Invalid parameter type for '%s', expected: %s",
                  pname(path), expected);
    return -EINVAL;
}

static int value_error(struct vctx *c, const char *name, const char *what)
{
    bd_error_setg(c->errp, "Parameter '%s' expects %s", name, what);
    return -EINVAL;
}

/* keyval gave a dict where a scalar belongs ("size.a=1"). */
static int keyval_dict_error(struct vctx *c, const char *path)
{
    bd_error_setg(c->errp, "Parameters '%s.*' are unexpected", pname(path));
    return -EINVAL;
}

/* qapi_bool_parse accepts these, which is more than QemuOpts does. */
static bool keyval_bool(const char *s, bool *out)
{
    if (!strcmp(s, "y")) {
        *out = true;
        return true;
    }
    if (!strcmp(s, "n")) {
        *out = false;
        return true;
    }
    return bd_parse_bool(s, out);
}

static bool keyval_number(const char *s, double *out)
{
    char *end = NULL;
    double d;

    if (!*s) {
        return false;
    }
    errno = 0;
    d = strtod(s, &end);
    if (*end || errno == ERANGE || !isfinite(d)) {
        return false;
    }
    *out = d;
    return true;
}

/* The JSON integer as uint64 the way QEMU's input visitor takes it: a
 * negative value wraps (kept for backward compatibility). */
static bool json_uint(const json_t *v, uint64_t *out)
{
    if (!json_is_integer(v)) {
        return false;
    }
    *out = (uint64_t)json_integer_value(v);
    return true;
}

static bool kv_scalar_ok(const json_t *v)
{
    return json_is_string(v);
}

static int check_scalar(struct vctx *c, const struct qapi_type *t,
                        json_t *v, const char *path, const char *bare)
{
    const char *s = NULL;
    uint64_t u = 0;
    int64_t i = 0;
    bool b = false;
    double d = 0;

    if (c->keyval && (json_is_object(v) || json_is_array(v))) {
        return keyval_dict_error(c, path);
    }
    if (c->keyval && kv_scalar_ok(v)) {
        s = json_string_value(v);
        switch (t->kind) {
        case QAPI_STR:
        case QAPI_ANY:
            return 0;
        case QAPI_INT:
            return bd_parse_i64(s, &i) ? value_error(c, pname(path),
                                                     "integer") : 0;
        case QAPI_INT32:
            if (bd_parse_i64(s, &i)) {
                return value_error(c, pname(path), "integer");
            }
            return (i < INT32_MIN || i > INT32_MAX)
                   ? value_error(c, bname(bare), "int32_t") : 0;
        case QAPI_UINT32:
        case QAPI_UINT64:
            if (bd_parse_u64(s, &u)) {
                return value_error(c, pname(path), "integer");
            }
            return (t->kind == QAPI_UINT32 && u > UINT32_MAX)
                   ? value_error(c, bname(bare), "uint32_t") : 0;
        case QAPI_SIZE:
            return bd_parse_size(s, &u) ? value_error(c, pname(path),
                                                      "size") : 0;
        case QAPI_BOOL:
            return keyval_bool(s, &b) ? 0
                   : value_error(c, pname(path), "'on' or 'off'");
        case QAPI_NUMBER:
            return keyval_number(s, &d) ? 0
                   : value_error(c, pname(path), "number");
        case QAPI_NULL:
            return *s ? type_error(c, path, "null") : 0;
        default:
            break;
        }
        return 0;
    }

    switch (t->kind) {
    case QAPI_STR:
        return json_is_string(v) ? 0 : type_error(c, path, "string");
    case QAPI_ANY:
        return 0;
    case QAPI_INT:
        return json_is_integer(v) ? 0 : type_error(c, path, "integer");
    case QAPI_INT32:
        if (!json_is_integer(v)) {
            return type_error(c, path, "integer");
        }
        i = json_integer_value(v);
        return (i < INT32_MIN || i > INT32_MAX)
               ? value_error(c, bname(bare), "int32_t") : 0;
    case QAPI_UINT32:
    case QAPI_UINT64:
    case QAPI_SIZE:
        if (!json_uint(v, &u)) {
            return value_error(c, pname(path), "uint64");
        }
        return (t->kind == QAPI_UINT32 && u > UINT32_MAX)
               ? value_error(c, bname(bare), "uint32_t") : 0;
    case QAPI_BOOL:
        return json_is_boolean(v) ? 0 : type_error(c, path, "boolean");
    case QAPI_NUMBER:
        return json_is_number(v) ? 0 : type_error(c, path, "number");
    case QAPI_NULL:
        return json_is_null(v) ? 0 : type_error(c, path, "null");
    default:
        break;
    }
    return 0;
}

static int check_type(struct vctx *c, const struct qapi_type *t, json_t *v,
                      const char *path, const char *bare);

static bool member_known(const struct qapi_member *m, const char *key)
{
    for (; m && m->name; m++) {
        if (!strcmp(m->name, key)) {
            return true;
        }
    }
    return false;
}

static int check_members(struct vctx *c, const struct qapi_member *m,
                         json_t *obj, const char *path)
{
    for (; m && m->name; m++) {
        json_t *mv = json_object_get(obj, m->name);
        char *mp = NULL;
        int r;

        if (!mv) {
            if (m->optional) {
                continue;
            }
            mp = member_path(path, m->name);
            bd_error_setg(c->errp, "Parameter '%s' is missing", mp);
            free(mp);
            return -EINVAL;
        }
        mp = member_path(path, m->name);
        r = check_type(c, m->type, mv, mp, m->name);
        free(mp);
        if (r < 0) {
            return r;
        }
    }
    return 0;
}

/* Unknown keys are reported after every known member checked out. */
static int check_unexpected(struct vctx *c, const struct qapi_member *base,
                            const struct qapi_member *more, json_t *obj,
                            const char *path)
{
    const char *key;
    json_t *mv;

    json_object_foreach(obj, key, mv) {
        char *mp = NULL;

        if (member_known(base, key) || member_known(more, key)) {
            continue;
        }
        mp = member_path(path, key);
        bd_error_setg(c->errp, "Parameter '%s' is unexpected", mp);
        free(mp);
        return -EINVAL;
    }
    return 0;
}

const struct qapi_variant *qapi_union_variant(const struct qapi_type *t,
                                              const char *value)
{
    const struct qapi_variant *var = t->variants;

    if (!var && t->variant_lookup) {
        return t->variant_lookup(value);
    }
    for (; var && var->value; var++) {
        if (!strcmp(var->value, value)) {
            return var;
        }
    }
    return NULL;
}

static int check_union(struct vctx *c, const struct qapi_type *t, json_t *v,
                       const char *path)
{
    const struct qapi_variant *var = NULL;
    const struct qapi_member *vm = NULL;
    const char *dv = NULL;
    int r;

    /* The discriminator is a base member: a missing or mistyped one is
     * reported in schema order by check_members. */
    r = check_members(c, t->members, v, path);
    if (r < 0) {
        return r;
    }
    dv = json_string_value(json_object_get(v, t->discriminator));
    if (!dv) {
        return 0;   /* optional discriminator absent: base only */
    }
    var = qapi_union_variant(t, dv);
    if (!var) {
        bd_error_setg(c->errp, "Parameter '%s' does not accept value '%s'",
                      t->discriminator, dv);
        return -EINVAL;
    }
    if (!var->type) {
        return 0;   /* variant not described: generic checks only */
    }
    vm = var->type->members;
    r = check_members(c, vm, v, path);
    if (r < 0) {
        return r;
    }
    return check_unexpected(c, t->members, vm, v, path);
}

static bool alt_takes(const struct qapi_type *a, json_t *v, bool keyval)
{
    switch (a->kind) {
    case QAPI_STR:
    case QAPI_ENUM:
        return json_is_string(v);
    case QAPI_STRUCT:
    case QAPI_UNION:
        return json_is_object(v);
    case QAPI_LIST:
        return json_is_array(v);
    case QAPI_NULL:
        return json_is_null(v);
    case QAPI_BOOL:
        return json_is_boolean(v) || (keyval && json_is_string(v));
    case QAPI_NUMBER:
        return json_is_number(v) || (keyval && json_is_string(v));
    case QAPI_ANY:
        return true;
    default:   /* integer kinds */
        return json_is_integer(v) || (keyval && json_is_string(v));
    }
}

static int check_alternate(struct vctx *c, const struct qapi_type *t,
                           json_t *v, const char *path, const char *bare)
{
    const struct qapi_type *const *a;

    /* A string picks the string branch first (keyval strings could also
     * be numbers; QEMU prefers the string there too). */
    for (a = t->alternatives; *a; a++) {
        if (json_is_string(v) && ((*a)->kind == QAPI_STR ||
                                  (*a)->kind == QAPI_ENUM)) {
            return check_type(c, *a, v, path, bare);
        }
    }
    for (a = t->alternatives; *a; a++) {
        if (alt_takes(*a, v, c->keyval)) {
            return check_type(c, *a, v, path, bare);
        }
    }
    return type_error(c, path, t->name ? t->name : "alternate");
}

static int check_type(struct vctx *c, const struct qapi_type *t, json_t *v,
                      const char *path, const char *bare)
{
    const char *const *e;
    size_t i;
    json_t *el;

    switch (t->kind) {
    case QAPI_ENUM:
        if (!json_is_string(v)) {
            if (c->keyval && (json_is_object(v) || json_is_array(v))) {
                return keyval_dict_error(c, path);
            }
            return type_error(c, path, "string");
        }
        for (e = t->enum_values; e && *e; e++) {
            if (!strcmp(*e, json_string_value(v))) {
                return 0;
            }
        }
        bd_error_setg(c->errp, "Parameter '%s' does not accept value '%s'",
                      bname(bare), json_string_value(v));
        return -EINVAL;
    case QAPI_STRUCT:
        if (!json_is_object(v)) {
            return type_error(c, path, "object");
        }
        if ((t->base && check_members(c, t->base->members, v, path) < 0) ||
            check_members(c, t->members, v, path) < 0) {
            return -EINVAL;
        }
        return check_unexpected(c, t->base ? t->base->members : NULL,
                                t->members, v, path);
    case QAPI_UNION:
        if (!json_is_object(v)) {
            return type_error(c, path, "object");
        }
        return check_union(c, t, v, path);
    case QAPI_LIST:
        if (!json_is_array(v)) {
            return type_error(c, path, "array");
        }
        json_array_foreach(v, i, el) {
            char *ep = element_path(path, i, c->keyval);
            int r = check_type(c, t->element, el, ep, NULL);

            free(ep);
            if (r < 0) {
                return r;
            }
        }
        return 0;
    case QAPI_ALTERNATE:
        return check_alternate(c, t, v, path, bare);
    default:
        return check_scalar(c, t, v, path, bare);
    }
}

int qapi_validate(const struct qapi_type *t, json_t *v, bool keyval,
                  struct bd_error **errp)
{
    struct vctx c = { .keyval = keyval, .errp = errp };

    return check_type(&c, t, v, "", NULL);
}

/* ------------------------------------------------------------------ */
/* Typed getters                                                        */

const char *qapi_get_str(const json_t *obj, const char *key, const char *def)
{
    const char *s = json_string_value(json_object_get(obj, key));

    return s ? s : def;
}

bool qapi_get_bool(const json_t *obj, const char *key, bool def)
{
    json_t *v = json_object_get(obj, key);
    bool b = def;

    if (json_is_boolean(v)) {
        return json_is_true(v);
    }
    if (json_is_string(v) && keyval_bool(json_string_value(v), &b)) {
        return b;
    }
    return def;
}

int64_t qapi_get_int(const json_t *obj, const char *key, int64_t def)
{
    json_t *v = json_object_get(obj, key);
    int64_t i = def;

    if (json_is_integer(v)) {
        return json_integer_value(v);
    }
    if (json_is_string(v) && !bd_parse_i64(json_string_value(v), &i)) {
        return i;
    }
    return def;
}

uint64_t qapi_get_uint(const json_t *obj, const char *key, uint64_t def)
{
    json_t *v = json_object_get(obj, key);
    uint64_t u = def;

    if (json_is_integer(v)) {
        return (uint64_t)json_integer_value(v);
    }
    if (json_is_string(v) && (!bd_parse_u64(json_string_value(v), &u) ||
                              !bd_parse_size(json_string_value(v), &u))) {
        return u;
    }
    return def;
}

/* ------------------------------------------------------------------ */
/* keyval -> JSON                                                       */

static json_t *convert(const struct qapi_type *t, json_t *v);

static json_t *convert_members(const struct qapi_member *m, json_t *out)
{
    for (; m && m->name; m++) {
        json_t *mv = json_object_get(out, m->name);

        if (mv) {
            json_object_set_new(out, m->name, convert(m->type, mv));
        }
    }
    return out;
}

/* v has passed validation, so every conversion below succeeds. */
static json_t *convert(const struct qapi_type *t, json_t *v)
{
    const char *s = json_string_value(v);
    const struct qapi_type *const *a;
    json_t *out = NULL;
    json_t *el;
    uint64_t u = 0;
    int64_t i = 0;
    double d = 0;
    bool b = false;
    size_t k;

    switch (t->kind) {
    case QAPI_STRUCT:
        out = convert_members(t->members, json_copy(v));
        return t->base ? convert_members(t->base->members, out) : out;
    case QAPI_UNION: {
        const struct qapi_variant *var = NULL;

        out = convert_members(t->members, json_copy(v));
        s = json_string_value(json_object_get(v, t->discriminator));
        var = s ? qapi_union_variant(t, s) : NULL;
        if (var && var->type) {
            convert_members(var->type->members, out);
        }
        return out;
    }
    case QAPI_LIST:
        out = json_array();
        json_array_foreach(v, k, el) {
            json_array_append_new(out, convert(t->element, el));
        }
        return out;
    case QAPI_ALTERNATE:
        for (a = t->alternatives; *a; a++) {
            if (s && ((*a)->kind == QAPI_STR || (*a)->kind == QAPI_ENUM)) {
                return json_incref(v);
            }
        }
        for (a = t->alternatives; *a; a++) {
            if (alt_takes(*a, v, true)) {
                return convert(*a, v);
            }
        }
        return json_incref(v);
    default:
        break;
    }
    if (!s) {
        return json_incref(v);
    }
    switch (t->kind) {
    case QAPI_INT:
    case QAPI_INT32:
        if (!bd_parse_i64(s, &i)) {
            return json_integer(i);
        }
        break;
    case QAPI_UINT32:
    case QAPI_UINT64:
        if (!bd_parse_u64(s, &u)) {
            return json_integer((json_int_t)u);
        }
        break;
    case QAPI_SIZE:
        if (!bd_parse_size(s, &u)) {
            return json_integer((json_int_t)u);
        }
        break;
    case QAPI_BOOL:
        if (keyval_bool(s, &b)) {
            return json_boolean(b);
        }
        break;
    case QAPI_NUMBER:
        if (keyval_number(s, &d)) {
            return json_real(d);
        }
        break;
    case QAPI_NULL:
        return json_null();
    default:
        break;
    }
    return json_incref(v);
}

json_t *qapi_keyval_to_json(const struct qapi_type *t, json_t *v,
                            struct bd_error **errp)
{
    if (qapi_validate(t, v, true, errp) < 0) {
        return NULL;
    }
    return convert(t, v);
}
