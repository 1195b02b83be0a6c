"""Spark (local mode), polars and dask read a lake export_parquet wrote and agree with the store exactly;
a lake Spark writes in the documented layout imports; a wrong one is refused with nothing imported.

pyspark is the [spark] extra, installed by .ci/run: without it this module fails, it does not skip.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import dask.dataframe as dd
import polars as pl
import pyarrow.parquet as pq
import pytest
from conftest import T0
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from mlos_store import Experiment, InvalidValueError, Status, Storage
from mlos_store.lake import DATASETS, folder_key, root_manifest

SEC = timedelta(seconds=1)
EXPERIMENT = "007"  # Hive readers type-guess such a folder name as 7: the ids come from inside the files
TUNABLES = {"threads": 1, "ratio": 0.5, "mode": "a", "on": False}
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "spark_job.py"


def _java_home() -> None:
    """Spark needs Java 17 or later; point JAVA_HOME at this machine's if the environment names none."""
    if "JAVA_HOME" not in os.environ:
        found = sorted(glob.glob("/usr/lib/jvm/java-17-openjdk*")) + sorted(glob.glob("/usr/lib/jvm/*17*"))
        if found:
            os.environ["JAVA_HOME"] = found[0]


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    """One local session for the module (the JVM takes seconds to start)."""
    _java_home()
    session = (SparkSession.builder.master("local[1]").appName("mlos_store tests")
               .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS").getOrCreate())
    yield session
    session.stop()


@pytest.fixture(scope="module")
def job() -> ModuleType:
    """examples/spark_job.py, the job the README shows, run here so it cannot rot."""
    spec = importlib.util.spec_from_file_location("spark_job", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fill(storage: Storage) -> None:
    """Trials in several states, one config shared, values whose sums are exact in any order (multiples of 1/4),
    NaN, strings and None among the points (counted, left out of the statistics)."""
    with storage.experiment(experiment_id=EXPERIMENT, trial_id=1, root_env_config="env", description="spark",
                            tunables=TUNABLES, opt_targets={"score": "min"}) as exp:
        plans: list[dict[str, Any]] = [{"threads": 2}, {"threads": 4, "mode": "b", "on": True}, {"threads": 2}, {}]
        for n, plan in enumerate(plans):
            trial = exp.new_trial({**TUNABLES, **plan}, ts_start=T0 + n * SEC)
            if n == 3:
                continue  # PENDING: no telemetry, no results
            trial.update(Status.RUNNING, T0 + n * SEC)
            trial.update_telemetry(Status.RUNNING, T0, [
                (T0 + i * SEC, metric, value) for i in range(20)
                for metric, value in (("lat", (i * 7 % 13) / 4 + n), ("ops", i * (n + 1)),
                                      ("odd", float("nan") if i % 5 == 0 else i / 2), ("state", f"s{i % 3}"),
                                      ("gap", None))])
            if n < 2:
                trial.update(Status.SUCCEEDED, T0 + 30 * SEC, {"score": n + 0.25, "tput": 10 * n})
            else:
                trial.update(Status.FAILED, T0 + 30 * SEC)


def _experiment(storage: Storage) -> Experiment:
    found = storage.get_experiment_by_id(EXPERIMENT)
    assert found is not None
    return found


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Storage, Path]]:
    folder = tmp_path_factory.mktemp("spark")
    with Storage(folder / "store.duckdb") as storage:
        _fill(storage)
        _experiment(storage).export_parquet(folder / "lake")
        yield storage, folder / "lake"


def _summary(storage: Storage) -> list[dict[str, Any]]:
    columns = ["trial_id", "metric", "count", "min", "max", "mean", "p95"]
    rows: list[dict[str, Any]] = _experiment(storage).telemetry_summary().select(columns).to_pylist()
    return rows


def test_spark_computes_the_per_trial_statistics_of_the_store(spark: SparkSession, job: ModuleType,
                                                               stored: tuple[Storage, Path]) -> None:
    storage, lake = stored
    rows = [row.asDict() for row in job.telemetry_summary(spark, str(lake), EXPERIMENT).collect()]
    assert rows == _summary(storage)


def test_spark_computes_the_results_table_of_the_store(spark: SparkSession, job: ModuleType,
                                                       stored: tuple[Storage, Path]) -> None:
    storage, lake = stored
    table = job.results_table(spark, str(lake), EXPERIMENT)
    times = [F.unix_micros(c).alias(c) for c in ("ts_start", "ts_end")]  # timestamps as numbers: no local zone
    rows = [row.asDict() for row in table.select(*[F.col(f"`{c}`") if not c.startswith("ts_") else times.pop(0)
                                                   for c in table.columns]).collect()]
    expected = storage.experiments[EXPERIMENT].results_table
    assert table.columns == expected.column_names
    micros = {"ts_start", "ts_end"}
    assert rows == [{k: int(v.timestamp() * 1_000_000) if k in micros and v is not None else v
                     for k, v in row.items()} for row in expected.to_pylist()]


def test_polars_and_dask_read_the_lake_as_the_store(stored: tuple[Storage, Path]) -> None:
    storage, lake = stored
    points = pl.scan_parquet(lake / "telemetry" / "**" / "*.parquet", hive_partitioning=False).filter(
        pl.col("experiment_id") == EXPERIMENT)
    num = pl.when(pl.col("value").is_nan()).then(None).otherwise(pl.col("value"))
    summary = (points.with_columns(num.alias("num")).group_by("trial_id", "metric")
               .agg(pl.len().alias("count"), pl.col("num").min().alias("min"), pl.col("num").max().alias("max"),
                    pl.col("num").mean().alias("mean"),
                    pl.col("num").quantile(0.95, interpolation="linear").alias("p95"))
               .sort("trial_id", "metric").collect())
    assert summary.with_columns(pl.col("count").cast(pl.Int64)).to_dicts() == _summary(storage)
    frame = dd.read_parquet(str(lake / "telemetry"), dataset={"partitioning": None})
    frame = frame[frame.experiment_id == EXPERIMENT]
    frame["num"] = frame.value.where(~frame.value.isna())  # pandas skips NaN and None alike
    stats = frame.groupby(["trial_id", "metric"]).agg(count=("ts", "size"), min=("num", "min"), max=("num", "max"),
                                                      mean=("num", "mean")).compute().sort_index()
    assert [{"trial_id": t, "metric": m, **{k: None if v != v else v for k, v in row.items()}}
            for (t, m), row in stats.to_dict("index").items()] == [
        {k: row[k] for k in ("trial_id", "metric", "count", "min", "max", "mean")} for row in _summary(storage)]


# ---------------------------------------------------------------- a lake another tool writes


def _spark_lake(spark: SparkSession, source: Path, target: Path, change: Any = None) -> None:
    """Write the datasets of ``source`` again with Spark, as another tool following the README would:
    folders ``<dataset>/experiment_key=<key>/source=<key>/``, Spark's own file names, and the manifests."""
    ekey, skey = folder_key(EXPERIMENT), folder_key("spark-job")
    listed = {}
    for name in DATASETS:
        rows = spark.read.option("recursiveFileLookup", "true").parquet(str(source / name))
        if change is not None:
            rows = change(name, rows)
        folder = target / name / f"experiment_key={ekey}" / f"source={skey}"
        rows.coalesce(1).write.mode("overwrite").parquet(str(folder))
        files = [{"path": p.relative_to(target).as_posix(), "rows": pq.read_metadata(p).num_rows}
                 for p in sorted(folder.glob("part-*.parquet"))]
        listed[name] = {"rows": sum(f["rows"] for f in files), "files": files}
    (target / "_mlos_store.json").write_text(json.dumps(root_manifest()))
    (target / "_mlos_store" / skey).mkdir(parents=True)
    (target / "_mlos_store" / skey / f"{ekey}.json").write_text(json.dumps(
        {"format": "mlos_store lake", "layout_version": 2, "source": "spark-job", "source_key": skey,
         "experiment_id": EXPERIMENT, "experiment_key": ekey, "high_water_marks": {}, "datasets": listed}))


def test_a_lake_spark_writes_in_the_documented_layout_imports_exactly(spark: SparkSession, tmp_path: Path,
                                                                     stored: tuple[Storage, Path]) -> None:
    storage, lake = stored
    _spark_lake(spark, lake, tmp_path / "lake")
    with Storage() as target:
        assert target.import_parquet(tmp_path / "lake") == [EXPERIMENT]
        assert target.experiments[EXPERIMENT].results_table == storage.experiments[EXPERIMENT].results_table
        assert _points(target) == _points(storage)


def _points(storage: Storage) -> tuple[Any, list[str]]:
    """Every telemetry point as its repr (NaN equals NaN), and the table's schema."""
    table = _experiment(storage).telemetry_table()
    return table.schema, [repr(row) for row in table.to_pylist()]


def _wrong_type(name: str, rows: Any) -> Any:
    return rows.withColumn("trial_id", F.col("trial_id").cast("string")) if name == "telemetry" else rows


def _missing_column(name: str, rows: Any) -> Any:
    return rows.drop("value_int") if name == "trial_result" else rows


@pytest.mark.parametrize(("change", "message"), [
    (_wrong_type, r"telemetry/.*\.parquet' \(telemetry\) column 'trial_id' is string, layout 2 has int64; "
                  "nothing was imported"),
    (_missing_column, r"trial_result/.*\.parquet' \(trial_result\) has no column 'value_int'; nothing was imported"),
])
def test_a_spark_lake_of_another_shape_is_refused_and_nothing_imported(
        spark: SparkSession, tmp_path: Path, stored: tuple[Storage, Path], change: Any, message: str) -> None:
    _spark_lake(spark, stored[1], tmp_path / "lake", change)
    with Storage() as target:
        with pytest.raises(InvalidValueError, match=message):
            target.import_parquet(tmp_path / "lake")
        assert target.experiments == {}


def test_a_spark_lake_of_an_unknown_layout_version_is_refused(spark: SparkSession, tmp_path: Path,
                                                              stored: tuple[Storage, Path]) -> None:
    _spark_lake(spark, stored[1], tmp_path / "lake")
    root = tmp_path / "lake" / "_mlos_store.json"
    root.write_text(json.dumps({**json.loads(root.read_text()), "layout_version": 7}))
    with Storage() as target:
        with pytest.raises(InvalidValueError, match="has layout version 7, this mlos_store reads layout 2"):
            target.import_parquet(tmp_path / "lake")
        assert target.experiments == {}


def test_the_example_job_runs_as_a_script(stored: tuple[Storage, Path]) -> None:
    """``python examples/spark_job.py LAKE EXPERIMENT`` as the README says (its own local Spark)."""
    import subprocess

    _java_home()
    done = subprocess.run([sys.executable, str(EXAMPLE), str(stored[1]), EXPERIMENT], capture_output=True, text=True,
                          check=False, env={**os.environ, "PYSPARK_SUBMIT_ARGS": "--master local[1] pyspark-shell"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "|p95" in done.stdout and "|result.score|" in done.stdout.replace(" ", "")
