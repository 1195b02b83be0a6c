"""Pure converters between the Arrow tables and the documented list/tuple forms.

The documented reads (``load``, ``load_telemetry``) are these functions
applied to ``load_table`` and ``telemetry_table``. ``widen`` builds the wide
``config.`` / ``result.`` columns that every per-trial table shares.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .status import Status
from .values import (
    ABSENT,
    ENCODING_KEY,
    JSON_COMPANION,
    NUMERIC_WITH_JSON,
    column_to_python,
    telemetry_values,
    typed_column,
    utc_datetimes,
)

CONFIG_PREFIX = "config."
RESULT_PREFIX = "result."

LoadResult = tuple[list[int], list[dict[str, Any]], list[dict[str, Any] | None], list[Status]]

#: The list-form id of the first merged trial of a full ``load()``; the next are -3, -4, ...
FIRST_MERGED_ID = -2


def _prefixed_columns(table: pa.Table, prefix: str) -> list[tuple[str, list[Any]]]:
    return [
        (field.name[len(prefix):], column_to_python(field, table.column(field.name)))
        for field in table.schema
        if field.name.startswith(prefix)
    ]


def _row_dicts(columns: list[tuple[str, list[Any]]], length: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [{} for _ in range(length)]
    for name, values in columns:
        for row, value in zip(rows, values):
            if value is not ABSENT:
                row[name] = value
    return rows


def load_from_table(table: pa.Table, experiment_id: str | None = None) -> LoadResult:
    """``(trial_ids, configs, scores, status)`` from a ``load_table`` result.

    ``scores[i]`` is the trial's results for a SUCCEEDED trial, else None.
    Given the loading ``experiment_id``, rows of other (merged) experiments
    get the ids of ``merged_trial_ids``.
    """
    n = table.num_rows
    trial_ids = table.column("trial_id").to_pylist()
    if experiment_id is not None:
        trial_ids = merged_trial_ids(trial_ids, table.column("experiment_id").to_pylist(), experiment_id)
    statuses = [Status[s] for s in table.column("status").to_pylist()]
    configs = _row_dicts(_prefixed_columns(table, CONFIG_PREFIX), n)
    results = _row_dicts(_prefixed_columns(table, RESULT_PREFIX), n)
    scores = [r if s == Status.SUCCEEDED else None for r, s in zip(results, statuses)]
    return trial_ids, configs, scores, statuses


def merged_trial_ids(trial_ids: list[int], origins: list[str], experiment_id: str) -> list[int]:
    """The ids ``load()`` lists: own trials keep theirs, merged ones get -2, -3, ... in row order.

    Callers keep "the last trial seen" as ``max(trial_ids)`` and pass it
    back as ``last_trial_id`` (mlos_bench's scheduler does). A merged
    trial's own id would raise that watermark past this experiment's
    trials not yet loaded; below every own id (ids are >= 0) it never does,
    and a watermark of -2 (only merged trials so far) is not -1, so the next
    ``load`` returns only the own trials, never the merged ones twice.
    """
    merged = itertools.count()
    return [tid if origin == experiment_id else FIRST_MERGED_ID - next(merged)
            for tid, origin in zip(trial_ids, origins)]


def matched_rows(trials: pa.Table, values: pa.Table, first_row: int = 0) -> pa.Table:
    """Long ``values`` with ``row_pos``: the row of ``trials`` (counted from ``first_row``) each belongs to.

    Matched on ``trial_id``, and on ``experiment_id`` too when ``values``
    holds it (merged trials of several experiments); those key columns are
    dropped. The two tables come from two queries: matched by identity,
    never by position, a filter written differently in one of them can
    leave a cell empty but never put a value on another trial. Values of a
    trial ``trials`` lacks are dropped. (Arrow's hash lookup per experiment:
    a table join cost several times more at 20,000 trials.)
    """
    if "experiment_id" not in values.column_names:
        return _with_rows(values, trials.column("trial_id"), pa.array(range(trials.num_rows), pa.int64()), first_row)
    parts = []
    for experiment_id in pc.unique(trials.column("experiment_id")).to_pylist():
        rows = pc.indices_nonzero(pc.equal(trials.column("experiment_id"), experiment_id))
        own = values.filter(pc.equal(values.column("experiment_id"), experiment_id))
        parts.append(_with_rows(own.drop_columns(["experiment_id"]), trials.column("trial_id").take(rows),
                                rows.cast(pa.int64()), first_row))
    if not parts:
        return _with_rows(values.drop_columns(["experiment_id"]), pa.array([], pa.int64()),
                          pa.array([], pa.int64()), first_row)
    return pa.concat_tables(parts)


def _with_rows(values: pa.Table, trial_ids: pa.Array, rows: pa.Array, first_row: int) -> pa.Table:
    """``values`` keyed by trial_id, with the row each id has in ``rows`` (parallel to ``trial_ids``)."""
    found = pc.index_in(values.column("trial_id"), value_set=trial_ids)
    kept = values.filter(pc.is_valid(found)).drop_columns(["trial_id"])
    row_pos = pc.add(pc.take(rows, found.drop_null()), first_row)
    return kept.append_column("row_pos", row_pos)


def widen(trials: pa.Table, values: pa.Table) -> pa.Table:
    """Trial rows plus one typed column per (source, name) of the long value rows.

    ``values`` has columns source ('config' or 'result'), name, row_pos (the
    trial's row in ``trials``, see ``matched_rows``) and the four value
    columns, in any order.
    Columns come out as ``config.<name>`` then
    ``result.<name>``, each sorted by name, typed as ``mlos_store.values``
    describes.
    """
    n = trials.num_rows
    table = trials
    for name, part in _columns_of(values, n):
        field, column = typed_column(name, part, part.column("row_pos"), n)
        table = table.append_column(field, column)
    return table


def _columns_of(values: pa.Table, trial_count: int) -> list[tuple[str, pa.Table]]:
    """Each wide column's name and its long rows by row_pos, columns in name order.

    The rows are sorted on one integer, the column's rank then the row:
    sorting on the two strings and the position was most of the cost of
    ``results_table`` at 100,000 trials.
    """
    if values.num_rows == 0:
        return []
    is_config = pc.equal(values.column("source"), "config")
    labels = pc.binary_join_element_wise(pc.if_else(is_config, CONFIG_PREFIX, RESULT_PREFIX),
                                         values.column("name"), "")
    names = sorted(pc.unique(labels).to_pylist())
    rank = pc.index_in(labels, value_set=pa.array(names, pa.string())).cast(pa.int64())
    key = pc.add(pc.multiply(rank, trial_count), values.column("row_pos").cast(pa.int64()))
    values = values.take(pc.sort_indices(key))
    counts = pc.value_counts(rank).to_pylist()
    rows_per_rank = {c["values"]: c["counts"] for c in counts}
    columns, start = [], 0
    for position, name in enumerate(names):
        length = rows_per_rank[position]
        columns.append((name, values.slice(start, length)))
        start += length
    return columns


def telemetry_from_table(table: pa.Table) -> list[tuple[datetime, str, Any]]:
    """``[(ts, metric, value), ...]`` from a ``telemetry_table`` result, in its order."""
    values = telemetry_values(table)
    return list(zip(utc_datetimes(table.column("ts")), table.column("metric").to_pylist(), values))


def status_history_from_table(table: pa.Table) -> list[tuple[datetime, Status]]:
    """``[(ts, Status), ...]`` from a status history table (``ts``, ``status`` names), in its order.

    The list form of ``Trial.status_history`` and ``TrialData.status_history``
    alike, so the write side and the analysis side cannot disagree.
    """
    statuses = [Status[name] for name in table.column("status").to_pylist()]
    return list(zip(utc_datetimes(table.column("ts")), statuses))


def merges_from_table(table: pa.Table) -> list[tuple[str, datetime]]:
    """``[(merged_experiment_id, ts_merged), ...]`` from an ``ExperimentData.merges_table``, in its order."""
    return list(zip(table.column("merged_experiment_id").to_pylist(), utc_datetimes(table.column("ts_merged"))))


def exact_columns(table: pa.Table) -> list[tuple[str, list[Any]]]:
    """Each column's name and the exact stored values of its cells, for any table the store returns.

    JSON-encoded columns are decoded, and a numeric ``value`` with its
    ``value_json`` companion becomes one ``value`` column of exact values
    (the companion is left out). A cell with no stored value is None.
    """
    return [(field.name, exact_values(table, field)) for field in without_json_companion(table).schema]


def without_json_companion(table: pa.Table) -> pa.Table:
    """``table`` less the ``value_json`` companion of a mixed ``value`` column, if it has one."""
    return table.drop_columns([JSON_COMPANION]) if _has_json_companion(table) else table


def needs_decoding(field: pa.Field) -> bool:
    """Whether a column's Arrow cells differ from its exact values: JSON text, or numbers with a companion."""
    return (field.metadata or {}).get(ENCODING_KEY) in (b"json", NUMERIC_WITH_JSON)


def exact_values(table: pa.Table, field: pa.Field) -> list[Any]:
    """The exact stored values of one column of ``table``: the one place ``value`` meets ``value_json``."""
    if field.name == "value" and _has_json_companion(table):
        values = telemetry_values(table)
    else:
        values = column_to_python(field, table.column(field.name))
    return [None if v is ABSENT else v for v in values]


def _has_json_companion(table: pa.Table) -> bool:
    return (table.schema.get_field_index("value") >= 0 and JSON_COMPANION in table.column_names
            and (table.schema.field("value").metadata or {}).get(ENCODING_KEY) == NUMERIC_WITH_JSON)
