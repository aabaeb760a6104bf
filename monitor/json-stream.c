/*
 * monitor/json-stream.c - QMP input framing (see json-stream.h).
 *
 * jansson parses each complete value; this file only finds where values
 * end, rewrites QEMU's single-quoted strings into JSON ones, and turns
 * jansson's error texts into the ones QEMU's parser prints for the common
 * cases (docs/compat.md lists the rest).
 */
#include "common/config.h"

#include <stdlib.h>
#include <string.h>

#include "common/cutils.h"
#include "monitor/json-stream.h"

void qmp_splitter_init(struct qmp_splitter *sp)
{
    memset(sp, 0, sizeof(*sp));
}

void qmp_splitter_destroy(struct qmp_splitter *sp)
{
    free(sp->buf);
    memset(sp, 0, sizeof(*sp));
}

static void put(struct qmp_splitter *sp, char c)
{
    if (sp->len + 1 >= sp->cap) {
        sp->cap = sp->cap ? sp->cap * 2 : 256;
        sp->buf = bd_realloc(sp->buf, sp->cap);
    }
    sp->buf[sp->len++] = c;
    sp->buf[sp->len] = '\0';
}

static void reset(struct qmp_splitter *sp)
{
    sp->len = 0;
    sp->depth = 0;
    sp->quote = 0;
    sp->esc = false;
    sp->scalar = false;
    if (sp->cap > 65536) {
        /* Don't keep a huge buffer around after one big message. */
        free(sp->buf);
        sp->buf = NULL;
        sp->cap = 0;
    }
}

/* msg is the complete description after QEMU's prefix handling. */
static int fail(struct qmp_splitter *sp, qmp_split_fn *fn, void *opaque,
                bool recover, const char *msg)
{
    struct bd_error *err = NULL;

    bd_error_setg(&err, "%s", msg);
    reset(sp);
    sp->recovering = recover;
    return fn(opaque, NULL, err);
}

/* jansson's wording -> QEMU's, for the mistakes people actually make.
 * Returns a new string (the whole description after "JSON parse error, "). */
static char *map_error(const char *text)
{
    static const struct { const char *jansson, *qemu; } map[] = {
        { "':' expected", "missing : in object pair" },
        { "duplicate object key", "duplicate key" },
        { "string or '}' expected near '}'", "expecting value" },
        { "string or '}' expected", "key is not a string in object" },
        { "'}' expected", "expected separator in dict" },
        { "']' expected", "expected separator in list" },
        { "invalid escape", "invalid escape sequence in string" },
        { "unexpected token", "expecting value" },
        { "end of file expected", "expecting value" },
    };
    static const char tok[] = "invalid token near '";
    const char *t = strstr(text, tok);
    size_t i;

    if (t) {
        /* QEMU's lexer calls a bad word a keyword, anything else stray. */
        const char *w = t + sizeof(tok) - 1;
        size_t n = strcspn(w, "'");
        bool alpha = (*w >= 'a' && *w <= 'z') || (*w >= 'A' && *w <= 'Z');

        return bd_strdup_printf(alpha ? "invalid keyword '%.*s'"
                                      : "stray '%.*s'", (int)n, w);
    }
    for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (strstr(text, map[i].jansson)) {
            return bd_strdup(map[i].qemu);
        }
    }
    return bd_strdup(text);
}

static int complete(struct qmp_splitter *sp, qmp_split_fn *fn, void *opaque)
{
    json_error_t jerr;
    json_t *v = json_loadb(sp->buf, sp->len,
                           JSON_DECODE_ANY | JSON_ALLOW_NUL |
                           JSON_REJECT_DUPLICATES, &jerr);

    if (!v) {
        char *q = map_error(jerr.text);
        char *tmp = bd_strdup_printf("JSON parse error, %s", q);
        int r = fail(sp, fn, opaque, false, tmp);

        free(q);
        free(tmp);
        return r;
    }
    reset(sp);
    return fn(opaque, v, NULL);
}

/* A bare token at depth 0 ("1", "null", "garbage"). */
static int complete_scalar(struct qmp_splitter *sp, qmp_split_fn *fn,
                           void *opaque)
{
    json_t *v = json_loadb(sp->buf, sp->len, JSON_DECODE_ANY, NULL);
    char *tok = NULL;
    int r;

    if (v) {
        reset(sp);
        return fn(opaque, v, NULL);
    }
    if ((sp->buf[0] >= '0' && sp->buf[0] <= '9') || sp->buf[0] == '-') {
        tok = bd_strdup_printf("JSON parse error, stray '%s'", sp->buf);
    } else {
        tok = bd_strdup_printf("JSON parse error, invalid keyword '%s'",
                               sp->buf);
    }
    r = fail(sp, fn, opaque, false, tok);
    free(tok);
    return r;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_structural(char c)
{
    return strchr("{}[],:\"'", c) != NULL;
}

/* Inside a string: copy, turning 'single' quoting into "double". */
static void string_char(struct qmp_splitter *sp, char c)
{
    if (sp->esc) {
        sp->esc = false;
        if (sp->quote == '\'' && c == '\'') {
            put(sp, '\'');
        } else {
            put(sp, '\\');
            put(sp, c);
        }
        return;
    }
    if (c == '\\') {
        sp->esc = true;
        return;
    }
    if (c == sp->quote) {
        put(sp, '"');
        sp->quote = 0;
        return;
    }
    if (c == '"' && sp->quote == '\'') {
        put(sp, '\\');
    }
    put(sp, c);
}

int qmp_splitter_feed(struct qmp_splitter *sp, const char *data, size_t len,
                      qmp_split_fn *fn, void *opaque)
{
    size_t i = 0;
    int r = 0;

    while (i < len && !r) {
        char c = data[i];

        if (sp->recovering) {
            sp->recovering = c != '\n';
            i++;
            continue;
        }
        if (sp->len >= QMP_MAX_MESSAGE) {
            r = fail(sp, fn, opaque, true, "JSON token size limit exceeded");
            continue;
        }
        if (sp->quote) {
            string_char(sp, c);
            i++;
            if (!sp->quote && sp->depth == 0) {
                r = complete(sp, fn, opaque);
            }
            continue;
        }
        if (sp->scalar) {
            if (is_space(c) || is_structural(c)) {
                r = complete_scalar(sp, fn, opaque);
                continue;   /* c starts what comes next */
            }
            put(sp, c);
            i++;
            continue;
        }
        i++;
        if (c == '"' || c == '\'') {
            sp->quote = c;
            put(sp, '"');
            continue;
        }
        if (sp->depth == 0) {
            if (is_space(c)) {
                continue;
            }
            if (c == '{' || c == '[') {
                sp->depth = 1;
                put(sp, c);
            } else if (c == '}' || c == ']' || c == ',' || c == ':') {
                r = fail(sp, fn, opaque, false,
                         "JSON parse error, expecting value");
            } else {
                sp->scalar = true;
                put(sp, c);
            }
            continue;
        }
        put(sp, c);
        if (c == '{' || c == '[') {
            if (++sp->depth > QMP_MAX_NESTING) {
                r = fail(sp, fn, opaque, true,
                         "JSON nesting depth limit exceeded");
            }
        } else if (c == '}' || c == ']') {
            if (--sp->depth == 0) {
                r = complete(sp, fn, opaque);
            }
        }
    }
    return r;
}
