"""A fault-injecting HTTP proxy in front of moto (test infrastructure).

It forwards every request to the target, after optionally failing it the way AWS does:
throttling (EC2 RequestLimitExceeded, ELB/other Throttling, JSON ThrottlingException), HTTP
500/503, dropped connections, added latency. Faults are injected *before* forwarding, so a failed
call never took effect (moto does not honour idempotency tokens the way AWS does). Every request
is logged as one line `<service>:<Operation> <outcome>` to --log, which tests count to choose
kill points.

usage: fault_proxy.py --port P --target URL --log FILE [--throttle R] [--error R] [--drop R]
                      [--latency-ms N] [--seed N] [--ops Op1,Op2]
--ops limits the faults (not the latency) to those operations, e.g. RunInstances,CreateTags.
"""
import argparse
import random
import re
import threading
import urllib.parse
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = None
COUNTS = {}
LOCK = threading.Lock()


def operation(headers, body):
    target = headers.get("X-Amz-Target")
    if target:
        return target.split(".")[-1]
    if body:
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        if "Action" in form:
            return form["Action"][0]
    return "?"


def service(headers):
    m = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", headers.get("Authorization", ""))
    return m.group(1) if m else "?"


def throttle_response(svc):
    if svc == "ec2":
        body = ("<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded."
                "</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>")
        return 503, "text/xml", body
    if svc in ("ssm",):
        return 400, "application/x-amz-json-1.1", '{"__type":"ThrottlingException","message":"Rate exceeded"}'
    body = ("<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>"
            "</Error><RequestId>fault-proxy</RequestId></ErrorResponse>")
    return 400, "text/xml", body


def error_response(svc):
    if svc in ("ssm",):
        return 500, "application/x-amz-json-1.1", '{"__type":"InternalServerError","message":"fault proxy"}'
    if svc == "ec2":
        body = ("<Response><Errors><Error><Code>InternalError</Code><Message>fault proxy</Message></Error>"
                "</Errors><RequestID>fault-proxy</RequestID></Response>")
        return 500, "text/xml", body
    body = ("<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceUnavailable</Code><Message>fault proxy"
            "</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>")
    return 503, "text/xml", body


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        svc, op = service(self.headers), operation(self.headers, body)
        # The n-th request of an operation always gets the same roll, whatever the interleaving of
        # concurrent requests: runs are repeatable.
        with LOCK:
            COUNTS[op] = COUNTS.get(op, 0) + 1
            roll = random.Random(f"{ARGS.seed}:{op}:{COUNTS[op]}").random()
        if ARGS.latency_ms:
            threading.Event().wait(ARGS.latency_ms / 1000)
        outcome = "ok"
        if ARGS.ops and op not in ARGS.ops:
            roll = 1.0
        if roll < ARGS.drop:
            outcome = "dropped"
        elif roll < ARGS.drop + ARGS.throttle:
            outcome = "throttled"
        elif roll < ARGS.drop + ARGS.throttle + ARGS.error:
            outcome = "error"
        with LOCK, open(ARGS.log, "a") as log:
            log.write(f"{svc}:{op} {outcome}\n")
        if outcome == "dropped":
            self.close_connection = True
            self.connection.close()
            return
        if outcome in ("throttled", "error"):
            status, ctype, text = (throttle_response if outcome == "throttled" else error_response)(svc)
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            self.close_connection = True
            return
        target = urllib.parse.urlparse(ARGS.target)
        conn = HTTPConnection(target.hostname, target.port, timeout=120)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("connection", "transfer-encoding", "content-length", "server", "date"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True
        conn.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--throttle", type=float, default=0.0)
    p.add_argument("--error", type=float, default=0.0)
    p.add_argument("--drop", type=float, default=0.0)
    p.add_argument("--latency-ms", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ops", type=lambda v: set(v.split(",")), default=set())
    ARGS = p.parse_args()
    ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
