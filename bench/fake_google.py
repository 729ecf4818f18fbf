#!/usr/bin/env python3
"""A tiny fake of Google's OAuth token endpoint for bench/run (stdlib only).

POST /token with grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer and an assertion answers
{"id_token": <JWT>, "expires_in": 3600, "token_type": "Bearer"} where the JWT's claims are
aud = the assertion's target_audience, email = the assertion's iss, iat = now, exp = now + 3600.
The assertion is decoded without verifying it, and the returned signature is junk: iap-token does
not verify ID token signatures (IAP does).

GET /count answers the number of POST /token requests received so far (plain text).

Binds 127.0.0.1 on an ephemeral port (or the port given as argv[1]) and prints the port on stdout.
"""

import base64
import json
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"

_lock = threading.Lock()
_count = 0


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_id_token(audience: str, email: str) -> str:
    now = int(time.time())
    header = {"alg": "RS256", "typ": "JWT", "kid": "fake-google-bench"}
    claims = {
        "iss": "https://accounts.google.com",
        "aud": audience,
        "azp": email,
        "sub": "100000000000000000001",
        "email": email,
        "email_verified": True,
        "iat": now,
        "exp": now + 3600,
    }
    signature = b"junk-signature-" + str(now).encode()
    return ".".join(
        [
            b64url(json.dumps(header, separators=(",", ":")).encode()),
            b64url(json.dumps(claims, separators=(",", ":")).encode()),
            b64url(signature),
        ]
    )


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - silence per-request logging
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, error: str, description: str) -> None:
        self._send(status, json.dumps({"error": error, "error_description": description}).encode())

    def do_GET(self):  # noqa: N802
        if self.path == "/count":
            with _lock:
                count = _count
            self._send(200, f"{count}\n".encode(), "text/plain")
        else:
            self._error(404, "not_found", self.path)

    def do_POST(self):  # noqa: N802
        global _count
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        if urllib.parse.urlsplit(self.path).path != "/token":
            self._error(404, "not_found", self.path)
            return
        with _lock:
            _count += 1
        form = urllib.parse.parse_qs(body)
        if form.get("grant_type", [""])[0] != JWT_BEARER:
            self._error(400, "unsupported_grant_type", "only the jwt-bearer grant is faked")
            return
        try:
            payload = json.loads(b64url_decode(form["assertion"][0].split(".")[1]))
            audience = payload["target_audience"]
            email = payload.get("iss", "bench@example.iam.gserviceaccount.com")
        except (KeyError, IndexError, ValueError) as e:
            self._error(400, "invalid_grant", f"bad assertion: {e}")
            return
        token = make_id_token(audience, email)
        self._send(200, json.dumps({"id_token": token, "expires_in": 3600, "token_type": "Bearer"}).encode())


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
