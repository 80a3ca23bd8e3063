"""The demo's rollouts: the churn champion deployed, a challenger retrained with another
seed in an A/B test, and a canary of a deliberately degraded model that rolls back.

CDNOW's customers are replayed as traffic with their true outcomes, a slice per
simulated scheduler tick; each tick is evaluated at once (``client.evaluate_rollout``),
as beat would do every ``CIPML_ROLLOUT_INTERVAL_S`` in production.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd

from api_client import Client
from workers.settings import Settings

TICKS = 8  # the customers are replayed over this many simulated ticks
PREDICT_BATCH = 1000  # rows per inline predict call (CIPML_MAX_INLINE_ROWS's default)
AB_CONFIG = {"metric": "accuracy", "min_samples_per_arm": 1000, "min_effect": 0.01}
CANARY_CONFIG = {
    "steps": [0.05, 0.25, 0.5, 1.0],
    "min_samples_per_step": 200,
    "min_step_duration_s": 0,  # simulated ticks: no waiting between steps
    "guardrails": {"metric": "accuracy", "min_samples": 100},
}


def dataset_table(settings: Settings, sha256: str) -> pd.DataFrame:
    from storage.artifact_store import ArtifactStore

    with ArtifactStore(settings.artifacts).open_verified(sha256) as handle:
        return pd.read_parquet(handle)


def run_rollouts(
    settings: Settings, client: Client, trained: dict[str, Any], features: dict[str, Any]
) -> dict[str, Any]:
    name, champion = trained["model_name"], trained["version"]
    table = dataset_table(settings, features["sha256"])
    deployed = client.deploy(name, champion, "immediate", reason="the demo's champion")
    if deployed["in_progress"]:  # a rollout left over from an interrupted run
        client.rollback(name, reason="the demo starts over")
        deployed = client.deploy(name, champion, "immediate", reason="the demo's champion")
    click.echo(f"  deployed {name} {champion}: {_arms(deployed)}")

    challenger = _challenger(client, trained, features)
    client.deploy(name, challenger, "ab_test", AB_CONFIG, reason="retrained with seed 1")
    click.echo(
        f"  A/B test: {challenger} (challenger) vs {champion} (champion), 50/50 by customer, "
        f"accuracy on true outcomes, mSPRT at alpha 0.05, min effect 1 point"
    )
    ab = _replay(client, name, table, seed=1)
    _print_decision(ab)
    if client.deployment(name)["in_progress"]:
        client.rollback(name, reason="the demo's traffic ran out before a decision")
        click.echo("  no decision within the replayed traffic: the test is stopped")

    degraded = _degraded(settings, client, trained, table)
    stable = client.deployment(name)["stable_version"]
    client.deploy(name, degraded, "canary", CANARY_CONFIG, reason="deliberately degraded")
    click.echo(
        f"\n  canary: {degraded} (trained on shuffled labels) vs {stable}, steps 5% -> 25% -> "
        "50% -> 100%, guardrails: accuracy, error rate, latency p95, score PSI"
    )
    canary = _replay(client, name, table, seed=2)
    _print_decision(canary)
    return {
        "champion": champion,
        "challenger": challenger,
        "degraded": degraded,
        "ab": ab,
        "canary": canary,
    }


def _challenger(client: Client, trained: dict[str, Any], features: dict[str, Any]) -> str:
    """The champion's config with another seed and a shorter search."""
    from workers.demo import churn_training_config

    config = churn_training_config()
    config["seed"] = 1
    config["optimization"] |= {"n_trials": 4, "timeout_s": 15}
    config["ensemble"] = {"methods": []}
    config.pop("baseline")
    result = client.submit_train(
        features["dataset_id"], config, idempotency_key=f"demo:challenger:{features['sha256']}"
    ).wait(timeout=900, progress=True)
    click.echo(
        f"  challenger {result['version']}: the same search with seed 1, holdout ROC AUC "
        f"{result['metrics']['roc_auc']:.3f} (champion {trained['metrics']['roc_auc']:.3f})"
    )
    return str(result["version"])


def _degraded(
    settings: Settings, client: Client, trained: dict[str, Any], table: pd.DataFrame
) -> str:
    """The same inputs with the churn labels shuffled: a model that has learnt nothing."""
    shuffled = table.copy()
    shuffled["label"] = np.random.default_rng(0).permutation(shuffled["label"].to_numpy())
    roots = [Path(root) for root in settings.input_roots if "://" not in root]
    path = roots[-1] / "cdnow_churn_features_shuffled_labels.parquet"
    shuffled.to_parquet(path, index=False)
    dataset = client.submit(
        "ingest_dataset", {"uri": path.name, "name": "customer_churn_shuffled_labels"}
    ).wait(timeout=600, progress=False)
    config = {
        "model_name": trained["model_name"],
        "model_type": "churn",
        "target": "label",
        "exclude": ["customer_id", "cutoff"],
        "optimization": {
            "strategy": "random",
            "n_trials": 2,
            "parallelism": 1,
            "families": ["logistic_regression"],
        },
        "validation": {"folds": 3},
        "ensemble": {"methods": []},
        "seed": 2,
    }
    result = client.submit_train(
        dataset["dataset_id"], config, idempotency_key=f"demo:degraded:{dataset['sha256']}"
    ).wait(timeout=600, progress=False)
    return str(result["version"])


def _replay(client: Client, name: str, table: pd.DataFrame, *, seed: int) -> dict[str, Any]:
    """Replay every customer once, a slice per tick, with their true churn recorded by
    prediction id; evaluate after each tick and stop at the first decision."""
    order = np.random.default_rng(seed).permutation(len(table))
    rows = table.drop(columns=["label", "cutoff"])
    truth = table["label"].to_numpy()
    decision: dict[str, Any] = {}
    for tick, part in enumerate(np.array_split(order, TICKS), start=1):
        outcomes = []
        for start in range(0, len(part), PREDICT_BATCH):
            chosen = part[start : start + PREDICT_BATCH]
            payload = json.loads(rows.iloc[chosen].to_json(orient="records"))
            answer = client.predict(name, payload)
            for prediction in answer["predictions"]:
                value = float(truth[chosen[prediction["row"]]])
                outcomes.append({"prediction_id": prediction["prediction_id"], "value": value})
        for start in range(0, len(outcomes), 5000):
            client.record_outcomes(name, outcomes[start : start + 5000])
        decision = client.evaluate_rollout(name)
        click.echo(f"    tick {tick}: {decision['kind']:<13} {_short(decision['reason'])}")
        if decision["state"] not in ("canary", "testing"):
            break
    return decision


def _print_decision(decision: dict[str, Any]) -> None:
    details = decision.get("details") or {}
    if "effect" in details and details.get("effect") is not None:
        interval = (details.get("ci_low"), details.get("ci_high"))
        shown = ", ".join("unbounded" if x is None else f"{x:+.4f}" for x in interval)
        click.echo(
            f"  decision: {decision['kind']} — lift {details['effect']:+.4f} [{shown}], "
            f"always-valid p {details['p_value']:.4g}, n {details['n_control']:,} / "
            f"{details['n_challenger']:,}"
        )
    for check in details.get("checks", []):
        if check["status"] == "breached":
            click.echo(f"  guardrail breached: {check['message']}")
    click.echo(f"  state: {decision['state']}")


def _arms(view: dict[str, Any]) -> str:
    return ", ".join(f"{a['role']} {a['version']} {a['weight']:.0%}" for a in view["arms"])


def _short(text: str, width: int = 110) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
