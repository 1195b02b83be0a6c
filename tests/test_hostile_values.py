"""Hostile values: each is stored exactly or refused with the library's error, leaving the store as it was.

Tunables re-entered without a type, Arrow timestamps beyond what a
datetime holds, decimals, and the string Arrow types a caller may hand over.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from conftest import T0

from mlos_store import Experiment, InvalidValueError, Status, Storage, Trial
from mlos_store.cli import main

SEC = timedelta(seconds=1)
UTC_US = pa.timestamp("us", tz="UTC")
#: 0001-01-01T00:00:00 and 10000-01-01T00:00:00 UTC in seconds since the epoch: the ends of datetime's range.
YEAR_1_S = -62135596800
YEAR_10000_S = 253402300800


def open_experiment(storage: Storage, tunables: dict[str, Any], experiment_id: str = "exp") -> Experiment:
    return storage.experiment(experiment_id=experiment_id, trial_id=1, root_env_config="env.jsonc",
                              description="hostile values", tunables=tunables, opt_targets={"score": "min"})


def snapshot(exp: Experiment) -> dict[str, Any]:
    """Everything a user reads back from one experiment."""
    pending = [(t.trial_id, dict(t.tunables), t.config(), t.status, t.status_history())
               for t in exp.pending_trials(T0 + timedelta(days=36500), running=True)]
    return {"next_trial_id": exp.trial_id, "pending": pending, "load_table": exp.load_table(),
            "telemetry": exp.telemetry_table().to_pylist()}


@pytest.fixture
def experiment(storage: Storage) -> Iterator[Experiment]:
    """An entered experiment with one tunable, one ended trial with results and telemetry, one running trial."""
    with open_experiment(storage, {"x": 0}) as exp:
        done = exp.new_trial({"x": 1}, config={"k": "v"})
        done.update_telemetry(Status.RUNNING, T0, [(T0, "cpu", 0.5), (T0, "state", "warm")])
        done.update(Status.SUCCEEDED, T0 + SEC, {"score": 1.5})
        exp.new_trial({"x": 2}).update(Status.RUNNING, T0)
        yield exp


def running(exp: Experiment) -> Trial:
    """The fixture's running trial."""
    trial = exp.get_trial_by_id(2)
    assert trial is not None
    return trial


def arrow_points(ts: pa.Array, value: pa.Array | None = None, metric: pa.Array | None = None) -> pa.Table:
    n = len(ts)
    return pa.table({"ts": ts, "metric": metric if metric is not None else pa.array(["m"] * n),
                     "value": value if value is not None else pa.array([1.0] * n)})


def with_trial_id(points: pa.Table, trial_id: int) -> pa.Table:
    return points.add_column(0, "trial_id", pa.array([trial_id] * points.num_rows, pa.int64()))


# ---------------------------------------------------------------- 7: re-entering with a None default


def test_reentering_with_a_none_default_keeps_the_stored_type(storage: Storage) -> None:
    with open_experiment(storage, {"x": 0}) as exp:
        exp.new_trial({"x": 1})
    with open_experiment(storage, {"x": None}) as exp:
        before = snapshot(exp)
        with pytest.raises(InvalidValueError, match=re.escape("tunable 'x' holds int values, got str 'fast'")):
            exp.new_trial({"x": "fast"})
        assert snapshot(exp) == before
        assert exp.tunables.type_of("x") is int
        assert exp.tunables.default("x") is None  # the given default stays: only its type comes from the store
        assert dict(exp.new_trial({"x": 2.5}).tunables) == {"x": 2.5}  # a float fits an int tunable, as before
        assert dict(exp.new_trial({}).tunables) == {"x": None}


def test_reentering_with_a_none_default_types_the_tunables_of_its_trials(storage: Storage) -> None:
    """A trial's tunables, new or restored, check values assigned to them against the stored type too."""
    with open_experiment(storage, {"x": "a"}):
        pass
    with open_experiment(storage, {"x": None}) as exp:
        trial = exp.new_trial({"x": "b"})
        restored = exp.get_trial_by_id(trial.trial_id)
        assert restored is not None
        for tunables in (trial.tunables, restored.tunables):
            with pytest.raises(InvalidValueError, match=re.escape("tunable 'x' holds str values, got int 3")):
                tunables.assign({"x": 3})


def test_a_tunable_stored_with_a_none_default_takes_the_type_given_on_reentry(storage: Storage) -> None:
    """Stored without a type, nothing in the store says otherwise: the declaration given now decides."""
    with open_experiment(storage, {"x": None}) as exp:
        exp.new_trial({"x": "fast"})
    with open_experiment(storage, {"x": 0}) as exp:
        with pytest.raises(InvalidValueError, match=re.escape("tunable 'x' holds int values, got str 'slow'")):
            exp.new_trial({"x": "slow"})
        assert dict(exp.new_trial({"x": 4}).tunables) == {"x": 4}
        # The trial stored before still comes back as it is.
        assert [dict(t.tunables) for t in exp.pending_trials(T0 + timedelta(days=36500), running=False)] \
            == [{"x": "fast"}, {"x": 4}]
        restored = exp.get_trial_by_id(1)
        assert restored is not None and dict(restored.tunables) == {"x": "fast"}


# ---------------------------------------------------------------- 8 and 9: Arrow timestamps out of range

OUT_OF_RANGE = [
    pytest.param(pa.array([10**17], pa.timestamp("s", tz="UTC")), "100000000000000000",
                 id="s-wraps-in-micros"),
    pytest.param(pa.array([2**63 - 1], pa.timestamp("ms", tz="UTC")), str(2**63 - 1), id="ms-int64-max"),
    pytest.param(pa.array([-(2**63)], pa.timestamp("ms", tz="UTC")), str(-(2**63)), id="ms-int64-min"),
    pytest.param(pa.array([10**17], pa.timestamp("s")), "100000000000000000", id="naive-s-wraps-in-micros"),
    pytest.param(pa.array([YEAR_10000_S], pa.timestamp("s", tz="UTC")), str(YEAR_10000_S), id="year-10000"),
    pytest.param(pa.array([YEAR_10000_S * 10**6], UTC_US), str(YEAR_10000_S * 10**6), id="us-year-10000"),
    pytest.param(pa.array([YEAR_10000_S], pa.timestamp("s")), str(YEAR_10000_S), id="naive-year-10000"),
    pytest.param(pa.array([YEAR_1_S - 1], pa.timestamp("s", tz="UTC")), str(YEAR_1_S - 1), id="year-0"),
    pytest.param(pa.array([0, YEAR_10000_S * 1000], pa.timestamp("ms", tz="UTC")), str(YEAR_10000_S * 1000),
                 id="second-row"),
]


def _range_message(what: str, ts: pa.Array, raw: str) -> str:
    """The refusal of ``ts``, whose last row is the first out of range."""
    return re.escape(f"{what}: telemetry column 'ts' row {len(ts) - 1} holds {raw} ({ts.type}), outside years "
                     "1 to 9999, the range timestamps can be read back in")


@pytest.mark.parametrize(("ts", "raw"), OUT_OF_RANGE)
def test_update_telemetry_refuses_arrow_timestamps_outside_years_1_to_9999(
        experiment: Experiment, ts: pa.Array, raw: str) -> None:
    trial = running(experiment)
    before = snapshot(experiment)
    with pytest.raises(InvalidValueError, match=_range_message(f"trial {trial}", ts, raw)):
        trial.update_telemetry(Status.RUNNING, T0, arrow_points(ts))
    assert snapshot(experiment) == before


@pytest.mark.parametrize(("ts", "raw"), OUT_OF_RANGE)
def test_bulk_ingest_and_buffer_refuse_arrow_timestamps_outside_years_1_to_9999(
        experiment: Experiment, ts: pa.Array, raw: str) -> None:
    before = snapshot(experiment)
    with pytest.raises(InvalidValueError, match=_range_message("experiment 'exp'", ts, raw)):
        experiment.ingest_telemetry(with_trial_id(arrow_points(ts), 2))
    buffer = experiment.telemetry_buffer()
    with pytest.raises(InvalidValueError, match=_range_message("experiment 'exp' trial 2", ts, raw)):
        buffer.add(2, arrow_points(ts))
    buffer.flush()
    assert snapshot(experiment) == before


@pytest.mark.parametrize("ts", [
    pytest.param(pa.array([YEAR_10000_S * 10**6 - 1, YEAR_1_S * 10**6], UTC_US), id="us-ends"),
    pytest.param(pa.array([YEAR_10000_S - 1, YEAR_1_S], pa.timestamp("s", tz="UTC")), id="s-ends"),
    pytest.param(pa.array([2**63 - 1, -(2**63)], pa.timestamp("ns", tz="UTC")), id="ns-int64-ends"),
])
def test_arrow_timestamps_at_the_ends_of_the_range_are_stored_and_read_back(
        experiment: Experiment, ts: pa.Array) -> None:
    trial = running(experiment)
    trial.update_telemetry(Status.RUNNING, T0, arrow_points(ts))
    expected = sorted(ts.cast(UTC_US, safe=False).to_pylist())
    assert [t for t, _, _ in experiment.load_telemetry(trial.trial_id)] == expected
    summary = experiment.telemetry_summary().to_pylist()
    assert [(row["first_ts"], row["last_ts"]) for row in summary if row["trial_id"] == trial.trial_id] \
        == [(expected[0], expected[-1])]


def test_naive_arrow_timestamps_leaving_the_calendar_in_utc_are_refused(
        experiment: Experiment, new_york_local_time: None) -> None:
    """9999-12-31T23:00 in New York is already year 10000 in UTC."""
    trial = running(experiment)
    before = snapshot(experiment)
    ts = pa.array([datetime(9999, 12, 31, 23)], pa.timestamp("us"))
    with pytest.raises(InvalidValueError, match=re.escape(
            f"trial {trial}: telemetry column 'ts' value datetime.datetime(9999, 12, 31, 23, 0) is out of range "
            "in UTC")):
        trial.update_telemetry(Status.RUNNING, T0, arrow_points(ts))
    assert snapshot(experiment) == before


def test_cli_reads_telemetry_after_a_refused_far_future_batch(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "store.duckdb"
    with Storage(path) as storage, open_experiment(storage, {"x": 0}) as exp:
        trial = exp.new_trial({"x": 1})
        trial.update_telemetry(Status.RUNNING, T0, [(T0, "cpu", 0.5)])
        with pytest.raises(InvalidValueError):
            trial.update_telemetry(Status.RUNNING, T0, arrow_points(pa.array([YEAR_10000_S], pa.timestamp("s"))))
    assert main(["telemetry", str(path), "exp", "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.splitlines()[1:] == ['"exp",1,2026-01-01 12:00:00.123456Z,"cpu",0.5']


# ---------------------------------------------------------------- 10: decimals are refused, not rounded


@pytest.mark.parametrize("value", [
    pytest.param(pa.array([Decimal("1.10")], pa.decimal128(5, 2)), id="decimal128"),
    pytest.param(pa.array([Decimal("0.1")], pa.decimal256(40, 1)), id="decimal256"),
    pytest.param(pa.array([Decimal("12345678901234567890.1")], pa.decimal128(38, 1)), id="beyond-float"),
])
def test_arrow_decimal_telemetry_values_are_refused_suggesting_float_or_string(
        experiment: Experiment, value: pa.Array) -> None:
    trial = running(experiment)
    before = snapshot(experiment)
    message = (f"telemetry column 'value' is {value.type}, which the store cannot keep exactly: "
               "cast it to float64 or string first")
    with pytest.raises(InvalidValueError, match=re.escape(f"trial {trial}: {message}")):
        trial.update_telemetry(Status.RUNNING, T0, arrow_points(pa.array([T0], UTC_US), value))
    with pytest.raises(InvalidValueError, match=re.escape(f"experiment 'exp': {message}")):
        experiment.ingest_telemetry(with_trial_id(arrow_points(pa.array([T0], UTC_US), value), 2))
    assert snapshot(experiment) == before


DECIMAL_ADVICE = "Decimal('1.1') cannot be stored exactly: pass float(value) or str(value)"


def test_python_decimals_are_refused_everywhere_suggesting_float_or_string(storage: Storage,
                                                                           experiment: Experiment) -> None:
    trial = running(experiment)
    before = snapshot(experiment)
    cases = [
        (lambda: experiment.new_trial({"x": Decimal("1.1")}), f"tunable 'x': {DECIMAL_ADVICE}"),
        (lambda: experiment.new_trial({"x": 1}, config={"d": Decimal("1.1")}),
         f"experiment 'exp' trial config 'd': {DECIMAL_ADVICE}"),
        (lambda: experiment.new_trial({"x": 1}, config={"d": [1, {"e": Decimal("1.1")}]}),
         f"experiment 'exp' trial config 'd': {DECIMAL_ADVICE}"),
        (lambda: trial.update_telemetry(Status.RUNNING, T0, [(T0, "m", 1.0), (T0 + SEC, "m", Decimal("1.1"))]),
         f"trial {trial}: telemetry value row 1: {DECIMAL_ADVICE}"),
        (lambda: trial.update(Status.SUCCEEDED, T0, {"score": Decimal("1.1")}),
         f"trial {trial} metric 'score': {DECIMAL_ADVICE}"),
    ]
    for call, message in cases:
        with pytest.raises(InvalidValueError, match=re.escape(message)):
            call()  # type: ignore[no-untyped-call]
    with pytest.raises(InvalidValueError, match=re.escape(f"default of tunable 'y': {DECIMAL_ADVICE}")):
        open_experiment(storage, {"y": Decimal("1.1")}, experiment_id="other")
    assert snapshot(experiment) == before


# ---------------------------------------------------------------- 17: string Arrow types


@pytest.mark.parametrize("string_type", [pa.string_view(), pa.large_string()], ids=str)
def test_string_view_and_large_string_metric_and_value_columns_are_stored_as_strings(
        experiment: Experiment, string_type: pa.DataType) -> None:
    trial = running(experiment)
    ts = pa.array([T0, T0 + SEC], UTC_US)
    trial.update_telemetry(Status.RUNNING, T0, arrow_points(ts, pa.array(["idle", "busy"], string_type),
                                                            pa.array(["state", "state"], string_type)))
    experiment.ingest_telemetry(with_trial_id(arrow_points(
        pa.array([T0 + 2 * SEC], UTC_US), pa.array([0.5]), pa.array(["cpu"], string_type)), 2))
    assert experiment.load_telemetry(trial.trial_id) == [(T0, "state", "idle"), (T0 + SEC, "state", "busy"),
                                                         (T0 + 2 * SEC, "cpu", 0.5)]


@pytest.mark.parametrize("string_type", [pa.string_view(), pa.large_string()], ids=str)
@pytest.mark.parametrize("names", [["m", ""], ["m", None]], ids=["empty", "null"])
def test_string_view_and_large_string_metric_columns_with_empty_names_are_refused(
        experiment: Experiment, string_type: pa.DataType, names: list[str | None]) -> None:
    trial = running(experiment)
    before = snapshot(experiment)
    points = arrow_points(pa.array([T0, T0 + SEC], UTC_US), metric=pa.array(names, string_type))
    with pytest.raises(InvalidValueError, match=re.escape(
            f"trial {trial}: telemetry column 'metric' holds null or empty names")):
        trial.update_telemetry(Status.RUNNING, T0, points)
    assert snapshot(experiment) == before
