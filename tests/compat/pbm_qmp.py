#!/usr/bin/env python3
"""pbm_qmp.py - mirror_qmp.py with a compact view of persistent dirty
bitmaps: the reply of query-named-block-nodes is printed as
"bitmaps NODE[NAME:count=..,gran=..,rec=..,persistent=..,inconsistent=..]"
sorted by name (QEMU lists newest first; the order is not compared here),
nodes without bitmaps left out."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mirror_qmp  # noqa: E402

_plain = mirror_qmp.show_reply


def show_reply(msg):
    ret = msg.get("return")
    if (isinstance(ret, list) and ret and isinstance(ret[0], dict) and
            "node-name" in ret[0]):
        nodes = set()
        for n in ret:
            bms = n.get("dirty-bitmaps") or []
            if not bms or n["node-name"].startswith("#"):
                continue
            items = sorted(
                "%s:count=%d,gran=%d,rec=%s,persistent=%s,inconsistent=%s" % (
                    b.get("name", "<anon>"), b["count"], b["granularity"],
                    b["recording"], b["persistent"],
                    b.get("inconsistent", False)) for b in bms)
            nodes.add("%s[%s]" % (n["node-name"], " ".join(items)))
        return "bitmaps " + " ".join(sorted(nodes))
    return _plain(msg)


mirror_qmp.show_reply = show_reply
mirror_qmp.main()
