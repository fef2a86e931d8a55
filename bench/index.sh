#!/usr/bin/env bash
# bench/index.sh - what box index writes cost, as a ratio boxed/unboxed
# measured in this one invocation (issue 17.7: the broker is the index's only
# writer, so every change is a request on the control pipe).
#
# filebench.exe churn DIR N: N new files in a host folder, each created
# (16 bytes), renamed and deleted; in a box that is three index changes per
# file. Run unboxed and boxed, ABAB, ROUNDS times; prints the medians and
# the ratio.
#
# Environment (all optional):
#   WINEPREFIX   Wine prefix (default: $HOME/.cache/fvm/wineprefix)
#   W            the build to measure (default build/win: fvm.exe, its broker and fvm.dll)
#   FILEBENCH    filebench.exe to run (default build/win/bench/filebench.exe)
#   FVM_ROOT     where the bench box lives (default: C:\fvm-bench-index, private)
#   ROUNDS       unboxed/boxed rounds (default 5)
#   N            files per run (default 400)
#   BENCH_CPU    CPU to pin everything to with taskset (default 0; "none" = no pinning)
set -euo pipefail

cd "$(dirname "$0")/.."
. scripts/env.sh
export WINEDEBUG=-all
export FVM_ROOT=${FVM_ROOT:-'C:\fvm-bench-index'}
W=${W:-build/win}
FILEBENCH=${FILEBENCH:-build/win/bench/filebench.exe}
ROUNDS=${ROUNDS:-5}
N=${N:-400}
BENCH_CPU=${BENCH_CPU:-0}
BOX=ibench
DIR='C:\fvm-bench-churn'

pin=()
[ "$BENCH_CPU" = none ] || pin=(taskset -c "$BENCH_CPU")

wine cmd /c "mkdir $DIR" >/dev/null 2>&1 || true
wine "$W/fvm.exe" rm --force "$BOX" >/dev/null 2>&1 || true
wine "$W/fvm.exe" create "$BOX" >/dev/null
ms() { sed -n 's/.*churn n=[0-9]* ms=\([0-9.]*\).*/\1/p'; }
unboxed=() boxed=()
for r in $(seq "$ROUNDS"); do
    unboxed+=("$("${pin[@]}" wine "$FILEBENCH" churn "$DIR" "$N" | ms)")
    boxed+=("$("${pin[@]}" wine "$W/fvm.exe" run --box "$BOX" -- "$FILEBENCH" churn "$DIR" "$N" | ms)")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
u=$(median "${unboxed[@]}") b=$(median "${boxed[@]}")
printf 'churn n=%s unboxed_ms=%s boxed_ms=%s (rounds: unboxed %s; boxed %s)\n' "$N" "$u" "$b" "${unboxed[*]}" "${boxed[*]}"
awk -v u="$u" -v b="$b" -v n="$N" 'BEGIN { printf "ratio boxed/unboxed %.2f; boxed cost %.0f us per file (3 index changes)\n", b / u, (b - u) * 1000 / n }'
wine "$W/fvm.exe" rm --force "$BOX" >/dev/null 2>&1 || true
wine cmd /c "rmdir /s /q $DIR" >/dev/null 2>&1 || true
