#!/usr/bin/env bash
# Benchmark: GET /health, POST /onboard, and authenticated reads (GET /tenants/{id} and a
# resource GET with the tenant's API key, GET /tenants/{id} with a JWT), in the same run, on a
# release build, with wrk on 127.0.0.1. Prints requests/s, p50 and p99 for each and each one's
# ratio to /health; with INSTRUCTIONS=on, then instructions per request of each class
# (valgrind's callgrind on the same binary), a figure without wall-clock noise.
#
#   scripts/bench.sh                       # 64 connections, 3 rounds of 10 s per endpoint
#   CONNECTIONS=128 DURATION=30s ROUNDS=5 scripts/bench.sh
#   ONBOARD_BINARY=.build/release/onboard scripts/bench.sh   # skip the build
#   LIMITS=unreached scripts/bench.sh      # rate limits on, set too high to be hit: their cost
#   IDEMPOTENCY=on scripts/bench.sh        # also POST /onboard with a fresh Idempotency-Key per
#                                          # request, and with one key (every answer a replay)
#   CREDENTIAL_CACHE=0 scripts/bench.sh    # serve --credential-cache 0: every request reads the store
#   INSTRUCTIONS=on scripts/bench.sh       # also the callgrind counts (INSTRUCTION_REQUESTS=2000); see
#                                          # BENCHMARKS.md: valgrind 3.19 crashes on serve today
#
# By default the server runs with --rate-limits off (one client address would be limited at
# once); LIMITS=unreached keeps every bucket but with limits no run reaches.
#
# The endpoints alternate for ROUNDS rounds and the median round of each is reported, since wrk
# and the server share the cores and single runs vary by 10-20 %.
# The server runs as shipped: SQLite with synchronous=FULL (every 201 fsynced), logging one
# info line per request to a file. wrk shares the machine's cores with the server. The JWT is an
# ES256 ID token of a local issuer (scripts/bench_jwt.py) whose JWKS the server fetches once.
set -euo pipefail

cd "$(dirname "$0")/.."
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-3s}
LIMITS=${LIMITS:-off}
IDEMPOTENCY=${IDEMPOTENCY:-off}
CREDENTIAL_CACHE=${CREDENTIAL_CACHE:-1s}
INSTRUCTIONS=${INSTRUCTIONS:-off}
INSTRUCTION_REQUESTS=${INSTRUCTION_REQUESTS:-2000}
case "$LIMITS" in
    off) limit_args=(--rate-limits off) ;;
    unreached) limit_args=(--rate-limit 1000000/s:1000000 --anonymous-rate-limit 1000000/s:1000000 --onboard-rate-limit 1000000/s:1000000) ;;
    *) echo "bench.sh: LIMITS is off or unreached" >&2; exit 1 ;;
esac

command -v wrk >/dev/null || { echo "bench.sh: wrk is missing (apt-get install wrk)" >&2; exit 1; }
if [[ "$INSTRUCTIONS" == on ]]; then
    command -v valgrind >/dev/null || { echo "bench.sh: valgrind is missing (apt-get install valgrind), or INSTRUCTIONS=off" >&2; exit 1; }
fi

if [[ -z "${ONBOARD_BINARY:-}" ]]; then
    SCRATCH=${SCRATCH:-.build-release}
    swift build -c release --scratch-path "$SCRATCH" --product onboard >&2
    ONBOARD_BINARY="$SCRATCH/release/onboard"
fi

work=$(mktemp -d)
server_pid=""
issuer_pid=""
cleanup() {
    [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
    [[ -n "$issuer_pid" ]] && kill "$issuer_pid" 2>/dev/null && wait "$issuer_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# The JWT issuer: a key, its JWKS on a free port, the ONBOARD_OIDC_* settings for serve.
mkdir "$work/issuer"
python3 scripts/bench_jwt.py "$work/issuer" &
issuer_pid=$!
for _ in $(seq 1 100); do [[ -s "$work/issuer/issuer.env" ]] && break; sleep 0.05; done
[[ -s "$work/issuer/issuer.env" ]] || { echo "bench.sh: the JWT issuer did not start" >&2; exit 1; }
mapfile -t issuer_env <"$work/issuer/issuer.env"

# start_server LOG [COMMAND PREFIX...]: serve on a free port of 127.0.0.1 on the bench database;
# sets server_pid and base.
start_server() {
    local log=$1
    shift
    env ONBOARD_ADMIN_TOKEN="bench-admin-token-0123456789abcdef" "${issuer_env[@]}" \
        "$@" "$ONBOARD_BINARY" serve --port 0 --database "$work/bench.sqlite" "${limit_args[@]}" \
        --credential-cache "$CREDENTIAL_CACHE" >"$log" 2>&1 &
    server_pid=$!
    local port=""
    for _ in $(seq 1 1200); do
        port=$(sed -n 's|^listening on http://127.0.0.1:\([0-9]*\)$|\1|p' "$log")
        [[ -n "$port" ]] && break
        sleep 0.05
    done
    [[ -n "$port" ]] || { echo "bench.sh: the server did not start:" >&2; cat "$log" >&2; exit 1; }
    base="http://127.0.0.1:$port"
}
start_server "$work/server.log"

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
tenant_jwt=$(python3 scripts/bench_jwt.py --token "$work/issuer" "$tenant_id")
resource="$base/tenants/$tenant_id/resources/notes/bench"
curl -sf -X PUT "$resource" -H "Authorization: Bearer $tenant_key" -H "Content-Type: application/json" \
    -d '{"title": "Benchmark note", "tags": ["a", "b"], "count": 3}' >/dev/null
curl -sf "$base/tenants/$tenant_id" -H "Authorization: Bearer $tenant_jwt" >/dev/null \
    || { echo "bench.sh: the JWT was refused" >&2; exit 1; }

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
key_header="Authorization: Bearer $tenant_key"
jwt_header="Authorization: Bearer $tenant_jwt"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" "$base/health" >/dev/null
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -s "$work/onboard.lua" "$base/onboard" >/dev/null
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -H "$key_header" "$base/tenants/$tenant_id" >/dev/null
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -H "$key_header" "$resource" >/dev/null
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -H "$jwt_header" "$base/tenants/$tenant_id" >/dev/null
classes=(health onboard read resource jwt)
for class in "${classes[@]}"; do : >"$work/$class.rounds"; done
if [[ "$IDEMPOTENCY" == on ]]; then
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -s "$work/onboard-idem.lua" "$base/onboard" >/dev/null
    : >"$work/onboard-idem.rounds"
    : >"$work/onboard-replay.rounds"
fi
for round in $(seq 1 "$ROUNDS"); do
    run health "$base/health" | tee -a "$work/health.rounds" | sed "s/^/round $round: /" >&2
    run onboard "$base/onboard" -s "$work/onboard.lua" | tee -a "$work/onboard.rounds" | sed "s/^/round $round: /" >&2
    run read "$base/tenants/$tenant_id" -H "$key_header" | tee -a "$work/read.rounds" | sed "s/^/round $round: /" >&2
    run resource "$resource" -H "$key_header" | tee -a "$work/resource.rounds" | sed "s/^/round $round: /" >&2
    run jwt "$base/tenants/$tenant_id" -H "$jwt_header" | tee -a "$work/jwt.rounds" | sed "s/^/round $round: /" >&2
    if [[ "$IDEMPOTENCY" == on ]]; then
        run onboard-idem "$base/onboard" -s "$work/onboard-idem.lua" | tee -a "$work/onboard-idem.rounds" | sed "s/^/round $round: /" >&2
        # One key for the whole round, used once before it: every request of the round is a replay.
        curl -sf -X POST "$base/onboard" -H "Content-Type: application/json" -H "Idempotency-Key: bench-replay-$round" \
            -d '{"clientName": "Acme Corp", "clientPhone": "+1234567890"}' >/dev/null
        run onboard-replay "$base/onboard" -s "$work/onboard.lua" -H "Idempotency-Key: bench-replay-$round" | tee -a "$work/onboard-replay.rounds" | sed "s/^/round $round: /" >&2
    fi
done
median() { sort -k2,2n "$1" | awk -v n="$ROUNDS" 'NR == int((n + 1) / 2)'; }
tenants=$(sqlite3 "$work/bench.sqlite" "SELECT count(*) FROM items WHERE resourceKey LIKE 'TENANT#%'" 2>/dev/null || echo "?")

read -r _ h_rps h_p50 h_p99 h_err <<<"$(median "$work/health.rounds")"
percent() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", 100 * a / b }'; }
failed=0
echo
echo "machine: $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr); $(date -u +%Y-%m-%d)"
echo "load: wrk -t$THREADS -c$CONNECTIONS -d$DURATION on 127.0.0.1, median of $ROUNDS alternating rounds; rate limits: $LIMITS; credential cache: $CREDENTIAL_CACHE"
printf "| request | requests/s | of /health | p50 ms | p99 ms | non-2xx |\n|---|---:|---:|---:|---:|---:|\n"
label() {
    case "$1" in
        health) echo "GET /health" ;;
        onboard) echo "POST /onboard" ;;
        read) echo "GET /tenants/{id} (API key)" ;;
        resource) echo "GET /tenants/{id}/resources/{type}/{id} (API key)" ;;
        jwt) echo "GET /tenants/{id} (JWT)" ;;
        onboard-idem) echo "POST /onboard, a new Idempotency-Key each" ;;
        onboard-replay) echo "POST /onboard, one Idempotency-Key (replays)" ;;
    esac
}
rows=("${classes[@]}")
[[ "$IDEMPOTENCY" == on ]] && rows+=(onboard-idem onboard-replay)
for class in "${rows[@]}"; do
    read -r _ rps p50 p99 err <<<"$(median "$work/$class.rounds")"
    printf "| %s | %s | %s%% | %s | %s | %s |\n" "$(label "$class")" "$rps" "$(percent "$rps" "$h_rps")" "$p50" "$p99" "$err"
    [[ "$err" == "0" ]] || failed=1
done
echo
echo "targets: authenticated reads >= 80% of /health with p99 <= 5 ms; onboarding >= 60% with p99 <= 10 ms. Tenants stored: $tenants"

# Instructions per request: the same binary under callgrind (every thread, the kernel excluded),
# counters zeroed before and dumped after INSTRUCTION_REQUESTS requests of one class on one
# keep-alive connection. Background timers (5 s flushes and sweeps) fall into the windows too;
# at these counts they add well under 1 %.
if [[ "$INSTRUCTIONS" == on ]]; then
    kill "$server_pid" && wait "$server_pid" 2>/dev/null || true
    server_pid=""
    mkdir "$work/callgrind"
    # Valgrind 3.19 cannot read the DWARF 5 debug info Swift 6.3 emits: a copy without it.
    strip --strip-debug -o "$work/onboard-nodebug" "$ONBOARD_BINARY"
    ONBOARD_BINARY="$work/onboard-nodebug"
    start_server "$work/callgrind.log" valgrind --tool=callgrind --callgrind-out-file="$work/callgrind/out.%p" --dump-instr=no
    python3 - "$base" "$tenant_id" "$tenant_key" "$tenant_jwt" "$server_pid" "$INSTRUCTION_REQUESTS" "$work/callgrind" <<'PY'
import glob, http.client, json, os, subprocess, sys, time, urllib.parse
base, tenant, key, jwt, pid, count, out = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]), sys.argv[7]
url = urllib.parse.urlparse(base)
onboard_body = json.dumps({"clientName": "Acme Corp", "clientPhone": "+1234567890"})
classes = [
    ("GET /health", "GET", "/health", {}, None),
    ("POST /onboard", "POST", "/onboard", {"Content-Type": "application/json"}, onboard_body),
    ("GET /tenants/{id} (API key)", "GET", f"/tenants/{tenant}", {"Authorization": f"Bearer {key}"}, None),
    ("GET /tenants/{id}/resources/{type}/{id} (API key)", "GET", f"/tenants/{tenant}/resources/notes/bench", {"Authorization": f"Bearer {key}"}, None),
    ("GET /tenants/{id} (JWT)", "GET", f"/tenants/{tenant}", {"Authorization": f"Bearer {jwt}"}, None),
]
def control(flag):
    subprocess.run(["callgrind_control", flag, pid], check=True, stdout=subprocess.DEVNULL)
def total(path):
    with open(path) as dump:
        for line in dump:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    raise SystemExit(f"no totals in {path}")
connection = http.client.HTTPConnection(url.hostname, url.port, timeout=600)
def send(method, path, headers, body):
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    response.read()
    if response.status >= 300:
        raise SystemExit(f"{method} {path}: {response.status}")
print(f"\ninstructions per request (callgrind, {count} requests of each class, one connection):")
print("| request | instructions |\n|---|---:|")
for name, method, path, headers, body in classes:
    for _ in range(50):
        send(method, path, headers, body)   # warm: caches filled, code paths touched
    control("-z")
    for _ in range(count):
        send(method, path, headers, body)
    before = set(glob.glob(os.path.join(out, "out.*")))
    control("-d")
    deadline = time.time() + 120
    while True:
        new = set(glob.glob(os.path.join(out, "out.*"))) - before
        if new:
            time.sleep(0.5)
            break
        if time.time() > deadline:
            raise SystemExit("callgrind wrote no dump")
        time.sleep(0.1)
    path = max(new, key=os.path.getmtime)
    print(f"| {name} | {total(path) // count:,} |")
PY
fi
if [[ "$failed" != 0 ]]; then
    echo "bench.sh: some responses were not 2xx" >&2
    exit 1
fi
