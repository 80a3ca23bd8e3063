"""A webhook receiver on 127.0.0.1 for tests: records every POST and answers from a plan
per model and alert kind (a status code, or a pause longer than the sender's timeout),
200 after."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    at: float
    headers: dict[str, str]
    body: dict[str, Any]
    raw: bytes
    answered: int | None  # None: the receiver stalled past the sender's timeout

    @property
    def model_name(self) -> str:
        return str(self.body.get("alert", {}).get("model_name"))


class WebhookReceiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self._plans: dict[str, deque[int | float]] = defaultdict(deque)
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = json.loads(raw)
                alert = body.get("alert", {})
                answer = receiver._next(f"{alert.get('model_name')}:{alert.get('kind')}")
                stalled = isinstance(answer, float)
                receiver._record(dict(self.headers), body, raw, None if stalled else int(answer))
                if stalled:
                    time.sleep(float(answer))
                    return  # no answer: the sender timed out already
                self.send_response(int(answer))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def start(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def plan(self, model_name: str, kind: str, *answers: int | float) -> None:
        """Answer the next POSTs of the model's ``kind`` of alert with these: an int is a
        status code, a float a pause (seconds) with no answer."""
        with self._lock:
            self._plans[f"{model_name}:{kind}"].extend(answers)

    def of(self, model_name: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.model_name == model_name]

    def _next(self, key: str) -> int | float:
        with self._lock:
            plan = self._plans[key]
            return plan.popleft() if plan else 200

    def _record(
        self, headers: dict[str, str], body: dict[str, Any], raw: bytes, answered: int | None
    ) -> None:
        with self._lock:
            self.received.append(Received(time.monotonic(), headers, body, raw, answered))
