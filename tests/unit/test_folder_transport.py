"""The folder broker publishes atomically: a consumer never takes a half-written message."""

from __future__ import annotations

import os
from pathlib import Path
from queue import Empty
from typing import Any

import pytest
from kombu import Connection

from api_client import folder_transport


@pytest.fixture
def channel(tmp_path: Path) -> Any:
    folder_transport.install()
    options = {"data_folder_in": str(tmp_path), "data_folder_out": str(tmp_path)}
    with Connection("filesystem://", transport_options=options) as connection:
        chan = connection.default_channel
        assert isinstance(chan, folder_transport.Channel)
        yield chan


def test_a_message_is_renamed_into_place(channel: Any, tmp_path: Path, monkeypatch: Any) -> None:
    seen: list[list[str]] = []
    replace = os.replace

    def watching_replace(src: str, dst: str) -> None:
        seen.append(sorted(os.listdir(tmp_path)))
        with pytest.raises(Empty):  # only the partial file exists: nothing to take yet
            channel._get("control")
        replace(src, dst)

    monkeypatch.setattr(folder_transport.os, "replace", watching_replace)
    channel._put("control", {"body": "hello"})
    assert len(seen) == 1 and seen[0][0].endswith(".control.msg.part")
    assert channel._get("control") == {"body": "hello"}
    assert os.listdir(tmp_path) == []


def test_an_unwritable_folder_is_a_channel_error(channel: Any, tmp_path: Path) -> None:
    channel.data_folder_out = str(tmp_path / "missing")
    with pytest.raises(Exception, match="Cannot add file"):
        channel._put("control", {"body": 1})


def test_a_result_is_renamed_into_place(tmp_path: Path, monkeypatch: Any) -> None:
    from celery import Celery

    folder_transport.install()
    app = Celery("t", broker="memory://", backend=f"file://{tmp_path}")
    backend = app.backend
    assert isinstance(backend, folder_transport.AtomicFilesystemBackend)
    value = b"x" * (1 << 18)  # two 128 KiB write buffers: a plain write is seen half done
    replace = os.replace
    seen: list[tuple[bytes | None, int]] = []

    def watching_replace(src: str, dst: str) -> None:
        seen.append((backend.get(b"reply"), Path(os.fsdecode(src)).stat().st_size))
        replace(src, dst)

    monkeypatch.setattr(folder_transport.os, "replace", watching_replace)
    backend.set(b"reply", value)
    assert seen == [(None, len(value))]  # nothing readable until the whole reply is written
    assert backend.get(b"reply") == value
    assert os.listdir(tmp_path) == ["reply"]
