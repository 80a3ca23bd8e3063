"""kombu's folder ("filesystem://") transport and Celery's folder ("file://") result
backend, each writing atomically.

kombu creates a message file and then writes it; a consumer polling the folder can take
the file in between, read nothing and fail to decode it (kombu#1551): the message is lost
and the consumer restarts. Here a message is written under a name consumers skip and then
renamed into place, so a consumer sees a whole message or none. Celery's file backend
has the same race on results: a client polling a reply of more than one write buffer
(128 KiB: a 1,000-row predict) could read half of it and fail to decode it. Results are
renamed into place too.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from celery.app.backends import BACKEND_ALIASES
from celery.backends.filesystem import FilesystemBackend
from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import ensure_bytes, str_to_bytes
from kombu.utils.json import dumps

ALIAS = "filesystem"
CLASS_PATH = "api_client.folder_transport:Transport"
BACKEND_ALIAS = "file"
BACKEND_CLASS_PATH = "api_client.folder_transport:AtomicFilesystemBackend"


class Channel(filesystem.Channel):
    # kombu passes keyword options (mandatory, ...) that a folder has no use for; its own
    # base classes disagree on this signature, hence the ignore.
    def _put(self, queue: Any, message: Any, **kwargs: Any) -> None:  # type: ignore[override]
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # Consumers take files named "<id>.<queue>.msg"; "<id>.<queue>.msg.part" is skipped.
        partial = f"{final}.part"
        try:
            with open(partial, "wb", buffering=0) as handle:
                handle.write(str_to_bytes(dumps(message)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel


class AtomicFilesystemBackend(FilesystemBackend):
    def set(self, key: Any, value: Any) -> None:
        final = self._filename(key)  # bytes: Celery keeps the backend's path as bytes
        suffix = f".{uuid.uuid4().hex}.part"
        partial = final + (suffix.encode() if isinstance(final, bytes) else suffix)
        with self.open(partial, "wb") as handle:
            handle.write(ensure_bytes(value))
        os.replace(partial, final)


def install() -> None:
    """Make ``filesystem://`` and ``file://`` URLs use these classes in this process
    (idempotent)."""
    TRANSPORT_ALIASES[ALIAS] = CLASS_PATH
    BACKEND_ALIASES[BACKEND_ALIAS] = BACKEND_CLASS_PATH
