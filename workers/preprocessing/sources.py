"""Where an input file is, confined to the configured data roots.

A local path resolves (symlinks and ``..`` included) to a real path that must lie inside
a local root; a URL must start with a URL root and may not climb out of it. Anything else
is refused with ``path_outside_root`` before a byte is read.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

import fsspec
from fsspec.core import url_to_fs

from api_client.contract import ErrorCode
from workers.jobs.errors import JobError

Format = Literal["csv", "parquet"]
SUFFIXES: dict[str, tuple[Format, str | None]] = {
    ".csv": ("csv", None),
    ".csv.gz": ("csv", "gzip"),
    ".csv.bz2": ("csv", "bz2"),
    ".parquet": ("parquet", None),
    ".pq": ("parquet", None),
}


@dataclass(frozen=True)
class Source:
    uri: str  # where it was found, as a canonical URI
    fs: fsspec.AbstractFileSystem
    path: str
    size: int
    format: Format
    compression: str | None


def _is_url(text: str) -> bool:
    return "://" in text and not text.startswith("file://")


def resolve_source(
    uri: str,
    roots: Sequence[str],
    declared_format: Format | None = None,
    max_bytes: int | None = None,
) -> Source:
    if _is_url(uri):
        fs, path = _resolve_url(uri, [r for r in roots if _is_url(r)])
        location = uri
    else:
        real = _resolve_local(
            uri.removeprefix("file://"),
            [Path(r.removeprefix("file://")).resolve() for r in roots if not _is_url(r)],
        )
        fs, path, location = fsspec.filesystem("file"), str(real), real.as_uri()
    try:
        size = int(fs.size(path))
    except FileNotFoundError:
        raise JobError(ErrorCode.DATASET_NOT_FOUND, f"no file at {uri}") from None
    fmt, compression = _format_of(path, declared_format)
    if max_bytes is not None and size > max_bytes:
        raise JobError(
            ErrorCode.FILE_TOO_LARGE,
            (
                f"{uri} is {size:,} bytes, above CIPML_INGEST_MAX_BYTES ({max_bytes:,}); raise the "
                "limit or split the file"
            ),
        )
    return Source(uri=location, fs=fs, path=path, size=size, format=fmt, compression=compression)


def _resolve_local(raw: str, roots: list[Path]) -> Path:
    if not roots:
        raise JobError(
            ErrorCode.PATH_OUTSIDE_ROOT, "no local data roots are configured (CIPML_DATA_ROOTS)"
        )
    candidates = [Path(raw)] if os.path.isabs(raw) else [root / raw for root in roots]
    escaped = False
    for candidate in candidates:
        real = Path(os.path.realpath(candidate))
        if not any(real.is_relative_to(root) for root in roots):
            escaped = True
            continue
        if real.is_file():
            return real
    shown = ", ".join(str(r) for r in roots)
    if escaped:
        raise JobError(
            ErrorCode.PATH_OUTSIDE_ROOT,
            (
                f"{raw} resolves outside the data roots ({shown}); put the file inside a root "
                "or add its folder to CIPML_DATA_ROOTS"
            ),
        )
    raise JobError(ErrorCode.DATASET_NOT_FOUND, f"no file {raw} inside the data roots ({shown})")


def _resolve_url(uri: str, roots: list[str]) -> tuple[fsspec.AbstractFileSystem, str]:
    _, _, rest = uri.partition("://")
    parts = PurePosixPath(rest).parts
    if ".." in parts or not any(uri.startswith(root.rstrip("/") + "/") for root in roots):
        shown = ", ".join(roots) or "none"
        raise JobError(
            ErrorCode.PATH_OUTSIDE_ROOT,
            (
                f"{uri} is not under a URL data root (configured: {shown}); add its prefix to "
                "CIPML_DATA_ROOTS"
            ),
        )
    fs, path = url_to_fs(uri)
    return fs, path


def _format_of(path: str, declared: Format | None) -> tuple[Format, str | None]:
    lowered = path.lower()
    for suffix, (fmt, compression) in sorted(SUFFIXES.items(), key=lambda kv: -len(kv[0])):
        if lowered.endswith(suffix):
            if declared is not None and declared != fmt:
                return declared, compression
            return fmt, compression
    if declared is not None:
        return declared, None
    raise JobError(
        ErrorCode.UNSUPPORTED_FORMAT,
        (
            f"cannot tell the format of {path}: name it {', '.join(SUFFIXES)}, or pass "
            "format='csv' or 'parquet'"
        ),
    )
