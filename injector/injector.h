/*
 * injector/injector.h - the fault injector: QEMU blkdebug's rule engine plus
 * blkrig's extensions. It knows nothing of drivers or nodes: a filter owns
 * one `struct inj` and tells it "event E happened" (inj_event) and asks "may
 * this request of type T over [off, off+bytes) pass?" (inj_check).
 *
 * Model (../shared/specs/blkdebug.md §4-§5):
 *  - an integer state, 1 after inj_new; a rule's `state` 0 matches any state;
 *  - one rule list per event, newest first; rules are inject-error,
 *    set-state or breakpoints (suspend);
 *  - an ordered "armed" set of inject rules. An event with at least one
 *    matching inject rule replaces the armed set with those rules; every rule
 *    of an event is judged against the state from before the event; the
 *    first-created matching set-state rule decides the next state;
 *  - a request is decided by the first armed rule whose sector range and
 *    iotype match it.
 * Extensions (docs/injector.md): sector ranges and lists, seeded
 * probability, skip/count, delay-ns/corrupt/torn/lost actions, hit
 * counters, a fixed-format log line per injection.
 *
 * Threading: every function may be called from any thread. One mutex per
 * injector guards the rules; it is never held while a request sleeps
 * (delay) or waits for `resume` (breakpoints), so a delayed or suspended
 * request holds only its own thread. An event with no rule costs one atomic
 * load and a bit test; a request with nothing armed costs one atomic load.
 */
#ifndef BLKRIG_INJECTOR_H
#define BLKRIG_INJECTOR_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <jansson.h>

#include "common/error.h"
#include "injector/events.h"

struct inj;

/* Rule kinds, as query-blkdebug names them. */
enum inj_kind {
    INJ_KIND_INJECT,
    INJ_KIND_SET_STATE,
    INJ_KIND_BREAK,
};

/* What an injection does (one per rule; "errno" unless another is set). */
enum inj_action {
    INJ_ACT_ERRNO,     /* fail with -errno (errno <= 0 lets it pass) */
    INJ_ACT_DELAY,     /* sleep delay_ns, then errno if given, else pass */
    INJ_ACT_CORRUPT,   /* read passes, then `corrupt` seeded bits flip */
    INJ_ACT_TORN,      /* write only the first `torn` bytes, then fail */
    INJ_ACT_LOST,      /* report success, forward nothing */
};
const char *inj_action_name(enum inj_action a);

/* Observer of what the engine does; set once before the first event. The
 * callbacks run in the request's thread without the injector's lock. */
struct inj_hooks {
    /* A request was suspended under tag / is being resumed. */
    void (*suspended)(void *opaque, const char *tag);
    void (*resumed)(void *opaque, const char *tag);
    /* A rule injected a fault; line is the fixed-format log line (no
     * newline), detail the same facts as a BLKDEBUG_INJECT data object
     * (reference stolen). */
    void (*injected)(void *opaque, const char *line, json_t *detail);
    void *opaque;
};

/* The decision for one request (inj_check's output). */
struct inj_verdict {
    int err;             /* > 0: complete the request with -err */
    bool immediately;    /* fail without an extra scheduling round */
    int64_t delay_ns;    /* sleep this long first (0: none) */
    bool lost;           /* acknowledge and forward nothing */
    int64_t torn;        /* >= 0: forward only this prefix, then fail */
    uint32_t corrupt;    /* flip this many bits of the read data */
    uint64_t corrupt_seed;
};

/* A new engine: state 1, no rules. name is used in log lines (copied). */
struct inj *inj_new(const char *name);
void inj_free(struct inj *inj);
void inj_set_hooks(struct inj *inj, const struct inj_hooks *hooks);
/* Seed for probability draws and corrupt positions (default 0). */
void inj_set_seed(struct inj *inj, uint64_t seed);
/* Turn the injection log (hooks->injected gets a line) on or off. */
void inj_set_log(struct inj *inj, bool on);

/*
 * Load rules the way blkdebug's open does: the config file `config_path`
 * (may be NULL) section by section, then the inline lists taken out of the
 * flat options dict `opts` ("inject-error.event", "inject-error.0.errno",
 * "set-state.1.new_state", ...; consumed). All inject-error rules are
 * created first, then all set-state rules, each group in that order.
 * Messages are QEMU's (spec §2.4, §6). On error nothing is added.
 */
int inj_load(struct inj *inj, const char *config_path, json_t *opts,
             struct bd_error **errp);

/*
 * Add one rule from a flat dict of its fields (strings or typed JSON
 * scalars, as in config files and options). kind is INJECT or SET_STATE.
 * Used for QMP blkdebug-inject-add. Returns the rule's id (> 0).
 */
int inj_add_rule(struct inj *inj, enum inj_kind kind, json_t *fields,
                 struct bd_error **errp);
/* Arm inject rule id now, at the end of the armed set, as if its event had
 * fired but without displacing what is armed (QMP's "arm": rules on `none`
 * or on events nothing raises would otherwise never arm). -ENOENT if there
 * is no such inject rule. */
int inj_arm_rule(struct inj *inj, int id);
/* Remove a rule by id (any kind); -ENOENT if there is none. */
int inj_remove_rule(struct inj *inj, int id);
/* Remove a rule by id only if it has the given kind. */
int inj_remove_rule_kind(struct inj *inj, int id, enum inj_kind kind);

int inj_get_state(struct inj *inj);
void inj_set_state(struct inj *inj, int state);

/*
 * Event processing (spec §4.1). May suspend the calling thread on
 * breakpoints until inj_resume; never holds the lock while waiting.
 */
void inj_event(struct inj *inj, enum bd_event ev);

/* Does any rule exist for ev? (one bit test, lock-free) */
bool inj_has_rules(struct inj *inj, enum bd_event ev);

/*
 * Request checking (spec §5.2 plus extensions). iotype is enum bd_iotype;
 * bytes 0 for flush. Fills *v; returns true if a rule took the request (v
 * says what to do), false if the request passes untouched.
 */
bool inj_check(struct inj *inj, int iotype, int64_t off, int64_t bytes,
               struct inj_verdict *v);

/* Flip v->corrupt bits of buf (len bytes) at positions derived from
 * v->corrupt_seed: the same request corrupts the same bits. */
void inj_corrupt_buf(const struct inj_verdict *v, uint8_t *buf, size_t len);

/* Breakpoints (spec §7). event: name; -ENOENT for an unknown event. */
int inj_break(struct inj *inj, const char *event, const char *tag);
/* Delete pending breakpoints with tag and resume every request suspended
 * under it. Returns 0 if at least one breakpoint was deleted, else -ENOENT
 * (QEMU's behaviour, also when requests were resumed: spec §11.1). */
int inj_remove_break(struct inj *inj, const char *tag);
/* Resume the most recently suspended request with tag; -ENOENT if none. */
int inj_resume(struct inj *inj, const char *tag);
/* Resume every suspended request (node shutdown). */
void inj_resume_all(struct inj *inj);
/* Delete every breakpoint and resume every suspended request: a daemon
 * shutting down must not wait for a `resume` nobody will send. */
void inj_release_breaks(struct inj *inj);
bool inj_is_suspended(struct inj *inj, const char *tag);

/*
 * Everything, as query-blkdebug returns it:
 * {"state": N, "rules": [{"id", "type", "event", ...fields, "hits",
 *  "matches"}], "suspended": [{"tag", "event"}]} (new reference).
 */
json_t *inj_query(struct inj *inj);

/* Total faults injected by this engine (for tests and `info`). */
uint64_t inj_total_hits(struct inj *inj);

/* Parse a whole config file held in memory (the file reader and the fuzz
 * target share it). Sections are appended to *sections as
 * {"group": "inject-error", "id": ..., "opts": {...}} objects. */
int inj_config_parse(FILE *f, json_t *sections, struct bd_error **errp);

#endif
