#!/bin/sh
# scripts/qemu72.sh - fetch QEMU 7.2's qemu-storage-daemon into the build
# tree and print its path.
#
#   scripts/qemu72.sh [DIR]      DIR defaults to build/qemu-7.2
#
# The compat tests 270-277 and 350-354 compare `blkrig serve` with it
# (docs/compat.md, "QEMU 7.2"). QEMU 10.0 (the oracle the specs were
# measured with) is installed system-wide, so 7.2 cannot be installed next
# to it with apt; instead Debian's qemu-system-common 7.2 package is
# downloaded with `apt-get download` and unpacked with `dpkg-deb -x` into
# DIR/root, which nothing else looks at. The binary uses the same shared
# libraries as 10.0's.
#
# Does nothing (but print the path) when DIR already holds a working 7.2.
# Exits 1 with a message on stderr when it cannot: no apt, no 7.2 in the
# package lists, no network for the download. `make check` never runs
# this; the 7.2 tests skip and say so when DIR is empty. .ci/run runs it.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$top/build/qemu-7.2}
qsd=$dir/root/usr/bin/qemu-storage-daemon

die() {
    echo "qemu72: $*" >&2
    exit 1
}

is72() {
    [ -x "$qsd" ] && "$qsd" --version 2>/dev/null | head -n 1 |
        grep -q '^qemu-storage-daemon version 7\.2\.'
}

if is72; then
    echo "$qsd"
    exit 0
fi

for c in apt-get apt-cache dpkg-deb; do
    command -v "$c" >/dev/null 2>&1 || die "$c not found (needs Debian's apt)"
done

# Every 7.2 version apt knows, newest first (bookworm and
# bookworm-security may both have one).
versions() {
    apt-cache madison qemu-system-common 2>/dev/null |
        awk -F'|' '{ gsub(/ /, "", $2); print $2 }' |
        grep -E '^1:7\.2[+.~-]' | sort -u -r -V
}
list=$(versions)
if [ -z "$list" ] && [ "$(id -u)" = 0 ]; then
    # Stale or missing package lists: refresh once.
    apt-get update -q >/dev/null 2>&1 || true
    list=$(versions)
fi
[ -n "$list" ] ||
    die "apt knows no qemu-system-common 7.2 (Debian bookworm's); run apt-get update?"

mkdir -p "$dir"
dl=$dir/download
rm -rf "$dl" "$dir/root.new"
mkdir -p "$dl"
got=""
for v in $list; do
    # apt-get download writes into the current directory. As root it
    # warns that the _apt user cannot write there; harmless.
    if (cd "$dl" && apt-get download -q "qemu-system-common=$v") \
            >"$dir/download.log" 2>&1; then
        got=$v
        break
    fi
done
if [ -z "$got" ]; then
    sed 's/^/qemu72:   /' "$dir/download.log" >&2
    rm -rf "$dl"
    die "apt-get download qemu-system-common failed for: $(echo $list) (no network?)"
fi
deb=$(ls "$dl"/*.deb)
dpkg-deb -x "$deb" "$dir/root.new" || die "dpkg-deb -x $deb failed"
rm -rf "$dir/root" "$dl" "$dir/download.log"
mv "$dir/root.new" "$dir/root"
if ! is72; then
    "$qsd" --version >&2 || true
    die "$qsd ($got) does not run here (missing shared libraries? install QEMU 10.0's packages first)"
fi
echo "qemu72: unpacked qemu-system-common $got" >&2
echo "$qsd"
