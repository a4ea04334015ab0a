"""A loopback Slack-compatible incoming webhook: records every POSTed JSON body; can answer errors first."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler

from pipeline_tests.fakes.loopback import LoopbackServer


class FakeWebhook(LoopbackServer):
    """`POST <path>` with a JSON body → 200 "ok" (Slack's answer); `fail_first` statuses are answered first.

    `messages` holds the bodies answered 200, `requests` every (status, path, body) in order. A POST to
    another path gets 404, as Slack answers a revoked webhook.
    """

    def __init__(self, path: str = "/services/T0000/B0000/fake-token", fail_first: list[int] | None = None) -> None:
        self.path = path
        self.fail_first = list(fail_first or [])
        self.messages: list[dict] = []
        self.requests: list[tuple[int, str, dict | None]] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True

            def log_message(self, *args) -> None:  # quiet: the test reads `requests`
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                with fake._lock:
                    if self.path != fake.path:
                        status = 404
                    elif fake.fail_first:
                        status = fake.fail_first.pop(0)
                    else:
                        status = 200 if isinstance(body, dict) else 400
                    fake.requests.append((status, self.path, body))
                    if status == 200:
                        fake.messages.append(body)
                answer = b"ok" if status == 200 else b"error"
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        return Handler
