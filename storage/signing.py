"""HMAC-SHA256 signatures of artifact bytes.

The sha256 recorded with a version catches damage; it cannot catch someone who can write
both the artifact store and the database. A signature under a key kept outside both can.
"""

from __future__ import annotations

import hashlib
import hmac


def artifact_hmac(data: bytes, key: str) -> str:
    """Hex HMAC-SHA256 of ``data`` under ``key`` (utf-8)."""
    return hmac.new(key.encode("utf-8"), data, hashlib.sha256).hexdigest()


def verify_hmac(data: bytes, key: str, expected: str) -> bool:
    """Whether ``expected`` is the signature of ``data`` under ``key``, compared in constant
    time (a timing difference would let an attacker guess a valid signature byte by byte)."""
    actual = artifact_hmac(data, key).encode("ascii")
    # Encoded, because compare_digest refuses non-ASCII str (a damaged column must be False).
    return hmac.compare_digest(actual, expected.strip().lower().encode("utf-8"))
