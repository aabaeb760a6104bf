/*
 * common/opts.h - option dictionaries in every form QEMU's tools accept.
 *
 * Model (QEMU's own, inside bdrv_open): options travel as a FLAT jansson
 * object whose keys are dotted paths ("file.filename", "inject-error.0.event")
 * and whose values are either strings (from key=value syntax) or typed JSON
 * scalars (from JSON input, after flattening). A driver consumes the keys it
 * knows with the bd_opts_take_* readers, which convert the way QEMU's
 * QemuOpts do and report QEMU's messages; whatever is left afterwards is an
 * unsupported option and the caller says so.
 *
 * Nested trees (JSON objects, keyval-crumpled strings) are what the QAPI
 * validator (common/qapi.h) checks; bd_opts_flatten and bd_opts_crumple
 * convert between the two shapes.
 *
 * All functions are reentrant; none keeps state between calls.
 */
#ifndef BLKRIG_OPTS_H
#define BLKRIG_OPTS_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "common/error.h"

/*
 * Parse "key=value,key2=value2" into a new flat object of strings.
 *  - ",," stands for a literal comma (in keys and values);
 *  - a bare "key" (no '=') means "key=on", except that the first element may
 *    be bound to implied_key instead when implied_key is not NULL;
 *  - a later duplicate key replaces the earlier one (QemuOpts keeps the last).
 * Returns NULL with errp set on an empty key.
 */
json_t *bd_opts_parse(const char *str, const char *implied_key,
                      struct bd_error **errp);

/* Flatten a nested object into a new flat one: {"a":{"b":1}} -> {"a.b":1},
 * lists become "key.N..." entries. */
json_t *bd_opts_flatten(json_t *nested);

/* Build nested objects/arrays from dotted keys. Numeric path components that
 * form 0..N-1 become arrays. Returns NULL with errp set when a key is used
 * both as a scalar and as a prefix, or list indices are not contiguous. */
json_t *bd_opts_crumple(json_t *flat, struct bd_error **errp);

/* Move every "prefix.rest" key into a new flat object as "rest". */
json_t *bd_opts_extract(json_t *flat, const char *prefix);
/* True if some key equals prefix or starts with "prefix.". */
bool bd_opts_has_prefix(json_t *flat, const char *prefix);

/* Stringify a scalar the way QEMU does when handing typed values to QemuOpts
 * ("true", "-5", "4096"). Returns a new string, or NULL for non-scalars. */
char *bd_opts_scalar_string(const json_t *v);

/*
 * Typed readers. Each removes `key` from `opts` when present.
 * Return 1 if the key was present and converted, 0 if absent (out untouched),
 * -1 with errp set on a conversion error. Messages are QemuOpts':
 *   size:   Parameter 'K' expects a non-negative number below 2^64
 *           Value 'V' is out of range for parameter 'K'
 *   number: Parameter 'K' expects a number
 *   bool:   Parameter 'K' expects 'on' or 'off'
 */
int bd_opts_take_str(json_t *opts, const char *key, char **out);
int bd_opts_take_size(json_t *opts, const char *key, uint64_t *out,
                      struct bd_error **errp);
int bd_opts_take_number(json_t *opts, const char *key, uint64_t *out,
                        struct bd_error **errp);
int bd_opts_take_bool(json_t *opts, const char *key, bool *out,
                      struct bd_error **errp);
/* Enum by name; the message on an unknown value is QAPI's:
 *   Parameter 'K' does not accept value 'V' */
int bd_opts_take_enum(json_t *opts, const char *key,
                      const char *const *values, int *out,
                      struct bd_error **errp);

/* Look at a string value without consuming it (NULL if absent/non-string). */
const char *bd_opts_peek_str(const json_t *opts, const char *key);
/* First key left in opts, or NULL when empty (for "doesn't support" errors). */
const char *bd_opts_first_key(const json_t *opts);

/* Parse JSON text; on error sets QEMU's wording
 *   "Could not parse the JSON options: JSON parse error, <detail>". */
json_t *bd_json_parse_options(const char *text, struct bd_error **errp);

#endif
