"""A Spark job over an mlos_store Parquet lake: per-trial statistics of every metric, and the results table.

Run it where Spark runs (``pip install 'mlos_store[spark]'`` brings pyspark;
mlos_store itself is not needed by the job)::

    spark-submit examples/spark_job.py s3a://bucket/lake redis-latency
    python examples/spark_job.py /shared/lake redis-latency       # local mode

It reads the lake as Spark lists it (every Parquet file under a dataset's
folder; files whose names start with ``_`` or ``.`` are skipped, as Spark
always does), takes ids from inside the files rather than from the
partition folders, and reads each value column by its ``value_kind``.
The statistics equal ``Experiment.telemetry_summary`` (NaN left out of min,
max, mean and p95, as the store does; ``count`` counts every point) and the
results table equals ``ExperimentData.results_table``.
"""

from __future__ import annotations

import sys

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F


def read(spark: SparkSession, lake: str, dataset: str, experiment_id: str) -> DataFrame:
    """One dataset's rows of one experiment. ``recursiveFileLookup`` skips partition discovery, so Spark never
    guesses the folders' types; ``experiment_id`` and ``trial_id`` are columns of every file."""
    rows = spark.read.option("recursiveFileLookup", "true").parquet(f"{lake.rstrip('/')}/{dataset}")
    return rows.where(F.col("experiment_id") == experiment_id)


def numeric(value_column: str = "value") -> Column:
    """The numeric view of a value, NaN as null (the store leaves NaN out of its statistics)."""
    return F.when(F.isnan(value_column), F.lit(None)).otherwise(F.col(value_column))


def telemetry_summary(spark: SparkSession, lake: str, experiment_id: str) -> DataFrame:
    """Per trial and metric: count, min, max, mean and the exact p95 of the numeric values."""
    points = read(spark, lake, "telemetry", experiment_id).withColumn("num", numeric())
    return (points.groupBy("trial_id", "metric")
            .agg(F.count(F.lit(1)).alias("count"), F.min("num").alias("min"), F.max("num").alias("max"),
                 F.avg("num").alias("mean"), F.percentile("num", 0.95).alias("p95"))
            .orderBy("trial_id", "metric"))


#: A value by its kind: ints and bools exact from value_int, floats from value, strings and JSON from value_text.
_TYPED = {"int": lambda: F.col("value_int"), "bool": lambda: F.col("value_int") != 0,
          "float": lambda: F.col("value"), "str": lambda: F.col("value_text"), "json": lambda: F.col("value_text")}


def widened(long: DataFrame, key: str, name: str, prefix: str) -> DataFrame:
    """Long (key, name, value columns) rows as one row per key with a ``<prefix><name>`` column per name,
    each typed by its values' kind (a name of several kinds: its numeric view)."""
    kinds: dict[str, set[str]] = {}
    for row in long.select(name, "value_kind").distinct().collect():
        kinds.setdefault(row[name], set()).add(row["value_kind"])
    columns = []
    for column, seen in sorted(kinds.items()):
        typed = seen - {"null"}
        value = _TYPED[typed.pop()]() if len(typed) == 1 else numeric()
        columns.append(F.first(F.when(F.col(name) == column, value), ignorenulls=True).alias(prefix + column))
    if not columns:
        return long.select(key).distinct()
    return long.groupBy(key).agg(*columns)


def results_table(spark: SparkSession, lake: str, experiment_id: str) -> DataFrame:
    """One row per trial: its ids, status and times, ``config.*`` (its tunables, joined on the config hash:
    config ids are local to the store that exported them) and ``result.*``."""
    trials = read(spark, lake, "trial", experiment_id)
    configs = read(spark, lake, "tunable_param", experiment_id).drop("config_id", "ts_created").distinct()
    results = read(spark, lake, "trial_result", experiment_id)
    by_config = Window.partitionBy("config_hash")
    table = (trials.withColumn("tunable_config_trial_group_id", F.min("trial_id").over(by_config))
             .join(widened(configs.where(F.col("tunable_name").isNotNull()), "config_hash", "tunable_name",
                           "config."), "config_hash", "left")
             .join(widened(results, "trial_id", "metric", "result."), "trial_id", "left"))
    first = ["trial_id", "ts_start", "ts_end", F.col("config_id").alias("tunable_config_id"),
             "tunable_config_trial_group_id", "status", "trial_runner_id"]
    wide = sorted(c for c in table.columns if c.startswith("config.")) + sorted(
        c for c in table.columns if c.startswith("result."))
    return table.select(*first, *[F.col(f"`{c}`") for c in wide]).orderBy("trial_id")


def main(argv: list[str]) -> None:
    lake, experiment_id = argv
    spark = (SparkSession.builder.appName("mlos_store lake").config("spark.sql.session.timeZone", "UTC")
             .getOrCreate())
    telemetry_summary(spark, lake, experiment_id).show(50, truncate=False)
    results_table(spark, lake, experiment_id).show(50, truncate=False)
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
