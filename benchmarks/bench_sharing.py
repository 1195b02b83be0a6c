"""The cost of the shared connection mode against a held-open (exclusive) connection.

Each round runs, on fresh files and interleaved, the same trial loop (new
trial, RUNNING, K telemetry points as Arrow, SUCCEEDED with a score):

* baseline: one process, ``mode="exclusive"`` (the file held from open to close);
* shared: one process, ``mode="shared"`` (the default: the file kept between
  operations while nobody waits);
* shared, a turn per operation: ``linger=0``, so every operation takes the
  OS lock, attaches, works and detaches (what each operation costs when
  other processes are always waiting);
* W processes sharing one file, N / W trials each, against the baseline
  doing all N trials alone (throughput of parallel runners on one file).

Prints the median of each and the ratio to the baseline. ``--quick`` is the
smoke-test size.

    python benchmarks/bench_sharing.py [--quick] [--trials N] [--points K] [--rounds R] [--workers W]
"""

from __future__ import annotations

import multiprocessing
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Any

import pyarrow as pa
from harness import arguments, interleaved, median, ratio_row, table_header

from mlos_store import Status, Storage

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def telemetry(points: int) -> pa.Table:
    stamps = [T0 + timedelta(milliseconds=i) for i in range(points)]
    return pa.table({"ts": pa.array(stamps, pa.timestamp("us", tz="UTC")), "metric": ["cpu"] * points,
                     "value": [float(i % 97) for i in range(points)]})


def trial_loop(path: str, first: int, trials: int, points: int, settings: dict[str, Any]) -> float:
    """Run ``trials`` trials on the store at ``path``; seconds taken, opening included."""
    batch = telemetry(points)
    start = time.perf_counter()
    with Storage(path, **settings) as storage:
        with storage.experiment(experiment_id="bench", trial_id=1, root_env_config="", description="",
                                tunables={"x": 0}, opt_targets={"score": "min"}) as exp:
            for x in range(first, first + trials):
                trial = exp.new_trial({"x": x}, ts_start=T0)
                trial.update(Status.RUNNING, T0)
                trial.update_telemetry(Status.RUNNING, T0, batch)
                trial.update(Status.SUCCEEDED, T0, {"score": float(x)})
    return time.perf_counter() - start


def parallel(pool: Pool, path: str, workers: int, trials: int, points: int) -> float:
    share = trials // workers
    start = time.perf_counter()
    pool.starmap(trial_loop, [(path, w * share, share, points, {}) for w in range(workers)])
    return time.perf_counter() - start


def count_trials(path: str) -> int:
    with Storage(path, read_only=True) as storage:
        exp = storage.experiment(experiment_id="bench", trial_id=1, root_env_config="", description="",
                                 tunables={"x": 0}, opt_targets={"score": "min"})
        return len(exp.load()[0])


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__, rounds=3)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--points", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args(argv)
    if args.quick:
        args.trials, args.points, args.rounds, args.workers = 8, 100, 1, 2
    trials = args.trials // args.workers * args.workers
    pool: Pool | None = None  # started below, before any run

    def parallel_run(path: str) -> float:
        assert pool is not None
        return parallel(pool, path, args.workers, trials, args.points)

    runs: dict[str, Callable[[str], float]] = {
        "baseline": lambda p: trial_loop(p, 0, trials, args.points, {"mode": "exclusive"}),
        "1 process, shared": lambda p: trial_loop(p, 0, trials, args.points, {}),
        "1 process, shared, a turn per operation": lambda p: trial_loop(p, 0, trials, args.points, {"linger": 0}),
        f"{args.workers} processes, shared": parallel_run,
    }

    def in_fresh_file(name: str) -> Callable[[int], float]:
        def run(round_no: int) -> float:
            with tempfile.TemporaryDirectory() as tmp:
                path = str(Path(tmp) / f"round{round_no}.duckdb")
                seconds = runs[name](path)
                assert count_trials(path) == trials, name
                return seconds
        return run

    with multiprocessing.get_context("spawn").Pool(args.workers) as started:
        pool = started
        pool.starmap(time.sleep, [(0,)] * args.workers)  # workers started and warm before timing
        seconds = interleaved(args.rounds, {name: in_fresh_file(name) for name in runs})
    print(f"{trials} trials x {args.points} telemetry points, median of {args.rounds} rounds; "
          f"baseline: one process, mode='exclusive'")
    table_header("run", "baseline s", "run s")
    for name in list(runs)[1:]:
        ratio_row(name, median(seconds["baseline"]), median(seconds[name]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
