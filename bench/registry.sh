#!/usr/bin/env bash
# bench/registry.sh - what the box costs registry operations, as ratios
# boxed/unboxed measured in this one invocation.
#
#   open+query  RegOpenKeyExW + RegQueryValueExW + RegCloseKey of an
#               untouched host key (box "rbench-clean"), and of a key whose
#               value the box changed (box "rbench-changed", against the host
#               key unboxed)
#   enum        RegOpenKeyExW + RegEnumKeyExW over a 500-subkey key, untouched
#               and with the box's changes merged in (one value changed, one
#               subkey added)
#
# Environment: WINEPREFIX, ROUNDS (default 5, ABAB), OPS (default 2000),
# ENUMS (default 20), BENCH_CPU (default 0; "none" = no pinning).
# Targets (issue 4): <= 1.10 for open+query, <= 1.5 for enumeration.
# Prints numbers only: the exit code says whether the benchmark ran.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
export WINEDEBUG=-all
export FVM_ROOT=${FVM_ROOT:-'C:\fvm-bench'}
ROUNDS=${ROUNDS:-5}
OPS=${OPS:-2000}
ENUMS=${ENUMS:-20}
BENCH_CPU=${BENCH_CPU:-0}
KEY='Software\FvmRegBench'
W=build/win
RB=$W/bench/regbench.exe
make --no-print-directory "$RB" >/dev/null
PIN=()
[ "$BENCH_CPU" = none ] || PIN=(taskset -c "$BENCH_CPU")

wineserver -p 2>/dev/null || true
cleanup() { wine "$RB" cleanup "$KEY" >/dev/null 2>&1 || true
            for b in rbench-clean rbench-changed; do wine $W/fvm.exe rm --force $b >/dev/null 2>&1 || true; done
            wineserver -k 2>/dev/null || true; }
trap cleanup EXIT
wine "$RB" cleanup "$KEY" >/dev/null 2>&1 || true
wine "$RB" setup "$KEY" 500
for b in rbench-clean rbench-changed; do
    wine $W/fvm.exe rm --force $b >/dev/null 2>&1 || true
    wine $W/fvm.exe create $b >/dev/null
done
wine $W/fvm.exe run --box rbench-changed "$RB" change "$KEY"

run() {   # run BOX|- OP N -> ns
    if [ "$1" = - ]; then "${PIN[@]}" wine "$RB" "$2" "$KEY" "$3"
    else "${PIN[@]}" wine $W/fvm.exe run --box "$1" "$RB" "$2" "$KEY" "$3"; fi | sed -n 's/^ns_per_op=//p'
}

RESULTS=$(mktemp)
for r in $(seq "$ROUNDS"); do
    for case in "open-query - $OPS" "open-query rbench-clean $OPS" "open-query rbench-changed $OPS" \
                "enum - $ENUMS" "enum rbench-clean $ENUMS" "enum rbench-changed $ENUMS"; do
        set -- $case
        v=$(run "$2" "$1" "$3")
        [ -n "$v" ] || { echo "bench/registry.sh: $1 in ${2} failed" >&2; exit 1; }
        echo "round $r: $1 $2: $v ns"
        echo "$1 $2 $v" >> "$RESULTS"
    done
done
python3 - "$ROUNDS" "$RESULTS" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[2]):
    op, box, v = line.split()
    rows.setdefault((op, box), []).append(float(v))
def med(op, box): return statistics.median(rows[(op, box)])
print()
print("registry benchmark (medians of %s rounds; '-' = unboxed)" % sys.argv[1])
for op, label, target in (("open-query", "open+query+close", 1.10), ("enum", "enumerate 500 subkeys", 1.5)):
    base = med(op, "-")
    for box, what in (("rbench-clean", "untouched key"), ("rbench-changed", "box-changed key")):
        b = med(op, box)
        print(f"  {label:24s} {what:16s} unboxed {base/1000:9.2f} us  boxed {b/1000:9.2f} us"
              f"  ratio {b/base:5.2f}x  (target <= {target})")
PY
rm -f "$RESULTS"
