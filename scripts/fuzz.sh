#!/usr/bin/env bash
# libFuzzer on JSONCodec (the parser every request body goes through): each input is parsed,
# and whatever parses must serialise, parse back to an equal value and serialise to the same
# bytes (JSONRoundTrip.check); a trap, an AddressSanitizer report, an input slower than
# FUZZ_TIMEOUT seconds or more than 2 GB of memory is a finding. Exits non-zero on a finding and
# keeps the input in FUZZ_ARTIFACTS.
#
#   scripts/fuzz.sh                    # 10 minutes
#   scripts/fuzz.sh 3600               # an hour
#   FUZZ_JOBS=2 scripts/fuzz.sh 3600   # two fuzzing processes sharing the corpus
#   FUZZ_CONFIG=release scripts/fuzz.sh
#
# The seeds are Fuzz/json-corpus (committed: hand-written edge cases and regression inputs). New
# inputs the fuzzer finds go to .build-fuzz/json-corpus (git-ignored), which later runs start
# from. A finding (crash-*, timeout-*, oom-*) is kept in FUZZ_ARTIFACTS (default
# .ci-artifacts/fuzz-json); replay it with an ordinary build:
#
#   swift run onboard-fuzz-json .ci-artifacts/fuzz-json/crash-<sha1>
#
# then fix, and add the input to Fuzz/json-corpus as a regression seed.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_TO_FUZZ=${1:-${FUZZ_SECONDS:-600}}
FUZZ_JOBS=${FUZZ_JOBS:-1}
FUZZ_CONFIG=${FUZZ_CONFIG:-debug}
FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-10}
FUZZ_MAX_LEN=${FUZZ_MAX_LEN:-4096}
FUZZ_ARTIFACTS=${FUZZ_ARTIFACTS:-.ci-artifacts/fuzz-json}
scratch=.build-fuzz
corpus=$scratch/json-corpus
seeds=Fuzz/json-corpus

# A scratch path of its own: the sanitizer flags would otherwise rebuild all of .build.
# (ld.gold warns "Cannot export local symbol" for ASan's symbols: harmless, left out.)
mkdir -p "$scratch"
if ! swift build -c "$FUZZ_CONFIG" --product onboard-fuzz-json --scratch-path "$scratch" \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING >"$scratch/fuzz-build.log" 2>&1; then
    grep -v "Cannot export local symbol" "$scratch/fuzz-build.log" | grep -E "error" >&2 || true
    echo "fuzz.sh: the fuzzer did not build (log: $scratch/fuzz-build.log)" >&2
    exit 1
fi
binary="$scratch/$FUZZ_CONFIG/onboard-fuzz-json"
[[ -x "$binary" ]] || { echo "fuzz.sh: the fuzzer did not build ($binary missing)" >&2; exit 1; }

mkdir -p "$corpus" "$FUZZ_ARTIFACTS"
artifacts=$(cd "$FUZZ_ARTIFACTS" && pwd)
# Findings of an earlier run would read as this run's.
rm -f "$FUZZ_ARTIFACTS"/crash-* "$FUZZ_ARTIFACTS"/timeout-* "$FUZZ_ARTIFACTS"/oom-* "$FUZZ_ARTIFACTS"/leak-*
log="$FUZZ_ARTIFACTS/fuzz.log"
echo "fuzz.sh: $SECONDS_TO_FUZZ s, $FUZZ_JOBS job(s), $FUZZ_CONFIG build, inputs up to $FUZZ_MAX_LEN bytes; log in $log"

# The first directory receives new inputs; the seeds are only read.
fuzz_args=(
    -max_total_time="$SECONDS_TO_FUZZ" -max_len="$FUZZ_MAX_LEN" -timeout="$FUZZ_TIMEOUT"
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/"
)
# Swift's crash backtracer reads the stack in a way AddressSanitizer reports as a second error
# after the first; libFuzzer's own report (with the input) is what counts.
export SWIFT_BACKTRACE=enable=no
status=0
if (( FUZZ_JOBS > 1 )); then
    # -jobs writes fuzz-<n>.log files in the working directory: run there.
    fuzz_args+=(-jobs="$FUZZ_JOBS" -workers="$FUZZ_JOBS")
    root=$PWD
    (cd "$artifacts" && "$root/$binary" "${fuzz_args[@]}" "$root/$corpus" "$root/$seeds") >"$log" 2>&1 || status=$?
    cat "$FUZZ_ARTIFACTS"/fuzz-*.log >>"$log" 2>/dev/null || true
else
    "$binary" "${fuzz_args[@]}" "$corpus" "$seeds" >"$log" 2>&1 || status=$?
fi

grep -E "^stat::|^Done|DONE" "$log" || true
findings=$(find "$FUZZ_ARTIFACTS" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | sort)
if [[ -n "$findings" || $status -ne 0 ]]; then
    grep -E -A 30 "^==[0-9]+==|Fatal error|SUMMARY|ERROR: libFuzzer" "$log" | head -80 >&2 || true
    echo "fuzz.sh: the fuzzer found a failing input (exit $status):" >&2
    for finding in $findings; do
        echo "  $finding ($(stat -c %s "$finding") bytes): $(head -c 120 "$finding" | od -An -c | tr -s ' ' | head -c 300)" >&2
    done
    echo "replay: swift run onboard-fuzz-json <file>; then fix and add it to $seeds" >&2
    exit 1
fi
echo "fuzz.sh: no findings; the corpus now holds $(find "$corpus" -type f | wc -l) generated inputs"
