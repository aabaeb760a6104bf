#!/usr/bin/env python3
"""tests/compat/mirror_qmp.py - drive a storage daemon (qemu-storage-daemon
or `blkrig serve`) through a QMP script and print a transcript that does
not depend on timing, so the same script can be compared between the two
daemons and against a golden file.

usage: mirror_qmp.py SOCKET SCRIPT -- DAEMON ARGS...

The daemon is started with the arguments plus a QMP monitor on SOCKET and
stopped at the end. Script lines:
  {"execute": ...}        send a command; print "> cmd" and "< reply"
  wait EVENT [ID]         wait for one more EVENT (for job ID) than waited
                          for so far
  status ID STATUS        wait until job ID reached STATUS
  shell CMD               run CMD (sh -c) now; print "$ CMD", its output
                          and "[exit=N]"
  bg CMD                  start CMD in the background (guest I/O during a
                          job); its output is printed by the next "join"
  join                    wait for the background commands, print them
  expect ID FIELD VALUE   poll query-block-jobs until job ID's FIELD equals
                          VALUE (JSON); print "ID FIELD=VALUE"
  export N NODE           a writable export eN of NODE for guest I/O: NBD
                          (qemu-storage-daemon, whose writable FUSE exports
                          cannot coexist with a mirror) or FUSE on mN
                          (blkrig serve)
  gwrite N OFF            the guest writes 4 KiB of 0x5a at OFF through eN
  # ...                   comment (printed)
"@DIR@" in a line stands for the daemon's directory (absolute paths such
as FUSE mountpoints); the transcript keeps "@DIR@".
At the end every job's events are printed in order, one line per job.
Transient pairs (paused/running, standby/ready with no command between
them: internal drains) are dropped, as specs/jobs.md §1.2 allows. Reply
members that depend on timing ("busy", the progress of a running job) are
dropped.
"""
import json
import os
import socket
import subprocess
import sys
import time

TIMEOUT = 30.0


class Daemon:
    def __init__(self, sock_path, argv):
        if os.path.exists(sock_path):
            os.unlink(sock_path)
        self.proc = subprocess.Popen(
            argv + ["--chardev",
                    "socket,id=mon0,path=%s,server=on,wait=off" % sock_path,
                    "--monitor", "chardev=mon0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + TIMEOUT
        self.sock = socket.socket(socket.AF_UNIX)
        while True:
            try:
                self.sock.connect(sock_path)
                break
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    err = self.proc.stderr.read().decode()
                    sys.exit("daemon did not start: " + err.strip())
                time.sleep(0.02)
        self.buf = b""
        self.events = []       # (command index, event dict)
        self.ncmd = 0
        self.read()            # greeting
        self.command({"execute": "qmp_capabilities"})

    def read(self, deadline=None):
        while b"\n" not in self.buf:
            if deadline:
                self.sock.settimeout(max(0.01, deadline - time.time()))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return None
            if not data:
                sys.exit("daemon closed the monitor")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def pump(self, deadline):
        msg = self.read(deadline)
        if msg is not None and "event" in msg:
            self.events.append((self.ncmd, msg))
        return msg

    def command(self, cmd):
        self.ncmd += 1
        self.sock.sendall((json.dumps(cmd) + "\n").encode())
        deadline = time.time() + TIMEOUT
        while True:
            msg = self.read(deadline)
            if msg is None:
                sys.exit("no reply to %s" % json.dumps(cmd))
            if "event" in msg:
                self.events.append((self.ncmd, msg))
                continue
            return msg

    def wait_for(self, pred):
        deadline = time.time() + TIMEOUT
        while not pred():
            if time.time() > deadline:
                sys.exit("timed out; events: %s" %
                         [e["event"] for _, e in self.events])
            self.pump(deadline)

    def stop(self):
        try:
            self.command({"execute": "quit"})
        except SystemExit:
            pass
        try:
            self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.sock.close()


def job_of(ev):
    d = ev.get("data", {})
    return d.get("id", d.get("device"))


def show_reply(msg):
    if "error" in msg:
        return "error %s: %s" % (msg["error"]["class"], msg["error"]["desc"])
    ret = msg.get("return")
    if isinstance(ret, list):
        for item in ret:
            if isinstance(item, dict):
                item.pop("busy", None)
                if item.get("status") == "running":
                    # A running copy's progress depends on timing.
                    item.pop("offset", None)
                    item.pop("current-progress", None)
    return "return " + json.dumps(ret, sort_keys=True)


def show_event(ev):
    name = ev["event"]
    d = ev.get("data", {})
    if name == "JOB_STATUS_CHANGE":
        return d["status"]
    if name == "BLOCK_JOB_ERROR":
        return "ERROR(%s,%s)" % (d["operation"], d["action"])
    if name == "BLOCK_JOB_PENDING":
        return "PENDING"
    if name == "BLOCK_JOB_CANCELLED":
        # How far a cancelled copy got depends on timing.
        return "CANCELLED"
    parts = ["len=%d" % d["len"], "offset=%d" % d["offset"]]
    if d.get("speed"):
        parts.append("speed=%d" % d["speed"])
    if "error" in d:
        parts.append("error=%s" % d["error"])
    return "%s(%s)" % (name.replace("BLOCK_JOB_", ""), ",".join(parts))


def drop_transient(seq):
    """seq: [(cmd index, event)] of one job."""
    out = []
    i = 0
    while i < len(seq):
        if i + 1 < len(seq):
            (c1, e1), (c2, e2) = seq[i], seq[i + 1]
            pair = (show_event(e1), show_event(e2))
            if c1 == c2 and pair in (("paused", "running"),
                                     ("standby", "ready")):
                i += 2
                continue
        out.append(seq[i])
        i += 1
    return out


def probe(sock_path, argv):
    """Exit 0 when the daemon offers the mirror and job commands."""
    d = Daemon(sock_path, argv)
    names = {c["name"] for c in
             d.command({"execute": "query-commands"}).get("return", [])}
    d.stop()
    need = {"blockdev-mirror", "job-complete", "job-cancel", "query-jobs"}
    sys.exit(0 if need <= names else 1)


def run_shell(cmd):
    p = subprocess.run(["sh", "-c", cmd], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=300)
    return p.stdout.decode(), p.returncode


def show_shell(cmd, out, rc):
    print("$ " + cmd)
    if out:
        print(out, end="" if out.endswith("\n") else "\n")
    print("[exit=%d]" % rc)


def export(d, n, node, here, qemu):
    if qemu:
        if not getattr(d, "nbd", False):
            d.command({"execute": "nbd-server-start", "arguments": {
                "addr": {"type": "unix",
                         "data": {"path": here + "/nbd.sock"}}}})
            d.nbd = True
        args = {"type": "nbd", "id": "e" + n, "node-name": node,
                "writable": True, "name": "e" + n}
    else:
        open(here + "/m" + n, "a").close()
        args = {"type": "fuse", "id": "e" + n, "node-name": node,
                "writable": True, "mountpoint": here + "/m" + n}
    r = d.command({"execute": "block-export-add", "arguments": args})
    print("export e%s of %s: %s" % (n, node, show_reply(r)))


def gwrite(n, off, here, qemu):
    if qemu:
        cmd = ("qemu-io -f raw -c 'write -P 0x5a %d 4k' "
               "'nbd+unix:///e%s?socket=%s/nbd.sock'" % (off, n, here))
    else:
        cmd = ("head -c 4096 /dev/zero | tr '\\0' Z | dd of=%s/m%s bs=4k "
               "seek=%d count=1 oflag=direct conv=notrunc status=none"
               % (here, n, off // 4096))
    out, rc = run_shell(cmd)
    print("guest write %d to e%s: exit=%d" % (off, n, rc))
    if rc:
        print(out, end="")


def main():
    sep = sys.argv.index("--")
    if sys.argv[1] == "--probe":
        probe(sys.argv[2], sys.argv[sep + 1:])
    sock_path, script = sys.argv[1], sys.argv[2]
    d = Daemon(sock_path, sys.argv[sep + 1:])
    waited = {}
    background = []
    qemu = "qemu-storage-daemon" in os.path.basename(sys.argv[sep + 1])
    try:
        here = os.getcwd()
        for line in open(script):
            line = line.strip()
            shown = line
            line = line.replace("@DIR@", here)
            if not line:
                continue
            if line.startswith("#"):
                print(line)
            elif line.startswith("{"):
                cmd = json.loads(line)
                print("> " + json.dumps(json.loads(shown), sort_keys=True))
                print("< " + show_reply(d.command(cmd)))
            elif line.startswith("export "):
                _, n, node = line.split()
                export(d, n, node, here, qemu)
            elif line.startswith("gwrite "):
                _, n, off = line.split()
                gwrite(n, int(off), here, qemu)
            elif line.startswith("shell "):
                out, rc = run_shell(line[6:])
                show_shell(shown[6:], out, rc)
            elif line.startswith("bg "):
                background.append((line[3:], subprocess.Popen(
                    ["sh", "-c", line[3:]], stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT)))
            elif line.startswith("expect "):
                _, jid, field, value = line.split(None, 3)
                want = json.loads(value)
                deadline = time.time() + TIMEOUT
                while True:
                    jobs = d.command({"execute": "query-block-jobs"})
                    got = [j.get(field) for j in jobs.get("return", [])
                           if j.get("device") == jid]
                    if got and got[0] == want:
                        break
                    if time.time() > deadline:
                        sys.exit("%s %s stayed %s" % (jid, field, got))
                    time.sleep(0.01)
                print("%s %s=%s" % (jid, field, value))
            elif line == "join":
                for cmd, p in background:
                    out = p.communicate(timeout=300)[0].decode()
                    show_shell(cmd, out, p.returncode)
                background = []
            elif line.startswith("wait "):
                words = line.split()
                name = words[1]
                jid = words[2] if len(words) > 2 else None
                key = (name, jid)
                waited[key] = waited.get(key, 0) + 1
                want = waited[key]

                def seen():
                    n = sum(1 for _, e in d.events if e["event"] == name and
                            (jid is None or job_of(e) == jid))
                    return n >= want
                d.wait_for(seen)
            elif line.startswith("status "):
                _, jid, st = line.split()

                def reached():
                    return any(e["event"] == "JOB_STATUS_CHANGE" and
                               job_of(e) == jid and
                               e["data"]["status"] == st
                               for _, e in d.events)
                d.wait_for(reached)
            else:
                sys.exit("bad script line: " + line)
    finally:
        for _, p in background:
            p.kill()
            p.wait()
        d.stop()
    jobs = []
    for _, e in d.events:
        j = job_of(e)
        if j is not None and j not in jobs and e["event"] != "BLOCK_EXPORT_DELETED":
            jobs.append(j)
    for j in jobs:
        seq = [(c, e) for c, e in d.events
               if job_of(e) == j and e["event"] != "BLOCK_EXPORT_DELETED"]
        print("events %s: %s" % (j, " ".join(show_event(e) for _, e
                                              in drop_transient(seq))))


if __name__ == "__main__":
    main()
