#!/usr/bin/env bash
# bench/sync.sh - what sync costs, as ratios measured in this one invocation.
# See bench/README.md ("Sync").
#
#   export   a box whose only change is 1 byte in a BIG_MIB host file: the
#            package size, and the time of `fvm export` (its own measure,
#            in-process, printed "in N ms") against reading the file once
#            (synctool read, ReadFile of the whole file, warm cache)
#   commit   COMMIT_FILES new files of COMMIT_MIB MiB each made in a box,
#            committed: the apply phase of `fvm commit` (its own "applied
#            ... in N ms") against CopyFileW of the same files, back to back
#            in one process (synctool copy), as throughput: CopyFileW time /
#            commit time; once as
#            commit runs (renames: box and host share a volume) and once
#            with FVM_COMMIT_COPY=1 (copies, as for a box on another volume;
#            the box copies are then set aside and freed by a detached
#            `fvm __reap` after the commit returns: how long that takes after
#            it is printed too)
#
# Environment (all optional):
#   WINEPREFIX    Wine prefix (default: $HOME/.cache/fvm/wineprefix)
#   FVM_ROOT      where the bench boxes live (default: C:\fvm-bench-sync, private)
#   BIG_MIB       size of the exported file (default 256)
#   COMMIT_FILES  files committed (default 4)
#   COMMIT_MIB    size of each (default 64)
#   ROUNDS        rounds of each measure, the median is printed (default 3)
#
# Prints numbers only: the exit code says whether the benchmark ran, never
# whether a target was met.
set -euo pipefail

cd "$(dirname "$0")/.."
[ $# = 0 ] || { echo "usage: bench/sync.sh   (settings through the environment, see the header)" >&2; exit 2; }
BIG_MIB=${BIG_MIB:-256}
COMMIT_FILES=${COMMIT_FILES:-4}
COMMIT_MIB=${COMMIT_MIB:-64}
ROUNDS=${ROUNDS:-3}
. scripts/env.sh
export WINEDEBUG=-all
export FVM_ROOT=${FVM_ROOT:-'C:\fvm-bench-sync'}

W=build/win
FVM=$W/fvm.exe
ST=$W/apps/synctool.exe
FT=$W/apps/filetool.exe
DATA_WIN='C:\fvm-bench-sync-data'
DATA="$WINEPREFIX/drive_c/fvm-bench-sync-data"
ROOT="$WINEPREFIX/drive_c/fvm-bench-sync"
PKG_WIN='C:\fvm-bench-sync-data\box.fvmpack'

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ms_of() { sed -n "s/.*$1 \([0-9.]*\).*/\1/p" | tail -1; }

cleanup() {
    wine "$FVM" rm --force sexport >/dev/null 2>&1 || true
    wine "$FVM" rm --force scommit >/dev/null 2>&1 || true
    rm -rf "$DATA" "$ROOT"
}
trap cleanup EXIT
cleanup
mkdir -p "$DATA"
head -c $((BIG_MIB << 20)) /dev/urandom > "$DATA/big.bin"
policy="$DATA/policy.ini"
printf 'template default\n[sync]\ncommit %s\\**\n' "$DATA_WIN" > "$policy"

# ---- export -----------------------------------------------------------------
wine "$FVM" create sexport --policy "$(winepath -w "$policy")" >/dev/null
wine "$FVM" run --box sexport "$ST" poke "$DATA_WIN\\big.bin" $((BIG_MIB << 19)) X >/dev/null
# The broker hashes the base in the background: wait until it is recorded.
for _ in $(seq 100); do
    wine "$FVM" diff sexport --base | grep -q unknown || break
    sleep 0.2
done
# The broker keeps the base's block fingerprints when it hashes the base
# (common/blockprint.h), so even the first export reads the box copy only;
# an export that finds none reads both and keeps them. The box copy's
# BIG_MIB written just above are still being written back: the export's
# own flush of its package (FlushFileBuffers: an fsync, and on ext4 a
# journal commit) would wait for that writeback, which belongs to the
# write, not to the export. So it is finished first (sync).
sync
# Each round reads the file once and exports once, back to back, in an
# order that alternates (odd rounds read first): how fast this VM reads
# page cache drifts between invocations, and whichever of two runs goes
# second can find the first one's work done for it (see commit, below), so
# each round's own ratio is kept and the rounds' geometric mean printed,
# next to the ratio of the medians.
exp_ms=(); read_ms=(); ratios=(); size=0; first_ms=; first_ratio=
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
for round in $(seq $((ROUNDS + 1))); do
    read_first=$((round % 2))
    [ "$read_first" = 1 ] && r1=$(wine "$ST" read "$DATA_WIN\\big.bin" | ms_of OK)
    out=$(wine "$FVM" export sexport "$PKG_WIN")
    [ "$read_first" = 1 ] || r1=$(wine "$ST" read "$DATA_WIN\\big.bin" | ms_of OK)
    ms=$(echo "$out" | sed -n 's/.* in \([0-9]*\) ms.*/\1/p')
    if [ "$round" = 1 ]; then
        first_ms=$ms; first_ratio=$(ratio "$ms" "$r1")
    else
        exp_ms+=("$ms"); read_ms+=("$r1"); ratios+=("$(ratio "$ms" "$r1")")
    fi
    size=$(stat -c %s "$DATA/box.fvmpack")
done
e=$(printf '%s\n' "${exp_ms[@]}" | median); r=$(printf '%s\n' "${read_ms[@]}" | median)
echo "export: 1-byte change in a $BIG_MIB MiB file: package $size bytes ($((size / 1024)) KiB; target <= 64 KiB)"
echo "export: first export $first_ms ms: ratio $first_ratio to the read next to it;" \
     "later exports $e ms against reading the file once $r ms (medians): ratio $(ratio "$e" "$r");" \
     "geometric mean of the rounds' own ratios $(printf '%s\n' "${ratios[@]}" | awk '{s += log($1)} END {printf "%.2f", exp(s / NR)}')" \
     "(target <= 1.2; per round, alternately read first and export first: $(IFS=' '; echo "${ratios[*]}"))"

# ---- commit -----------------------------------------------------------------
# Twice: as commit runs (the box copy renamed over the host file: box and
# host share a volume here), and with FVM_COMMIT_COPY=1 (copied next to the
# host file, then renamed: what a box on another volume costs).
# How fast the kernel fills new page cache moves by up to 5x between two
# invocations on this machine (a PVM guest: 256 MiB copied by CopyFileW in
# 91-529 ms in one minute, same files, same folder, quiet machine), and
# which one goes second matters (it finds the pages the first one freed, or
# fresh ones that cost ~8 us each at first touch). So the rounds alternate
# the order: odd rounds copy first and commit second, even rounds the other
# way; each copy's output is freed before the other runs. (Until session
# 13 the script also printed the commit's own CopyFileExW time over its
# apply time; since the copies are made on two threads (commitcopy.c) that
# share says nothing about throughput and is gone.)
copy_baseline() {   # $1: folder of the files to copy; prints CopyFileW ms
    local pairs=() i
    for i in $(seq "$COMMIT_FILES"); do
        pairs+=("$(winepath -w "$1/f$i.bin")" "$DATA_WIN\\copy\\f$i.bin")
    done
    wine "$ST" copy "${pairs[@]}" | ms_of OK
    rm -f "$DATA/copy"/*
    sync
}
commit_round() {   # $1: FVM_COMMIT_COPY value, $2: round; prints apply ms, CopyFileW ms, freed ms
    wine "$FVM" rm --force scommit >/dev/null 2>&1 || true
    rm -rf "$DATA/c" "$DATA/copy"; mkdir -p "$DATA/c" "$DATA/copy"
    wine "$FVM" create scommit --policy "$(winepath -w "$policy")" >/dev/null
    for i in $(seq "$COMMIT_FILES"); do
        wine "$FVM" run --box scommit "$FT" fill "$DATA_WIN\\c\\f$i.bin" $((COMMIT_MIB << 20)) >/dev/null
    done
    boxc="$ROOT/boxes/scommit/drive/C/fvm-bench-sync-data/c"
    # Each timed copy starts with no dirty pages pending (else the second
    # writer pays for the first one's write-back).
    sync
    local t="" out
    [ $(($2 % 2)) = 1 ] && t=$(copy_baseline "$boxc")
    out=$(FVM_COMMIT_COPY=$1 wine "$FVM" commit scommit 2>&1)
    # By a copy, the box copies are set aside and freed by a detached
    # `fvm __reap` once the commit has returned: how long after that.
    t0=$(date +%s%N)
    while [ -e "$ROOT/boxes/scommit/sync/landed" ]; do sleep 0.01; done
    freed=$(( ($(date +%s%N) - t0) / 1000000 ))
    sync
    # Second in even rounds: the same bytes, now in the host's files.
    [ -n "$t" ] || t=$(copy_baseline "$DATA/c")
    applied=$(echo "$out" | sed -n 's/^applied .* in \([0-9]*\) ms.*/\1/p')
    echo "$applied $t $freed"
}
mib=$((COMMIT_FILES * COMMIT_MIB))
for mode in 0 1; do
    com_ms=(); copy_ms=(); freed_ms=(); ratios=()
    for round in $(seq $(( (ROUNDS + 1) / 2 * 2 ))); do   # even: both orders equally often
        read -r c k f < <(commit_round "$mode" "$round")
        com_ms+=("$c"); copy_ms+=("$k"); freed_ms+=("$f")
        ratios+=("$(awk -v a="$k" -v b="$c" 'BEGIN{printf "%.2f", a/(b > 0 ? b : 1)}')")
    done
    c=$(printf '%s\n' "${com_ms[@]}" | median); k=$(printf '%s\n' "${copy_ms[@]}" | median)
    f=$(printf '%s\n' "${freed_ms[@]}" | median)
    how=$([ "$mode" = 0 ] && echo "renamed into place" || echo "copied (FVM_COMMIT_COPY=1)")
    # The throughput is the geometric mean of the rounds' ratios: with as
    # many rounds in each order, the order's effect cancels out of it.
    echo "commit: $mib MiB in $COMMIT_FILES new files, $how: commit $c ms, CopyFileW $k ms (medians):" \
         "throughput $(printf '%s\n' "${ratios[@]}" | awk '{s += log($1)} END {printf "%.2f", exp(s / NR)}') of CopyFileW" \
         "(target >= 0.90; geometric mean of the rounds, alternately copy first and commit first: $(IFS=' '; echo "${ratios[*]}"))"
    if [ "$mode" = 1 ]; then
        echo "commit: the box copies freed (fvm __reap) $f ms after the commit returned"
    fi
done
