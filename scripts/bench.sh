#!/usr/bin/env bash
# Benchmark: GET /health, POST /onboard and GET /tenants/{id} with the tenant's API key, in the
# same run, on a release build, with wrk on 127.0.0.1. Prints requests/s, p50 and p99 for each
# and the ratio onboard/health.
#
#   scripts/bench.sh                       # 64 connections, 3 rounds of 10 s per endpoint
#   CONNECTIONS=128 DURATION=30s ROUNDS=5 scripts/bench.sh
#   ONBOARD_BINARY=.build/release/onboard scripts/bench.sh   # skip the build
#   LIMITS=unreached scripts/bench.sh      # rate limits on, set too high to be hit: their cost
#   IDEMPOTENCY=on scripts/bench.sh        # also POST /onboard with a fresh Idempotency-Key per
#                                          # request, and with one key (every answer a replay)
#
# By default the server runs with --rate-limits off (one client address would be limited at
# once); LIMITS=unreached keeps every bucket but with limits no run reaches.
#
# The endpoints alternate for ROUNDS rounds and the median round of each is reported, since wrk
# and the server share the cores and single runs vary by 10-20 %.
# The server runs as shipped: SQLite with synchronous=FULL (every 201 fsynced), logging one
# info line per request to a file. wrk shares the machine's cores with the server.
set -euo pipefail

cd "$(dirname "$0")/.."
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-3s}
LIMITS=${LIMITS:-off}
IDEMPOTENCY=${IDEMPOTENCY:-off}
case "$LIMITS" in
    off) limit_args=(--rate-limits off) ;;
    unreached) limit_args=(--rate-limit 1000000/s:1000000 --anonymous-rate-limit 1000000/s:1000000 --onboard-rate-limit 1000000/s:1000000) ;;
    *) echo "bench.sh: LIMITS is off or unreached" >&2; exit 1 ;;
esac

command -v wrk >/dev/null || { echo "bench.sh: wrk is missing (apt-get install wrk)" >&2; exit 1; }

if [[ -z "${ONBOARD_BINARY:-}" ]]; then
    SCRATCH=${SCRATCH:-.build-release}
    swift build -c release --scratch-path "$SCRATCH" --product onboard >&2
    ONBOARD_BINARY="$SCRATCH/release/onboard"
fi

work=$(mktemp -d)
server_pid=""
cleanup() {
    [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

ONBOARD_ADMIN_TOKEN="bench-admin-token-0123456789abcdef" \
    "$ONBOARD_BINARY" serve --port 0 --database "$work/bench.sqlite" "${limit_args[@]}" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 200); do
    port=$(sed -n 's|^listening on http://127.0.0.1:\([0-9]*\)$|\1|p' "$work/server.log")
    [[ -n "$port" ]] && break
    sleep 0.05
done
[[ -n "${port:-}" ]] || { echo "bench.sh: the server did not start:" >&2; cat "$work/server.log" >&2; exit 1; }
base="http://127.0.0.1:$port"

cat >"$work/onboard.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"clientName": "Acme Corp", "clientPhone": "+1234567890"}'
LUA

# A fresh Idempotency-Key per request: thread number, start time and a counter.
cat >"$work/onboard-idem.lua" <<'LUA'
local threads = 0
function setup(thread)
    thread:set("tid", threads)
    threads = threads + 1
end
function init(args)
    prefix = "bench-" .. tid .. "-" .. os.time() .. "-"
    n = 0
end
function request()
    n = n + 1
    return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["Idempotency-Key"] = prefix .. n},
        '{"clientName": "Acme Corp", "clientPhone": "+1234567890"}')
end
LUA

# One tenant whose API key authenticates the read benchmark.
created=$(curl -sf -X POST "$base/onboard" -H "Content-Type: application/json" -d '{"clientName": "Reader", "clientPhone": "+1234567890"}')
tenant_id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["tenantId"])' <<<"$created")
tenant_key=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["apiKey"])' <<<"$created")

# wrk --latency prints "Requests/sec:" and a latency distribution; keep rps, p50, p99 in ms.
run() { # name, url, extra wrk args...
    local name=$1 url=$2
    shift 2
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" "$url" >"$work/$name.txt"
    awk -v name="$name" '
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
        /^ +50%/ { p50 = ms($2) }
        /^ +99%/ { p99 = ms($2) }
        /^Requests\/sec:/ { rps = $2 }
        /Non-2xx or 3xx responses/ { errors = $5 }
        /Socket errors/ { socket = $0 }
        END { printf "%s %.0f %.2f %.2f %s\n", name, rps, p50, p99, (errors == "" ? 0 : errors) }
    ' "$work/$name.txt"
}

# Warm up once, then alternate the endpoints; keep each endpoint's median round (by requests/s).
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" "$base/health" >/dev/null
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -s "$work/onboard.lua" "$base/onboard" >/dev/null
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -H "Authorization: Bearer $tenant_key" "$base/tenants/$tenant_id" >/dev/null
: >"$work/health.rounds"
: >"$work/onboard.rounds"
: >"$work/read.rounds"
if [[ "$IDEMPOTENCY" == on ]]; then
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -s "$work/onboard-idem.lua" "$base/onboard" >/dev/null
    : >"$work/onboard-idem.rounds"
    : >"$work/onboard-replay.rounds"
fi
for round in $(seq 1 "$ROUNDS"); do
    run health "$base/health" | tee -a "$work/health.rounds" | sed "s/^/round $round: /" >&2
    run onboard "$base/onboard" -s "$work/onboard.lua" | tee -a "$work/onboard.rounds" | sed "s/^/round $round: /" >&2
    run read "$base/tenants/$tenant_id" -H "Authorization: Bearer $tenant_key" | tee -a "$work/read.rounds" | sed "s/^/round $round: /" >&2
    if [[ "$IDEMPOTENCY" == on ]]; then
        run onboard-idem "$base/onboard" -s "$work/onboard-idem.lua" | tee -a "$work/onboard-idem.rounds" | sed "s/^/round $round: /" >&2
        # One key for the whole round, used once before it: every request of the round is a replay.
        curl -sf -X POST "$base/onboard" -H "Content-Type: application/json" -H "Idempotency-Key: bench-replay-$round" \
            -d '{"clientName": "Acme Corp", "clientPhone": "+1234567890"}' >/dev/null
        run onboard-replay "$base/onboard" -s "$work/onboard.lua" -H "Idempotency-Key: bench-replay-$round" | tee -a "$work/onboard-replay.rounds" | sed "s/^/round $round: /" >&2
    fi
done
median() { sort -k2,2n "$1" | awk -v n="$ROUNDS" 'NR == int((n + 1) / 2)'; }
health=$(median "$work/health.rounds")
onboard=$(median "$work/onboard.rounds")
read_=$(median "$work/read.rounds")
tenants=$(sqlite3 "$work/bench.sqlite" "SELECT count(*) FROM items WHERE resourceKey LIKE 'TENANT#%'" 2>/dev/null || echo "?")

read -r _ h_rps h_p50 h_p99 h_err <<<"$health"
read -r _ o_rps o_p50 o_p99 o_err <<<"$onboard"
read -r _ r_rps r_p50 r_p99 r_err <<<"$read_"
ratio=$(awk -v o="$o_rps" -v h="$h_rps" 'BEGIN { printf "%.0f", 100 * o / h }')

echo
echo "machine: $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr)"
echo "load: wrk -t$THREADS -c$CONNECTIONS -d$DURATION on 127.0.0.1, median of $ROUNDS alternating rounds; rate limits: $LIMITS"
printf "| endpoint | requests/s | p50 ms | p99 ms | non-2xx |\n|---|---:|---:|---:|---:|\n"
printf "| GET /health | %s | %s | %s | %s |\n" "$h_rps" "$h_p50" "$h_p99" "$h_err"
printf "| POST /onboard | %s | %s | %s | %s |\n" "$o_rps" "$o_p50" "$o_p99" "$o_err"
printf "| GET /tenants/{id} (API key) | %s | %s | %s | %s |\n" "$r_rps" "$r_p50" "$r_p99" "$r_err"
if [[ "$IDEMPOTENCY" == on ]]; then
    read -r _ i_rps i_p50 i_p99 i_err <<<"$(median "$work/onboard-idem.rounds")"
    read -r _ p_rps p_p50 p_p99 p_err <<<"$(median "$work/onboard-replay.rounds")"
    printf "| POST /onboard, a new Idempotency-Key each | %s | %s | %s | %s |\n" "$i_rps" "$i_p50" "$i_p99" "$i_err"
    printf "| POST /onboard, one Idempotency-Key (replays) | %s | %s | %s | %s |\n" "$p_rps" "$p_p50" "$p_p99" "$p_err"
    echo
    echo "onboard with a new key / without: $(awk -v i="$i_rps" -v o="$o_rps" 'BEGIN { printf "%.0f", 100 * i / o }')%"
    [[ "$i_err" == "0" && "$p_err" == "0" ]] || { echo "bench.sh: some idempotent onboardings were not 2xx" >&2; exit 1; }
fi
echo
echo "onboard/health: ${ratio}% (target >= 60%, onboard p99 <= 10 ms); tenants stored: $tenants"
if [[ "$o_err" != "0" || "$h_err" != "0" || "$r_err" != "0" ]]; then
    echo "bench.sh: some responses were not 2xx" >&2
    exit 1
fi
