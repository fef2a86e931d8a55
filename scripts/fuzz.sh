#!/usr/bin/env bash
# fuzz.sh - builds every fuzz/fuzz_*.c as a libFuzzer binary linked with the
# portable core (src/core/*.c) and runs each one for a bounded time.
#
#   FUZZ_SECONDS   seconds per target (default 20)
#   FUZZ_TARGETS   space-separated target names to run (default: all), e.g. "fuzz_ntpath"
#   FUZZ_JOBS      parallel fuzzing processes per target (default 1)
#
# Seeds: fuzz/seeds/NAME/ (optional, committed) holds inputs the target
# starts from besides its corpus.
# Everything it writes lives under build/fuzz/: binaries, a corpus per target
# (kept between runs so later runs start where earlier ones stopped; delete it
# to start over), and crash artifacts. Running it again is always safe.
# Exit status: 0 when no target crashed, 1 when one did (its artifact path is
# printed), 2 when the tools are missing or a target does not build.
set -eu

cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-20}
jobs=${FUZZ_JOBS:-1}
cc=${FUZZ_CC:-clang}
out=build/fuzz

if ! command -v "$cc" >/dev/null 2>&1; then
    echo "fuzz.sh: $cc not found (apt-get install clang libclang-rt-14-dev)" >&2
    exit 2
fi

set -- fuzz/fuzz_*.c
if [ ! -e "$1" ]; then
    echo "fuzz.sh: no fuzz/fuzz_*.c targets"
    exit 0
fi

mkdir -p "$out/artifacts" "$out/core"
crashed=""
cflags=(-std=c11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Wno-unused-parameter -fno-sanitize-recover=all -Isrc -Iinclude)

# The portable core is compiled once (instrumented for the fuzzer, two at a
# time) and linked into every target; test.sh runs this script once per
# target, and compiling the whole core again for each one took most of the
# suite's fuzzing time. An object is rebuilt when its source or any core
# header is newer.
core_objects=()
stale=()
newest_header=$(ls -t src/core/*.h | head -1)
for c in src/core/*.c; do
    o="$out/core/$(basename "$c" .c).o"
    core_objects+=("$o")
    if [ ! -e "$o" ] || [ "$c" -nt "$o" ] || [ "$newest_header" -nt "$o" ]; then
        stale+=("$c")
    fi
done
if [ ${#stale[@]} -gt 0 ]; then
    echo "== compiling ${#stale[@]} core files for the fuzzers"
    if ! printf '%s\n' "${stale[@]}" | xargs -P 2 -I{} sh -c \
            'exec "$0" "$@" -fsanitize=fuzzer-no-link,address,undefined -c "{}" -o "'"$out"'/core/$(basename "{}" .c).o"' \
            "$cc" "${cflags[@]}"; then
        echo "fuzz.sh: the core does not build for the fuzzers" >&2
        exit 2
    fi
fi
for src in "$@"; do
    name=$(basename "$src" .c)
    if [ -n "${FUZZ_TARGETS:-}" ]; then
        case " $FUZZ_TARGETS " in
        *" $name "*) ;;
        *) continue ;;
        esac
    fi
    bin="$out/$name"
    echo "== building $name"
    # -fno-sanitize-recover: an UBSan finding is a crash, not a log line.
    if ! "$cc" "${cflags[@]}" -fsanitize=fuzzer,address,undefined "$src" "${core_objects[@]}" -o "$bin"; then
        echo "fuzz.sh: $name does not build" >&2
        exit 2
    fi
    corpus="$out/corpus/$name"
    mkdir -p "$corpus"
    # fuzz/seeds/NAME/, when there is one: inputs that start the fuzzer
    # deep inside what it checks (read only; new units go to the corpus).
    seeds=""
    if [ -d "fuzz/seeds/$name" ]; then
        seeds="$(pwd)/fuzz/seeds/$name"
    fi
    log="$out/$name.log"
    echo "== running $name for ${seconds}s (corpus $corpus, log $log)"
    # With -jobs, libFuzzer writes fuzz-N.log into the current directory:
    # run from build/fuzz so the tree stays clean.
    parallel=""
    logs="$log"
    rm -f "$out"/fuzz-*.log
    if [ "$jobs" -gt 1 ]; then
        parallel="-jobs=$jobs -workers=$jobs"
        logs="$out/fuzz-*.log"
    fi
    status=0
    # shellcheck disable=SC2086 # $parallel and $seeds are empty or options
    (cd "$out" && exec "./$name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        $parallel -artifact_prefix="artifacts/$name-" "corpus/$name" $seeds) >"$log" 2>&1 || status=$?
    # shellcheck disable=SC2086 # $logs holds a glob on purpose
    cat $logs | grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' || true
    if [ "$status" -ne 0 ]; then
        echo "fuzz.sh: $name FAILED (exit $status); last lines of its logs:" >&2
        # shellcheck disable=SC2086
        tail -n 30 $logs "$log" >&2
        ls -1 "$out/artifacts/$name-"* 2>/dev/null >&2 || true
        crashed="$crashed $name"
    fi
done

if [ -n "$crashed" ]; then
    echo "fuzz.sh: crashes in:$crashed" >&2
    exit 1
fi
echo "fuzz.sh: no crashes"
