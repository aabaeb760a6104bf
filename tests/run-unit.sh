#!/bin/bash
# tests/run-unit.sh BUILD_DIR BIN... - run every cmocka unit-test binary,
# print one summary line each, fail if any failed. Output of a failing
# binary is shown in full.
set -u
shift
fail=0
total=0
for bin in "$@"; do
    total=$((total + 1))
    name=$(basename "$bin")
    out=$("$bin" 2>&1)
    rc=$?
    if [ $rc -ne 0 ]; then
        echo "FAIL  unit/$name (exit $rc)"
        echo "$out" | sed 's/^/    /'
        fail=$((fail + 1))
    else
        n=$(echo "$out" | grep -c '^\[       OK \]\|^ok ')
        echo "ok    unit/$name ($n tests)"
    fi
done
echo "unit: $((total - fail))/$total binaries passed"
[ $fail -eq 0 ]
