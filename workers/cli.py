"""`cipml`: run the service (db, worker, beat) and drive jobs from a shell."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

from api_client import Client, JobStatus
from api_client.embedded import EMBEDDED_WARNING
from api_client.errors import CipmlError, JobFailed
from api_client.schemas import JobInfo
from workers.processes import Children, die_with_parent
from workers.settings import Settings


def _settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:
        raise click.ClickException(f"bad CIPML_* setting: {exc}") from None


def _client(settings: Settings) -> Client:
    return Client(
        settings.broker,
        settings.backend,
        broker_transport_options=settings.broker_transport_options(),
        ssl=settings.redis_ssl_options(),
    )


def _stop_with_worker(control: subprocess.Popen[bytes]) -> None:
    """Shut the control worker down together with this one (warm or cold alike), not
    after it: the two shutdowns then overlap instead of adding up."""
    from celery import signals

    def forward(how: str = "Warm", **_: Any) -> None:
        with contextlib.suppress(ProcessLookupError):
            control.send_signal(signal.SIGQUIT if how == "Cold" else signal.SIGTERM)

    signals.worker_shutting_down.connect(forward, weak=False)


def _check_schema(settings: Settings) -> None:
    """Refuse to serve on a missing, unreachable or out-of-date database, saying what to do."""
    from sqlalchemy.exc import DBAPIError

    from storage.db import make_engine
    from storage.errors import SchemaOutOfDate
    from storage.migrate import ensure_current

    if settings.embedded:
        settings.home.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database)
    try:
        ensure_current(engine)
    except SchemaOutOfDate as exc:
        raise click.ClickException(str(exc)) from None
    except DBAPIError as exc:
        where = settings.describe()["database"]
        raise click.ClickException(
            f"cannot open the database {where}: {exc.orig}. Check CIPML_DATABASE_URL, then "
            "run `cipml db upgrade`"
        ) from None
    finally:
        engine.dispose()


def _warn_if_embedded(settings: Settings) -> None:
    if settings.embedded:
        click.secho(
            "note: " + EMBEDDED_WARNING.format(root=settings.home.resolve()), fg="yellow", err=True
        )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """cip-ml: ML jobs for customer intelligence on Celery workers."""


@main.command()
def info() -> None:
    """Show the resolved settings (secrets masked)."""
    for key, value in _settings().describe().items():
        click.echo(f"{key:15} {value}")


# ---------------------------------------------------------------------- db


@main.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Create or migrate the schema to the current version."""
    from storage.migrate import upgrade

    settings = _settings()
    if settings.embedded:
        settings.home.mkdir(parents=True, exist_ok=True)
    reached = upgrade(settings.database, revision)
    click.echo(f"database {settings.describe()['database']} at schema {reached}")


@db.command("current")
def db_current() -> None:
    """Print the schema version of the database and the one this code needs."""
    from storage.db import make_engine
    from storage.migrate import current_revision, head_revision

    engine = make_engine(_settings().database)
    try:
        click.echo(f"database: {current_revision(engine) or '(empty)'}  code: {head_revision()}")
    finally:
        engine.dispose()


# ---------------------------------------------------------------------- processes


@main.command(context_settings={"ignore_unknown_options": True})
@click.option("-Q", "--queues", default=None, help="Comma-separated queues (default: all).")
@click.option("-c", "--concurrency", type=int, default=None, help="Pool processes (default: CPUs).")
@click.option("-n", "--hostname", default=None, help="Worker node name, e.g. w1@%h.")
@click.option(
    "--control-threads",
    type=int,
    default=4,
    show_default=True,
    help=(
        "When serving 'control' beside other queues, serve it from a separate worker with this "
        "many threads, so status and cancel requests never wait behind long jobs (0: share the "
        "pool)."
    ),
)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def worker(
    queues: str | None,
    concurrency: int | None,
    hostname: str | None,
    control_threads: int,
    celery_args: tuple[str, ...],
) -> None:
    """Start a worker (over `celery worker`; extra arguments go to Celery)."""
    from api_client.contract import ALL_QUEUES

    settings = _settings()
    _check_schema(settings)
    selected = (queues or ",".join(ALL_QUEUES)).split(",")
    unknown = set(selected) - set(ALL_QUEUES)
    if unknown:
        raise click.ClickException(f"unknown queue(s) {sorted(unknown)}; known: {ALL_QUEUES}")
    _warn_if_embedded(settings)
    node = hostname or "celery@%h"
    control = None
    if "control" in selected and len(selected) > 1 and control_threads > 0:
        selected.remove("control")
        name, _, host = node.partition("@")
        control = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "workers.cli",
                "worker",
                "-Q",
                "control",
                "-n",
                f"{name}-control@{host or '%h'}",
                "--pool",
                "threads",
                "-c",
                str(control_threads),
            ],
            preexec_fn=die_with_parent,  # never outlive the worker that started it
        )
    argv = ["worker", "-Q", ",".join(selected), "--loglevel", settings.log_level, "-n", node]
    if concurrency:
        argv += ["-c", str(concurrency)]
    from workers.celery_app import create_app, load_monitoring_kernels_on_start

    if "monitoring" in selected:
        load_monitoring_kernels_on_start()
    if control is not None:
        _stop_with_worker(control)
    try:
        create_app(settings).worker_main(argv + list(celery_args))
    finally:
        if control is not None:
            control.terminate()
            control.wait(timeout=30)


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def beat(celery_args: tuple[str, ...]) -> None:
    """Start celery-beat with the scheduler's sweeps (run exactly one per cluster)."""
    settings = _settings()
    _warn_if_embedded(settings)
    schedule_file = str(settings.home / "beat-schedule")
    settings.home.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "scheduler.beat",
        "beat",
        "--loglevel",
        settings.log_level,
        "-s",
        schedule_file,
        *celery_args,
    ]
    # exec, not a child process: signals reach beat itself and no orphan is left behind.
    os.execv(sys.executable, command)


@main.command()
def stack() -> None:
    """Run a local stack: workers for all queues, beat, and Flower when the broker is Redis.
    Ctrl-C or SIGTERM stops them all."""
    from workers.processes import cipml_argv

    settings = _settings()
    _check_schema(settings)
    _warn_if_embedded(settings)
    children = Children()
    stopping: list[int] = []

    def request_stop(signum: int, _frame: Any) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        children.start(
            "worker", cipml_argv("worker"), "all queues ('control' on its own thread pool)"
        )
        children.start("beat", cipml_argv("beat"), "the only beat of this stack")
        if settings.broker.startswith(("redis://", "rediss://")):
            _start_flower(children, settings)
        described = settings.describe()
        click.secho("cipml stack: Ctrl-C stops everything", bold=True, err=True)
        for child in children.children:
            click.echo(f"  {child.name:7} pid {child.process.pid:<7} {child.where}", err=True)
        click.echo(
            f"  broker  {described['broker']}\n  db      {described['database']}\n"
            f"  files   {described['artifact_root']}",
            err=True,
        )
        while not stopping:
            exited = children.exited()
            if exited is not None:
                click.secho(
                    f"{exited.name} exited with code {exited.process.returncode}; "
                    "stopping the stack",
                    fg="red",
                    err=True,
                )
                raise SystemExit(1)
            time.sleep(0.3)
    finally:
        click.echo("cipml stack: stopping", err=True)
        children.stop()


def _start_flower(children: Children, settings: Settings) -> None:
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers.app",
        "flower",
        f"--port={settings.flower_port}",
        "--address=127.0.0.1",
    ]
    env = os.environ.copy()
    if settings.flower_basic_auth:
        argv.append(f"--basic-auth={settings.flower_basic_auth}")
    else:
        env["FLOWER_UNAUTHENTICATED_API"] = "true"  # loopback only, local development
    children.start("flower", argv, f"http://127.0.0.1:{settings.flower_port}", env=env)


@main.command()
def demo() -> None:
    """The main job: ingest the bundled CDNOW purchase log end to end, then stop."""
    from workers.demo import run_demo

    settings = _settings()
    _warn_if_embedded(settings)
    client = Client(
        settings.broker,
        settings.backend,
        broker_transport_options=settings.broker_transport_options(),
        ssl=settings.redis_ssl_options(),
        control_timeout=3,
    )
    with client:
        _run_client(lambda: run_demo(settings, client))


@main.command()
@click.argument("dataset_id", type=int)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--json", "as_json", is_flag=True, help="The JSON report instead of the HTML page.")
def report(dataset_id: int, output: Path | None, as_json: bool) -> None:
    """Write the newest quality report of a dataset to a file (HTML by default)."""
    from workers.reports import ReportNotFound, export_report

    settings = _settings()
    try:
        path = export_report(settings, dataset_id, output, "json" if as_json else "html")
    except ReportNotFound as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(str(path))


# ---------------------------------------------------------------------- jobs


def _parse_params(params: str | None, pairs: tuple[str, ...]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if params:
        try:
            values = json.loads(params)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"--params is not JSON: {exc}") from None
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"-p takes key=value, got {pair!r}")
        try:
            values[key] = json.loads(raw)
        except json.JSONDecodeError:
            values[key] = raw
    return values


def _print_job(job: JobInfo) -> None:
    click.echo(json.dumps(job.model_dump(mode="json", exclude_none=True), indent=2))


def _run_client(action: Any) -> Any:
    try:
        return action()
    except JobFailed as exc:
        click.secho(f"job failed: {exc}", fg="red", err=True)
        raise SystemExit(1) from None
    except CipmlError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.argument("job_type")
@click.option("--params", help="Params as a JSON object.")
@click.option("-p", "pairs", multiple=True, help="One param as key=value (value parsed as JSON).")
@click.option(
    "--key", "idempotency_key", help="Idempotency key: resubmitting returns the same job."
)
@click.option("--wait/--no-wait", default=False, help="Wait for the result with a progress bar.")
@click.option("--timeout", type=float, default=None)
def submit(
    job_type: str,
    params: str | None,
    pairs: tuple[str, ...],
    idempotency_key: str | None,
    wait: bool,
    timeout: float | None,
) -> None:
    """Submit a job; prints its id (and with --wait its result)."""
    settings = _settings()
    with _client(settings) as client:
        handle = _run_client(
            lambda: client.submit(
                job_type, _parse_params(params, pairs), idempotency_key=idempotency_key
            )
        )
        click.echo(handle.id)
        if wait:
            result = _run_client(lambda: handle.wait(timeout=timeout))
            click.echo(json.dumps(result, indent=2))


@main.command()
@click.argument("job_id")
def status(job_id: str) -> None:
    """Show a job's record."""
    with _client(_settings()) as client:
        _print_job(_run_client(lambda: client.job(job_id)))


@main.command()
@click.argument("job_id")
@click.option("--timeout", type=float, default=None)
def wait(job_id: str, timeout: float | None) -> None:
    """Wait for a job with a progress bar and print its result."""
    with _client(_settings()) as client:
        result = _run_client(lambda: client.handle(job_id).wait(timeout=timeout))
        click.echo(json.dumps(result, indent=2))


@main.command()
@click.option(
    "--status", "statuses", multiple=True, type=click.Choice([s.value for s in JobStatus])
)
@click.option("--type", "job_type", default=None)
@click.option("--limit", type=int, default=20, show_default=True)
def jobs(statuses: tuple[str, ...], job_type: str | None, limit: int) -> None:
    """List jobs, newest first."""
    with _client(_settings()) as client:
        rows = _run_client(
            lambda: client.jobs(status=list(statuses) or None, job_type=job_type, limit=limit)
        )
    for job in rows:
        line = job.progress.line if job.progress else ""
        error = f"[{job.error.code}] " if job.error else ""
        created = job.created_at.strftime("%Y-%m-%d %H:%M:%S") if job.created_at else ""
        click.echo(f"{job.id:32}  {job.type:22} {job.status:9} {created}  {error}{line}")


@main.command()
@click.argument("job_id")
def cancel(job_id: str) -> None:
    """Cancel a job (a finished one is left as it is)."""
    with _client(_settings()) as client:
        click.echo(_run_client(lambda: client.cancel(job_id)))


if __name__ == "__main__":
    main()
