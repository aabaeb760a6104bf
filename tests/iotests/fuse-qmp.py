#!/usr/bin/env python3
# tests/iotests/fuse-qmp.py SOCKET COMMAND... - a QMP client for the serve
# tests: negotiates capabilities (silently), sends each COMMAND (JSON text)
# and prints every line received until its reply, keys sorted and event
# timestamps replaced by "TS", so the output of blkrig serve and
# qemu-storage-daemon can be compared. Exits 0 unless the connection broke.
import json
import socket
import sys


def show(msg):
    if "timestamp" in msg:
        msg["timestamp"] = "TS"
    print(json.dumps(msg, sort_keys=True))


def main():
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    f = s.makefile("rw")
    greeting = json.loads(f.readline())
    assert "QMP" in greeting
    cmds = ['{"execute": "qmp_capabilities"}'] + sys.argv[2:]
    for i, c in enumerate(cmds):
        f.write(c + "\n")
        f.flush()
        while True:
            line = f.readline()
            if not line:
                print("(connection closed)")
                return 1
            msg = json.loads(line)
            if i > 0:
                show(msg)
            if "return" in msg or "error" in msg:
                break
    return 0


sys.exit(main())
