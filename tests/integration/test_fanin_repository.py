"""Fan-in counting on SQLite and PostgreSQL: duplicates count once, the follow-up is
named exactly once, and simultaneous completions cannot both miss the last one."""

from __future__ import annotations

import threading

from sqlalchemy.orm import Session, sessionmaker

from storage.db import transaction
from storage.fanin import FanInRepository


def open_group(sessions: sessionmaker[Session], group: str, expected: int) -> None:
    with transaction(sessions) as session:
        FanInRepository(session).open(
            group,
            expected=expected,
            follow_up_task="t.finish",
            follow_up_queue="control",
            follow_up_payload={"job_id": group},
        )


def complete(sessions: sessionmaker[Session], group: str, part: str):  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        return FanInRepository(session).complete(group, part, {"part": part})


def test_last_part_names_the_follow_up_once(sessions: sessionmaker[Session]) -> None:
    open_group(sessions, "g", 3)
    open_group(sessions, "g", 3)  # opening again changes nothing
    assert complete(sessions, "g", "0") is None
    assert complete(sessions, "g", "0") is None  # a redelivered part counts once
    assert complete(sessions, "g", "1") is None
    follow_up = complete(sessions, "g", "2")
    assert follow_up is not None
    assert (follow_up.task, follow_up.queue, follow_up.payload) == (
        "t.finish",
        "control",
        {"job_id": "g"},
    )
    # The completing part redelivered before the follow-up was marked sent: it sends again.
    assert complete(sessions, "g", "2") is not None
    # Any other part, redelivered: never.
    assert complete(sessions, "g", "1") is None
    with transaction(sessions) as session:
        FanInRepository(session).mark_dispatched("g")
    assert complete(sessions, "g", "2") is None
    with transaction(sessions) as session:
        group = FanInRepository(session).get("g")
        assert group is not None and (group.completed, group.ready_part_id) == (3, "2")


def test_simultaneous_completions_fire_exactly_once(sessions: sessionmaker[Session]) -> None:
    for round_ in range(10):
        group = f"race-{round_}"
        open_group(sessions, group, 2)
        barrier = threading.Barrier(2)
        fired: list[object] = []

        def finish(
            part: str,
            group: str = group,
            barrier: threading.Barrier = barrier,
            fired: list[object] = fired,
        ) -> None:
            barrier.wait()
            outcome = complete(sessions, group, part)
            if outcome is not None:
                fired.append(outcome)

        threads = [threading.Thread(target=finish, args=(p,)) for p in ("a", "b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(fired) == 1, f"round {round_}: {len(fired)} follow-ups"
