#!/bin/bash
# bench/bench-fuse.sh - fio through FUSE, side by side in one run:
#   ceiling        ../shared/bench/fuse-ceiling.c (zeroes, dropped writes)
#   qsd-null       qemu-storage-daemon exporting null-co
#   blkrig-null    blkrig serve exporting null-co
#   blkrig-dbg     blkrig serve exporting blkdebug (no rules) over null-co
#   qsd-file       qemu-storage-daemon, raw file, aio=native,cache.direct=on
#   blkrig-file    blkrig serve, the same file
#   blkrig-delay   blkdebug with a 1 ms delay rule over null-co (4k read, qd 32)
# Workloads (fio, libaio, O_DIRECT): 4k randread/randwrite at qd 32,
# 1M read/write at qd 8. Prints each figure, its ratio to the ceiling and
# to qemu-storage-daemon (null or file), and blkrig's peak RSS (VmHWM).
#
# Every stack runs ROUNDS times, interleaved, and keeps its best figures.
#
# Environment: BLKRIG, FUSE_CEILING (binaries), RT (seconds per run, 4),
# ROUNDS (3),
# BENCH_DIR (work directory; a file system with O_DIRECT support).
set -u
: "${BLKRIG:?}" "${FUSE_CEILING:?}"
RT=${RT:-4}
ROUNDS=${ROUNDS:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
BENCH_NAME=bench-fuse
. "$HERE/fuse-lib.sh"

[ -f base.img ] || {
    qemu-img create -f raw base.img 1G >/dev/null
    # Real data, so the file is allocated and reads do I/O.
    dd if=/dev/urandom of=base.img bs=1M count=1024 conv=notrunc status=none
}

WORKLOADS=("randread 4k 32" "randwrite 4k 32" "read 1M 8" "write 1M 8")

suite() { # $1 stack
    local w
    for w in "${WORKLOADS[@]}"; do
        set -- "$1" $w
        run_fio "$1" "$2" "$3" "$4"
    done
}

NULL_Q="--blockdev driver=null-co,node-name=n,size=1073741824"
FILE_B="--blockdev driver=file,node-name=f,filename=base.img,aio=native,cache.direct=on"
EXP="--export type=fuse,id=e,mountpoint=mnt,writable=on"

STACKS=()
bench_stack() { # $1 label, then the daemon command
    local label=$1
    shift
    if start "$@"; then
        suite "$label"
        stop "$label"
        [[ " ${STACKS[*]} " == *" $label "* ]] || STACKS+=("$label")
    else
        stop "$label" 2>/dev/null
    fi
}

all_stacks() {
    bench_stack ceiling "$FUSE_CEILING" mnt -f
    # The machine's floor for the delay figure: a FUSE round trip at queue
    # depth 1 (on the ceiling) plus what a 1 ms sleep really takes here
    # (SLEEP_NS, measured once below).
    if start "$FUSE_CEILING" mnt -f; then
        run_fio ceiling-qd1 randread 4k 1
        stop ceiling
    fi
    bench_stack qsd-null qemu-storage-daemon $NULL_Q $EXP,node-name=n
    bench_stack blkrig-null "$BLKRIG" serve $NULL_Q $EXP,node-name=n
    if "$BLKRIG" serve $NULL_Q --blockdev driver=blkdebug,node-name=d,image=n \
            --export type=fuse,id=e,node-name=d,mountpoint=/nonexistent 2>&1 |
            grep -q "Failed to stat"; then
        bench_stack blkrig-dbg "$BLKRIG" serve $NULL_Q \
            --blockdev driver=blkdebug,node-name=d,image=n $EXP,node-name=d
        HAVE_BLKDEBUG=1
    else
        echo "bench-fuse: blkdebug driver not built in; blkdebug stacks skipped"
        HAVE_BLKDEBUG=0
    fi
    bench_stack qsd-file qemu-storage-daemon $FILE_B $EXP,node-name=f
    bench_stack blkrig-file "$BLKRIG" serve $FILE_B $EXP,node-name=f

    DELAY=
    if [ $HAVE_BLKDEBUG = 1 ]; then
        D="--blockdev driver=blkdebug,node-name=d,image=n"
        D="$D,inject-error.0.event=none,inject-error.0.errno=0"
        D="$D,inject-error.0.iotype=read,inject-error.0.delay-ns=1000000"
        if start "$BLKRIG" serve $NULL_Q $D $EXP,node-name=d; then
            run_fio delay randread 4k 32
            stop blkrig-delay
            DELAY=${R[delay,randread]}
        fi
    fi
}

SLEEP_NS=$(python3 -c '
import ctypes, time
# The timer slack blkrig sets for its FUSE workers (PR_SET_TIMERSLACK).
ctypes.CDLL(None).prctl(29, 1000, 0, 0, 0)
n = 2000
t = time.monotonic_ns()
for _ in range(n):
    time.sleep(0.001)
print((time.monotonic_ns() - t) // n)')
for ((round = 0; round < ROUNDS; round++)); do
    all_stacks
done

echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs" \
     "(figures from a loaded machine are not comparable across runs)"
echo "fio through FUSE, ${RT}s per run, best of $ROUNDS rounds (4k: IOPS, 1M: MiB/s); ratios to the"
echo "FUSE ceiling and to qemu-storage-daemon on the same backend"
echo "(cpu/req: the daemon's CPU time per request in microseconds, user +"
echo "system, its lowest over the rounds: independent of the machine's load)"
printf '%-12s %-10s %10s %8s %8s %8s\n' stack workload figure x-ceil x-qsd cpu/req
for s in "${STACKS[@]}"; do
    for w in "${WORKLOADS[@]}"; do
        set -- $w
        v=${R[$s,$1]}
        case $s in *file) q=${R[qsd-file,$1]:-0} ;; *) q=${R[qsd-null,$1]:-0} ;; esac
        printf '%-12s %-10s %10s %8s %8s %8s\n' "$s" "$1-$2" "$v" \
            "$(ratio "$v" "${R[ceiling,$1]:-0}")" "$(ratio "$v" "$q")" \
            "${CPU[$s,$1]:--}"
    done
done
if [ -n "$DELAY" ]; then
    echo
    echo "blkdebug delay-ns=1000000 on reads, 4k randread qd 32: $DELAY IOPS" \
         "($(ratio "$DELAY" 32000) x the 32,000 IOPS a 1 ms delay allows)"
    QD1=${R[ceiling-qd1,randread]:-0}
    if [ "$QD1" -gt 0 ]; then
        FLOOR=$(awk -v s="$SLEEP_NS" -v q="$QD1" \
            'BEGIN { printf "%d", 32 / (s / 1e9 + 1 / q) }')
        echo "machine floor: a 1 ms sleep takes $((SLEEP_NS / 1000)) us here," \
             "a FUSE round trip at qd 1 $(awk -v q="$QD1" 'BEGIN { printf "%.0f", 1e6 / q }') us:" \
             "at most $FLOOR IOPS at qd 32 ($(ratio "$DELAY" "$FLOOR") x of it)"
    fi
fi
echo
peak_rss
