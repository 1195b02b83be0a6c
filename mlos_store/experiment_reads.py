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

import pyarrow as pa

from . import parquet, telemetry, telemetry_stats
from .engine import Engine
from .progress import ProgressCallback


class ExperimentReads:
    """One experiment's telemetry as Arrow (raw, streamed, summarised, downsampled), and its Parquet export."""

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
        """
        return telemetry.read_telemetry(self._engine, self._experiment_id, trial_ids,
                              metrics=metrics, start=start, end=end)

    def telemetry_reader(self, trial_ids: int | Iterable[int] | None = None, *,
                         metrics: str | Iterable[str] | None = None, start: datetime | None = None,
                         end: datetime | None = None, batch_size: int = 1_000_000) -> pa.RecordBatchReader:
        """``telemetry_table`` as a stream of record batches, read with bounded memory.

        Reading it whole gives exactly ``telemetry_table`` of the same filters.
        """
        return telemetry.stream_telemetry(self._engine, self._experiment_id, trial_ids, metrics=metrics,
                                          start=start, end=end, batch_size=batch_size)

    def telemetry_summary(self, trial_ids: int | Iterable[int] | None = None, *,
                          metrics: str | Iterable[str] | None = None,
                          start: datetime | None = None, end: datetime | None = None) -> pa.Table:
        """Per trial and metric: count, min, max, mean, stddev, p50/p90/p95/p99, first_ts, last_ts."""
        return telemetry_stats.summary(self._engine, self._experiment_id, trial_ids, metrics=metrics,
                                       start=start, end=end)

    def telemetry_downsample(self, bucket: timedelta, trial_ids: int | Iterable[int] | None = None, *,
                             metrics: str | Iterable[str] | None = None,
                             start: datetime | None = None, end: datetime | None = None) -> pa.Table:
        """Per trial, metric and epoch-aligned time bucket of width ``bucket``: count, mean, min, max."""
        return telemetry_stats.downsample(self._engine, self._experiment_id, bucket, trial_ids,
                                          metrics=metrics, start=start, end=end)

    def telemetry_by_config(self, metric: str, *, start: datetime | None = None,
                            end: datetime | None = None) -> pa.Table:
        """One metric's statistics per tunable config, with ``config.*`` and mean ``result.*`` columns."""
        return telemetry_stats.by_config(self._engine, self._experiment_id, metric, start=start, end=end)

    def export_parquet(self, path: str | os.PathLike[str], *, progress: ProgressCallback | None = None) -> None:
        """Write this experiment (trials, configs, results, telemetry) to a Hive-layout Parquet dataset.

        ``progress(done, total)`` is called as each table is written (``mlos_store.progress``).
        """
        parquet.export_experiment(self._engine, self._experiment_id, path, progress=progress)
