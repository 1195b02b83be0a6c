"""Telemetry analytics: named SQL queries over every stored point, returning Arrow.

DuckDB aggregates the points where they are stored; Python only checks the
arguments and, for the per-config view, widens the config's tunable values
and results into columns. Statistics use the numeric view of each value
(ints, floats, bools as 0/1); NaN, strings and None are left out of them but
counted in ``count``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import pyarrow as pa

from .convert import widen
from .engine import Engine
from .errors import InvalidValueError
from .telemetry import TelemetryFilter
from .values import check_name, to_utc

_MICROSECOND = timedelta(microseconds=1)


def summary(engine: Engine, experiment_id: str, trial_ids: int | Iterable[int] | None = None, *,
            metrics: str | Iterable[str] | None = None,
            start: datetime | None = None, end: datetime | None = None) -> pa.Table:
    """Per trial and metric: count, min, max, mean, stddev, p50, p90, p95, p99, first_ts, last_ts.

    Filtered as ``telemetry_table``; by trial id, then metric. Percentiles
    are exact (interpolated between the nearest points).
    """
    where = TelemetryFilter(experiment_id, trial_ids, metrics=metrics, start=start, end=end)
    return engine.fetch_table(engine.catalog.telemetry_summary, **where.params)


def extents(engine: Engine, experiment_id: str, trial_ids: int | Iterable[int] | None = None, *,
            metrics: str | Iterable[str] | None = None,
            start: datetime | None = None, end: datetime | None = None) -> pa.Table:
    """Per trial and metric: count, min, max, mean, first_ts, last_ts (``summary`` less stddev and percentiles).

    Filtered and ordered as ``summary``, with the same values in the same
    columns; without the percentiles no point is sorted, which makes it
    several times cheaper over millions of points.
    """
    where = TelemetryFilter(experiment_id, trial_ids, metrics=metrics, start=start, end=end)
    return engine.fetch_table(engine.catalog.telemetry_extents, **where.params)


def downsample(engine: Engine, experiment_id: str, bucket: timedelta,
               trial_ids: int | Iterable[int] | None = None, *, metrics: str | Iterable[str] | None = None,
               start: datetime | None = None, end: datetime | None = None) -> pa.Table:
    """Per trial, metric and time bucket of width ``bucket``: count, mean, min and max.

    Buckets are aligned to the Unix epoch and labelled by their start
    (``bucket`` column), so the buckets of different trials line up.
    """
    width = bucket_width_us(bucket)
    where = TelemetryFilter(experiment_id, trial_ids, metrics=metrics, start=start, end=end)
    return engine.fetch_table(engine.catalog.telemetry_downsample, bucket_us=width, **where.params)


def by_config(engine: Engine, experiment_id: str, metric: str, *,
              start: datetime | None = None, end: datetime | None = None) -> pa.Table:
    """One metric summarised per tunable config, beside the config's values and results.

    One row per config with points of ``metric``: tunable_config_id, trials,
    count, min, max, mean, stddev, p50, p90, p95, p99 (over every point of
    the config's trials), then ``config.<tunable>`` columns and, for each
    numeric result, ``result.<name>``: its mean over the config's SUCCEEDED
    trials. By config id; ``sort_by("p95")`` of it puts the best first.
    """
    what = f"experiment {experiment_id!r} telemetry"
    params = {
        "experiment_id": experiment_id, "metric": check_name(metric, f"{what} metric"),
        "start": None if start is None else to_utc(start, f"{what} start"),
        "end": None if end is None else to_utc(end, f"{what} end"),
    }
    with engine.transaction():  # one snapshot: the values describe exactly these configs
        stats = engine.fetch_table(engine.catalog.telemetry_by_config, **params)
        values = engine.fetch_table(engine.catalog.telemetry_config_values, experiment_id=experiment_id,
                                    config_ids=stats.column("tunable_config_id").to_pylist())
    return widen(stats, values)


def bucket_width_us(bucket: timedelta) -> int:
    """A bucket width in microseconds (a timedelta's resolution); refuses anything else, naming it."""
    if not isinstance(bucket, timedelta) or bucket <= timedelta(0):
        raise InvalidValueError(f"bucket must be a positive timedelta, got {bucket!r}")
    return bucket // _MICROSECOND
