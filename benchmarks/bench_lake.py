"""The Parquet lake: incremental vs full export, and Spark (local mode) over the lake vs DuckDB on the store.

A store of N trials x K telemetry points is built once (bulk ingest). Each
round adds 1% more trials, then exports twice, interleaved: the baseline a
full export into a fresh folder, the candidate an incremental export into
the standing lake (only the new points and the changed small tables).
Then, if pyspark is installed: per-trial per-metric count/min/max/mean/p95
by ``examples/spark_job.py`` over the lake (Spark local mode, session
already started) against ``telemetry_summary`` on the store file; and
Spark's file discovery (listing and footers, ``spark.read...parquet``) on
this layout against the same points in one file per trial (layout 1).
Medians; ratio = candidate / baseline (lower is faster for the candidate).

    python benchmarks/bench_lake.py [--quick] [--trials N] [--points K] [--rounds R]
"""

from __future__ import annotations

import argparse
import functools
import glob
import importlib.util
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds

from mlos_store import Status, Storage

T0 = datetime(2026, 1, 1, tzinfo=UTC)
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "spark_job.py"


def add_trials(storage: Storage, trials: int, points: int) -> None:
    """``trials`` finished trials with ``points`` telemetry points each (4 metrics), one bulk ingest."""
    with storage.experiment(experiment_id="bench", trial_id=1, root_env_config="", description="",
                            tunables={"x": 0}, opt_targets={"score": "min"}) as exp:
        ids: list[int] = []
        for _ in range(trials):
            trial = exp.new_trial({"x": len(ids) % 10}, ts_start=T0)
            trial.update(Status.SUCCEEDED, T0 + timedelta(seconds=1), {"score": 1.0})
            ids.append(trial.trial_id)
        per = points // 4
        stamps = pa.array([T0 + timedelta(milliseconds=i) for i in range(per)] * 4 * len(ids),
                          pa.timestamp("us", tz="UTC"))
        exp.ingest_telemetry(pa.table({
            "trial_id": pa.array([t for t in ids for _ in range(per * 4)], pa.int64()),
            "ts": stamps,
            "metric": [m for _ in ids for m in ("cpu", "mem", "lat", "tput") for _ in range(per)],
            "value": [float(i % 97) for i in range(len(ids) * per * 4)]}))


def timed(call: Callable[[], Any]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def row(name: str, baseline: list[float], candidate: list[float]) -> None:
    b, c = statistics.median(baseline), statistics.median(candidate)
    print(f"| {name} | {b:.3f} s | {c:.3f} s | {c / b:.2f}x |")


def spark_session() -> Any:
    if "JAVA_HOME" not in os.environ:
        found = sorted(glob.glob("/usr/lib/jvm/java-17-openjdk*"))
        if found:
            os.environ["JAVA_HOME"] = found[0]
    from pyspark.sql import SparkSession

    return (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "4").config("spark.sql.session.timeZone", "UTC").getOrCreate())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke-test size")
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    trials, points, rounds = (100, 40, 2) if args.quick else (args.trials, args.points, args.rounds)
    step = max(1, trials // 100)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with Storage(folder / "store.duckdb", mode="exclusive") as storage:
            for done in range(0, trials, 500):  # in slices: bounded memory for the Python lists
                add_trials(storage, min(500, trials - done), points)
            exp = storage.get_experiment_by_id("bench")
            assert exp is not None
            lake = folder / "lake"
            exp.export_parquet(lake)
            full, incremental = [], []
            for n in range(rounds):
                add_trials(storage, step, points)
                full.append(timed(functools.partial(exp.export_parquet, folder / f"full{n}")))
                incremental.append(timed(lambda: exp.export_parquet(lake)))
                shutil.rmtree(folder / f"full{n}")
            files = len(list((lake / "telemetry").rglob("*.parquet")))
            print(f"{trials} trials x {points} points, +1% ({step} trials) per round, {rounds} rounds; "
                  f"the lake holds {files} telemetry file(s)")
            print("| measure | baseline | candidate | ratio |\n|---|---:|---:|---:|")
            row("export after +1%: full (baseline) vs incremental", full, incremental)
            spark_rows(storage, lake, folder, rounds)


def spark_rows(storage: Storage, lake: Path, folder: Path, rounds: int) -> None:
    """Spark over the lake vs DuckDB on the store; Spark's discovery of this layout vs one file per trial."""
    if importlib.util.find_spec("pyspark") is None:
        print("(pyspark not installed: pip install -e '.[spark]' for the Spark rows)")
        return
    spec = importlib.util.spec_from_file_location("spark_job", EXAMPLE)
    assert spec is not None and spec.loader is not None
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    per_trial = folder / "per_trial"  # the same points, one file per trial (layout 1's telemetry)
    points = ds.dataset(lake / "telemetry", format="parquet", partitioning=None)
    ds.write_dataset(points, per_trial, format="parquet", partitioning=["trial_id"], partitioning_flavor="hive",
                     max_partitions=1 << 20)
    spark = spark_session()
    exp = storage.get_experiment_by_id("bench")
    assert exp is not None
    try:
        job.telemetry_summary(spark, str(lake), "bench").collect()  # warm the JVM
        duck, sparked, layout1, layout2 = [], [], [], []
        for _ in range(rounds):
            duck.append(timed(exp.telemetry_summary))
            sparked.append(timed(lambda: job.telemetry_summary(spark, str(lake), "bench").collect()))
            layout1.append(timed(lambda: spark.read.parquet(str(per_trial)).count()))
            layout2.append(timed(lambda: spark.read.option("recursiveFileLookup", "true")
                                 .parquet(str(lake / "telemetry")).count()))
        row("per-trial statistics: DuckDB telemetry_summary (baseline) vs Spark local over the lake", duck, sparked)
        row("Spark discovery + count: one file per trial (baseline) vs this layout", layout1, layout2)
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
