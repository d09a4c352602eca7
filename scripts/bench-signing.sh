#!/usr/bin/env bash
# What every DynamoDB call costs in this process before it reaches the network: mapping an item
# to DynamoDB's JSON, encoding the PutItem request, signing it with SigV4. Release build, no I/O.
#
#   scripts/bench-signing.sh [iterations]      # default 200000
set -euo pipefail
cd "$(dirname "$0")/.."
SCRATCH=${SCRATCH:-.build-release}
swift build -c release --scratch-path "$SCRATCH" --product onboard-bench >&2
echo "machine: $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(uname -sr)"
for round in 1 2 3; do
    "$SCRATCH/release/onboard-bench" "${1:-200000}" | sed "s/^/round $round: /"
done
