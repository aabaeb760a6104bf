/*
 * injector/injector.c - rule model, loading, event/state machine, request
 * matching and breakpoints. Semantics: ../shared/specs/blkdebug.md §4-§7;
 * extensions: docs/injector.md.
 *
 * Data layout, and why:
 *  - rules[ev] is a singly linked list, newest first, exactly as QEMU keeps
 *    it, so processing an event head to tail reproduces its orderings (armed
 *    set in creation order, first-created set-state wins, newest breakpoint
 *    first) without special cases;
 *  - evmask has bit ev set while rules[ev] is non-empty: an event nobody
 *    listens to costs one atomic load;
 *  - the armed set is an array in check order; for matching it is indexed
 *    into "any sector" rules (checked first, in order) and an array of byte
 *    intervals sorted by start. A request looks at the intervals that can
 *    overlap it (binary search, then a backwards scan bounded by the longest
 *    interval), so 10,000 single-sector rules cost about what one costs. The
 *    index is rebuilt lazily, only when the armed set really changed.
 */
#include "common/config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/cutils.h"
#include "common/opts.h"
#include "common/rng.h"
#include "injector/injector.h"
#include "injector/rule-int.h"

#define SECTOR_SIZE 512
/* QEMU's default iotype mask: everything but block-status. */
#define DEFAULT_IOMASK ((1u << BD_IOTYPE_READ) | (1u << BD_IOTYPE_WRITE) | \
                        (1u << BD_IOTYPE_WRITE_ZEROES) | \
                        (1u << BD_IOTYPE_DISCARD) | (1u << BD_IOTYPE_FLUSH))
#define WRITE_IOMASK ((1u << BD_IOTYPE_WRITE) | (1u << BD_IOTYPE_WRITE_ZEROES))

struct inj_range {
    int64_t start;      /* bytes, [start, end) */
    int64_t end;
};

struct inj_rule {
    /* Immutable after creation. */
    int id;
    enum inj_kind kind;
    int event;
    int state;                  /* 0 = any */
    char *name;                 /* config section id, or NULL */
    /* inject */
    uint32_t iomask;
    bool iotype_given;
    int err;
    bool err_given;
    bool once;
    bool immediately;
    struct inj_range *ranges;   /* none: any sector */
    int nranges;
    int64_t sector;             /* as given, for query (-1: none) */
    int64_t length;             /* sectors, 0: not given */
    char *sectors;              /* as given, for query */
    double prob;
    bool has_prob;
    uint64_t skip;
    uint64_t count;             /* 0: unlimited */
    enum inj_action action;
    int64_t delay_ns;
    uint32_t corrupt;
    int64_t torn;
    /* set-state */
    int new_state;
    /* break */
    char *tag;
    /* Mutable, under inj->lock. */
    uint64_t matches;
    uint64_t hits;
    int armed_pos;              /* index in inj->armed, -1 if not armed */
    struct inj_rule *ev_next;
};

struct inj_ival {
    int64_t start;
    int64_t end;
    int pos;                    /* armed position of the owning rule */
};

struct inj_susp {
    struct inj_susp *next;
    char *tag;
    int event;
    int *pending;               /* the waiting request's counter */
};

struct inj {
    pthread_mutex_t lock;
    pthread_cond_t resume_cond;
    /* Configuration, set before I/O starts. */
    char *name;
    struct inj_hooks hooks;
    uint64_t seed;
    bool log;
    /* Under lock. */
    int state;
    int next_id;
    struct inj_rule *rules[BD_EV__MAX];
    struct inj_rule **armed;
    int narmed;
    int armed_cap;
    bool index_dirty;
    struct inj_ival *ivals;
    int nivals;
    int64_t max_len;
    int *any;
    int nany;
    uint64_t *filter;           /* bit per hashed 4 KiB block of ivals */
    int filter_shift;           /* 64 - log2(bits) */
    bool has_wide;              /* some interval is too wide to filter */
    struct inj_susp *susp;
    uint64_t total_hits;
    /* Lock-free fast paths. */
    _Atomic uint64_t evmask;
    atomic_int armed_count;
};

static const char *const action_names[] = {
    [INJ_ACT_ERRNO] = "errno",
    [INJ_ACT_DELAY] = "delay",
    [INJ_ACT_CORRUPT] = "corrupt",
    [INJ_ACT_TORN] = "torn",
    [INJ_ACT_LOST] = "lost",
};

const char *inj_action_name(enum inj_action a)
{
    return a <= INJ_ACT_LOST ? action_names[a] : NULL;
}

/* ------------------------------------------------------------------ */
/* Field tables                                                         */

struct field {
    const char *name;
    enum inj_field_type type;
};

static const struct field inject_fields[] = {
    { "event", INJ_F_STR },
    { "state", INJ_F_NUM },
    { "iotype", INJ_F_STR },
    { "errno", INJ_F_NUM },
    { "sector", INJ_F_NUM },
    { "once", INJ_F_BOOL },
    { "immediately", INJ_F_BOOL },
    /* blkrig extensions */
    { "length", INJ_F_NUM },
    { "sectors", INJ_F_STR },
    { "probability", INJ_F_PROB },
    { "skip", INJ_F_NUM },
    { "count", INJ_F_NUM },
    { "delay-ns", INJ_F_NUM },
    { "corrupt", INJ_F_NUM },
    { "torn", INJ_F_NUM },
    { "lost", INJ_F_BOOL },
    { NULL, 0 },
};

static const struct field set_state_fields[] = {
    { "event", INJ_F_STR },
    { "state", INJ_F_NUM },
    { "new_state", INJ_F_NUM },
    { NULL, 0 },
};

static const struct field *group_fields(const char *group)
{
    if (!strcmp(group, "inject-error")) {
        return inject_fields;
    }
    if (!strcmp(group, "set-state")) {
        return set_state_fields;
    }
    return NULL;
}

bool inj_group_known(const char *group)
{
    return group_fields(group) != NULL;
}

int inj_field_type(const char *group, const char *key)
{
    const struct field *f = group_fields(group);

    for (; f && f->name; f++) {
        if (!strcmp(f->name, key)) {
            return (int)f->type;
        }
    }
    return -1;
}

static int parse_prob(const char *s, double *out)
{
    char *end = NULL;
    double d;

    errno = 0;
    d = strtod(s, &end);
    if (!*s || end == s || *end || errno || !(d >= 0.0 && d <= 1.0)) {
        return -EINVAL;
    }
    *out = d;
    return 0;
}

int inj_field_check(const char *group, const char *key, const char *value,
                    const char *const unknown[2], struct bd_error **errp)
{
    int t = inj_field_type(group, key);
    uint64_t u;
    bool b;
    double d;

    switch (t) {
    case -1:
        bd_error_setg(errp, "%s%s%s", unknown[0], key, unknown[1]);
        return -EINVAL;
    case INJ_F_NUM:
        if (bd_parse_u64(value, &u) < 0) {
            bd_error_setg(errp, "Parameter '%s' expects a number", key);
            return -EINVAL;
        }
        break;
    case INJ_F_BOOL:
        if (!bd_parse_bool(value, &b)) {
            bd_error_setg(errp, "Parameter '%s' expects 'on' or 'off'", key);
            return -EINVAL;
        }
        break;
    case INJ_F_PROB:
        if (parse_prob(value, &d) < 0) {
            bd_error_setg(errp, "Parameter '%s' expects a number between "
                          "0 and 1", key);
            return -EINVAL;
        }
        break;
    default:
        break;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Rule construction                                                    */

static void rule_free(struct inj_rule *r)
{
    if (r) {
        free(r->name);
        free(r->ranges);
        free(r->sectors);
        free(r->tag);
        free(r);
    }
}

static void add_range(struct inj_rule *r, int64_t start, int64_t end)
{
    r->ranges = bd_realloc(r->ranges,
                           sizeof(*r->ranges) * (size_t)(r->nranges + 1));
    r->ranges[r->nranges].start = start;
    r->ranges[r->nranges].end = end;
    r->nranges++;
}

/* Byte offset of a sector, saturated so a huge sector never matches. */
static int64_t sector_bytes(uint64_t s)
{
    return s > (uint64_t)(INT64_MAX / SECTOR_SIZE) - 1
           ? INT64_MAX / SECTOR_SIZE * SECTOR_SIZE
           : (int64_t)s * SECTOR_SIZE;
}

/*
 * "sectors": entries separated by ',', ';' or blanks, each N (one sector),
 * N-M (inclusive) or N+L (L sectors from N).
 */
static int parse_sector_list(struct inj_rule *r, const char *s,
                             struct bd_error **errp)
{
    char *copy = bd_strdup(s);
    char *save = NULL;
    char *tok;
    int ret = 0;

    for (tok = strtok_r(copy, ",; \t", &save); tok;
         tok = strtok_r(NULL, ",; \t", &save)) {
        char *sep = strpbrk(tok + 1, "-+");
        uint64_t a = 0, b = 0;
        char c = sep ? *sep : '\0';

        if (sep) {
            *sep = '\0';
        }
        if (bd_parse_u64(tok, &a) < 0 || tok[0] == '-' ||
            (sep && (bd_parse_u64(sep + 1, &b) < 0 || sep[1] == '-')) ||
            (c == '-' && b < a) || (c == '+' && b == 0)) {
            if (sep) {
                *sep = c;
            }
            bd_error_setg(errp, "Parameter 'sectors' expects a list of "
                          "sectors (N, N-M or N+LEN), not '%s'", tok);
            ret = -EINVAL;
            break;
        }
        if (c == '-') {
            add_range(r, sector_bytes(a), sector_bytes(b) + SECTOR_SIZE);
        } else if (c == '+') {
            add_range(r, sector_bytes(a),
                      sector_bytes(a) + sector_bytes(b));
        } else {
            add_range(r, sector_bytes(a), sector_bytes(a) + SECTOR_SIZE);
        }
    }
    if (ret == 0 && r->nranges == 0) {
        bd_error_setg(errp, "Parameter 'sectors' expects a list of sectors "
                      "(N, N-M or N+LEN), not '%s'", s);
        ret = -EINVAL;
    }
    free(copy);
    return ret;
}

static int take_num(json_t *o, const char *key, uint64_t *out,
                    struct bd_error **errp)
{
    return bd_opts_take_number(o, key, out, errp);
}

/*
 * Build a rule from its fields (consumed). Checks come in QEMU's order:
 * the event first ("Missing event name for rule", "invalid parameter
 * value: X"), then iotype.
 */
static struct inj_rule *rule_build(enum inj_kind kind, json_t *o,
                                   const char *name, struct bd_error **errp)
{
    struct inj_rule *r = bd_malloc0(sizeof(*r));
    char *s = NULL;
    uint64_t u = 0;
    bool b = false;
    int nact = 0;
    int ev;

    r->kind = kind;
    r->armed_pos = -1;
    r->sector = -1;
    r->name = name ? bd_strdup(name) : NULL;
    if (bd_opts_take_str(o, "event", &s) <= 0) {
        bd_error_setg(errp, "Missing event name for rule");
        goto fail;
    }
    ev = bd_event_lookup(s);
    if (ev < 0) {
        bd_error_setg(errp, "invalid parameter value: %s", s);
        goto fail;
    }
    free(s);
    s = NULL;
    r->event = ev;
    if (take_num(o, "state", &u, errp) < 0) {
        goto fail;
    }
    r->state = (int)u;
    if (kind == INJ_KIND_SET_STATE) {
        u = 0;
        if (take_num(o, "new_state", &u, errp) < 0) {
            goto fail;
        }
        r->new_state = (int)u;
        return r;
    }

    if (bd_opts_take_str(o, "iotype", &s) > 0) {
        int t = bd_iotype_lookup(s);

        if (t < 0) {
            bd_error_setg(errp, "invalid parameter value: %s", s);
            goto fail;
        }
        r->iomask = 1u << t;
        r->iotype_given = true;
        free(s);
        s = NULL;
    }
    r->err = EIO;
    switch (take_num(o, "errno", &u, errp)) {
    case -1:
        goto fail;
    case 1:
        /* QEMU stores errno in an int: 2^32 wraps to 0 (passes). */
        r->err = (int)u;
        r->err_given = true;
        break;
    default:
        break;
    }
    switch (take_num(o, "sector", &u, errp)) {
    case -1:
        goto fail;
    case 1:
        r->sector = (int64_t)u;
        break;
    default:
        break;
    }
    switch (take_num(o, "length", &u, errp)) {
    case -1:
        goto fail;
    case 1:
        if (r->sector < 0 || u == 0) {
            bd_error_setg(errp, "Parameter 'length' needs a 'sector' and "
                          "must be at least 1");
            goto fail;
        }
        r->length = (int64_t)BD_MIN(u, (uint64_t)INT64_MAX);
        break;
    default:
        break;
    }
    if (r->sector >= 0) {
        int64_t start = sector_bytes((uint64_t)r->sector);

        if (r->length) {
            int64_t len = sector_bytes((uint64_t)r->length);

            add_range(r, start, start > INT64_MAX - len ? INT64_MAX
                                                        : start + len);
        } else {
            /* QEMU's test: the single byte sector*512 lies in the request. */
            add_range(r, start, start + 1);
        }
    }
    if (bd_opts_take_str(o, "sectors", &s) > 0) {
        if (parse_sector_list(r, s, errp) < 0) {
            goto fail;
        }
        r->sectors = s;
        s = NULL;
    }
    if (bd_opts_take_bool(o, "once", &r->once, errp) < 0 ||
        bd_opts_take_bool(o, "immediately", &r->immediately, errp) < 0) {
        goto fail;
    }
    if (bd_opts_take_str(o, "probability", &s) > 0) {
        if (parse_prob(s, &r->prob) < 0) {
            bd_error_setg(errp, "Parameter 'probability' expects a number "
                          "between 0 and 1");
            goto fail;
        }
        r->has_prob = true;
        free(s);
        s = NULL;
    }
    if (take_num(o, "skip", &r->skip, errp) < 0 ||
        take_num(o, "count", &r->count, errp) < 0) {
        goto fail;
    }
    r->action = INJ_ACT_ERRNO;
    switch (take_num(o, "delay-ns", &u, errp)) {
    case -1:
        goto fail;
    case 1:
        r->delay_ns = (int64_t)BD_MIN(u, (uint64_t)INT64_MAX);
        r->action = INJ_ACT_DELAY;
        nact++;
        break;
    default:
        break;
    }
    switch (take_num(o, "corrupt", &u, errp)) {
    case -1:
        goto fail;
    case 1:
        if (u == 0 || u > 1u << 20) {
            bd_error_setg(errp, "Parameter 'corrupt' expects a number of "
                          "bits between 1 and 1048576");
            goto fail;
        }
        r->corrupt = (uint32_t)u;
        r->action = INJ_ACT_CORRUPT;
        nact++;
        break;
    default:
        break;
    }
    switch (take_num(o, "torn", &u, errp)) {
    case -1:
        goto fail;
    case 1:
        r->torn = (int64_t)BD_MIN(u, (uint64_t)INT64_MAX);
        r->action = INJ_ACT_TORN;
        nact++;
        break;
    default:
        break;
    }
    switch (bd_opts_take_bool(o, "lost", &b, errp)) {
    case -1:
        goto fail;
    case 1:
        if (b) {
            r->action = INJ_ACT_LOST;
            nact++;
        }
        break;
    default:
        break;
    }
    if (nact > 1) {
        bd_error_setg(errp, "Only one of 'delay-ns', 'corrupt', 'torn' and "
                      "'lost' may be given in a rule");
        goto fail;
    }
    if (!r->iotype_given) {
        /* Each action defaults to the requests it makes sense for. */
        switch (r->action) {
        case INJ_ACT_CORRUPT:
            r->iomask = 1u << BD_IOTYPE_READ;
            break;
        case INJ_ACT_TORN:
            r->iomask = WRITE_IOMASK;
            break;
        case INJ_ACT_LOST:
            r->iomask = DEFAULT_IOMASK & ~(1u << BD_IOTYPE_READ);
            break;
        default:
            r->iomask = DEFAULT_IOMASK;
            break;
        }
    }
    return r;
fail:
    free(s);
    rule_free(r);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Engine lifetime and rule lists                                       */

struct inj *inj_new(const char *name)
{
    struct inj *inj = bd_malloc0(sizeof(*inj));

    pthread_mutex_init(&inj->lock, NULL);
    pthread_cond_init(&inj->resume_cond, NULL);
    inj->name = bd_strdup(name ? name : "");
    inj->state = 1;
    inj->next_id = 1;
    atomic_init(&inj->evmask, 0);
    atomic_init(&inj->armed_count, 0);
    return inj;
}

void inj_free(struct inj *inj)
{
    int ev;

    if (!inj) {
        return;
    }
    inj_resume_all(inj);
    for (ev = 0; ev < BD_EV__MAX; ev++) {
        while (inj->rules[ev]) {
            struct inj_rule *r = inj->rules[ev];

            inj->rules[ev] = r->ev_next;
            rule_free(r);
        }
    }
    free(inj->armed);
    free(inj->ivals);
    free(inj->any);
    free(inj->filter);
    free(inj->name);
    pthread_cond_destroy(&inj->resume_cond);
    pthread_mutex_destroy(&inj->lock);
    free(inj);
}

void inj_set_hooks(struct inj *inj, const struct inj_hooks *hooks)
{
    pthread_mutex_lock(&inj->lock);
    inj->hooks = *hooks;
    pthread_mutex_unlock(&inj->lock);
}

void inj_set_seed(struct inj *inj, uint64_t seed)
{
    pthread_mutex_lock(&inj->lock);
    inj->seed = seed;
    pthread_mutex_unlock(&inj->lock);
}

void inj_set_log(struct inj *inj, bool on)
{
    pthread_mutex_lock(&inj->lock);
    inj->log = on;
    pthread_mutex_unlock(&inj->lock);
}

/* Under lock. New rules go to the head of their event's list. */
static void insert_rule(struct inj *inj, struct inj_rule *r)
{
    r->id = inj->next_id++;
    r->ev_next = inj->rules[r->event];
    inj->rules[r->event] = r;
    atomic_fetch_or(&inj->evmask, UINT64_C(1) << r->event);
}

static void set_armed_count(struct inj *inj)
{
    atomic_store(&inj->armed_count, inj->narmed);
}

/* Under lock: take r out of the armed set (keeping the order). */
static void disarm(struct inj *inj, struct inj_rule *r)
{
    int i;

    if (r->armed_pos < 0) {
        return;
    }
    for (i = r->armed_pos; i + 1 < inj->narmed; i++) {
        inj->armed[i] = inj->armed[i + 1];
        inj->armed[i]->armed_pos = i;
    }
    inj->narmed--;
    r->armed_pos = -1;
    inj->index_dirty = true;
    set_armed_count(inj);
}

/* Under lock: unlink r from its event list and the armed set, free it. */
static void delete_rule(struct inj *inj, struct inj_rule *r)
{
    struct inj_rule **pp = &inj->rules[r->event];

    while (*pp && *pp != r) {
        pp = &(*pp)->ev_next;
    }
    if (*pp) {
        *pp = r->ev_next;
    }
    if (!inj->rules[r->event]) {
        atomic_fetch_and(&inj->evmask, ~(UINT64_C(1) << r->event));
    }
    disarm(inj, r);
    rule_free(r);
}

static struct inj_rule *find_rule(struct inj *inj, int id)
{
    int ev;
    struct inj_rule *r;

    for (ev = 0; ev < BD_EV__MAX; ev++) {
        for (r = inj->rules[ev]; r; r = r->ev_next) {
            if (r->id == id) {
                return r;
            }
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Loading: config file, then inline options                            */

static int read_config_file(const char *path, json_t *sections,
                            struct bd_error **errp)
{
    FILE *f = fopen(path, "r");
    int ret;

    if (!f) {
        bd_error_setg_errno(errp, errno, "Could not read blkdebug config "
                            "file");
        return -errno;
    }
    ret = inj_config_parse(f, sections, errp);
    fclose(f);
    return ret;
}

/* Check and store the fields of one inline entry as strings. */
static int absorb_fields(const char *group, json_t *entry, json_t *dst,
                         const char *const unknown[2], struct bd_error **errp)
{
    const char *k;
    json_t *v;

    json_object_foreach(entry, k, v) {
        char *str = bd_opts_scalar_string(v);
        int ret;

        if (!str) {
            bd_error_setg(errp, "%s%s%s", unknown[0], k, unknown[1]);
            return -EINVAL;
        }
        ret = inj_field_check(group, k, str, unknown, errp);
        if (ret == 0) {
            json_object_set_new(dst, k, json_string(str));
        }
        free(str);
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

static json_t *add_section(json_t *sections, const char *group)
{
    json_t *sec = json_object();
    json_t *o = json_object();

    json_object_set_new(sec, "group", json_string(group));
    json_object_set_new(sec, "opts", o);
    json_array_append_new(sections, sec);
    return o;
}

/* The index of "N" or "N.rest" (canonical decimal), -1 otherwise. */
static long list_index(const char *k, const char **rest)
{
    long v = 0;
    const char *p = k;

    if (!(*p >= '0' && *p <= '9') || (p[0] == '0' && p[1] >= '0' &&
                                      p[1] <= '9')) {
        return -1;
    }
    for (; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (*p - '0');
        if (v > 1000000) {
            return -1;
        }
    }
    if (*p && *p != '.') {
        return -1;
    }
    *rest = *p ? p + 1 : NULL;
    return v;
}

/*
 * Move the entries 0, 1, 2... of a flat dict ("0.event", "1" ...) out of
 * sub into an array (a dict per entry, or the scalar), stopping at the first
 * missing index; what is left in sub is not part of the list. One pass over
 * the keys: lists of thousands of rules stay cheap.
 */
static json_t *split_list(json_t *sub)
{
    json_t *slots = json_array();    /* index -> entry or null */
    json_t *entries = json_array();
    json_t *moved = json_array();    /* keys taken out of sub */
    const char *k;
    json_t *v;
    size_t i;

    json_object_foreach(sub, k, v) {
        const char *rest = NULL;
        long idx = list_index(k, &rest);
        json_t *slot;

        if (idx < 0) {
            continue;
        }
        while (json_array_size(slots) <= (size_t)idx) {
            json_array_append_new(slots, json_null());
        }
        slot = json_array_get(slots, (size_t)idx);
        if (!rest) {
            if (!json_is_object(slot) || json_object_size(slot) == 0) {
                json_array_set(slots, (size_t)idx, v);
            }
            continue;
        }
        if (json_is_null(slot)) {
            slot = json_object();
            json_array_set_new(slots, (size_t)idx, slot);
        }
        if (json_is_object(slot)) {
            json_object_set(slot, rest, v);
        }
    }
    /* Contiguous from 0; a scalar "N" wins over "N.x" keys, which then
     * stay behind as unused. */
    for (i = 0; i < json_array_size(slots); i++) {
        json_t *slot = json_array_get(slots, i);

        if (json_is_null(slot)) {
            break;
        }
        json_array_append(entries, slot);
    }
    json_object_foreach(sub, k, v) {
        const char *rest = NULL;
        long idx = list_index(k, &rest);
        json_t *slot;

        if (idx < 0 || (size_t)idx >= json_array_size(entries)) {
            continue;
        }
        slot = json_array_get(entries, (size_t)idx);
        if (json_is_object(slot) ? rest != NULL : rest == NULL) {
            json_array_append_new(moved, json_string(k));
        }
    }
    json_array_foreach(moved, i, v) {
        json_object_del(sub, json_string_value(v));
    }
    json_decref(moved);
    json_decref(slots);
    return entries;
}

/*
 * Inline "group.*" options: either one rule ("inject-error.event=...") or
 * an indexed list ("inject-error.0.event=..."), never both (spec §2.4).
 */
static int absorb_inline(const char *group, json_t *opts, json_t *sections,
                         struct bd_error **errp)
{
    json_t *sub = bd_opts_extract(opts, group);
    char post[64];
    const char *unknown[2] = { NULL, post };
    char pre[96];
    json_t *entries = NULL;
    bool single = false;
    const char *k;
    json_t *v;
    json_t *e;
    size_t idx_i;
    int ret = 0;

    if (json_object_size(sub) == 0) {
        goto out;
    }
    /* QEMU's test: one known field makes it a single rule, whatever else
     * is there. */
    json_object_foreach(sub, k, v) {
        if (inj_field_type(group, k) >= 0) {
            single = true;
            break;
        }
    }
    if (single) {
        unknown[0] = "Unknown option '";
        snprintf(post, sizeof(post), "' for [%s]", group);
        ret = absorb_fields(group, sub, add_section(sections, group),
                            unknown, errp);
        goto out;
    }
    /* Split the list off first: stray keys are reported before anything
     * inside the entries. */
    entries = split_list(sub);
    if (json_object_size(sub)) {
        bd_error_setg(errp, "Unused option '%s' for [%s]",
                      bd_opts_first_key(sub), group);
        ret = -EINVAL;
        goto out;
    }
    snprintf(pre, sizeof(pre), "[%s] section doesn't support the option '",
             group);
    unknown[0] = pre;
    snprintf(post, sizeof(post), "'");
    json_array_foreach(entries, idx_i, e) {
        if (!json_is_object(e)) {
            bd_error_setg(errp, "[%s] section (index %zu) does not consist "
                          "of keys", group, idx_i);
            ret = -EINVAL;
            goto out;
        }
        ret = absorb_fields(group, e, add_section(sections, group),
                            unknown, errp);
        if (ret < 0) {
            goto out;
        }
    }
out:
    json_decref(entries);
    json_decref(sub);
    return ret;
}

/* Create the rules of every section of one group, in order. */
static int build_group(json_t *sections, const char *group,
                       enum inj_kind kind, struct inj_rule ***out, int *nout,
                       struct bd_error **errp)
{
    size_t i;
    json_t *sec;

    json_array_foreach(sections, i, sec) {
        const char *g = json_string_value(json_object_get(sec, "group"));
        json_t *o = NULL;
        struct inj_rule *r = NULL;

        if (!g || strcmp(g, group)) {
            continue;
        }
        o = json_deep_copy(json_object_get(sec, "opts"));
        r = rule_build(kind, o,
                       json_string_value(json_object_get(sec, "id")), errp);
        json_decref(o);
        if (!r) {
            return -EINVAL;
        }
        *out = bd_realloc(*out, sizeof(**out) * (size_t)(*nout + 1));
        (*out)[(*nout)++] = r;
    }
    return 0;
}

int inj_load(struct inj *inj, const char *config_path, json_t *opts,
             struct bd_error **errp)
{
    json_t *sections = json_array();
    struct inj_rule **built = NULL;
    int nbuilt = 0;
    int ret = 0;
    int i;

    if (config_path) {
        ret = read_config_file(config_path, sections, errp);
        if (ret < 0) {
            goto out;
        }
    }
    if (opts) {
        ret = absorb_inline("inject-error", opts, sections, errp);
        if (ret == 0) {
            ret = absorb_inline("set-state", opts, sections, errp);
        }
        if (ret < 0) {
            goto out;
        }
    }
    ret = build_group(sections, "inject-error", INJ_KIND_INJECT, &built,
                      &nbuilt, errp);
    if (ret == 0) {
        ret = build_group(sections, "set-state", INJ_KIND_SET_STATE, &built,
                          &nbuilt, errp);
    }
    if (ret < 0) {
        for (i = 0; i < nbuilt; i++) {
            rule_free(built[i]);
        }
        goto out;
    }
    pthread_mutex_lock(&inj->lock);
    for (i = 0; i < nbuilt; i++) {
        insert_rule(inj, built[i]);
    }
    pthread_mutex_unlock(&inj->lock);
out:
    free(built);
    json_decref(sections);
    return ret;
}

int inj_add_rule(struct inj *inj, enum inj_kind kind, json_t *fields,
                 struct bd_error **errp)
{
    const char *group = kind == INJ_KIND_SET_STATE ? "set-state"
                                                   : "inject-error";
    static const char *const unknown[2] = { "Parameter '",
                                            "' is unexpected" };
    json_t *o = json_object();
    struct inj_rule *r = NULL;
    int id;

    if (kind == INJ_KIND_BREAK ||
        absorb_fields(group, fields, o, unknown, errp) < 0) {
        if (kind == INJ_KIND_BREAK) {
            bd_error_setg(errp, "Use a breakpoint command for breakpoints");
        }
        json_decref(o);
        return -EINVAL;
    }
    r = rule_build(kind, o, NULL, errp);
    json_decref(o);
    if (!r) {
        return -EINVAL;
    }
    pthread_mutex_lock(&inj->lock);
    insert_rule(inj, r);
    id = r->id;
    pthread_mutex_unlock(&inj->lock);
    return id;
}

int inj_remove_rule_kind(struct inj *inj, int id, enum inj_kind kind)
{
    struct inj_rule *r;
    int ret = -ENOENT;

    pthread_mutex_lock(&inj->lock);
    r = find_rule(inj, id);
    if (r && ((int)kind < 0 || r->kind == kind)) {
        delete_rule(inj, r);
        ret = 0;
    }
    pthread_mutex_unlock(&inj->lock);
    return ret;
}

int inj_remove_rule(struct inj *inj, int id)
{
    return inj_remove_rule_kind(inj, id, (enum inj_kind)-1);
}

int inj_arm_rule(struct inj *inj, int id)
{
    struct inj_rule *r;
    int ret = -ENOENT;

    pthread_mutex_lock(&inj->lock);
    r = find_rule(inj, id);
    if (r && r->kind == INJ_KIND_INJECT) {
        ret = 0;
        if (r->armed_pos < 0) {
            if (inj->narmed == inj->armed_cap) {
                inj->armed_cap = inj->armed_cap ? inj->armed_cap * 2 : 8;
                inj->armed = bd_realloc(inj->armed, sizeof(*inj->armed) *
                                        (size_t)inj->armed_cap);
            }
            r->armed_pos = inj->narmed;
            inj->armed[inj->narmed++] = r;
            inj->index_dirty = true;
            set_armed_count(inj);
        }
    }
    pthread_mutex_unlock(&inj->lock);
    return ret;
}

int inj_get_state(struct inj *inj)
{
    int s;

    pthread_mutex_lock(&inj->lock);
    s = inj->state;
    pthread_mutex_unlock(&inj->lock);
    return s;
}

void inj_set_state(struct inj *inj, int state)
{
    pthread_mutex_lock(&inj->lock);
    inj->state = state;
    pthread_mutex_unlock(&inj->lock);
}

/* ------------------------------------------------------------------ */
/* Events                                                               */

bool inj_has_rules(struct inj *inj, enum bd_event ev)
{
    return (atomic_load_explicit(&inj->evmask, memory_order_relaxed) >>
            ev) & 1;
}

/* Under lock: make `list` (n rules, check order) the armed set. */
static void rearm(struct inj *inj, struct inj_rule **list, int n)
{
    int i;
    bool same = n == inj->narmed;

    for (i = 0; same && i < n; i++) {
        same = inj->armed[i] == list[i];
    }
    if (same) {
        /* Re-arming the same set (an event that fires on every request)
         * keeps the index. */
        return;
    }
    for (i = 0; i < inj->narmed; i++) {
        inj->armed[i]->armed_pos = -1;
    }
    if (n > inj->armed_cap) {
        inj->armed_cap = n;
        inj->armed = bd_realloc(inj->armed,
                                sizeof(*inj->armed) * (size_t)n);
    }
    for (i = 0; i < n; i++) {
        inj->armed[i] = list[i];
        list[i]->armed_pos = i;
    }
    inj->narmed = n;
    inj->index_dirty = true;
    set_armed_count(inj);
}

void inj_event(struct inj *inj, enum bd_event ev)
{
    struct inj_rule *r;
    struct inj_rule *next;
    struct inj_rule **arm = NULL;
    int narm = 0;
    int cap = 0;
    bool armed_now = false;
    int old;
    int next_state;
    int pending = 0;

    if ((unsigned)ev >= BD_EV__MAX || !inj_has_rules(inj, ev)) {
        return;
    }
    pthread_mutex_lock(&inj->lock);
    old = inj->state;
    next_state = old;
    for (r = inj->rules[ev]; r; r = next) {
        next = r->ev_next;
        if (r->state != 0 && r->state != old) {
            continue;
        }
        switch (r->kind) {
        case INJ_KIND_INJECT:
            /* QEMU front-inserts while walking newest-first, which leaves
             * the armed set in creation order: collect, reverse below. */
            armed_now = true;
            if (narm == cap) {
                cap = cap ? cap * 2 : 8;
                arm = bd_realloc(arm, sizeof(*arm) * (size_t)cap);
            }
            arm[narm++] = r;
            break;
        case INJ_KIND_SET_STATE:
            /* Later (older) rules overwrite: the first created wins. */
            next_state = r->new_state;
            break;
        case INJ_KIND_BREAK: {
            struct inj_susp *s = bd_malloc0(sizeof(*s));

            s->tag = r->tag;
            r->tag = NULL;
            s->event = ev;
            s->pending = &pending;
            s->next = inj->susp;
            inj->susp = s;
            pending++;
            /* Printed now, in list order, like QEMU (and before anybody
             * can resume it: the lock is held). */
            if (inj->hooks.suspended) {
                inj->hooks.suspended(inj->hooks.opaque, s->tag);
            }
            delete_rule(inj, r);
            break;
        }
        }
    }
    inj->state = next_state;
    if (armed_now) {
        int i;

        for (i = 0; i < narm / 2; i++) {
            struct inj_rule *t = arm[i];

            arm[i] = arm[narm - 1 - i];
            arm[narm - 1 - i] = t;
        }
        rearm(inj, arm, narm);
    }
    /* A suspended request holds only its own thread: the wait releases
     * the lock. */
    while (pending > 0) {
        pthread_cond_wait(&inj->resume_cond, &inj->lock);
    }
    pthread_mutex_unlock(&inj->lock);
    free(arm);
}

/* ------------------------------------------------------------------ */
/* Request checking                                                     */

static int cmp_ival(const void *a, const void *b)
{
    const struct inj_ival *x = a;
    const struct inj_ival *y = b;

    if (x->start != y->start) {
        return x->start < y->start ? -1 : 1;
    }
    return x->pos - y->pos;
}

/*
 * A one-hash Bloom filter over the 4 KiB blocks the intervals touch: most
 * requests that match nothing are turned away by one bit test in a table
 * of at most 16 bits per interval, before the binary search. Intervals
 * wider than FILTER_WIDE blocks are not entered; while any exists the
 * filter is skipped.
 */
#define FILTER_BLOCK_SHIFT 12
#define FILTER_WIDE 64

static inline uint64_t filter_bit(const struct inj *inj, int64_t block)
{
    return ((uint64_t)block * UINT64_C(0x9e3779b97f4a7c15)) >>
           inj->filter_shift;
}

static void build_filter(struct inj *inj)
{
    int bits_log2 = 12;
    int i;

    while ((1 << bits_log2) < inj->nivals * 16 && bits_log2 < 24) {
        bits_log2++;
    }
    free(inj->filter);
    inj->filter = bd_malloc0(((size_t)1 << bits_log2) / 8);
    inj->filter_shift = 64 - bits_log2;
    inj->has_wide = false;
    for (i = 0; i < inj->nivals; i++) {
        int64_t first = inj->ivals[i].start >> FILTER_BLOCK_SHIFT;
        int64_t last = (inj->ivals[i].end - 1) >> FILTER_BLOCK_SHIFT;
        int64_t b;

        if (last - first >= FILTER_WIDE) {
            inj->has_wide = true;
            continue;
        }
        for (b = first; b <= last; b++) {
            uint64_t bit = filter_bit(inj, b);

            inj->filter[bit / 64] |= UINT64_C(1) << (bit % 64);
        }
    }
}

/* Might an interval overlap [off, end)? false is certain. */
static bool filter_may_match(const struct inj *inj, int64_t off, int64_t end)
{
    int64_t first = off >> FILTER_BLOCK_SHIFT;
    int64_t last = (end - 1) >> FILTER_BLOCK_SHIFT;
    int64_t b;

    if (inj->has_wide || last - first >= FILTER_WIDE) {
        return true;
    }
    for (b = first; b <= last; b++) {
        uint64_t bit = filter_bit(inj, b);

        if (inj->filter[bit / 64] & (UINT64_C(1) << (bit % 64))) {
            return true;
        }
    }
    return false;
}

static void rebuild_index(struct inj *inj)
{
    int i;
    int j;
    int n = 0;

    inj->nany = 0;
    inj->max_len = 0;
    for (i = 0; i < inj->narmed; i++) {
        n += inj->armed[i]->nranges;
    }
    free(inj->ivals);
    free(inj->any);
    inj->ivals = bd_malloc(sizeof(*inj->ivals) * (size_t)(n ? n : 1));
    inj->any = bd_malloc(sizeof(*inj->any) *
                         (size_t)(inj->narmed ? inj->narmed : 1));
    inj->nivals = 0;
    for (i = 0; i < inj->narmed; i++) {
        struct inj_rule *r = inj->armed[i];

        if (r->nranges == 0) {
            inj->any[inj->nany++] = i;
            continue;
        }
        for (j = 0; j < r->nranges; j++) {
            struct inj_ival *iv = &inj->ivals[inj->nivals++];

            iv->start = r->ranges[j].start;
            iv->end = r->ranges[j].end;
            iv->pos = i;
            if (iv->end - iv->start > inj->max_len) {
                inj->max_len = iv->end - iv->start;
            }
        }
    }
    qsort(inj->ivals, (size_t)inj->nivals, sizeof(*inj->ivals), cmp_ival);
    build_filter(inj);
    inj->index_dirty = false;
}

/* The draw of a request for rule r: a pure function of the seed, the rule
 * and the request, so thread timing cannot change it. */
static uint64_t request_hash(const struct inj *inj, const struct inj_rule *r,
                             int iotype, int64_t off, int64_t bytes)
{
    uint64_t h = bd_rng_hash64(inj->seed ^ ((uint64_t)r->id << 8) ^
                               (uint64_t)iotype);

    h = bd_rng_hash64(h ^ (uint64_t)off);
    return bd_rng_hash64(h ^ (uint64_t)bytes);
}

static bool eligible(const struct inj *inj, const struct inj_rule *r,
                     int iotype, int64_t off, int64_t bytes)
{
    if (!(r->iomask & (1u << iotype))) {
        return false;
    }
    if (r->count && r->hits >= r->count) {
        return false;
    }
    if (r->has_prob &&
        !(bd_rng_unit(request_hash(inj, r, iotype, off, bytes)) < r->prob)) {
        return false;
    }
    return true;
}

/* Under lock: the first armed rule that takes the request, or NULL. */
static struct inj_rule *match(struct inj *inj, int iotype, int64_t off,
                              int64_t bytes)
{
    int best = INT_MAX;
    int i;

    if (inj->index_dirty) {
        rebuild_index(inj);
    }
    for (i = 0; i < inj->nany; i++) {
        if (eligible(inj, inj->armed[inj->any[i]], iotype, off, bytes)) {
            best = inj->any[i];
            break;
        }
    }
    if (bytes > 0 && inj->nivals > 0) {
        int64_t end = off > INT64_MAX - bytes ? INT64_MAX : off + bytes;
        int lo = 0;
        int hi = inj->nivals;

        if (!filter_may_match(inj, off, end)) {
            return best == INT_MAX ? NULL : inj->armed[best];
        }

        /* First interval starting at or after the request's end. */
        while (lo < hi) {
            int mid = lo + (hi - lo) / 2;

            if (inj->ivals[mid].start < end) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        for (i = lo - 1; i >= 0; i--) {
            const struct inj_ival *iv = &inj->ivals[i];

            if (iv->start < off && off - iv->start >= inj->max_len) {
                break;      /* nothing further left can reach off */
            }
            if (iv->end > off && iv->pos < best &&
                eligible(inj, inj->armed[iv->pos], iotype, off, bytes)) {
                best = iv->pos;
            }
        }
    }
    return best == INT_MAX ? NULL : inj->armed[best];
}

static void describe_action(const struct inj_rule *r, char *buf, size_t len)
{
    switch (r->action) {
    case INJ_ACT_ERRNO:
        snprintf(buf, len, "errno:%d", r->err);
        break;
    case INJ_ACT_DELAY:
        if (r->err_given) {
            snprintf(buf, len, "delay:%" PRId64 "+errno:%d", r->delay_ns,
                     r->err);
        } else {
            snprintf(buf, len, "delay:%" PRId64, r->delay_ns);
        }
        break;
    case INJ_ACT_CORRUPT:
        snprintf(buf, len, "corrupt:%" PRIu32, r->corrupt);
        break;
    case INJ_ACT_TORN:
        snprintf(buf, len, "torn:%" PRId64 "+errno:%d", r->torn, r->err);
        break;
    case INJ_ACT_LOST:
        snprintf(buf, len, "lost");
        break;
    }
}

bool inj_check(struct inj *inj, int iotype, int64_t off, int64_t bytes,
               struct inj_verdict *v)
{
    struct inj_rule *r;
    char action[64];
    char *line = NULL;
    json_t *detail = NULL;
    bool fault = true;

    memset(v, 0, sizeof(*v));
    v->torn = -1;
    if (atomic_load_explicit(&inj->armed_count, memory_order_relaxed) == 0) {
        return false;
    }
    pthread_mutex_lock(&inj->lock);
    r = match(inj, iotype, off, bytes);
    if (!r) {
        pthread_mutex_unlock(&inj->lock);
        return false;
    }
    r->matches++;
    if (r->matches <= r->skip) {
        /* Taken but let through: shadows later rules, like errno=0. */
        pthread_mutex_unlock(&inj->lock);
        return false;
    }
    v->immediately = r->immediately;
    switch (r->action) {
    case INJ_ACT_ERRNO:
        /* errno 0 (or a value that is not an errno) lets it pass. */
        if (r->err <= 0 || r->err >= 4096) {
            fault = false;
        }
        v->err = r->err;
        break;
    case INJ_ACT_DELAY:
        v->delay_ns = r->delay_ns;
        if (r->err_given && r->err > 0 && r->err < 4096) {
            v->err = r->err;
        }
        break;
    case INJ_ACT_CORRUPT:
        if (iotype != BD_IOTYPE_READ) {
            fault = false;
            break;
        }
        v->corrupt = r->corrupt;
        v->corrupt_seed = request_hash(inj, r, iotype, off, bytes);
        break;
    case INJ_ACT_TORN:
        v->err = r->err > 0 && r->err < 4096 ? r->err : EIO;
        v->torn = BD_MIN(r->torn, bytes);
        break;
    case INJ_ACT_LOST:
        v->lost = true;
        break;
    }
    if (!fault) {
        memset(v, 0, sizeof(*v));
        v->torn = -1;
        pthread_mutex_unlock(&inj->lock);
        return false;
    }
    r->hits++;
    inj->total_hits++;
    describe_action(r, action, sizeof(action));
    if (inj->hooks.injected) {
        detail = json_pack("{s:s, s:i, s:s, s:s, s:s, s:I, s:I}",
                           "node", inj->name, "rule", r->id,
                           "event", bd_event_name(r->event),
                           "action", action,
                           "iotype", bd_iotype_name(iotype),
                           "offset", (json_int_t)off,
                           "bytes", (json_int_t)bytes);
        if (inj->log) {
            line = bd_strdup_printf("blkdebug-inject node=%s rule=%d "
                                    "event=%s action=%s iotype=%s "
                                    "offset=%" PRId64 " bytes=%" PRId64,
                                    inj->name, r->id,
                                    bd_event_name(r->event), action,
                                    bd_iotype_name(iotype), off, bytes);
        }
    }
    if (r->once) {
        delete_rule(inj, r);
    }
    pthread_mutex_unlock(&inj->lock);
    if (detail || line) {
        inj->hooks.injected(inj->hooks.opaque, line, detail);
    }
    free(line);
    return true;
}

void inj_corrupt_buf(const struct inj_verdict *v, uint8_t *buf, size_t len)
{
    struct bd_rng rng;
    uint32_t i;

    if (!len) {
        return;
    }
    bd_rng_seed(&rng, v->corrupt_seed);
    for (i = 0; i < v->corrupt; i++) {
        uint64_t bit = bd_rng_next(&rng) % ((uint64_t)len * 8);

        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
}

uint64_t inj_total_hits(struct inj *inj)
{
    uint64_t n;

    pthread_mutex_lock(&inj->lock);
    n = inj->total_hits;
    pthread_mutex_unlock(&inj->lock);
    return n;
}

/* ------------------------------------------------------------------ */
/* Breakpoints                                                          */

int inj_break(struct inj *inj, const char *event, const char *tag)
{
    int ev = bd_event_lookup(event);
    struct inj_rule *r;

    if (ev < 0) {
        return -ENOENT;
    }
    r = bd_malloc0(sizeof(*r));
    r->kind = INJ_KIND_BREAK;
    r->event = ev;
    r->armed_pos = -1;
    r->sector = -1;
    r->tag = bd_strdup(tag);
    pthread_mutex_lock(&inj->lock);
    insert_rule(inj, r);
    pthread_mutex_unlock(&inj->lock);
    return 0;
}

/* Under lock: wake the request behind s and forget s. */
static void resume_entry(struct inj *inj, struct inj_susp **pp)
{
    struct inj_susp *s = *pp;

    *pp = s->next;
    if (inj->hooks.resumed) {
        /* Printed before the request continues, like QEMU. */
        inj->hooks.resumed(inj->hooks.opaque, s->tag);
    }
    (*s->pending)--;
    pthread_cond_broadcast(&inj->resume_cond);
    free(s->tag);
    free(s);
}

int inj_resume(struct inj *inj, const char *tag)
{
    struct inj_susp **pp;
    int ret = -ENOENT;

    pthread_mutex_lock(&inj->lock);
    for (pp = &inj->susp; *pp; pp = &(*pp)->next) {
        if (!strcmp((*pp)->tag, tag)) {
            resume_entry(inj, pp);
            ret = 0;
            break;
        }
    }
    pthread_mutex_unlock(&inj->lock);
    return ret;
}

/* Delete breakpoints with tag (every one when tag is NULL) and resume the
 * requests suspended under them; true if a breakpoint was deleted. */
static bool remove_breaks_locked(struct inj *inj, const char *tag)
{
    struct inj_susp **pp;
    bool deleted = false;
    int ev;

    for (ev = 0; ev < BD_EV__MAX; ev++) {
        struct inj_rule *r;
        struct inj_rule *next;

        for (r = inj->rules[ev]; r; r = next) {
            next = r->ev_next;
            if (r->kind == INJ_KIND_BREAK && (!tag || !strcmp(r->tag, tag))) {
                delete_rule(inj, r);
                deleted = true;
            }
        }
    }
    pp = &inj->susp;
    while (*pp) {
        if (!tag || !strcmp((*pp)->tag, tag)) {
            resume_entry(inj, pp);
        } else {
            pp = &(*pp)->next;
        }
    }
    return deleted;
}

int inj_remove_break(struct inj *inj, const char *tag)
{
    bool deleted;

    pthread_mutex_lock(&inj->lock);
    deleted = remove_breaks_locked(inj, tag);
    pthread_mutex_unlock(&inj->lock);
    return deleted ? 0 : -ENOENT;
}

void inj_release_breaks(struct inj *inj)
{
    pthread_mutex_lock(&inj->lock);
    remove_breaks_locked(inj, NULL);
    pthread_mutex_unlock(&inj->lock);
}

void inj_resume_all(struct inj *inj)
{
    pthread_mutex_lock(&inj->lock);
    while (inj->susp) {
        resume_entry(inj, &inj->susp);
    }
    pthread_mutex_unlock(&inj->lock);
}

bool inj_is_suspended(struct inj *inj, const char *tag)
{
    struct inj_susp *s;
    bool found = false;

    pthread_mutex_lock(&inj->lock);
    for (s = inj->susp; s && !found; s = s->next) {
        found = !strcmp(s->tag, tag);
    }
    pthread_mutex_unlock(&inj->lock);
    return found;
}

/* ------------------------------------------------------------------ */
/* Query                                                                */

static json_t *rule_json(const struct inj_rule *r)
{
    json_t *o = json_object();

    json_object_set_new(o, "id", json_integer(r->id));
    json_object_set_new(o, "type", json_string(
        r->kind == INJ_KIND_INJECT ? "inject-error" :
        r->kind == INJ_KIND_SET_STATE ? "set-state" : "break"));
    json_object_set_new(o, "event", json_string(bd_event_name(r->event)));
    if (r->name) {
        json_object_set_new(o, "name", json_string(r->name));
    }
    if (r->kind == INJ_KIND_BREAK) {
        json_object_set_new(o, "tag", json_string(r->tag));
        return o;
    }
    json_object_set_new(o, "state", json_integer(r->state));
    if (r->kind == INJ_KIND_SET_STATE) {
        json_object_set_new(o, "new_state", json_integer(r->new_state));
        return o;
    }
    {
        json_t *types = json_array();
        int t;

        for (t = 0; t < BD_IOTYPE__MAX; t++) {
            if (r->iomask & (1u << t)) {
                json_array_append_new(types, json_string(bd_iotype_name(t)));
            }
        }
        json_object_set_new(o, "iotype", types);
    }
    json_object_set_new(o, "errno", json_integer(r->err));
    if (r->sector >= 0) {
        json_object_set_new(o, "sector", json_integer(r->sector));
    }
    if (r->length) {
        json_object_set_new(o, "length", json_integer(r->length));
    }
    if (r->sectors) {
        json_object_set_new(o, "sectors", json_string(r->sectors));
    }
    json_object_set_new(o, "once", json_boolean(r->once));
    json_object_set_new(o, "immediately", json_boolean(r->immediately));
    if (r->has_prob) {
        json_object_set_new(o, "probability", json_real(r->prob));
    }
    if (r->skip) {
        json_object_set_new(o, "skip", json_integer((json_int_t)r->skip));
    }
    if (r->count) {
        json_object_set_new(o, "count", json_integer((json_int_t)r->count));
    }
    json_object_set_new(o, "action", json_string(inj_action_name(r->action)));
    switch (r->action) {
    case INJ_ACT_DELAY:
        json_object_set_new(o, "delay-ns", json_integer(r->delay_ns));
        break;
    case INJ_ACT_CORRUPT:
        json_object_set_new(o, "corrupt", json_integer(r->corrupt));
        break;
    case INJ_ACT_TORN:
        json_object_set_new(o, "torn", json_integer(r->torn));
        break;
    default:
        break;
    }
    json_object_set_new(o, "armed", json_boolean(r->armed_pos >= 0));
    json_object_set_new(o, "matches", json_integer((json_int_t)r->matches));
    json_object_set_new(o, "hits", json_integer((json_int_t)r->hits));
    return o;
}

static int cmp_rule_id(const void *a, const void *b)
{
    const struct inj_rule *x = *(const struct inj_rule *const *)a;
    const struct inj_rule *y = *(const struct inj_rule *const *)b;

    return x->id - y->id;
}

json_t *inj_query(struct inj *inj)
{
    json_t *o = json_object();
    json_t *rules = json_array();
    json_t *susp = json_array();
    struct inj_rule **all = NULL;
    struct inj_susp *s;
    size_t n = 0;
    size_t i;
    int ev;

    pthread_mutex_lock(&inj->lock);
    for (ev = 0; ev < BD_EV__MAX; ev++) {
        struct inj_rule *r;

        for (r = inj->rules[ev]; r; r = r->ev_next) {
            all = bd_realloc(all, sizeof(*all) * (n + 1));
            all[n++] = r;
        }
    }
    if (n) {
        qsort(all, n, sizeof(*all), cmp_rule_id);
    }
    for (i = 0; i < n; i++) {
        json_array_append_new(rules, rule_json(all[i]));
    }
    for (s = inj->susp; s; s = s->next) {
        json_array_append_new(susp, json_pack("{s:s, s:s}", "tag", s->tag,
                                              "event",
                                              bd_event_name(s->event)));
    }
    json_object_set_new(o, "state", json_integer(inj->state));
    json_object_set_new(o, "rules", rules);
    json_object_set_new(o, "suspended", susp);
    json_object_set_new(o, "injected",
                        json_integer((json_int_t)inj->total_hits));
    pthread_mutex_unlock(&inj->lock);
    free(all);
    return o;
}
