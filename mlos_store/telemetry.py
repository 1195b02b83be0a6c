"""Telemetry points from the caller's forms into the Arrow rows the ingest query reads."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeAlias

import pyarrow as pa
import pyarrow.compute as pc

from .engine import Engine
from .errors import InvalidValueError, QueryError, UnknownObjectError
from .values import (
    check_name,
    check_timestamp_range,
    checked_id,
    encode_arrow_values,
    encode_python_values,
    is_string_type,
    plain_scalar,
    telemetry_value_columns,
    telemetry_value_layout,
    to_utc,
)

TELEMETRY_COLUMNS = ("ts", "metric", "value")
#: Columns of a many-trials batch (``Experiment.ingest_telemetry``).
BULK_TELEMETRY_COLUMNS = ("trial_id", *TELEMETRY_COLUMNS)
UTC_MICROS = pa.timestamp("us", tz="UTC")
#: Points typed as the store keeps float telemetry: such a batch is stored as the caller built it.
STORED_FLOAT_POINTS = pa.schema([("ts", UTC_MICROS), ("metric", pa.string()), ("value", pa.float64())])

ArrowTelemetry: TypeAlias = "pa.Table | pa.RecordBatch | pa.RecordBatchReader"
TelemetryInput: TypeAlias = "Sequence[tuple[datetime, str, Any]] | ArrowTelemetry"


def telemetry_rows(points: TelemetryInput, what: str) -> pa.Table:
    """Ingest rows (ts, metric, value columns, row_idx) for tuples or Arrow data.

    Refuses, naming the first bad row or column, anything else: extra or
    missing columns, a timestamp that is not a datetime, an empty metric.
    """
    if isinstance(points, (pa.Table, pa.RecordBatch, pa.RecordBatchReader)):
        return _rows_from_arrow(_as_table(points), what)
    if isinstance(points, (str, bytes)) or not isinstance(points, Sequence):
        raise InvalidValueError(
            f"{what}: telemetry must be a list of (timestamp, metric, value) tuples or an Arrow "
            f"table with columns ts, metric, value; got {type(points).__name__}"
        )
    return _rows_from_tuples(points, what)


def trial_points(points: TelemetryInput, what: str) -> pa.Table:
    """One trial's points ready to store: the caller's Arrow table as it is when already typed as stored
    (``STORED_FLOAT_POINTS``, checked), else the ingest rows of ``telemetry_rows``.

    A harness feeding float metrics from Arrow sends them in the stored
    types; building the typed value columns for them cost more Python
    time than DuckDB's insert of the batch. ``append_if_state`` stores
    either form; ``as_ingest_rows`` turns the first into the second.
    """
    stored_shape = stored_float_points(points, what)
    return stored_shape if stored_shape is not None else telemetry_rows(points, what)


def stored_float_points(points: Any, what: str) -> pa.Table | None:
    """Arrow points typed exactly as ``STORED_FLOAT_POINTS`` (any column order), checked; None for anything else.

    The checks are those of ``telemetry_rows`` (the same functions): no
    null timestamp or metric, no empty metric, timestamps in years 1 to 9999.
    """
    if not isinstance(points, (pa.Table, pa.RecordBatch)) or not _in_stored_float_shape(points.schema):
        return None
    table = _as_table(points)
    return pa.table({"ts": _utc_timestamps(table.column("ts"), what),
                     "metric": _checked_metrics(table.column("metric"), what), "value": table.column("value")})


def _in_stored_float_shape(schema: pa.Schema) -> bool:
    return len(schema) == len(STORED_FLOAT_POINTS) and all(
        schema.get_field_index(field.name) >= 0 and schema.field(field.name).type == field.type
        for field in STORED_FLOAT_POINTS)


def as_ingest_rows(points: pa.Table) -> pa.Table:
    """Ingest rows (typed value columns, row_idx) for ``trial_points``' result, whichever form it has."""
    if _is_ingest_rows(points):
        return points
    value = encode_arrow_values(points.column("value"), "telemetry column 'value'")
    return _assemble(points.column("ts").combine_chunks(), points.column("metric").combine_chunks(), value)


def _is_ingest_rows(points: pa.Table) -> bool:
    """Whether ``trial_points`` converted these points (typed value columns), or passed the caller's on."""
    return "value_kind" in points.column_names


def bulk_telemetry_rows(points: ArrowTelemetry, what: str) -> pa.Table:
    """Ingest rows (trial_id, ts, metric, value columns, row_idx) for a many-trials Arrow batch.

    Refuses, naming the column, anything but exactly the columns trial_id,
    ts, metric, value, and trial ids that are not non-null integers.
    """
    if not isinstance(points, (pa.Table, pa.RecordBatch, pa.RecordBatchReader)):
        raise InvalidValueError(
            f"{what}: telemetry of many trials must be an Arrow table, record batch or reader with "
            f"columns {', '.join(BULK_TELEMETRY_COLUMNS)}; got {type(points).__name__}"
        )
    table = _as_table(points)
    _check_columns(table, BULK_TELEMETRY_COLUMNS, what)
    trial_id = table.column("trial_id")
    if not pa.types.is_integer(trial_id.type):
        raise InvalidValueError(f"{what}: telemetry column 'trial_id' is {trial_id.type}, expected an integer")
    if trial_id.null_count:
        raise InvalidValueError(f"{what}: telemetry column 'trial_id' holds nulls")
    try:
        trial_ids = trial_id.combine_chunks().cast(pa.int64())
    except pa.ArrowInvalid as exc:
        raise InvalidValueError(f"{what}: telemetry column 'trial_id' does not fit in 64 bits ({exc})") from None
    rows = _rows_from_arrow(table.drop_columns(["trial_id"]), what)
    return rows.add_column(0, "trial_id", trial_ids)


def with_trial_ids(parts: list[tuple[int, pa.Table]]) -> pa.Table:
    """Ingest rows of several trials as one many-trials table, numbered in the order given.

    Each part is (trial id, ``telemetry_rows`` of it); repeats of a point
    across parts keep the first sent, as within one batch.
    """
    tables = [rows.add_column(0, "trial_id", pa.nulls(rows.num_rows, pa.int64()).fill_null(
        pa.scalar(trial_id, pa.int64()))) for trial_id, rows in parts]
    table = pa.concat_tables(tables)
    return table.set_column(table.schema.get_field_index("row_idx"), "row_idx", _row_numbers(table.num_rows))


def _as_table(points: ArrowTelemetry) -> pa.Table:
    if isinstance(points, pa.RecordBatchReader):
        return points.read_all()
    if isinstance(points, pa.RecordBatch):
        return pa.Table.from_batches([points])
    return points


def _check_columns(table: pa.Table, expected: tuple[str, ...], what: str) -> None:
    if set(table.column_names) != set(expected) or len(table.column_names) != len(expected):
        raise InvalidValueError(
            f"{what}: telemetry table has columns {table.column_names}, expected exactly {list(expected)}"
        )


def _rows_from_tuples(points: Sequence[Any], what: str) -> pa.Table:
    stamps, metrics, values = [], [], []
    naive: bool | None = None  # whether the timestamps seen so far are naive
    for i, point in enumerate(points):
        if not isinstance(point, (tuple, list)) or len(point) != 3:
            raise InvalidValueError(f"{what}: telemetry row {i} is {point!r}, expected (timestamp, metric, value)")
        ts, metric, value = point
        ts = plain_scalar(ts)  # a numpy datetime64 is an aware (UTC) datetime from here on
        check_name(metric, f"{what}: telemetry row {i} metric")
        stamps.append(to_utc(ts, f"{what}: telemetry row {i} timestamp"))
        naive = _same_awareness(naive, ts, f"{what}: telemetry row {i} timestamp")
        metrics.append(metric)
        values.append(value)
    columns = encode_python_values(values, f"{what}: telemetry value")
    return _assemble(pa.array(stamps, UTC_MICROS), pa.array(metrics, pa.string()), columns)


def _same_awareness(naive: bool | None, ts: datetime, what: str) -> bool:
    """Refuse a batch mixing naive (local) and aware timestamps: one of them is surely a mistake."""
    is_naive = ts.utcoffset() is None
    if naive is not None and is_naive != naive:
        raise InvalidValueError(
            f"{what} {ts!r} is {'naive' if is_naive else 'timezone-aware'} but earlier rows are "
            f"{'naive' if naive else 'timezone-aware'}: naive and aware timestamps cannot be mixed in one batch"
        )
    return is_naive


def _rows_from_arrow(table: pa.Table, what: str) -> pa.Table:
    _check_columns(table, TELEMETRY_COLUMNS, what)
    metric = _checked_metrics(table.column("metric"), what)
    ts = _utc_timestamps(table.column("ts"), what)
    columns = encode_arrow_values(table.column("value"), f"{what}: telemetry column 'value'")
    return _assemble(ts, metric, columns)


def _checked_metrics(metric: pa.ChunkedArray, what: str) -> pa.Array:
    """The metric column as one string array, or InvalidValueError if a name is null or empty."""
    if not is_string_type(metric.type):
        raise InvalidValueError(f"{what}: telemetry column 'metric' is {metric.type}, expected string")
    names = metric.combine_chunks().cast(pa.string())  # large_string and string_view too
    if names.null_count or (len(names) and pc.min(pc.utf8_length(names)).as_py() == 0):
        raise InvalidValueError(f"{what}: telemetry column 'metric' holds null or empty names")
    return names


def _utc_timestamps(ts: pa.ChunkedArray, what: str) -> pa.Array:
    if not pa.types.is_timestamp(ts.type):
        raise InvalidValueError(f"{what}: telemetry column 'ts' is {ts.type}, expected a timestamp")
    if ts.null_count:
        raise InvalidValueError(f"{what}: telemetry column 'ts' holds nulls")
    stamps = ts.combine_chunks()
    check_timestamp_range(stamps, f"{what}: telemetry column 'ts'")
    # The store keeps microseconds: finer units (pandas' default ns) are
    # truncated (unsafe casts); coarser ones in range cannot overflow.
    if ts.type.tz is None:
        # Naive times are local time (mlos_bench's convention); DST makes the
        # offset depend on each value, so Python converts them.
        micros = stamps.cast(pa.timestamp("us"), safe=False)
        value = f"{what}: telemetry column 'ts' value"
        return pa.array([to_utc(t, value) for t in micros.to_pylist()], UTC_MICROS)
    return stamps.cast(UTC_MICROS, safe=False)


def _assemble(ts: pa.Array, metric: pa.Array, columns: dict[str, pa.Array]) -> pa.Table:
    return pa.table({"ts": ts, "metric": metric, **columns, "row_idx": _row_numbers(len(ts))})


def _row_numbers(n: int) -> pa.Array:
    """0, 1, ..., n - 1 as int64, computed by Arrow (a Python range costs ~0.1 s per million)."""
    ones = pa.nulls(n, pa.int64()).fill_null(pa.scalar(1, pa.int64()))
    return pc.subtract(pc.cumulative_sum(ones), pa.scalar(1, pa.int64()))


def in_point_order(rows: pa.Table, keys: list[str]) -> bool:
    """Whether ``rows`` are strictly ordered by ``keys`` then metric, metrics in order of first appearance.

    Such a batch (what a harness sampling a fixed set of metrics sends)
    holds each point once, so the insert needs no repeat elimination. A handful of vectorised
    comparisons of neighbouring rows decide it, far cheaper than grouping.
    """
    if rows.num_rows < 2:
        return True
    metric_order = rows.column("metric").combine_chunks().dictionary_encode().indices
    before, after = _neighbours(rows, keys)
    pairs = [*zip(before, after), (metric_order[:-1], metric_order[1:])]
    # Each Arrow call costs ~15 us whatever its 1,000 rows, so no call is spent on a constant:
    # ahead = ordered by some key while equal in every earlier one; tied = equal in every key so far.
    ahead, tied = pc.less(*pairs[0]), pc.equal(*pairs[0])
    for position, (earlier, later) in enumerate(pairs[1:], start=2):
        ahead = pc.or_(ahead, pc.and_(tied, pc.less(earlier, later)))
        if position < len(pairs):
            tied = pc.and_(tied, pc.equal(earlier, later))
    return bool(pc.all(ahead).as_py())


def _neighbours(rows: pa.Table, keys: list[str]) -> tuple[list[pa.Array], list[pa.Array]]:
    """Each key column without its last row and without its first: row i against row i + 1."""
    columns = [rows.column(key).combine_chunks() for key in keys]
    return [c[:-1] for c in columns], [c[1:] for c in columns]


def first_of_each_point(rows: pa.Table) -> pa.Table:
    """One trial's ingest rows keeping, of each point (ts, metric), only its first row.

    A point repeated within a batch is stored once, with the value it was
    first sent with. Arrow does this in well under a millisecond for a
    trial's batch, cheaper than the same step in the insert statement; a
    batch in point order is returned as it is without grouping.
    """
    keys = ["ts", "metric"]
    if in_point_order(rows, ["ts"]):
        return rows
    if "row_idx" not in rows.column_names:  # the caller's own table (trial_points)
        rows = rows.append_column("row_idx", _row_numbers(rows.num_rows))
    firsts = rows.select([*keys, "row_idx"]).group_by(keys, use_threads=False).aggregate([("row_idx", "min")])
    if firsts.num_rows == rows.num_rows:
        return rows
    return rows.filter(pc.is_in(rows.column("row_idx"), value_set=firsts.column("row_idx_min")))


def store_points(engine: Engine, experiment_id: str, trial_id: int, rows: pa.Table,
                 last_stored_ts: datetime | None) -> None:
    """Insert one trial's points (either form of ``trial_points``), skipping those already stored; call
    inside its transaction.

    ``last_stored_ts`` is the trial's latest stored point (read in the same
    transaction). A batch entirely after it, the usual case of a harness
    sending points as they come, cannot repeat a stored point and is
    appended without looking for one; any other batch is anti-joined
    against the trial's stored points.
    """
    rows = first_of_each_point(as_ingest_rows(rows))
    if last_stored_ts is None or pc.min(rows.column("ts")).as_py() > last_stored_ts:
        query = engine.catalog.telemetry_append
    else:
        query = engine.catalog.telemetry_insert
    engine.ingest(query, rows, experiment_id=experiment_id, trial_id=trial_id)


def append_if_state(engine: Engine, experiment_id: str, trial_id: int, rows: pa.Table, status: str) -> bool:
    """Append a batch in one statement if the trial still has ``status`` and the batch is later than
    every stored point; call inside its transaction. False (nothing written): take the checked path.

    For a harness streaming points into a trial whose status it knows (the
    trial object's hint of its own last change): the checked path reads
    the trial's state first, a second statement at DuckDB's per-statement
    cost. The statement checks both conditions itself, so a hint gone stale
    (another process moved the trial or wrote later points) stores nothing.
    ``rows`` is either form ``trial_points`` gives: a float table in the
    stored types takes the statement that writes its value kinds itself.
    """
    if not rows.num_rows:
        return False
    rows = first_of_each_point(rows)
    typed = _is_ingest_rows(rows)
    query = engine.catalog.telemetry_append_if_state if typed else engine.catalog.telemetry_append_floats_if_state
    appended = engine.ingest(query, rows, experiment_id=experiment_id,
                             trial_id=trial_id, status=status, first_ts=pc.min(rows.column("ts")).as_py())
    return bool(appended == rows.num_rows)


def ingest_many(engine: Engine, experiment_id: str, points: ArrowTelemetry) -> None:
    """Store telemetry of many trials of one experiment: one transaction, one insert.

    Every trial id must be one of the experiment's trials (any status:
    harnesses that buffer send points after a trial ended); otherwise
    UnknownObjectError names the missing ids and nothing is stored.
    """
    store_many(engine, experiment_id, bulk_telemetry_rows(points, f"experiment {experiment_id!r}"))


def store_many(engine: Engine, experiment_id: str, rows: pa.Table) -> None:
    """Insert checked ingest rows of many trials (with trial_id; row_idx orders repeats) in one transaction.

    A batch in point order (``in_point_order``) has no repeats and takes the
    statement that does not look for them.
    """
    what = f"experiment {experiment_id!r}"
    if not rows.num_rows:
        return
    trial_ids = pc.unique(rows.column("trial_id")).to_pylist()
    with engine.transaction():
        missing = engine.fetch_table(engine.catalog.trial_ids_missing, experiment_id=experiment_id,
                                     trial_ids=trial_ids).column("trial_id").to_pylist()
        if missing:
            shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
            raise UnknownObjectError(f"{what} has no trial {shown}: no telemetry was stored")
        ordered = in_point_order(rows, ["trial_id", "ts"])
        query = engine.catalog.telemetry_insert_many_in_order if ordered else engine.catalog.telemetry_insert_many
        engine.ingest(query, rows, experiment_id=experiment_id,
                      first_trial_id=min(trial_ids), last_trial_id=max(trial_ids))


class TelemetryFilter:
    """The filters of a telemetry read, checked, as the named queries bind them."""

    def __init__(self, experiment_id: str, trial_ids: int | Iterable[int] | None = None, *,
                 metrics: str | Iterable[str] | None = None,
                 start: datetime | None = None, end: datetime | None = None) -> None:
        what = f"experiment {experiment_id!r} telemetry"
        self.params: dict[str, Any] = {
            "experiment_id": experiment_id, "trial_ids": id_list(trial_ids), "metrics": name_list(metrics),
            "start": None if start is None else to_utc(start, f"{what} start"),
            "end": None if end is None else to_utc(end, f"{what} end"),
        }


def read_telemetry(engine: Engine, experiment_id: str, trial_ids: int | Iterable[int] | None = None, *,
                   metrics: str | Iterable[str] | None = None,
                   start: datetime | None = None, end: datetime | None = None) -> pa.Table:
    """An experiment's telemetry, filtered, with its typed values widened to Arrow.

    Shared by every object that reads telemetry (an experiment while it runs,
    the analysis side afterwards) so the filters and the value widening mean
    the same everywhere.
    """
    where = TelemetryFilter(experiment_id, trial_ids, metrics=metrics, start=start, end=end)
    rows = engine.fetch_table(engine.catalog.telemetry_list, **where.params)
    return _with_values(rows, telemetry_value_columns(rows))


def stream_telemetry(engine: Engine, experiment_id: str, trial_ids: int | Iterable[int] | None = None, *,
                     metrics: str | Iterable[str] | None = None, start: datetime | None = None,
                     end: datetime | None = None, batch_size: int = 1_000_000) -> pa.RecordBatchReader:
    """``read_telemetry`` as a stream of record batches, for more points than fit in memory.

    The batches together equal ``read_telemetry`` of the same filters (same
    schema, rows and order): the value columns are decided before the first
    batch from the kinds of every point the stream will return. Points of
    a new kind stored while the stream is read make it fail, naming why.
    """
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise InvalidValueError(f"batch_size must be a positive int, got {batch_size!r}")
    where = TelemetryFilter(experiment_id, trial_ids, metrics=metrics, start=start, end=end)
    found = engine.fetch_one(engine.catalog.telemetry_value_kinds, **where.params)
    layout = telemetry_value_layout(set(found.kinds) if found else set(), bool(found and found.beyond_exact_float))
    reader = engine.stream(engine.catalog.telemetry_list, batch_size=batch_size, **where.params)
    schema = pa.schema([reader.schema.field(name) for name in _KEY_COLUMNS] + layout.fields())

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            rows = pa.Table.from_batches([batch])
            if not set(rows.column("value_kind").unique().to_pylist()) <= layout.stored | {"null"}:
                raise QueryError(f"experiment {experiment_id!r}: telemetry of a new value kind was stored while "
                                 "it was being streamed; read it again")
            columns = [rows.column(name).combine_chunks() for name in _KEY_COLUMNS]
            yield pa.RecordBatch.from_arrays(columns + [column for _, column in layout.columns(rows)], schema=schema)

    return pa.RecordBatchReader.from_batches(schema, batches())


_KEY_COLUMNS = ["experiment_id", "trial_id", "ts", "metric"]


def _with_values(rows: pa.Table, values: list[tuple[pa.Field, pa.Array]]) -> pa.Table:
    table = rows.select(_KEY_COLUMNS)
    for field, column in values:
        table = table.append_column(field, column)
    return table


def id_list(trial_ids: int | Iterable[int] | None) -> list[int] | None:
    """A trial-id filter checked and as a list; None means every trial."""
    if trial_ids is None:
        return None
    trial_ids = plain_scalar(trial_ids)
    ids = [trial_ids] if isinstance(trial_ids, int) else list(trial_ids)
    return [checked_id(i, "trial id") for i in ids]


def name_list(metrics: str | Iterable[str] | None) -> list[str] | None:
    """A metric-name filter checked and as a list; None means every metric."""
    if metrics is None:
        return None
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    return [check_name(name, "metric") for name in names]
