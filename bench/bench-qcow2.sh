#!/bin/bash
# bench/bench-qcow2.sh - 4k random writes at queue depth 32 (fio, libaio,
# O_DIRECT) through a FUSE export of a qcow2 image, qemu-storage-daemon and
# blkrig serve side by side in one run (issue 7):
#   allocating   a fresh 8 GiB image: nearly every write allocates a 64 KiB
#                cluster (the run writes far fewer than its 131,072
#                clusters), so this measures allocation, COW and metadata
#                updates
#   allocated    a 1 GiB image created with preallocation=full: every
#                cluster exists, writes are plain overwrites of data
# Both daemons open the image as file (aio=native, cache.direct=on) +
# qcow2. Each case runs ROUNDS times per daemon, alternating, best kept.
#
# Environment: BLKRIG (binary), RT (seconds per fio run, 4), ROUNDS (2),
# BENCH_DIR (work directory; a file system with O_DIRECT support).
set -u
: "${BLKRIG:?}"
RT=${RT:-4}
ROUNDS=${ROUNDS:-2}
HERE=$(cd "$(dirname "$0")" && pwd)
BENCH_NAME=bench-qcow2
. "$HERE/fuse-lib.sh"

[ -f full.qcow2 ] ||
    qemu-img create -q -f qcow2 -o preallocation=full full.qcow2 1G

image() { # $1 case: the image to serve
    case $1 in
    allocating)
        qemu-img create -q -f qcow2 fresh.qcow2 8G
        echo fresh.qcow2 ;;
    allocated)
        echo full.qcow2 ;;
    esac
}

for ((r = 0; r < ROUNDS; r++)); do
    for c in allocating allocated; do
        for d in qsd blkrig; do
            img=$(image $c)
            args="--blockdev driver=file,node-name=f,filename=$img,aio=native,cache.direct=on"
            args="$args --blockdev driver=qcow2,node-name=q,file=f"
            args="$args --export type=fuse,id=e,node-name=q,mountpoint=mnt,writable=on"
            case $d in
            qsd) start qemu-storage-daemon $args || exit 1 ;;
            blkrig) start "$BLKRIG" serve $args || exit 1 ;;
            esac
            run_fio $d-$c randwrite 4k 32
            stop $d-$c
            # A clean image after every run: the daemon must have left it so.
            qemu-img check -q "$img" ||
                echo "bench-qcow2: qemu-img check failed on $img after $d"
        done
    done
done

echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs" \
     "(figures from a loaded machine are not comparable across runs)"
echo "qcow2 through FUSE, 4k randwrite qd 32, ${RT}s per run, best of $ROUNDS (IOPS)"
printf '%-12s %10s %10s %8s\n' image qsd blkrig x-qsd
for c in allocating allocated; do
    q=${R[qsd-$c,randwrite]} b=${R[blkrig-$c,randwrite]}
    printf '%-12s %10s %10s %8s\n' $c "$q" "$b" "$(ratio "$b" "$q")"
done
echo
peak_rss
