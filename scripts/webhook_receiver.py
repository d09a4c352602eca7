#!/usr/bin/env python3
"""A Standard Webhooks receiver on 127.0.0.1, for the event-delivery tests and the benchmark.

    python3 scripts/webhook_receiver.py --port PORT --secret whsec_... [--record FILE]
                                        [--fail-first N] [--fail-each N] [--path /hook]
                                        [--tolerance SECONDS]

Every POST to --path is checked the way https://www.standardwebhooks.com says a receiver
checks one, with Python's own hmac, hashlib and base64 (an implementation independent of the
server's): the secret is `whsec_` + base64 of the key; the signed content is
`<webhook-id>.<webhook-timestamp>.<body>`; `webhook-signature` is a space-separated list of
`v1,<base64 HMAC-SHA256>`, one of which must match (compared in constant time); the timestamp must
be within --tolerance seconds of now (default 300; 0 turns the check off).

Answers:
- 401 when the signature (or a header) is missing or wrong, or the timestamp is out of range;
- 500 to the first --fail-first requests that verify (all ids together), and to the first
  --fail-each attempts of every webhook-id: injected failures, so the sender must retry;
- 204 otherwise: the delivery is accepted.

--record FILE gets one JSON line per request, written and flushed before the answer is sent (so
a delivery the sender saw accepted is always in the file, even if this process is killed right
after): {"seq", "status", "id" (webhook-id), "eventId" (the body's id), "type", "subject",
"timestamp", "attempt" (the how-many-th request for this webhook-id, by this process), "reason"
(why it was refused)}. Lines are appended, so a receiver restarted on the same file continues it;
the order of the lines is the order of arrival. GET /_stats answers the counts as JSON
({"accepted", "acceptedIds", "rejected", "failed"}). Ends when its parent process does.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def verify(secret, headers, body, tolerance, now=None):
    """Returns None when the delivery's signature verifies, else why not (Standard Webhooks)."""
    webhook_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not webhook_id or not timestamp or not signatures:
        return "missing webhook-id, webhook-timestamp or webhook-signature"
    try:
        sent_at = int(timestamp)
    except ValueError:
        return "webhook-timestamp is not an integer"
    if tolerance > 0 and abs((now or time.time()) - sent_at) > tolerance:
        return "webhook-timestamp is out of tolerance"
    key = base64.b64decode(secret[len("whsec_"):]) if secret.startswith("whsec_") else base64.b64decode(secret)
    signed = webhook_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for candidate in signatures.split(" "):
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return None
    return "no v1 signature matches"


class State:
    def __init__(self, options):
        self.lock = threading.Lock()
        self.options = options
        self.record = open(options.record, "a", encoding="utf-8") if options.record else None
        self.seq = 0
        self.verified = 0
        self.attempts = {}
        self.accepted = 0
        self.accepted_ids = set()
        self.rejected = 0
        self.failed = 0

    def decide(self, webhook_id, reason):
        """Under the lock: the answer's status, this id's attempt number and the line's seq."""
        with self.lock:
            self.seq += 1
            attempt = self.attempts.get(webhook_id, 0) + 1
            self.attempts[webhook_id] = attempt
            if reason is not None:
                self.rejected += 1
                return 401, attempt, self.seq
            self.verified += 1
            if self.verified <= self.options.fail_first or attempt <= self.options.fail_each:
                self.failed += 1
                return 500, attempt, self.seq
            self.accepted += 1
            self.accepted_ids.add(webhook_id)
            return 204, attempt, self.seq

    def write(self, line):
        if self.record is None:
            return
        text = json.dumps(line, sort_keys=True) + "\n"
        with self.lock:
            self.record.write(text)
            self.record.flush()


def handler_for(state):
    options = state.options

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):
            pass

        def answer(self, status, body=b"", content_type="text/plain"):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body:
                self.wfile.write(body)

        def do_GET(self):
            if self.path == "/_stats":
                with state.lock:
                    stats = {"accepted": state.accepted, "acceptedIds": len(state.accepted_ids),
                             "rejected": state.rejected, "failed": state.failed}
                self.answer(200, json.dumps(stats).encode(), "application/json")
            else:
                self.answer(404)

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if self.path != options.path:
                self.answer(404)
                return
            headers = {name.lower(): value for name, value in self.headers.items()}
            reason = verify(options.secret, headers, body, options.tolerance)
            webhook_id = headers.get("webhook-id", "")
            status, attempt, seq = state.decide(webhook_id, reason)
            line = {"seq": seq, "status": status, "id": webhook_id, "timestamp": headers.get("webhook-timestamp"),
                    "attempt": attempt}
            if reason is not None:
                line["reason"] = reason
            else:
                try:
                    envelope = json.loads(body)
                    line.update(eventId=envelope.get("id"), type=envelope.get("type"), subject=envelope.get("subject"))
                except (ValueError, AttributeError):
                    line["reason"] = "the body is not a JSON object"
            state.write(line)
            self.answer(status)

        def do_PUT(self):
            self.answer(405)

    return Handler


def watch_parent():
    # Ends the receiver when the process that started it is gone (its parent changes).
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("port_positional", nargs="?", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int)
    parser.add_argument("--secret", required=True, help="whsec_<base64 key>")
    parser.add_argument("--path", default="/hook")
    parser.add_argument("--record", help="append one JSON line per request to this file")
    parser.add_argument("--fail-first", type=int, default=0, help="answer 500 to the first N verified requests")
    parser.add_argument("--fail-each", type=int, default=0, help="answer 500 to the first N attempts of every webhook-id")
    parser.add_argument("--tolerance", type=int, default=300, help="seconds a webhook-timestamp may be off (0: any)")
    options = parser.parse_args()
    options.port = options.port if options.port is not None else options.port_positional
    if options.port is None:
        parser.error("--port is required")
    try:
        base64.b64decode(options.secret[len("whsec_"):] if options.secret.startswith("whsec_") else options.secret, validate=True)
    except ValueError:
        parser.error("--secret is not whsec_<base64>")
    threading.Thread(target=watch_parent, daemon=True).start()
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer(("127.0.0.1", options.port), handler_for(State(options)))
    print(f"listening on http://127.0.0.1:{server.server_address[1]}{options.path}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
