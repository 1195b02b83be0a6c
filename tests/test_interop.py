"""The Arrow tables work as they are in pandas, polars and DuckDB: names, types and zones survive."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, timedelta

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from conftest import T0

from mlos_store import ExperimentData, Status, Storage


@pytest.fixture(scope="module")
def data() -> Iterator[ExperimentData]:
    """Three trials: ints, floats, bools, strings, a mixed-type tunable, a result one trial lacks, a failure.

    Telemetry: cpu every 0.25 s (microsecond timestamps) for trials 1 and 2,
    and a string-valued 'state' in trial 2 (so its values are mixed).
    """
    with Storage() as storage:
        exp = storage.experiment(experiment_id="interop", trial_id=1, root_env_config="env.jsonc", description="",
                                 tunables={"threads": 4, "mode": "a", "ratio": 0.5, "fast": False, "size": None},
                                 opt_targets={"latency": "min"})
        with exp:
            first = exp.new_trial({"threads": 2, "mode": "b", "size": 1}, ts_start=T0)
            second = exp.new_trial({"threads": 8, "fast": True, "size": "big"}, ts_start=T0 + timedelta(seconds=5))
            third = exp.new_trial({"ratio": 0.25}, ts_start=T0 + timedelta(seconds=9))
            for n, trial in enumerate((first, second)):
                start = T0 + timedelta(seconds=5 * n)
                trial.update_telemetry(Status.RUNNING, start, [
                    (start + timedelta(seconds=0.25 * i), "cpu", 10.0 * n + i) for i in range(4)])
            second.update_telemetry(Status.RUNNING, T0, [(T0 + timedelta(seconds=5), "state", "warm")])
            first.update(Status.SUCCEEDED, T0 + timedelta(seconds=4), {"latency": 2.5, "runs": 3})
            second.update(Status.SUCCEEDED, T0 + timedelta(seconds=8), {"latency": 1.5})
            third.update(Status.FAILED, T0 + timedelta(seconds=10))
        yield storage.experiments["interop"]


def test_results_in_pandas_keep_names_ints_and_utc_timestamps(data: ExperimentData) -> None:
    results = data.results_table
    frame = results.to_pandas()
    assert list(frame.columns) == results.column_names
    assert [c for c in frame.columns if c.startswith(("config.", "result."))] == [
        "config.fast", "config.mode", "config.ratio", "config.size", "config.threads", "result.latency", "result.runs"]
    assert {c: str(frame[c].dtype) for c in ("trial_id", "config.threads", "config.fast", "config.ratio")} == {
        "trial_id": "int64", "config.threads": "int64", "config.fast": "bool", "config.ratio": "float64"}
    assert str(frame["ts_start"].dtype) == "datetime64[us, UTC]"
    assert frame["ts_start"].tolist() == [T0, T0 + timedelta(seconds=5), T0 + timedelta(seconds=9)]
    assert frame["config.threads"].tolist() == [2, 8, 4]
    # an int result some trials lack: float64 in plain pandas, int with ArrowDtype
    assert str(frame["result.runs"].dtype) == "float64"
    nullable = results.to_pandas(types_mapper=pd.ArrowDtype)
    assert str(nullable["result.runs"].dtype) == "int64[pyarrow]"
    assert nullable["result.runs"].tolist()[0] == 3 and nullable["result.runs"].isna().tolist() == [False, True, True]
    # a mixed-type tunable is JSON text elsewhere; results_df decodes it
    assert frame["config.size"].tolist() == ["1", '"big"', "null"]
    assert results.schema.field("config.size").metadata[b"mlos_store.encoding"] == b"json"
    assert data.results_df["config.size"].tolist() == [1, "big", None]


def test_telemetry_in_pandas_keeps_utc_timestamps_and_numeric_values(data: ExperimentData) -> None:
    frame = data.telemetry_table(metrics=["cpu"]).to_pandas()
    assert list(frame.columns) == ["experiment_id", "trial_id", "ts", "metric", "value"]
    assert str(frame["ts"].dtype) == "datetime64[us, UTC]" and str(frame["value"].dtype) == "float64"
    assert frame["ts"].iloc[1] == T0 + timedelta(seconds=0.25)  # microseconds kept
    assert frame["trial_id"].tolist() == [1] * 4 + [2] * 4


def test_polars_takes_the_tables_with_their_types(data: ExperimentData) -> None:
    results = data.results_table
    frame = pl.from_arrow(results)
    assert isinstance(frame, pl.DataFrame)
    assert frame.columns == results.column_names
    assert frame.schema["ts_start"] == pl.Datetime("us", "UTC")
    assert frame.schema["trial_id"] == pl.Int64 and frame.schema["config.threads"] == pl.Int64
    assert frame.schema["result.runs"] == pl.Int64  # nulls do not make it float
    assert frame.schema["config.fast"] == pl.Boolean and frame.schema["config.ratio"] == pl.Float64
    assert frame.to_dicts() == results.to_pylist()
    assert [json.loads(v) for v in frame["config.size"].to_list()] == [1, "big", None]  # mixed: JSON text

    telemetry = data.telemetry_table()
    points = pl.from_arrow(telemetry)
    assert isinstance(points, pl.DataFrame)
    assert points.schema["ts"] == pl.Datetime("us", "UTC") and points.schema["value"] == pl.Float64
    assert points.to_dicts() == telemetry.to_pylist()
    assert points.filter(pl.col("metric") == "state")["value_json"].to_list() == ['"warm"']


def test_duckdb_queries_the_tables_by_variable_name(data: ExperimentData) -> None:
    results = data.results_table  # noqa: F841 - read by DuckDB's replacement scan below
    telemetry = data.telemetry_table(metrics=["cpu"])  # noqa: F841
    best = duckdb.sql('SELECT trial_id, "config.threads", ts_start FROM results '  # type: ignore[union-attr]
                      'WHERE status = \'SUCCEEDED\' ORDER BY "result.latency"').to_arrow_table()
    assert best.column("trial_id").to_pylist() == [2, 1]
    assert best.schema.field("config.threads").type == pa.int64()
    stamps = best.column("ts_start").to_pylist()
    assert best.schema.field("ts_start").type.tz is not None  # DuckDB's session zone, never naive
    assert stamps == [T0 + timedelta(seconds=5), T0]          # the same instants
    means = duckdb.sql("SELECT trial_id, avg(value) AS mean FROM telemetry GROUP BY trial_id ORDER BY trial_id")
    assert means.fetchall() == [(1, 1.5), (2, 11.5)]  # type: ignore[union-attr]
    assert data.telemetry_summary(metrics=["cpu"]).column("mean").to_pylist() == [1.5, 11.5]


def test_duckdb_hands_timestamps_back_in_utc_once_its_session_says_so(data: ExperimentData) -> None:
    results = data.results_table  # noqa: F841 - read by DuckDB's replacement scan below
    with duckdb.connect() as connection:
        connection.execute("SET TimeZone = 'UTC'")
        table = connection.sql("SELECT ts_start, ts_end FROM results ORDER BY trial_id").to_arrow_table()
    assert table.schema.field("ts_start").type == pa.timestamp("us", tz="UTC")
    assert table.column("ts_end").to_pylist()[0] == T0 + timedelta(seconds=4)
    assert table.column("ts_end").to_pylist()[0].utcoffset() == UTC.utcoffset(None)
