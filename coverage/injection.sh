#!/bin/bash
# coverage/injection.sh TRACE - injection coverage of a test-suite run.
#
# TRACE is the file the suite appended to through BLKRIG_INJECT_TRACE
# (injector/trace.h): "event", "inject" and "policy" lines. Prints which of
# the 48 blkdebug events were raised and which had a fault injected on
# them, which of the 6 iotypes had a fault injected, and which job x
# policy x side x errno combinations reached a job's error policy, as a
# compact table; the full table goes to coverage/injection.txt.
# Informational: it never fails the build (the line/branch gate does).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
trace=${1:?usage: injection.sh TRACE}
out=$here/injection.txt
[ -f "$trace" ] || : > "$trace"

events=$(sed -n 's/^BD_EV([A-Z0-9_]*, "\([a-z0-9_]*\)").*/\1/p' \
             "$root/injector/events.def")
iotypes="read write write-zeroes discard flush block-status"
# The policies a user can set per side (auto is the stream job's internal
# default, not a user choice) and the two errnos whose handling differs.
policies="report ignore enospc stop"
sides="source target"
errnos="5:EIO 28:ENOSPC"
jobs="backup mirror"

awk -v events="$events" -v iotypes="$iotypes" -v policies="$policies" \
    -v sides="$sides" -v errnos="$errnos" -v jobs="$jobs" '
function kv(key,   i, f) {
    for (i = 2; i <= NF; i++) {
        split($i, f, "=")
        if (f[1] == key) return substr($i, length(key) + 2)
    }
    return ""
}
function mark(n) { return n > 0 ? sprintf("%d", n) : "-" }
$1 == "event"  { raised[$2]++ }
$1 == "inject" { injev[kv("event")]++; injio[kv("iotype")]++ }
$1 == "policy" { pol[kv("job") " " kv("policy") " " kv("side") " " kv("errno")]++ }
END {
    ne = split(events, ev, "\n")
    ni = split(iotypes, io, " ")
    np = split(policies, po, " ")
    ns = split(sides, sd, " ")
    nr = split(errnos, er, " ")
    nj = split(jobs, jb, " ")

    # Events: raised (seen by a blkdebug node) and injected-at.
    r = 0; j = 0
    for (i = 1; i <= ne; i++) { if (raised[ev[i]]) r++; if (injev[ev[i]]) j++ }
    printf "injection coverage: events raised %d/%d, events with a fault %d/%d\n", r, ne, j, ne
    printf "  %-26s %8s %8s\n", "event", "raised", "faults"
    # "none" is a value of the enum but never raised: it marks rules that
    # match plain requests, so only its fault count means anything.
    for (i = 1; i <= ne; i++)
        printf "  %-26s %8s %8s\n", ev[i] == "none" ? "none (plain requests)" : ev[i],
            ev[i] == "none" ? "n/a" : mark(raised[ev[i]]), mark(injev[ev[i]])

    j = 0
    for (i = 1; i <= ni; i++) if (injio[io[i]]) j++
    printf "injection coverage: iotypes with a fault %d/%d\n", j, ni
    for (i = 1; i <= ni; i++) printf "  %-14s %8s\n", io[i], mark(injio[io[i]])

    tot = 0; hit = 0
    printf "injection coverage: job x policy x side x errno (error-policy decisions)\n"
    printf "  %-7s %-7s", "job", "policy"
    for (s = 1; s <= ns; s++) for (e = 1; e <= nr; e++) {
        split(er[e], en, ":"); printf " %14s", sd[s] "/" en[2]
    }
    printf "\n"
    for (k = 1; k <= nj; k++) for (p = 1; p <= np; p++) {
        printf "  %-7s %-7s", jb[k], po[p]
        for (s = 1; s <= ns; s++) for (e = 1; e <= nr; e++) {
            split(er[e], en, ":")
            n = pol[jb[k] " " po[p] " " sd[s] " " en[1]]
            tot++; if (n) hit++
            printf " %14s", mark(n)
        }
        printf "\n"
    }
    printf "injection coverage: policy combinations exercised %d/%d\n", hit, tot
}' "$trace" > "$out"

# Compact form on the terminal: the summary lines, the missing items and
# the policy table; injection.txt has the per-event counts.
grep '^injection coverage: events' "$out"
missing=$(awk '/^  [a-z0-9_]+ +- +- *$/ { printf "%s ", $1 }' "$out")
[ -n "$missing" ] && echo "  never raised: $missing"
noinj=$(awk '/^  [a-z0-9_]+ +[0-9]+ +- *$/ { printf "%s ", $1 }' "$out")
[ -n "$noinj" ] && echo "  raised but never faulted: $noinj"
sed -n '/^injection coverage: iotypes/,$p' "$out"
echo "coverage: injection report in coverage/injection.txt"
