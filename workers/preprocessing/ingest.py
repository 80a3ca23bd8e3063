"""Stream a CSV or Parquet file into Parquet with an enforced schema and bounded memory.

Schema rules (docs/ingest.md):
- Declared dtypes are kept; a value that does not fit fails the job (``schema_mismatch``)
  naming the column and the block of rows.
- Other columns take the type Arrow infers from the first block. When a later block does
  not fit, the column is widened and the file read again from the start: int64 -> float64
  when the new value is a number, anything else -> string; an all-empty first block
  (null) -> int64, float64 or string by the first value seen. Widening is lossless.
Memory is bounded by the block size (CIPML_INGEST_BLOCK_BYTES; pyarrow reads up to 32
blocks ahead), whatever the file size. The next blocks are parsed on a thread while the
current one is written, so parsing and writing overlap (both release the GIL).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import queue
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from api_client.contract import ErrorCode
from workers.jobs.errors import JobError
from workers.preprocessing.sources import Source

Progress = Callable[[str, float, float | None, str], None]
HASH_CHUNK = 8 << 20

ARROW_TYPES: dict[str, pa.DataType] = {
    "int64": pa.int64(),
    "float64": pa.float64(),
    "string": pa.string(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us"),
    "date": pa.date32(),
}
_CONVERSION = re.compile(
    r"In CSV column #(\d+): CSV conversion error to (\w+)(?:\[\w+\])?: "
    r"invalid value '(.*)'",
    re.S,
)
_RAGGED = re.compile(r"Expected (\d+) columns, got (\d+): ?(.*)", re.S)


@dataclass(frozen=True)
class Limits:
    max_columns: int
    max_rows: int
    block_bytes: int


@dataclass
class Ingested:
    rows: int
    columns: int
    schema: list[dict[str, str]]
    blocks: int
    widened: dict[str, str] = field(default_factory=dict)


class _Widen(Exception):
    def __init__(self, column: str, to: pa.DataType, reason: str) -> None:
        super().__init__(reason)
        self.column, self.to, self.reason = column, to, reason


def dtype_name(arrow_type: pa.DataType) -> str:
    """Our name for an Arrow type where we have one (float64, not Arrow's 'double')."""
    return next((name for name, t in ARROW_TYPES.items() if t == arrow_type), str(arrow_type))


def human(count: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if count >= size:
            return f"{count / size:.1f}{unit}"
    return f"{count:g}"


def hash_source(source: Source, progress: Progress) -> str:
    """sha256 of the source bytes as stored (the dedupe key: stable across writers)."""
    digest, done = hashlib.sha256(), 0
    with source.fs.open(source.path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
            done += len(chunk)
            progress("hash", done, source.size, f"hash: {human(done)}B/{human(source.size)}B")
    return digest.hexdigest()


def ingest(
    source: Source,
    out_path: str,
    declared: dict[str, str] | None,
    limits: Limits,
    progress: Progress,
) -> Ingested:
    declared_types = {name: ARROW_TYPES[dtype] for name, dtype in (declared or {}).items()}
    if source.format == "parquet":
        return _parquet(source, out_path, declared_types, limits, progress)
    header = _csv_header(source, limits)
    unknown = sorted(set(declared_types) - set(header))
    if unknown:
        raise JobError(
            ErrorCode.INVALID_PARAMS,
            (
                f"dtypes name column(s) {unknown} that {source.uri} does not have; its columns: "
                f"{header[:20]}"
            ),
        )
    column_types: dict[str, pa.DataType] = dict(declared_types)
    widened: dict[str, str] = {}
    for _ in range(3 * len(header) + 1):  # null -> int64 -> float64 -> string
        try:
            outcome = _csv_pass(
                source, out_path, header, column_types, declared_types, limits, progress
            )
        except _Widen as widen:
            column_types[widen.column] = widen.to
            widened[widen.column] = f"{dtype_name(widen.to)} ({widen.reason})"
            progress(
                "ingest",
                0,
                source.size,
                f"ingest: column {widen.column!r} widened to {dtype_name(widen.to)}; reading again",
            )
            continue
        outcome.widened = widened
        return outcome
    raise JobError(ErrorCode.SCHEMA_MISMATCH, f"column types of {source.uri} kept changing")


def _csv_header(source: Source, limits: Limits) -> list[str]:
    with source.fs.open(source.path, "rb", compression=source.compression) as raw:
        first = raw.readline(1 << 20)
    if not first.strip():
        raise JobError(ErrorCode.EMPTY_FILE, f"{source.uri} is empty: no header, no rows")
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise JobError(
            ErrorCode.ENCODING_ERROR,
            (
                f"the header of {source.uri} is not UTF-8 (byte {exc.start}); re-encode the file "
                "as UTF-8"
            ),
        ) from None
    header = next(csv.reader(io.StringIO(text)))
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise JobError(
            ErrorCode.DUPLICATE_COLUMNS,
            (f"{source.uri} repeats column name(s) {duplicates}; give every column its own name"),
        )
    if len(header) > limits.max_columns:
        raise JobError(
            ErrorCode.TOO_MANY_COLUMNS,
            (
                f"{source.uri} has {len(header)} columns, above CIPML_INGEST_MAX_COLUMNS "
                f"({limits.max_columns})"
            ),
        )
    return header


class _Counting(io.RawIOBase):
    """A read-only stream that counts the compressed/raw bytes consumed (for progress)."""

    def __init__(self, inner: Any) -> None:  # a binary file object with readinto()
        self.inner, self.count = inner, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = self.inner.readinto(buffer)  # straight into Arrow's buffer: no bytes copy
        self.count += size or 0
        return size or 0


class _Prefetch:
    """Parse the next blocks on a thread while the caller writes Parquet (both drop the GIL)."""

    _END = object()

    def __init__(self, reader: Any, depth: int = 2) -> None:
        self.reader, self.queue = reader, queue.Queue[Any](maxsize=depth)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="ingest-parse", daemon=True)

    def _run(self) -> None:
        while not self.stopped.is_set():
            try:
                item = self.reader.read_next_batch()
            except StopIteration:
                item = self._END
            except BaseException as exc:  # handed to the caller, in order
                item = exc
            self.queue.put(item)
            if item is self._END or isinstance(item, BaseException):
                return

    def __enter__(self) -> _Prefetch:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        while self.thread.is_alive():  # unblock a put() so the thread can see the flag
            with contextlib.suppress(queue.Empty):
                self.queue.get(timeout=0.05)
        self.thread.join()

    def next(self) -> pa.RecordBatch:
        item = self.queue.get()
        if item is self._END:
            raise StopIteration
        if isinstance(item, BaseException):
            raise item
        return item


def _csv_pass(
    source: Source,
    out_path: str,
    header: list[str],
    column_types: dict[str, pa.DataType],
    declared: dict[str, pa.DataType],
    limits: Limits,
    progress: Progress,
) -> Ingested:
    rows = blocks = 0
    with source.fs.open(source.path, "rb") as raw:
        counting = _Counting(raw)
        stream = (
            pa.CompressedInputStream(counting, source.compression)
            if source.compression
            else pa.PythonFile(counting, mode="r")
        )
        try:
            reader = pacsv.open_csv(
                stream,
                read_options=pacsv.ReadOptions(block_size=limits.block_bytes),
                convert_options=pacsv.ConvertOptions(column_types=column_types),
            )
        except pa.ArrowInvalid as exc:
            raise _translate(exc, header, declared, 0, source) from None
        schema = _check_first_block_types(reader.schema, source)
        with _Prefetch(reader) as batches, pq.ParquetWriter(out_path, schema) as writer:
            while True:
                try:
                    batch = batches.next()
                except StopIteration:
                    break
                except pa.ArrowInvalid as exc:
                    raise _translate(exc, header, declared, rows, source) from None
                blocks += 1
                rows += batch.num_rows
                if rows > limits.max_rows:
                    raise JobError(
                        ErrorCode.TOO_MANY_ROWS,
                        (
                            f"{source.uri} has more than CIPML_INGEST_MAX_ROWS "
                            f"({limits.max_rows:,}) rows"
                        ),
                    )
                if batch.schema != schema:
                    batch = batch.cast(schema)  # all-empty (null) columns are stored as text
                writer.write_batch(batch)
                done = counting.count
                estimate = max(blocks, round(blocks * source.size / done)) if done else blocks
                progress(
                    "ingest",
                    done,
                    source.size,
                    f"ingest: {blocks}/{estimate} blocks, {human(rows)} rows",
                )
    if rows == 0:
        raise JobError(ErrorCode.NO_ROWS, f"{source.uri} has a header but no rows")
    return _outcome(schema, rows, blocks)


def _check_first_block_types(schema: pa.Schema, source: Source) -> pa.Schema:
    binary = [f.name for f in schema if pa.types.is_binary(f.type)]
    if binary:
        raise JobError(
            ErrorCode.ENCODING_ERROR,
            (
                f"column(s) {binary} of {source.uri} are not valid UTF-8 text; re-encode the file "
                "as UTF-8"
            ),
        )
    # An all-empty first block gives 'null' columns; Parquet stores them as strings until a
    # value says otherwise (which widens and re-reads).
    return pa.schema(
        [pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f for f in schema]
    )


def _translate(
    exc: pa.ArrowInvalid,
    header: list[str],
    declared: dict[str, pa.DataType],
    rows_before: int,
    source: Source,
) -> Exception:
    message = str(exc)
    where = f"the block starting at data row {rows_before + 1:,} of {source.uri}"
    if "Empty CSV file" in message:
        return JobError(ErrorCode.EMPTY_FILE, f"{source.uri} is empty: no header, no rows")
    if "invalid UTF8" in message:
        return JobError(
            ErrorCode.ENCODING_ERROR,
            f"{where} is not valid UTF-8; re-encode the file as UTF-8",
        )
    conversion = _CONVERSION.search(message)
    if conversion:
        column = header[int(conversion.group(1))]
        current, value = conversion.group(2), conversion.group(3)[:80]
        if column in declared:
            return JobError(
                ErrorCode.SCHEMA_MISMATCH,
                (
                    f"column {column!r} is declared {current}, but {where} holds {value!r}; "
                    "declare a wider dtype (float64 or string) or fix the data"
                ),
            )
        return _Widen(column, _wider(current, value), f"{value!r} in {where}")
    ragged = _RAGGED.search(message)
    if ragged:
        return JobError(
            ErrorCode.PARSE_ERROR,
            (
                f"a row in {where} has {ragged.group(2)} fields where the header has "
                f"{ragged.group(1)}: {ragged.group(3)[:120]!r}; quote fields that contain commas"
            ),
        )
    return JobError(ErrorCode.PARSE_ERROR, f"cannot parse {where}: {message}")


def _wider(current: str, value: str) -> pa.DataType:
    """The narrowest type that holds both the column so far and ``value``."""
    candidates = {"null": ("int64", "float64"), "int64": ("float64",)}.get(current, ())
    for kind in candidates:
        with contextlib.suppress(ValueError):
            (int if kind == "int64" else float)(value)
            return ARROW_TYPES[kind]
    return pa.string()


def _parquet(
    source: Source,
    out_path: str,
    declared: dict[str, pa.DataType],
    limits: Limits,
    progress: Progress,
) -> Ingested:
    with source.fs.open(source.path, "rb") as handle:
        try:
            parquet = pq.ParquetFile(handle)
            schema = parquet.schema_arrow
        except (pa.ArrowInvalid, OSError) as exc:
            raise JobError(
                ErrorCode.UNREADABLE_FILE,
                (
                    f"{source.uri} is not a readable Parquet file ({exc}); was it cut short while "
                    "copying?"
                ),
            ) from None
        names = schema.names
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise JobError(
                ErrorCode.DUPLICATE_COLUMNS, f"{source.uri} repeats column(s) {duplicates}"
            )
        if len(names) > limits.max_columns:
            raise JobError(
                ErrorCode.TOO_MANY_COLUMNS,
                (
                    f"{source.uri} has {len(names)} columns, above CIPML_INGEST_MAX_COLUMNS "
                    f"({limits.max_columns})"
                ),
            )
        unknown = sorted(set(declared) - set(names))
        if unknown:
            raise JobError(ErrorCode.INVALID_PARAMS, f"dtypes name unknown column(s) {unknown}")
        target = pa.schema([pa.field(f.name, declared.get(f.name, f.type)) for f in schema])
        total = parquet.metadata.num_rows
        if total == 0:
            raise JobError(ErrorCode.NO_ROWS, f"{source.uri} has no rows")
        if total > limits.max_rows:
            raise JobError(
                ErrorCode.TOO_MANY_ROWS,
                (f"{source.uri} has {total:,} rows, above CIPML_INGEST_MAX_ROWS"),
            )
        row_bytes = max(1, source.size // max(total, 1))
        batch_rows = max(1024, limits.block_bytes // row_bytes)
        rows = blocks = 0
        with pq.ParquetWriter(out_path, target) as writer:
            try:
                for batch in parquet.iter_batches(batch_size=batch_rows):
                    try:
                        batch = batch.cast(target)
                    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                        raise JobError(
                            ErrorCode.SCHEMA_MISMATCH,
                            (
                                f"rows {rows + 1:,}-{rows + batch.num_rows:,} of {source.uri} do "
                                f"not fit the declared dtypes: {exc}"
                            ),
                        ) from None
                    writer.write_batch(batch)
                    blocks += 1
                    rows += batch.num_rows
                    progress(
                        "ingest",
                        rows,
                        total,
                        f"ingest: {blocks} blocks, {human(rows)}/{human(total)} rows",
                    )
            except (pa.ArrowInvalid, OSError) as exc:
                raise JobError(
                    ErrorCode.UNREADABLE_FILE,
                    (f"{source.uri} is damaged after row {rows:,} ({exc})"),
                ) from None
    return _outcome(target, rows, blocks)


def _outcome(schema: pa.Schema, rows: int, blocks: int) -> Ingested:
    return Ingested(
        rows=rows,
        columns=len(schema),
        blocks=blocks,
        schema=[{"name": f.name, "dtype": str(f.type)} for f in schema],
    )
