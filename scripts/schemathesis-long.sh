#!/usr/bin/env bash
# The long schemathesis run (not in CI; CI runs 100 examples per operation with the admin token):
# a debug server on 127.0.0.1 and a SQLite file of its own, fuzzed against openapi.yaml with
# --max-examples per operation (default 1000), twice: once with the admin token, once with a
# tenant's API key (a tenant onboarded first; its id is pinned as every {tenantId}, so the run
# reaches the tenant's routes instead of 404s). Same settings as .ci/run's step
# (.ci/schemathesis.toml, rate limits off, events to a webhook nobody listens on).
#
#   scripts/schemathesis-long.sh [--max-examples N] [--seed N|random] [--only admin|tenant]
#
# ONBOARD_BINARY picks the binary (default .build/debug/onboard). The output of both runs and
# the server's log are kept in $OUT_DIR (default a new directory under /tmp), named at the end.
# Exits non-zero if either run failed or the server logged a failed request (a 500).
set -euo pipefail
cd "$(dirname "$0")/.."

max_examples=1000
seed=20261202
only=""
while (( $# )); do
    case $1 in
        --max-examples) max_examples=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        --only) only=$2; shift 2 ;;
        *) echo "usage: $0 [--max-examples N] [--seed N|random] [--only admin|tenant]" >&2; exit 2 ;;
    esac
done
binary=${ONBOARD_BINARY:-.build/debug/onboard}
[[ -x $binary ]] || { echo "no $binary: run swift build (or set ONBOARD_BINARY)" >&2; exit 2; }
[[ -x .ci-venv/bin/schemathesis ]] || { python3 -m venv .ci-venv && .ci-venv/bin/pip install -q 'schemathesis>=4,<5'; }

out_dir=${OUT_DIR:-$(mktemp -d /tmp/schemathesis-long.XXXXXX)}
mkdir -p "$out_dir"
work=$(mktemp -d)
server_pid=""
cleanup() {
    [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

admin_token="long-schemathesis-admin-token-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
dead_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
: >"$out_dir/server.log"
ONBOARD_ADMIN_TOKEN=$admin_token ONBOARD_WEBHOOK_SECRET="whsec_$(head -c 32 /dev/urandom | base64 -w0)" \
    "$binary" serve --port 0 --database "$work/long.sqlite" --rate-limits off \
    --webhook-url "http://127.0.0.1:$dead_port/hook" --event-fail-after 2s >"$out_dir/server.log" 2>&1 &
server_pid=$!
base=""
for _ in $(seq 1 600); do
    base=$(sed -n 's|^listening on \(http://.*\)$|\1|p' "$out_dir/server.log")
    [[ -n $base ]] && break
    sleep 0.05
done
[[ -n $base ]] || { cat "$out_dir/server.log" >&2; echo "the server did not start" >&2; exit 1; }

seed_args=(--seed "$seed")
[[ $seed == random ]] && seed_args=()
status=0

run() { # name, config file, credential
    local name=$1 config=$2 credential=$3 began ended
    began=$(date +%s)
    echo "== $name: --max-examples $max_examples (started $(date -u +%H:%M:%S) UTC)"
    set +e
    .ci-venv/bin/schemathesis --config-file "$config" run "$base/openapi.yaml" --max-examples "$max_examples" \
        "${seed_args[@]}" --no-color -H "Authorization: Bearer $credential" \
        --report junit --report-junit-path "$out_dir/$name.junit.xml" 2>&1 | tee "$out_dir/$name.out"
    local rc=${PIPESTATUS[0]}
    set -e
    ended=$(date +%s)
    echo "== $name: exit $rc after $(( ended - began )) s"
    (( rc == 0 )) || status=1
}

if [[ $only != tenant ]]; then
    run admin .ci/schemathesis.toml "$admin_token"
fi

if [[ $only != admin ]]; then
    created=$(curl -sf -X POST "$base/onboard" -H 'Content-Type: application/json' \
        -d '{"clientName": "Long Fuzz Tenant", "clientPhone": "+14155550123"}')
    tenant_id=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["tenantId"])' <<<"$created")
    api_key=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["apiKey"])' <<<"$created")
    # CI's settings with every {tenantId} pinned to the tenant's own id (a top-level key goes
    # before the file's [[operations]] tables).
    { echo "parameters = { tenantId = \"$tenant_id\" }"; cat .ci/schemathesis.toml; } >"$work/tenant.toml"
    run tenant "$work/tenant.toml" "$api_key"
fi

if grep -q "request failed" "$out_dir/server.log"; then
    grep "request failed" "$out_dir/server.log" | head -20 >&2
    echo "the server logged failed requests (500s) while fuzzed" >&2
    status=1
fi
echo "output: $out_dir"
exit $status
