#!/usr/bin/env python3
"""scripts/crash.sh's load generator and checker (loopback only, standard library only).

  crash_load.py load   BASE ACKS_FILE --threads N --round R
      Onboards tenants from N threads until the server goes away (connection refused or reset on
      every thread), appending one JSON line per acknowledged 201 to ACKS_FILE (tenantId, name,
      phone, apiKey), flushed before the next request is sent. Prints the round's counts.

  crash_load.py verify BASE ACKS_FILE --admin-token T
      Every acknowledged tenant is readable with the admin token, with the name, phone and status
      it was acknowledged with, and its API key still reads it; GET /tenants pages through every
      tenant (acknowledged or not) without an error and every listed tenant is whole. Exits 1 on
      any loss.
"""
import argparse
import http.client
import json
import random
import sys
import threading
import urllib.parse

ACTIVE = "ACTIVE"


def connection(base):
    url = urllib.parse.urlsplit(base)
    assert url.hostname in ("127.0.0.1", "::1", "localhost"), "loopback only"
    return http.client.HTTPConnection(url.hostname, url.port, timeout=60)


class Client:
    """One keep-alive connection, reopened after an error."""

    def __init__(self, base):
        self.base = base
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        if self.conn is None:
            self.conn = connection(self.base)
        try:
            self.conn.request(method, path, body=body, headers=headers or {})
            response = self.conn.getresponse()
            return response.status, response.read()
        except Exception:
            self.conn.close()
            self.conn = None
            raise


def load(args):
    lock = threading.Lock()
    counts = {"acknowledged": 0, "other_status": 0, "no_answer": 0}
    statuses = {}
    with open(args.acks, "a", encoding="utf-8") as acks:

        def worker(index):
            client = Client(args.base)
            rng = random.Random()
            n = 0
            while True:
                n += 1
                name = f"Crash r{args.round} t{index} n{n} {rng.randrange(10**6):06d}"
                # E.164: +1 and ten digits, the first of them not 0.
                phone = f"+1{rng.randrange(2, 10)}{rng.randrange(10**9):09d}"
                body = json.dumps({"clientName": name, "clientPhone": phone})
                try:
                    status, data = client.request("POST", "/onboard", body, {"Content-Type": "application/json"})
                except (ConnectionError, OSError, http.client.HTTPException):
                    # The server was killed (or this request's answer was lost with it): unacknowledged.
                    with lock:
                        counts["no_answer"] += 1
                    probe = connection(args.base)
                    try:
                        probe.connect()
                    except OSError:
                        return  # nobody listens any more: the round's kill happened
                    finally:
                        probe.close()
                    continue
                if status == 201:
                    answer = json.loads(data)
                    line = json.dumps({"tenantId": answer["tenantId"], "name": name, "phone": phone,
                                       "apiKey": answer["apiKey"], "round": args.round})
                    with lock:
                        acks.write(line + "\n")
                        acks.flush()
                        counts["acknowledged"] += 1
                else:
                    with lock:
                        counts["other_status"] += 1
                        statuses[status] = statuses.get(status, 0) + 1

        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(args.threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    print(f"round {args.round}: load: {counts['acknowledged']} acknowledged (201), "
          f"{counts['no_answer']} without an answer, {counts['other_status']} other statuses {statuses or ''}")


def verify(args):
    with open(args.acks, encoding="utf-8") as f:
        acked = [json.loads(line) for line in f if line.strip()]
    admin = {"Authorization": f"Bearer {args.admin_token}"}
    problems = []
    lock = threading.Lock()
    queue = list(acked)

    def worker():
        client = Client(args.base)
        while True:
            with lock:
                if not queue:
                    return
                ack = queue.pop()
            tid = ack["tenantId"]
            status, data = client.request("GET", f"/tenants/{tid}", headers=admin)
            found = []
            if status != 200:
                found.append(f"admin read {status}: {data[:200]!r}")
            else:
                tenant = json.loads(data)
                for field, want in (("tenantId", tid), ("clientName", ack["name"]),
                                    ("clientPhone", ack["phone"]), ("status", ACTIVE)):
                    if tenant.get(field) != want:
                        found.append(f"{field} is {tenant.get(field)!r}, acknowledged {want!r}")
            status, data = client.request("GET", f"/tenants/{tid}", headers={"Authorization": f"Bearer {ack['apiKey']}"})
            if status != 200:
                found.append(f"its API key reads it: {status}: {data[:200]!r}")
            elif json.loads(data).get("tenantId") != tid:
                found.append("its API key reads another tenant")
            if found:
                with lock:
                    problems.append(f"tenant {tid} (round {ack['round']}): " + "; ".join(found))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # The whole listing, acknowledged or not: nothing half-written may break a page.
    client = Client(args.base)
    listed = {}
    cursor = None
    pages = 0
    while True:
        path = "/tenants?limit=100&order=oldest" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")
        status, data = client.request("GET", path, headers=admin)
        pages += 1
        if status != 200:
            problems.append(f"GET {path}: {status}: {data[:200]!r}")
            break
        page = json.loads(data)
        for tenant in page["tenants"]:
            missing = [k for k in ("tenantId", "clientName", "clientPhone", "status", "createdAt", "version") if k not in tenant]
            if missing:
                problems.append(f"listed tenant {tenant.get('tenantId')} lacks {missing}")
            if tenant.get("tenantId") in listed:
                problems.append(f"tenant {tenant['tenantId']} listed twice")
            listed[tenant.get("tenantId")] = tenant
        cursor = page.get("nextCursor")
        if not cursor:
            break
    absent = [a["tenantId"] for a in acked if a["tenantId"] not in listed]
    if absent:
        problems.append(f"{len(absent)} acknowledged tenants missing from GET /tenants, e.g. {absent[:3]}")
    acked_ids = {a["tenantId"] for a in acked}
    unacknowledged = len([t for t in listed if t not in acked_ids])

    print(f"{args.label}verify: {len(acked)} acknowledged tenants checked (admin read, API key read), "
          f"{len(listed)} listed in {pages} pages ({unacknowledged} created but unacknowledged), "
          f"{len(problems)} problems")
    for problem in problems[:20]:
        print("  LOST:", problem, file=sys.stderr)
    return 1 if problems else 0


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("load")
    p.add_argument("base")
    p.add_argument("acks")
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--round", type=int, default=1)
    p = sub.add_parser("verify")
    p.add_argument("base")
    p.add_argument("acks")
    p.add_argument("--admin-token", required=True)
    p.add_argument("--label", default="")
    args = parser.parse_args()
    if args.command == "load":
        load(args)
        return 0
    return verify(args)


if __name__ == "__main__":
    sys.exit(main())
