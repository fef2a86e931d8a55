#!/usr/bin/env bash
# bench/run.sh [N] - what the box adds to a process start, as ratios
# boxed/unboxed measured in this one invocation. See bench/README.md.
#
#   N          timed process starts per procstart.exe run (default 200)
#
# Environment (all optional):
#   WINEPREFIX   Wine prefix (default: $HOME/.cache/fvm/wineprefix)
#   FVM_ROOT     where the bench box lives (default: C:\fvm-bench, private)
#   ROUNDS       unboxed/boxed procstart rounds, run ABAB (default 3)
#   CLI_RUNS     timed runs per command for the CLI launch overhead (default 30)
#   CLI_WARMUP   untimed runs per command before those (default 3)
#   BENCH_CPU    CPU to pin everything to with taskset (default 0; "none" = no pinning)
#   BENCH_BOX_OPTS  options for `fvm create` of the bench box, e.g. "--own-server"
#                (the box is then named bench-own, so it is never an older one)
#
# Prints numbers only: the exit code says whether the benchmark ran, never
# whether a target was met.
set -euo pipefail

cd "$(dirname "$0")/.."

N=${1:-200}
case $N in '' | *[!0-9]* | 0) echo "usage: bench/run.sh [N]   (N: a positive number of starts)" >&2; exit 2 ;; esac
ROUNDS=${ROUNDS:-3}
CLI_RUNS=${CLI_RUNS:-30}
CLI_WARMUP=${CLI_WARMUP:-3}
BENCH_CPU=${BENCH_CPU:-0}
TARGET_MS=3

export WINEPREFIX=${WINEPREFIX:-$HOME/.cache/fvm/wineprefix}
export WINEDEBUG=-all
export FVM_ROOT=${FVM_ROOT:-'C:\fvm-bench'}
BENCH_BOX_OPTS=${BENCH_BOX_OPTS:-}
BOX=bench
[ -n "$BENCH_BOX_OPTS" ] && BOX=bench-own

W=build/win
FVM=$W/fvm.exe
PROCSTART=$W/bench/procstart.exe
NOP=$W/bench/nop.exe

say() { printf '%s\n' "$*"; }
note() { printf 'note: %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

command -v wine >/dev/null || die "wine is not installed"
command -v wineserver >/dev/null || die "wineserver is not installed"
command -v python3 >/dev/null || die "python3 is needed for the timers and the summary"
[ -d "$WINEPREFIX" ] || die "no Wine prefix at $WINEPREFIX (make setup creates it)"

# ---- build ---------------------------------------------------------------
# procstart.exe and nop.exe are brought up to date every time (cheap, and
# they build nothing of the box). The box's own binaries are built with
# `make win` only if one is missing: a present fvm.dll is used even if it is
# older than its sources, because a failed link (sources being edited) would
# delete it.
make --no-print-directory "$PROCSTART" "$NOP" >/dev/null || note "cannot rebuild $PROCSTART / $NOP; using what is there"
BOX_BINS=("$FVM" "$W/fvm-broker.exe" "$W/fvm.dll")
missing=0
for f in "${BOX_BINS[@]}"; do [ -e "$f" ] || missing=1; done
if [ $missing = 1 ]; then
    say "building: make win"
    if ! make --no-print-directory win >/dev/null; then
        note "make win failed; building the box's binaries one by one"
        for f in "${BOX_BINS[@]}"; do
            [ -e "$f" ] || make --no-print-directory "$f" >/dev/null || note "cannot build $f"
        done
    fi
fi
[ -e "$PROCSTART" ] && [ -e "$NOP" ] || die "cannot build $PROCSTART and $NOP"
BOXED=1
for f in "${BOX_BINS[@]}"; do
    if [ ! -e "$f" ]; then
        note "$f is missing: only the unboxed half can run"
        BOXED=0
    fi
done
if [ $BOXED = 1 ] && ! make -q "$W/fvm.dll" 2>/dev/null; then
    note "$W/fvm.dll is older than its sources (or they do not build): the boxed numbers are for that older fvm.dll"
fi

# ---- pinning -------------------------------------------------------------
PIN=()
if [ "$BENCH_CPU" != none ] && command -v taskset >/dev/null && taskset -c "$BENCH_CPU" true 2>/dev/null; then
    PIN=(taskset -c "$BENCH_CPU")
    PIN_DESC="pinned to CPU $BENCH_CPU (taskset)"
else
    PIN_DESC="not pinned"
fi

# ---- warm wineserver, cleanup --------------------------------------------
STARTED_SERVER=0
CREATED_BOX=0
RESULTS=$(mktemp)
CLI_JSON=$(mktemp)

# Counts Wine processes other than wineservers and Wine's own services
# (services.exe, winedevice.exe, ...), which end with their server. With
# "prefix", only those of this prefix; with "busy", those of any prefix that
# are not ours (our box's broker excluded): other work that makes the
# numbers noisy.
other_wine_processes() {
    local n=0 p exe cmd root
    root=$(printf '%s' "$FVM_ROOT" | tr '[:upper:]' '[:lower:]')
    for p in /proc/[0-9]*; do
        exe=$(readlink "$p/exe" 2>/dev/null) || continue
        case $exe in */wineserver*) continue ;; *wine*) ;; *) continue ;; esac
        cmd=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null | tr '[:upper:]' '[:lower:]')
        case ${cmd#'c:\windows\system32\'} in
        services.exe* | winedevice.exe* | plugplay.exe* | svchost.exe* | rpcss.exe* | \
            explorer.exe* | conhost.exe* | winemenubuilder.exe*) continue ;;
        esac
        if [ "$1" = busy ]; then
            case $cmd in *"$root"*) continue ;; esac
            n=$((n + 1))
        else
            tr '\0' '\n' <"$p/environ" 2>/dev/null | grep -qxF "WINEPREFIX=$WINEPREFIX" && n=$((n + 1))
        fi
    done
    echo $n
}

cleanup() {
    set +e
    rm -f "$RESULTS" "$CLI_JSON"
    if [ $CREATED_BOX = 1 ]; then
        wine "$FVM" stop "$BOX" >/dev/null 2>&1
        wine "$FVM" rm --force "$BOX" >/dev/null 2>&1 || note "could not remove box '$BOX'"
        local root
        root=$(winepath -u "$FVM_ROOT" 2>/dev/null)
        [ -n "$root" ] && rmdir "$root/boxes" "$root" 2>/dev/null
    fi
    if [ $STARTED_SERVER = 1 ]; then
        # `wineserver -k` also ends every other Wine process of this prefix:
        # wait up to 30 s for other users' processes (and our box's broker) to
        # be gone, and leave the server alone if they are not.
        local others tries=0
        while others=$(other_wine_processes prefix) && [ "$others" != 0 ] && [ $tries -lt 30 ]; do
            sleep 1
            tries=$((tries + 1))
        done
        if [ "$others" = 0 ]; then
            wineserver -k 2>/dev/null
        else
            note "left the persistent wineserver running: $others other Wine process(es) use this prefix (end it with: WINEPREFIX=$WINEPREFIX wineserver -k)"
        fi
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Exit code 0: this call started a persistent server; 2: one was running.
if "${PIN[@]}" wineserver -p 2>/dev/null; then
    STARTED_SERVER=1
    SERVER_DESC="started a persistent wineserver (ended at the end)"
else
    SERVER_DESC="a wineserver was already running (not started here, left alone)"
fi

# The first Wine process of a server starts Wine's services (services.exe,
# winedevice.exe, ...), which inherit its Unix stdout/stderr and, under a
# persistent server, never exit: started from a $(...) pipe they would keep it
# open forever. So the first process gets /dev/null.
"${PIN[@]}" wine "$NOP" </dev/null >/dev/null 2>&1 || die "cannot run $NOP under Wine"

WIN_NOP=$(winepath -w "$NOP" 2>/dev/null | tr -d '\r') || true
[ -n "$WIN_NOP" ] || WIN_NOP=$NOP

if [ $BOXED = 1 ]; then
    if ! wine "$FVM" list 2>/dev/null | tr -d '\r' | awk -v b="$BOX" '$1 == b { found = 1 } END { exit !found }'; then
        # shellcheck disable=SC2086
        wine "$FVM" create "$BOX" $BENCH_BOX_OPTS >/dev/null || die "cannot create box '$BOX' (FVM_ROOT=$FVM_ROOT)"
    fi
    CREATED_BOX=1
    # A box's own Wine server starts with the box's first run and, when the
    # box ends, lingers 5 s. A round's boxed run that found it gone would
    # start it anew, and the new server's Wine services (wineboot,
    # services.exe, winedevice.exe, ...) would share the pinned CPU with the
    # timed starts, where the unboxed runs find the persistent host server's
    # services long settled. So the box's server is started here, left to
    # settle, and kept for the whole bench (ended by the cleanup): both sides
    # time starts against a warm server. A cold start is `fvm run`'s figure.
    export FVM_SERVER_LINGER_MS=3600000
    "${PIN[@]}" wine "$FVM" run --box "$BOX" -- "$NOP" </dev/null >/dev/null 2>&1 || die "cannot run $NOP in box '$BOX'"
    sleep 3
fi

say "process start benchmark: N=$N starts per run, $ROUNDS rounds, $PIN_DESC"
say "  Wine prefix $WINEPREFIX; $SERVER_DESC; FVM_ROOT=$FVM_ROOT; box '$BOX' ${BENCH_BOX_OPTS:-(default options)}"
say ""

# ---- procstart: unboxed vs boxed, ABAB -------------------------------------
BUSY_RUNS=0
run_procstart() {   # kind
    local out busy
    busy=$(other_wine_processes busy)
    if [ "$1" = unboxed ]; then
        out=$("${PIN[@]}" wine "$PROCSTART" "$N" "$WIN_NOP" | tr -d '\r') || { say "$out"; die "unboxed procstart failed"; }
    else
        out=$("${PIN[@]}" wine "$FVM" run --box "$BOX" -- "$PROCSTART" "$N" "$WIN_NOP" | tr -d '\r') ||
            { say "$out"; die "boxed procstart failed"; }
    fi
    out=$(printf '%s\n' "$out" | grep '^procstart ') || die "no result line from $1 procstart"
    # Other Wine work seen at the start or at the end of this run.
    [ "$busy" = 0 ] && [ "$(other_wine_processes busy)" = 0 ] || BUSY_RUNS=$((BUSY_RUNS + 1))
    printf '%-8s %s\n' "$1" "$out"
    printf '%s %s\n' "$1" "$out" >>"$RESULTS"
}

for ((r = 1; r <= ROUNDS; r++)); do
    run_procstart unboxed
    [ $BOXED = 1 ] && run_procstart boxed
done
say ""

# ---- CLI launch overhead ---------------------------------------------------
CLI_DONE=0
if [ $BOXED = 1 ] && [ "$CLI_RUNS" -gt 0 ]; then
    say "CLI launch: wine nop.exe vs wine fvm.exe run --box $BOX -- nop.exe, $CLI_RUNS runs each, interleaved"
    "${PIN[@]}" python3 - "$CLI_RUNS" "$CLI_WARMUP" "$CLI_JSON" "$FVM" "$BOX" "$NOP" <<'EOF'
import json, subprocess, sys, time
runs, warmup, out, fvm, box, nop = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
cmds = {"unboxed": ["wine", nop], "boxed": ["wine", fvm, "run", "--box", box, "--", nop]}
def once(argv):
    t0 = time.perf_counter()
    rc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL).returncode
    t1 = time.perf_counter()
    if rc != 0:
        sys.exit("bench: %s exited with %d" % (" ".join(argv), rc))
    return (t1 - t0) * 1000.0
for _ in range(warmup):
    for argv in cmds.values():
        once(argv)
times = {k: [] for k in cmds}
for i in range(runs):
    # Alternate which goes first, so neither always follows the other.
    order = list(cmds) if i % 2 == 0 else list(reversed(list(cmds)))
    for k in order:
        times[k].append(once(cmds[k]))
# One more, untimed: does the program really run boxed under fvm run?
check = subprocess.run(["wine", fvm, "run", "--box", box, "--", nop, "check"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL).returncode
json.dump({"times": times, "boxed_check": check}, open(out, "w"))
EOF
    CLI_DONE=1
    say ""
fi

# ---- summary -----------------------------------------------------------------
CLI_ARG=
[ $CLI_DONE = 1 ] && CLI_ARG=$CLI_JSON
python3 - "$RESULTS" "$CLI_ARG" "$TARGET_MS" "$BOXED" "$BUSY_RUNS" <<'EOF'
import json, statistics as st, sys
results, cli_json, target, boxed_ran = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4] == "1"
busy_runs = int(sys.argv[5])

def pct(v, p):
    v = sorted(v)
    pos = p / 100 * (len(v) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)

rows = {"unboxed": [], "boxed": []}
for line in open(results):
    kind, rest = line.split(" ", 1)
    kv = dict(f.split("=", 1) for f in rest.split()[1:])
    rows[kind].append(kv)

def col(kind, key):
    return [float(r[key]) for r in rows[kind]]

print("Process start from inside the box (procstart.exe, CreateProcessW..exit), per start:")
print("  %-6s %14s %14s %8s %10s" % ("round", "unboxed med", "boxed med", "ratio", "added"))
for i, u in enumerate(rows["unboxed"]):
    um = float(u["median_ms"])
    if i < len(rows["boxed"]):
        bm = float(rows["boxed"][i]["median_ms"])
        print("  %-6d %11.2f ms %11.2f ms %7.2fx %+7.2f ms" % (i + 1, um, bm, bm / um, bm - um))
    else:
        print("  %-6d %11.2f ms %14s" % (i + 1, um, "-"))

um = st.median(col("unboxed", "median_ms"))
print()
if boxed_ran and rows["boxed"]:
    bm = st.median(col("boxed", "median_ms"))
    # Paired per round (each boxed run next to its unboxed run), so drift
    # between rounds cancels.
    pairs = list(zip(rows["unboxed"], rows["boxed"]))
    ratio = st.median(float(b["median_ms"]) / float(u["median_ms"]) for u, b in pairs)
    added = st.median(float(b["median_ms"]) - float(u["median_ms"]) for u, b in pairs)
    t_ratio = st.median(float(b["trimmed_mean_ms"]) / float(u["trimmed_mean_ms"]) for u, b in pairs)
    t_added = st.median(float(b["trimmed_mean_ms"]) - float(u["trimmed_mean_ms"]) for u, b in pairs)
    print("  %-28s %10.2f ms" % ("unboxed median", um))
    print("  %-28s %10.2f ms" % ("boxed median", bm))
    print("  %-28s %10.2fx" % ("ratio boxed/unboxed", ratio))
    print("  %-28s %+10.2f ms" % ("added per start", added))
    print("  %-28s %+10.2f ms  (ratio %.2fx)" % ("added (trimmed means)", t_added, t_ratio))
    print("  %-28s %s" % ("target: adds < %g ms" % target,
                          "MET" if added < target else "NOT MET (%.2f ms over)" % (added - target)))
    print("  (medians: of the %d runs' medians; ratio and added: of the %d per-round"
          % (len(rows["boxed"]), len(pairs)))
    print("  pairs. Information only, not an exit code.)")
    bad = [r for r in rows["boxed"] if r.get("self_boxed") != "1" or r.get("child_boxed") != "1"]
    if bad:
        print("  WARNING: in a boxed run procstart or its children were not boxed "
              "(self_boxed/child_boxed != 1): the boxed numbers do not measure boxing")
    if any(r.get("child_boxed") != "0" for r in rows["unboxed"]):
        print("  WARNING: an unboxed run's children had fvm.dll loaded")
else:
    print("  %-28s %10.2f ms" % ("unboxed median", um))
    print("  boxed half not run (fvm.exe, fvm-broker.exe or fvm.dll missing)")
if busy_runs:
    print("  NOTE: other Wine processes were running at the start or end of %d of the"
          " %d procstart runs: the numbers may be noisy" % (busy_runs, len(rows["unboxed"]) + len(rows["boxed"])))

if cli_json:
    d = json.load(open(cli_json))
    u, b = d["times"]["unboxed"], d["times"]["boxed"]
    print()
    print("CLI launch overhead (Linux-side wall time of `wine nop.exe` vs "
          "`wine fvm.exe run --box B -- nop.exe`, %d runs each):" % len(u))
    print("  %-28s %10.2f ms  (p10 %.2f, p90 %.2f)" % ("wine nop.exe median", st.median(u), pct(u, 10), pct(u, 90)))
    print("  %-28s %10.2f ms  (p10 %.2f, p90 %.2f)" % ("wine fvm.exe run median", st.median(b), pct(b, 10), pct(b, 90)))
    print("  %-28s %10.2fx" % ("ratio", st.median(b) / st.median(u)))
    print("  %-28s %+10.2f ms" % ("added per launch", st.median(b) - st.median(u)))
    print("  note: this includes starting fvm.exe itself (and fvm-broker.exe when the box")
    print("  is not running, as here after each run), so it is not the per-process cost")
    print("  of boxing; that is the procstart figure above.")
    if d["boxed_check"] != 10:
        print("  WARNING: `fvm.exe run nop.exe check` did not report fvm.dll loaded (exit %d)"
              % d["boxed_check"])
EOF
