"""Telemetry analytics: per trial and metric summary, downsampling, and the per-config view."""

from __future__ import annotations

import math
import statistics
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import T0

from mlos_store import Experiment, InvalidValueError, Status, Storage, Trial

SEC = timedelta(seconds=1)
MS = timedelta(milliseconds=1)


def running_trial(experiment: Experiment, tunables: dict[str, Any] | None = None) -> Trial:
    trial = experiment.new_trial(tunables or {})
    trial.update(Status.RUNNING, T0)
    return trial


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default, DuckDB's quantile_cont)."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def expected_stats(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "max": max(values), "mean": statistics.fmean(values),
            "stddev": statistics.stdev(values), "p50": percentile(values, 0.5), "p90": percentile(values, 0.9),
            "p95": percentile(values, 0.95), "p99": percentile(values, 0.99)}


def assert_close(got: dict[str, Any], want: dict[str, float]) -> None:
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key


LATENCIES = [float((i * 37) % 101) for i in range(250)]


@pytest.fixture
def measured(experiment: Experiment) -> list[Trial]:
    """Two trials: 250 latency points 10 ms apart (the second's doubled) and a cpu metric with oddities."""
    first, second = running_trial(experiment), running_trial(experiment)
    for factor, trial in ((1, first), (2, second)):
        trial.update_telemetry(Status.RUNNING, T0, [(T0 + i * 10 * MS, "latency", v * factor)
                                                    for i, v in enumerate(LATENCIES)])
    first.update_telemetry(Status.RUNNING, T0, [(T0, "cpu", 1), (T0 + SEC, "cpu", 2.5), (T0 + 2 * SEC, "cpu", True),
                                                (T0 + 3 * SEC, "cpu", float("nan")), (T0 + 4 * SEC, "cpu", "busy"),
                                                (T0 + 5 * SEC, "cpu", None)])
    return [first, second]


def test_summary_per_trial_and_metric_matches_python_statistics(experiment: Experiment,
                                                               measured: list[Trial]) -> None:
    table = experiment.telemetry_summary()
    assert table.column_names == ["trial_id", "metric", "count", "min", "max", "mean", "stddev",
                                  "p50", "p90", "p95", "p99", "first_ts", "last_ts"]
    rows = table.to_pylist()
    first, second = (t.trial_id for t in measured)
    assert [(r["trial_id"], r["metric"]) for r in rows] == [(first, "cpu"), (first, "latency"), (second, "latency")]
    for row, factor in ((rows[1], 1), (rows[2], 2)):
        assert row["count"] == 250
        assert_close(row, expected_stats([v * factor for v in LATENCIES]))
        assert (row["first_ts"], row["last_ts"]) == (T0, T0 + 249 * 10 * MS)


def test_summary_counts_every_point_but_aggregates_only_numbers(experiment: Experiment,
                                                                measured: list[Trial]) -> None:
    """ints, floats and bools (as 0/1) are aggregated; NaN, strings and None only counted."""
    cpu = experiment.telemetry_summary(metrics="cpu").to_pylist()[0]
    assert cpu["count"] == 6
    assert_close(cpu, expected_stats([1.0, 2.5, 1.0]))
    assert (cpu["first_ts"], cpu["last_ts"]) == (T0, T0 + 5 * SEC)


EXTENT_COLUMNS = ["trial_id", "metric", "count", "min", "max", "mean", "first_ts", "last_ts"]


def test_extents_are_the_summary_without_its_spread(experiment: Experiment, measured: list[Trial]) -> None:
    first, second = (t.trial_id for t in measured)
    extents = experiment.telemetry_extents()
    assert extents.column_names == EXTENT_COLUMNS
    assert extents.to_pylist() == experiment.telemetry_summary().select(EXTENT_COLUMNS).to_pylist()
    window = experiment.telemetry_extents(first, metrics=["latency"], start=T0 + SEC, end=T0 + 2 * SEC)
    assert window.to_pylist() == experiment.telemetry_summary(
        first, metrics=["latency"], start=T0 + SEC, end=T0 + 2 * SEC).select(EXTENT_COLUMNS).to_pylist()
    assert experiment.telemetry_extents(second).column("trial_id").to_pylist() == [second]
    with pytest.raises(InvalidValueError, match="trial id must be an int"):
        experiment.telemetry_extents(["x"])  # type: ignore[list-item]


def test_summary_of_a_metric_without_numbers_has_null_statistics(experiment: Experiment) -> None:
    trial = running_trial(experiment)
    trial.update_telemetry(Status.RUNNING, T0, [(T0, "state", "idle"), (T0 + SEC, "state", "busy")])
    (row,) = experiment.telemetry_summary().to_pylist()
    assert row["count"] == 2
    assert [row[k] for k in ("min", "max", "mean", "stddev", "p50", "p99")] == [None] * 6


def test_summary_filters_like_telemetry_table(experiment: Experiment, measured: list[Trial]) -> None:
    first, second = (t.trial_id for t in measured)
    assert experiment.telemetry_summary(second).column("trial_id").to_pylist() == [second]
    window = experiment.telemetry_summary(first, metrics=["latency"], start=T0 + SEC, end=T0 + 2 * SEC).to_pylist()
    assert [r["count"] for r in window] == [100]
    assert_close(window[0], expected_stats(LATENCIES[100:200]))
    assert experiment.telemetry_summary(metrics=[]).num_rows == 0
    with pytest.raises(InvalidValueError, match="trial id must be an int"):
        experiment.telemetry_summary(["x"])  # type: ignore[list-item]


def test_downsample_buckets_points_by_epoch_aligned_width(experiment: Experiment, measured: list[Trial]) -> None:
    first = measured[0].trial_id
    table = experiment.telemetry_downsample(timedelta(milliseconds=500), first, metrics="latency")
    assert table.column_names == ["trial_id", "metric", "bucket", "count", "mean", "min", "max"]
    rows = table.to_pylist()
    # T0 is 12:00:00.123456, so the first 500 ms bucket starts at 12:00:00 and holds points 0..37
    offset = T0 - T0.replace(microsecond=0)
    assert rows[0]["bucket"] == T0.replace(microsecond=0)
    assert [r["bucket"] for r in rows] == [T0.replace(microsecond=0) + k * timedelta(milliseconds=500)
                                           for k in range(len(rows))]
    assert sum(r["count"] for r in rows) == 250
    for row in rows:
        members = [v for i, v in enumerate(LATENCIES)
                   if row["bucket"] <= T0 + i * 10 * MS < row["bucket"] + timedelta(milliseconds=500)]
        assert row["count"] == len(members)
        assert (row["min"], row["max"]) == (min(members), max(members))
        assert row["mean"] == pytest.approx(statistics.fmean(members), rel=1e-12)
    assert rows[0]["count"] == math.ceil((timedelta(milliseconds=500) - offset) / (10 * MS))


def test_downsample_a_million_points_to_a_thousand(storage: Storage, experiment: Experiment) -> None:
    import pyarrow as pa

    trial = running_trial(experiment)
    n = 1_000_000
    start = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)
    trial.update_telemetry(Status.RUNNING, T0, pa.table({
        "ts": pa.array(range(start, start + n), pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        "metric": pa.array(["lat"] * n), "value": pa.array(range(n), pa.float64())}))
    table = experiment.telemetry_downsample(timedelta(milliseconds=1), trial.trial_id)
    assert table.num_rows == 1_000
    assert table.column("count").to_pylist() == [1_000] * 1_000
    assert table.column("mean").to_pylist()[:2] == [499.5, 1499.5]


@pytest.mark.parametrize("bucket", [timedelta(0), timedelta(seconds=-1), 5, "1s", None])
def test_downsample_refuses_a_bad_bucket(experiment: Experiment, bucket: Any) -> None:
    with pytest.raises(InvalidValueError, match="bucket must be a positive timedelta, got"):
        experiment.telemetry_downsample(bucket)


def test_downsample_buckets_wider_than_a_day(experiment: Experiment, measured: list[Trial]) -> None:
    table = experiment.telemetry_downsample(timedelta(days=1, hours=1), metrics="latency")
    assert table.column("count").to_pylist() == [250, 250]
    day = timedelta(days=1, hours=1)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert table.column("bucket")[0].as_py() == epoch + ((T0 - epoch) // day) * day


def test_by_config_answers_which_config_has_the_lowest_p95(storage: Storage) -> None:
    with storage.experiment(experiment_id="tune", trial_id=1, root_env_config="", description="",
                            tunables={"threads": 1, "mode": "a"}, opt_targets={"score": "min"}) as exp:
        plan = [({"threads": 1, "mode": "a"}, 10.0), ({"threads": 4, "mode": "b"}, 2.0),
                ({"threads": 4, "mode": "b"}, 4.0), ({"threads": 8, "mode": "a"}, 6.0)]
        trials = []
        for n, (tunables, scale) in enumerate(plan):
            trial = running_trial(exp, tunables)
            trial.update_telemetry(Status.RUNNING, T0, [(T0 + i * MS, "latency", scale * (i % 20))
                                                        for i in range(100)] + [(T0, "cpu", 99.0)])
            if n != 3:
                trial.update(Status.SUCCEEDED, T0 + SEC, {"score": scale, "label": "x"})
            trials.append(trial)
        table = exp.telemetry_by_config("latency")
        assert table.column_names == ["tunable_config_id", "trials", "count", "min", "max", "mean", "stddev",
                                      "p50", "p90", "p95", "p99", "config.mode", "config.threads", "result.score"]
        rows = table.to_pylist()
        ids = [t.tunable_config_id for t in trials]
        assert [r["tunable_config_id"] for r in rows] == sorted(set(ids))
        by_id = {r["tunable_config_id"]: r for r in rows}
        shared = by_id[ids[1]]
        assert (shared["trials"], shared["count"]) == (2, 200)
        assert_close(shared, expected_stats([s * (i % 20) for s in (2.0, 4.0) for i in range(100)]))
        assert (shared["config.threads"], shared["config.mode"], shared["result.score"]) == (4, "b", 3.0)
        assert by_id[ids[3]]["result.score"] is None  # no SUCCEEDED trial of that config
        best = table.sort_by("p95").to_pylist()[0]
        assert (best["config.threads"], best["config.mode"]) == (4, "b")
        assert exp.telemetry_by_config("latency", start=T0 + 50 * MS).column("count").to_pylist() == [50, 100, 50]
        assert exp.telemetry_by_config("missing").num_rows == 0
        with pytest.raises(InvalidValueError, match="metric name must be a non-empty str"):
            exp.telemetry_by_config("")
