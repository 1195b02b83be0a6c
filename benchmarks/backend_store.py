"""mlos_store under test, driven only through its public API.

Storage / Experiment / Trial for the writes and ``load``, the analysis
side's ``results_table``, and ``telemetry_summary`` (the library's telemetry
statistics: count, min, max, mean, stddev, p50/p90/p95/p99 per trial and
metric, in one query) for the stats phase. The store is opened in its
default mode, as a user's ``Storage(path)`` is.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
from workload import EXPERIMENT_ID, OBJECTIVES, TrialPlan, Workload

from mlos_store import Experiment, Status, Storage, Trial

FILE_NAME = "mlos_store.duckdb"


class StoreBackend:
    """The Backend protocol on mlos_store; one file per round."""

    name = "mlos_store"

    def __init__(self) -> None:
        self._path = Path()
        self._workload: Workload | None = None
        self._storage: Storage | None = None
        self._experiment: Experiment | None = None
        self._trials: dict[int, Trial] = {}

    @property
    def workload(self) -> Workload:
        assert self._workload is not None, "open() first"
        return self._workload

    @property
    def experiment(self) -> Experiment:
        assert self._experiment is not None, "create_trials() first"
        return self._experiment

    def open(self, directory: Path, workload: Workload) -> None:
        self._path = directory / FILE_NAME
        self._workload = workload
        self._storage = Storage(self._path)

    def _enter_experiment(self) -> Experiment:
        assert self._storage is not None, "open() first"
        experiment = self._storage.experiment(
            experiment_id=EXPERIMENT_ID, trial_id=1, root_env_config="bench.jsonc",
            description="comparison benchmark", tunables=self.workload.defaults, opt_targets=OBJECTIVES)
        return experiment.__enter__()

    def create_trials(self) -> int:
        self._experiment = self._enter_experiment()
        for plan in self.workload.trials:
            self._trials[plan.trial_id] = self.experiment.new_trial(plan.config, ts_start=plan.ts_start)
        return len(self._trials)

    def pending_scan(self) -> int:
        return sum(1 for _ in self.experiment.pending_trials(self.workload.pending_scan_time, running=False))

    def start_trials(self) -> int:
        for plan in self.workload.trials:
            self._trials[plan.trial_id].update(Status.RUNNING, plan.ts_start)
        return len(self.workload.trials)

    def ingest_telemetry(self, batches: Sequence[tuple[TrialPlan, pa.Table]]) -> int:
        for plan, points in batches:
            self._trials[plan.trial_id].update_telemetry(Status.RUNNING, plan.ts_end, points)
        return sum(points.num_rows for _, points in batches)

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
        assert self._storage is not None
        return int(self._storage.experiments[EXPERIMENT_ID].results_table.num_rows)

    def telemetry_stats(self) -> int:
        return int(self.experiment.telemetry_summary().num_rows)

    def reopen(self) -> int:
        self.close()
        self._storage = Storage(self._path)
        self._experiment = self._enter_experiment()
        completed = len(self.experiment.load()[0])
        pending = sum(1 for _ in self.experiment.pending_trials(self.workload.pending_scan_time, running=True))
        return completed + pending

    def close(self) -> None:
        if self._experiment is not None:
            self._experiment.__exit__(None, None, None)
            self._experiment = None
        if self._storage is not None:
            self._storage.close()
            self._storage = None
        self._trials = {}

    def files(self) -> list[Path]:
        return [self._path]
