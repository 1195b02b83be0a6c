"""The reads every view of an experiment offers, written once: its telemetry and its Parquet export.

``Experiment`` (while trials run) and ``ExperimentData`` (the analysis side)
both inherit these, so a filter, a stream, a statistic or an export means
the same wherever it is asked for. A class using it sets ``_engine`` and
``_experiment_id``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa

from . import parquet, telemetry, telemetry_stats
from .engine import Engine
from .progress import ProgressCallback


class ExperimentReads:
    """One experiment's telemetry as Arrow (raw, streamed, summarised, downsampled), and its Parquet export.

    Every read takes the same filters: ``trial_ids`` (one id or several),
    ``metrics`` (one name or several), ``start`` (inclusive) and ``end``
    (exclusive); a trial or metric without points simply has no rows. A
    malformed filter (a trial id that is not an int, an empty metric name,
    a start that is not a datetime) raises InvalidValueError.
    """

    _engine: Engine
    _experiment_id: str

    def telemetry_table(self, trial_ids: int | Iterable[int] | None = None, *,
                        metrics: str | Iterable[str] | None = None,
                        start: datetime | None = None, end: datetime | None = None) -> pa.Table:
        """Telemetry (experiment_id, trial_id, ts, metric, value) by trial id, ts, metric.

        ``trial_ids`` and ``metrics`` narrow it to some trials or metrics;
        ``start`` (inclusive) and ``end`` (exclusive) to a time range.
        ``value`` is numeric whenever any value is; values of mixed types add
        a ``value_json`` column (see ``mlos_store.values``).

        Raises:
            InvalidValueError: A malformed filter.
        """
        return telemetry.read_telemetry(self._engine, self._experiment_id, trial_ids,
                              metrics=metrics, start=start, end=end)

    def telemetry_reader(self, trial_ids: int | Iterable[int] | None = None, *,
                         metrics: str | Iterable[str] | None = None, start: datetime | None = None,
                         end: datetime | None = None, batch_size: int = 1_000_000) -> pa.RecordBatchReader:
        """``telemetry_table`` as a stream of record batches, read with bounded memory.

        Reading it whole gives exactly ``telemetry_table`` of the same filters.
        Until it is read through (or dropped), a shared store keeps its turn
        on the file, and other processes wait: read it promptly.

        Raises:
            InvalidValueError: A malformed filter, or ``batch_size`` not a positive int.
        """
        return telemetry.stream_telemetry(self._engine, self._experiment_id, trial_ids, metrics=metrics,
                                          start=start, end=end, batch_size=batch_size)

    def telemetry_summary(self, trial_ids: int | Iterable[int] | None = None, *,
                          metrics: str | Iterable[str] | None = None,
                          start: datetime | None = None, end: datetime | None = None) -> pa.Table:
        """Per trial and metric: count, min, max, mean, stddev, p50/p90/p95/p99, first_ts, last_ts.

        Statistics use the numeric view of each value (bools as 0/1) and
        leave NaN, strings and None out, which ``count`` still counts.
        Percentiles are exact (linear interpolation).

        Raises:
            InvalidValueError: A malformed filter.
        """
        return telemetry_stats.summary(self._engine, self._experiment_id, trial_ids, metrics=metrics,
                                       start=start, end=end)

    def telemetry_extents(self, trial_ids: int | Iterable[int] | None = None, *,
                          metrics: str | Iterable[str] | None = None,
                          start: datetime | None = None, end: datetime | None = None) -> pa.Table:
        """Per trial and metric: count, min, max, mean, first_ts, last_ts: ``telemetry_summary`` less its spread.

        The same rows and values as ``telemetry_summary`` without ``stddev``
        and the percentiles, which sort every point: several times cheaper
        over millions of points, for a view that needs counts, ranges and
        time spans only (the web view's statistics, a plot's extents).

        Raises:
            InvalidValueError: A malformed filter.
        """
        return telemetry_stats.extents(self._engine, self._experiment_id, trial_ids, metrics=metrics,
                                       start=start, end=end)

    def telemetry_downsample(self, bucket: timedelta, trial_ids: int | Iterable[int] | None = None, *,
                             metrics: str | Iterable[str] | None = None,
                             start: datetime | None = None, end: datetime | None = None) -> pa.Table:
        """Per trial, metric and epoch-aligned time bucket of width ``bucket``: count, mean, min, max.

        Buckets are aligned to the Unix epoch and labelled by their start, so
        the buckets of different trials line up.

        Raises:
            InvalidValueError: ``bucket`` is not a positive timedelta, or a malformed filter.
        """
        return telemetry_stats.downsample(self._engine, self._experiment_id, bucket, trial_ids,
                                          metrics=metrics, start=start, end=end)

    def telemetry_by_config(self, metric: str, *, start: datetime | None = None,
                            end: datetime | None = None) -> pa.Table:
        """One metric's statistics per tunable config, with ``config.*`` and mean ``result.*`` columns.

        The statistics are over all points of the config's trials; each
        ``result.*`` is the mean of a numeric result over its SUCCEEDED trials.

        Raises:
            InvalidValueError: ``metric`` is not a non-empty str, or a malformed time range.
        """
        return telemetry_stats.by_config(self._engine, self._experiment_id, metric, start=start, end=end)

    def export_parquet(self, path: str | os.PathLike[str], *, filesystem: Any = None, source: str | None = None,
                       progress: ProgressCallback | None = None) -> None:
        """Write this experiment (trials, configs, results, telemetry) into the Parquet lake at ``path``.

        ``path`` is a local folder, a URL (``s3://bucket/lake``), or a path
        in ``filesystem`` (a ``pyarrow.fs.FileSystem`` or an fsspec one).
        Exporting again writes only what changed: new telemetry as new
        files, a changed small table as one new file. ``source`` names this
        store in the lake (default: its host and file), so several stores
        export into one lake without touching each other's files.
        ``progress(done, total)`` is called as each dataset is written
        (``mlos_store.progress``).
        """
        parquet.export_experiment(self._engine, self._experiment_id, path, filesystem=filesystem, source=source,
                                  progress=progress)
