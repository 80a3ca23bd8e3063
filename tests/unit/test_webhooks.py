"""Webhook delivery against a real HTTP server on 127.0.0.1: delivered, retryable and
permanent outcomes, no redirects, timeouts, refused connections, backoff, URL checks."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from workers.monitoring.webhooks import backoff_s, post_json, sign, validate_webhook_url

SECRET = "s3cret"
PAYLOAD = {"event": "raised", "level": "HIGH", "kind": "error_rate", "numbers": {"rate": 0.25}}


class Receiver(BaseHTTPRequestHandler):
    """Answers by path: /ok 200, /fail 500, /missing 404, /busy 429, /late 408, /moved 302,
    /slow sleeps past the client's timeout; records every request it read."""

    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
        if self.path == "/slow":
            time.sleep(1.0)
        status = {
            "/ok": 200,
            "/fail": 500,
            "/missing": 404,
            "/busy": 429,
            "/moved": 302,
            "/late": 408,
        }.get(self.path, 200)
        # /slow: the client has gone by the time it answers
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._answer(status)

    def _answer(self, status: int) -> None:
        self.send_response(status)
        if status == 302:
            self.send_header("Location", "http://127.0.0.1:1/elsewhere")
        answer = b"oops, database down" if status == 500 else b"{}"
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass


@pytest.fixture()
def server() -> Iterator[str]:
    Receiver.received = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    httpd.daemon_threads = True  # the /slow handler must not hold up the shutdown
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_2xx_is_delivered_with_headers_body_and_signature(server: str) -> None:
    attempt = post_json(f"{server}/ok", PAYLOAD, delivery_id="d-42", timeout_s=5, secret=SECRET)
    assert (attempt.status_code, attempt.error, attempt.delivered, attempt.retryable) == (
        200,
        None,
        True,
        False,
    )
    assert 0 <= attempt.elapsed_s < 5
    (request,) = Receiver.received
    headers, body = request["headers"], request["body"]
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "cipml-webhooks"
    assert headers["X-Cipml-Delivery"] == "d-42"
    assert json.loads(body) == {**PAYLOAD, "delivery_id": "d-42"}
    # compact, sorted keys: the same notification always gives the same bytes
    assert (
        body
        == json.dumps(
            {**PAYLOAD, "delivery_id": "d-42"}, sort_keys=True, separators=(",", ":")
        ).encode()
    )
    # what a receiver does: recompute the HMAC of the raw body, compare in constant time
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Cipml-Signature"], expected)
    assert sign(body, SECRET) == expected


def test_no_secret_no_signature(server: str) -> None:
    assert post_json(f"{server}/ok", PAYLOAD, delivery_id="d-1", timeout_s=5).delivered
    assert "X-Cipml-Signature" not in Receiver.received[0]["headers"]


def test_5xx_429_and_408_are_retryable(server: str) -> None:
    failed = post_json(f"{server}/fail", PAYLOAD, delivery_id="d-2", timeout_s=5)
    assert (failed.status_code, failed.delivered, failed.retryable) == (500, False, True)
    assert failed.error is not None and "500" in failed.error and "database down" in failed.error
    busy = post_json(f"{server}/busy", PAYLOAD, delivery_id="d-2", timeout_s=5)
    assert (busy.status_code, busy.delivered, busy.retryable) == (429, False, True)
    late = post_json(f"{server}/late", PAYLOAD, delivery_id="d-2", timeout_s=5)
    assert (late.status_code, late.delivered, late.retryable) == (408, False, True)


def test_other_4xx_is_permanent(server: str) -> None:
    attempt = post_json(f"{server}/missing", PAYLOAD, delivery_id="d-3", timeout_s=5)
    assert (attempt.status_code, attempt.delivered, attempt.retryable) == (404, False, False)
    assert attempt.error is not None and "404" in attempt.error


def test_redirect_is_not_followed(server: str) -> None:
    attempt = post_json(f"{server}/moved", PAYLOAD, delivery_id="d-4", timeout_s=5)
    assert (attempt.status_code, attempt.delivered, attempt.retryable) == (302, False, False)
    assert attempt.error is not None
    assert "not followed" in attempt.error and "127.0.0.1:1/elsewhere" in attempt.error
    assert [r["path"] for r in Receiver.received] == ["/moved"]  # no second request


def test_slow_receiver_times_out_retryably(server: str) -> None:
    attempt = post_json(f"{server}/slow", PAYLOAD, delivery_id="d-5", timeout_s=0.3)
    assert (attempt.status_code, attempt.delivered, attempt.retryable) == (None, False, True)
    assert attempt.error is not None and "timed out" in attempt.error
    assert 0.25 <= attempt.elapsed_s < 1.0


def test_connection_refused_is_retryable() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago, now closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    attempt = post_json(f"http://127.0.0.1:{port}/x", PAYLOAD, delivery_id="d-6", timeout_s=2)
    assert (attempt.status_code, attempt.delivered, attempt.retryable) == (None, False, True)
    assert attempt.error is not None and "connection failed" in attempt.error


def test_invalid_url_is_a_permanent_attempt_not_an_exception() -> None:
    attempt = post_json("ftp://example.com/x", PAYLOAD, delivery_id="d-7", timeout_s=1)
    assert (attempt.status_code, attempt.delivered, attempt.retryable) == (None, False, False)
    assert attempt.error is not None and "http://" in attempt.error


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff_s(n) for n in range(1, 10)] == [2, 4, 8, 16, 32, 64, 128, 256, 300]
    assert backoff_s(3, base_s=0.5, cap_s=10) == 2.0
    assert backoff_s(10_000) == 300.0  # no overflow
    assert backoff_s(4) == backoff_s(4)  # deterministic
    with pytest.raises(ValueError, match="from 1"):
        backoff_s(0)


@pytest.mark.parametrize(
    "url",
    ["http://hooks.example.com/alerts", "https://10.0.0.5:8443/x?token=1", " https://h/ "],
)
def test_valid_urls(url: str) -> None:
    assert validate_webhook_url(url) == url.strip()


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.com/x", "http:// or https://"),
        ("hooks.example.com/alerts", "scheme 'missing'"),
        ("https:///alerts", "no host"),
        ("http://example.com:port/x", "does not parse"),
        ("http://exa mple.com/x", "whitespace"),
        ("", "http:// or https://"),
    ],
)
def test_invalid_urls(url: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        validate_webhook_url(url)
