#!/usr/bin/env python3
"""bench/bench-backup.py - backup benchmarks, one run, side by side.

1. Copy rate: blockdev-backup sync=full of a 1 GiB image full of data into
   a fresh target, raw -> raw and qcow2 -> qcow2 (files with
   cache.direct=on, aio=native on both daemons), through
   qemu-storage-daemon and blkrig serve; MiB/s (start of the command to
   BLOCK_JOB_COMPLETED) and the ratio blkrig/qsd. Best of RUNS.
2. The same backup while a guest writes 4k blocks at random (fio, queue
   depth 8) on the source: through blkrig's writable FUSE export (libaio,
   O_DIRECT); qemu-storage-daemon cannot run a backup of a node it exports
   over FUSE under writes (it hangs), so its guest writes over NBD (fio's
   libnbd engine). The guest's IOPS while the backup ran and the backup's
   rate, for each daemon. fio starts once the job runs and is stopped (SIGINT, which makes
   it report) when the job completes. Every guest write to an area not yet
   copied costs a copy-before-write, so both figures drop; the point of the
   comparison is how much.

Environment: BLKRIG (binary), BENCH_DIR (work directory, keeps the source
images between runs), RUNS (runs per daemon and case, best kept; 3).
"""
import json
import os
import signal
import subprocess
import functools
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "compat"))
import mirror_qmp  # noqa: E402
from mirror_qmp import Daemon  # noqa: E402
sys.path.insert(0, HERE)
from benchlib import enter_workdir, random_raw_image, sh  # noqa: E402

# A 1 GiB copy on a slow, loaded machine can take more than the 30 s the
# compatibility tests allow for an event.
mirror_qmp.TIMEOUT = 600.0

# Lines appear as they are measured, not at exit.
print = functools.partial(print, flush=True)  # noqa: A001

BLKRIG = os.environ["BLKRIG"]
RUNS = int(os.environ.get("RUNS", "3"))
SIZE = 1 << 30
MIB = float(1 << 20)


def blockdevs(fmt):
    args = []
    for name in ("src", "tgt"):
        args += ["--blockdev",
                 "driver=file,filename=%s.%s,node-name=%s-file,"
                 "cache.direct=on,aio=native" % (name, fmt, name),
                 "--blockdev",
                 "driver=%s,file=%s-file,node-name=%s" % (fmt, name, name)]
    return args


def new_target(fmt):
    sh("qemu-img create -q -f %s tgt.%s 1G" % (fmt, fmt))


def start_backup(d):
    r = d.command({"execute": "blockdev-backup", "arguments": {
        "job-id": "b", "device": "src", "target": "tgt", "sync": "full"}})
    if "error" in r:
        sys.exit("blockdev-backup: %s" % r["error"]["desc"])


def completed(d):
    for _, e in d.events:
        if e["event"] == "BLOCK_JOB_COMPLETED":
            if "error" in e.get("data", {}):
                sys.exit("backup failed: %s" % e["data"]["error"])
            return True
    return False


def copy_once(argv, fmt):
    new_target(fmt)
    d = Daemon(os.path.abspath("q.sock"), argv + blockdevs(fmt))
    t0 = time.monotonic()
    start_backup(d)
    d.wait_for(lambda: completed(d))
    secs = time.monotonic() - t0
    d.stop()
    return SIZE / secs / MIB


def copy_rates(daemons, fmt):
    """Best rate of each daemon; runs alternate between the daemons so
    that a slow spell of the shared machine hits both."""
    best = [0.0] * len(daemons)
    for _ in range(RUNS):
        for i, (_, argv) in enumerate(daemons):
            best[i] = max(best[i], copy_once(argv, fmt))
    return best


def guest_setup(qsd):
    """Daemon arguments and fio arguments for the guest's export."""
    if qsd:
        # qemu-storage-daemon 10.0 cannot back up a node it exports over
        # FUSE while the guest writes: the QMP monitor hangs once
        # blockdev-backup returns (and with the export in an iothread the
        # daemon dies). Its guest writes over NBD instead, through fio's
        # libnbd engine: a different transport, so compare with care.
        sock = os.path.abspath("nbd.sock")
        return (["--nbd-server", "addr.type=unix,addr.path=%s" % sock,
                 "--export", "type=nbd,id=e,node-name=src,writable=on"],
                ["--ioengine=nbd", "--uri=nbd+unix:///src?socket=%s" % sock],
                "NBD")
    if os.path.exists("mnt"):
        os.unlink("mnt")
    open("mnt", "w").close()
    return (["--export", "type=fuse,id=e,node-name=src,mountpoint=mnt,"
             "writable=on"],
            ["--filename=mnt", "--ioengine=libaio", "--direct=1"], "FUSE")


def under_guest_writes(argv, fmt, qsd):
    """(guest IOPS, backup MiB/s, transport) of the run with the best
    backup rate."""
    best = (0.0, 0.0, "")
    for _ in range(RUNS):
        new_target(fmt)
        dargs, fargs, transport = guest_setup(qsd)
        d = Daemon(os.path.abspath("q.sock"), argv + blockdevs(fmt) + dargs)
        try:
            fio = subprocess.Popen(
                ["fio", "--name=guest"] + fargs +
                ["--rw=randwrite", "--bs=4k", "--iodepth=8", "--size=1G",
                 "--time_based", "--runtime=600", "--output-format=json"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            # fio has opened the file and issues I/O before the job starts.
            time.sleep(1.0)
            t0 = time.monotonic()
            start_backup(d)
            d.wait_for(lambda: completed(d))
            secs = time.monotonic() - t0
            fio.send_signal(signal.SIGINT)
            out, err = fio.communicate(timeout=60)
            try:
                job = json.loads(out[out.index("{"):])["jobs"][0]
            except ValueError:
                sys.exit("fio: no report: %s" % err.strip())
            iops = job["write"]["iops"]
            rate = SIZE / secs / MIB
            if rate > best[1]:
                best = (iops, rate, transport)
        finally:
            d.stop()
    return best


def main():
    cleanup = enter_workdir("blkrig-bench-backup.")
    random_raw_image("src.raw")
    if not os.path.exists("src.qcow2"):
        sh("qemu-img convert -O qcow2 src.raw src.qcow2")
    daemons = (("qemu-storage-daemon", ["qemu-storage-daemon"]),
               ("blkrig serve", [BLKRIG, "serve"]))
    print("backup of 1 GiB, sync=full, best of %d (load average at start: "
          "%s on %d CPUs)" % (RUNS, " ".join(open("/proc/loadavg").read()
                                              .split()[:3]), os.cpu_count()))
    for fmt in ("raw", "qcow2"):
        rates = copy_rates(daemons, fmt)
        print("  %-5s -> %-5s  qsd %6.0f MiB/s   blkrig %6.0f MiB/s   "
              "ratio %.2f" % (fmt, fmt, rates[0], rates[1],
                              rates[1] / rates[0]))
    print("the same with 4k random guest writes (fio, qd 8) on the "
          "source, guest IOPS over the whole backup:")
    for fmt in ("raw", "qcow2"):
        res = [under_guest_writes(argv, fmt, label != "blkrig serve")
               for label, argv in daemons]
        for (label, _), (iops, rate, tr) in zip(daemons, res):
            print("  %-5s %-20s %-4s guest %7.0f IOPS   backup %6.0f MiB/s" %
                  (fmt, label, tr, iops, rate))
        print("  %-5s ratio blkrig/qsd         guest %7.2f        backup %6.2f"
              % (fmt, res[1][0] / max(res[0][0], 1e-9),
                 res[1][1] / max(res[0][1], 1e-9)))
    cleanup()


if __name__ == "__main__":
    main()
