#!/usr/bin/env bash
# bench/screen.sh - what the box adds to reading its own window's pixels
# (runtime/screen.c judges the source of every BitBlt), as a ratio
# boxed/unboxed measured in this one invocation.
#
# Runs `capture.exe bench N` (tests/apps/capture.c: N x GetDC + BitBlt of a
# 200x150 window of its own into a memory DC + ReleaseDC) unboxed and boxed,
# alternating, ROUNDS times each. Target: boxed <= 1.10 x unboxed.
#
# Needs an X display: uses $DISPLAY if set, otherwise starts its own Xvfb
# (and then ends the prefix's Wine processes first: Wine's desktop process
# keeps the display it was started with).
#
# Environment (optional): WINEPREFIX; FVM_ROOT (default C:\fvm-bench-screen);
# ROUNDS (default 7); N blits per run (default 3000); BENCH_CPU (CPU to pin
# to with taskset, default 0, "none" = no pinning). Prints numbers only: the
# exit code says whether the benchmark ran, not whether the target was met.
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-7}
N=${N:-3000}
BENCH_CPU=${BENCH_CPU:-0}
. scripts/env.sh
export WINEDEBUG=-all
export FVM_ROOT=${FVM_ROOT:-'C:\fvm-bench-screen'}
BOX=sbench
W=build/win
FVM=$W/fvm.exe
CAP=$W/apps/capture.exe

make --no-print-directory "$CAP" >/dev/null || true
for f in "$FVM" "$W/fvm-broker.exe" "$W/fvm.dll" "$CAP"; do
    [ -e "$f" ] || { echo "bench/screen.sh: $f is missing (make win)" >&2; exit 1; }
done
PIN=()
if [ "$BENCH_CPU" != none ] && command -v taskset >/dev/null && taskset -c "$BENCH_CPU" true 2>/dev/null; then
    PIN=(taskset -c "$BENCH_CPU")
fi

XVFB_PID=
STARTED_SERVER=0
RESULTS=$(mktemp)
cleanup() {
    set +e
    rm -f "$RESULTS"
    wine "$FVM" rm --force "$BOX" >/dev/null 2>&1
    [ $STARTED_SERVER = 1 ] && wineserver -k 2>/dev/null
    [ -n "$XVFB_PID" ] && kill "$XVFB_PID" 2>/dev/null
}
trap cleanup EXIT
if [ -z "${DISPLAY:-}" ]; then
    command -v Xvfb >/dev/null || { echo "bench/screen.sh: no DISPLAY and no Xvfb" >&2; exit 1; }
    FIFO=$(mktemp -u)
    mkfifo "$FIFO"
    Xvfb -displayfd 3 -screen 0 1024x768x24 -nolisten tcp 3>"$FIFO" >/dev/null 2>&1 &
    XVFB_PID=$!
    read -r -t 15 NUM <"$FIFO" || { echo "bench/screen.sh: Xvfb did not start" >&2; exit 1; }
    rm -f "$FIFO"
    export DISPLAY=":$NUM"
    wineserver -k 2>/dev/null || true
    wineserver -w 2>/dev/null || true
fi
if "${PIN[@]}" wineserver -p 2>/dev/null; then STARTED_SERVER=1; fi

wine "$FVM" rm --force "$BOX" >/dev/null 2>&1 || true
wine "$FVM" create "$BOX" >/dev/null
echo "screen benchmark: own-window GetDC+BitBlt+ReleaseDC, N=$N, $ROUNDS rounds, ${PIN[*]:-not pinned}, DISPLAY=$DISPLAY"
for ((r = 1; r <= ROUNDS; r++)); do
    for kind in unboxed boxed; do
        if [ $kind = unboxed ]; then
            out=$("${PIN[@]}" wine "$CAP" bench "$N" </dev/null | tr -d '\r' | grep '^bench')
        else
            out=$("${PIN[@]}" wine "$FVM" run --box "$BOX" -- "$CAP" bench "$N" </dev/null | tr -d '\r' | grep '^bench')
        fi
        printf '  %-8s %s\n' "$kind" "$out"
        printf '%s %s\n' "$kind" "$out" >>"$RESULTS"
    done
done

python3 - "$RESULTS" <<'PY'
import statistics as st, sys
rows = {"unboxed": [], "boxed": []}
for line in open(sys.argv[1]):
    kind, _, _, *fields = line.split()
    kv = dict(f.split("=", 1) for f in fields)
    rows[kind].append(kv)
p = [(float(u["us_per_blit"]), float(b["us_per_blit"])) for u, b in zip(rows["unboxed"], rows["boxed"])]
ratio = st.median(b / u for u, b in p)
wrong = [k for k in rows for d in rows[k] if d.get("pixel") != "ff8000"]
print("Summary (median; ratio: median of per-round ratios boxed/unboxed):")
print("  blit   unboxed %8.2f us  boxed %8.2f us  ratio %.3fx  rounds %.2f..%.2fx  target <= 1.10 %s%s" % (
    st.median(u for u, _ in p), st.median(b for _, b in p), ratio, min(b / u for u, b in p),
    max(b / u for u, b in p), "MET" if ratio <= 1.10 else "NOT MET",
    "  WARNING: the blit did not read the window's colour" if wrong else ""))
PY
