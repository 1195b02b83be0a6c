"""Trial.update_telemetry ingest, and the telemetry_table / load_telemetry reads."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from conftest import T0, bare_experiment

from mlos_store import (
    Experiment,
    IllegalTransitionError,
    InvalidValueError,
    Status,
    Storage,
    Trial,
    TrialEndedError,
    UnknownObjectError,
)

UTC_US = pa.timestamp("us", tz="UTC")
SEC = timedelta(seconds=1)

Point = tuple[datetime, str, Any]


# ---------------------------------------------------------------- helpers


def arrow_points(points: list[Point], value_type: pa.DataType | None = None,
                 ts_type: pa.DataType = UTC_US) -> pa.Table:
    return pa.table({
        "ts": pa.array([p[0] for p in points], ts_type),
        "metric": pa.array([p[1] for p in points], pa.string()),
        "value": pa.array([p[2] for p in points], value_type),
    })


def sample_points() -> list[Point]:
    """Two metrics over three seconds, in the order load_telemetry returns them."""
    return [(T0 + i * SEC, metric, float(i) + offset)
            for i in range(3) for metric, offset in (("cpu", 0.5), ("mem", 100.0))]


@pytest.fixture(scope="module", params=["memory", "file"])
def shared_experiment(request: pytest.FixtureRequest,
                      tmp_path_factory: pytest.TempPathFactory) -> Iterator[Experiment]:
    """One entered experiment per backend, shared by every test that only looks at trials of its own.

    The tests stay independent (each reads only its own trials); a fresh
    store per test would make this file several times slower. Tests that
    read a whole experiment use the conftest ``experiment`` fixture.
    """
    with bare_experiment(request.param, tmp_path_factory, "shared") as exp:
        yield exp


def running_trial(experiment: Experiment) -> Trial:
    trial = experiment.new_trial({})
    trial.update(Status.RUNNING, T0)
    return trial


def stored_points(experiment: Experiment, trial: Trial) -> list[Point]:
    return experiment.load_telemetry(trial.trial_id)


# ---------------------------------------------------------------- input forms


def _as_tuples(points: list[Point]) -> Any:
    return list(points)


def _as_list_of_lists(points: list[Point]) -> Any:
    return [list(p) for p in points]


def _as_table(points: list[Point]) -> Any:
    return arrow_points(points)


def _as_record_batch(points: list[Point]) -> Any:
    return arrow_points(points).to_batches()[0]


def _as_reader(points: list[Point]) -> Any:
    table = arrow_points(points)
    return pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=2))


def _as_chunked_table(points: list[Point]) -> Any:
    return pa.concat_tables([arrow_points(points[:1]), arrow_points(points[1:4]), arrow_points(points[4:])])


def _as_reordered_columns(points: list[Point]) -> Any:
    return arrow_points(points).select(["value", "metric", "ts"])


@pytest.mark.parametrize("form", [_as_tuples, _as_list_of_lists, _as_table, _as_record_batch, _as_reader,
                                  _as_chunked_table, _as_reordered_columns],
                         ids=lambda f: f.__name__.removeprefix("_as_"))
def test_update_telemetry_accepts_every_documented_form(shared_experiment: Experiment, form: Any) -> None:
    trial = running_trial(shared_experiment)
    points = sample_points()
    trial.update_telemetry(Status.RUNNING, T0, form(list(reversed(points))))
    assert stored_points(shared_experiment, trial) == points


@pytest.mark.parametrize("unit", ["s", "ms", "us"])
def test_arrow_timestamps_of_any_unit_are_accepted(shared_experiment: Experiment, unit: str) -> None:
    trial = running_trial(shared_experiment)
    ts = {"s": T0.replace(microsecond=0), "ms": T0.replace(microsecond=123000), "us": T0}[unit]
    trial.update_telemetry(Status.RUNNING, T0, arrow_points([(ts, "m", 1.0)], ts_type=pa.timestamp(unit, tz="UTC")))
    assert stored_points(shared_experiment, trial) == [(ts, "m", 1.0)]


#: 2023-11-14 22:13:20.123456789 UTC: digits below the microsecond that rounding would carry up.
NS_STAMP = 1_700_000_000_123_456_789
NS_STAMP_US = datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=UTC)


@pytest.mark.parametrize("tz", ["UTC", "Asia/Tokyo"])
def test_nanosecond_arrow_timestamps_are_truncated_to_microseconds(shared_experiment: Experiment, tz: str) -> None:
    """The store keeps microseconds: pandas' default ns timestamps lose their last three digits, never round."""
    trial = running_trial(shared_experiment)
    ns_type = pa.timestamp("ns", tz=tz)
    one_us = 1_000
    trial.update_telemetry(Status.RUNNING, T0, pa.table({
        "ts": pa.array([NS_STAMP, NS_STAMP + 1, NS_STAMP + one_us - NS_STAMP % one_us], ns_type),
        "metric": ["m", "n", "m"],
        "value": [1.0, 2.0, 3.0],
    }))
    points = stored_points(shared_experiment, trial)
    next_us = NS_STAMP_US + timedelta(microseconds=1)
    assert points == [(NS_STAMP_US, "m", 1.0), (NS_STAMP_US, "n", 2.0), (next_us, "m", 3.0)]
    assert points[0][0].isoformat().endswith(".123456+00:00")
    column = shared_experiment.telemetry_table(trial.trial_id).column("ts")
    assert column.type == UTC_US
    assert column.cast(pa.int64()).to_pylist() == [NS_STAMP // one_us, NS_STAMP // one_us, NS_STAMP // one_us + 1]


def test_naive_nanosecond_arrow_timestamps_are_local_time_truncated_to_microseconds(
    new_york_local_time: None, shared_experiment: Experiment,
) -> None:
    """Local time is New York here, so treating naive times as UTC (or skipping the conversion) shows."""
    trial = running_trial(shared_experiment)
    trial.update_telemetry(Status.RUNNING, T0, pa.table({
        "ts": pa.array([NS_STAMP], pa.timestamp("ns")), "metric": ["m"], "value": [1.0]}))
    ((ts, _, _),) = stored_points(shared_experiment, trial)
    # Naive times are local wall-clock times: 22:13:20.123456 in New York (UTC-5 in November) is 03:13 UTC.
    assert ts == datetime(2023, 11, 15, 3, 13, 20, 123456, tzinfo=UTC)
    assert ts == NS_STAMP_US.replace(tzinfo=None).astimezone(UTC)
    assert ts.utcoffset() == timedelta(0)


def test_sub_microsecond_duplicates_in_one_ns_batch_are_one_point(shared_experiment: Experiment) -> None:
    """Two ns stamps within one microsecond are the same stored point: the first row is kept."""
    trial = running_trial(shared_experiment)
    trial.update_telemetry(Status.RUNNING, T0, pa.table({
        "ts": pa.array([NS_STAMP, NS_STAMP + 100], pa.timestamp("ns", tz="UTC")),
        "metric": ["m", "m"], "value": [1.0, 2.0]}))
    assert stored_points(shared_experiment, trial) == [(NS_STAMP_US, "m", 1.0)]


@pytest.mark.parametrize(("value_type", "values"), [
    pytest.param(pa.int8(), [-128, 127], id="int8"),
    pytest.param(pa.int32(), [-(2**31), 2**31 - 1], id="int32"),
    pytest.param(pa.uint32(), [0, 2**32 - 1], id="uint32"),
    pytest.param(pa.int64(), [-(2**53), 2**53], id="int64-exact-in-float"),
    pytest.param(pa.float32(), [0.5, -2.25], id="float32"),
    pytest.param(pa.float64(), [0.1, float("inf")], id="float64"),
    pytest.param(pa.bool_(), [True, False], id="bool"),
    pytest.param(pa.string(), ["idle", "it's"], id="string"),
    pytest.param(pa.large_string(), ["a", ""], id="large_string"),
    pytest.param(pa.float64(), [None, 1.5], id="float64-with-null"),
])
def test_arrow_value_column_of_each_primitive_type_round_trips(
    shared_experiment: Experiment, value_type: pa.DataType, values: list[Any]
) -> None:
    trial = running_trial(shared_experiment)
    points = [(T0 + i * SEC, "m", v) for i, v in enumerate(values)]
    trial.update_telemetry(Status.RUNNING, T0, arrow_points(points, value_type))
    loaded = stored_points(shared_experiment, trial)
    assert loaded == points
    assert [type(v) for _, _, v in loaded] == [type(v) for v in values]


@pytest.mark.parametrize("big", [2**53 + 1, 2**63 - 1, -(2**63)])
def test_arrow_int64_values_beyond_2_53_are_stored_exactly(shared_experiment: Experiment, big: int) -> None:
    """The same ints are accepted as tuples; an int64 Arrow column must not be refused or rounded."""
    trial = running_trial(shared_experiment)
    trial.update_telemetry(Status.RUNNING, T0, arrow_points([(T0, "m", big)], pa.int64()))
    assert stored_points(shared_experiment, trial) == [(T0, "m", big)]
    assert shared_experiment.telemetry_table(trial.trial_id).column("value").type == pa.int64()


# ---------------------------------------------------------------- refusals


def assert_nothing_stored(experiment: Experiment, trial: Trial, status: Status = Status.RUNNING,
                          history: list[Any] | None = None) -> None:
    assert stored_points(experiment, trial) == []
    assert trial.status == status
    if history is not None:
        assert trial.status_history() == history


@pytest.mark.parametrize(("table", "match"), [
    pytest.param(pa.table({"ts": pa.array([T0], UTC_US), "metric": ["m"], "value": [1.0], "host": ["h1"]}),
                 "host", id="extra-column"),
    pytest.param(pa.table({"ts": pa.array([T0], UTC_US), "metric": ["m"]}),
                 re.escape("['ts', 'metric']"), id="missing-value"),
    pytest.param(pa.table({"timestamp": pa.array([T0], UTC_US), "metric": ["m"], "value": [1.0]}),
                 "timestamp", id="renamed-ts"),
    pytest.param(pa.table([pa.array([T0], UTC_US), pa.array(["m"]), pa.array([1.0]), pa.array([2.0])],
                          names=["ts", "metric", "value", "value"]),
                 re.escape("'value', 'value'"), id="duplicate-value"),
])
def test_arrow_telemetry_with_wrong_columns_is_refused_naming_them(shared_experiment: Experiment, table: pa.Table,
                                                                   match: str) -> None:
    trial = shared_experiment.new_trial({})
    history = trial.status_history()
    with pytest.raises(InvalidValueError, match=match):
        trial.update_telemetry(Status.RUNNING, T0, table)
    assert_nothing_stored(shared_experiment, trial, Status.PENDING, history)


def test_record_batch_with_wrong_columns_is_refused(shared_experiment: Experiment) -> None:
    trial = shared_experiment.new_trial({})
    batch = pa.record_batch({"ts": pa.array([T0], UTC_US), "name": ["m"], "value": [1.0]})
    with pytest.raises(InvalidValueError, match="name"):
        trial.update_telemetry(Status.RUNNING, T0, batch)
    assert_nothing_stored(shared_experiment, trial, Status.PENDING)


GOOD = (T0, "good", 1.0)


@pytest.mark.parametrize(("bad_row", "match"), [
    pytest.param("not a row", "row 1", id="str-row"),
    pytest.param({"ts": T0, "metric": "m", "value": 1}, "row 1", id="dict-row"),
    pytest.param((T0, "m"), "row 1", id="two-items"),
    pytest.param((T0, "m", 1.0, "extra"), "row 1", id="four-items"),
    pytest.param(("2026-01-01T12:00:00", "m", 1.0), "row 1 timestamp", id="ts-str"),
    pytest.param((1767268800.0, "m", 1.0), "row 1 timestamp", id="ts-epoch"),
    pytest.param((T0.date(), "m", 1.0), "row 1 timestamp", id="ts-date"),
    pytest.param((None, "m", 1.0), "row 1 timestamp", id="ts-none"),
    pytest.param((T0, "", 1.0), re.escape("row 1 metric name must be a non-empty str, got ''"), id="metric-empty"),
    pytest.param((T0, None, 1.0), re.escape("row 1 metric name must be a non-empty str, got None"),
                 id="metric-none"),
    pytest.param((T0, 5, 1.0), re.escape("row 1 metric name must be a non-empty str, got 5"), id="metric-int"),
    pytest.param((T0, "m", object()), "row 1", id="value-object"),
    pytest.param((T0, "m", [1, 2]), "row 1", id="value-list"),
    pytest.param((T0, "m", 2**64), "row 1", id="value-too-big"),
])
def test_malformed_row_in_the_middle_is_refused_and_nothing_is_stored(
    shared_experiment: Experiment, bad_row: Any, match: str
) -> None:
    trial = shared_experiment.new_trial({})
    history = trial.status_history()
    with pytest.raises(InvalidValueError, match=match):
        trial.update_telemetry(Status.RUNNING, T0, [GOOD, bad_row, (T0 + SEC, "good", 2.0)])
    assert_nothing_stored(shared_experiment, trial, Status.PENDING, history)


@pytest.mark.parametrize(("table", "match"), [
    pytest.param(pa.table({"ts": pa.array([1, 2], pa.int64()), "metric": ["m", "m"], "value": [1.0, 2.0]}),
                 "'ts' is int64", id="ts-int"),
    pytest.param(pa.table({"ts": ["2026-01-01", "2026-01-02"], "metric": ["m", "m"], "value": [1.0, 2.0]}),
                 "'ts' is string", id="ts-string"),
    pytest.param(pa.table({"ts": pa.array([T0, None], UTC_US), "metric": ["m", "m"], "value": [1.0, 2.0]}),
                 "'ts' holds nulls", id="ts-null"),
    pytest.param(pa.table({"ts": pa.array([T0, T0 + SEC], UTC_US), "metric": ["m", None], "value": [1.0, 2.0]}),
                 "'metric' holds null or empty", id="metric-null"),
    pytest.param(pa.table({"ts": pa.array([T0, T0 + SEC], UTC_US), "metric": ["m", ""], "value": [1.0, 2.0]}),
                 "'metric' holds null or empty", id="metric-empty"),
    pytest.param(pa.table({"ts": pa.array([T0, T0 + SEC], UTC_US), "metric": [1, 2], "value": [1.0, 2.0]}),
                 "'metric' is int64", id="metric-int"),
    pytest.param(pa.table({"ts": pa.array([T0, T0 + SEC], UTC_US), "metric": ["m", "m"], "value": [[1], [2]]}),
                 "'value'", id="value-list"),
    pytest.param(pa.table({"ts": pa.array([T0, T0 + SEC], UTC_US), "metric": ["m", "m"],
                           "value": pa.array([1, 2**64 - 1], pa.uint64())}),
                 "'value'", id="value-uint64-overflow"),
])
def test_malformed_arrow_columns_are_refused_and_nothing_is_stored(shared_experiment: Experiment, table: pa.Table,
                                                                   match: str) -> None:
    trial = running_trial(shared_experiment)
    history = trial.status_history()
    with pytest.raises(InvalidValueError, match=match):
        trial.update_telemetry(Status.RUNNING, T0 + SEC, table)
    assert_nothing_stored(shared_experiment, trial, Status.RUNNING, history)


@pytest.mark.parametrize("points", [
    pytest.param({"cpu": 1.0}, id="dict"),
    pytest.param("cpu", id="str"),
    pytest.param(b"cpu", id="bytes"),
    pytest.param(42, id="int"),
])
def test_telemetry_that_is_not_rows_or_arrow_is_refused(shared_experiment: Experiment, points: Any) -> None:
    trial = shared_experiment.new_trial({})
    with pytest.raises(InvalidValueError, match=type(points).__name__):
        trial.update_telemetry(Status.RUNNING, T0, points)
    assert_nothing_stored(shared_experiment, trial, Status.PENDING)


# ---------------------------------------------------------------- one call is one transaction


def test_illegal_status_change_stores_none_of_the_points(shared_experiment: Experiment) -> None:
    trial = running_trial(shared_experiment)
    history = trial.status_history()
    with pytest.raises(IllegalTransitionError, match="RUNNING.*READY"):
        trial.update_telemetry(Status.READY, T0 + SEC, sample_points())
    assert_nothing_stored(shared_experiment, trial, Status.RUNNING, history)


def test_telemetry_with_another_status_on_an_ended_trial_raises_and_stores_nothing(
    shared_experiment: Experiment,
) -> None:
    trial = running_trial(shared_experiment)
    trial.update(Status.SUCCEEDED, T0 + SEC, {"score": 1.0})
    history = trial.status_history()
    with pytest.raises(TrialEndedError, match="SUCCEEDED") as raised:
        trial.update_telemetry(Status.RUNNING, T0 + 2 * SEC, sample_points())
    assert isinstance(raised.value, RuntimeError)
    assert_nothing_stored(shared_experiment, trial, Status.SUCCEEDED, history)


def test_failed_point_ingest_undoes_the_status_change_of_the_same_call(
    storage: Storage, experiment: Experiment, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The status (an advance, or a final status only recorded) and the points are one transaction."""
    pending = experiment.new_trial({})
    running = running_trial(experiment)
    cases = [(pending, Status.RUNNING), (running, Status.SUCCEEDED)]
    before = {trial.trial_id: (trial.status, trial.status_history()) for trial, _ in cases}

    def failing_ingest(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    for trial, status in cases:
        with monkeypatch.context() as patch:
            patch.setattr(storage.engine, "ingest", failing_ingest)
            with pytest.raises(OSError, match="disk full"):
                trial.update_telemetry(status, T0 + SEC, sample_points())
        assert (trial.status, trial.status_history()) == before[trial.trial_id], status
        assert stored_points(experiment, trial) == []
    # the store still works, and the same call now goes through in full
    for trial, status in cases:
        trial.update_telemetry(status, T0 + SEC, sample_points())
        assert trial.status_history()[-1] == (T0 + SEC, status)
        assert stored_points(experiment, trial) == sample_points()


def test_final_status_with_telemetry_is_recorded_but_does_not_end_the_trial(shared_experiment: Experiment) -> None:
    trial = running_trial(shared_experiment)
    trial.update_telemetry(Status.SUCCEEDED, T0 + SEC, sample_points())
    assert trial.status == Status.RUNNING
    assert (T0 + SEC, Status.SUCCEEDED) in trial.status_history()
    assert stored_points(shared_experiment, trial) == sample_points()
    trial.update(Status.SUCCEEDED, T0 + 2 * SEC, {"score": 1.0})
    assert trial.status == Status.SUCCEEDED  # type: ignore[comparison-overlap]


def test_repeating_the_current_status_only_appends_points(shared_experiment: Experiment) -> None:
    trial = running_trial(shared_experiment)
    history = trial.status_history()
    trial.update_telemetry(Status.RUNNING, T0 + SEC, sample_points()[:2])
    trial.update_telemetry(Status.RUNNING, T0 + 2 * SEC, sample_points()[2:])
    assert trial.status == Status.RUNNING
    assert trial.status_history() == history
    assert stored_points(shared_experiment, trial) == sample_points()


def test_empty_telemetry_still_records_the_status(shared_experiment: Experiment) -> None:
    trial = shared_experiment.new_trial({})
    trial.update_telemetry(Status.RUNNING, T0, [])
    trial.update_telemetry(Status.RUNNING, T0, arrow_points([], pa.float64()))
    assert trial.status == Status.RUNNING
    assert stored_points(shared_experiment, trial) == []


# ---------------------------------------------------------------- a point is stored once


def test_resending_stored_points_stores_nothing_twice_and_the_first_value_stays(shared_experiment: Experiment) -> None:
    trial = running_trial(shared_experiment)
    points = sample_points()
    trial.update_telemetry(Status.RUNNING, T0, points)
    changed = [(ts, metric, value + 1000) for ts, metric, value in points]
    trial.update_telemetry(Status.RUNNING, T0, changed)
    trial.update_telemetry(Status.RUNNING, T0, arrow_points(changed))
    assert stored_points(shared_experiment, trial) == points
    assert shared_experiment.telemetry_table(trial.trial_id).num_rows == len(points)


def test_batch_mixing_new_and_stored_points_adds_only_the_new_ones(shared_experiment: Experiment) -> None:
    trial = running_trial(shared_experiment)
    trial.update_telemetry(Status.RUNNING, T0, [(T0, "m", 1.0), (T0 + SEC, "m", 2.0)])
    trial.update_telemetry(Status.RUNNING, T0, arrow_points(
        [(T0 + SEC, "m", 20.0), (T0 + 2 * SEC, "m", 3.0), (T0, "m", 10.0), (T0, "other", 4.0)]))
    assert stored_points(shared_experiment, trial) == [
        (T0, "m", 1.0), (T0, "other", 4.0), (T0 + SEC, "m", 2.0), (T0 + 2 * SEC, "m", 3.0)]


@pytest.mark.parametrize("form", [_as_tuples, _as_table], ids=["tuples", "table"])
def test_duplicates_within_one_batch_keep_the_first_row(shared_experiment: Experiment, form: Any) -> None:
    trial = running_trial(shared_experiment)
    batch = [(T0, "m", 1.0), (T0 + SEC, "m", 5.0), (T0, "m", 2.0), (T0, "m", 3.0), (T0 + SEC, "m", 6.0)]
    trial.update_telemetry(Status.RUNNING, T0, form(batch))
    assert stored_points(shared_experiment, trial) == [(T0, "m", 1.0), (T0 + SEC, "m", 5.0)]


def test_same_instant_in_another_zone_is_the_same_point(shared_experiment: Experiment) -> None:
    trial = running_trial(shared_experiment)
    trial.update_telemetry(Status.RUNNING, T0, [(T0, "m", 1.0)])
    tokyo = T0.astimezone(timezone(timedelta(hours=9)))
    trial.update_telemetry(Status.RUNNING, T0, [(tokyo, "m", 2.0)])
    assert stored_points(shared_experiment, trial) == [(T0, "m", 1.0)]


def test_point_identity_is_trial_ts_and_metric(storage: Storage, experiment: Experiment) -> None:
    first, second = running_trial(experiment), running_trial(experiment)
    one_us = timedelta(microseconds=1)
    first.update_telemetry(Status.RUNNING, T0, [(T0, "m", 1.0), (T0, "M", 2.0), (T0 + one_us, "m", 3.0)])
    second.update_telemetry(Status.RUNNING, T0, [(T0, "m", 4.0)])
    with storage.experiment(experiment_id="other", trial_id=first.trial_id, root_env_config="env",
                            description="", tunables={}, opt_targets={}) as other:
        other_trial = other.new_trial({})
        assert other_trial.trial_id == first.trial_id
        other_trial.update_telemetry(Status.RUNNING, T0, [(T0, "m", 5.0)])
        assert other.load_telemetry(other_trial.trial_id) == [(T0, "m", 5.0)]
    assert stored_points(experiment, first) == [(T0, "M", 2.0), (T0, "m", 1.0), (T0 + one_us, "m", 3.0)]
    assert stored_points(experiment, second) == [(T0, "m", 4.0)]


# ---------------------------------------------------------------- order


def test_load_telemetry_is_ordered_by_ts_then_metric_name(shared_experiment: Experiment) -> None:
    trial = running_trial(shared_experiment)
    names = ["b", "a", "B", "é", "a b", "_", "10", "9"]
    later = [(T0 + SEC, name, i) for i, name in enumerate(names)]
    earlier = [(T0, name, -i) for i, name in enumerate(reversed(names))]
    trial.update_telemetry(Status.RUNNING, T0, later)
    trial.update_telemetry(Status.RUNNING, T0, earlier)
    loaded = stored_points(shared_experiment, trial)
    assert [(ts, m) for ts, m, _ in loaded] == sorted((ts, m) for ts, m, _ in later + earlier)
    assert sorted(loaded, key=lambda p: (p[0], p[1])) == loaded


def test_telemetry_table_is_ordered_by_trial_id_ts_then_metric(experiment: Experiment) -> None:
    first, second = running_trial(experiment), running_trial(experiment)
    second.update_telemetry(Status.RUNNING, T0, [(T0 - SEC, "z", 1.0), (T0 - SEC, "a", 2.0)])
    first.update_telemetry(Status.RUNNING, T0, [(T0 + SEC, "a", 3.0), (T0, "b", 4.0), (T0, "a", 5.0)])
    table = experiment.telemetry_table()
    assert table.column_names == ["experiment_id", "trial_id", "ts", "metric", "value"]
    rows = list(zip(*(table.column(c).to_pylist() for c in ("trial_id", "ts", "metric", "value"))))
    assert rows == [
        (first.trial_id, T0, "a", 5.0), (first.trial_id, T0, "b", 4.0), (first.trial_id, T0 + SEC, "a", 3.0),
        (second.trial_id, T0 - SEC, "a", 2.0), (second.trial_id, T0 - SEC, "z", 1.0),
    ]
    assert set(table.column("experiment_id").to_pylist()) == {"exp"}


# ---------------------------------------------------------------- filters


@pytest.fixture
def three_trials(experiment: Experiment) -> list[Trial]:
    """Three running trials, each with cpu and mem at T0, T0+1s, T0+2s (value = trial index * 10 + second)."""
    trials = [running_trial(experiment) for _ in range(3)]
    for n, trial in enumerate(trials):
        trial.update_telemetry(Status.RUNNING, T0, [
            (T0 + i * SEC, metric, float(n * 10 + i)) for i in range(3) for metric in ("cpu", "mem")])
    return trials


def _keys(table: pa.Table) -> list[tuple[int, datetime, str]]:
    return list(zip(*(table.column(c).to_pylist() for c in ("trial_id", "ts", "metric"))))


def test_telemetry_table_filters_by_trial_ids(experiment: Experiment, three_trials: list[Trial]) -> None:
    ids = [t.trial_id for t in three_trials]
    assert experiment.telemetry_table().num_rows == 18
    assert experiment.telemetry_table(None).num_rows == 18
    assert set(experiment.telemetry_table(ids[1]).column("trial_id").to_pylist()) == {ids[1]}
    assert experiment.telemetry_table(ids[1]).num_rows == 6
    both = experiment.telemetry_table([ids[2], ids[0]])
    assert both.column("trial_id").to_pylist() == [ids[0]] * 6 + [ids[2]] * 6
    assert experiment.telemetry_table(i for i in ids[:2]).num_rows == 12
    assert experiment.telemetry_table([]).num_rows == 0
    assert experiment.telemetry_table(max(ids) + 100).num_rows == 0


def test_telemetry_table_filters_by_metric_names(experiment: Experiment, three_trials: list[Trial]) -> None:
    cpu = experiment.telemetry_table(metrics="cpu")
    assert set(cpu.column("metric").to_pylist()) == {"cpu"} and cpu.num_rows == 9
    assert experiment.telemetry_table(metrics=["mem", "cpu"]).num_rows == 18
    assert experiment.telemetry_table(metrics=["disk"]).num_rows == 0
    assert experiment.telemetry_table(metrics=[]).num_rows == 0
    assert experiment.telemetry_table(metrics="cp").num_rows == 0
    assert experiment.telemetry_table(metrics="CPU").num_rows == 0


def test_telemetry_table_time_range_includes_start_and_excludes_end(experiment: Experiment,
                                                                    three_trials: list[Trial]) -> None:
    window = experiment.telemetry_table(start=T0 + SEC, end=T0 + 2 * SEC)
    assert set(window.column("ts").to_pylist()) == {T0 + SEC}
    assert window.num_rows == 6
    assert set(experiment.telemetry_table(start=T0 + 2 * SEC).column("ts").to_pylist()) == {T0 + 2 * SEC}
    assert set(experiment.telemetry_table(end=T0 + SEC).column("ts").to_pylist()) == {T0}
    assert experiment.telemetry_table(start=T0 + SEC, end=T0 + SEC).num_rows == 0
    one_us = timedelta(microseconds=1)
    assert experiment.telemetry_table(start=T0 + 2 * SEC + one_us).num_rows == 0
    assert experiment.telemetry_table(end=T0 + one_us).num_rows == 6
    # an aware non-UTC bound is the same instant
    assert experiment.telemetry_table(start=(T0 + 2 * SEC).astimezone(timezone(timedelta(hours=-3)))).num_rows == 6


def test_telemetry_table_filters_combine(experiment: Experiment, three_trials: list[Trial]) -> None:
    ids = [t.trial_id for t in three_trials]
    table = experiment.telemetry_table([ids[0], ids[2]], metrics="mem", start=T0 + SEC, end=T0 + 3 * SEC)
    assert _keys(table) == [(ids[0], T0 + SEC, "mem"), (ids[0], T0 + 2 * SEC, "mem"),
                            (ids[2], T0 + SEC, "mem"), (ids[2], T0 + 2 * SEC, "mem")]
    assert table.column("value").to_pylist() == [1.0, 2.0, 21.0, 22.0]


def test_telemetry_table_holds_only_this_experiments_points(storage: Storage, experiment: Experiment,
                                                            three_trials: list[Trial]) -> None:
    with storage.experiment(experiment_id="exp2", trial_id=1, root_env_config="env", description="",
                            tunables={}, opt_targets={}) as other:
        trial = other.new_trial({})
        trial.update_telemetry(Status.RUNNING, T0, [(T0, "cpu", 99.0)])
        assert other.telemetry_table().column("value").to_pylist() == [99.0]
        assert set(other.telemetry_table().column("experiment_id").to_pylist()) == {"exp2"}
    assert experiment.telemetry_table().num_rows == 18
    assert 99.0 not in experiment.telemetry_table().column("value").to_pylist()


@pytest.mark.parametrize(("kwargs", "match"), [
    pytest.param({"trial_ids": ["1"]}, "trial id must be an int, got str '1'", id="trial-id-str"),
    pytest.param({"trial_ids": [1.0]}, "trial id must be an int, got float 1.0", id="trial-id-float"),
    pytest.param({"trial_ids": True}, "trial id must be an int, got bool True", id="trial-id-bool"),
    pytest.param({"trial_ids": [1, None]}, "trial id must be an int, got NoneType None", id="trial-id-none"),
    pytest.param({"trial_ids": [2**63]}, f"trial id must be an int, got int {2**63}", id="trial-id-too-big"),
    pytest.param({"metrics": [1]}, "metric name must be a non-empty str, got 1", id="metric-int"),
    pytest.param({"metrics": ["cpu", ""]}, "metric name must be a non-empty str, got ''", id="metric-empty"),
    pytest.param({"metrics": [None]}, "metric name must be a non-empty str, got None", id="metric-none"),
    pytest.param({"start": "2026-01-01"}, "2026-01-01", id="start-str"),
    pytest.param({"end": 0}, "end", id="end-int"),
])
def test_telemetry_table_refuses_bad_filters(shared_experiment: Experiment, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidValueError, match=re.escape(match)) as raised:
        shared_experiment.telemetry_table(**kwargs)
    assert isinstance(raised.value, ValueError)


def test_load_telemetry_of_unknown_trial_is_a_key_error(shared_experiment: Experiment) -> None:
    with pytest.raises(UnknownObjectError, match="4242") as raised:
        shared_experiment.load_telemetry(4242)
    assert isinstance(raised.value, KeyError)


# ---------------------------------------------------------------- numeric telemetry


def test_float_telemetry_is_a_float64_column_that_compute_aggregates(experiment: Experiment,
                                                                    three_trials: list[Trial]) -> None:
    table = experiment.telemetry_table()
    assert table.schema.field("value").type == pa.float64()
    assert pc.sum(table.column("value")).as_py() == sum(float(n * 10 + i) for n in range(3) for i in range(3)) * 2
    per_metric = table.group_by("metric").aggregate([("value", "mean"), ("value", "max")]).sort_by("metric")
    assert per_metric.column("metric").to_pylist() == ["cpu", "mem"]
    assert per_metric.column("value_mean").to_pylist() == [11.0, 11.0]
    assert per_metric.column("value_max").to_pylist() == [22.0, 22.0]


def test_int_telemetry_is_int64_and_ints_with_floats_are_float64(shared_experiment: Experiment) -> None:
    trial = running_trial(shared_experiment)
    trial.update_telemetry(Status.RUNNING, T0, [(T0, "ops", 3), (T0 + SEC, "ops", 4)])
    ints = shared_experiment.telemetry_table(trial.trial_id)
    assert ints.schema.field("value").type == pa.int64()
    assert pc.sum(ints.column("value")).as_py() == 7
    trial.update_telemetry(Status.RUNNING, T0, [(T0, "load", 0.5)])
    mixed = shared_experiment.telemetry_table(trial.trial_id)
    assert mixed.schema.field("value").type == pa.float64()
    assert pc.sum(mixed.column("value")).as_py() == 7.5
    assert stored_points(shared_experiment, trial) == [(T0, "load", 0.5), (T0, "ops", 3.0), (T0 + SEC, "ops", 4.0)]


def test_numeric_metric_selected_from_mixed_telemetry_is_numeric(shared_experiment: Experiment) -> None:
    trial = running_trial(shared_experiment)
    trial.update_telemetry(Status.RUNNING, T0, [(T0, "cpu", 0.25), (T0, "state", "busy"),
                                                (T0 + SEC, "cpu", 0.75), (T0 + SEC, "state", "idle")])
    both = shared_experiment.telemetry_table(trial.trial_id)
    assert both.column_names == ["experiment_id", "trial_id", "ts", "metric", "value", "value_json"]
    assert both.schema.field("value").type == pa.float64()
    assert both.schema.field("value").metadata == {b"mlos_store.encoding": b"numeric+json"}
    assert both.schema.field("value_json").type == pa.string()
    assert both.schema.field("value_json").metadata == {b"mlos_store.encoding": b"json"}
    assert both.column("metric").to_pylist() == ["cpu", "state", "cpu", "state"]
    assert both.column("value").to_pylist() == [0.25, None, 0.75, None]
    assert both.column("value_json").to_pylist() == [None, '"busy"', None, '"idle"']
    # the numeric view aggregates even with strings beside it
    assert pc.mean(both.column("value")).as_py() == 0.5
    per_metric = both.group_by("metric").aggregate([("value", "mean")]).sort_by("metric")
    assert per_metric.to_pylist() == [{"metric": "cpu", "value_mean": 0.5}, {"metric": "state", "value_mean": None}]
    cpu = shared_experiment.telemetry_table(trial.trial_id, metrics="cpu")
    assert cpu.column_names == ["experiment_id", "trial_id", "ts", "metric", "value"]
    assert cpu.schema.field("value").type == pa.float64()
    assert pc.mean(cpu.column("value")).as_py() == 0.5
    state = shared_experiment.telemetry_table(trial.trial_id, metrics="state")
    assert state.column_names == ["experiment_id", "trial_id", "ts", "metric", "value"]
    assert state.schema.field("value").type == pa.string()
    assert state.column("value").to_pylist() == ["busy", "idle"]
    assert stored_points(shared_experiment, trial) == [(T0, "cpu", 0.25), (T0, "state", "busy"),
                                                       (T0 + SEC, "cpu", 0.75), (T0 + SEC, "state", "idle")]


def test_mixed_telemetry_json_column_holds_every_value_the_float_view_does_not(shared_experiment: Experiment) -> None:
    """ints, bools, strs and None each get their JSON; float rows (NaN, -0.0 included) only the numeric view."""
    trial = running_trial(shared_experiment)
    sent = [(T0, "a", 3), (T0, "b", 0.5), (T0, "c", True), (T0, "d", False), (T0, "e", "it's"), (T0, "f", None),
            (T0, "g", float("nan")), (T0, "h", -0.0), (T0, "i", 2**53 + 1), (T0, "j", "")]
    trial.update_telemetry(Status.RUNNING, T0, sent)
    table = shared_experiment.telemetry_table(trial.trial_id)
    assert table.schema.field("value").metadata == {b"mlos_store.encoding": b"numeric+json"}
    assert table.column("metric").to_pylist() == list("abcdefghij")
    numeric = table.column("value").to_pylist()
    assert numeric[:6] == [3.0, 0.5, 1.0, 0.0, None, None]
    assert numeric[6] != numeric[6]  # NaN
    assert str(numeric[7]) == "-0.0"
    assert numeric[8:] == [float(2**53 + 1), None]
    assert table.column("value_json").to_pylist() == [
        "3", None, "true", "false", '"it\'s"', "null", None, None, str(2**53 + 1), '""']
    loaded = stored_points(shared_experiment, trial)
    assert [type(v) for _, _, v in loaded] == [type(v) for _, _, v in sent]
    assert [v for _, _, v in loaded][:6] + [v for _, _, v in loaded][8:] == [v for _, _, v in sent][:6] + [
        2**53 + 1, ""]
    assert str(loaded[7][2]) == "-0.0" and loaded[6][2] != loaded[6][2]


# ---------------------------------------------------------------- bulk


def test_large_arrow_ingest_round_trips_and_resending_adds_nothing(shared_experiment: Experiment) -> None:
    n = 200_000
    start_us = int(T0.timestamp() * 1_000_000)
    table = pa.table({
        "ts": pa.array(range(start_us, start_us + n), pa.int64()).cast(UTC_US),
        "metric": pa.array(["cpu", "mem", "disk", "net"] * (n // 4), pa.string()),
        "value": pa.array(range(n), pa.float64()),
    })
    trial = running_trial(shared_experiment)
    trial.update_telemetry(Status.RUNNING, T0, table)
    stored = shared_experiment.telemetry_table(trial.trial_id)
    assert stored.num_rows == n
    assert stored.schema.field("value").type == pa.float64()
    assert pc.sum(stored.column("value")).as_py() == n * (n - 1) / 2
    counts = dict(zip(*stored.group_by("metric").aggregate([("value", "count")]).to_pydict().values()))
    assert counts == {"cpu": n // 4, "mem": n // 4, "disk": n // 4, "net": n // 4}
    assert stored.column("ts")[0].as_py() == T0
    assert stored.column("ts")[n - 1].as_py() == T0 + timedelta(microseconds=n - 1)
    trial.update_telemetry(Status.RUNNING, T0, table.slice(n // 2).to_reader(max_chunksize=10_000))
    assert shared_experiment.telemetry_table(trial.trial_id).num_rows == n
