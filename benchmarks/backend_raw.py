"""The engine limit: raw DuckDB doing the comparison workload on bare tables.

The same transactions per call as mlos_store (one per new trial, per status
change, per trial's telemetry batch), Arrow inserts of telemetry, and the
equivalent reads, each converted to the same Python form the store's API
returns (``load`` to lists of dicts, ``load_telemetry`` to tuples), so the
ratio prices only what the store adds: checks, status history, typed
values, config deduplication, telemetry deduplication. Every statement is
in ``backend_raw.sql``; the file is held open from open to close (the
store's ``exclusive`` mode), the fastest way to drive DuckDB here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
from workload import RESULT_METRICS, TrialPlan, Workload

from mlos_store.catalog import Catalog, load_catalog
from mlos_store.engine import Engine

RAW_SQL = Path(__file__).with_name("backend_raw.sql")
FILE_NAME = "raw.duckdb"
#: The tunable columns of backend_raw.sql: the workload's default eight tunables.
TUNABLE_COLUMNS = ("int_0", "float_1", "categorical_2", "int_3", "float_4", "categorical_5", "int_6", "float_7")
NOT_ENDED = ["PENDING", "READY", "RUNNING"]


def raw_catalog() -> Catalog:
    """The store's catalog (the engine needs it to open a file) plus the raw queries."""
    return load_catalog().with_queries(RAW_SQL.read_text(), "benchmarks/backend_raw.sql")


class RawDuckDBBackend:
    """The Backend protocol on bare DuckDB tables; one file per round."""

    name = "raw_duckdb"

    def __init__(self) -> None:
        self._catalog = raw_catalog()
        self._path = Path()
        self._workload: Workload | None = None
        self._engine: Engine | None = None

    @property
    def workload(self) -> Workload:
        assert self._workload is not None, "open() first"
        return self._workload

    @property
    def engine(self) -> Engine:
        assert self._engine is not None, "open() first"
        return self._engine

    def open(self, directory: Path, workload: Workload) -> None:
        names = tuple(t.name for t in workload.tunables)
        if names != TUNABLE_COLUMNS:
            raise ValueError(f"backend_raw.sql has columns for the tunables {TUNABLE_COLUMNS}, not {names}")
        self._path = directory / FILE_NAME
        self._workload = workload
        self._engine = Engine(self._path, catalog=self._catalog, mode="exclusive")
        sql = self._catalog
        self.engine.execute(sql.raw_schema_trial)
        self.engine.execute(sql.raw_schema_telemetry)

    def create_trials(self) -> int:
        for plan in self.workload.trials:
            with self.engine.transaction():
                self.engine.execute(self._catalog.raw_trial_insert, trial_id=plan.trial_id,
                                    ts_start=plan.ts_start, **plan.config)
        return len(self.workload.trials)

    def pending_scan(self) -> int:
        return len(self._pending(["PENDING"]))

    def _pending(self, statuses: list[str]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.engine.fetch_table(
            self._catalog.raw_trial_list_pending, timestamp=self.workload.pending_scan_time,
            statuses=statuses).to_pylist()
        return rows

    def start_trials(self) -> int:
        for plan in self.workload.trials:
            with self.engine.transaction():
                self.engine.execute(self._catalog.raw_trial_start, trial_id=plan.trial_id, ts=plan.ts_start)
        return len(self.workload.trials)

    def ingest_telemetry(self, batches: Sequence[tuple[TrialPlan, pa.Table]]) -> int:
        for plan, points in batches:
            with self.engine.transaction():
                self.engine.ingest(self._catalog.raw_telemetry_insert, points, trial_id=plan.trial_id)
        return sum(points.num_rows for _, points in batches)

    def finish_trials(self) -> int:
        for plan in self.workload.trials:
            results = plan.results or {}
            with self.engine.transaction():
                self.engine.execute(self._catalog.raw_trial_end, trial_id=plan.trial_id, status=plan.status,
                                    ts=plan.ts_end, **{m: results.get(m) for m in RESULT_METRICS})
        return len(self.workload.trials)

    def load(self, last_trial_id: int = -1) -> int:
        rows = self.engine.fetch_table(self._catalog.raw_load, last_trial_id=last_trial_id).to_pylist()
        return len(load_lists(rows)[0])

    def load_telemetry(self) -> int:
        points = 0
        for plan in self.workload.trials:
            table = self.engine.fetch_table(self._catalog.raw_telemetry_list, trial_id=plan.trial_id)
            points += len(list(zip(table["ts"].to_pylist(), table["metric"].to_pylist(),
                                   table["value"].to_pylist())))
        return points

    def results_table(self) -> int:
        return int(self.engine.fetch_table(self._catalog.raw_results_table).num_rows)

    def telemetry_stats(self) -> int:
        return int(self.engine.fetch_table(self._catalog.raw_telemetry_stats).num_rows)

    def reopen(self) -> int:
        self.close()
        self._engine = Engine(self._path, catalog=self._catalog, mode="exclusive")
        completed = load_lists(self.engine.fetch_table(self._catalog.raw_load, last_trial_id=-1).to_pylist())
        return len(completed[0]) + len(self._pending(NOT_ENDED))

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    def files(self) -> list[Path]:
        return [self._path]


def load_lists(rows: list[dict[str, Any]]) -> tuple[list[int], list[dict[str, Any]], list[Any], list[str]]:
    """``(trial_ids, configs, scores, status)`` as ``Experiment.load`` returns them, from raw_load rows."""
    trial_ids = [row["trial_id"] for row in rows]
    configs = [{name: row[name] for name in TUNABLE_COLUMNS} for row in rows]
    scores = [{m: row[m] for m in RESULT_METRICS} if row["status"] == "SUCCEEDED" else None for row in rows]
    return trial_ids, configs, scores, [row["status"] for row in rows]
