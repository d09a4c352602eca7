#!/usr/bin/env python3
"""Cold start and warm overhead of the Lambda bootstrap, on 127.0.0.1, with DynamoDB on moto.

Cold start: from the process's exec to its first response posted to the Runtime API (an event
that needs no store call: GET /Prod/openapi.yaml). Warm overhead: for invocations that need no
store call (an unknown route, answered 404 by the router), the time between the Runtime API
handing an event out and receiving the response, minus the same for a do-nothing Python runtime
(so the emulator's own cost is not counted): the runtime loop, the API Gateway adapter and the
router. Also shown: warm POST /Prod/onboard/ with its DynamoDB call to moto.

    scripts/bench-lambda.sh            # builds the release binary, then runs this
"""
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(port, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.01)
    raise RuntimeError(f"nothing listens on {port}")


def event(method, path, body=None):
    with open(os.path.join(ROOT, "Tests/LambdaRuntimeTests/Events/rest-v1.json")) as file:
        sample = json.load(file)
    sample["httpMethod"] = method
    sample["path"] = path
    sample["body"] = base64.b64encode(body.encode()).decode() if body else None
    sample["isBase64Encoded"] = bool(body)
    return sample


def run(binary, events, environment, folder, command=None):
    port = free_port()
    events_file = os.path.join(folder, "events.json")
    results_file = os.path.join(folder, "results.json")
    with open(events_file, "w") as file:
        json.dump(events, file)
    emulator = subprocess.Popen([sys.executable, os.path.join(HERE, "lambda_runtime_api.py"), "--port", str(port),
                                 "--events", events_file, "--results", results_file])
    wait_for(port)
    env = dict(environment, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{port}")
    started = time.time_ns()
    function = subprocess.Popen(command or [binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    emulator.wait(timeout=120)
    function.kill()
    function.wait()
    with open(results_file) as file:
        results = json.load(file)
    assert all(r["kind"] == "response" for r in results), results[:2]
    return started, results


BASELINE_RUNTIME = """
import http.client, os, sys
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
connection = http.client.HTTPConnection(host, int(port))
while True:
    connection.request("GET", "/2018-06-01/runtime/invocation/next")
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        sys.exit(0)
    request_id = response.getheader("Lambda-Runtime-Aws-Request-Id")
    connection.request("POST", f"/2018-06-01/runtime/invocation/{request_id}/response", body=b'{"statusCode":404}')
    connection.getresponse().read()
"""


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main():
    binary = sys.argv[1]
    rounds = int(os.environ.get("ROUNDS", "20"))
    warm = int(os.environ.get("WARM", "2000"))
    folder = tempfile.mkdtemp()
    moto_port = free_port()
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(moto_port)
        environment = {
            "PATH": os.environ["PATH"], "HOME": folder, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_SESSION_TOKEN": "bench", "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL_DYNAMODB": f"http://127.0.0.1:{moto_port}",
            "ONBOARD_STORE": "dynamodb", "ONBOARD_TABLE": "bench-tenants", "ONBOARD_LOG_LEVEL": "info", "ONBOARD_RATE_LIMITS": "off",
        }
        subprocess.run([binary, "table", "create", "--table", "bench-tenants"], env=environment, check=True, stdout=subprocess.DEVNULL)

        cold = []
        for _ in range(rounds):
            started, results = run(binary, [event("GET", "/openapi.yaml")], environment, folder)
            cold.append((results[0]["received_ns"] - started) / 1e6)

        _, results = run(binary, [event("GET", "/nowhere")] * warm, environment, folder)
        overhead = [(r["received_ns"] - r["handed_out_ns"]) / 1e6 for r in results[10:]]
        # The same loop in a minimal Python client: what the emulator and loopback cost alone.
        _, results = run(binary, [event("GET", "/nowhere")] * warm, environment, folder, [sys.executable, "-c", BASELINE_RUNTIME])
        baseline = [(r["received_ns"] - r["handed_out_ns"]) / 1e6 for r in results[10:]]
        onboard_body = json.dumps({"clientName": "Bench Co", "clientPhone": "+1234567890"})
        _, results = run(binary, [event("POST", "/onboard/", onboard_body)] * (warm // 4), environment, folder)
        onboard = [(r["received_ns"] - r["handed_out_ns"]) / 1e6 for r in results[10:]]
    finally:
        moto.kill()

    print(f"binary: {binary}")
    print(f"cold start (exec -> first response posted), {rounds} runs: median {statistics.median(cold):.1f} ms, "
          f"min {min(cold):.1f}, max {max(cold):.1f}")
    print(f"warm round trip (no store call), {len(overhead)} invocations: median {statistics.median(overhead):.3f} ms, "
          f"p99 {percentile(overhead, 0.99):.3f} ms")
    print(f"  the same with a do-nothing Python runtime (emulator + loopback alone): median {statistics.median(baseline):.3f} ms, "
          f"p99 {percentile(baseline, 0.99):.3f} ms")
    print(f"  => the bootstrap's own warm overhead: median {statistics.median(overhead) - statistics.median(baseline):.3f} ms")
    print(f"warm POST /onboard/ (with its DynamoDB PutItem to moto), {len(onboard)} invocations: "
          f"median {statistics.median(onboard):.3f} ms, p99 {percentile(onboard, 0.99):.3f} ms")


if __name__ == "__main__":
    main()
