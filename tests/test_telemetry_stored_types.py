"""update_telemetry of an Arrow table already in the stored types, which the store inserts as it is.

A float table with ts timestamp[us, tz=UTC], metric string and value
float64 skips the conversion to typed value columns (``trial_points``).
These tests pin that the shortcut refuses every bad input the converted
path refuses, stores nothing then, and stores the same points otherwise.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from conftest import T0, bare_experiment

from mlos_store import Experiment, InvalidValueError, Status, Trial, TrialEndedError
from mlos_store.telemetry import STORED_FLOAT_POINTS, stored_float_points

SEC = timedelta(seconds=1)
#: Microseconds since the epoch of 10000-01-01 UTC: the first instant no datetime holds.
YEAR_10000_US = 253402300800 * 10**6


@pytest.fixture(scope="module", params=["memory", "file"])
def experiment(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Experiment]:
    with bare_experiment(request.param, tmp_path_factory, "stored-types") as exp:
        yield exp


def running_trial(experiment: Experiment) -> Trial:
    """A RUNNING trial that already holds a point: the next call takes the one-statement append."""
    trial = experiment.new_trial({})
    trial.update(Status.RUNNING, T0)
    trial.update_telemetry(Status.RUNNING, T0, stored_table([T0], ["first"], [0.5]))
    return trial


def stored_table(ts: list[Any], metric: list[Any], value: list[Any]) -> pa.Table:
    return pa.table({"ts": pa.array(ts, STORED_FLOAT_POINTS.field("ts").type),
                     "metric": pa.array(metric, pa.string()), "value": pa.array(value, pa.float64())})


def later(seconds: int) -> datetime:
    return T0 + seconds * SEC


def test_a_table_in_the_stored_types_is_recognised_in_any_column_order() -> None:
    table = stored_table([later(1)], ["m"], [1.0])
    assert stored_float_points(table, "t") is not None
    assert stored_float_points(table.select(["value", "ts", "metric"]), "t") is not None
    assert stored_float_points(table.to_batches()[0], "t") is not None


@pytest.mark.parametrize("table", [
    pytest.param(pa.table({"ts": pa.array([later(1)], pa.timestamp("ns", tz="UTC")), "metric": ["m"],
                           "value": [1.0]}), id="ns"),
    pytest.param(pa.table({"ts": pa.array([later(1)], pa.timestamp("us", tz="Europe/Paris")), "metric": ["m"],
                           "value": [1.0]}), id="other-zone"),
    pytest.param(pa.table({"ts": pa.array([later(1)], pa.timestamp("us", tz="UTC")),
                           "metric": pa.array(["m"], pa.large_string()), "value": [1.0]}), id="large-string"),
    pytest.param(pa.table({"ts": pa.array([later(1)], pa.timestamp("us", tz="UTC")), "metric": ["m"],
                           "value": pa.array([1.0], pa.float32())}), id="float32"),
    pytest.param(pa.table({"ts": pa.array([later(1)], pa.timestamp("us", tz="UTC")), "metric": ["m"],
                           "value": [1]}), id="int"),
])
def test_other_types_take_the_converting_path_and_store_the_same_point(experiment: Experiment,
                                                                       table: pa.Table) -> None:
    assert stored_float_points(table, "t") is None
    trial = running_trial(experiment)
    trial.update_telemetry(Status.RUNNING, T0, table)
    assert experiment.load_telemetry(trial.trial_id)[1][:2] == (later(1), "m")


@pytest.mark.parametrize(("table", "match"), [
    pytest.param(stored_table([later(1), None], ["m", "m"], [1.0, 2.0]), "'ts' holds nulls", id="ts-null"),
    pytest.param(stored_table([later(1), later(2)], ["m", None], [1.0, 2.0]), "'metric' holds null or empty",
                 id="metric-null"),
    pytest.param(stored_table([later(1), later(2)], ["m", ""], [1.0, 2.0]), "'metric' holds null or empty",
                 id="metric-empty"),
    pytest.param(pa.table({"ts": pa.array([0, YEAR_10000_US], pa.int64()).cast(STORED_FLOAT_POINTS.field("ts").type),
                           "metric": ["m", "m"], "value": [1.0, 2.0]}),
                 re.escape(f"'ts' row 1 holds {YEAR_10000_US}"), id="ts-year-10000"),
    pytest.param(pa.table({"ts": pa.array([later(1)], STORED_FLOAT_POINTS.field("ts").type), "metric": ["m"],
                           "value": [1.0], "host": ["h"]}), "host", id="extra-column"),
])
@pytest.mark.parametrize("form", ["table", "record-batch"])
def test_bad_points_in_the_stored_types_are_refused_and_nothing_is_stored(
    experiment: Experiment, table: pa.Table, match: str, form: str
) -> None:
    trial = running_trial(experiment)
    before, history = experiment.load_telemetry(trial.trial_id), trial.status_history()
    points = table if form == "table" else table.to_batches()[0]
    with pytest.raises(InvalidValueError, match=match):
        trial.update_telemetry(Status.RUNNING, later(5), points)
    assert experiment.load_telemetry(trial.trial_id) == before
    assert trial.status_history() == history


def test_none_nan_and_infinities_come_back_as_sent(experiment: Experiment) -> None:
    trial = running_trial(experiment)
    trial.update_telemetry(Status.RUNNING, T0, stored_table(
        [later(1), later(1), later(1), later(1)], ["a", "b", "c", "d"], [None, math.nan, math.inf, -math.inf]))
    values = [value for _, _, value in experiment.load_telemetry(trial.trial_id)[1:]]
    assert values[0] is None and math.isnan(values[1]) and values[2:] == [math.inf, -math.inf]
    kinds = experiment.telemetry_table(trial.trial_id).column("value").type
    assert kinds == pa.float64()


def test_repeats_within_and_across_batches_keep_the_first_value(experiment: Experiment) -> None:
    trial = running_trial(experiment)
    trial.update_telemetry(Status.RUNNING, T0, stored_table(
        [later(1), later(2), later(1)], ["m", "m", "m"], [1.0, 2.0, 10.0]))
    trial.update_telemetry(Status.RUNNING, T0, stored_table([later(2), later(3)], ["m", "m"], [20.0, 3.0]))
    assert experiment.load_telemetry(trial.trial_id)[1:] == [(later(1), "m", 1.0), (later(2), "m", 2.0),
                                                             (later(3), "m", 3.0)]


def test_a_trial_ended_by_another_object_refuses_the_table_and_stores_nothing(experiment: Experiment) -> None:
    trial = running_trial(experiment)
    other = next(t for t in experiment.pending_trials(later(100), running=True) if t.trial_id == trial.trial_id)
    other.update(Status.SUCCEEDED, later(10), {})
    before = experiment.load_telemetry(trial.trial_id)
    with pytest.raises(TrialEndedError):
        trial.update_telemetry(Status.RUNNING, later(11), stored_table([later(20)], ["m"], [1.0]))
    assert experiment.load_telemetry(trial.trial_id) == before


def test_a_final_status_with_the_table_is_recorded_and_stores_the_points(experiment: Experiment) -> None:
    trial = running_trial(experiment)
    trial.update_telemetry(Status.SUCCEEDED, later(9), stored_table([later(1)], ["m"], [4.0]))
    assert experiment.load_telemetry(trial.trial_id)[1:] == [(later(1), "m", 4.0)]
    assert trial.status_history()[-1][1] == Status.SUCCEEDED
