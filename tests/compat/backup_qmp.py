#!/usr/bin/env python3
"""tests/compat/backup_qmp.py - mirror_qmp.py (same script language and
transcript) plus a compact view of dirty bitmaps: the reply of
query-named-block-nodes is printed as "bitmaps NODE[NAME:count=..,
gran=..,busy=..,rec=..] ...", nodes without bitmaps left out, anonymous
bitmaps (a running backup's successor) named <anon>, generated
nodes (a backup's filter) left out, so the bitmap counts
of qemu-storage-daemon and blkrig serve can be compared line by line."""
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
            # QEMU lists the block-copy bitmaps of a backup's filter
            # (#blockNNN); blkrig keeps them private (docs/compat.md).
            if not bms or n["node-name"].startswith("#"):
                continue
            # Sorted by name, then (anonymous ones) recording before the
            # count, so a count that depends on timing cannot reorder them.
            items = [t for _, _, t in sorted((
                b.get("name", "<anon>"), b["recording"],
                "%s:count=%d,gran=%d,busy=%s,rec=%s" % (
                    b.get("name", "<anon>"), b["count"], b["granularity"],
                    b["busy"], b["recording"])) for b in bms)]
            nodes.add("%s[%s]" % (n["node-name"], " ".join(items)))
        return "bitmaps " + " ".join(sorted(nodes))
    return _plain(msg)


mirror_qmp.show_reply = show_reply
mirror_qmp.main()
