#!/usr/bin/env python3
"""bench/bench-mirror.py - mirror benchmarks, one run, side by side.

1. Copy rate: blockdev-mirror sync=full of a 1 GiB raw image full of data
   (cache.direct=on on both nodes) until BLOCK_JOB_READY, through
   qemu-storage-daemon and blkrig serve; MiB/s and the ratio blkrig/qsd.
2. Guest latency: 4k random writes at queue depth 1 (fio, O_DIRECT) through
   blkrig's FUSE export of the source, without a job, and while a READY
   mirror runs in background and in write-blocking mode; mean and p99 in
   microseconds. (qemu-storage-daemon cannot mirror a node exported
   writable over FUSE, see docs/compat.md, so it has no column here.)

Environment: BLKRIG (binary), BENCH_DIR (work directory), RUNS (copy runs
per daemon, best is kept; 3), RT (seconds per fio run; 5).
"""
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "compat"))
from mirror_qmp import Daemon  # noqa: E402
sys.path.insert(0, HERE)
from benchlib import enter_workdir, random_raw_image, sh  # noqa: E402

BLKRIG = os.environ["BLKRIG"]
RUNS = int(os.environ.get("RUNS", "3"))
RT = int(os.environ.get("RT", "5"))
SIZE = 1 << 30


def blockdevs(extra=""):
    return ["--blockdev", "driver=file,filename=src.img,node-name=src-file,"
            "cache.direct=on" + extra,
            "--blockdev", "driver=raw,file=src-file,node-name=src",
            "--blockdev", "driver=file,filename=tgt.img,node-name=tgt-file,"
            "cache.direct=on",
            "--blockdev", "driver=raw,file=tgt-file,node-name=tgt"]


def wait_event(d, name):
    d.wait_for(lambda: any(e["event"] == name for _, e in d.events))


def copy_rate(argv):
    best = 0.0
    for _ in range(RUNS):
        sh("qemu-img create -q -f raw tgt.img 1G")
        d = Daemon(os.path.abspath("q.sock"), argv + blockdevs())
        t0 = time.monotonic()
        r = d.command({"execute": "blockdev-mirror", "arguments": {
            "job-id": "m", "device": "src", "target": "tgt",
            "sync": "full"}})
        if "error" in r:
            sys.exit("blockdev-mirror: %s" % r["error"]["desc"])
        wait_event(d, "BLOCK_JOB_READY")
        secs = time.monotonic() - t0
        d.command({"execute": "job-cancel", "arguments": {"id": "m"}})
        d.stop()
        best = max(best, SIZE / secs / (1 << 20))
    return best


def fio_latency():
    out = subprocess.run(
        "fio --name=lat --filename=mnt --ioengine=libaio --direct=1 "
        "--rw=randwrite --bs=4k --iodepth=1 --size=256M --time_based "
        "--runtime=%d --output-format=json" % RT,
        shell=True, capture_output=True, text=True, check=True).stdout
    w = json.loads(out)["jobs"][0]["write"]["clat_ns"]
    return w["mean"] / 1000.0, w["percentile"]["99.000000"] / 1000.0


def latency(mode):
    sh("qemu-img create -q -f raw tgt.img 1G")
    open("mnt", "a").close()
    d = Daemon(os.path.abspath("q.sock"), [BLKRIG, "serve"] + blockdevs() +
               ["--export", "type=fuse,id=e,node-name=src,mountpoint=mnt,"
                "writable=on"])
    try:
        if mode:
            d.command({"execute": "blockdev-mirror", "arguments": {
                "job-id": "m", "device": "src", "target": "tgt",
                "sync": "full", "copy-mode": mode}})
            wait_event(d, "BLOCK_JOB_READY")
        return fio_latency()
    finally:
        d.stop()


def main():
    cleanup = enter_workdir("blkrig-bench-mirror.")
    random_raw_image("src.img")
    qsd = copy_rate(["qemu-storage-daemon"])
    ours = copy_rate([BLKRIG, "serve"])
    print("mirror 1 GiB, sync=full, until READY (best of %d):" % RUNS)
    print("  qemu-storage-daemon  %8.0f MiB/s" % qsd)
    print("  blkrig serve         %8.0f MiB/s   ratio %.2f" %
          (ours, ours / qsd))
    print("guest 4k randwrite qd1 through FUSE (blkrig), %d s each:" % RT)
    for label, mode in (("no job", None), ("background", "background"),
                        ("write-blocking", "write-blocking")):
        mean, p99 = latency(mode)
        print("  %-15s mean %7.1f us   p99 %7.1f us" % (label, mean, p99))
    cleanup()


if __name__ == "__main__":
    main()
