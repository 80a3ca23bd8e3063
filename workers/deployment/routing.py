"""Stable traffic routing: a routing key (customer id) always lands on the same arm.

The bucket comes from sha256, never Python's ``hash()`` (salted per process since 3.3), so
every worker, restart and machine agrees. The salt (e.g. the deployment id) decorrelates
deployments: the same customer is not in the first 10% of every experiment.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_SCALE = float(2**64)
_BELOW_ONE = math.nextafter(1.0, 0.0)
WEIGHT_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Arm:
    name: str
    version_id: int
    weight: float


def bucket(key: str, salt: str) -> float:
    """Position of ``key`` in [0, 1): the first 8 bytes of sha256("salt:key") as an unsigned
    big-endian integer over 2**64."""
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    value = int.from_bytes(digest[:8], "big") / _SCALE
    # Integers within 2**10 of 2**64 round up to 1.0 as a float; keep the interval half-open.
    return min(value, _BELOW_ONE)


def _cumulative(arms: Sequence[Arm]) -> tuple[list[float], int]:
    """Cumulative weights, and the index of the last arm with weight > 0 (which takes the
    sliver the float sum leaves below 1)."""
    if not arms:
        raise ValueError("route needs at least one arm")
    bad = [arm.name for arm in arms if not (math.isfinite(arm.weight) and arm.weight >= 0)]
    if bad:
        raise ValueError(f"arm weights must be finite and >= 0; arm(s) {bad} are not")
    total = math.fsum(arm.weight for arm in arms)
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        raise ValueError(f"arm weights must sum to 1, they sum to {total!r}")
    last = max(i for i, arm in enumerate(arms) if arm.weight > 0)
    return list(itertools.accumulate(arm.weight for arm in arms)), last


def route(key: str, arms: Sequence[Arm], salt: str) -> Arm:
    """The arm whose cumulative-weight interval (in the given order) holds ``key``'s bucket.
    Zero-weight arms have an empty interval and are never chosen."""
    cumulative, last = _cumulative(arms)
    # bisect_right: the first arm whose upper bound is above the bucket (bounds are exclusive).
    return arms[min(bisect.bisect_right(cumulative, bucket(key, salt)), last)]


def route_all(keys: Sequence[str], arms: Sequence[Arm], salt: str) -> list[Arm]:
    """``route`` for many keys: the arms are checked once and the search is vectorised."""
    cumulative, last = _cumulative(arms)
    serving = [arm for arm in arms if arm.weight > 0]
    if len(serving) == 1:  # one arm takes all traffic: no key needs hashing
        return [serving[0]] * len(keys)
    prefix = f"{salt}:".encode()
    # The same arithmetic as bucket(), inlined: a function call per key doubles the time.
    digests = [hashlib.sha256(prefix + key.encode()).digest()[:8] for key in keys]
    words = np.frombuffer(b"".join(digests), dtype=">u8").astype(np.float64)
    buckets = np.minimum(words / _SCALE, _BELOW_ONE)
    # side="right" is bisect_right on the same floats, so route_all agrees with route.
    chosen = np.minimum(np.searchsorted(np.asarray(cumulative), buckets, side="right"), last)
    return [arms[i] for i in chosen.tolist()]
