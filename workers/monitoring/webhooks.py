"""Delivery of one alert notification: an HTTP POST of JSON, standard library only.

Request: ``POST`` of the payload plus ``delivery_id`` as compact JSON with sorted keys
(the same notification always gives the same bytes, so a signature is reproducible),
with the headers

* ``Content-Type: application/json`` and ``User-Agent: cipml-webhooks``;
* ``X-Cipml-Delivery: <delivery_id>``: the same on every retry of a delivery, so a
  receiver that got it already (our timeout, its success) can drop the duplicate;
* ``X-Cipml-Signature: sha256=<hex>`` when a secret is configured: HMAC-SHA256 of the
  exact body bytes, so a receiver can check the sender and that nothing was altered.

Outcome (``Attempt``), never an exception for HTTP or network trouble:

==================================================  =========  ==========
response                                            delivered  retryable
==================================================  =========  ==========
2xx                                                 yes        -
408, 429, 5xx                                       no         yes
timeout, DNS, TLS, refused / reset, bad response   no         yes
3xx (redirects are not followed)                    no         no
other 4xx, an invalid URL                           no         no
==================================================  =========  ==========

Redirects are not followed: a POST turned into a GET on another host would either drop
the alert or leak its body (and signature) to wherever the redirect points; the
configured URL must be the endpoint. ``timeout_s`` bounds each socket operation
(connecting, each read), as ``urllib`` does, not the whole exchange.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

USER_AGENT = "cipml-webhooks"
RETRYABLE_STATUS = frozenset({408, 429})  # and every 5xx
SNIPPET = 200  # characters of a failed response's body kept in the error


@dataclass(frozen=True)
class Attempt:
    status_code: int | None  # None: no HTTP response (timeout, connection error, bad URL)
    error: str | None  # None when delivered
    elapsed_s: float
    retryable: bool
    delivered: bool


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Hands 3xx back as an HTTPError instead of following it (module docstring)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# Default handlers (proxies from the environment included), minus redirect following.
_OPENER = urllib.request.build_opener(_NoRedirect())


def validate_webhook_url(url: str) -> str:
    """The URL, stripped, if it is http(s) with a host; ValueError saying why otherwise."""
    text = url.strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError as error:
        raise ValueError(f"webhook URL {url!r} does not parse: {error}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(
            f"webhook URL {url!r} must start with http:// or https:// "
            f"(scheme {parts.scheme or 'missing'!r})"
        )
    if not parts.hostname:
        raise ValueError(f"webhook URL {url!r} has no host")
    if any(char.isspace() for char in text):
        raise ValueError(f"webhook URL {url!r} contains whitespace")
    return text


def sign(body: bytes, secret: str) -> str:
    """The ``X-Cipml-Signature`` value: ``sha256=`` and the hex HMAC-SHA256 of ``body``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def backoff_s(attempt: int, base_s: float = 2.0, cap_s: float = 300.0) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1, 2, ...):
    ``base_s · 2^(attempt - 1)``, at most ``cap_s``.

    No jitter: jitter spreads many clients that retry one server in lockstep. Here each
    delivery has exactly one sender, and deliveries start when their alerts fire (spread
    by the checks' schedule and the cooldown), so there is no herd to break up; fixed
    delays keep the retry schedule reproducible and testable."""
    if attempt < 1:
        raise ValueError(f"attempt counts from 1; got {attempt}")
    # Exponent capped so that a huge attempt number cannot overflow the float.
    return float(min(cap_s, base_s * 2.0 ** min(attempt - 1, 1000)))


def _body(payload: Mapping[str, Any], delivery_id: str) -> bytes:
    # The id in the body too: receivers that log only bodies can still deduplicate.
    document = {**payload, "delivery_id": delivery_id}
    return json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _snippet(response: Any) -> str:
    try:
        text: str = response.read(SNIPPET).decode("utf-8", "replace").strip()
    except (OSError, http.client.HTTPException):
        return ""
    return f": {text}" if text else ""


def _failure(status: int | None, error: str, started: float, *, retryable: bool) -> Attempt:
    return Attempt(status, error, time.monotonic() - started, retryable, False)


def post_json(
    url: str,
    payload: Mapping[str, Any],
    *,
    delivery_id: str,
    timeout_s: float,
    secret: str | None = None,
) -> Attempt:
    """One POST of ``payload`` to ``url`` (module docstring); never raises for HTTP or
    network problems. A payload that is not JSON (NaN, objects) is a ValueError/TypeError:
    that is a bug of the caller, not a delivery problem."""
    body = _body(payload, delivery_id)
    started = time.monotonic()
    try:
        target = validate_webhook_url(url)
    except ValueError as error:
        return _failure(None, str(error), started, retryable=False)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Cipml-Delivery": delivery_id,
    }
    if secret:
        headers["X-Cipml-Signature"] = sign(body, secret)
    request = urllib.request.Request(target, data=body, headers=headers, method="POST")
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:
            status = int(response.status)
            # The receiver said 2xx: delivered, even if its body then stalls or breaks.
            with contextlib.suppress(OSError, http.client.HTTPException):
                response.read(SNIPPET)
        return Attempt(status, None, time.monotonic() - started, False, True)
    except urllib.error.HTTPError as error:  # a response, but not 2xx
        status = int(error.code)
        detail = _snippet(error)
        error.close()
        if 300 <= status < 400:
            where = error.headers.get("Location") if error.headers else None
            return _failure(
                status,
                f"HTTP {status}: redirect to {where or 'an unnamed location'} not followed; "
                "configure the final URL",
                started,
                retryable=False,
            )
        retryable = status in RETRYABLE_STATUS or status >= 500
        return _failure(
            status, f"HTTP {status} {error.reason}{detail}", started, retryable=retryable
        )
    except TimeoutError:
        return _failure(None, f"timed out after {timeout_s:g} s", started, retryable=True)
    except urllib.error.URLError as error:  # no response: DNS, refused, TLS, timeout
        reason = error.reason
        if isinstance(reason, TimeoutError):
            return _failure(None, f"timed out after {timeout_s:g} s", started, retryable=True)
        return _failure(None, f"connection failed: {reason}", started, retryable=True)
    except (OSError, http.client.HTTPException) as error:  # reset, bad status line
        return _failure(
            None, f"connection failed: {type(error).__name__}: {error}", started, retryable=True
        )
