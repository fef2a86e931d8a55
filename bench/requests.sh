#!/usr/bin/env bash
# bench/requests.sh [N] - what a process start asks of the Wine server, by
# process and by request, unboxed and boxed (a diagnostic, not a ratio).
#
# Each request is a round trip to wineserver (two context switches on one
# CPU), so the count per start is the first place to look when the box's
# start cost grows (docs/design.md, "Where a boxed start's time goes").
# procstart.exe starts nop.exe N and 3N times, unboxed and then in a box,
# under WINEDEBUG=+server; the difference divided by 2N is the cost of one
# start, without Wine's and the box's own start-up. Requests are given to a
# process through its threads (new_process, init_first_thread, new_thread).
#
#   N            starts of the shorter run (default 20)
#
# Environment:
#   REQ_PREFIX   the Wine prefix to use; it must be one nothing else uses:
#                this script ends its wineserver. Default
#                $HOME/.cache/fvm/requests-prefix, copied once from the
#                project's prefix (about 1.2 GB).
#   REQ_TOP      how many requests to list per process (default 12)
set -euo pipefail

cd "$(dirname "$0")/.."

N=${1:-20}
case $N in '' | *[!0-9]* | 0) echo "usage: bench/requests.sh [N]   (N: a positive number of starts)" >&2; exit 2 ;; esac
TOP=${REQ_TOP:-12}
SOURCE=${XDG_CACHE_HOME:-$HOME/.cache}/fvm/wineprefix
export WINEPREFIX=${REQ_PREFIX:-${XDG_CACHE_HOME:-$HOME/.cache}/fvm/requests-prefix}
export FVM_ROOT='C:\fvm-requests'
BOX=requests
W=build/win

die() { printf 'requests: %s\n' "$*" >&2; exit 1; }
command -v wine >/dev/null || die "wine is not installed"
command -v python3 >/dev/null || die "python3 is needed for the summary"
[ "$WINEPREFIX" != "$SOURCE" ] || die "REQ_PREFIX must not be the project's prefix (this script ends its server)"
if [ ! -d "$WINEPREFIX" ]; then
    [ -d "$SOURCE" ] || die "no Wine prefix at $SOURCE (make setup creates it)"
    echo "copying $SOURCE to $WINEPREFIX (once)"
    cp -a "$SOURCE" "$WINEPREFIX"
fi
make --no-print-directory "$W/bench/procstart.exe" "$W/bench/nop.exe" >/dev/null
for f in "$W/fvm.exe" "$W/fvm-broker.exe" "$W/fvm.dll"; do
    [ -e "$f" ] || die "$f is missing (make win)"
done

LOGS=$(mktemp -d)
cleanup() {
    WINEDEBUG=-all wine "$W/fvm.exe" rm --force "$BOX" >/dev/null 2>&1 || true
    wineserver -k 2>/dev/null || true
    rm -rf "$LOGS"
}
trap cleanup EXIT

wineserver -k 2>/dev/null || true
WINEDEBUG=-all wine "$W/bench/nop.exe" </dev/null >/dev/null 2>&1 || die "cannot run nop.exe under Wine"
# The box is on the host's server (--host-server): a box's own server traces
# to its own stderr, which the runner does not pass on; the requests a start
# makes are the same on either server (the runtime's, not the server's).
WINEDEBUG=-all wine "$W/fvm.exe" rm --force "$BOX" >/dev/null 2>&1 || true
WINEDEBUG=-all wine "$W/fvm.exe" create --host-server "$BOX" >/dev/null 2>&1 || die "cannot create the box"
NOP=$(WINEDEBUG=-all winepath -w "$W/bench/nop.exe" | tr -d '\r')

# One traced run: a fresh server started with the trace on, so that its
# log (on its stderr) is this run's alone.
traced() {   # mode starts log
    wineserver -k 2>/dev/null || true
    sleep 0.5
    if [ "$1" = unboxed ]; then
        WINEDEBUG=+server wine "$W/bench/procstart.exe" "$2" "$NOP" >/dev/null 2>"$3" || die "unboxed procstart failed"
    else
        WINEDEBUG=+server wine "$W/fvm.exe" run --box "$BOX" -- "$W/bench/procstart.exe" "$2" "$NOP" \
            >/dev/null 2>"$3" || die "boxed procstart failed"
    fi
}
for mode in unboxed boxed; do
    traced $mode "$N" "$LOGS/$mode.short"
    traced $mode $((3 * N)) "$LOGS/$mode.long"
done

python3 - "$LOGS" "$N" "$TOP" <<'EOF'
import collections, re, sys
logs, n, top = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def parse(path):
    """Requests by (process image, request name)."""
    tid_pid, pid_image, asked_image, new_thread_of = {}, {}, {}, {}
    counts = collections.Counter()
    for line in open(path, errors="replace"):
        m = re.match(r"^([0-9a-f]{4}): (\w+)\((.*)", line)
        if not m:
            continue
        tid, req, rest = m.groups()
        if rest.startswith(") ="):
            if req == "new_process" and tid in asked_image:
                pid = re.search(r"pid=([0-9a-f]+)", rest)
                if pid:
                    pid_image[pid.group(1)] = asked_image.pop(tid)
            elif req == "init_first_thread":
                ids = re.search(r"pid=([0-9a-f]+), tid=([0-9a-f]+)", rest)
                if ids:
                    tid_pid[ids.group(2)] = ids.group(1)
            elif req == "new_thread" and new_thread_of.get(tid):
                new = re.search(r"tid=([0-9a-f]+)", rest)
                if new:
                    tid_pid[new.group(1)] = tid_pid.get(tid)
            continue
        if req == "new_process":
            image = re.search(r'imagepath=L"([^"]*)"', rest)
            asked_image[tid] = image.group(1).split("\\")[-1].lower() if image else "?"
        elif req == "new_thread":
            new_thread_of[tid] = "process=ffffffff" in rest
        image = pid_image.get(tid_pid.get(tid), "(started from Linux)")
        counts[(image, req)] += 1
    return counts

per_start = {}
for mode in ("unboxed", "boxed"):
    short, long = parse(f"{logs}/{mode}.short"), parse(f"{logs}/{mode}.long")
    per_start[mode] = {k: (long[k] - short[k]) / (2 * n) for k in set(short) | set(long)}

def by_process(d):
    out = collections.Counter()
    for (image, _), v in d.items():
        out[image] += v
    return out

u, b = by_process(per_start["unboxed"]), by_process(per_start["boxed"])
print(f"Wine server requests per process start ({n} and {3 * n} starts, difference / {2 * n})")
print(f"  {'process':28s} {'unboxed':>9s} {'boxed':>9s} {'added':>9s}")
for image in sorted(set(u) | set(b), key=lambda k: -(b[k] - u[k])):
    if abs(b[image]) < 0.5 and abs(u[image]) < 0.5:
        continue
    print(f"  {image:28s} {u[image]:9.1f} {b[image]:9.1f} {b[image] - u[image]:+9.1f}")
print(f"  {'all':28s} {sum(u.values()):9.1f} {sum(b.values()):9.1f} {sum(b.values()) - sum(u.values()):+9.1f}")
print("(the process that runs procstart.exe is started from Linux when unboxed: it counts under that name)")
for image in ("procstart.exe", "nop.exe", "fvm-broker.exe"):
    diff = {}
    for (img, req), v in per_start["boxed"].items():
        if img == image:
            diff[req] = diff.get(req, 0) + v
    base = "(started from Linux)" if image == "procstart.exe" else image
    for (img, req), v in per_start["unboxed"].items():
        if img == base:
            diff[req] = diff.get(req, 0) - v
    rows = sorted(((v, r) for r, v in diff.items() if abs(v) >= 0.5), reverse=True)[:top]
    if rows:
        print(f"\nadded by the box in {image}, by request:")
        for v, r in rows:
            print(f"  {r:32s} {v:+7.1f}")
EOF
