"""The comparison suite's workload, and the shape every measured backend takes.

One deterministic description of an autotuning campaign (trials, their
configurations, final statuses, results and telemetry), generated from a
seed so every backend in every round stores the same logical data. A
backend is any object with the methods of ``Backend``; the runner times
each method as one phase and never looks inside.

Telemetry is generated per trial on demand (``trial_telemetry``), so a
10,000 x 1,000 workload never holds its 10 M points in memory at once.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

import pyarrow as pa

EXPERIMENT_ID = "bench"
TELEMETRY_METRICS = ("cpu_pct", "mem_mb", "latency_ms", "throughput", "io_wait")
OBJECTIVES: dict[str, Literal["min", "max"]] = {"score": "min", "throughput": "max"}
RESULT_METRICS = ("score", "throughput", "p99_ms")
FINAL_STATUSES = ("SUCCEEDED", "FAILED", "CANCELED", "TIMED_OUT")
FINAL_STATUS_WEIGHTS = (0.85, 0.08, 0.04, 0.03)
COMPLETED_STATUSES = ("SUCCEEDED", "FAILED", "TIMED_OUT")  # what load() returns; CANCELED is left out
CATEGORIES = ("none", "lz4", "zstd", "snappy")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
SAMPLE_INTERVAL = timedelta(seconds=1)
GAP_BETWEEN_TRIALS = timedelta(seconds=5)


@dataclass(frozen=True)
class Tunable:
    """One tunable in the neutral form both APIs can be fed from."""

    name: str
    kind: str  # "int", "float" or "categorical"
    default: Any
    low: float | None = None
    high: float | None = None
    values: tuple[str, ...] = ()

    def mlos_bench_param(self) -> dict[str, Any]:
        """The tunable as one entry of a TunableGroups ``params`` config."""
        if self.kind == "categorical":
            return {"type": "categorical", "default": self.default, "values": list(self.values)}
        return {"type": self.kind, "default": self.default, "range": [self.low, self.high]}


@dataclass(frozen=True)
class TrialPlan:
    """What happens to one trial: ids are 1-based and equal to the plan's index + 1."""

    trial_id: int
    config: dict[str, Any]
    ts_start: datetime
    ts_end: datetime
    status: str  # one of FINAL_STATUSES
    results: dict[str, float] | None  # RESULT_METRICS for SUCCEEDED, else None


@dataclass(frozen=True)
class Workload:
    """N trials, M tunables, K telemetry points per trial over five metrics."""

    n_trials: int
    points_per_trial: int
    n_tunables: int = 8
    seed: int = 20261128
    tunables: tuple[Tunable, ...] = field(init=False)
    trials: tuple[TrialPlan, ...] = field(init=False)

    def __post_init__(self) -> None:
        if self.points_per_trial % len(TELEMETRY_METRICS):
            raise ValueError(f"points_per_trial must be a multiple of {len(TELEMETRY_METRICS)}")
        rng = random.Random(self.seed)
        tunables = tuple(_tunable(i) for i in range(self.n_tunables))
        object.__setattr__(self, "tunables", tunables)
        object.__setattr__(self, "trials", tuple(self._plan(i, rng) for i in range(self.n_trials)))

    @property
    def defaults(self) -> dict[str, Any]:
        return {t.name: t.default for t in self.tunables}

    @property
    def samples_per_trial(self) -> int:
        """Timestamps per trial; each carries one point of every telemetry metric."""
        return self.points_per_trial // len(TELEMETRY_METRICS)

    @property
    def total_points(self) -> int:
        return self.n_trials * self.points_per_trial

    @property
    def half_trial_id(self) -> int:
        """The ``last_trial_id`` of the ``load(last_trial_id=N/2)`` phase."""
        return self.n_trials // 2

    @property
    def pending_scan_time(self) -> datetime:
        """The ``timestamp`` of the pending-trial scan: every trial is scheduled at or before it."""
        return self.trials[-1].ts_start if self.trials else T0

    def expected_counts(self) -> dict[str, int]:
        """The count each phase must return, by phase name (the Backend method; ``load_half`` for N/2).

        ``reopen`` counts the trials a resumed scheduler sees: those ``load()``
        returns plus those ``pending_trials(pending_scan_time, running=True)``
        returns (none: every trial has ended by then).
        """
        completed = [t.trial_id for t in self.trials if t.status in COMPLETED_STATUSES]
        return {
            "create_trials": self.n_trials,
            "pending_scan": self.n_trials,
            "start_trials": self.n_trials,
            "ingest_telemetry": self.total_points,
            "finish_trials": self.n_trials,
            "load": len(completed),
            "load_half": sum(1 for i in completed if i > self.half_trial_id),
            "load_telemetry": self.total_points,
            "results_table": self.n_trials,
            "telemetry_stats": self.n_trials * len(TELEMETRY_METRICS) if self.points_per_trial else 0,
            "reopen": len(completed),
        }

    def mlos_bench_tunables_config(self) -> dict[str, Any]:
        """A TunableGroups config (one covariant group) declaring every tunable."""
        return {"bench": {"cost": 1, "params": {t.name: t.mlos_bench_param() for t in self.tunables}}}

    def trial_telemetry(self, trial: TrialPlan) -> pa.Table:
        """The trial's points: ``ts`` (UTC, one per second), ``metric``, ``value`` (float64).

        Rows are in (ts, metric) order, as a harness sampling a fixed set of
        metrics sends them. Deterministic for a given trial.
        """
        rng = random.Random(self.seed * 1_000_003 + trial.trial_id)
        samples = self.samples_per_trial
        stamps = [trial.ts_start + SAMPLE_INTERVAL * i for i in range(samples)]
        return pa.table({
            "ts": pa.array([ts for ts in stamps for _ in TELEMETRY_METRICS], pa.timestamp("us", tz="UTC")),
            "metric": pa.array([m for _ in stamps for m in TELEMETRY_METRICS], pa.string()),
            "value": pa.array([round(rng.uniform(0.0, 100.0), 3) for _ in range(samples * len(TELEMETRY_METRICS))],
                              pa.float64()),
        })

    def telemetry_tuples(self, trial: TrialPlan) -> list[tuple[datetime, str, float]]:
        """The same points in mlos_bench's ``(timestamp, metric, value)`` list form."""
        table = self.trial_telemetry(trial)
        return list(zip(table["ts"].to_pylist(), table["metric"].to_pylist(), table["value"].to_pylist()))

    def _plan(self, index: int, rng: random.Random) -> TrialPlan:
        duration = SAMPLE_INTERVAL * max(self.samples_per_trial, 1)
        ts_start = T0 + (duration + GAP_BETWEEN_TRIALS) * index
        status = rng.choices(FINAL_STATUSES, FINAL_STATUS_WEIGHTS)[0]
        results = None
        if status == "SUCCEEDED":
            results = {"score": round(rng.uniform(1, 100), 4), "throughput": round(rng.uniform(1e3, 1e5), 2),
                       "p99_ms": round(rng.uniform(0.5, 50), 3)}
        config = {t.name: _random_value(t, rng) for t in self.tunables}
        return TrialPlan(index + 1, config, ts_start, ts_start + duration, status, results)


def _tunable(index: int) -> Tunable:
    kind = ("int", "float", "categorical")[index % 3]
    name = f"{kind}_{index}"
    if kind == "int":
        return Tunable(name, kind, 64, 1, 1024)
    if kind == "float":
        return Tunable(name, kind, 0.5, 0.0, 1.0)
    return Tunable(name, kind, CATEGORIES[0], values=CATEGORIES)


def _random_value(tunable: Tunable, rng: random.Random) -> Any:
    if tunable.kind == "int":
        return rng.randint(int(tunable.low or 0), int(tunable.high or 0))
    if tunable.kind == "float":
        return round(rng.uniform(tunable.low or 0.0, tunable.high or 0.0), 4)
    return rng.choice(tunable.values)


class Backend(Protocol):
    """A store under test. The runner calls these in order, timing each as one phase.

    ``open`` is given a fresh directory per round; the backend puts its
    files there (``files`` lists them for the size-on-disk column). Each
    phase method covers the whole workload (a loop inside), uses only the
    backend's public API, and returns a count the runner checks is equal
    across backends (rows, points, trials), so a backend that skips work is
    caught. ``name`` is the column label, e.g. ``mlos_store``.

    ``ingest_telemetry`` is given each trial's points already generated
    (``Workload.trial_telemetry``), so generation is not timed; the runner
    may call it several times with slices of the trials (to bound memory,
    or to measure a slow backend on a subset) and sums the times. A
    backend whose API takes tuples converts inside the call.

    Two optional attributes let a slow backend be measured on part of the
    work, the rest extrapolated (and marked so in the output):
    ``ingest_point_budget: int`` limits the timed ingest to the first trials
    whose points fit the budget; the runner then passes the remaining
    batches to the untimed ``backfill_telemetry(batches) -> int`` (points
    stored), so the read phases see every point, and reports ingest as the
    time per point times all points. ``max_trials: int`` runs a larger
    workload at that many trials and scales the phase times linearly.
    Counts must equal ``Workload.expected_counts()`` of the size run.
    """

    name: str

    def open(self, directory: Path, workload: Workload) -> None: ...
    def create_trials(self) -> int: ...  # create the experiment and every trial (new_trial), in plan order
    def pending_scan(self) -> int: ...  # pending_trials(now, running=False) while all are still pending
    def start_trials(self) -> int: ...  # every trial to RUNNING at its ts_start
    def ingest_telemetry(self, batches: Sequence[tuple[TrialPlan, pa.Table]]) -> int: ...  # one call per trial
    def finish_trials(self) -> int: ...  # final status at ts_end, with results for SUCCEEDED
    def load(self, last_trial_id: int = -1) -> int: ...  # rows of Experiment.load(last_trial_id)
    def load_telemetry(self) -> int: ...  # points of load_telemetry for every trial
    def results_table(self) -> int: ...  # rows of the analysis side's results table
    def telemetry_stats(self) -> int: ...  # (trial, metric) rows of count/mean/min/max/p95
    def reopen(self) -> int: ...  # close, open again, resume the experiment; trials it sees
    def close(self) -> None: ...
    def files(self) -> list[Path]: ...
