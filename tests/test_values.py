"""Values and time: type round trips, Arrow column typing, converters, timezones.

The edge-value table below is reused by every round trip: each value must
come back with the same Python type and value (NaN compared with isnan,
-0.0 with its sign) from every documented read.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from conftest import T0

from mlos_store import Experiment, InvalidValueError, Status, Storage
from mlos_store.convert import load_from_table, matched_rows, telemetry_from_table, widen
from mlos_store.values import telemetry_values, utc_datetimes

ENCODING = b"mlos_store.encoding"
NUMERIC_WITH_JSON = b"numeric+json"
NULL = b"mlos_store.null"
LATER = T0 + timedelta(days=1)

EDGE_VALUES = [
    pytest.param(0, id="int-zero"),
    pytest.param(-0.0, id="float-negative-zero"),
    pytest.param(1.5, id="float-1.5"),
    pytest.param(sys.float_info.max, id="float-max"),
    pytest.param(-sys.float_info.max, id="float-min"),
    pytest.param(math.inf, id="inf"),
    pytest.param(-math.inf, id="-inf"),
    pytest.param(math.nan, id="nan"),
    pytest.param(2**63 - 1, id="int64-max"),
    pytest.param(-(2**63), id="int64-min"),
    pytest.param("", id="str-empty"),
    pytest.param("it's", id="str-quote"),
    pytest.param("żółw 🐢 日本語", id="str-unicode"),
    pytest.param(True, id="true"),
    pytest.param(False, id="false"),
    pytest.param(None, id="none"),
]

TOO_BIG_INTS = [
    pytest.param(2**63, id="2**63"),
    pytest.param(-(2**63) - 1, id="-2**63-1"),
    pytest.param(2**100, id="2**100"),
]


# ---------------------------------------------------------------- helpers


def assert_same(actual: Any, expected: Any) -> None:
    """Same type and value; NaN equals NaN, and -0.0 keeps its sign."""
    assert type(actual) is type(expected), (
        f"{actual!r} is {type(actual).__name__}, expected {type(expected).__name__} {expected!r}"
    )
    if isinstance(expected, float):
        if math.isnan(expected):
            assert math.isnan(actual), f"{actual!r} is not NaN"
        else:
            assert actual == expected
            assert math.copysign(1.0, actual) == math.copysign(1.0, expected), f"{actual!r} lost its sign"
    else:
        assert actual == expected


def assert_all_same(actual: list[Any], expected: list[Any]) -> None:
    assert len(actual) == len(expected), (actual, expected)
    for a, e in zip(actual, expected):
        assert_same(a, e)


def assert_reads_same(reads: dict[str, Any], expected: Any) -> None:
    """Every read gives ``expected``; the message lists each read that does not."""
    wrong = []
    for read, actual in reads.items():
        try:
            assert_same(actual, expected)
        except AssertionError:
            wrong.append(f"{read} gave {type(actual).__name__} {actual!r}")
    assert not wrong, f"stored {type(expected).__name__} {expected!r}: " + "; ".join(wrong)


def default_like(value: Any) -> Any:
    """A tunable default of the same type as ``value`` (None accepts any type)."""
    return {bool: True, int: 7, float: 7.5, str: "default", type(None): None}[type(value)]


def new_experiment(storage: Storage, tunables: dict[str, Any], *, experiment_id: str = "values",
                   opt_targets: dict[str, str] | None = None) -> Experiment:
    return storage.experiment(experiment_id=experiment_id, trial_id=1, root_env_config="env.jsonc",
                              description="values test", tunables=tunables,
                              opt_targets={"score": "min"} if opt_targets is None else opt_targets)


def arrow_points(rows: list[tuple[datetime, str, Any]]) -> pa.Table:
    """Telemetry as an Arrow table; pyarrow infers the value column's type."""
    return pa.table({
        "ts": pa.array([r[0] for r in rows], pa.timestamp("us", tz="UTC")),
        "metric": pa.array([r[1] for r in rows], pa.string()),
        "value": pa.array([r[2] for r in rows]),
    })


def is_utc(ts: datetime) -> bool:
    return isinstance(ts, datetime) and ts.tzinfo is not None and ts.utcoffset() == timedelta(0)


@pytest.fixture(scope="module", params=["memory", "file"])
def shared_storage(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storage]:
    """One store per backend, shared by the parametrized tables of cases below.

    Each case uses an experiment of its own (named after the test), so the
    cases stay independent; a fresh store per case would make this file
    several times slower.
    """
    path = None if request.param == "memory" else tmp_path_factory.mktemp("values") / "store.duckdb"
    with Storage(path) as store:
        yield store


@pytest.fixture
def own_id(request: pytest.FixtureRequest) -> str:
    """An experiment id no other test uses."""
    return str(request.node.name)


def score(scores: list[dict[str, Any] | None], index: int) -> dict[str, Any]:
    """``load()``'s scores of one trial known to have succeeded (a dict, never None)."""
    chosen = scores[index]
    assert chosen is not None, scores
    return chosen


def scored(scores: list[dict[str, Any] | None]) -> list[dict[str, Any]]:
    """``load()``'s scores of trials known to have succeeded (each a dict, never None)."""
    assert all(score is not None for score in scores), scores
    return [score for score in scores if score is not None]


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("value", EDGE_VALUES)
def test_edge_value_keeps_type_through_every_documented_read(shared_storage: Storage, own_id: str,
                                                             value: Any) -> None:
    """As tunable value, trial config value, result, and telemetry sent as tuples and as Arrow."""
    with new_experiment(shared_storage, {"x": default_like(value)}, experiment_id=own_id) as exp:
        trial = exp.new_trial({"x": value}, ts_start=T0, config={"c": value})
        (pending,) = exp.pending_trials(LATER, running=False)
        trial.update_telemetry(Status.RUNNING, T0, [(T0, "m", value)])
        trial.update(Status.SUCCEEDED, LATER, {"score": value})
        _, configs, scores, _ = exp.load()
        ((ts, metric, point),) = exp.load_telemetry(trial.trial_id)
        assert (ts, metric) == (T0, "m")
        assert list(score(scores, 0)) == ["score"]
        assert_reads_same({
            "load() configs": configs[0]["x"],
            "load_tunable_config()": exp.load_tunable_config(trial.tunable_config_id)["x"],
            "pending_trials() tunables": pending.tunables["x"],
            "pending_trials() config()": pending.config()["c"],
            "load() scores": score(scores, 0)["score"],
            "load_telemetry() of tuples": point,
        }, value)
        # Arrow ingest: a one-row table whose value column pyarrow typed from the value itself.
        arrow_trial = exp.new_trial({"x": value})
        arrow_trial.update_telemetry(Status.RUNNING, T0, arrow_points([(T0, "m", value)]))
        ((ts, metric, point),) = exp.load_telemetry(arrow_trial.trial_id)
        assert (ts, metric) == (T0, "m")
        assert_reads_same({"load_telemetry() of Arrow": point}, value)


@pytest.mark.parametrize("value", TOO_BIG_INTS)
def test_int_beyond_64_bits_is_refused_everywhere_and_nothing_is_stored(shared_storage: Storage, own_id: str,
                                                                        value: int) -> None:
    with pytest.raises(InvalidValueError, match=str(value)):
        new_experiment(shared_storage, {"x": value})
    with new_experiment(shared_storage, {"x": 1}, experiment_id=own_id) as exp:
        next_id = exp.trial_id
        with pytest.raises(InvalidValueError, match=str(value)):
            exp.new_trial({"x": value}, ts_start=T0)
        with pytest.raises(InvalidValueError, match=str(value)):
            exp.new_trial({"x": 2}, ts_start=T0, config={"c": value})
        assert exp.trial_id == next_id
        assert list(exp.pending_trials(LATER, running=True)) == []
        trial = exp.new_trial({"x": 2})
        with pytest.raises(InvalidValueError, match=str(value)):
            trial.update_telemetry(Status.RUNNING, T0, [(T0, "ok", 1), (T0, "big", value)])
        assert exp.load_telemetry(trial.trial_id) == []
        assert trial.status == Status.PENDING
        trial.update(Status.RUNNING, T0)
        with pytest.raises(InvalidValueError, match=str(value)):
            trial.update(Status.SUCCEEDED, LATER, {"score": value})
        assert trial.status == Status.RUNNING  # type: ignore[comparison-overlap]  # update() changed it
        assert exp.load() == ([], [], [], [])


# ---------------------------------------------------------------- Arrow column typing

# (values stored in successive trials, expected Arrow type, JSON-encoded?, values read back)
TYPING_CASES = [
    pytest.param([1, -2, 2**63 - 1], pa.int64(), False, None, id="ints-int64"),
    pytest.param([0.5, -1.5, math.inf, math.nan], pa.float64(), False, None, id="floats-float64"),
    pytest.param([1, 0.5, -3, 2**53], pa.float64(), False, [1.0, 0.5, -3.0, float(2**53)],
                 id="ints-and-floats-float64"),
    pytest.param([True, False], pa.bool_(), False, None, id="bools-bool"),
    pytest.param(["a", "it's", ""], pa.string(), False, None, id="strs-string"),
    pytest.param([None, None], pa.null(), False, None, id="nones-null"),
    pytest.param([1.5, None], pa.float64(), False, None, id="float-and-none-float64"),
    pytest.param([True, 1, False, 0.0], pa.string(), True, None, id="bool-and-number-json"),
    pytest.param([1, "1", 1.5, "1.5"], pa.string(), True, None, id="number-and-str-json"),
    pytest.param([1, 1.0, True, "1", None, math.nan, -math.inf], pa.string(), True, None, id="everything-json"),
]


def _stored_in_trials(exp: Experiment, values: list[Any]) -> None:
    """One SUCCEEDED trial per value, holding it as tunable 'x' and as result 'm'."""
    for i, value in enumerate(values):
        exp.new_trial({"x": value}).update(Status.SUCCEEDED, T0 + timedelta(seconds=i), {"m": value})


@pytest.mark.parametrize(("values", "arrow_type", "is_json", "read_back"), TYPING_CASES)
def test_column_has_one_type_and_converters_return_exact_values(
    shared_storage: Storage, own_id: str, values: list[Any], arrow_type: pa.DataType, is_json: bool,
    read_back: list[Any] | None
) -> None:
    """The same values as a tunable and a result (load_table) and as telemetry (telemetry_table)."""
    expected = values if read_back is None else read_back
    with new_experiment(shared_storage, {"x": None}, opt_targets={"m": "min"}, experiment_id=own_id) as exp:
        _stored_in_trials(exp, values)
        table = exp.load_table()
        trial = exp.new_trial({"x": None})
        points = [(T0 + timedelta(seconds=i), "m", v) for i, v in enumerate(values)]
        trial.update_telemetry(Status.RUNNING, T0, points)
        telemetry = exp.telemetry_table(trial.trial_id)
        _, configs, scores, _ = exp.load()
        loaded_points = exp.load_telemetry(trial.trial_id)
    for field in (table.schema.field("config.x"), table.schema.field("result.m")):
        assert field.type == arrow_type, field
        metadata = field.metadata or {}
        assert metadata.get(ENCODING) == (b"json" if is_json else None), field
        assert metadata.get(NULL) == b"value", field
    value = telemetry.schema.field("value")
    if is_json:
        # Telemetry keeps a float64 numeric view beside the exact values as JSON.
        assert telemetry.column_names[-2:] == ["value", "value_json"]
        assert value.type == pa.float64(), value
        assert value.metadata == {ENCODING: NUMERIC_WITH_JSON}, value
        companion = telemetry.schema.field("value_json")
        assert companion.type == pa.string(), companion
        assert companion.metadata == {ENCODING: b"json"}, companion
    else:
        assert telemetry.column_names[-1] == "value"
        assert value.type == arrow_type, value
        assert (value.metadata or {}).get(ENCODING) is None, value
        assert (value.metadata or {}).get(NULL) == b"value", value
    assert_all_same([c["x"] for c in configs], expected)
    assert_all_same([s["m"] for s in scored(scores)], expected)
    assert_all_same([c["x"] for c in load_from_table(table)[1]], expected)
    assert [(ts, m) for ts, m, _ in loaded_points] == [(ts, m) for ts, m, _ in points]
    assert_all_same([v for _, _, v in loaded_points], expected)
    assert_all_same([v for _, _, v in telemetry_from_table(telemetry)], expected)


@pytest.mark.parametrize("big", [
    pytest.param(2**53 + 1, id="2**53+1"),
    pytest.param(-(2**53) - 1, id="-2**53-1"),
    pytest.param(2**63 - 1, id="int64-max"),
    pytest.param(-(2**63), id="int64-min"),
])
def test_int_beyond_2_53_mixed_with_floats_is_json_and_comes_back_exact(shared_storage: Storage, own_id: str,
                                                                        big: int) -> None:
    """A float64 column would not hold it exactly, so the column is JSON and the int stays an int."""
    with new_experiment(shared_storage, {"x": 0.5}, opt_targets={"m": "min"}, experiment_id=own_id) as exp:
        _stored_in_trials(exp, [big, 0.5])
        _, configs, scores, _ = exp.load()
        table = exp.load_table()
    assert_all_same([c["x"] for c in configs], [big, 0.5])
    assert_all_same([s["m"] for s in scored(scores)], [big, 0.5])
    for name in ("config.x", "result.m"):
        field = table.schema.field(name)
        assert (field.type, (field.metadata or {}).get(ENCODING)) == (pa.string(), b"json"), name


def test_result_stored_as_none_comes_back_none(experiment: Experiment) -> None:
    experiment.new_trial({}).update(Status.SUCCEEDED, T0, {"score": None, "other": 1.5})
    experiment.new_trial({}).update(Status.SUCCEEDED, T0, {"score": 2.5, "other": 2.5})
    table = experiment.load_table()
    assert table.column("result.score").to_pylist() == [None, 2.5]
    assert table.schema.field("result.score").metadata[NULL] == b"value"
    _, _, scores, _ = experiment.load()
    assert scores == [{"score": None, "other": 1.5}, {"score": 2.5, "other": 2.5}]


def test_metric_not_reported_is_absent_from_scores(experiment: Experiment) -> None:
    experiment.new_trial({}).update(Status.SUCCEEDED, T0, {"score": 1.0, "extra": 3})
    experiment.new_trial({}).update(Status.SUCCEEDED, T0, {"score": 2.0})
    table = experiment.load_table()
    field = table.schema.field("result.extra")
    assert field.type == pa.int64()
    assert field.metadata[NULL] == b"absent"
    assert ENCODING not in field.metadata
    assert table.column("result.extra").to_pylist() == [3, None]
    _, _, scores, _ = experiment.load()
    assert scores == [{"score": 1.0, "extra": 3}, {"score": 2.0}]


def test_stored_none_and_absent_in_one_column_make_it_json(experiment: Experiment) -> None:
    experiment.new_trial({}).update(Status.SUCCEEDED, T0, {"score": 1.0, "extra": None})
    experiment.new_trial({}).update(Status.SUCCEEDED, T0, {"score": 2.0})
    experiment.new_trial({}).update(Status.SUCCEEDED, T0, {"score": 3.0, "extra": 4.5})
    field = experiment.load_table().schema.field("result.extra")
    assert field.type == pa.string()
    assert field.metadata[ENCODING] == b"json"
    assert field.metadata[NULL] == b"absent"
    _, _, scores, _ = experiment.load()
    assert scores == [{"score": 1.0, "extra": None}, {"score": 2.0}, {"score": 3.0, "extra": 4.5}]
    assert list(score(scores, 1)) == ["score"]


def test_unsucceeded_trials_have_no_scores_even_with_results(experiment: Experiment) -> None:
    experiment.new_trial({}).update(Status.FAILED, T0, {"score": 1.0})
    experiment.new_trial({}).update(Status.SUCCEEDED, T0, {"score": 2})
    _, _, scores, statuses = experiment.load()
    assert statuses == [Status.FAILED, Status.SUCCEEDED]
    assert scores[0] is None
    assert_same(score(scores, 1)["score"], 2.0)  # the column mixes 1.0 and 2: float


def test_load_table_columns_are_fixed_then_config_sorted_then_result_sorted(storage: Storage) -> None:
    tunables = {"b": 1, "a": "s", "Z": 0.5, "_q": True, "a.b": 2}
    with new_experiment(storage, tunables) as exp:
        exp.new_trial({}).update(Status.SUCCEEDED, T0, {"y": 1, "score": 0.1, "B": "x", "x": None})
        table = exp.load_table()
    assert table.column_names == [
        "experiment_id", "trial_id", "tunable_config_id", "status", "ts_start", "ts_end",
        *(f"config.{n}" for n in sorted(tunables)),
        *(f"result.{n}" for n in sorted(["y", "score", "B", "x"])),
    ]
    assert table.schema.field("trial_id").type in (pa.int32(), pa.int64())
    for name in ("ts_start", "ts_end"):
        field_type = table.schema.field(name).type
        assert pa.types.is_timestamp(field_type) and field_type.tz in ("UTC", "Etc/UTC", "+00:00"), field_type
    assert table.column("experiment_id").to_pylist() == ["values"]
    assert table.column("status").to_pylist() == ["SUCCEEDED"]


@pytest.mark.parametrize(("tunable_names", "metric_names"), [
    pytest.param(["kd", "nx", "oh"], ["st", "vl", "xy"], id="six-names"),
    pytest.param(["aa", "ca"], ["aa", "ca"], id="same-names-in-config-and-result"),
    pytest.param([f"knob_{i}" for i in range(12)], [f"metric_{i}" for i in range(12)], id="many-names"),
])
def test_each_load_table_column_holds_the_values_of_its_own_name(
    shared_storage: Storage, own_id: str, tunable_names: list[str], metric_names: list[str]
) -> None:
    """Every value is labelled with its name, and columns follow the documented order, whatever the names."""
    tunables = {name: i for i, name in enumerate(tunable_names)}
    results = {name: f"value of {name}" for name in metric_names}
    with new_experiment(shared_storage, tunables, opt_targets={}, experiment_id=own_id) as exp:
        for _ in range(2):
            exp.new_trial({}).update(Status.SUCCEEDED, T0, results)
        table = exp.load_table()
        _, configs, scores, _ = exp.load()
    assert configs == [tunables, tunables]
    assert scores == [results, results]
    for name, value in tunables.items():
        assert table.column(f"config.{name}").to_pylist() == [value, value], name
    for metric, result in results.items():
        assert table.column(f"result.{metric}").to_pylist() == [result, result], metric
    assert table.column_names[6:] == [f"config.{n}" for n in sorted(tunable_names)] + [
        f"result.{n}" for n in sorted(metric_names)]


def test_load_is_the_converter_applied_to_load_table(experiment: Experiment) -> None:
    experiment.new_trial({"int_knob": 1}).update(Status.SUCCEEDED, T0, {"score": 1, "note": "a"})
    experiment.new_trial({"float_knob": 2}).update(Status.FAILED, T0, {"score": 0.5})
    experiment.new_trial({"cat_knob": "b"}).update(Status.SUCCEEDED, T0, {"score": None, "note": True})
    assert experiment.load() == load_from_table(experiment.load_table())
    _, configs, scores, _ = experiment.load()
    assert_same(configs[1]["float_knob"], 2.0)  # 0.5 defaults and an int 2: float column
    assert_same(configs[0]["int_knob"], 1)
    assert_same(configs[2]["cat_knob"], "b")
    assert_same(configs[0]["bool_knob"], False)
    assert_same(score(scores, 0)["note"], "a")
    assert_same(score(scores, 2)["note"], True)


# ---------------------------------------------------------------- telemetry of mixed types


def test_telemetry_of_many_metrics_with_mixed_types_comes_back_exact(experiment: Experiment) -> None:
    trial = experiment.new_trial({})
    sent = [(T0, "a_int", 2**63 - 1), (T0, "b_float", 0.25), (T0, "c_str", "x"), (T0, "d_bool", True),
            (T0, "e_none", None), (T0, "f_int", -(2**63))]
    trial.update_telemetry(Status.RUNNING, T0, sent)
    table = experiment.telemetry_table(trial.trial_id)
    assert table.schema.field("value").metadata[ENCODING] == NUMERIC_WITH_JSON
    assert_all_same(table.column("value").to_pylist(),
                    [float(2**63 - 1), 0.25, None, 1.0, None, float(-(2**63))])
    assert table.column("value_json").to_pylist() == [
        str(2**63 - 1), None, '"x"', "true", "null", str(-(2**63))]
    loaded = experiment.load_telemetry(trial.trial_id)
    assert [(ts, m) for ts, m, _ in loaded] == [(ts, m) for ts, m, _ in sent]
    assert_all_same([v for _, _, v in loaded], [v for _, _, v in sent])
    assert_all_same([v for _, _, v in telemetry_from_table(table)], [v for _, _, v in sent])
    assert_all_same(telemetry_values(table), [v for _, _, v in sent])


# (values sent as one trial's telemetry, numeric view in ``value``, ``value_json``)
MIXED_TELEMETRY_CASES = [
    pytest.param([True, 1, False, 0.0], [1.0, 1.0, 0.0, 0.0], ["true", "1", "false", None], id="bool-and-number"),
    pytest.param([1, "1", 1.5, "1.5"], [1.0, None, 1.5, None], ["1", '"1"', None, '"1.5"'], id="number-and-str"),
    pytest.param([1, 1.0, True, "1", None, math.nan, -math.inf],
                 [1.0, 1.0, 1.0, None, None, math.nan, -math.inf], ["1", None, "true", '"1"', "null", None, None],
                 id="everything"),
    pytest.param(["a", None, -0.0], [None, None, -0.0], ['"a"', "null", None], id="str-none-negative-zero"),
]


@pytest.mark.parametrize(("values", "numeric", "texts"), MIXED_TELEMETRY_CASES)
def test_mixed_telemetry_is_a_numeric_view_plus_json_of_the_rest(
    shared_storage: Storage, own_id: str, values: list[Any], numeric: list[Any], texts: list[str | None]
) -> None:
    """Floats are exact in ``value`` (``value_json`` null); every other row's exact value is its JSON."""
    with new_experiment(shared_storage, {}, opt_targets={}, experiment_id=own_id) as exp:
        trial = exp.new_trial({})
        points = [(T0 + timedelta(seconds=i), "m", v) for i, v in enumerate(values)]
        trial.update_telemetry(Status.RUNNING, T0, points)
        table = exp.telemetry_table(trial.trial_id)
        loaded = exp.load_telemetry(trial.trial_id)
    assert table.column_names == ["experiment_id", "trial_id", "ts", "metric", "value", "value_json"]
    assert_all_same(table.column("value").to_pylist(), numeric)
    assert table.column("value_json").to_pylist() == texts
    assert_all_same([v for _, _, v in loaded], values)
    assert_all_same([v for _, _, v in telemetry_from_table(table)], values)
    assert_all_same(telemetry_values(table), values)


def test_load_table_of_mixed_values_is_still_one_json_column(storage: Storage) -> None:
    """Only telemetry gets the numeric view: a wide load_table column of mixed values stays JSON text."""
    with new_experiment(storage, {"x": None}, opt_targets={"m": "min"}) as exp:
        _stored_in_trials(exp, [1, "a", 2.5])
        table = exp.load_table()
    assert not any(name.endswith("_json") for name in table.column_names)
    for name in ("config.x", "result.m"):
        field = table.schema.field(name)
        assert (field.type, field.metadata[ENCODING]) == (pa.string(), b"json"), name
        assert table.column(name).to_pylist() == ["1", '"a"', "2.5"], name


# ---------------------------------------------------------------- converters on their own


UTC_US = pa.timestamp("us", tz="UTC")


def test_load_from_table_decodes_json_and_absent_cells() -> None:
    schema = pa.schema([
        ("experiment_id", pa.string()), ("trial_id", pa.int32()), ("tunable_config_id", pa.int64()),
        ("status", pa.string()), ("ts_start", UTC_US), ("ts_end", UTC_US),
        pa.field("config.x", pa.float64(), metadata={NULL: b"value"}),
        pa.field("result.mixed", pa.string(), metadata={ENCODING: b"json", NULL: b"absent"}),
        pa.field("result.sparse", pa.int64(), metadata={NULL: b"absent"}),
    ])
    table = pa.Table.from_pydict({
        "experiment_id": ["e"] * 5,
        "trial_id": [1, 2, 3, 4, 5],
        "tunable_config_id": [1, 1, 1, 1, 1],
        "status": ["SUCCEEDED"] * 4 + ["FAILED"],
        "ts_start": [T0] * 5,
        "ts_end": [T0] * 5,
        "config.x": [1.5, None, -0.0, math.inf, 2.0],
        "result.mixed": ["1", "1.0", "true", None, '"1"'],
        "result.sparse": [None, 7, None, 8, None],
    }, schema=schema)
    trial_ids, configs, scores, statuses = load_from_table(table)
    assert trial_ids == [1, 2, 3, 4, 5]
    assert statuses == [Status.SUCCEEDED] * 4 + [Status.FAILED]
    assert_all_same([c["x"] for c in configs], [1.5, None, -0.0, math.inf, 2.0])
    assert scores[:4] == [{"mixed": 1}, {"mixed": 1.0, "sparse": 7}, {"mixed": True}, {"sparse": 8}]
    assert_same(score(scores, 0)["mixed"], 1)
    assert_same(score(scores, 1)["mixed"], 1.0)
    assert scores[4] is None


def test_telemetry_from_table_decodes_json_values() -> None:
    schema = pa.schema([
        ("experiment_id", pa.string()), ("trial_id", pa.int32()), ("ts", UTC_US), ("metric", pa.string()),
        pa.field("value", pa.string(), metadata={ENCODING: b"json", NULL: b"value"}),
    ])
    ts = [T0, T0, T0 + timedelta(microseconds=1), T0 + timedelta(microseconds=1)]
    table = pa.Table.from_pydict({
        "experiment_id": ["e"] * 4,
        "trial_id": [1] * 4,
        "ts": ts,
        "metric": ["a", "b", "a", "b"],
        "value": ["NaN", "-Infinity", '"it\'s"', "null"],
    }, schema=schema)
    points = telemetry_from_table(table)
    assert [(t, m) for t, m, _ in points] == list(zip(ts, ["a", "b", "a", "b"]))
    assert_all_same([v for _, _, v in points], [math.nan, -math.inf, "it's", None])


def test_telemetry_converters_decode_numeric_view_with_json_companion() -> None:
    """A row's exact value is its value_json when there is one, else its float in value."""
    schema = pa.schema([
        ("experiment_id", pa.string()), ("trial_id", pa.int64()), ("ts", UTC_US), ("metric", pa.string()),
        pa.field("value", pa.float64(), metadata={ENCODING: NUMERIC_WITH_JSON}),
        pa.field("value_json", pa.string(), metadata={ENCODING: b"json"}),
    ])
    n = 9
    ts = [T0 + timedelta(microseconds=i) for i in range(n)]
    table = pa.Table.from_pydict({
        "experiment_id": ["e"] * n,
        "trial_id": [1] * n,
        "ts": ts,
        "metric": ["m"] * n,
        "value": [1.0, 1.0, 0.5, None, None, math.nan, -0.0, None, None],
        "value_json": ["1", "true", None, '"it\'s"', "null", None, None, "[1, 2.5]", '{"k": null}'],
    }, schema=schema)
    expected = [1, True, 0.5, "it's", None, math.nan, -0.0, [1, 2.5], {"k": None}]
    points = telemetry_from_table(table)
    assert [(t, m) for t, m, _ in points] == [(t, "m") for t in ts]
    for values in ([v for _, _, v in points], telemetry_values(table)):
        assert_all_same(values[:7], expected[:7])
        assert values[7:] == expected[7:]


def test_telemetry_from_table_keeps_typed_values() -> None:
    table = pa.table({
        "experiment_id": ["e", "e"],
        "trial_id": pa.array([1, 1], pa.int32()),
        "ts": pa.array([T0, T0], UTC_US),
        "metric": ["a", "b"],
        "value": pa.array([2**63 - 1, None], pa.int64()),
    })
    points = telemetry_from_table(table)
    assert points == [(T0, "a", 2**63 - 1), (T0, "b", None)]


# ---------------------------------------------------------------- time


def test_naive_timestamps_are_local_time_and_come_back_utc(new_york_local_time: None, storage: Storage) -> None:
    """New York is UTC-5 in January and UTC-4 in July; microseconds are kept."""
    winter_local = datetime(2026, 1, 15, 7, 30, 0, 123456)
    summer_local = datetime(2026, 7, 15, 8, 45, 0, 654321)
    winter_utc = datetime(2026, 1, 15, 12, 30, 0, 123456, tzinfo=UTC)
    summer_utc = datetime(2026, 7, 15, 12, 45, 0, 654321, tzinfo=UTC)
    with new_experiment(storage, {"x": 1}) as exp:
        trial = exp.new_trial({"x": 2}, ts_start=winter_local)
        trial.update(Status.SUCCEEDED, summer_local, {"score": 1.0})
        row = exp.load_table().select(["ts_start", "ts_end"]).to_pylist()[0]
    assert row == {"ts_start": winter_utc, "ts_end": summer_utc}
    assert all(is_utc(ts) for ts in row.values())
    assert row["ts_start"].microsecond == 123456 and row["ts_end"].microsecond == 654321


def test_naive_telemetry_timestamps_are_local_time(new_york_local_time: None, storage: Storage) -> None:
    local = datetime(2026, 1, 15, 7, 30, 0, 1)
    utc = datetime(2026, 1, 15, 12, 30, 0, 1, tzinfo=UTC)
    with new_experiment(storage, {"x": 1}) as exp:
        trial = exp.new_trial({"x": 2})
        trial.update_telemetry(Status.RUNNING, local, [(local, "tuple", 1)])
        trial.update_telemetry(Status.RUNNING, local, pa.table({
            "ts": pa.array([local + timedelta(hours=1)], pa.timestamp("us")),
            "metric": ["arrow"], "value": [2]}))
        points = exp.load_telemetry(trial.trial_id)
        assert points == [(utc, "tuple", 1), (utc + timedelta(hours=1), "arrow", 2)]
        assert all(is_utc(ts) for ts, _, _ in points)
        # start and end filters are local time too
        window = exp.telemetry_table(start=local, end=local + timedelta(hours=1))
        assert window.column("metric").to_pylist() == ["tuple"]
        history = trial.status_history()
        assert (utc, Status.RUNNING) in history
        assert all(is_utc(ts) for ts, _ in history)


def test_pending_trials_cutoff_naive_is_local_time(new_york_local_time: None, storage: Storage) -> None:
    with new_experiment(storage, {"x": 1}) as exp:
        exp.new_trial({"x": 2}, ts_start=datetime(2026, 1, 15, 12, 30, tzinfo=UTC))
        # 07:29 New York is 12:29 UTC: before the scheduled start; 07:30 is the start itself.
        assert list(exp.pending_trials(datetime(2026, 1, 15, 7, 29), running=False)) == []
        assert len(list(exp.pending_trials(datetime(2026, 1, 15, 7, 30), running=False))) == 1


@pytest.mark.parametrize("zone", [
    pytest.param(timezone(timedelta(hours=5, minutes=30)), id="+05:30"),
    pytest.param(timezone(timedelta(hours=-9)), id="-09:00"),
    pytest.param(ZoneInfo("Asia/Tokyo"), id="Asia/Tokyo"),
])
def test_aware_non_utc_timestamps_come_back_as_same_instant_in_utc(shared_storage: Storage, own_id: str,
                                                                    zone: Any) -> None:
    start = datetime(2026, 3, 1, 9, 0, 0, 999999, tzinfo=zone)
    end = start + timedelta(minutes=5, microseconds=1)
    with new_experiment(shared_storage, {"x": 1}, experiment_id=own_id) as exp:
        trial = exp.new_trial({"x": 2}, ts_start=start)
        trial.update_telemetry(Status.RUNNING, start, [(start, "tuple", 1.0)])
        trial.update_telemetry(Status.RUNNING, start, pa.table({
            "ts": pa.array([end], pa.timestamp("us", tz="UTC")),
            "metric": ["arrow"], "value": [2.0]}))
        trial.update(Status.SUCCEEDED, end, {"score": 1.0})
        row = exp.load_table().select(["ts_start", "ts_end"]).to_pylist()[0]
        points = exp.load_telemetry(trial.trial_id)
    assert row == {"ts_start": start, "ts_end": end}
    assert is_utc(row["ts_start"]) and is_utc(row["ts_end"])
    assert row["ts_start"].microsecond == start.astimezone(UTC).microsecond
    assert [(ts, m) for ts, m, _ in points] == [(start, "tuple"), (end, "arrow")]
    assert all(is_utc(ts) for ts, _, _ in points)


def test_arrow_telemetry_in_a_named_zone_is_the_same_instant(storage: Storage) -> None:
    local = datetime(2026, 7, 1, 9, 0, tzinfo=ZoneInfo("Europe/Warsaw"))  # UTC+2 in summer
    with new_experiment(storage, {"x": 1}) as exp:
        trial = exp.new_trial({"x": 2})
        trial.update_telemetry(Status.RUNNING, T0, pa.table({
            "ts": pa.array([local], pa.timestamp("us", tz="Europe/Warsaw")),
            "metric": ["m"], "value": [1]}))
        ((ts, _, _),) = exp.load_telemetry(trial.trial_id)
    assert ts == datetime(2026, 7, 1, 7, 0, tzinfo=UTC)
    assert is_utc(ts)


def test_one_microsecond_apart_timestamps_stay_distinct(experiment: Experiment) -> None:
    trial = experiment.new_trial({})
    stamps = [T0, T0 + timedelta(microseconds=1), T0 + timedelta(microseconds=2)]
    trial.update_telemetry(Status.RUNNING, T0, [(ts, "m", i) for i, ts in enumerate(stamps)])
    assert experiment.load_telemetry(trial.trial_id) == [(ts, "m", i) for i, ts in enumerate(stamps)]


@pytest.mark.parametrize("bad", [
    pytest.param("2026-01-01T00:00:00", id="str"),
    pytest.param(1767225600.0, id="epoch-float"),
    pytest.param(1767225600, id="epoch-int"),
    pytest.param(T0.date(), id="date"),
])
def test_non_datetime_timestamps_are_refused(shared_storage: Storage, own_id: str, bad: Any) -> None:
    with new_experiment(shared_storage, {"x": 1}, experiment_id=own_id) as exp:
        trial = exp.new_trial({})
        with pytest.raises(InvalidValueError, match=re.escape(repr(bad))):
            trial.update(Status.RUNNING, bad)
        with pytest.raises(InvalidValueError, match="ts_start"):
            exp.new_trial({}, ts_start=bad)
        with pytest.raises(InvalidValueError, match=re.escape(repr(bad))):
            exp.telemetry_table(start=bad)
        assert trial.status == Status.PENDING
        assert exp.trial_id == trial.trial_id + 1


def test_utc_datetimes_equal_arrows_own_conversion() -> None:
    stamps = [datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
              datetime(2026, 3, 29, 1, 30, 0, 5, tzinfo=UTC),
              datetime(2026, 3, 29, 1, 30, 0, 5, tzinfo=UTC),
              datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)]
    for unit in ("s", "ms", "us"):
        column = pa.chunked_array([pa.array(stamps[:2], pa.timestamp("us", tz="UTC")),
                                   pa.array(stamps[2:], pa.timestamp("us", tz="UTC"))]).cast(
            pa.timestamp(unit, tz="UTC"), safe=False)
        converted = utc_datetimes(column)
        assert converted == column.to_pylist()
        assert [d.utcoffset() for d in converted] == [timedelta(0)] * len(stamps)


def _long(trial_ids: list[int], experiment_ids: list[str] | None = None) -> pa.Table:
    """Long value rows, one float 'config.x' per trial id, the value being the trial id."""
    columns: dict[str, Any] = {"source": ["config"] * len(trial_ids), "name": ["x"] * len(trial_ids),
                               "trial_id": pa.array(trial_ids, pa.int64())}
    if experiment_ids is not None:
        columns["experiment_id"] = experiment_ids
    columns |= {"value_kind": ["float"] * len(trial_ids), "value": [float(t) for t in trial_ids],
                "value_int": pa.nulls(len(trial_ids), pa.int64()), "value_text": pa.nulls(len(trial_ids), pa.string())}
    return pa.table(columns)


def test_values_are_matched_to_their_trials_by_id_not_by_position() -> None:
    trials = pa.table({"trial_id": pa.array([7, 3, 5], pa.int64())})
    values = _long([5, 9, 3, 7])  # another order, and a trial the list lacks (9)
    wide = widen(trials, matched_rows(trials, values))
    assert wide.column("config.x").to_pylist() == [7.0, 3.0, 5.0]


def test_merged_values_are_matched_by_experiment_and_trial_id() -> None:
    trials = pa.table({"experiment_id": ["a", "b", "a"], "trial_id": pa.array([1, 1, 2], pa.int64())})
    values = _long([1, 2, 1], ["b", "a", "a"])
    rows = matched_rows(trials, values, first_row=10)
    assert sorted(zip(rows.column("row_pos").to_pylist(), rows.column("value").to_pylist())) == [
        (10, 1.0), (11, 1.0), (12, 2.0)]
    assert "experiment_id" not in rows.column_names and "trial_id" not in rows.column_names
