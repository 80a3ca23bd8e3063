"""Settings: embedded defaults, validation that names the variable, transport options."""

from __future__ import annotations

from pathlib import Path

import pytest

from workers.settings import Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("CIPML_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CIPML_HOME", str(tmp_path / "home"))


def test_embedded_defaults_need_no_server(tmp_path: Path) -> None:
    settings = Settings()
    home = (tmp_path / "home").resolve()
    assert settings.embedded
    assert settings.broker == "filesystem://"
    assert settings.backend == f"file://{home}/broker/results"
    assert settings.database == f"sqlite:///{home}/cipml.sqlite"
    # Optuna keeps its own alembic_version: never the job database's file.
    assert settings.optuna_storage == f"sqlite:///{home}/optuna.sqlite"
    assert settings.artifacts == str(home / "artifacts")
    options = settings.broker_transport_options()
    assert options["data_folder_in"] == options["data_folder_out"] == str(home / "broker/queue")
    assert options["polling_interval"] == 0.05
    assert options["control_folder"] == str(home / "broker/control")


def test_distributed_urls_and_redis_redelivery_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIPML_BROKER_URL", "redis://:s3cret@redis:6379/0")
    monkeypatch.setenv("CIPML_DATABASE_URL", "postgresql+psycopg://u:pw@db/cip")
    settings = Settings()
    assert not settings.embedded
    assert settings.backend == settings.broker
    # ... nor its schema: an `optuna` schema of the same database.
    assert settings.optuna_storage == (
        "postgresql+psycopg://u:pw@db/cip?options=-csearch_path%3Doptuna"
    )
    monkeypatch.setenv("CIPML_OPTUNA_STORAGE_URL", "postgresql+psycopg://u:pw@db/optuna")
    assert Settings().optuna_storage == "postgresql+psycopg://u:pw@db/optuna"
    # longest default hard limit is 1900 s, plus 300 s of margin
    assert settings.visibility_timeout == 2200
    options = settings.broker_transport_options()
    assert options["visibility_timeout"] == 2200
    assert options["unacked_restore_interval"] == 10.0
    assert options["unacked_restore_throttle"] == 1
    described = settings.describe()
    assert "s3cret" not in described["broker"] and "pw" not in described["database"]


def test_time_limits_override_per_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIPML_TIME_LIMITS", '{"training": [3300, 3600]}')
    settings = Settings()
    assert settings.limits_for("training") == (3300, 3600)
    assert settings.limits_for("scoring") == (600, 660)
    assert settings.visibility_timeout == 3900


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("CIPML_TIME_LIMITS", '{"gpu": [1, 2]}', "unknown queue 'gpu'"),
        ("CIPML_TIME_LIMITS", '{"training": [20, 10]}', "need 0 < soft < hard"),
        ("CIPML_VISIBILITY_TIMEOUT_S", "100", "must exceed the longest hard time limit"),
        ("CIPML_MAX_ATTEMPTS", "0", "greater than or equal to 1"),
        ("CIPML_LOG_FORMAT", "xml", "json"),
    ],
)
def test_bad_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=fragment):
        Settings()


def test_data_roots_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIPML_DATA_ROOTS", "/srv/in, s3://bucket/in")
    assert Settings().input_roots == ["/srv/in", "s3://bucket/in"]


def test_tls_options_only_for_rediss(monkeypatch: pytest.MonkeyPatch) -> None:
    import ssl

    monkeypatch.setenv("CIPML_BROKER_URL", "redis://r:6379/0")
    assert Settings().redis_ssl_options() is None
    monkeypatch.setenv("CIPML_BROKER_URL", "rediss://r:6380/0")
    monkeypatch.setenv("CIPML_REDIS_TLS_CA_FILE", "/etc/ca.pem")
    assert Settings().redis_ssl_options() == {
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
        "ssl_ca_certs": "/etc/ca.pem",
    }


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValueError):
        settings.max_attempts = 9  # type: ignore[misc]
