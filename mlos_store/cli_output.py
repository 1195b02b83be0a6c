"""How the command line writes tables and progress: no dependency beyond pyarrow.

Formats of a table:

* ``text`` (the default): aligned columns for a terminal. Numbers are
  right-aligned, timestamps ISO 8601 in UTC to the millisecond, a cell wider
  than ``MAX_CELL`` characters is cut with an ellipsis; a cell with no value
  is blank. Meant for eyes: the other formats carry the exact values.
* ``csv``: pyarrow's CSV writer; a header row, then one row per table row;
  timestamps ISO 8601 (``2026-01-01 00:00:00.000000Z``), a null is an empty
  field, nested values are JSON text. ``pyarrow.csv.read_csv`` with the
  table's column types reads back the same table.
* ``json``: an array of objects, one per row and one per line, keys in column
  order; each value is the exact stored value (JSON-encoded columns decoded,
  mixed telemetry values merged into ``value``), timestamps ISO 8601 strings
  with their UTC offset, NaN and infinities as the strings ``"NaN"``,
  ``"Infinity"`` and ``"-Infinity"`` (so the output is strict JSON).
* ``parquet``: the Arrow table as it is, its field metadata included, so
  ``pyarrow.parquet.read_table`` gives back the very table.

CSV, JSON and Parquet are written batch by batch from a record-batch
stream, so raw telemetry of any size goes out in bounded memory.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc

from .convert import exact_columns
from .errors import InvalidValueError
from .overview import StoreOverview

FORMATS = ("text", "csv", "json", "parquet")
#: The format an output file's suffix implies when --format is not given.
SUFFIX_FORMATS = {".csv": "csv", ".json": "json", ".parquet": "parquet", ".pq": "parquet"}
#: Widest terminal cell, in characters, before it is cut with an ellipsis.
MAX_CELL = 40
ELLIPSIS = "…"
_GAP = "  "


def chosen_format(fmt: str | None, output: str | None) -> str:
    """The --format given, else the one the output file's suffix implies, else text."""
    if fmt is not None:
        return fmt
    if output is not None:
        return SUFFIX_FORMATS.get(Path(output).suffix.lower(), "text")
    return "text"


def write_table(table: pa.Table, fmt: str, output: str | None, stdout: IO[str]) -> None:
    """Write ``table`` in ``fmt`` to the file ``output``, or to ``stdout`` (see ``write_batches``)."""
    write_batches(pa.RecordBatchReader.from_batches(table.schema, table.to_batches()), fmt, output, stdout)


def write_batches(batches: pa.RecordBatchReader, fmt: str, output: str | None, stdout: IO[str]) -> None:
    """Write a stream of record batches in ``fmt`` to the file ``output``, or to ``stdout``.

    CSV, JSON and Parquet are written batch by batch, so a stream of any
    length goes out in bounded memory; text needs every row to align the
    columns. Parquet is binary: to a terminal it is refused
    (InvalidValueError), since the bytes would only garble the screen.
    """
    if fmt == "text":
        write_text(render_text(batches.read_all()), output, stdout)
        return
    if fmt == "parquet" and output is None and stdout.isatty():
        raise InvalidValueError("parquet output is binary and stdout is a terminal: use -o FILE")
    writers = {"csv": write_csv, "json": write_json, "parquet": write_parquet}
    with _binary_sink(output, stdout) as sink:
        writers[fmt](batches, sink)


@contextlib.contextmanager
def _binary_sink(output: str | None, stdout: IO[str]) -> Iterator[IO[bytes]]:
    """The file ``output`` opened for bytes, or the bytes under ``stdout`` (flushed around the writes)."""
    if output is not None:
        with open(output, "wb") as file:
            yield file
        return
    stdout.flush()
    binary: IO[bytes] = stdout.buffer  # type: ignore[attr-defined]
    yield binary
    binary.flush()


def write_text(text: str, output: str | None, stdout: IO[str]) -> None:
    """``text`` to the file ``output`` (UTF-8, as is) or to ``stdout``."""
    if output is None:
        stdout.write(text)
        return
    with open(output, "w", encoding="utf-8", newline="") as file:
        file.write(text)


# ---------------------------------------------------------------- text


def render_text(table: pa.Table) -> str:
    """The table as aligned columns under a header line, or the header and ``(no rows)``."""
    columns = exact_columns(table)
    if not columns:
        return "(no columns)\n"
    names = [name for name, _ in columns]
    cells = [text_cells(values) for _, values in columns]
    right = [is_numeric_column(values) for _, values in columns]
    widths = [max([len(name), *map(len, column)]) for name, column in zip(names, cells)]
    lines = [_line(names, widths, right), _line(["-" * w for w in widths], widths, right)]
    lines += [_line(row, widths, right) for row in zip(*cells)]
    if table.num_rows == 0:
        lines.append("(no rows)")
    return "\n".join(lines) + "\n"


def render_pairs(pairs: Sequence[tuple[str, str]]) -> str:
    """``key  value`` lines with the values aligned (a store's facts)."""
    width = max(len(key) for key, _ in pairs)
    return "".join(f"{key.ljust(width)}{_GAP}{value}\n" for key, value in pairs)


def _line(cells: Sequence[str], widths: Sequence[int], right: Sequence[bool]) -> str:
    padded = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)]
    return _GAP.join(padded).rstrip()


def is_numeric_column(values: Sequence[Any]) -> bool:
    """Right-align a column whose values are all numbers (bools are not)."""
    present = [v for v in values if v is not None]
    return bool(present) and all(isinstance(v, (int, float, Decimal)) and not isinstance(v, bool) for v in present)


def text_cells(values: Sequence[Any]) -> list[str]:
    """A column's values as terminal cells: short, on one line, cut at ``MAX_CELL`` characters.

    Timestamps show milliseconds in every cell of a column if any has a
    fraction of a second, so they line up.
    """
    millis = any(isinstance(v, datetime) and v.microsecond for v in values)
    return [truncated(iso_utc(v, millis) if isinstance(v, datetime) else _plain(v)) for v in values]


def truncated(text: str, width: int = MAX_CELL) -> str:
    return text if len(text) <= width else text[:width - 1] + ELLIPSIS


def _plain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, datetime):
        return iso_utc(value, bool(value.microsecond))
    if isinstance(value, str):
        return " ".join(value.splitlines()).replace("\t", " ")
    if isinstance(value, (list, dict)):
        return json.dumps(json_ready(value), ensure_ascii=False, separators=(",", ":"))
    return str(value)


def _float_text(value: float) -> str:
    """The shortest text of a float that still reads well: its repr, or 6 significant digits if long."""
    text = repr(value)
    return text if len(text) <= 12 else f"{value:.6g}"


def iso_utc(ts: datetime, millis: bool) -> str:
    """A timestamp as ISO 8601 in UTC with a ``Z``, to the second or to the millisecond."""
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return ts.isoformat(timespec="milliseconds" if millis else "seconds") + "Z"


# ---------------------------------------------------------------- csv, json, parquet


def write_csv(batches: pa.RecordBatchReader, sink: IO[bytes]) -> None:
    """CSV with a header row (bytes as hex, nested values and intervals as JSON text)."""
    import pyarrow.csv

    writer = pyarrow.csv.CSVWriter(sink, _flat(batches.schema.empty_table()).schema)
    for batch in batches:
        writer.write_table(_flat(pa.Table.from_batches([batch])))
    writer.close()


def _flat(table: pa.Table) -> pa.Table:
    """Columns CSV cannot hold as they are: bytes as hex, lists, structs, maps and intervals as JSON text."""
    for index, field in enumerate(table.schema):
        kind = field.type
        if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind):
            table = table.set_column(index, field.name, _texts(table.column(index), bytes.hex))
        elif pa.types.is_nested(kind) or pa.types.is_interval(kind):
            table = table.set_column(index, field.name, _texts(table.column(index), _json_text))
    return table


def _texts(column: pa.ChunkedArray, text: Callable[[Any], str]) -> pa.Array:
    return pa.array([None if v is None else text(v) for v in column.to_pylist()], pa.string())


def _json_text(value: Any) -> str:
    return json.dumps(json_ready(value), ensure_ascii=False)


def write_json(batches: pa.RecordBatchReader, sink: IO[bytes]) -> None:
    """A JSON array of objects, one per row and line (see the module doc)."""
    separator = b"[\n"
    for batch in batches:
        for row in json_rows(pa.Table.from_batches([batch])):
            sink.write(separator + row.encode("utf-8"))
            separator = b",\n"
    sink.write(b"[]\n" if separator == b"[\n" else b"\n]\n")


def json_rows(table: pa.Table) -> list[str]:
    """Each row of ``table`` as one JSON object of exact values."""
    columns = exact_columns(table)
    names = [name for name, _ in columns]
    return [json.dumps(dict(zip(names, map(json_ready, row))), ensure_ascii=False, allow_nan=False)
            for row in zip(*(values for _, values in columns))]


def json_ready(value: Any) -> Any:
    """A value JSON can hold exactly: timestamps as ISO text, NaN and infinities as strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, (Decimal, timedelta, bytes)):
        return str(value) if not isinstance(value, bytes) else value.hex()
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value


def write_parquet(batches: pa.RecordBatchReader, sink: IO[bytes]) -> None:
    """One Parquet file holding the batches, their schema and field metadata as they are."""
    import pyarrow.parquet

    with pyarrow.parquet.ParquetWriter(sink, batches.schema) as writer:
        for batch in batches:
            writer.write_batch(batch)


# ---------------------------------------------------------------- the store overview (info)

#: The status columns of ``StoreOverview.experiments``.
STATUS_COLUMNS = ["pending", "ready", "running", "succeeded", "canceled", "failed", "timed_out"]


def overview_json(overview: StoreOverview) -> dict[str, Any]:
    """``info --format json``: the store's facts and one object of counts per experiment."""
    return {"path": overview.path, "schema_version": overview.schema_version, "file_size": overview.file_size,
            "experiments": [json_ready(row) for row in overview.experiments.to_pylist()]}


def overview_pairs(overview: StoreOverview) -> list[tuple[str, str]]:
    counts = overview.experiments
    size = "in memory" if overview.file_size is None else f"{size_text(overview.file_size)} " \
        f"({overview.file_size:,} bytes)"
    return [("store", overview.path), ("schema version", str(overview.schema_version)), ("file size", size),
            ("experiments", str(counts.num_rows)), ("trials", f"{pc.sum(counts['trials']).as_py() or 0:,}"),
            ("telemetry points", f"{pc.sum(counts['telemetry_points']).as_py() or 0:,}")]


def size_text(size: int) -> str:
    """A file size in bytes, KiB, MiB or GiB."""
    value, unit = float(size), "bytes"
    for bigger in ("KiB", "MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"


def overview_table(overview: StoreOverview) -> pa.Table:
    """Per experiment for a terminal: the status counts that are not zero folded into one column."""
    rows = overview.experiments.to_pylist()
    by_status = [", ".join(f"{row[s]} {s.upper()}" for s in STATUS_COLUMNS if row[s]) for row in rows]
    return pa.table({"experiment_id": overview.experiments["experiment_id"],
                     "trials": overview.experiments["trials"], "by status": pa.array(by_status, pa.string()),
                     "telemetry_points": overview.experiments["telemetry_points"]})


# ---------------------------------------------------------------- progress


class ProgressBar:
    """A one-line progress bar on a terminal; silent when ``stream`` is not one (a script, a pipe, a log).

    Called as a progress callback, ``bar(done, total)``; it redraws its line
    in place and ends it once ``done`` reaches ``total``.
    """

    WIDTH = 30

    def __init__(self, label: str, stream: IO[str] | None = None) -> None:
        self.label = label
        self.stream = sys.stderr if stream is None else stream
        self.enabled = self.stream.isatty()

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        filled = self.WIDTH if total <= 0 else self.WIDTH * done // total
        bar = "#" * filled + "." * (self.WIDTH - filled)
        end = "\n" if done >= total else ""
        self.stream.write(f"\r{self.label} [{bar}] {done}/{total}{end}")
        self.stream.flush()


def one_line(message: str) -> str:
    """An error message on one line (DuckDB's span several, with a caret under the fault)."""
    lines = [line.strip() for line in str(message).splitlines() if line.strip() and set(line.strip()) != {"^"}]
    return " ".join(lines)
