"""Hostile and odd input, property-based: every value is stored and returned exactly, or refused
with a clear error (one of the library's) and nothing changed."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlos_store import Experiment, InvalidValueError, Status, Storage, StoreError

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
_ids = itertools.count()

SQL_TEXT = st.sampled_from(["'", '"', "''", "'; DROP TABLE trial; --", "x' OR '1'='1", "$experiment_id", "%_",
                            "\\", "NULL", "/* */", "\x00", "\u202e", "🐢", " ", ""])
TEXT = st.one_of(SQL_TEXT, st.text(max_size=30), st.text(alphabet=st.characters(), min_size=1000, max_size=3000),
                 st.builds(lambda a, b: a + b, SQL_TEXT, st.text(max_size=10)))
INT = st.one_of(st.integers(min_value=-(2**63), max_value=2**63 - 1), st.sampled_from([0, -1, 2**53 + 1, -(2**63)]))
FLOAT = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                  st.sampled_from([0.0, -0.0, math.nan, math.inf, -math.inf, 5e-324, 1.7976931348623157e308]))
SCALAR = st.one_of(st.none(), st.booleans(), INT, FLOAT, TEXT)
JSON = st.recursive(st.one_of(st.none(), st.booleans(), INT, FLOAT, st.text(max_size=10)),
                    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner,
                                                                                         max_size=4)),
                    max_leaves=10)
HUGE_INT = st.one_of(st.integers(min_value=2**63), st.integers(max_value=-(2**63) - 1))
AWARE = st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=14)),
                                                timezone(timedelta(hours=-12, minutes=-30))]))
TIMESTAMP = st.one_of(st.datetimes(), AWARE,  # naive ones are local time
                      st.sampled_from([datetime.min, datetime.max, datetime(1, 1, 1, tzinfo=UTC),
                                       datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)]))


def same(a: Any, b: Any) -> bool:
    """Exactly equal: same types, NaN equal to NaN, -0.0 not equal to 0.0, containers compared deeply."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def unstorable(value: Any) -> bool:
    """What the store must refuse: ints beyond 64 bits, text that is not valid Unicode."""
    if isinstance(value, int) and not isinstance(value, bool):
        return not -(2**63) <= value < 2**63
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
    return False


@pytest.fixture(scope="module")
def storage() -> Iterator[Storage]:
    with Storage(None) as store:
        yield store


def _fresh(storage: Storage, tunables: dict[str, Any] | None = None, **kwargs: Any) -> Experiment:
    settings_ = {"experiment_id": f"prop-{next(_ids)}", "trial_id": 1, "root_env_config": "env",
                 "description": "", "tunables": tunables or {"x": 0}, "opt_targets": {"score": "min"}, **kwargs}
    return storage.experiment(**settings_)


def _refused_or(action: Any) -> Any:
    """Run ``action``: its result, or the refusal, which must be one of the library's clear errors."""
    try:
        return action()
    except StoreError as exc:
        assert isinstance(exc, ValueError | KeyError | RuntimeError | OSError)
        assert str(exc)
        return exc


@SETTINGS
@given(experiment_id=TEXT, description=TEXT, name=TEXT, value=TEXT)
def test_text_is_stored_exactly_or_refused_clearly(storage: Storage, experiment_id: str, description: str,
                                                   name: str, value: str) -> None:
    unique_id = experiment_id + f"#{next(_ids)}"

    def store() -> Experiment:
        exp = storage.experiment(experiment_id=unique_id, trial_id=1,
                                 root_env_config=description, description=description,
                                 tunables={name: value}, opt_targets={name: "max"})
        with exp:
            trial = exp.new_trial({name: value}, config={name: value, "nested": [value, {name: value}]})
            trial.update_telemetry(Status.RUNNING, datetime(2026, 1, 1, tzinfo=UTC),
                                   [(datetime(2026, 1, 1, tzinfo=UTC), name, value)])
            trial.update(Status.SUCCEEDED, datetime(2026, 1, 2, tzinfo=UTC), {name: value})
        return exp

    outcome = _refused_or(store)
    if isinstance(outcome, StoreError):
        assert isinstance(outcome, InvalidValueError), outcome
        assert name == "" or any(map(unstorable, (experiment_id, description, name, value))), outcome
        if not unstorable(unique_id):
            assert storage.get_experiment_by_id(unique_id) is None  # refused before anything was written
        return
    restored = storage.get_experiment_by_id(outcome.experiment_id, None, None)
    assert restored is not None
    assert (restored.description, restored.root_env_config) == (description, description)
    assert dict(restored.tunables) == {name: value}
    (trial_id,), (config,), (scores,), _ = restored.load()
    assert config == {name: value} and scores == {name: value}
    trial = restored.get_trial_by_id(trial_id)
    assert trial is not None
    assert trial.config() == {name: value, "nested": [value, {name: value}],
                              "experiment_id": outcome.experiment_id, "trial_id": trial_id,
                              "trial_runner_id": None}
    assert [p[1:] for p in restored.load_telemetry(trial_id)] == [(name, value)]


@SETTINGS
@given(value=st.one_of(SCALAR, JSON, HUGE_INT))
def test_values_are_stored_exactly_or_refused_with_nothing_changed(storage: Storage, value: Any) -> None:
    exp = _fresh(storage).__enter__()
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    trial = exp.new_trial({"x": 1})
    outcome = _refused_or(lambda: exp.new_trial({"x": 2}, config={"v": value}))
    if isinstance(outcome, StoreError):
        assert isinstance(outcome, InvalidValueError)
        assert unstorable(value), outcome
        assert exp.trial_id == 2  # the refused trial was not stored
    else:
        assert same(exp.get_trial_by_id(outcome.trial_id).config()["v"], value)  # type: ignore[union-attr]
    telemetry = _refused_or(lambda: trial.update_telemetry(Status.RUNNING, t0, [(t0, "m", value)]))
    if isinstance(telemetry, StoreError):
        assert unstorable(value) or isinstance(value, list | dict), telemetry  # telemetry is scalar
        assert exp.load_telemetry(trial.trial_id) == [] and trial.status == Status.PENDING
    else:
        ((_, _, stored),) = exp.load_telemetry(trial.trial_id)
        assert same(stored, value)
    ended = _refused_or(lambda: trial.update(Status.SUCCEEDED, t0, {"score": 1.0, "v": value}))
    if isinstance(ended, StoreError):
        assert unstorable(value), ended
        assert trial.status != Status.SUCCEEDED and exp.load()[0] == []
    else:
        (score,) = exp.load()[2]
        assert same(score["v"], value)  # type: ignore[index]


@SETTINGS
@given(value=st.one_of(st.none(), st.booleans(), INT, FLOAT, TEXT, HUGE_INT, JSON))
def test_tunable_values_are_stored_exactly_or_refused(storage: Storage, value: Any) -> None:
    default = value if isinstance(value, bool | int | float | str) or value is None else 0
    outcome = _refused_or(lambda: _fresh(storage, {"t": default}).__enter__())
    if isinstance(outcome, StoreError):
        assert unstorable(value), outcome
        return
    trial = _refused_or(lambda: outcome.new_trial({"t": value}))
    if isinstance(trial, StoreError):
        assert isinstance(trial, InvalidValueError) and outcome.trial_id == 1
        assert isinstance(value, list | dict) or unstorable(value), trial
        return
    assert same(outcome.get_trial_by_id(trial.trial_id).tunables["t"], value)
    assert same(outcome.load_tunable_config(trial.tunable_config_id)["t"], value)


@SETTINGS
@given(ts=TIMESTAMP)
def test_timestamps_are_kept_to_the_microsecond_in_utc_or_refused(storage: Storage, ts: datetime) -> None:
    exp = _fresh(storage).__enter__()
    trial = _refused_or(lambda: exp.new_trial({"x": 1}, ts_start=ts))
    if isinstance(trial, StoreError):
        assert isinstance(trial, InvalidValueError) and "out of range" in str(trial)
        assert exp.trial_id == 1
        return
    expected = ts.astimezone(UTC)
    (pending,) = exp.pending_trials(datetime.max.replace(tzinfo=UTC), running=False)
    assert pending.trial_id == trial.trial_id
    trial.update_telemetry(Status.RUNNING, ts, [(ts, "m", 1.0)])
    ((stored, _, _),) = exp.load_telemetry(trial.trial_id)
    assert stored == expected and stored.utcoffset() == timedelta(0)
    trial.update(Status.FAILED, ts)
    (row,) = exp.load_table().to_pylist()
    assert (row["ts_start"], row["ts_end"]) == (expected, expected)
