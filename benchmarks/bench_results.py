"""results_table against one raw DuckDB PIVOT over the same tables.

A store file is filled in bulk (N trials of one experiment, T tunables of
mixed types over N/2 configs, M metrics per ended trial, one trial in twenty
pending). Each round then times, interleaved, the baseline (a single PIVOT
query returning the numeric view of every value, untyped) and
``storage.experiments[...].results_table`` (typed columns, absent/None
marks, JSON for mixed types). Prints the medians, their ratio and how many
queries results_table ran. ``--quick`` is the smoke-test size.

    python benchmarks/bench_results.py [--quick] [--trials N] [--tunables T] [--metrics M] [--rounds R]
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
from harness import arguments, interleaved, median, ratio_row, table_header

from mlos_store import Storage
from mlos_store.analysis import ExperimentData
from mlos_store.catalog import Catalog, load_catalog
from mlos_store.engine import Engine

BASELINE_SQL = Path(__file__).with_name("results_baseline.sql")


def bench_catalog() -> Catalog:
    """The store's own catalog plus the setup and baseline queries."""
    return load_catalog().with_queries(BASELINE_SQL.read_text(), "benchmarks/results_baseline.sql")


def build(path: Path, trials: int, tunables: int, metrics: int) -> None:
    """A store holding experiment 'bench', written in bulk (the trial API would take minutes)."""
    with Storage(path) as storage:
        names = {f"t{k:02d}": _default(k) for k in range(tunables)}
        with storage.experiment(experiment_id="bench", trial_id=1, root_env_config="", description="bench",
                                tunables=names, opt_targets={"m1": "min"}):
            pass
    engine = Engine(path, catalog=bench_catalog())
    sql = engine.catalog
    configs = max(1, trials // 2)
    with engine.transaction():
        engine.execute(sql.bench_configs_insert, configs=configs)
        engine.execute(sql.bench_params_insert, configs=configs, tunables=tunables)
        engine.execute(sql.bench_trials_insert, configs=configs, trials=trials)
        engine.execute(sql.bench_results_insert, trials=trials, metrics=metrics)
    engine.close()


def _default(k: int) -> Any:
    return {0: 0.0, 1: "v0"}.get(k % 4, 0)


class CountingEngine:
    """Counts the queries an ExperimentData runs through its engine."""

    def __init__(self, engine: Engine) -> None:
        self.calls = 0
        original = engine.fetch_table

        def counted(*args: Any, **kwargs: Any) -> pa.Table:
            self.calls += 1
            return original(*args, **kwargs)

        engine.fetch_table = counted  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__, rounds=5)
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--tunables", type=int, default=20)
    parser.add_argument("--metrics", type=int, default=5)
    args = parser.parse_args(argv)
    if args.quick:
        args.trials, args.tunables, args.metrics, args.rounds = 200, 5, 2, 1
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "results.duckdb"
        build(path, args.trials, args.tunables, args.metrics)
        baseline = Engine(path, read_only=True, catalog=bench_catalog())
        with Storage(path, read_only=True) as storage:
            data: ExperimentData = storage.experiments["bench"]
            counter = CountingEngine(storage.engine)

            def run_baseline(_: int) -> float:
                start = time.perf_counter()
                expected = baseline.fetch_table(baseline.catalog.baseline_results_pivot)
                assert expected.num_rows == args.trials
                return time.perf_counter() - start

            def run_store(_: int) -> float:
                counter.calls = 0
                start = time.perf_counter()
                table = data.results_table
                seconds = time.perf_counter() - start
                assert table.num_rows == args.trials
                assert table.num_columns == 7 + args.tunables + args.metrics
                return seconds

            times = interleaved(args.rounds, {"baseline": run_baseline, "mlos_store": run_store})
        baseline.close()
    print(f"results_table: {args.trials} trials x {args.tunables} tunables x {args.metrics} metrics, "
          f"median of {args.rounds} rounds; results_table ran {counter.calls} queries")
    table_header("read", "baseline s", "mlos_store s")
    ratio_row("results_table vs one PIVOT", median(times["baseline"]), median(times["mlos_store"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
