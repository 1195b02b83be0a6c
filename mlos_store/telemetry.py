"""Telemetry points from the caller's forms into the Arrow rows the ingest query reads."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TypeAlias

import pyarrow as pa
import pyarrow.compute as pc

from .engine import Engine
from .errors import InvalidValueError
from .values import (
    check_name,
    checked_id,
    encode_arrow_values,
    encode_python_values,
    is_string_type,
    telemetry_value_columns,
    to_utc,
)

TELEMETRY_COLUMNS = ("ts", "metric", "value")
UTC_MICROS = pa.timestamp("us", tz="UTC")

TelemetryInput: TypeAlias = "Sequence[tuple[datetime, str, Any]] | pa.Table | pa.RecordBatch | pa.RecordBatchReader"


def telemetry_rows(points: TelemetryInput, what: str) -> pa.Table:
    """Ingest rows (ts, metric, value columns, row_idx) for tuples or Arrow data.

    Refuses, naming the first bad row or column, anything else: extra or
    missing columns, a timestamp that is not a datetime, an empty metric.
    """
    if isinstance(points, pa.RecordBatchReader):
        points = points.read_all()
    if isinstance(points, pa.RecordBatch):
        points = pa.Table.from_batches([points])
    if isinstance(points, pa.Table):
        return _rows_from_arrow(points, what)
    if isinstance(points, (str, bytes)) or not isinstance(points, Sequence):
        raise InvalidValueError(
            f"{what}: telemetry must be a list of (timestamp, metric, value) tuples or an Arrow "
            f"table with columns ts, metric, value; got {type(points).__name__}"
        )
    return _rows_from_tuples(points, what)


def _rows_from_tuples(points: Sequence[Any], what: str) -> pa.Table:
    stamps, metrics, values = [], [], []
    for i, point in enumerate(points):
        if not isinstance(point, (tuple, list)) or len(point) != 3:
            raise InvalidValueError(f"{what}: telemetry row {i} is {point!r}, expected (timestamp, metric, value)")
        ts, metric, value = point
        check_name(metric, f"{what}: telemetry row {i} metric")
        stamps.append(to_utc(ts, f"{what}: telemetry row {i} timestamp"))
        metrics.append(metric)
        values.append(value)
    columns = encode_python_values(values, f"{what}: telemetry value")
    return _assemble(pa.array(stamps, UTC_MICROS), pa.array(metrics, pa.string()), columns)


def _rows_from_arrow(table: pa.Table, what: str) -> pa.Table:
    names = set(table.column_names)
    if names != set(TELEMETRY_COLUMNS) or len(table.column_names) != len(TELEMETRY_COLUMNS):
        raise InvalidValueError(
            f"{what}: telemetry table has columns {table.column_names}, expected exactly {list(TELEMETRY_COLUMNS)}"
        )
    metric = table.column("metric")
    if not is_string_type(metric.type):
        raise InvalidValueError(f"{what}: telemetry column 'metric' is {metric.type}, expected string")
    if metric.null_count or (len(metric) and pc.any(pc.equal(pc.utf8_length(metric), 0)).as_py()):
        raise InvalidValueError(f"{what}: telemetry column 'metric' holds null or empty names")
    ts = _utc_timestamps(table.column("ts"), what)
    columns = encode_arrow_values(table.column("value"), f"{what}: telemetry column 'value'")
    return _assemble(ts, metric.cast(pa.string()), columns)


def _utc_timestamps(ts: pa.ChunkedArray, what: str) -> pa.Array:
    if not pa.types.is_timestamp(ts.type):
        raise InvalidValueError(f"{what}: telemetry column 'ts' is {ts.type}, expected a timestamp")
    if ts.null_count:
        raise InvalidValueError(f"{what}: telemetry column 'ts' holds nulls")
    # The store keeps microseconds: finer units (pandas' default ns) are truncated.
    if ts.type.tz is None:
        # Naive times are local time (mlos_bench's convention); DST makes the
        # offset depend on each value, so Python converts them.
        micros = ts.combine_chunks().cast(pa.timestamp("us"), safe=False)
        return pa.array([to_utc(t) for t in micros.to_pylist()], UTC_MICROS)
    return ts.combine_chunks().cast(UTC_MICROS, safe=False)


def _assemble(ts: pa.Array, metric: pa.Array, columns: dict[str, pa.Array]) -> pa.Table:
    return pa.table(
        {"ts": ts, "metric": metric, **columns, "row_idx": pa.array(range(len(ts)), pa.int64())}
    )


def read_telemetry(engine: Engine, experiment_id: str, trial_ids: int | Iterable[int] | None = None, *,
                   metrics: str | Iterable[str] | None = None,
                   start: datetime | None = None, end: datetime | None = None) -> pa.Table:
    """An experiment's telemetry, filtered, with its typed values widened to Arrow.

    Shared by every object that reads telemetry (an experiment while it runs,
    the analysis side afterwards) so the filters and the value widening mean
    the same everywhere.
    """
    what = f"experiment {experiment_id!r} telemetry"
    rows = engine.fetch_table(
        engine.catalog.telemetry_list, experiment_id=experiment_id,
        trial_ids=id_list(trial_ids), metrics=name_list(metrics),
        start=None if start is None else to_utc(start, f"{what} start"),
        end=None if end is None else to_utc(end, f"{what} end"))
    table = rows.select(["experiment_id", "trial_id", "ts", "metric"])
    for field, column in telemetry_value_columns(rows):
        table = table.append_column(field, column)
    return table


def id_list(trial_ids: int | Iterable[int] | None) -> list[int] | None:
    """A trial-id filter checked and as a list; None means every trial."""
    if trial_ids is None:
        return None
    ids = [trial_ids] if isinstance(trial_ids, int) else list(trial_ids)
    return [checked_id(i, "trial id") for i in ids]


def name_list(metrics: str | Iterable[str] | None) -> list[str] | None:
    """A metric-name filter checked and as a list; None means every metric."""
    if metrics is None:
        return None
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    return [check_name(name, "metric") for name in names]
