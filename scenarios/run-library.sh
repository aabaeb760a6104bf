#!/bin/sh
# scenarios/run-library.sh - the scenario library, as `make check` runs it.
# BLKRIG is the binary under test; extra arguments go to `blkrig run`.
set -eu
: "${BLKRIG:?}"
cd "$(dirname "$0")/.."
exec "$BLKRIG" run -j 2 "$@" scenarios/cases
