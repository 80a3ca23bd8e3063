"""The prediction log and outcomes on SQLite and PostgreSQL, with hand-checked rows."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy.orm import Session, sessionmaker

from storage.db import transaction
from storage.models import Outcome
from storage.outcomes import OutcomeIn, OutcomeRepository, join_outcomes
from storage.prediction_log import (
    CORE_COLUMNS,
    PredictionLog,
    new_prediction_ids,
    prediction_time,
)

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def frame(
    minutes: list[float],
    keys: list[str],
    *,
    model: str = "churn",
    version: str = "1.0.0",
    features: dict[str, list[object]] | None = None,
) -> pd.DataFrame:
    times = [at(m) for m in minutes]
    ids = [new_prediction_ids(1, t)[0] for t in times]
    data: dict[str, object] = {
        "prediction_id": ids,
        "model_name": model,
        "version": version,
        "version_id": 1,
        "arm": "champion",
        "routing_key": keys,
        "score": [0.1 * (i + 1) for i in range(len(times))],
        "label": ["yes"] * len(times),
        "latency_ms": 2.5,
        "predicted_at": pd.to_datetime(times, utc=True),
    }
    data.update({f"feature.{k}": v for k, v in (features or {}).items()})
    return pd.DataFrame(data)


def write(sessions: sessionmaker[Session], log: PredictionLog, df: pd.DataFrame, batch: str) -> int:
    with transaction(sessions) as session:
        return log.write(session, str(df["model_name"].iloc[0]), df, batch)


def read(sessions: sessionmaker[Session], log: PredictionLog, start, end, columns=None):  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        return log.read(session, "churn", start, end, columns)


def files(sessions: sessionmaker[Session], log: PredictionLog):  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        return log.files(session)


def test_prediction_ids_encode_the_time_to_the_millisecond() -> None:
    now = datetime(2026, 11, 27, 9, 59, 59, 123456, tzinfo=UTC)
    ids = new_prediction_ids(3, now)
    assert len(set(ids)) == 3
    assert all(len(i) == 32 and i == i.lower() for i in ids)
    assert {prediction_time(i) for i in ids} == {now.replace(microsecond=123000)}
    for bad in ["", "xyz", ids[0].upper(), ids[0][:-1], ids[0] + "0", "g" * 32]:
        with pytest.raises(ValueError):
            prediction_time(bad)


def test_a_write_across_an_hour_makes_two_files_and_a_window_reads_exactly_its_rows(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    log = PredictionLog(str(tmp_path / "log"))
    df = frame([59.5, 10, 65, 50, 70], ["a", "b", "c", "d", "e"], features={"age": [1, 2, 3, 4, 5]})
    assert write(sessions, log, df, "b1") == 5
    stored = files(sessions, log)
    assert [(f.hour, f.rows, f.batch_id) for f in stored] == [
        (T0, 3, "b1@2026112709"),
        (T0 + timedelta(hours=1), 2, "b1@2026112710"),
    ]
    assert stored[0].path == "model=churn/hour=2026-11-27T09/b1.parquet"
    assert (stored[0].first_at, stored[0].last_at) == (at(10), at(59.5))
    assert (tmp_path / "log" / stored[1].path).exists()

    got = read(sessions, log, at(50), at(65))  # [50, 65): d, a (59.5), not c (65)
    assert got["routing_key"].tolist() == ["d", "a"]
    assert got["feature.age"].tolist() == [4, 1]
    assert list(got.columns) == [*CORE_COLUMNS, "feature.age"]
    assert got["predicted_at"].tolist() == [at(50), at(59.5)]
    everything = read(sessions, log, at(0), at(120))
    assert everything["routing_key"].tolist() == ["b", "d", "a", "c", "e"]
    assert read(sessions, log, at(200), at(300)).empty

    subset = read(sessions, log, at(0), at(120), ["routing_key", "score"])
    assert list(subset.columns) == ["routing_key", "score", "predicted_at"]
    assert subset["score"].tolist() == pytest.approx([0.2, 0.4, 0.1, 0.3, 0.5])


def test_overlapping_batches_read_in_time_order_or_file_by_file_unordered(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    log = PredictionLog(str(tmp_path / "log"))
    write(sessions, log, frame([5, 20, 40], ["a", "b", "c"]), "first")
    write(sessions, log, frame([10, 30], ["d", "e"]), "second")  # same hour, interleaved
    with transaction(sessions) as session:
        ordered = log.read(session, "churn", at(0), at(60))
        unordered = log.read(session, "churn", at(0), at(60), ordered=False)
        tail = log.read(session, "churn", at(15), at(60), ["routing_key"], ordered=False)
    assert ordered["routing_key"].tolist() == ["a", "d", "b", "e", "c"]
    # Unsorted: the files by first time, each file's rows in time order.
    assert unordered["routing_key"].tolist() == ["a", "b", "c", "d", "e"]
    assert unordered.columns.tolist() == ordered.columns.tolist()
    assert tail["routing_key"].tolist() == ["b", "c", "e"]


def test_versions_with_different_features_read_together_with_nulls(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    log = PredictionLog(str(tmp_path / "log"))
    old = frame([1, 2], ["a", "b"], features={"age": [30, 40], "plan": ["x", "y"]})
    new = frame([3], ["c"], version="2.0.0", features={"age": [50], "spend": [9.5]})
    write(sessions, log, old, "v1")
    write(sessions, log, new, "v2")
    got = read(sessions, log, at(0), at(60))
    assert got["version"].tolist() == ["1.0.0", "1.0.0", "2.0.0"]
    assert got["feature.age"].tolist() == [30, 40, 50]
    assert got["feature.plan"].tolist()[:2] == ["x", "y"] and pd.isna(got["feature.plan"][2])
    assert pd.isna(got["feature.spend"][0]) and got["feature.spend"][2] == 9.5
    picked = read(sessions, log, at(0), at(60), ["feature.spend", "feature.nowhere"])
    assert math.isnan(picked["feature.spend"][0]) and picked["feature.spend"][2] == 9.5
    assert picked["feature.nowhere"].isna().all()


def test_the_same_batch_twice_is_logged_once(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    log = PredictionLog(str(tmp_path / "log"))
    df = frame([5, 70], ["a", "b"])
    assert write(sessions, log, df, "chunk-7") == 2
    assert write(sessions, log, df, "chunk-7") == 0
    assert len(files(sessions, log)) == 2
    assert len(read(sessions, log, at(0), at(120))) == 2
    with pytest.raises(ValueError, match="core columns"):
        write(sessions, log, df.drop(columns=["score"]), "x")


def test_forget_removes_one_customers_rows_from_every_file(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    log = PredictionLog(str(tmp_path / "log"))
    write(sessions, log, frame([1, 2, 3], ["gone", "a", "gone"]), "b1")
    write(sessions, log, frame([61, 62], ["b", "gone"]), "b2")
    write(sessions, log, frame([121], ["gone"]), "b3")  # only that customer: deleted
    lead = frame([4], ["gone"], model="lead_scoring")
    write(sessions, log, lead, "b4")
    everything = read(sessions, log, at(0), at(180))
    gone_ids = set(everything.loc[everything["routing_key"] == "gone", "prediction_id"])
    gone_ids.add(lead["prediction_id"][0])

    with transaction(sessions) as session:
        result = log.forget(session, ["gone"])
    assert result.rows_removed == 5
    assert (result.files_rewritten, result.files_deleted) == (2, 2)
    assert set(result.prediction_ids) == gone_ids and len(result.prediction_ids) == 5
    left = read(sessions, log, at(0), at(180))
    assert left["routing_key"].tolist() == ["a", "b"]
    stored = files(sessions, log)
    assert [(f.rows, f.first_at, f.last_at) for f in stored] == [
        (1, at(2), at(2)),
        (1, at(61), at(61)),
    ]
    assert not (tmp_path / "log" / "model=churn/hour=2026-11-27T11/b3.parquet").exists()
    with transaction(sessions) as session:
        assert log.forget(session, ["nobody"]).rows_removed == 0


def test_delete_before_drops_whole_files_and_trims_straddling_ones(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    log = PredictionLog(str(tmp_path / "log"))
    write(sessions, log, frame([1, 2], ["a", "b"]), "old")
    write(sessions, log, frame([61, 62, 63], ["c", "d", "e"]), "mid")
    write(sessions, log, frame([121], ["f"]), "new")
    with transaction(sessions) as session:
        assert log.delete_before(session, at(62)) == 3  # a, b (whole file) and c
    assert read(sessions, log, at(0), at(180))["routing_key"].tolist() == ["d", "e", "f"]
    assert [(f.batch_id, f.rows, f.first_at) for f in files(sessions, log)] == [
        ("mid@2026112710", 2, at(62)),
        ("new@2026112711", 1, at(121)),
    ]
    with transaction(sessions) as session:
        assert log.delete_before(session, at(62)) == 0


def test_compact_keeps_every_row_once_and_runs_twice_safely(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    log = PredictionLog(str(tmp_path / "log"))
    for n, minute in enumerate([30, 10, 20]):
        write(sessions, log, frame([minute, minute + 1], [f"k{n}", f"j{n}"]), f"inline-{n}")
    write(sessions, log, frame([70], ["other hour"]), "later")
    before = read(sessions, log, at(0), at(120))
    with transaction(sessions) as session:
        assert log.compact(session, "churn", T0) == 3
    with transaction(sessions) as session:
        assert log.compact(session, "churn", T0) == 0
    stored = files(sessions, log)
    assert len(stored) == 2
    assert stored[0].batch_id.startswith("compacted-2026112709-")
    assert (stored[0].rows, stored[0].first_at, stored[0].last_at) == (6, at(10), at(31))
    after = read(sessions, log, at(0), at(120))
    pd.testing.assert_frame_equal(after, before)
    assert len(list((tmp_path / "log" / "model=churn/hour=2026-11-27T09").iterdir())) == 1


def record(sessions, log, outcomes, now=None):  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        return OutcomeRepository(session, log).record("churn", outcomes, now or at(300))


def test_outcomes_by_id_and_key_last_write_wins_window_and_forget(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    log = PredictionLog(str(tmp_path / "log"))
    df = frame([10, 20, 59.99], ["a", "b", "c"])
    write(sessions, log, df, "b1")
    ids = df["prediction_id"].tolist()
    unknown = new_prediction_ids(1, at(10))[0]
    summary = record(
        sessions,
        log,
        [
            OutcomeIn(ids[0], None, 1.0, None, at(100)),
            OutcomeIn(ids[2], None, None, "churned", None),  # observed_at = now
            OutcomeIn(unknown, None, 1.0, None, None),
            OutcomeIn("not-an-id", None, 1.0, None, None),
            OutcomeIn(None, "never-scored", 0.0, None, at(50)),
        ],
    )
    assert (summary.recorded, summary.updated, summary.unknown) == (3, 0, 2)
    assert summary.unknown_prediction_ids == [unknown, "not-an-id"]

    again = record(sessions, log, [OutcomeIn(ids[0], None, 0.0, "stayed", at(110))], at(310))
    assert (again.recorded, again.updated, again.unknown) == (0, 1, 0)
    with transaction(sessions) as session:
        first = session.query(Outcome).filter_by(subject=ids[0]).one()
        assert (first.value, first.label, first.writes) == (0.0, "stayed", 2)
        assert first.observed_at == at(110) and first.recorded_at == at(310)
        got = OutcomeRepository(session, log).window("churn", at(50), at(300))
    assert got["prediction_id"].fillna("-").tolist() == ["-", ids[0]]
    assert got["routing_key"].fillna("-").tolist() == ["never-scored", "-"]
    with transaction(sessions) as session:
        window = OutcomeRepository(session, log).window("churn", at(0), at(400))
        assert len(window) == 3
        joined = join_outcomes(log.read(session, "churn", at(0), at(60)), window)
        assert joined["outcome_label"].fillna("-").tolist() == ["stayed", "-", "churned"]
        assert joined["outcome_observed_at"].tolist()[0] == at(110)
        assert OutcomeRepository(session, log).forget(["never-scored"], [ids[2]]) == 2
        assert OutcomeRepository(session, log).delete_before(at(200)) == 1
        assert session.query(Outcome).count() == 0

    with pytest.raises(ValueError):
        OutcomeIn(ids[0], "a", 1.0, None, None)
    with pytest.raises(ValueError):
        OutcomeIn(ids[0], None, None, None, None)


def test_duplicates_in_one_call_count_as_writes(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    log = PredictionLog(str(tmp_path / "log"))
    summary = record(
        sessions,
        log,
        [OutcomeIn(None, "k", 1.0, None, at(1)), OutcomeIn(None, "k", 2.0, None, at(2))],
    )
    assert (summary.recorded, summary.updated) == (1, 1)
    with transaction(sessions) as session:
        stored = session.query(Outcome).one()
        assert (stored.value, stored.writes, stored.observed_at) == (2.0, 2, at(2))


def test_join_outcomes_by_id_first_then_by_key_observed_after_the_prediction() -> None:
    predictions = pd.DataFrame(
        {
            "prediction_id": ["p1", "p2", "p3", "p4", "p5"],
            "routing_key": ["a", "a", "a", "b", "c"],
            "predicted_at": pd.to_datetime([at(10), at(20), at(40), at(10), at(10)], utc=True),
            "score": [0.1, 0.2, 0.3, 0.4, 0.5],
        },
        index=[10, 11, 12, 13, 14],
    )
    outcomes = pd.DataFrame(
        {
            "prediction_id": ["p2", None, None],
            "routing_key": [None, "a", "b"],
            "value": [5.0, 1.0, 0.0],
            "label": ["by-id", "by-key", "b-key"],
            "observed_at": pd.to_datetime([at(25), at(30), at(5)], utc=True),
        }
    )
    joined = join_outcomes(predictions, outcomes)
    assert list(joined.index) == [10, 11, 12, 13, 14]
    assert joined["score"].tolist() == predictions["score"].tolist()
    # p1: key a observed at 30 >= 10; p2: by id; p3: made after the observation (40 > 30);
    # p4: key b observed before the prediction; p5: no outcome.
    assert joined["outcome_label"].tolist()[:2] == ["by-key", "by-id"]
    assert all(pd.isna(v) for v in joined["outcome_label"].tolist()[2:])
    assert joined["outcome_value"].tolist()[:2] == [1.0, 5.0]
    assert joined["outcome_value"].iloc[2:].isna().all()
    assert joined["outcome_observed_at"].tolist()[:2] == [at(30), at(25)]
    assert joined["outcome_observed_at"].iloc[2:].isna().all()


def test_an_fsspec_url_root_works_like_a_folder(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    log = PredictionLog(f"memory://{tmp_path.name}/log")  # any fsspec URL: write, read, forget
    write(sessions, log, frame([1, 2, 70], ["a", "b", "a"]), "m1")
    assert read(sessions, log, at(0), at(120))["routing_key"].tolist() == ["a", "b", "a"]
    with transaction(sessions) as session:
        assert log.forget(session, ["a"]).rows_removed == 2
    assert read(sessions, log, at(0), at(120))["routing_key"].tolist() == ["b"]
