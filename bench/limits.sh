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
#   io      an I/O-bound job: an 8 MiB file copied IO_ROUNDS times 4 KiB a
#           call (ReadFile/WriteFile): box without limits / unboxed (target
#           <= 1.05; the NtReadFile/NtWriteFile detours read one hint), and a
#           box with io-bandwidth=64G/s (information: what the leases cost
#           when a limit is on but never reached)
# Environment (optional): WINEPREFIX; FVM_ROOT (default C:\fvm-bench-limits);
# ROUNDS (default 3); WORK (default 2000); N (default 20000); IO_ROUNDS
# (default 10). Prints numbers
# only: the exit code says whether the benchmark ran, not whether a target
# was met.
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
WORK=${WORK:-2000}
N=${N:-20000}
IO_ROUNDS=${IO_ROUNDS:-10}
export WINEDEBUG=-all
export FVM_ROOT=${FVM_ROOT:-'C:\fvm-bench-limits'}
W=build/win
FVM=$W/fvm.exe
Q=$W/apps/quotatool.exe

wine "$FVM" rm --force lfree >/dev/null 2>&1 || true
wine "$FVM" rm --force lmem >/dev/null 2>&1 || true
wine "$FVM" create lfree >/dev/null
wine "$FVM" create lmem --memory 1G >/dev/null
wine "$FVM" rm --force lio >/dev/null 2>&1 || true
wine "$FVM" create lio --io-bandwidth 64G/s >/dev/null
# Source and destination on the prefix's C: drive, the file system the
# box's copies live on too (a boxed write lands in the box's folder).
IODIR="${WINEPREFIX:-$HOME/.wine}/drive_c/fvm-bench-io"
mkdir -p "$IODIR"
trap 'rm -rf "$IODIR"' EXIT
head -c $((8 << 20)) /dev/urandom >"$IODIR/src.bin"
SRC='C:\fvm-bench-io\src.bin'
DST='C:\fvm-bench-io\dst.bin'

num() { sed -n "s/.*$1=\([0-9]*\).*/\1/p" | tr -d '\r' | head -1; }
sum_u=0; sum_b=0; a_u=0; a_b=0; a_m=0; io_u=0; io_b=0; io_l=0
for _ in $(seq "$ROUNDS"); do
    sum_u=$((sum_u + $(wine "$Q" work "$WORK" | num work_ms)))
    sum_b=$((sum_b + $(wine "$FVM" run --box lfree "$Q" work "$WORK" | num work_ms)))
    a_u=$((a_u + $(wine "$Q" allocs "$N" | num allocs_ms)))
    a_b=$((a_b + $(wine "$FVM" run --box lfree "$Q" allocs "$N" | num allocs_ms)))
    a_m=$((a_m + $(wine "$FVM" run --box lmem "$Q" allocs "$N" | num allocs_ms)))
    io_u=$((io_u + $(wine "$Q" iowork "$SRC" "$DST" "$IO_ROUNDS" | num io_ms)))
    io_b=$((io_b + $(wine "$FVM" run --box lfree "$Q" iowork "$SRC" "$DST" "$IO_ROUNDS" | num io_ms)))
    io_l=$((io_l + $(wine "$FVM" run --box lio "$Q" iowork "$SRC" "$DST" "$IO_ROUNDS" | num io_ms)))
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }
echo "work    unboxed ${sum_u} ms  box without limits ${sum_b} ms  ratio $(ratio "$sum_b" "$sum_u")"
echo "allocs  unboxed ${a_u} ms  box without limits ${a_b} ms  ratio $(ratio "$a_b" "$a_u")"
echo "allocs  box with memory=1G ${a_m} ms  ratio $(ratio "$a_m" "$a_u") (information)"
echo "io      unboxed ${io_u} ms  box without limits ${io_b} ms  ratio $(ratio "$io_b" "$io_u")"
echo "io      box with io-bandwidth=64G/s ${io_l} ms  ratio $(ratio "$io_l" "$io_u") (information)"
wine "$FVM" rm --force lio >/dev/null 2>&1 || true
wine "$FVM" rm --force lfree >/dev/null 2>&1 || true
wine "$FVM" rm --force lmem >/dev/null 2>&1 || true
