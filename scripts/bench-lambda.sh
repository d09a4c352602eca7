#!/usr/bin/env bash
# Cold start and warm per-invocation overhead of the Lambda bootstrap (release build), against a
# local Runtime API (scripts/lambda_runtime_api.py) and DynamoDB on moto, all on 127.0.0.1.
#
#   scripts/bench-lambda.sh                     # ROUNDS=20 cold starts, WARM=2000 invocations
#   ONBOARD_BINARY=path scripts/bench-lambda.sh # skip the build
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${ONBOARD_BINARY:-}" ]]; then
    SCRATCH=${SCRATCH:-.build-release}
    swift build -c release --scratch-path "$SCRATCH" --product onboard >&2
    ONBOARD_BINARY="$SCRATCH/release/onboard"
fi
echo "machine: $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(uname -sr)"
python3 scripts/bench_lambda.py "$ONBOARD_BINARY"
