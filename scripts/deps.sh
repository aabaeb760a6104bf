#!/bin/sh
# scripts/deps.sh - install the Debian packages blkrig needs to build and
# test, when they are missing. The one place set-up happens: `make` runs it
# (once per machine, through build/.deps-ok), so the README's two commands
# work on a fresh Debian machine.
#
# Needs root (or sudo) only when something is missing. QEMU's tools, the
# compatibility oracle, are not installed here: CI installs them with
# ../shared/tools/install-qemu-oracle.sh, and the compat tests skip (and
# say so) when they are absent.
set -eu

PKGS="gcc make pkg-config fuse3 libfuse3-dev libaio-dev libcmocka-dev \
libjansson-dev zlib1g-dev lcov fio clang"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

echo "deps: installing missing packages:$missing"
if [ "$(id -u)" = 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "deps: missing packages:$missing; run as root or install them" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null 2>&1 || true
# shellcheck disable=SC2086
if ! $SUDO apt-get install -y -q $missing >/dev/null; then
    echo "deps: apt-get install failed for:$missing" >&2
    exit 1
fi
echo "deps: done"
