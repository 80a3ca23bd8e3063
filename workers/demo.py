"""`cipml demo`: the main job, one readable script of steps.

On the embedded defaults it needs no server; with CIPML_BROKER_URL / CIPML_DATABASE_URL it
runs the same on Redis + PostgreSQL. It starts what it needs and stops what it started.
"""

from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import click

from api_client import Client, ServiceUnavailable
from workers.demo_monitoring import run_checks
from workers.demo_retraining import run_retraining
from workers.demo_rollouts import dataset_table, run_rollouts
from workers.processes import Children, cipml_argv
from workers.reports import export_report
from workers.settings import Settings

BUNDLED = Path(__file__).resolve().parents[1] / "data" / "cdnow_transactions.parquet"
STEPS = 11
INLINE_CUSTOMERS = 3
OUTCOME_BATCH = 5000
# The log ends on 1998-06-30: judge it as of the next day, as its analysts would have.
DEMO_AS_OF = "1998-07-01T00:00:00Z"
TOP_RECOMMENDATIONS = 3
TOP_TRAINED_FEATURES = 5
CHURN_CUTOFF = "1997-10-01"
SHOWN_FEATURES = (
    "days_since_last_event",
    "frequency",
    "dollar_value__sum",
    "dollar_value__sum__90D",
    "number_of_cds__lag_1",
    "days_between_events__lag_1",
    "cutoff__is_holiday",
    "activity__trend_slope",
)


def churn_features_params(dataset_id: int) -> dict[str, Any]:
    """The issue's example config on CDNOW: churn = no purchase in the 39 weeks after the
    cutoff (base rate about 70%)."""
    return {
        "dataset_id": dataset_id,
        "customer_id_column": "customer_id",
        "timestamp_column": "date",
        "value_columns": ["dollar_value", "number_of_cds"],
        "cutoffs": [CHURN_CUTOFF],
        "lag_periods": [1, 7, 30],
        "rolling_windows": ["7D", "14D", "30D", "90D"],
        "calendar": True,
        "holidays_country": "US",
        "fourier_order": 3,
        "trend": True,
        "change_points": True,
        "label": {"kind": "churn", "horizon": "39W"},
    }


def churn_training_config() -> dict[str, Any]:
    """A short search for the demo: at most 12 trials or 30 s over logistic regression and
    gradient boosting, unpromising trials pruned fold by fold, compared on the holdout with
    default gradient boosting on the nine plain RFM columns."""
    return {
        "model_name": "customer_churn",
        "model_type": "churn",
        "target": "label",
        "exclude": ["customer_id", "cutoff"],
        "optimization": {
            "strategy": "bayesian",
            "n_trials": 12,
            "timeout_s": 30,
            "parallelism": 2,
            "pruner": "median",
            "metric": "roc_auc",
            "families": ["logistic_regression", "hist_gradient_boosting"],
        },
        "validation": {"strategy": "stratified_cv", "folds": 3, "holdout": 0.2},
        # soft voting costs no extra fit to judge; stacking would double the finalize step
        "ensemble": {"methods": ["voting"], "top_k": 3},
        "baseline": list(RFM_COLUMNS),
        "seed": 0,
    }


# What a plain recency-frequency-monetary model uses, the baseline the churn model must beat.
RFM_COLUMNS = (
    "days_since_last_event",
    "days_since_first_event",
    "frequency",
    "raw_event_count",
    "dollar_value__sum",
    "dollar_value__mean",
    "number_of_cds__sum",
    "number_of_cds__mean",
    "dollar_value__lag_1",
)


def step(number: int, text: str) -> None:
    click.secho(f"[{number}/{STEPS}] {text}", bold=True)


def run_demo(
    settings: Settings, client: Client, worker_ready_timeout: float = 90
) -> dict[str, Any]:
    from storage.migrate import upgrade

    step(1, "database: bring the schema up to date")
    if settings.embedded:
        settings.home.mkdir(parents=True, exist_ok=True)
    revision = upgrade(settings.database)
    click.echo(f"      {settings.describe()['database']} at schema {revision}")

    step(2, "data: the CDNOW purchase log (Fader & Hardie; 69,659 purchases, 1997-98)")
    data_file = _place_bundled_data(settings)
    click.echo(f"      {data_file}")

    children = Children()
    try:
        step(3, "worker: start one for this demo")
        children.start("worker", cipml_argv("worker", "-c", "2"), "all queues", quiet=True)
        _wait_for_worker(client, children, worker_ready_timeout)
        click.echo("      ready (mode: " + settings.describe()["mode"] + ")")

        step(4, "ingest: CSV/Parquet -> registered Parquet dataset, with progress")
        handle = client.submit(
            "ingest_dataset", {"uri": data_file.name, "name": "cdnow_transactions"}
        )
        result = handle.wait(timeout=600, progress=True)
        _print_result(settings, handle.id, result)

        step(5, "quality: assess the dataset (JSON + HTML report, scores, recommendations)")
        quality = client.submit(
            "assess_quality", {"dataset_id": result["dataset_id"], "as_of": DEMO_AS_OF}
        ).wait(timeout=600, progress=True)
        page = export_report(settings, result["dataset_id"])
        _print_quality(quality, page)

        step(6, f"features: churn features per customer as of {CHURN_CUTOFF} (39-week label)")
        features = client.submit(
            "build_features", churn_features_params(result["dataset_id"])
        ).wait(timeout=600, progress=True)
        _print_features(features)

        step(7, "training: a churn model, Optuna search over model families, holdout metrics")
        # Keyed by the features' bytes: a second demo run finds the model already trained.
        trained = client.submit_train(
            features["dataset_id"],
            churn_training_config(),
            idempotency_key=f"demo:customer_churn:{features['sha256']}",
        ).wait(timeout=1800, progress=True)
        _print_training(trained)

        step(8, "scoring: champion alias, score by reference and inline, outcomes, lineage")
        scoring = _score(settings, client, trained, features)

        step(9, "rollouts: an A/B test of a retrained challenger, a canary that rolls back")
        rollouts = run_rollouts(settings, client, trained, features)

        step(10, "monitoring: drift, performance and health of the champion, with a report")
        monitoring = run_checks(settings, client, trained, features)

        step(11, "retraining: bank marketing 2009-2010 replayed; drift, alerts, retrains")
        retraining = run_retraining(settings, client)
    finally:
        # Nothing is in flight once the job ended: a cold shutdown is safe and saves the
        # seconds a warm one spends in Celery's timer loop.
        children.stop(sig=signal.SIGQUIT)
    click.secho("\ndone", fg="green", bold=True)
    return {
        **result,
        "quality": quality,
        "features": features,
        "training": trained,
        "scoring": scoring,
        "rollouts": rollouts,
        "monitoring": monitoring,
        "retraining": retraining,
    }


def _place_bundled_data(settings: Settings) -> Path:
    if not BUNDLED.exists():
        raise click.ClickException(
            f"the bundled demo data is missing ({BUNDLED}); reinstall "
            "from a checkout of the repository"
        )
    local_roots = [Path(root) for root in settings.input_roots if "://" not in root]
    if not local_roots:
        raise click.ClickException("the demo needs a local folder in CIPML_DATA_ROOTS")
    target = local_roots[-1] / BUNDLED.name  # $CIPML_HOME/data unless roots are set
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists() or target.stat().st_size != BUNDLED.stat().st_size:
        shutil.copyfile(BUNDLED, target)
    return target


def _wait_for_worker(client: Client, children: Children, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        exited = children.exited()
        if exited is not None:
            raise click.ClickException(
                f"the {exited.name} exited with code {exited.process.returncode}; run "
                "`cipml worker` to see why"
            )
        try:
            client.jobs(limit=1)
            return
        except ServiceUnavailable:
            continue
    raise click.ClickException(f"no worker answered within {timeout:g}s")


def _print_result(settings: Settings, job_id: str, result: dict[str, Any]) -> None:
    described = settings.describe()
    rows = [
        ("dataset", f"{result['name']} v{result['version']} (id {result['dataset_id']})"),
        ("rows x columns", f"{result['rows']:,} x {result['columns']}"),
        ("sha256 (Parquet)", result["sha256"]),
        ("sha256 (source)", result["source_sha256"]),
        (
            "deduplicated",
            "yes: this source was ingested before"
            if result.get("deduplicated")
            else "no: a new version",
        ),
        ("stored at", result.get("artifact_uri") or settings.artifacts),
        ("database", described["database"]),
        ("job", f"{job_id} (cipml status {job_id})"),
    ]
    for key, value in rows:
        click.echo(f"  {key:17} {value}")


def _print_quality(quality: dict[str, Any], page: Path) -> None:
    scores = quality["scores"]
    shown = "  ".join(
        f"{name} {scores[name]:g}" if scores[name] is not None else f"{name} n/a"
        for name in ("completeness", "validity", "consistency", "uniqueness", "timeliness")
    )
    findings = quality["findings"]
    click.secho(f"\n  quality {scores['overall']:g}/100", bold=True)
    click.echo(f"  {shown}")
    click.echo(
        f"  findings: {findings['high']} high, {findings['medium']} medium, {findings['low']} low"
    )
    click.echo("  top recommendations:")
    for text in quality["recommendations"][:TOP_RECOMMENDATIONS]:
        click.echo(f"    - {text}")
    click.echo(f"  report: {page.as_uri()}  (open it in a browser)")
    click.echo(f"  stored: {quality['html_uri']} (HTML), {quality['json_uri']} (JSON)")


def _print_features(features: dict[str, Any]) -> None:
    counts, label, example = features["counts"], features["label"] or {}, features["example"]
    click.echo(
        f"\n  {features['name']} v{features['version']} (id {features['dataset_id']}): "
        f"{features['rows']:,} customers x {features['features']} features"
    )
    click.echo(
        f"  churn base rate {label.get('mean', float('nan')):.1%} "
        f"({counts.get('excluded_horizon_past_data', 0):,} excluded: horizon past the data)"
    )
    click.echo(f"  customer {example.get('customer_id')}:")
    for name in SHOWN_FEATURES:
        if name in example:
            value = example[name]
            shown = f"{value:,.4g}" if isinstance(value, float) else str(value)
            click.echo(f"    {name:28} {shown}")


def _print_training(trained: dict[str, Any]) -> None:
    metrics, cv, training = trained["metrics"], trained["cv"], trained["training"]
    trials = training["trials"]
    click.echo(
        f"\n  {trained['model_name']} {trained['version']} (model version id "
        f"{trained['model_version_id']}): {trained['family'].replace('_', ' ')}, chosen from "
        f"{trials.get('COMPLETE', 0)} complete and {trials.get('PRUNED', 0)} pruned trials"
    )
    click.echo(f"  CV roc_auc {cv['mean']:.3f} ± {cv['std']:.3f} ({cv['folds']} folds)")
    click.echo(
        f"  holdout ({training['rows']['holdout']:,} customers): ROC AUC "
        f"{metrics['roc_auc']:.3f}  PR AUC {metrics['pr_auc']:.3f}  Brier {metrics['brier']:.3f}"
    )
    click.echo(
        f"  at threshold {trained['threshold']:.2f} (best F1 on CV): precision "
        f"{metrics['precision']:.2f}  recall {metrics['recall']:.2f}  F1 {metrics['f1']:.2f}"
    )
    ensemble = training.get("ensemble") or {}
    if "voting" in ensemble:
        verdict = "kept" if ensemble["chosen"] == "voting" else "not kept"
        click.echo(
            f"  soft voting over the top {len(ensemble['members'])} configurations: CV "
            f"{ensemble['voting']['mean']:.3f} vs {ensemble['single']['mean']:.3f} single "
            f"({verdict}: it must win by more than the CV standard error "
            f"{ensemble['margin']:.3f})"
        )
    baseline = training.get("baseline")
    if baseline:
        gap = baseline["model_minus_baseline"]
        click.echo(
            f"  against default gradient boosting on {len(baseline['columns'])} plain RFM "
            f"columns: ROC AUC {baseline['model']:.3f} vs {baseline['baseline_score']:.3f}, "
            f"difference {gap['difference']:+.3f} (95% paired bootstrap "
            f"[{gap['low']:+.3f}, {gap['high']:+.3f}])"
        )
    click.echo("  top features (permutation importance on the holdout, ROC AUC drop):")
    for feature in trained["top_features"][:TOP_TRAINED_FEATURES]:
        click.echo(f"    {feature['feature']:28} {feature['mean']:.4f} ± {feature['std']:.4f}")
    click.echo(f"  Optuna study: {trained['study_name']} (optuna-dashboard reads it)")


def _score(
    settings: Settings, client: Client, trained: dict[str, Any], features: dict[str, Any]
) -> dict[str, Any]:
    """The trained version serves as champion; every customer is scored by reference, three
    inline; the customers' true churn labels are recorded as outcomes."""
    # The worker is known to be up: a slow answer now is work (5,000 outcomes), not absence.
    client.control_timeout = max(client.control_timeout, 60.0)
    name, version = trained["model_name"], trained["version"]
    alias = client.set_alias(name, "champion", version, "the demo's model", actor="cipml demo")
    moved = "set" if alias["changed"] else "already set"
    click.echo(f"\n  champion -> {name} {version} ({moved}; revision {alias['revision']})")
    scored = client.score_dataset(
        name, features["dataset_id"], idempotency_key=f"demo:score:{features['sha256']}:{version}"
    ).wait(timeout=600, progress=True)
    click.echo(
        f"  scored {scored['scored']:,} customers by reference into dataset "
        f"{scored['name']} v{scored['version']} ({scored['rejected']} rejected); every "
        "prediction logged with its features"
    )
    table = dataset_table(settings, features["sha256"])
    rows = table.drop(columns=["label", "cutoff"]).head(INLINE_CUSTOMERS)
    inline = client.predict(name, json.loads(rows.to_json(orient="records")))
    for prediction in inline["predictions"]:
        click.echo(
            f"    inline: customer {prediction['routing_key']:>6}  P(churn) "
            f"{prediction['score']:.3f} -> {prediction['label']}  ({prediction['version']}, "
            f"{prediction['arm']})"
        )
    truth = [
        {"routing_key": str(key), "value": float(label)}
        for key, label in table[["customer_id", "label"]].itertuples(index=False)
    ]
    outcomes = {"recorded": 0, "updated": 0}
    for start in range(0, len(truth), OUTCOME_BATCH):
        answer = client.record_outcomes(name, truth[start : start + OUTCOME_BATCH])
        for key in outcomes:
            outcomes[key] += answer[key]
    click.echo(
        f"  true outcomes by customer: {outcomes['recorded']:,} recorded, "
        f"{outcomes['updated']:,} updated (a repeat run rewrites them: the last write wins)"
    )
    chain = client.lineage(name, version)
    click.echo("  lineage:")
    click.echo(
        f"    {name} {version} <- training job {chain['training_job']['id'][:8]} (study "
        f"{chain['study']['name'][:8]})"
    )
    for dataset in chain["datasets"]:
        maker = dataset["created_by_job"] or {}
        click.echo(
            f"    <- dataset {dataset['name']} v{dataset['version']} ({dataset['rows']:,} rows, "
            f"sha256 {dataset['stored_sha256'][:12]}) made by {maker.get('type', '?')}"
        )
    for raw in chain["raw_inputs"]:
        click.echo(f"    <- raw input {raw['source_uri']}")
    return {"alias": alias, "scored": scored, "inline": inline, "outcomes": outcomes}
