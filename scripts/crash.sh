#!/usr/bin/env bash
# Crash rounds: the server on one SQLite file under concurrent onboarding load (scripts/crash_load.py,
# threads on 127.0.0.1, recording every acknowledged 201: tenantId, name, phone, API key), killed
# with SIGKILL at a random moment, restarted on the same file; then every tenant acknowledged so
# far (this round and the earlier ones) must be readable with the admin token as acknowledged
# (name, phone, ACTIVE), its API key must still read it, and GET /tenants must page through every
# tenant, acknowledged or not, without an error. The restarted server takes the next round's load.
#
#   scripts/crash.sh [--rounds N] [--threads N]
#
# ONBOARD_BINARY picks the binary (default .build/release/onboard; CI passes .build/debug/onboard).
# Prints each round's counts; exits non-zero on any loss.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=3
threads=8
while (( $# )); do
    case $1 in
        --rounds) rounds=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        *) echo "usage: $0 [--rounds N] [--threads N]" >&2; exit 2 ;;
    esac
done
binary=${ONBOARD_BINARY:-.build/release/onboard}
[[ -x $binary ]] || { echo "no $binary: swift build -c release (or set ONBOARD_BINARY)" >&2; exit 2; }

work=$(mktemp -d)
server_pid=""
load_pid=""
cleanup() {
    [[ -n $load_pid ]] && kill "$load_pid" 2>/dev/null
    [[ -n $server_pid ]] && kill -9 "$server_pid" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
# A signal ends the script through its EXIT trap, which stops the server and the load.
trap 'exit 130' INT
trap 'exit 143' TERM

admin_token="crash-rounds-admin-token-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
database=$work/crash.sqlite
acks=$work/acks.jsonl
: >"$acks"

start_server() { # sets server_pid and base
    local log=$work/server-$1.log
    : >"$log"
    ONBOARD_ADMIN_TOKEN=$admin_token "$binary" serve --port 0 --database "$database" --rate-limits off \
        >"$log" 2>&1 &
    server_pid=$!
    base=""
    for _ in $(seq 1 600); do
        base=$(sed -n 's|^listening on \(http://.*\)$|\1|p' "$log")
        [[ -n $base ]] && return 0
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.05
    done
    cat "$log" >&2
    echo "crash: the server did not start ($1)" >&2
    exit 1
}

start_server start
for round in $(seq 1 "$rounds"); do
    python3 scripts/crash_load.py load "$base" "$acks" --threads "$threads" --round "$round" &
    load_pid=$!
    # A random moment between 0.5 and 3.5 s into the load.
    delay=$(python3 -c 'import random; print(round(random.uniform(0.5, 3.5), 2))')
    sleep "$delay"
    kill -9 "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    echo "round $round: SIGKILL after ${delay}s of load"
    wait "$load_pid"
    load_pid=""
    start_server "round-$round"
    python3 scripts/crash_load.py verify "$base" "$acks" --admin-token "$admin_token" --label "round $round: " || {
        echo "crash: round $round lost acknowledged data (server log: restart of round $round)" >&2
        tail -20 "$work/server-round-$round.log" >&2
        exit 1
    }
done
kill "$server_pid" && wait "$server_pid" 2>/dev/null || true
server_pid=""
echo "crash: $rounds rounds, $(wc -l <"$acks") acknowledged tenants, none lost"
