"""Pure converters from the Arrow tables to the documented list/tuple forms.

The documented reads (``load``, ``load_telemetry``) are these functions
applied to ``load_table`` and ``telemetry_table``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyarrow as pa

from .status import Status
from .values import ABSENT, column_to_python, telemetry_values

CONFIG_PREFIX = "config."
RESULT_PREFIX = "result."

LoadResult = tuple[list[int], list[dict[str, Any]], list[dict[str, Any] | None], list[Status]]


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


def load_from_table(table: pa.Table) -> LoadResult:
    """``(trial_ids, configs, scores, status)`` from a ``load_table`` result.

    ``scores[i]`` is the trial's results for a SUCCEEDED trial, else None.
    """
    n = table.num_rows
    trial_ids = table.column("trial_id").to_pylist()
    statuses = [Status[s] for s in table.column("status").to_pylist()]
    configs = _row_dicts(_prefixed_columns(table, CONFIG_PREFIX), n)
    results = _row_dicts(_prefixed_columns(table, RESULT_PREFIX), n)
    scores = [r if s == Status.SUCCEEDED else None for r, s in zip(results, statuses)]
    return trial_ids, configs, scores, statuses


def telemetry_from_table(table: pa.Table) -> list[tuple[datetime, str, Any]]:
    """``[(ts, metric, value), ...]`` from a ``telemetry_table`` result, in its order."""
    values = telemetry_values(table)
    return list(zip(table.column("ts").to_pylist(), table.column("metric").to_pylist(), values))
