"""Importing a shard file: Storage.import_store against bare INSERT ... SELECT from the attached file.

A shard (N trials x K telemetry points, written through the store's API)
is built once. Each round then imports it into a fresh store file twice,
interleaved: the baseline attaches it and copies every table with one bare
``INSERT ... SELECT`` each in one transaction (``import_baseline.sql``); the
candidate calls ``Storage.import_store`` (conflict checks, config id mapping,
deduplication, one statement per table too). Prints the medians and the
ratio candidate / baseline. ``--quick`` is the smoke-test size.

    python benchmarks/bench_import.py [--quick] [--trials N] [--points K] [--rounds R]
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
from harness import arguments, interleaved, median, ratio_row, table_header

from mlos_store import Status, Storage
from mlos_store.catalog import Catalog, load_catalog
from mlos_store.engine import Engine

BASELINE_SQL = Path(__file__).with_name("import_baseline.sql")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
TABLES = ("experiment", "objective", "experiment_tunable", "tunable_config", "tunable_param", "trial",
          "trial_param", "trial_status", "trial_result", "trial_telemetry")


def telemetry(points: int) -> pa.Table:
    stamps = [T0 + timedelta(milliseconds=i) for i in range(points // 4)]
    return pa.table({
        "ts": pa.array(stamps * 4, pa.timestamp("us", tz="UTC")),
        "metric": [m for m in ("cpu", "mem", "lat", "tput") for _ in stamps],
        "value": [float(i % 97) for i in range(len(stamps) * 4)],
    })


def build_shard(path: Path, trials: int, points: int) -> None:
    """A shard as one machine would write it: every trial run to the end with its telemetry."""
    series = telemetry(points)
    with Storage(path) as storage:
        exp = storage.experiment(experiment_id="bench", trial_id=1, root_env_config="", description="",
                                 tunables={"x": 0, "y": 0.0}, opt_targets={"score": "min"})
        with exp:
            for i in range(trials):
                trial = exp.new_trial({"x": i % 50, "y": i / 3}, ts_start=T0, config={"rep": i % 3})
                trial.update(Status.RUNNING, T0)
                trial.update_telemetry(Status.RUNNING, T0, series)
                trial.update(Status.SUCCEEDED, T0, {"score": float(i)})


def run_baseline(dest: Path, shard: Path, catalog: Catalog) -> float:
    engine = Engine(dest, catalog=catalog)
    sql = engine.catalog
    start = time.perf_counter()
    with engine.attached(sql.import_store_attach, sql.import_store_detach, str(shard)), engine.transaction():
        for table in TABLES:
            engine.execute(getattr(sql, f"baseline_copy_{table}"))
    seconds = time.perf_counter() - start
    engine.close()
    return seconds


def run_store(dest: Path, shard: Path, trials: int) -> float:
    with Storage(dest) as storage:
        start = time.perf_counter()
        report = storage.import_store(shard)
        seconds = time.perf_counter() - start
    assert report.new_trials == trials
    return seconds


def baseline_catalog() -> Catalog:
    """The store's own catalog (so the baseline copies into a store file) plus the baseline queries."""
    return load_catalog().with_queries(BASELINE_SQL.read_text(), "benchmarks/import_baseline.sql")


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__, rounds=5)
    parser.add_argument("--trials", type=int, default=1_000)
    parser.add_argument("--points", type=int, default=1_000)
    args = parser.parse_args(argv)
    if args.quick:
        args.trials, args.points, args.rounds = 20, 200, 1
    catalog = baseline_catalog()
    with tempfile.TemporaryDirectory() as tmp:
        shard = Path(tmp) / "shard.duckdb"
        start = time.perf_counter()
        build_shard(shard, args.trials, args.points)
        print(f"shard built in {time.perf_counter() - start:.1f} s")
        results = interleaved(args.rounds, {  # a fresh destination file each time
            "baseline": lambda n: run_baseline(Path(tmp) / f"baseline-{n}.duckdb", shard, catalog),
            "mlos_store": lambda n: run_store(Path(tmp) / f"store-{n}.duckdb", shard, args.trials),
        })
    print(f"import of {args.trials} trials x {args.points} telemetry points, median of {args.rounds} rounds")
    table_header("phase", "baseline s", "mlos_store s")
    ratio_row("import", median(results["baseline"]), median(results["mlos_store"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
