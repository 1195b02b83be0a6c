"""mlos_bench 0.6.2's ``SqlStorage`` under test, on DuckDB and on SQLite.

Driven through mlos_bench's public storage API, as a scheduler and an
analyst using it would: ``Storage.experiment`` and ``new_trial`` for the
writes, ``Trial.update`` / ``update_telemetry``, ``Experiment.load`` /
``load_telemetry`` / ``pending_trials``, and ``storage.experiments[...]``'s
``results_df`` for the results table. mlos_bench has no telemetry
statistics of its own, so the stats phase loads each trial's telemetry and
aggregates it with pandas (which mlos_bench already depends on).

Three things mlos_bench needs that a plain install does not give it, each
done here: an alembic implementation registered for the ``duckdb`` dialect
(its schema upgrade step looks one up by dialect name), and, because
creating an experiment records the git remote and commit of the root
config, a throwaway git repository with a remote in each round's directory.

``update_telemetry`` commits one transaction per point (about 100-700
points/s), so only the first ``ingest_point_budget`` points are timed; the
runner scales that time per point to the whole workload and hands the rest
to ``backfill_telemetry``, which stores exactly the rows
``update_telemetry`` would (one status row per trial, one telemetry row per
point, values as text) with one bulk insert per batch, outside the timing.
"""

from __future__ import annotations

import importlib.util
import subprocess
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas
import pyarrow as pa
from alembic.ddl.impl import DefaultImpl
from mlos_bench.environments.status import Status
from mlos_bench.storage.base_storage import Storage
from mlos_bench.storage.sql.schema import DbSchema
from mlos_bench.storage.sql.storage import SqlStorage
from mlos_bench.tunables.tunable_groups import TunableGroups
from mlos_bench.util import nullable, utcify_timestamp
from sqlalchemy.engine import Engine
from workload import EXPERIMENT_ID, OBJECTIVES, TrialPlan, Workload

DIALECTS = ("duckdb", "sqlite")
ROOT_CONFIG = "bench.jsonc"
GIT_REMOTE = "https://example.invalid/bench.git"
#: Points of ``update_telemetry`` timed per round: 10-20 s at the 1,000 x 1,000 rates measured here.
INGEST_POINT_BUDGET = {"duckdb": 2_000, "sqlite": 4_000}
#: Past this many trials, phase times are measured here and scaled linearly (``--large``).
MAX_TRIALS = 1_000
STATS_QUANTILE = 0.95


class _DuckDBAlembicImpl(DefaultImpl):
    """Registers the ``duckdb`` dialect with alembic, which mlos_bench's schema update needs.

    Defining the subclass is the registration (alembic keys its
    implementations by ``__dialect__``); the defaults suit the two small
    migrations mlos_bench 0.6.2 ships.
    """

    __dialect__ = "duckdb"


def backends() -> list[MlosBenchBackend]:
    """What the runner measures when mlos_bench is installed: one backend per dialect whose driver is
    installed (the [mlos-bench] extra has no DuckDB driver for SQLAlchemy; the [bench] extra adds it)."""
    return [MlosBenchBackend(dialect) for dialect in DIALECTS
            if dialect != "duckdb" or importlib.util.find_spec("duckdb_engine") is not None]


class MlosBenchBackend:
    """The Backend protocol on mlos_bench's ``SqlStorage``; one database file per round."""

    max_trials = MAX_TRIALS

    def __init__(self, dialect: str) -> None:
        if dialect not in DIALECTS:
            raise ValueError(f"unknown dialect {dialect!r}; expected one of {DIALECTS}")
        self.dialect = dialect
        self.name = f"mlos_bench-{dialect}"
        self.ingest_point_budget = INGEST_POINT_BUDGET[dialect]
        self._directory = Path()
        self._workload: Workload | None = None
        self._tunables: TunableGroups | None = None
        self._storage: SqlStorage | None = None
        self._experiment: Storage.Experiment | None = None
        self._trials: dict[int, Storage.Trial] = {}

    # ------------------------------------------------------------ set-up

    @property
    def workload(self) -> Workload:
        assert self._workload is not None, "open() first"
        return self._workload

    @property
    def storage(self) -> SqlStorage:
        assert self._storage is not None, "open() first"
        return self._storage

    @property
    def experiment(self) -> Storage.Experiment:
        assert self._experiment is not None, "create_trials() first"
        return self._experiment

    @property
    def database(self) -> Path:
        return self._directory / f"mlos_bench.{self.dialect}"

    def open(self, directory: Path, workload: Workload) -> None:
        self._directory = directory
        self._workload = workload
        self._tunables = TunableGroups(workload.mlos_bench_tunables_config())
        self.ingest_point_budget = ingest_budget(self.dialect, workload)
        make_git_repository(directory)
        self._storage = SqlStorage({"drivername": self.dialect, "database": str(self.database)})

    def _enter_experiment(self) -> Storage.Experiment:
        assert self._tunables is not None, "open() first"
        experiment = self.storage.experiment(
            experiment_id=EXPERIMENT_ID, trial_id=1, root_env_config=str(self._directory / ROOT_CONFIG),
            description="comparison benchmark", tunables=self._tunables, opt_targets=OBJECTIVES)
        return experiment.__enter__()

    def _tunables_for(self, plan: TrialPlan) -> TunableGroups:
        assert self._tunables is not None, "open() first"
        return self._tunables.copy().assign(plan.config)

    # ------------------------------------------------------------ phases

    def create_trials(self) -> int:
        self._experiment = self._enter_experiment()
        for plan in self.workload.trials:
            self._trials[plan.trial_id] = self.experiment.new_trial(self._tunables_for(plan), ts_start=plan.ts_start)
        return len(self._trials)

    def pending_scan(self) -> int:
        return sum(1 for _ in self.experiment.pending_trials(self.workload.pending_scan_time, running=False))

    def start_trials(self) -> int:
        for plan in self.workload.trials:
            self._trials[plan.trial_id].update(Status.RUNNING, plan.ts_start)
        return len(self.workload.trials)

    def ingest_telemetry(self, batches: Sequence[tuple[TrialPlan, pa.Table]]) -> int:
        stored = 0
        for plan, points in batches:
            rows = telemetry_tuples(points)
            self._trials[plan.trial_id].update_telemetry(Status.RUNNING, telemetry_status_time(plan), rows)
            stored += len(rows)
        return stored

    def backfill_telemetry(self, batches: Sequence[tuple[TrialPlan, pa.Table]]) -> int:
        """Store what ``update_telemetry`` would for these trials, in one bulk transaction (untimed)."""
        engine, schema = self._engine_and_schema()
        status_rows = [status_row(plan) for plan, _ in batches]
        point_rows = [row for plan, points in batches for row in telemetry_rows(plan, points)]
        with engine.begin() as conn:
            conn.execute(schema.trial_status.insert(), status_rows)
            if point_rows:
                conn.execute(schema.trial_telemetry.insert(), point_rows)
        return len(point_rows)

    def finish_trials(self) -> int:
        for plan in self.workload.trials:
            self._trials[plan.trial_id].update(Status[plan.status], plan.ts_end, plan.results)
        return len(self.workload.trials)

    def load(self, last_trial_id: int = -1) -> int:
        trial_ids, _configs, _scores, _status = self.experiment.load(last_trial_id)
        return len(trial_ids)

    def load_telemetry(self) -> int:
        return sum(len(self.experiment.load_telemetry(plan.trial_id)) for plan in self.workload.trials)

    def results_table(self) -> int:
        return len(self.storage.experiments[EXPERIMENT_ID].results_df)

    def telemetry_stats(self) -> int:
        """count/mean/min/max/p95 per (trial, metric), from every trial's ``load_telemetry``."""
        frames = [telemetry_frame(plan.trial_id, self.experiment.load_telemetry(plan.trial_id))
                  for plan in self.workload.trials]
        return len(telemetry_summary(frames))

    def reopen(self) -> int:
        """Close, open the file again and resume as a scheduler does: load() plus the unfinished trials."""
        self.close()
        self._storage = SqlStorage({"drivername": self.dialect, "database": str(self.database)})
        self._experiment = self._enter_experiment()
        completed = len(self.experiment.load()[0])
        unfinished = sum(1 for _ in self.experiment.pending_trials(self.workload.pending_scan_time, running=True))
        return completed + unfinished

    def close(self) -> None:
        if self._experiment is not None:
            self._experiment.__exit__(None, None, None)
            self._experiment = None
        if self._storage is not None:
            self._engine_and_schema()[0].dispose()
            self._storage = None
        self._trials = {}

    def files(self) -> list[Path]:
        """The database and any journal or write-ahead log next to it (not the git repository)."""
        base = self.database
        return [base] + [base.with_name(base.name + suffix) for suffix in (".wal", "-wal", "-journal", "-shm")
                         if base.with_name(base.name + suffix).exists()]

    def _engine_and_schema(self) -> tuple[Engine, DbSchema]:
        """SqlStorage's engine and table definitions: the non-public path only the backfill and close use."""
        return self.storage._engine, self.storage._schema


# ---------------------------------------------------------------- helpers


def ingest_budget(dialect: str, workload: Workload) -> int:
    """The timed points: the dialect's budget, but at most a tenth of a small workload (``--quick`` stays quick)."""
    return max(workload.points_per_trial, min(INGEST_POINT_BUDGET[dialect], workload.total_points // 10))


def make_git_repository(directory: Path) -> None:
    """A repository with one commit and a remote: mlos_bench records both for a new experiment."""
    (directory / ROOT_CONFIG).write_text("{}\n")
    commands = (["init", "-q"], ["add", ROOT_CONFIG],
                ["-c", "user.name=bench", "-c", "user.email=bench@example.invalid", "commit", "-q", "-m", "bench"],
                ["remote", "add", "origin", GIT_REMOTE])
    for args in commands:
        subprocess.run(["git", "-C", str(directory), *args], check=True, capture_output=True)


def telemetry_status_time(plan: TrialPlan) -> datetime:
    """The status timestamp of a trial's telemetry call: midway, clear of its start and end.

    mlos_bench records a status row per call, unique per (trial, timestamp);
    reusing the RUNNING or final update's timestamp would make its insert
    fail, which on DuckDB aborts the surrounding transaction.
    """
    return plan.ts_start + (plan.ts_end - plan.ts_start) / 2


def telemetry_tuples(points: pa.Table) -> list[tuple[datetime, str, float]]:
    """mlos_bench's ``(timestamp, metric, value)`` list form of a trial's Arrow points."""
    return list(zip(points["ts"].to_pylist(), points["metric"].to_pylist(), points["value"].to_pylist()))


def status_row(plan: TrialPlan) -> dict[str, Any]:
    """The ``trial_status`` row ``update_telemetry(RUNNING, ...)`` stores for the trial."""
    return {"exp_id": EXPERIMENT_ID, "trial_id": plan.trial_id,
            "ts": utcify_timestamp(telemetry_status_time(plan), origin="local"), "status": Status.RUNNING.name}


def telemetry_rows(plan: TrialPlan, points: pa.Table) -> list[dict[str, Any]]:
    """The ``trial_telemetry`` rows ``update_telemetry`` stores, converted as it converts them."""
    return [{"exp_id": EXPERIMENT_ID, "trial_id": plan.trial_id, "ts": utcify_timestamp(ts, origin="local"),
             "metric_id": metric, "metric_value": nullable(str, value)}
            for ts, metric, value in telemetry_tuples(points)]


def telemetry_frame(trial_id: int, telemetry: list[tuple[datetime, str, Any]]) -> pandas.DataFrame:
    """One trial's ``load_telemetry`` as a frame with numeric values (mlos_bench returns them as text)."""
    frame = pandas.DataFrame(telemetry, columns=["ts", "metric", "value"])
    frame["value"] = pandas.to_numeric(frame["value"])
    frame["trial_id"] = trial_id
    return frame


def telemetry_summary(frames: list[pandas.DataFrame]) -> pandas.DataFrame:
    """count, mean, min, max and p95 of the value per (trial, metric)."""
    if not frames:
        return pandas.DataFrame()
    values = pandas.concat(frames, ignore_index=True).groupby(["trial_id", "metric"])["value"]
    summary = values.agg(["count", "mean", "min", "max"])
    summary["p95"] = values.quantile(STATS_QUANTILE)
    return summary
