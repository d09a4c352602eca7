#!/usr/bin/env python3
"""A fault-injecting HTTP proxy between a DynamoDB client and a DynamoDB endpoint (moto in tests).

    python3 scripts/dynamodb_fault_proxy.py PORT UPSTREAM_URL

Listens on 127.0.0.1:PORT and forwards `POST /` to UPSTREAM_URL, injecting the faults a real
DynamoDB client meets, chosen by the mode (set with `POST /_proxy/mode`):

  forward   every request is forwarded, every answer returned (the default);
  drop      one write in N (PutItem, DeleteItem, UpdateItem, TransactWriteItems, BatchWriteItem,
            by X-Amz-Target), drawn at random, is forwarded, then its answer is lost: the
            connection is reset (RST) without a response. The write happened; the caller never
            hears;
  fail      one write in N, drawn at random, is forwarded, then answered 500
            InternalServerError instead of the upstream's answer (the write happened, the
            caller is told it failed).
            Drawn, not counted: with a strict "every Nth", callers that retry in lockstep can
            make the same caller's resends land on the Nth slot every time, a starvation no
            real network produces, which exhausts any retry budget;
  throttle  a share of all requests (10 % by default) is answered 400
            ProvisionedThroughputExceededException or ThrottlingException without forwarding.

`POST /_proxy/mode` takes {"mode": "...", "every": 4, "rate": 0.1, "seed": 1}.
`POST /_proxy/once` takes {"target": "DeleteItem", "action": "drop" | "fail"}: the next call with
that target (the operation name, without `DynamoDB_20120810.`) is forwarded and then its answer
dropped or replaced, whatever the mode. One-shot: it applies to one call only.
`GET /_proxy/stats` answers the counters: calls, forwarded, dropped, failed, throttled, in total
and by target. `POST /_proxy/reset` sets them to zero (the mode stays).

DYNAMODB_FAULT_PROXY_LOG=FILE appends one line per call to FILE: time, target, what was done,
and how long the upstream took. Standard library only. The process ends when its parent does (tests start it as a child).
"""

import http.client
import http.server
import json
import os
import random
import socket
import struct
import sys
import threading
import time
import urllib.parse
import uuid

WRITES = {"PutItem", "DeleteItem", "UpdateItem", "TransactWriteItems", "BatchWriteItem"}
PREFIX = "com.amazonaws.dynamodb.v20120810#"
INTERNAL_ERROR = {"__type": PREFIX + "InternalServerError", "message": "Internal server error"}
# The throttling answers as DynamoDB sends them (status 400).
THROTTLES = [
    {
        "__type": PREFIX + "ProvisionedThroughputExceededException",
        "message": "The level of configured provisioned throughput for the table was exceeded. "
        "Consider increasing your provisioning level with the UpdateTable API.",
    },
    {
        "__type": PREFIX + "ThrottlingException",
        "message": "Rate of requests exceeds the allowed throughput.",
    },
]
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}


TRACE = os.environ.get("DYNAMODB_FAULT_PROXY_LOG")
TRACE_LOCK = threading.Lock()


def trace(target, action, upstream_seconds):
    if TRACE:
        with TRACE_LOCK, open(TRACE, "a") as log:
            log.write("%.3f %s %s %.3f\n" % (time.time(), target, action, upstream_seconds))


class Faults:
    """The mode, the one-shot requests and the counters, shared by all connection threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.mode = "forward"
        self.every = 4
        self.rate = 0.1
        self.random = random.Random(1)
        self.writes = 0
        self.throttle_turn = 0
        self.once = {}  # target -> action
        self.reset()

    def reset(self):
        self.totals = self.empty()
        self.by_target = {}

    @staticmethod
    def empty():
        return {"calls": 0, "forwarded": 0, "dropped": 0, "failed": 0, "throttled": 0}

    def count(self, target, counter):
        with self.lock:
            self.totals[counter] += 1
            self.by_target.setdefault(target, self.empty())[counter] += 1

    def set_mode(self, settings):
        mode = settings.get("mode", "forward")
        if mode not in ("forward", "drop", "fail", "throttle"):
            raise ValueError("unknown mode %r" % mode)
        every = int(settings.get("every", 4))
        rate = float(settings.get("rate", 0.1))
        if every < 1 or not 0 <= rate <= 1:
            raise ValueError("every must be >= 1 and rate in [0, 1]")
        with self.lock:
            self.mode = mode
            self.every = every
            self.rate = rate
            self.random = random.Random(settings.get("seed", 1))
            self.writes = 0

    def arm_once(self, target, action):
        if action not in ("drop", "fail"):
            raise ValueError("action must be drop or fail")
        with self.lock:
            self.once[target] = action

    def decide(self, target):
        """What to do with one call: "forward", "drop", "fail" or "throttle"."""
        with self.lock:
            self.totals["calls"] += 1
            self.by_target.setdefault(target, self.empty())["calls"] += 1
            if target in self.once:
                return self.once.pop(target)
            if self.mode == "throttle":
                return "throttle" if self.random.random() < self.rate else "forward"
            if self.mode in ("drop", "fail") and target in WRITES:
                self.writes += 1
                if self.random.random() < 1.0 / self.every:
                    return self.mode
            return "forward"

    def next_throttle(self):
        with self.lock:
            self.throttle_turn += 1
            return THROTTLES[self.throttle_turn % len(THROTTLES)]

    def stats(self):
        with self.lock:
            return dict(self.totals, mode=self.mode, every=self.every, rate=self.rate,
                        pendingOnce=dict(self.once), byTarget={k: dict(v) for k, v in self.by_target.items()})


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as AWS SDKs use
    faults = Faults()
    upstream = None  # (host, port)
    local = threading.local()

    def log_message(self, format, *args):
        pass

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def reply(self, status, payload, content_type="application/json", extra=()):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if urllib.parse.urlsplit(self.path).path == "/_proxy/stats":
            self.reply(200, self.faults.stats())
        else:
            self.reply(404, {"message": "not found"})

    def do_POST(self):
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith("/_proxy/"):
            return self.admin(path, self.body())
        body = self.body()
        target = (self.headers.get("X-Amz-Target") or "").rpartition(".")[2]
        action = self.faults.decide(target)
        if action == "throttle":
            trace(target, action, 0)
            self.faults.count(target, "throttled")
            return self.reply(400, self.faults.next_throttle(), "application/x-amz-json-1.0",
                              [("x-amzn-RequestId", self.request_id())])
        started = time.monotonic()
        try:
            status, headers, answer = self.forward(body)
        except OSError as error:
            return self.reply(502, {"message": "upstream: %s" % error})
        finally:
            trace(target, action, time.monotonic() - started)
        self.faults.count(target, "forwarded")
        if action == "drop":
            self.faults.count(target, "dropped")
            return self.reset_connection()
        if action == "fail":
            self.faults.count(target, "failed")
            return self.reply(500, INTERNAL_ERROR, "application/x-amz-json-1.0",
                              [("x-amzn-RequestId", self.request_id())])
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def admin(self, path, body):
        try:
            settings = json.loads(body or b"{}")
            if path == "/_proxy/mode":
                self.faults.set_mode(settings)
            elif path == "/_proxy/once":
                self.faults.arm_once(settings["target"], settings.get("action", "drop"))
            elif path == "/_proxy/reset":
                with self.faults.lock:
                    self.faults.reset()
            else:
                return self.reply(404, {"message": "not found"})
        except (ValueError, KeyError, TypeError) as error:
            return self.reply(400, {"message": str(error)})
        self.reply(200, self.faults.stats())

    def forward(self, body):
        """Sends the request upstream on this thread's keep-alive connection; one reconnect."""
        for attempt in (1, 2):
            connection = getattr(self.local, "connection", None)
            if connection is None:
                connection = http.client.HTTPConnection(*self.upstream, timeout=30)
                self.local.connection = connection
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                connection.request("POST", self.path, body=body, headers=headers)
                response = connection.getresponse()
                return response.status, response.getheaders(), response.read()
            except (http.client.HTTPException, OSError):
                connection.close()
                self.local.connection = None
                if attempt == 2:
                    raise

    def reset_connection(self):
        """Closes the client's connection with a RST (SO_LINGER 0) and no response."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    @staticmethod
    def request_id():
        return uuid.uuid4().hex.upper()[:52].ljust(52, "0")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog (5) overflows when a client pool opens dozens of
    # connections at once, and the dropped SYNs stall calls for a second or more.
    request_queue_size = 256


def watch_parent():
    # Ends the proxy when the test process that started it is gone (its parent changes).
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    port = int(sys.argv[1])
    upstream = urllib.parse.urlsplit(sys.argv[2])
    Handler.upstream = (upstream.hostname, upstream.port or 80)
    threading.Thread(target=watch_parent, daemon=True).start()
    server = Server(("127.0.0.1", port), Handler)
    server.serve_forever()


if __name__ == "__main__":
    main()
