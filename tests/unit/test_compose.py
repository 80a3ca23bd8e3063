"""docker-compose.yml validates and has the layout the README promises.

`docker-compose config` resolves the file without a Docker engine (Debian's
`docker-compose` package is enough). Without it the tests skip, except in CI (CI=true),
where they fail and say what to install.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml  # PyYAML comes with optuna

from api_client.contract import ALL_QUEUES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
FLOWER_AUTH = "test-user:test-password"
FAMILIES = {
    "worker-control": {"control"},
    "worker-preprocessing": {"preprocessing"},
    "worker-training": {"training", "trials"},
    "worker-scoring": {"scoring"},
    "worker-monitoring": {"monitoring"},
}


def _compose_binary() -> str:
    found = shutil.which("docker-compose")
    if found:
        return found
    message = "docker-compose is not installed (apt-get install docker-compose)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _env(**overrides: str | None) -> dict[str, str]:
    """The caller's environment without anything that would change the resolved file."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("COMPOSE_", "DOCKER_", "CIPML_", "FLOWER_", "POSTGRES_"))
    }
    env["FLOWER_BASIC_AUTH"] = FLOWER_AUTH
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _config(
    *options: str, quiet: bool = False, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`docker-compose -f docker-compose.yml [options] config [--quiet]` from the repo root."""
    return subprocess.run(
        [_compose_binary(), "-f", str(COMPOSE_FILE), *options, "config"]
        + (["--quiet"] if quiet else []),
        cwd=ROOT,
        env=_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    done = _config()
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)
    assert isinstance(resolved, dict)
    return dict(resolved["services"])


def _argv(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(a) for a in command]


def _mounts(service: dict[str, Any]) -> set[tuple[str, str]]:
    """(source, target) of each volume, from the short (v1) or long (v2) syntax."""
    mounts = set()
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            mounts.add((str(volume.get("source", "")), str(volume["target"])))
        else:
            source, target = str(volume).split(":")[:2]
            mounts.add((source, target))
    return mounts


def _published(service: dict[str, Any]) -> set[str]:
    """host_ip:published:target of each port, from the short (v1) or long (v2) syntax."""
    ports = set()
    for port in service.get("ports", []):
        if isinstance(port, dict):
            ports.add(f"{port.get('host_ip', '')}:{port['published']}:{port['target']}")
        else:
            ports.add(str(port).removesuffix("/tcp"))
    return ports


def _queues(service: dict[str, Any]) -> set[str]:
    argv = _argv(service)
    assert argv[:2] == ["cipml", "worker"], argv
    return set(argv[argv.index("-Q") + 1].split(","))


def test_config_is_valid() -> None:
    done = _config(quiet=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""


def test_dashboard_profile_is_valid_and_optional(services: dict[str, Any]) -> None:
    done = _config("--profile", "dashboard")
    assert done.returncode == 0, done.stderr
    dashboard = yaml.safe_load(done.stdout)["services"]["optuna-dashboard"]
    assert dashboard["profiles"] == ["dashboard"]
    assert "optuna-dashboard" in _argv(dashboard)
    assert dashboard["build"]["target"] == "dashboard"
    # Nothing that `docker compose up` starts by default depends on it.
    for name, service in services.items():
        assert "optuna-dashboard" not in service.get("depends_on", {}), name
        if name != "optuna-dashboard":
            assert "profiles" not in service, name


def test_one_worker_service_per_queue_family(services: dict[str, Any]) -> None:
    workers = {
        name: _queues(service)
        for name, service in services.items()
        if _argv(service)[:2] == ["cipml", "worker"]
    }
    assert workers == FAMILIES
    consumed = [queue for queues in workers.values() for queue in queues]
    assert sorted(consumed) == sorted(ALL_QUEUES)  # every queue, each by one service


def test_worker_commands_parse_as_cipml_worker(services: dict[str, Any]) -> None:
    from workers.cli import worker

    for name in FAMILIES:
        argv = _argv(services[name])
        params = worker.make_context("worker", argv[2:]).params
        assert set(params["queues"].split(",")) == FAMILIES[name], name
        assert params["concurrency"] >= 1, name
        assert params["hostname"] == f"{name.removeprefix('worker-')}@%h", name


def test_control_worker_uses_threads(services: dict[str, Any]) -> None:
    argv = _argv(services["worker-control"])
    assert argv[argv.index("--pool") + 1] == "threads"


def test_exactly_one_beat(services: dict[str, Any]) -> None:
    beats = [name for name, service in services.items() if "beat" in _argv(service)]
    assert beats == ["beat"]
    assert _argv(services["beat"]) == ["cipml", "beat"]
    assert services["beat"].get("scale", 1) == 1
    assert services["beat"].get("deploy", {}).get("replicas", 1) == 1


def test_workers_and_beat_wait_for_migrate(services: dict[str, Any]) -> None:
    assert _argv(services["migrate"])[-1].startswith("cipml db upgrade")
    assert services["migrate"]["restart"] == "no"
    for name in [*FAMILIES, "beat"]:
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["redis"]["condition"] == "service_healthy", name


def test_redis_persists_with_aof(services: dict[str, Any]) -> None:
    argv = _argv(services["redis"])
    assert argv[argv.index("--appendonly") + 1] == "yes"
    assert ("redis-data", "/data") in _mounts(services["redis"])


def test_postgres_has_a_named_volume(services: dict[str, Any]) -> None:
    assert ("postgres-data", "/var/lib/postgresql/data") in _mounts(services["postgres"])


def test_flower_requires_basic_auth(services: dict[str, Any]) -> None:
    flower = services["flower"]
    assert "flower" in _argv(flower)
    assert flower["environment"]["FLOWER_BASIC_AUTH"] == FLOWER_AUTH
    assert _published(flower) == {"127.0.0.1:5555:5555"}
    missing = _config(env=_env(FLOWER_BASIC_AUTH=None))
    assert missing.returncode != 0
    assert "FLOWER_BASIC_AUTH" in missing.stderr


def test_every_worker_shares_the_artifact_volume(services: dict[str, Any]) -> None:
    for name in [*FAMILIES, "beat", "migrate"]:
        service = services[name]
        root = service["environment"]["CIPML_ARTIFACT_ROOT"]
        assert ("artifacts", root) in _mounts(service), name
        assert service["environment"]["CIPML_BROKER_URL"].startswith("redis://"), name
        assert service["environment"]["CIPML_DATABASE_URL"].startswith("postgresql+psycopg://"), (
            name
        )
