"""The demo's retraining loop on real drift: UCI bank marketing (Moro, Cortez & Rita 2014,
CC BY 4.0; data/README.md) replayed as live traffic. A lead-scoring model trained on
2008H2 serves 2009 and then 2010 with their true outcomes; each year's check shows the
drift and the fall in health, raises the alerts and enqueues a retrain on the labelled
traffic, and the retrained version replaces the champion only if it is significantly
better on the newest rows, which neither model was trained on."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
import pandas as pd

from api_client import Client
from workers.settings import Settings

BANK = Path(__file__).resolve().parents[1] / "data" / "bank_marketing_dated.parquet"
MODEL = "term_deposit_leads"
KEY = "client_id"
# ``duration`` is known only once the call has ended, and the rebuilt date and its period
# bucket exist only in hindsight; the day and month of the contact are known beforehand.
NOT_INPUTS = ("duration", "date", "period", "y", "y01")
PERIODS = {"2008H2": "P1_2008H2", "2009": "P2_2009", "2010": "P3_2010"}
INLINE_BATCH = 1000
RETRAIN_POLICY: dict[str, Any] = {
    "window": {"days": 30, "evaluation_share": 0.3},
    "n_trials": 2,
    "cooldown_s": 0,  # the demo's years arrive minutes apart
    "decision": {"mode": "replace"},
}


def bank_periods(path: Path = BANK) -> dict[str, pd.DataFrame]:
    """The bank's contacts per year: inputs, the routing key and the 0/1 label."""
    frame = pd.read_parquet(path)
    frame[KEY] = [f"c{i:05d}" for i in range(len(frame))]
    frame["label"] = frame["y01"].astype("int64")
    periods = {}
    for name, period in PERIODS.items():
        rows = frame[frame["period"] == period]
        periods[name] = rows.drop(columns=list(NOT_INPUTS)).reset_index(drop=True)
    return periods


def lead_training_config(model_name: str = MODEL, n_trials: int = 2) -> dict[str, Any]:
    return {
        "model_name": model_name,
        "model_type": "lead_scoring",
        "target": "label",
        "exclude": [KEY],
        "optimization": {
            "n_trials": n_trials,
            "parallelism": 1,
            "metric": "roc_auc",
            "families": ["logistic_regression"],  # seconds per fit: the story is the loop
        },
        "validation": {"strategy": "stratified_cv", "folds": 3, "holdout": 0.2},
        "preprocessing": {"scaling": ["standard"], "interactions": [0]},
        "seed": 0,
    }


def replay(client: Client, model_name: str, rows: pd.DataFrame) -> int:
    """Serve ``rows`` through the deployment, then record their true outcomes."""
    outcomes = []
    inputs = rows.drop(columns=["label"])
    truth = dict(zip(rows[KEY], rows["label"], strict=True))
    for start in range(0, len(rows), INLINE_BATCH):
        batch = inputs.iloc[start : start + INLINE_BATCH].to_dict(orient="records")
        served = client.predict(model_name, batch, key_column=KEY)["predictions"]
        outcomes += [
            {"prediction_id": p["prediction_id"], "value": float(truth[p["routing_key"]])}
            for p in served
        ]
    for start in range(0, len(outcomes), 5000):
        client.record_outcomes(model_name, outcomes[start : start + 5000])
    return len(outcomes)


def run_retraining(settings: Settings, client: Client) -> dict[str, Any]:
    periods = bank_periods()
    roots = [Path(root) for root in settings.input_roots if "://" not in root]
    path = roots[-1] / "bank_marketing_2008h2.parquet"
    periods["2008H2"].to_parquet(path, index=False)
    dataset = client.submit(
        "ingest_dataset", {"uri": path.name, "name": "bank_marketing_2008h2"}
    ).wait(timeout=600, progress=False)
    trained = client.submit_train(
        dataset["dataset_id"],
        lead_training_config(),
        idempotency_key=f"demo:{MODEL}:{dataset['sha256']}",
    ).wait(timeout=1800, progress=False)
    metrics = trained.get("metrics") or {}
    click.echo(
        f"  {MODEL} {trained['version']} trained on 2008H2 ({len(periods['2008H2']):,} "
        f"contacts, {periods['2008H2']['label'].mean():.1%} said yes): holdout ROC AUC "
        f"{metrics.get('roc_auc', float('nan')):.3f}"
    )
    told = _told(client)
    if told:  # a second run: the years were replayed here already (replaying doubles them)
        return {"trained": trained, "years": {}, "retrains": told}
    client.deploy(MODEL, trained["version"], "immediate", reason="the demo's lead scorer")
    client.set_retrain_policy(MODEL, RETRAIN_POLICY, actor="demo")
    click.echo(
        "  retrain policy: on a performance drop, drift of important features or health "
        "below 40; train on the last 30 days of labelled traffic, judge on its newest 30%"
    )
    years = {}
    for year in ("2009", "2010"):
        rows = periods[year]
        served = replay(client, MODEL, rows)
        click.echo(
            f"\n  {year}: {served:,} contacts served and their outcomes recorded "
            f"({rows['label'].mean():.1%} said yes)"
        )
        years[year] = _check_and_retrain(client, year)
    return {"trained": trained, "years": years}


def _told(client: Client) -> list[dict[str, Any]]:
    """The retrains an earlier run of the demo decided, printed."""
    decided = [
        r
        for r in reversed(client.retrains(MODEL)["retrains"])
        if r["status"] not in ("open", "coalesced", "skipped")
    ]
    if decided:
        click.echo("  2009 and 2010 were replayed here before (a fresh CIPML_HOME replays them):")
        for retrain in decided:
            message = (retrain.get("decision") or {}).get("message", "")
            trigger, status = retrain["trigger"], retrain["status"]
            click.echo(f"    retrain {retrain['id']} ({trigger}): {status}: {message}")
    return decided


def _check_and_retrain(client: Client, year: str) -> dict[str, Any]:
    check = client.check(MODEL, window="1h").wait(timeout=600, progress=False)
    health = check["health"]
    performance = check.get("performance") or {}
    score = "-" if health["score"] is None else f"{health['score']:.0f}/100"
    click.echo(f"    check of {check['version']}: health {score} ({health['status']})")
    if performance.get("value") is not None:
        click.echo(
            f"      {performance['metric']} {performance['value']:.3f} against "
            f"{performance['baseline']:.3f} on the holdout ({performance['status']})"
        )
    drifted = check["drifted_features"]
    click.echo(f"      drifted: {', '.join(drifted[:6]) or 'none'}")
    for alert in check.get("alerts", []):
        click.echo(f"      alert {alert['event']} {alert['level']} {alert['kind']}")
    retrain = _retrain_after(client, check["checked_at"])
    if retrain is None:
        click.echo("    no retrain: nothing the policy retrains on")
        return {"check": check, "retrain": None}
    click.echo(
        f"    retrain enqueued ({retrain['trigger']}: {retrain['reason']}); training job "
        f"{retrain['job_id']}"
    )
    decided = _decided(client, retrain["id"])
    decision = decided.get("decision") or {}
    click.echo(f"    decision: {decided['status']}: {decision.get('message', '')}")
    return {"check": check, "retrain": decided}


def _retrain_after(client: Client, checked_at: str, timeout: float = 60) -> dict[str, Any] | None:
    """The retrain the check's findings opened (the policy runs right after the check)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for retrain in client.retrains(MODEL)["retrains"]:
            if retrain["created_at"] >= checked_at and retrain["status"] != "coalesced":
                return dict(retrain)
        time.sleep(0.5)
    return None


def _decided(client: Client, retrain_id: int, timeout: float = 1800) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for retrain in client.retrains(MODEL)["retrains"]:
            if retrain["id"] == retrain_id and retrain["status"] != "open":
                return dict(retrain)
        time.sleep(1)
    raise click.ClickException(f"retrain {retrain_id} was not decided within {timeout:g} s")
