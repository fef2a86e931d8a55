#!/usr/bin/env bash
# bench/quota.sh - what a storage quota costs the write path: ns per
# growing append (appendbench.exe), unboxed, boxed without a quota and boxed
# with one (each append reserved; the broker is asked once per lease).
#
# Environment (all optional): WINEPREFIX, FVM_ROOT (default C:\fvm-bench-quota),
# N appends per run (default 20000), SIZE bytes each (default 100), ROUNDS (default 3).
# Prints numbers only.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20000}
SIZE=${SIZE:-100}
ROUNDS=${ROUNDS:-3}
. scripts/env.sh
export WINEDEBUG=-all
export FVM_ROOT=${FVM_ROOT:-'C:\fvm-bench-quota'}
W=build/win
AB=$W/bench/appendbench.exe
FILE='C:\fvm-bench-quota-file.bin'
wine $W/fvm.exe rm --force qnone >/dev/null 2>&1 || true
wine $W/fvm.exe rm --force qsome >/dev/null 2>&1 || true
wine $W/fvm.exe create qnone >/dev/null
wine $W/fvm.exe create qsome --quota 10G >/dev/null
best() { sort -n | head -1; }
unboxed=$(for i in $(seq "$ROUNDS"); do wine $AB "$FILE" "$N" "$SIZE"; done | best)
none=$(for i in $(seq "$ROUNDS"); do wine $W/fvm.exe run --box qnone -- $AB "$FILE" "$N" "$SIZE"; done | best)
some=$(for i in $(seq "$ROUNDS"); do wine $W/fvm.exe run --box qsome -- $AB "$FILE" "$N" "$SIZE"; done | best)
echo "append of $SIZE bytes, ns (best of $ROUNDS x $N): unboxed $unboxed, boxed $none, boxed with quota $some"
awk -v u="$unboxed" -v n="$none" -v s="$some" 'BEGIN { printf "ratios: boxed/unboxed %.2f, quota/boxed %.2f\n", n/u, s/n }'
wine $W/fvm.exe rm --force qnone >/dev/null
wine $W/fvm.exe rm --force qsome >/dev/null
