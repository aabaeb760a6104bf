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
    const struct qapi_type *type;   /* QAPI_STRUCT whose members are added */
};

struct qapi_type {
    enum qapi_kind kind;
    const char *name;                       /* for messages and introspection */
    const char *const *enum_values;         /* QAPI_ENUM */
    const struct qapi_member *members;      /* QAPI_STRUCT, QAPI_UNION base */
    const struct qapi_type *element;        /* QAPI_LIST */
    const char *discriminator;              /* QAPI_UNION */
    const struct qapi_variant *variants;    /* QAPI_UNION */
    const struct qapi_type *const *alternatives; /* QAPI_ALTERNATE, NULL-end */
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

#endif
