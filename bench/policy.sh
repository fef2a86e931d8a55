#!/usr/bin/env bash
# policy.sh - the policy engine's costs, as ratios in one run:
#   1. matcher: 10 vs 10,000 rules (native, tools/bench_policy_match.c):
#      the matcher walks a trie over the name, so the ratio should be near 1;
#   2. audit: open+close of a host file in a box, the file under an `audit`
#      rule vs the same file under no rule (filebench.exe open, in one box,
#      ABAB rounds): the cost of writing an audit record per open.
# Prints figures and ratios; timing never decides the exit code.
#
#   ROUNDS   ABAB rounds for the audit benchmark (default 3)
#   N        opens per run (default 2000)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

ROUNDS=${ROUNDS:-3}
N=${N:-2000}
PIN=""
command -v taskset >/dev/null 2>&1 && PIN="taskset -c 0"

echo "== 1. policy matcher: 10 vs 10,000 rules (native)"
cc -O2 -std=c11 -D_GNU_SOURCE -Isrc tools/bench_policy_match.c src/core/policy_*.c src/core/ntpath*.c \
   src/core/error.c src/core/netrules.c src/core/objname.c -o build/bench_policy_match
$PIN build/bench_policy_match

echo
echo "== 2. audited vs unaudited open of a host file in a box"
[ -f build/win/bench/filebench.exe ] && [ -f build/win/fvm.dll ] || make -s win
export FVM_ROOT='C:\fvm-bench-policy'
data="$WINEPREFIX/drive_c/fvm-bench-policy-data"
rm -rf "$data"
mkdir -p "$data/plain" "$data/audited"
printf 'x' > "$data/plain/f.txt"
printf 'x' > "$data/audited/f.txt"
policy="$(mktemp --suffix=.ini)"
printf '[file]\ncow audit C:\\fvm-bench-policy-data\\audited\\**\n' > "$policy"
./fvm rm --force pbench >/dev/null 2>&1 || true
./fvm create pbench --policy "Z:$(echo "$policy" | tr / '\\')" >/dev/null
wineserver -p >/dev/null 2>&1 || true

median() { sed -n 's/.* median_us=\([0-9.]*\).*/\1/p'; }
plain_runs=(); audited_runs=()
for round in $(seq "$ROUNDS"); do
    p=$($PIN ./fvm run --box pbench -- build/win/bench/filebench.exe open 'C:\fvm-bench-policy-data\plain\f.txt' "$N" </dev/null | median)
    a=$($PIN ./fvm run --box pbench -- build/win/bench/filebench.exe open 'C:\fvm-bench-policy-data\audited\f.txt' "$N" </dev/null | median)
    printf '  round %d   unaudited %8s us   audited %8s us   ratio %s\n' "$round" "$p" "$a" \
        "$(awk -v a="$a" -v p="$p" 'BEGIN { printf "%.2fx", a / p }')"
    plain_runs+=("$p"); audited_runs+=("$a")
done
records=$(wc -l < "$WINEPREFIX/drive_c/fvm-bench-policy/boxes/pbench/audit.jsonl" 2>/dev/null || echo 0)
verify=$(./fvm logs pbench --verify 2>&1 | tail -1)
mp=$(printf '%s\n' "${plain_runs[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
ma=$(printf '%s\n' "${audited_runs[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "  median unaudited ${mp} us, audited ${ma} us: ratio $(awk -v a="$ma" -v p="$mp" 'BEGIN { printf "%.2fx", a / p }'),"\
" +$(awk -v a="$ma" -v p="$mp" 'BEGIN { printf "%.1f", a - p }') us per audited open"
echo "  audit records written: $records; fvm logs --verify: $verify"

./fvm rm --force pbench >/dev/null
rm -rf "$data" "$policy"
