"""Content-addressed artifact store on a local folder or any fsspec URL.

Objects live at ``<root>/sha256/<ab>/<cd>/<sha256>``. Writes go to a temporary name and
are renamed into place, so a reader never sees half an object; every read verifies the
hash and refuses a mismatch.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

import fsspec
from fsspec.core import url_to_fs

from storage.errors import ArtifactCorrupt, ArtifactMissing

CHUNK = 1 << 20


@dataclass(frozen=True)
class StoredObject:
    sha256: str
    size_bytes: int
    uri: str


class ArtifactStore:
    def __init__(self, root: str, storage_options: dict[str, Any] | None = None) -> None:
        self.fs: fsspec.AbstractFileSystem
        self.fs, self.root = url_to_fs(root, **(storage_options or {}))
        self.root = self.root.rstrip("/")
        self._local = "file" in _protocols(self.fs)
        self.fs.makedirs(f"{self.root}/tmp", exist_ok=True)

    def path_of(self, sha256: str) -> str:
        return f"{self.root}/sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"

    def exists(self, sha256: str) -> bool:
        return bool(self.fs.exists(self.path_of(sha256)))

    # ------------------------------------------------------------------ writes

    def put_bytes(self, data: bytes) -> StoredObject:
        tmp = self._tmp_path()
        with self.fs.open(tmp, "wb") as out:
            out.write(data)
        return self._commit(tmp, hashlib.sha256(data).hexdigest(), len(data))

    def put_file(self, local_path: str | os.PathLike[str], *, move: bool = False) -> StoredObject:
        """Copy a local file in, hashing it as it streams.

        ``move=True`` (the caller's own temporary file): on a local store on the same
        filesystem the file is hashed in place and renamed into the store, not copied.
        """
        if move and self._local:
            with open(local_path, "rb") as handle:
                sha256 = hashlib.file_digest(handle, "sha256").hexdigest()
            with contextlib.suppress(OSError):  # another filesystem (EXDEV): copy below
                return self._commit(os.fspath(local_path), sha256, os.path.getsize(local_path))
        digest, size, tmp = hashlib.sha256(), 0, self._tmp_path()
        with open(local_path, "rb") as source, self.fs.open(tmp, "wb") as out:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        return self._commit(tmp, digest.hexdigest(), size)

    def _commit(self, tmp: str, sha256: str, size: int) -> StoredObject:
        final = self.path_of(sha256)
        if self.fs.exists(final):  # same bytes already stored: content addressing dedupes
            self.fs.rm(tmp)
        else:
            self.fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
            if self._local:
                os.replace(tmp, final)  # atomic on one filesystem
            else:
                self.fs.mv(tmp, final)
        return StoredObject(sha256=sha256, size_bytes=size, uri=self._uri(final))

    def scratch_dir(self) -> str | None:
        """A local folder on the store's own filesystem for files that will be moved in
        (``put_file(move=True)`` renames instead of copying); None for remote stores."""
        return f"{self.root}/tmp" if self._local else None

    def _tmp_path(self) -> str:
        return f"{self.root}/tmp/{uuid.uuid4().hex}.part"

    def _uri(self, path: str) -> str:
        return self.fs.unstrip_protocol(path) if not self._local else path

    # ------------------------------------------------------------------ reads

    def read_bytes(self, sha256: str) -> bytes:
        path = self._require(sha256)
        with self.fs.open(path, "rb") as handle:
            data: bytes = handle.read()
        _verify(sha256, hashlib.sha256(data).hexdigest(), path)
        return data

    @contextmanager
    def open_verified(self, sha256: str) -> Iterator[IO[bytes]]:
        """Open an object whose bytes were hashed in full before the caller reads one.

        Remote objects are copied to a local temporary file first, so the bytes verified
        are the bytes read.
        """
        path = self._require(sha256)
        if self._local:
            self._verify_file(sha256, path, self.fs.open)
            with open(path, "rb") as handle:
                yield handle
            return
        with tempfile.TemporaryDirectory(prefix="cipml-artifact-") as folder:
            local = os.path.join(folder, sha256)
            self.fs.get(path, local)
            self._verify_file(sha256, local, open)
            with open(local, "rb") as handle:
                yield handle

    def local_path(self, sha256: str) -> str:
        """Path of a verified object on a local store (for readers that want a file name)."""
        if not self._local:
            raise ValueError("local_path() needs a local artifact root")
        path = self._require(sha256)
        self._verify_file(sha256, path, self.fs.open)
        return path

    def delete(self, sha256: str) -> None:
        path = self.path_of(sha256)
        if self.fs.exists(path):
            self.fs.rm(path)

    def _require(self, sha256: str) -> str:
        path = self.path_of(sha256)
        if not self.fs.exists(path):
            raise ArtifactMissing(f"artifact {sha256} is not in the store at {self.root}")
        return path

    @staticmethod
    def _verify_file(sha256: str, path: str, opener: Any) -> None:
        digest = hashlib.sha256()
        with opener(path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
        _verify(sha256, digest.hexdigest(), path)


def _verify(expected: str, actual: str, path: str) -> None:
    if actual != expected:
        raise ArtifactCorrupt(
            f"artifact at {path} hashes to {actual}, not the recorded {expected}: the file "
            "was changed or damaged after it was stored; the load is refused. Restore it "
            "from a backup or re-run the job that produced it."
        )


def _protocols(fs: fsspec.AbstractFileSystem) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)
