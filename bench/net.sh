#!/usr/bin/env bash
# bench/net.sh - what [net] rules cost a socket, as ratios boxed/unboxed
# measured in this one invocation (bench/netbench.c, loopback only):
#   connect  connect + close to a loopback server of the same process
#            (target: boxed/unboxed <= 1.10)
#   bulk     throughput of one loopback connection (target: >= 0.95)
#   connect-port  connect as above, the server on a fixed port (PORT,
#            default 47311): in the box (net = isolated, the default) the
#            port is one of the box's own, so each connect is also looked
#            up in the box's port map and sent to the real port
#            (target: <= 1.10)
#   resolve  getaddrinfo("localhost") (RESOLVES per run, default 500): in a
#            box the name goes to the broker (the box's programs have no
#            network of their own); no target, reported for what it costs
# The box has a policy with a few [net] rules, so every connect is decided.
# Environment (optional): WINEPREFIX; FVM_ROOT (default C:\fvm-bench-net);
# ROUNDS (default 5); N connects per run (default 2000); MB per bulk run
# (default 256). Prints numbers only.
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
N=${N:-2000}
MB=${MB:-256}
. scripts/env.sh
export WINEDEBUG=-all
export FVM_ROOT=${FVM_ROOT:-'C:\fvm-bench-net'}
BOX=nbench
W=build/win
NB=$W/bench/netbench.exe
make --no-print-directory "$NB" >/dev/null || true
POLICY=$(mktemp --suffix=.ini)
trap 'rm -f "$POLICY"; wine "$W/fvm.exe" rm --force "$BOX" >/dev/null 2>&1 || true' EXIT
printf '[net]\ndeny tcp:10.0.0.0/8\ndeny udp:*:25\nopen tcp:localhost:*\ndeny tcp:*.example.com:443\n' > "$POLICY"
wine "$W/fvm.exe" rm --force "$BOX" >/dev/null 2>&1 || true
wine "$W/fvm.exe" create "$BOX" --policy "Z:$(echo "$POLICY" | tr / '\\')" >/dev/null
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
PORT=${PORT:-47311}
for what in connect bulk connect-port resolve; do
    arg=$N; [ $what = bulk ] && arg=$MB
    [ $what = resolve ] && arg=${RESOLVES:-500}
    [ $what = connect-port ] && arg="$N $PORT"
    u=(); b=()
    for ((r = 1; r <= ROUNDS; r++)); do
        verb=${what%-port}
        u+=("$(wine "$NB" $verb $arg </dev/null 2>/dev/null | awk '{print $2}')")
        b+=("$(wine "$W/fvm.exe" run --box $BOX "$(winepath -w "$NB")" $verb $arg </dev/null 2>/dev/null | awk '{print $2}')")
    done
    mu=$(printf '%s\n' "${u[@]}" | median); mb=$(printf '%s\n' "${b[@]}" | median)
    unit="us/op"; [ $what = bulk ] && unit="MB/s"
    echo "$what: unboxed $mu $unit, boxed $mb $unit, boxed/unboxed $(awk -v a="$mb" -v b="$mu" 'BEGIN {printf "%.3f", a/b}')"
done
