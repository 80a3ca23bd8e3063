"""kombu's folder ("filesystem://") transport, publishing each message atomically.

kombu creates a message file and then writes it; a consumer polling the folder can take
the file in between, read nothing and fail to decode it (kombu#1551): the message is lost
and the consumer restarts. Here a message is written under a name consumers skip and then
renamed into place, so a consumer sees a whole message or none.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

ALIAS = "filesystem"
CLASS_PATH = "api_client.folder_transport:Transport"


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


def install() -> None:
    """Make ``filesystem://`` URLs use this transport in this process (idempotent)."""
    TRANSPORT_ALIASES[ALIAS] = CLASS_PATH
