#!/usr/bin/env python3
"""A real webhook receiver for tests: records every request as a JSON line and checks its
X-Twilio-Signature with the official helper library's RequestValidator.

Usage: callback_receiver.py PORT AUTH_TOKEN LOG_FILE [FAIL_FIRST_N]
The first FAIL_FIRST_N requests are answered 503 (to force retries); later ones 204.
"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

from twilio.request_validator import RequestValidator

PORT, TOKEN, LOG = int(sys.argv[1]), sys.argv[2], sys.argv[3]
FAIL_FIRST = int(sys.argv[4]) if len(sys.argv) > 4 else 0
validator = RequestValidator(TOKEN)
lock = threading.Lock()
count = 0


class Handler(BaseHTTPRequestHandler):
    def _handle(self, params, url):
        global count
        with lock:
            count += 1
            n = count
        valid = validator.validate(url, params, self.headers.get("X-Twilio-Signature", ""))
        status = 503 if n <= FAIL_FIRST else 204
        entry = {
            "n": n,
            "method": self.command,
            "path": self.path,
            "params": params,
            "signature_valid": valid,
            "idempotency_token": self.headers.get("I-Twilio-Idempotency-Token"),
            "answered": status,
        }
        with lock, open(LOG, "a") as f:
            f.write(json.dumps(entry) + "\n")
        self.send_response(status)
        self.end_headers()

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length).decode()
        params = {}
        for k, v in parse_qsl(body, keep_blank_values=True):
            params[k] = v
        self._handle(params, f"http://127.0.0.1:{PORT}{self.path}")

    def do_GET(self):
        self._handle({}, f"http://127.0.0.1:{PORT}{self.path}")

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
