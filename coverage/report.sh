#!/bin/bash
# coverage/report.sh BUILD_DIR - turn the .gcda files of a `make BUILD=cov
# check` run into coverage/coverage.info and coverage/html, print lcov's
# summary (also kept in coverage/summary.txt) and apply coverage/gate.txt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: report.sh BUILD_DIR}
rc="--config-file $here/lcovrc"

command -v lcov >/dev/null && command -v genhtml >/dev/null || {
    echo "coverage: lcov/genhtml not installed" >&2
    exit 1
}
info=$here/coverage.info
# lcov 1.16's geninfo warns about its own redefined subroutines: noise.
lcov $rc --quiet --capture --directory "$build" --base-directory . \
    --output-file "$info.raw" 2> >(grep -v 'redefined at' >&2)
patterns=()
while read -r p; do
    case $p in ''|'#'*) continue ;; esac
    patterns+=("$p")
done < "$here/exclude.txt"
lcov $rc --quiet --remove "$info.raw" "${patterns[@]}" --output-file "$info"
rm -f "$info.raw"
rm -rf "$here/html"
genhtml $rc --quiet --title blkrig --output-directory "$here/html" "$info"
lcov $rc --summary "$info" 2>&1 | grep -E '^\s+(lines|functions|branches)' \
    | tee "$here/summary.txt"
echo "coverage: report in coverage/html/index.html"

min=$(awk '$1 == "lines" { print $2 }' "$here/gate.txt")
got=$(awk '/lines/ { sub("%", "", $2); print int($2) }' "$here/summary.txt")
if [ -n "$min" ] && [ "${got:-0}" -lt "$min" ]; then
    echo "coverage: line coverage ${got}% is below the gate (${min}%)" >&2
    exit 1
fi
