#!/usr/bin/env bash
# bench/objects.sh - what the box's object namespace costs, as ratios
# boxed/unboxed measured in this one invocation.
#
# Runs bench/objbench.c unboxed (wine objbench.exe ...) and boxed
# (wine fvm.exe run --box obench -- objbench.exe ...), alternating, ROUNDS
# times each:
#   mutex   CreateMutexW of a named mutex + CloseHandle (the box: redirected
#           into its namespace; the target is <= 1.10)
#   event   OpenEventW of an existing named event + CloseHandle (information)
#   pipe    a named-pipe client connect, CreateFileW + CloseHandle, to a
#           server of the same process (the box: its private pipe name;
#           target <= 1.10)
#
# Environment (optional): WINEPREFIX; FVM_ROOT (default C:\fvm-bench-obj);
# ROUNDS (default 7); N operations per run (default 5000); BENCH_CPU (CPU to
# pin to with taskset, default 0, "none" = no pinning). Prints numbers only:
# the exit code says whether the benchmark ran, not whether a target was met.
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-7}
N=${N:-5000}
BENCH_CPU=${BENCH_CPU:-0}
. scripts/env.sh
export WINEDEBUG=-all
export FVM_ROOT=${FVM_ROOT:-'C:\fvm-bench-obj'}
BOX=obench
W=build/win
FVM=$W/fvm.exe
OB=$W/bench/objbench.exe

make --no-print-directory "$OB" >/dev/null || true
for f in "$FVM" "$W/fvm-broker.exe" "$W/fvm.dll" "$OB"; do
    [ -e "$f" ] || { echo "bench/objects.sh: $f is missing (make win)" >&2; exit 1; }
done
PIN=()
if [ "$BENCH_CPU" != none ] && command -v taskset >/dev/null && taskset -c "$BENCH_CPU" true 2>/dev/null; then
    PIN=(taskset -c "$BENCH_CPU")
fi

STARTED_SERVER=0
RESULTS=$(mktemp)
cleanup() {
    set +e
    rm -f "$RESULTS"
    wine "$FVM" rm --force "$BOX" >/dev/null 2>&1
    [ $STARTED_SERVER = 1 ] && wineserver -k 2>/dev/null
}
trap cleanup EXIT
if "${PIN[@]}" wineserver -p 2>/dev/null; then STARTED_SERVER=1; fi
"${PIN[@]}" wine "$OB" --help </dev/null >/dev/null 2>&1 || true   # starts Wine's services off our pipes

wine "$FVM" rm --force "$BOX" >/dev/null 2>&1 || true
wine "$FVM" create "$BOX" >/dev/null
echo "object namespace benchmark: N=$N, $ROUNDS rounds, ${PIN[*]:-not pinned}"
for ((r = 1; r <= ROUNDS; r++)); do
    for what in mutex event pipe; do
        for kind in unboxed boxed; do
            if [ $kind = unboxed ]; then
                out=$("${PIN[@]}" wine "$OB" $what "$N" </dev/null | tr -d '\r')
            else
                out=$("${PIN[@]}" wine "$FVM" run --box "$BOX" -- "$OB" $what "$N" </dev/null | tr -d '\r')
            fi
            printf '  %-8s %s\n' "$kind" "$out"
            printf '%s %s\n' "$kind" "$out" >>"$RESULTS"
        done
    done
done

python3 - "$RESULTS" <<'EOF'
import statistics as st, sys
rows = {}
for line in open(sys.argv[1]):
    kind, name, *fields = line.split()
    kv = dict(f.split("=", 1) for f in fields)
    rows.setdefault(name, {"unboxed": [], "boxed": []})[kind].append(kv)
print("Summary (median of the runs' medians; ratio: median of per-round ratios boxed/unboxed):")
for name, target in (("mutex", 1.10), ("event", None), ("pipe", 1.10)):
    r = rows.get(name)
    if not r:
        continue
    bad = [k for k in ("unboxed", "boxed") for d in r[k] if d["self_boxed"] != ("1" if k == "boxed" else "0")]
    p = [(float(u["median_us"]), float(b["median_us"])) for u, b in zip(r["unboxed"], r["boxed"])]
    ratio = st.median(b / u for u, b in p)
    res = "(info)" if target is None else ("MET" if ratio <= target else "NOT MET")
    print("  %-6s unboxed %8.2f us  boxed %8.2f us  ratio %.3fx  rounds %.2f..%.2fx  %s%s" % (
        name, st.median(u for u, _ in p), st.median(b for _, b in p), ratio,
        min(b / u for u, b in p), max(b / u for u, b in p),
        "target <= %.2f %s" % (target, res) if target else res,
        "  WARNING: not measuring what it says (self_boxed)" if bad else ""))
EOF
