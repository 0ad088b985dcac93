#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Stand-ins for dstack's guest agent and dstack-verifier, for the tests.

They speak the real endpoints and JSON shapes (dstack sdk/curl/api.md,
verifier/src/types.rs): the guest agent on a UNIX socket (GET /Info,
POST /GetQuote {"report_data": hex}, POST /GetKey {"path", "purpose"}), the
verifier over HTTP (POST /verify {"quote", "event_log", "vm_config"},
GET /health). A "quote" is hex of b"FAKEQ1" + JSON claims + HMAC-SHA256 of the
claims under a secret only the fake verifier and the fake agents know, so the
verifier accepts exactly the quotes a fake agent made.

  fakedstack.py agent --socket PATH --secret S --app-id HEX [--compose-hash HEX] [--instance-id HEX]
  fakedstack.py verifier --listen IP:PORT --secret S
  fakedstack.py quote --secret S --app-id HEX [...] --report-data HEX   (prints a /GetQuote answer)
"""
import argparse
import hashlib
import hmac
import http.server
import json
import os
import socketserver
import sys

MAGIC = b"FAKEQ1"


def make_quote(secret, claims):
    body = json.dumps(claims, sort_keys=True).encode()
    return (MAGIC + body + hmac.new(secret.encode(), body, hashlib.sha256).digest()).hex()


def read_quote(secret, quote_hex):
    raw = bytes.fromhex(quote_hex)
    if not raw.startswith(MAGIC) or len(raw) < len(MAGIC) + 32:
        return None
    body, mac = raw[len(MAGIC):-32], raw[-32:]
    if not hmac.compare_digest(mac, hmac.new(secret.encode(), body, hashlib.sha256).digest()):
        return None
    return json.loads(body)


def quote_answer(a, report_data_hex):
    rd = bytes.fromhex(report_data_hex)
    if len(rd) > 64:
        raise ValueError("report_data longer than 64 bytes")
    rd = rd.ljust(64, b"\0").hex()
    claims = {"app_id": a.app_id, "compose_hash": a.compose_hash,
              "instance_id": a.instance_id, "report_data": rd}
    event_log = [{"imr": 3, "event_type": 134217729, "digest": "00" * 48,
                  "event": "compose-hash", "event_payload": a.compose_hash},
                 {"imr": 3, "event_type": 134217729, "digest": "00" * 48,
                  "event": "app-id", "event_payload": a.app_id},
                 {"imr": 3, "event_type": 134217729, "digest": "00" * 48,
                  "event": "instance-id", "event_payload": a.instance_id}]
    vm_config = {"spec_version": 1, "os_image_hash": "11" * 32, "cpu_count": 2,
                 "memory_size": 2147483648}
    return {"quote": make_quote(a.secret, claims), "event_log": json.dumps(event_log),
            "report_data": rd, "vm_config": json.dumps(vm_config)}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("fakedstack: %s %s\n" % (self.command, self.path))

    def address_string(self):
        return "unix"

    def answer(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > 1 << 20:
            raise ValueError("request too large")
        return json.loads(self.rfile.read(n) or b"{}")

    def do_GET(self):
        self.route(None)

    def do_POST(self):
        try:
            req = self.body()
        except ValueError as e:
            return self.answer(400, {"error": str(e)})
        self.route(req)


class AgentHandler(Handler):
    def route(self, req):
        a = self.server.args
        path = self.path.split("?")[0]
        try:
            if path == "/Info":
                return self.answer(200, {
                    "app_id": a.app_id, "instance_id": a.instance_id, "app_cert": "",
                    "tcb_info": json.dumps({"compose_hash": a.compose_hash, "event_log": []}),
                    "app_name": "p2pwg-test", "device_id": "22" * 32, "mr_aggregated": "33" * 32,
                    "os_image_hash": "11" * 32, "key_provider_info": "", "compose_hash": a.compose_hash,
                    "vm_config": "{}"})
            if path == "/GetQuote":
                return self.answer(200, quote_answer(a, (req or {}).get("report_data", "")))
            if path == "/GetKey":
                p = (req or {}).get("path", "")
                key = hmac.new(a.secret.encode(), ("%s/%s" % (a.app_id, p)).encode(), hashlib.sha256)
                return self.answer(200, {"key": key.hexdigest(), "signature_chain": ["aa" * 65, "bb" * 65]})
        except (ValueError, TypeError) as e:
            return self.answer(400, {"error": str(e)})
        self.answer(404, {"error": "no such method"})


class VerifierHandler(Handler):
    def route(self, req):
        if self.path == "/health" and req is None:
            return self.answer(200, {"status": "ok"})
        if self.path != "/verify" or req is None:
            return self.answer(404, {"error": "not found"})
        details = {"quote_verified": False, "event_log_verified": False,
                   "os_image_hash_verified": False, "report_data": None, "tcb_status": None,
                   "advisory_ids": [], "app_info": None}
        try:
            claims = read_quote(self.server.args.secret, req.get("quote") or "")
            json.loads(req.get("event_log") or "")
        except (ValueError, TypeError):
            claims = None
        if not claims:
            return self.answer(200, {"is_valid": False, "details": details,
                                     "reason": "quote verification failed"})
        details.update(quote_verified=True, event_log_verified=True, os_image_hash_verified=True,
                       report_data=claims["report_data"], tcb_status="UpToDate",
                       app_info={"app_id": claims["app_id"], "compose_hash": claims["compose_hash"],
                                 "instance_id": claims["instance_id"], "device_id": "22" * 32,
                                 "mrtd": "44" * 48, "rtmr0": "55" * 48, "rtmr1": "66" * 48,
                                 "rtmr2": "77" * 48, "os_image_hash": "11" * 32,
                                 "key_provider_info": ""})
        self.answer(200, {"is_valid": True, "details": details, "reason": None})


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class TcpServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["agent", "verifier", "quote"])
    ap.add_argument("--socket")
    ap.add_argument("--listen")
    ap.add_argument("--secret", required=True)
    ap.add_argument("--app-id", default="")
    ap.add_argument("--compose-hash", default="cc" * 32)
    ap.add_argument("--instance-id", default="dd" * 20)
    ap.add_argument("--report-data", default="")
    a = ap.parse_args()
    if a.mode == "quote":
        print(json.dumps(quote_answer(a, a.report_data)))
        return
    if a.mode == "agent":
        if os.path.exists(a.socket):
            os.unlink(a.socket)
        srv = UnixServer(a.socket, AgentHandler)
        os.chmod(a.socket, 0o666)  # controld runs as another user
    else:
        host, port = a.listen.rsplit(":", 1)
        srv = TcpServer((host, int(port)), VerifierHandler)
    srv.args = a
    print("fakedstack: %s ready" % a.mode, flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
