#!/usr/bin/env python3
"""A stand-in for the AWS credential endpoints, on 127.0.0.1, for the credential tests.

    python3 scripts/aws_metadata_standin.py PORT [--container-token TOKEN] [--expires-in SECONDS]

Serves, as AWS does (standard library only):
- IMDSv2: PUT /latest/api/token (needs X-aws-ec2-metadata-token-ttl-seconds), then
  GET /latest/meta-data/iam/security-credentials/[ROLE] with X-aws-ec2-metadata-token
  (401 without a valid token, as an instance that requires IMDSv2 answers).
- The container endpoint: GET /container/... (403 unless Authorization is the configured token).
- A service answering AWS errors: POST /service/expired-once/ answers ExpiredTokenException to
  its first request and {} afterwards; POST /service/invalid/ always InvalidClientTokenId.
- GET /_log: what was asked, as JSON (counts per endpoint, and the access key id that signed
  each service request), so tests can count fetches.
Every fetch returns new keys (ASIAIMDS1, ASIAIMDS2, ... / ASIACONTAINER1, ...), expiring
--expires-in seconds from now (default 3600). The server ends when its parent process does.
"""
import argparse
import datetime
import json
import os
import re
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROLE = "onboard-role"


class State:
    def __init__(self, container_token, expires_in):
        self.lock = threading.Lock()
        self.container_token = container_token
        self.expires_in = expires_in
        self.imds_tokens = set()
        self.counts = {"token": 0, "role": 0, "imds": 0, "container": 0, "unauthorized": 0, "service": 0}
        self.fetches = {"imds": 0, "container": 0}
        self.signed_by = []

    def credentials(self, kind):
        with self.lock:
            self.fetches[kind] += 1
            number = self.fetches[kind]
        expiration = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=self.expires_in)
        return {
            "Code": "Success",
            "LastUpdated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Type": "AWS-HMAC",
            "AccessKeyId": f"ASIA{kind.upper()}{number}",
            "SecretAccessKey": f"secret-{kind}-{number}",
            "Token": f"token-{kind}-{number}",
            "Expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "RoleArn": f"arn:aws:iam::123456789012:role/{ROLE}",
        }


def handler_for(state):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def count(self, name):
            with state.lock:
                state.counts[name] += 1

        def answer(self, status, body, content_type="application/json"):
            data = body.encode() if isinstance(body, str) else body
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def body(self):
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def do_PUT(self):
            self.body()
            if self.path == "/latest/api/token":
                ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
                if not ttl or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                    return self.answer(400, "missing or invalid X-aws-ec2-metadata-token-ttl-seconds", "text/plain")
                token = secrets.token_urlsafe(24)
                with state.lock:
                    state.imds_tokens.add(token)
                    state.counts["token"] += 1
                return self.answer(200, token, "text/plain")
            self.answer(404, "not found", "text/plain")

        def do_GET(self):
            if self.path == "/_log":
                with state.lock:
                    return self.answer(200, json.dumps({"counts": state.counts, "signedBy": state.signed_by}))
            prefix = "/latest/meta-data/iam/security-credentials/"
            if self.path.startswith(prefix):
                with state.lock:
                    valid = self.headers.get("X-aws-ec2-metadata-token") in state.imds_tokens
                if not valid:
                    self.count("unauthorized")
                    return self.answer(401, "", "text/plain")
                role = self.path[len(prefix):]
                if role == "":
                    self.count("role")
                    return self.answer(200, ROLE, "text/plain")
                if role != ROLE:
                    return self.answer(404, "", "text/plain")
                self.count("imds")
                return self.answer(200, json.dumps(state.credentials("imds")))
            if self.path.startswith("/container/"):
                if state.container_token is not None and self.headers.get("Authorization") != state.container_token:
                    self.count("unauthorized")
                    return self.answer(403, json.dumps({"code": "AccessDenied", "message": "Authorization header missing or wrong"}))
                self.count("container")
                return self.answer(200, json.dumps(state.credentials("container")))
            self.answer(404, "not found", "text/plain")

        def do_POST(self):
            self.body()
            if self.path.startswith("/service/"):
                match = re.search(r"Credential=([^/]+)/", self.headers.get("Authorization", ""))
                with state.lock:
                    state.counts["service"] += 1
                    state.signed_by.append(match.group(1) if match else None)
                    first = state.counts["service"] == 1
                if self.path.startswith("/service/expired-once/") and first:
                    return self.answer(400, json.dumps({
                        "__type": "com.amazon.coral.service#ExpiredTokenException",
                        "message": "The security token included in the request is expired"}), "application/x-amz-json-1.0")
                if self.path.startswith("/service/invalid/"):
                    return self.answer(403, json.dumps({
                        "__type": "InvalidClientTokenId",
                        "message": "The security token included in the request is invalid."}), "application/x-amz-json-1.0")
                return self.answer(200, "{}", "application/x-amz-json-1.0")
            self.answer(404, "not found", "text/plain")

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--container-token")
    parser.add_argument("--expires-in", type=int, default=3600)
    options = parser.parse_args()
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()
    server = ThreadingHTTPServer(("127.0.0.1", options.port), handler_for(State(options.container_token, options.expires_in)))
    server.serve_forever()


if __name__ == "__main__":
    main()
