#!/usr/bin/env python3
"""A local Lambda Runtime API (2018-06-01) for testing and timing a custom runtime on 127.0.0.1.

It hands out the events of --events (a JSON list) one per `GET .../invocation/next`, records
every response, error and init error with timestamps, writes them to --results (a JSON list),
and exits once every event has been answered (or on an init error). `next` long-polls, as
Lambda's does, when no event is left.

    python3 scripts/lambda_runtime_api.py --port 9001 --events events.json --results out.json
    AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001 .aws-sam/build/OnboardFunction/bootstrap
"""
import argparse
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--events", required=True, help="a JSON list of events, served in order")
    parser.add_argument("--results", required=True, help="where the answers are written (JSON list)")
    parser.add_argument("--deadline-ms", type=int, default=30000, help="each invocation's deadline, from when it is handed out")
    parser.add_argument("--max-response-bytes", type=int, default=6291556,
                        help="larger responses are refused with 413, as Lambda refuses those over 6 MB")
    arguments = parser.parse_args()
    with open(arguments.events) as file:
        events = json.load(file)

    lock = threading.Condition()
    state = {"next": 0, "handed_out": {}, "results": [], "done": False}

    def finish():
        with open(arguments.results, "w") as file:
            json.dump(state["results"], file)
        state["done"] = True
        lock.notify_all()
        threading.Thread(target=server.shutdown, daemon=True).start()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a runtime expects
        # Headers and body go out in two writes; with Nagle's algorithm the second waits for the
        # client's delayed ACK (40 ms per invocation).
        disable_nagle_algorithm = True

        def log_message(self, *args):
            pass

        def reply(self, status, body=b"", headers=()):
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path != f"{PREFIX}/invocation/next":
                return self.reply(404)
            with lock:
                while state["next"] >= len(events) and not state["done"]:
                    lock.wait(0.5)
                if state["done"]:
                    return self.reply(410)
                index = state["next"]
                state["next"] += 1
                request_id = str(uuid.uuid4())
                state["handed_out"][request_id] = (index, time.time_ns())
            body = json.dumps(events[index]).encode()
            deadline = int(time.time() * 1000) + arguments.deadline_ms
            self.reply(200, body, [
                ("Lambda-Runtime-Aws-Request-Id", request_id),
                ("Lambda-Runtime-Deadline-Ms", str(deadline)),
                ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:onboard"),
                ("Lambda-Runtime-Trace-Id", f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]};Sampled=1"),
                ("Content-Type", "application/json"),
            ])

        def do_POST(self):
            received = time.time_ns()
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            parts = self.path[len(PREFIX):].strip("/").split("/")
            with lock:
                if parts == ["init", "error"]:
                    state["results"].append({
                        "kind": "init-error", "received_ns": received,
                        "errorType": self.headers.get("Lambda-Runtime-Function-Error-Type"),
                        "body": body.decode(errors="replace"),
                    })
                    self.reply(202, b'{"status":"OK"}')
                    return finish()
                if len(parts) != 3 or parts[0] != "invocation" or parts[2] not in ("response", "error"):
                    return self.reply(404)
                request_id = parts[1]
                if request_id not in state["handed_out"]:
                    return self.reply(400, b'{"errorMessage":"unknown request id"}')
                if parts[2] == "response" and len(body) > arguments.max_response_bytes:
                    # As Lambda: the response is refused; the runtime may still post an error.
                    return self.reply(413, json.dumps({
                        "errorMessage": f"Exceeded maximum allowed payload size ({arguments.max_response_bytes} bytes).",
                        "errorType": "RequestEntityTooLarge",
                    }).encode())
                index, handed_out = state["handed_out"].pop(request_id)
                state["results"].append({
                    "kind": parts[2], "index": index, "requestId": request_id,
                    "handed_out_ns": handed_out, "received_ns": received,
                    "errorType": self.headers.get("Lambda-Runtime-Function-Error-Type"),
                    "body": body.decode(errors="replace"),
                })
                self.reply(202, b'{"status":"OK"}')
                if len(state["results"]) == len(events):
                    finish()

    server = ThreadingHTTPServer(("127.0.0.1", arguments.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
