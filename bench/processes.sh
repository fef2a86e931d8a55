#!/usr/bin/env bash
# bench/processes.sh - what the box adds to a process listing, as ratios
# boxed/unboxed measured in this one invocation.
#
# Runs bench/proclist.c unboxed (wine proclist.exe ...) and boxed
# (wine fvm.exe run --box pbench -- proclist.exe ...), alternating, ROUNDS
# times each:
#   toolhelp  CreateToolhelp32Snapshot + walk + CloseHandle (target <= 1.5)
#   ntquery   NtQuerySystemInformation(SystemProcessInformation) (information)
# A box lists only its own processes: the real listing, then one membership
# check per other process (runtime/process.c).
#
# Environment (optional): WINEPREFIX; FVM_ROOT (default C:\fvm-bench-proc);
# ROUNDS (default 5); N listings per run (default 300); BENCH_CPU (CPU to
# pin to with taskset, default 0, "none" = no pinning). Prints numbers only:
# the exit code says whether the benchmark ran, not whether a target was met.
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
N=${N:-300}
BENCH_CPU=${BENCH_CPU:-0}
. scripts/env.sh
export WINEDEBUG=-all
export FVM_ROOT=${FVM_ROOT:-'C:\fvm-bench-proc'}
BOX=pbench
W=build/win
FVM=$W/fvm.exe
OB=$W/bench/proclist.exe

make --no-print-directory "$OB" >/dev/null || true
for f in "$FVM" "$W/fvm-broker.exe" "$W/fvm.dll" "$OB"; do
    [ -e "$f" ] || { echo "bench/processes.sh: $f is missing (make win)" >&2; exit 1; }
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
echo "process listing benchmark: N=$N, $ROUNDS rounds, ${PIN[*]:-not pinned}"
for ((r = 1; r <= ROUNDS; r++)); do
    for what in toolhelp ntquery; do
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
for name, target in (("toolhelp", 1.5), ("ntquery", None)):
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
