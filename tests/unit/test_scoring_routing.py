"""Stable routing of keys to deployment arms."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from workers.deployment.routing import Arm, bucket, route, route_all

ROOT = Path(__file__).resolve().parents[2]
KEYS = [f"customer-{i}" for i in range(100_000)]


def arms(*weights: float) -> list[Arm]:
    return [Arm(f"arm{i}", 100 + i, w) for i, w in enumerate(weights)]


def test_bucket_is_the_first_8_bytes_of_sha256_over_2_64() -> None:
    digest = hashlib.sha256(b"churn:customer-1").digest()
    expected = int.from_bytes(digest[:8], "big") / 2**64
    assert bucket("customer-1", "churn") == expected
    assert 0.0 <= expected < 1.0


def test_a_key_routes_the_same_in_a_fresh_process() -> None:
    split = arms(0.1, 0.4, 0.5)
    keys = KEYS[:200]
    here = [arm.name for arm in route_all(keys, split, "deployment-7")]
    script = (
        "from workers.deployment.routing import Arm, route\n"
        "split = [Arm(f'arm{i}', 100 + i, w) for i, w in enumerate((0.1, 0.4, 0.5))]\n"
        "for i in range(200):\n"
        "    print(route(f'customer-{i}', split, 'deployment-7').name)\n"
    )
    # A different PYTHONHASHSEED: hash() would route differently, sha256 must not.
    env = {"PYTHONHASHSEED": "12345", "PATH": ""}
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == here


@pytest.mark.parametrize("weights", [(0.1, 0.9), (0.5, 0.5), (0.05, 0.25, 0.7)])
def test_100k_keys_split_within_one_point(weights: tuple[float, ...]) -> None:
    split = arms(*weights)
    counts = Counter(arm.name for arm in route_all(KEYS, split, "salt"))
    for arm in split:
        assert abs(counts[arm.name] / len(KEYS) - arm.weight) < 0.01


def test_route_all_agrees_with_route_and_is_fast() -> None:
    split = arms(0.2, 0.0, 0.3, 0.5)
    start = time.perf_counter()
    chosen = route_all(KEYS, split, "s")
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0
    assert chosen[:5000] == [route(key, split, "s") for key in KEYS[:5000]]


def test_zero_weight_arms_are_never_chosen() -> None:
    split = arms(0.0, 0.5, 0.0, 0.5, 0.0)
    names = {arm.name for arm in route_all(KEYS[:20_000], split, "s")}
    assert names == {"arm1", "arm3"}
    assert {route(k, arms(0.0, 1.0), "s").name for k in KEYS[:1000]} == {"arm1"}


def test_arm_boundaries_are_half_open() -> None:
    # Bucket b goes to the first arm whose cumulative weight is above b.
    key = "customer-1"
    b = bucket(key, "churn")
    assert route(key, arms(b, 1 - b), "churn").name == "arm1"  # b is not below b
    assert route(key, [Arm("x", 1, 1.0)], "churn").name == "x"


@pytest.mark.parametrize(
    ("weights", "said"),
    [((0.5, 0.4), "sum to 0.9"), ((0.6, 0.6), "sum to 1.2"), ((), "at least one arm")],
)
def test_weights_not_summing_to_1_are_refused(weights: tuple[float, ...], said: str) -> None:
    with pytest.raises(ValueError, match=said):
        route("k", arms(*weights), "s")
    with pytest.raises(ValueError, match=said):
        route_all(["k"], arms(*weights), "s")


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf")])
def test_negative_or_non_finite_weights_are_refused(bad: float) -> None:
    with pytest.raises(ValueError, match=r"\['arm0'\]"):
        route("k", arms(bad, 1.0), "s")


def test_a_sum_within_1e_9_is_accepted() -> None:
    assert route("k", arms(0.1, 0.2, 0.7 - 5e-10), "s").name.startswith("arm")


def test_a_new_salt_reshuffles_about_half_the_keys_for_50_50() -> None:
    split = arms(0.5, 0.5)
    before = route_all(KEYS, split, "experiment-1")
    after = route_all(KEYS, split, "experiment-2")
    moved = sum(a != b for a, b in zip(before, after, strict=True)) / len(KEYS)
    assert 0.49 < moved < 0.51
    assert route_all(KEYS, split, "experiment-1") == before
