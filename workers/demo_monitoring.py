"""The demo's monitoring: the champion checked on the hour of traffic the demo logged, then
on a copy of the customers with two features drifted, each with its HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from api_client import Client
from workers.demo_rollouts import dataset_table
from workers.reports import export_check_report
from workers.settings import Settings

DRIFTED = ("frequency", "dollar_value__sum")


def run_checks(
    settings: Settings, client: Client, trained: dict[str, Any], features: dict[str, Any]
) -> dict[str, Any]:
    name = trained["model_name"]
    handle = client.check(name, window="1h")
    logged = {
        **handle.wait(timeout=600, progress=False),
        "page": export_check_report(settings, handle.id),
    }
    click.echo(
        f"  the last hour of logged traffic ({logged['window']['rows']:,} predictions of "
        f"{logged['version']}, {logged['window']['labelled_rows']:,} with outcomes) against "
        f"{logged['window']['reference_rows']:,} training rows:"
    )
    _print_check(logged)
    table = dataset_table(settings, features["sha256"])
    for column in DRIFTED:
        table[column] = table[column] * 3 + 5
    roots = [Path(root) for root in settings.input_roots if "://" not in root]
    path = roots[-1] / "cdnow_churn_features_drifted.parquet"
    table.to_parquet(path, index=False)
    dataset = client.submit(
        "ingest_dataset", {"uri": path.name, "name": "customer_churn_drifted_copy"}
    ).wait(timeout=600, progress=False)
    handle = client.check(name, current_dataset=dataset["dataset_id"])
    drifted = {
        **handle.wait(timeout=600, progress=False),
        "page": export_check_report(settings, handle.id),
    }
    click.echo(f"\n  a copy of the customers with {' and '.join(DRIFTED)} x3 + 5:")
    _print_check(drifted)
    return {"logged": logged, "drifted": drifted}


def _print_check(check: dict[str, Any]) -> None:
    health = check["health"]
    score = "-" if health["score"] is None else f"{health['score']:.0f}/100"
    click.echo(f"    health {score} ({health['status']})")
    for reason in health["reasons"][:3]:
        click.echo(f"      {reason}")
    features = check["drifted_features"]
    shown = ", ".join(features[:6]) + (
        f" and {len(features) - 6} more" if len(features) > 6 else ""
    )
    click.echo(f"    drifted features: {shown or 'none'}")
    performance = check.get("performance") or {}
    if performance.get("value") is not None and performance.get("ci_low") is not None:
        click.echo(
            f"    {performance['metric']} {performance['value']:.3f} "
            f"[{performance['ci_low']:.3f}, {performance['ci_high']:.3f}] vs holdout "
            f"{performance['baseline']:.3f} ({performance['status']})"
        )
    elif performance:
        click.echo(f"    performance: {performance['status']} ({performance['message']})")
    click.echo(f"    report: {check['page'].as_uri()}")
