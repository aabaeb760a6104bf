# bench/fuse-lib.sh - shared by the FUSE benchmarks (sourced): start a
# daemon that mounts $W/mnt, stop it recording blkrig's peak RSS, run one
# fio workload on the mountpoint, print ratios. The caller sets RT
# (seconds per fio run) and names itself in BENCH_NAME; sourcing this file
# makes the work directory W (BENCH_DIR, or a temporary one removed at
# exit) current and checks for the tools every FUSE benchmark runs.

W=${BENCH_DIR:-$(mktemp -d "/tmp/blkrig-$BENCH_NAME.XXXXXX")}
mkdir -p "$W"
cd "$W" || exit 1
for c in fio qemu-storage-daemon qemu-img; do
    command -v $c >/dev/null || { echo "$BENCH_NAME: $c not installed"; exit 1; }
done

PID=
cleanup() {
    [ -n "$PID" ] && kill -KILL "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    grep -q " $W/mnt fuse" /proc/mounts && umount -l "$W/mnt"
    [ -z "${BENCH_DIR:-}" ] && rm -rf "$W"
}
trap cleanup EXIT

declare -A R     # R[stack,workload] = figure (IOPS for 4k, MiB/s for 1M)
declare -A CPU   # CPU[stack,workload] = daemon CPU per request, microseconds
declare -A HWM   # HWM[label] = the highest VmHWM (kB) seen over the runs

start() { # command...; waits for the mount
    rm -f mnt; touch mnt
    "$@" >daemon.log 2>&1 &
    PID=$!
    for ((i = 0; i < 200; i++)); do
        grep -q " $W/mnt fuse" /proc/mounts && stat mnt >/dev/null 2>&1 &&
            return 0
        kill -0 $PID 2>/dev/null || break
        sleep 0.05
    done
    echo "${BENCH_NAME:-bench}: could not start: $*"; cat daemon.log
    return 1
}

stop() { # $1 label: records peak RSS for blkrig stacks
    local hwm
    hwm=$(awk '/VmHWM/ {print $2}' /proc/$PID/status 2>/dev/null)
    case $1 in
    blkrig*) [ "${hwm:-0}" -gt "${HWM[$1]:-0}" ] && HWM[$1]=$hwm ;;
    esac
    kill -TERM $PID; wait $PID 2>/dev/null
    PID=
}

# CPU time (clock ticks, user + system) the daemon has used so far.
daemon_ticks() {
    awk '{ print $14 + $15 }' /proc/$PID/stat 2>/dev/null || echo 0
}

run_fio() { # $1 stack, $2 rw, $3 bs, $4 depth
    local out v t0 t1 cpu
    t0=$(daemon_ticks)
    out=$(fio --name=b --filename=mnt --rw=$2 --bs=$3 --iodepth=$4 \
        --ioengine=libaio --direct=1 --size=1G --runtime=$RT --time_based \
        --group_reporting --output-format=terse --terse-version=3 2>/dev/null)
    # terse v3: read bw KiB/s field 7, iops 8; write bw 48, iops 49.
    v=$(awk -F';' -v rw=$2 -v bs=$3 '{
        if (rw ~ /read/) { bw = $7; iops = $8 } else { bw = $48; iops = $49 }
        if (bs == "4k") printf "%d", iops; else printf "%.0f", bw / 1024 }' \
        <<<"$out")
    # The daemon's CPU per request (microseconds) does not depend on how
    # much of the machine the run got: the figure to compare when the
    # throughputs are noisy.
    t1=$(daemon_ticks)
    cpu=$(awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v v="${v:-0}" \
        -v rt=$RT 'BEGIN {
            n = v * rt;   # requests: IOPS at 4k, MiB/s at 1M (1 MiB each)
            if (n > 0) printf "%.1f", t / hz * 1e6 / n; else printf "-" }')
    # Several rounds keep the best figure: noise on a shared machine only
    # ever lowers a throughput. CPU per request: the lowest.
    case ${CPU[$1,$2]:--} in
    -) CPU[$1,$2]=$cpu ;;
    *) awk -v a="$cpu" -v b="${CPU[$1,$2]}" 'BEGIN { exit !(a != "-" && a + 0 < b + 0) }' &&
        CPU[$1,$2]=$cpu ;;
    esac
    v=${v:-0}
    [ "$v" -gt "${R[$1,$2]:-0}" ] && R[$1,$2]=$v
    R[$1,$2]=${R[$1,$2]:-0}
}

peak_rss() { # one line: label=kB for every blkrig stack
    local l out=
    for l in "${!HWM[@]}"; do out="$out $l=${HWM[$l]} kB"; done
    echo "blkrig peak RSS:${out:- (none)}"
}

ratio() { # a b
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'
}
