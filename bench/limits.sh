#!/usr/bin/env bash
# bench/limits.sh - what the resource limits (issue 12) cost a box without
# limits, as ratios boxed/unboxed measured in this one invocation, and what
# a box with limits pays for them.
#
# Runs tests/apps quotatool.exe unboxed and boxed, alternating, ROUNDS times:
#   work    a fixed CPU-bound job (WORK million loop rounds): box without
#           limits / unboxed (target <= 1.05); the broker only measures
#           such a box twice a second
#   allocs  N VirtualAlloc commit + free pairs: box without limits /
#           unboxed (target <= 1.05; the hook reads one hint), and a box with
#           a memory limit / unboxed (information: leases make most commits
#           local)
# Environment (optional): WINEPREFIX; FVM_ROOT (default C:\fvm-bench-limits);
# ROUNDS (default 3); WORK (default 2000); N (default 20000). Prints numbers
# only: the exit code says whether the benchmark ran, not whether a target
# was met.
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
WORK=${WORK:-2000}
N=${N:-20000}
export WINEDEBUG=-all
export FVM_ROOT=${FVM_ROOT:-'C:\fvm-bench-limits'}
W=build/win
FVM=$W/fvm.exe
Q=$W/apps/quotatool.exe

wine "$FVM" rm --force lfree >/dev/null 2>&1 || true
wine "$FVM" rm --force lmem >/dev/null 2>&1 || true
wine "$FVM" create lfree >/dev/null
wine "$FVM" create lmem --memory 1G >/dev/null

num() { sed -n "s/.*$1=\([0-9]*\).*/\1/p" | tr -d '\r' | head -1; }
sum_u=0; sum_b=0; a_u=0; a_b=0; a_m=0
for _ in $(seq "$ROUNDS"); do
    sum_u=$((sum_u + $(wine "$Q" work "$WORK" | num work_ms)))
    sum_b=$((sum_b + $(wine "$FVM" run --box lfree "$Q" work "$WORK" | num work_ms)))
    a_u=$((a_u + $(wine "$Q" allocs "$N" | num allocs_ms)))
    a_b=$((a_b + $(wine "$FVM" run --box lfree "$Q" allocs "$N" | num allocs_ms)))
    a_m=$((a_m + $(wine "$FVM" run --box lmem "$Q" allocs "$N" | num allocs_ms)))
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }
echo "work    unboxed ${sum_u} ms  box without limits ${sum_b} ms  ratio $(ratio "$sum_b" "$sum_u")"
echo "allocs  unboxed ${a_u} ms  box without limits ${a_b} ms  ratio $(ratio "$a_b" "$a_u")"
echo "allocs  box with memory=1G ${a_m} ms  ratio $(ratio "$a_m" "$a_u") (information)"
wine "$FVM" rm --force lfree >/dev/null 2>&1 || true
wine "$FVM" rm --force lmem >/dev/null 2>&1 || true
