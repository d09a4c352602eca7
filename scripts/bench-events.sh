#!/usr/bin/env bash
# Benchmark: POST /onboard with the webhook sink on vs off, on a release build, with wrk on
# 127.0.0.1 (the method of scripts/bench.sh). Prints requests/s, p50 and p99 of each, and for
# each round how long the server took after the round to deliver what it had recorded.
#
#   scripts/bench-events.sh                 # 64 connections, 3 rounds of 10 s per server
#   CONNECTIONS=128 DURATION=30s ROUNDS=5 scripts/bench-events.sh
#   ONBOARD_BINARY=.build-release/release/onboard scripts/bench-events.sh   # skip the build
#
# Two servers run side by side, each on its own fresh SQLite file, --rate-limits off:
# - off: no sink configured, so the default log sink (one info line per event, to the log file);
# - on:  --webhook-url to scripts/webhook_receiver.py on 127.0.0.1 (Python's ThreadingHTTPServer,
#        verifying every signature) and --webhook-secret.
# Events are recorded in both (every onboarding writes its event in its transaction); only the
# delivery differs. The rounds alternate off/on; after each round the script waits until that
# server's outbox is empty (every event delivered), so no round pays for the previous round's
# backlog, and reports that wait ("drain"). The median round (by requests/s) of each is reported,
# with the CPU seconds the server and the receiver used during the round and its drain (wrk, the
# servers and the receiver share the machine's cores).
set -euo pipefail

cd "$(dirname "$0")/.."
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-3s}

command -v wrk >/dev/null || { echo "bench-events.sh: wrk is missing (apt-get install wrk)" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "bench-events.sh: sqlite3 is missing (apt-get install sqlite3)" >&2; exit 1; }

if [[ -z "${ONBOARD_BINARY:-}" ]]; then
    SCRATCH=${SCRATCH:-.build-release}
    swift build -c release --scratch-path "$SCRATCH" --product onboard >&2
    ONBOARD_BINARY="$SCRATCH/release/onboard"
fi

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# Waits for "listening on http://127.0.0.1:PORT..." in a log and prints PORT.
port_of() {
    local log=$1 port=""
    # The background job opens its log itself, maybe after this starts looking.
    touch "$log"
    for _ in $(seq 1 200); do
        port=$(sed -n 's|^listening on http://127.0.0.1:\([0-9]*\).*$|\1|p' "$log")
        [[ -n "$port" ]] && break
        sleep 0.05
    done
    [[ -n "$port" ]] || { echo "bench-events.sh: did not start:" >&2; cat "$log" >&2; exit 1; }
    echo "$port"
}

secret="whsec_$(head -c 32 /dev/urandom | base64 -w0)"
python3 scripts/webhook_receiver.py --port 0 --secret "$secret" >"$work/receiver.log" 2>&1 &
pids+=($!)
receiver_pid=$!
receiver_port=$(port_of "$work/receiver.log")

ONBOARD_ADMIN_TOKEN="bench-admin-token-0123456789abcdef" \
    "$ONBOARD_BINARY" serve --port 0 --database "$work/off.sqlite" --rate-limits off >"$work/off.log" 2>&1 &
pids+=($!)
off_pid=$!
ONBOARD_ADMIN_TOKEN="bench-admin-token-0123456789abcdef" \
    "$ONBOARD_BINARY" serve --port 0 --database "$work/on.sqlite" --rate-limits off \
    --webhook-url "http://127.0.0.1:$receiver_port/hook" --webhook-secret "$secret" >"$work/on.log" 2>&1 &
pids+=($!)
on_pid=$!
off_base="http://127.0.0.1:$(port_of "$work/off.log")"
on_base="http://127.0.0.1:$(port_of "$work/on.log")"

cat >"$work/onboard.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"clientName": "Acme Corp", "clientPhone": "+1234567890"}'
LUA

sql() { sqlite3 -cmd ".timeout 10000" "$1" "$2"; }
# Outbox items not delivered yet (the 16 shards; not the failed partition).
pending() { sql "$work/$1.sqlite" "SELECT count(*) FROM items WHERE tenantId LIKE '\\_outbox#%' ESCAPE '\\' AND resourceKey LIKE 'EVENT#%'"; }
# Waits until server $1's outbox is empty; prints the seconds it took.
drain() {
    local start now
    start=$(date +%s.%N)
    while [[ "$(pending "$1")" != 0 ]]; do
        sleep 0.1
        if awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { exit !(b - a > 600) }'; then
            echo "bench-events.sh: the $1 server's outbox did not empty within 600 s" >&2
            exit 1
        fi
    done
    now=$(date +%s.%N)
    awk -v a="$start" -v b="$now" 'BEGIN { printf "%.1f", b - a }'
}
events() { sql "$work/$1.sqlite" "SELECT count(*) FROM items WHERE tenantId NOT LIKE '\\_%' ESCAPE '\\' AND resourceKey LIKE 'EVENT#%'"; }

# CPU seconds (user + system) a process has used so far.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }

run() { # name, url -> "name rps p50 p99 non2xx"
    local name=$1 url=$2
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$work/onboard.lua" "$url" >"$work/$name.txt"
    awk -v name="$name" '
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
        /^ +50%/ { p50 = ms($2) }
        /^ +99%/ { p99 = ms($2) }
        /^Requests\/sec:/ { rps = $2 }
        /Non-2xx or 3xx responses/ { errors = $5 }
        END { printf "%s %.0f %.2f %.2f %s\n", name, rps, p50, p99, (errors == "" ? 0 : errors) }
    ' "$work/$name.txt"
}

# Warm up each once (and let it deliver), then alternate off/on.
for name in off on; do
    base_var="${name}_base"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -s "$work/onboard.lua" "${!base_var}/onboard" >/dev/null
    drain "$name" >/dev/null
done
: >"$work/off.rounds"
: >"$work/on.rounds"
for round in $(seq 1 "$ROUNDS"); do
    for name in off on; do
        base_var="${name}_base"
        pid_var="${name}_pid"
        before=$(events "$name")
        server_cpu=$(cpu "${!pid_var}")
        receiver_cpu=$(cpu "$receiver_pid")
        result=$(run "$name" "${!base_var}/onboard")
        waited=$(drain "$name")
        recorded=$(( $(events "$name") - before ))
        server_cpu=$(awk -v a="$server_cpu" -v b="$(cpu "${!pid_var}")" 'BEGIN { printf "%.1f", b - a }')
        receiver_cpu=$(awk -v a="$receiver_cpu" -v b="$(cpu "$receiver_pid")" 'BEGIN { printf "%.1f", b - a }')
        echo "$result $waited $recorded $server_cpu $receiver_cpu" | tee -a "$work/$name.rounds" | sed "s/^/round $round: /" >&2
    done
done
median() { sort -k2,2n "$1" | awk -v n="$ROUNDS" 'NR == int((n + 1) / 2)'; }
read -r _ f_rps f_p50 f_p99 f_err f_drain f_events f_cpu f_rcpu <<<"$(median "$work/off.rounds")"
read -r _ n_rps n_p50 n_p99 n_err n_drain n_events n_cpu n_rcpu <<<"$(median "$work/on.rounds")"

# Every event of the "on" server reached the receiver, verified (at least once; retries may repeat).
stats=$(curl -sf "http://127.0.0.1:$receiver_port/_stats")
accepted_ids=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["acceptedIds"])' <<<"$stats")
rejected=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["rejected"])' <<<"$stats")
on_events=$(events on)
failed=$(sql "$work/on.sqlite" "SELECT count(*) FROM items WHERE tenantId = '_outbox-failed'")

echo
echo "machine: $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr)"
echo "load: wrk -t$THREADS -c$CONNECTIONS -d$DURATION on 127.0.0.1 (POST /onboard), median of $ROUNDS alternating rounds; rate limits off"
printf "| sink | onboardings/s | p50 ms | p99 ms | non-2xx | events recorded | drain after the round s | server CPU s | server CPU ms per event | receiver CPU s |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
per_event() { awk -v c="$1" -v e="$2" 'BEGIN { printf "%.2f", (e > 0 ? 1000 * c / e : 0) }'; }
printf "| off (log) | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n" "$f_rps" "$f_p50" "$f_p99" "$f_err" "$f_events" "$f_drain" "$f_cpu" "$(per_event "$f_cpu" "$f_events")" "$f_rcpu"
printf "| on (webhook) | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n" "$n_rps" "$n_p50" "$n_p99" "$n_err" "$n_events" "$n_drain" "$n_cpu" "$(per_event "$n_cpu" "$n_events")" "$n_rcpu"
echo
echo "on/off: $(awk -v n="$n_rps" -v f="$f_rps" 'BEGIN { printf "%.0f", 100 * n / f }')%"
echo "webhook: $on_events events recorded, $accepted_ids distinct ids accepted by the receiver, $rejected refused signatures, $failed failed"
if [[ "$f_err" != "0" || "$n_err" != "0" ]]; then
    echo "bench-events.sh: some onboardings were not 2xx" >&2
    exit 1
fi
if [[ "$accepted_ids" != "$on_events" || "$rejected" != "0" || "$failed" != "0" ]]; then
    echo "bench-events.sh: not every event was delivered and verified" >&2
    exit 1
fi
