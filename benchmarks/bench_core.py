"""Core trial loop: mlos_store against bare DuckDB doing the same logical work.

Each round runs the baseline and the store side by side on fresh files:
N trials (new, RUNNING, K telemetry points as Arrow, SUCCEEDED with a score),
then ``load()`` and every trial's telemetry. Prints the median of each phase
and the ratio store / baseline (the price of checks, history, typed values
and deduplication). ``--quick`` is the smoke-test size.

    python benchmarks/bench_core.py [--quick] [--trials N] [--points K] [--rounds R]
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
from harness import arguments, interleaved, median, ratio_row, table_header

from mlos_store import Status, Storage
from mlos_store.catalog import Catalog, load_catalog
from mlos_store.engine import Engine

BASELINE_SQL = Path(__file__).with_name("baseline.sql")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
PHASES = ("trial loop", "load", "telemetry reads")


def telemetry(points: int) -> pa.Table:
    stamps = [T0 + timedelta(milliseconds=i) for i in range(points // 4)]
    return pa.table({
        "ts": pa.array(stamps * 4, pa.timestamp("us", tz="UTC")),
        "metric": [m for m in ("cpu", "mem", "lat", "tput") for _ in stamps],
        "value": [float(i % 97) for i in range(len(stamps) * 4)],
    })


def run_store(path: Path, trials: int, points: pa.Table) -> dict[str, float]:
    times: dict[str, float] = {}
    with Storage(path) as storage:
        exp = storage.experiment(experiment_id="bench", trial_id=1, root_env_config="", description="",
                                 tunables={"x": 0, "y": 0.0}, opt_targets={"score": "min"})
        with exp:
            start = time.perf_counter()
            for i in range(trials):
                trial = exp.new_trial({"x": i, "y": i / 3}, ts_start=T0)
                trial.update(Status.RUNNING, T0)
                trial.update_telemetry(Status.RUNNING, T0, points)
                trial.update(Status.SUCCEEDED, T0, {"score": float(i)})
            times["trial loop"] = time.perf_counter() - start
            start = time.perf_counter()
            assert len(exp.load()[0]) == trials
            times["load"] = time.perf_counter() - start
            start = time.perf_counter()
            for trial_id in range(1, trials + 1):
                exp.telemetry_table(trial_id)
            times["telemetry reads"] = time.perf_counter() - start
    return times


def run_baseline(path: Path, trials: int, points: pa.Table, catalog: Catalog) -> dict[str, float]:
    times: dict[str, float] = {}
    engine = Engine(path, catalog=catalog)
    sql = engine.catalog
    engine.execute(sql.baseline_schema)
    engine.execute(sql.baseline_telemetry_schema)
    start = time.perf_counter()
    for i in range(trials):
        with engine.transaction():
            engine.execute(sql.baseline_trial_insert, trial_id=i + 1, x=i, y=i / 3, ts=T0)
        with engine.transaction():
            engine.execute(sql.baseline_trial_start, trial_id=i + 1, ts=T0)
        with engine.transaction():
            engine.ingest(sql.baseline_telemetry_insert, points, trial_id=i + 1)
        with engine.transaction():
            engine.execute(sql.baseline_trial_end, trial_id=i + 1, ts=T0, score=float(i))
    times["trial loop"] = time.perf_counter() - start
    start = time.perf_counter()
    assert engine.fetch_table(sql.baseline_load).num_rows == trials
    times["load"] = time.perf_counter() - start
    start = time.perf_counter()
    for trial_id in range(1, trials + 1):
        engine.fetch_table(sql.baseline_telemetry_list, trial_id=trial_id)
    times["telemetry reads"] = time.perf_counter() - start
    engine.close()
    return times


def baseline_catalog() -> Catalog:
    """The store's own catalog (so the baseline opens a store file) plus the baseline queries."""
    return load_catalog().with_queries(BASELINE_SQL.read_text(), "benchmarks/baseline.sql")


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__, rounds=3)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--points", type=int, default=4_000)
    args = parser.parse_args(argv)
    if args.quick:
        args.trials, args.points, args.rounds = 10, 400, 1
    points = telemetry(args.points)
    catalog = baseline_catalog()
    runners: dict[str, Callable[[Path], dict[str, float]]] = {
        "baseline": lambda p: run_baseline(p, args.trials, points, catalog),
        "mlos_store": lambda p: run_store(p, args.trials, points),
    }

    def in_fresh_file(name: str) -> Callable[[int], dict[str, float]]:
        def run(round_no: int) -> dict[str, float]:
            with tempfile.TemporaryDirectory() as tmp:
                return runners[name](Path(tmp) / f"{name}-{round_no}.duckdb")
        return run

    results = interleaved(args.rounds, {name: in_fresh_file(name) for name in runners})
    print(f"{args.trials} trials x {points.num_rows} telemetry points, median of {args.rounds} rounds")
    table_header("phase", "baseline s", "mlos_store s")
    for phase in PHASES:
        ratio_row(phase, median(r[phase] for r in results["baseline"]), median(r[phase] for r in results["mlos_store"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
