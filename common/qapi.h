/*
 * common/qapi.h - QAPI-style type descriptions and their validator.
 *
 * QEMU validates blockdev-add and every QMP command against its QAPI
 * schema before anything runs, and scripts see the validator's messages
 * ("Parameter 'set-state[0].new_state' is missing", "Invalid parameter
 * type for 'size', expected: integer", "Parameter 'event' does not accept
 * value 'bogus'"). blkrig describes the same types as static tables:
 * drivers carry their BlockdevOptions members (struct bd_driver.qapi_options)
 * and the monitor its command arguments, and one validator checks them.
 *
 * Tables are static const data; terminate member and variant arrays with an
 * entry whose name/value is NULL, enum value lists with NULL.
 */
#ifndef BLKRIG_QAPI_H
#define BLKRIG_QAPI_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "common/error.h"

enum qapi_kind {
    QAPI_STR,
    QAPI_INT,        /* int64 */
    QAPI_INT32,
    QAPI_UINT32,
    QAPI_UINT64,
    QAPI_SIZE,       /* uint64; keyval accepts size suffixes */
    QAPI_BOOL,
    QAPI_NUMBER,     /* double */
    QAPI_ANY,
    QAPI_NULL,
    QAPI_ENUM,
    QAPI_STRUCT,
    QAPI_LIST,
    QAPI_UNION,      /* flat union: base members + discriminator variants */
    QAPI_ALTERNATE,  /* one of several types, chosen by the JSON type */
};

struct qapi_type;

struct qapi_member {
    const char *name;
    const struct qapi_type *type;
    bool optional;
};

struct qapi_variant {
    const char *value;              /* discriminator value */
    /* QAPI_STRUCT whose members are added; NULL: the variant is not
     * described yet, so members beyond the base are not checked. */
    const struct qapi_type *type;
};

struct qapi_type {
    enum qapi_kind kind;
    const char *name;                       /* for messages and introspection */
    const char *const *enum_values;         /* QAPI_ENUM */
    const struct qapi_member *members;      /* QAPI_STRUCT, QAPI_UNION base */
    /* QAPI_STRUCT: QAPI's 'base', a struct (without a base of its own)
     * whose members come before these, checked and converted first. */
    const struct qapi_type *base;
    const struct qapi_type *element;        /* QAPI_LIST */
    const char *discriminator;              /* QAPI_UNION */
    const struct qapi_variant *variants;    /* QAPI_UNION */
    const struct qapi_type *const *alternatives; /* QAPI_ALTERNATE, NULL-end */
    /* QAPI_UNION whose variants are only known at run time (one per
     * registered block driver): used when variants is NULL. Returns the
     * variant for a discriminator value or NULL; the result need only stay
     * valid until the next call on the same thread. */
    const struct qapi_variant *(*variant_lookup)(const char *value);
};

/* Built-in scalar types (defined in qapi.c). */
extern const struct qapi_type qapi_type_str;
extern const struct qapi_type qapi_type_int;
extern const struct qapi_type qapi_type_int32;
extern const struct qapi_type qapi_type_uint32;
extern const struct qapi_type qapi_type_uint64;
extern const struct qapi_type qapi_type_size;
extern const struct qapi_type qapi_type_bool;
extern const struct qapi_type qapi_type_number;
extern const struct qapi_type qapi_type_any;

/*
 * Validate v against t. keyval: scalars are strings from key=value syntax
 * and are checked for convertibility instead of JSON type. Returns 0, or
 * -EINVAL with errp set to QEMU's message for the first problem, with
 * member paths written as QEMU writes them ("set-state[0].new_state").
 */
int qapi_validate(const struct qapi_type *t, json_t *v, bool keyval,
                  struct bd_error **errp);

/*
 * Messages, as QEMU 10.0.2's visitors word them (P = member path, N = bare
 * member name, "null" for list elements):
 *   JSON type mismatch     Invalid parameter type for 'P', expected: T
 *                          (T: string, integer, number, boolean, object,
 *                          array, null, or the alternate's name)
 *   JSON uint64/uint32     Parameter 'P' expects uint64 (not a number)
 *   keyval scalar          Parameter 'P' expects integer | size | number |
 *                          'on' or 'off'
 *   keyval scalar as dict  Parameters 'P.*' are unexpected
 *   range (int32, uint32)  Parameter 'N' expects int32_t | uint32_t
 *   enum, discriminator    Parameter 'N' does not accept value 'V'
 *   missing / extra        Parameter 'P' is missing / is unexpected
 * Paths: JSON "a.b[0].c", keyval "a.b.0.c".
 */

/*
 * Typed getters for values that passed qapi_validate, in either shape
 * (JSON scalars or keyval strings). Absent keys give def.
 */
const char *qapi_get_str(const json_t *obj, const char *key,
                         const char *def);
bool qapi_get_bool(const json_t *obj, const char *key, bool def);
int64_t qapi_get_int(const json_t *obj, const char *key, int64_t def);
/* uint64/size: keyval strings may carry size suffixes ("4k"). */
uint64_t qapi_get_uint(const json_t *obj, const char *key, uint64_t def);

/*
 * Convert a validated keyval tree (strings) into the JSON shape t describes
 * (integers, booleans, numbers), so handlers see one form. Returns a new
 * reference, or NULL with errp set (the same messages as qapi_validate).
 */
json_t *qapi_keyval_to_json(const struct qapi_type *t, json_t *v,
                            struct bd_error **errp);

/* Find a variant of a union (static or run-time table); NULL if unknown. */
const struct qapi_variant *qapi_union_variant(const struct qapi_type *t,
                                              const char *value);

#endif
