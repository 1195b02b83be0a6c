"""Behaviour of Experiment: its context, trial numbering, objectives, new_trial and the reads."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import FAR_FUTURE, FINAL_STATUSES, OPT_TARGETS, T0, TUNABLE_DEFAULTS

from mlos_store import (
    Experiment,
    ExperimentStateError,
    InvalidValueError,
    ObjectiveConflictError,
    QueryError,
    Status,
    Storage,
    Trial,
    TunableConflictError,
    Tunables,
    UnknownObjectError,
)

# ---------------------------------------------------------------- helpers


def make_experiment(storage: Storage, experiment_id: str = "exp", *, trial_id: int = 1,
                    description: str = "test experiment", tunables: Any = None,
                    opt_targets: dict[str, str] | None = None) -> Experiment:
    """A not-yet-entered experiment; defaults match the `experiment` fixture."""
    return storage.experiment(
        experiment_id=experiment_id,
        trial_id=trial_id,
        root_env_config="env.jsonc",
        description=description,
        tunables=dict(TUNABLE_DEFAULTS) if tunables is None else tunables,
        opt_targets=dict(OPT_TARGETS) if opt_targets is None else opt_targets,
    )


def stored_objectives(storage: Storage, experiment_id: str = "exp") -> dict[str, str]:
    engine = storage.engine
    table = engine.fetch_table(engine.catalog.objective_list, experiment_id=experiment_id)
    return dict(zip(table.column("optimization_target").to_pylist(),
                    table.column("optimization_direction").to_pylist()))


def pending_ids(exp: Experiment, timestamp: datetime = FAR_FUTURE, *, running: bool = True) -> list[int]:
    return [t.trial_id for t in exp.pending_trials(timestamp, running=running)]


def trial_with_status(exp: Experiment, status: Status, tunables: Any = None,
                      metrics: dict[str, Any] | None = None) -> Trial:
    """A new trial moved to ``status`` (through RUNNING for a final one)."""
    trial = exp.new_trial({} if tunables is None else tunables)
    if status == Status.PENDING:
        return trial
    if status in (Status.READY, Status.RUNNING):
        trial.update(status, T0)
        return trial
    trial.update(Status.RUNNING, T0)
    trial.update(status, T0 + timedelta(seconds=1), {"score": 0.0} if metrics is None else metrics)
    return trial


class FakeTunable:
    def __init__(self, name: str, value: Any, default: Any) -> None:
        self.name, self.value, self.default = name, value, default


class FakeTunableGroups:
    """Shaped like mlos_bench's TunableGroups: iterating yields (tunable, group) pairs."""

    def __init__(self, values: dict[str, Any], defaults: dict[str, Any]) -> None:
        self._tunables = [FakeTunable(n, values.get(n, d), d) for n, d in defaults.items()]

    def __iter__(self) -> Iterator[tuple[FakeTunable, str]]:
        return iter((t, "group") for t in self._tunables)


# ---------------------------------------------------------------- context manager


def test_entering_twice_without_leaving_raises(experiment: Experiment) -> None:
    with pytest.raises(ExperimentStateError, match="'exp'") as info:
        experiment.__enter__()
    assert isinstance(info.value, RuntimeError)


def test_new_trial_before_entering_raises(storage: Storage) -> None:
    exp = make_experiment(storage)
    with pytest.raises(ExperimentStateError, match="'exp'") as info:
        exp.new_trial({})
    assert isinstance(info.value, RuntimeError)


def test_new_trial_after_leaving_raises_and_stores_nothing(storage: Storage) -> None:
    exp = make_experiment(storage)
    with exp:
        exp.new_trial({})
    with pytest.raises(ExperimentStateError, match="'exp'"):
        exp.new_trial({})
    assert pending_ids(exp) == [1]


def test_experiment_can_be_entered_again_after_leaving(storage: Storage) -> None:
    exp = make_experiment(storage)
    with exp:
        exp.new_trial({})
    with exp:
        assert exp.new_trial({}).trial_id == 2


# ---------------------------------------------------------------- trial numbering


def test_first_trial_gets_the_constructor_trial_id(storage: Storage) -> None:
    with make_experiment(storage, trial_id=7) as exp:
        assert exp.trial_id == 7
        assert exp.new_trial({}).trial_id == 7
        assert exp.trial_id == 8


def test_reentering_continues_numbering_after_largest_stored_id(storage: Storage) -> None:
    with make_experiment(storage) as exp:
        ids = [exp.new_trial({}).trial_id for _ in range(3)]
    assert ids == [1, 2, 3]
    with make_experiment(storage, trial_id=1) as again:
        assert again.trial_id == 4
        assert again.new_trial({}).trial_id == 4
        assert again.trial_id == 5


def test_constructor_trial_id_above_stored_max_is_the_floor(storage: Storage) -> None:
    with make_experiment(storage) as exp:
        exp.new_trial({})
        exp.new_trial({})
    with make_experiment(storage, trial_id=10) as again:
        assert again.trial_id == 10
        assert again.new_trial({}).trial_id == 10
        assert again.new_trial({}).trial_id == 11


def test_reentering_before_any_trial_keeps_the_stored_first_trial_id(storage: Storage) -> None:
    with make_experiment(storage, trial_id=50) as exp:
        assert exp.trial_id == 50
    with make_experiment(storage, trial_id=1) as again:
        assert again.trial_id == 50
        assert again.new_trial({}).trial_id == 50
        assert again.trial_id == 51
    with make_experiment(storage, trial_id=1) as third:
        assert third.new_trial({}).trial_id == 51


def test_reentering_with_a_higher_first_trial_id_before_any_trial_uses_it(storage: Storage) -> None:
    with make_experiment(storage, trial_id=50):
        pass
    with make_experiment(storage, trial_id=70) as again:
        assert again.trial_id == 70
        assert again.new_trial({}).trial_id == 70


def test_trial_id_property_does_not_consume_ids(experiment: Experiment) -> None:
    assert experiment.trial_id == 1
    assert experiment.trial_id == 1
    assert experiment.new_trial({}).trial_id == 1


# ---------------------------------------------------------------- objectives and description


@pytest.mark.parametrize("other_targets", [
    {"score": "max"},
    {"latency": "min"},
    {"score": "min", "latency": "max"},
    {},
], ids=["other-direction", "other-name", "extra-objective", "no-objectives"])
def test_conflicting_objectives_raise_and_keep_stored_ones(storage: Storage, other_targets: dict[str, str]) -> None:
    with make_experiment(storage) as exp:
        exp.new_trial({})
    other = make_experiment(storage, opt_targets=other_targets)
    with pytest.raises(ObjectiveConflictError, match="'exp'") as info:
        other.__enter__()
    assert isinstance(info.value, ValueError)
    assert stored_objectives(storage) == OPT_TARGETS
    with pytest.raises(ExperimentStateError):  # the failed enter left it not entered
        other.new_trial({})
    with make_experiment(storage) as again:  # the stored objectives still work
        assert again.new_trial({}).trial_id == 2


def test_objectives_in_other_order_are_not_a_conflict(storage: Storage) -> None:
    targets = {"score": "min", "latency": "max"}
    with make_experiment(storage, opt_targets=targets):
        pass
    with make_experiment(storage, opt_targets={"latency": "max", "score": "min"}) as again:
        assert again.opt_targets == targets


def test_different_description_is_not_an_error_and_stored_one_stays(storage: Storage) -> None:
    with make_experiment(storage, description="first"):
        pass
    other = make_experiment(storage, description="second")
    with other:
        assert other.description == "first"
    with make_experiment(storage, description="third") as third:
        assert third.description == "first"


def test_reentering_keeps_the_stored_root_env_config(storage: Storage) -> None:
    def experiment(root_env_config: str) -> Experiment:
        return storage.experiment(experiment_id="exp", trial_id=1, root_env_config=root_env_config,
                                  description="d", tunables=dict(TUNABLE_DEFAULTS), opt_targets=dict(OPT_TARGETS))

    with experiment("first.jsonc") as first:
        assert first.root_env_config == "first.jsonc"
    with experiment("second.jsonc") as second:
        assert second.root_env_config == "first.jsonc"


# ---------------------------------------------------------------- tunables on re-entry


def stored_tunable_defaults(storage: Storage, experiment_id: str = "exp") -> list[dict[str, Any]]:
    engine = storage.engine
    return list(engine.fetch_table(engine.catalog.experiment_tunable_list, experiment_id=experiment_id).to_pylist())


@pytest.mark.parametrize(("name", "other_default"), [
    pytest.param("int_knob", "ten", id="int-as-str"),
    pytest.param("int_knob", True, id="int-as-bool"),
    pytest.param("float_knob", "0.5", id="float-as-str"),
    pytest.param("cat_knob", 3, id="str-as-int"),
    pytest.param("bool_knob", 0, id="bool-as-int"),
])
def test_tunable_of_another_type_on_reentry_raises_and_changes_nothing(storage: Storage, name: str,
                                                                      other_default: Any) -> None:
    with make_experiment(storage) as exp:
        first = exp.new_trial({})
    stored = stored_tunable_defaults(storage)
    other = make_experiment(storage, tunables={**TUNABLE_DEFAULTS, name: other_default, "brand_new": 1})
    with pytest.raises(TunableConflictError, match=f"'exp'.*{name}") as info:
        other.__enter__()
    assert isinstance(info.value, ValueError)
    assert stored_tunable_defaults(storage) == stored  # not even the new name was added
    with pytest.raises(ExperimentStateError):  # the failed enter left it not entered
        other.new_trial({})
    with make_experiment(storage) as again:
        assert again.new_trial({}).tunable_config_id == first.tunable_config_id
        assert pending_ids(again) == [1, 2]


def test_tunable_conflict_error_is_exported() -> None:
    import mlos_store

    assert "TunableConflictError" in mlos_store.__all__
    assert issubclass(TunableConflictError, mlos_store.StoreError)
    assert issubclass(TunableConflictError, ValueError)


def test_int_and_float_defaults_on_reentry_are_not_a_conflict(storage: Storage) -> None:
    with make_experiment(storage):
        pass
    stored = stored_tunable_defaults(storage)
    with make_experiment(storage, tunables={**TUNABLE_DEFAULTS, "int_knob": 10.5, "float_knob": 2}) as again:
        trial = again.new_trial({"int_knob": 3.5, "float_knob": 4})
        assert again.load_tunable_config(trial.tunable_config_id)["int_knob"] == 3.5
    assert stored_tunable_defaults(storage) == stored  # the stored defaults stay


def test_new_tunable_on_reentry_is_added_and_usable(storage: Storage) -> None:
    with make_experiment(storage) as exp:
        exp.new_trial({})
    with make_experiment(storage, tunables={**TUNABLE_DEFAULTS, "new_knob": "x"}) as again:
        trial = again.new_trial({"new_knob": "y"})
        assert dict(trial.tunables) == {**TUNABLE_DEFAULTS, "new_knob": "y"}
        assert again.load_tunable_config(trial.tunable_config_id) == {**TUNABLE_DEFAULTS, "new_knob": "y"}
        assert again.new_trial({}).tunables["new_knob"] == "x"
    added = [row for row in stored_tunable_defaults(storage) if row["name"] == "new_knob"]
    assert [(row["value_kind"], row["value_text"]) for row in added] == [("str", "x")]
    with pytest.raises(TunableConflictError, match="new_knob"):  # its type is now stored too
        make_experiment(storage, tunables={**TUNABLE_DEFAULTS, "new_knob": 1}).__enter__()


# ---------------------------------------------------------------- several objects at once


def test_two_entered_objects_share_trials_and_never_collide_on_ids(storage: Storage) -> None:
    a = make_experiment(storage)
    b = make_experiment(storage)
    with a, b:
        ids = []
        for i in range(4):
            ids.append(a.new_trial({"int_knob": i}).trial_id)
            assert b.trial_id == ids[-1] + 1
            ids.append(b.new_trial({"int_knob": i + 100}).trial_id)
            assert a.trial_id == ids[-1] + 1
        assert ids == list(range(1, 9))
        assert pending_ids(a) == pending_ids(b) == ids
        restored = {t.trial_id: t.tunables["int_knob"] for t in a.pending_trials(FAR_FUTURE, running=False)}
        assert restored[2] == 100  # b's trial, seen through a


# ---------------------------------------------------------------- properties


def test_properties_report_what_was_given(storage: Storage) -> None:
    exp = storage.experiment(experiment_id="props", trial_id=3, root_env_config="root.jsonc",
                             description="desc", tunables={"x": 1, "y": "a"},
                             opt_targets={"score": "min", "tput": "max"})
    with exp:
        assert exp.experiment_id == "props"
        assert exp.description == "desc"
        assert exp.root_env_config == "root.jsonc"
        assert exp.opt_targets == {"score": "min", "tput": "max"}
        assert isinstance(exp.tunables, Tunables)
        assert dict(exp.tunables) == {"x": 1, "y": "a"}
        assert exp.tunables.defaults == {"x": 1, "y": "a"}
        assert exp.trial_id == 3


def test_tunables_iterate_in_name_order_whatever_order_they_were_given(storage: Storage) -> None:
    given = {"zeta": 1, "alpha": "a", "Mid": 0.5, "beta": True}
    with make_experiment(storage, "order", tunables=given) as exp:
        assert list(exp.tunables) == sorted(given)
        assert list(exp.tunables.defaults) == sorted(given)
        trial = exp.new_trial({"zeta": 2})
        assert list(trial.tunables) == sorted(given)
        (restored,) = exp.pending_trials(FAR_FUTURE, running=False)
        assert list(restored.tunables) == sorted(given)
        assert list(restored.tunables.items()) == list(trial.tunables.items())


def test_tunables_assign_and_copy_return_new_objects_and_leave_the_original(experiment: Experiment) -> None:
    original = experiment.tunables
    assigned = original.assign({"int_knob": 3})
    copied = original.copy()
    again = assigned.assign({"cat_knob": "z"})
    assert assigned is not original and copied is not original
    assert dict(original) == TUNABLE_DEFAULTS
    assert dict(copied) == TUNABLE_DEFAULTS
    assert dict(assigned) == {**TUNABLE_DEFAULTS, "int_knob": 3}
    assert dict(again) == {**TUNABLE_DEFAULTS, "int_knob": 3, "cat_knob": "z"}
    assert again.defaults == original.defaults == TUNABLE_DEFAULTS
    assert dict(experiment.tunables) == TUNABLE_DEFAULTS
    with pytest.raises(TypeError):
        original["int_knob"] = 5  # type: ignore[index]
    assert dict(experiment.new_trial({}).tunables) == TUNABLE_DEFAULTS


# ---------------------------------------------------------------- new_trial inputs


def test_new_trial_accepts_library_tunables(experiment: Experiment) -> None:
    values = experiment.tunables.assign({"int_knob": 3, "cat_knob": "b"})
    trial = experiment.new_trial(values)
    assert isinstance(trial.tunables, Tunables)
    assert dict(trial.tunables) == {**TUNABLE_DEFAULTS, "int_knob": 3, "cat_knob": "b"}


def test_new_trial_accepts_plain_mapping_and_fills_defaults(experiment: Experiment) -> None:
    trial = experiment.new_trial({"float_knob": 2.5, "bool_knob": True})
    assert isinstance(trial.tunables, Tunables)
    assert dict(trial.tunables) == {**TUNABLE_DEFAULTS, "float_knob": 2.5, "bool_knob": True}


def test_new_trial_accepts_tunable_groups_shaped_object(experiment: Experiment) -> None:
    groups = FakeTunableGroups({"int_knob": 42, "cat_knob": "z"}, TUNABLE_DEFAULTS)
    trial = experiment.new_trial(groups)
    expected = {**TUNABLE_DEFAULTS, "int_knob": 42, "cat_knob": "z"}
    assert isinstance(trial.tunables, Tunables)
    assert dict(trial.tunables) == expected
    assert experiment.load_tunable_config(trial.tunable_config_id) == expected


def test_experiment_accepts_tunable_groups_shaped_object_as_tunables(storage: Storage) -> None:
    groups = FakeTunableGroups({"n": 5}, {"n": 1, "mode": "fast"})
    with make_experiment(storage, "groups", tunables=groups) as exp:
        assert exp.tunables.defaults == {"n": 1, "mode": "fast"}
        trial = exp.new_trial(FakeTunableGroups({"mode": "slow"}, {"n": 1, "mode": "fast"}))
        assert dict(trial.tunables) == {"n": 1, "mode": "slow"}


# ---------------------------------------------------------------- config dedup


def test_identical_tunable_values_share_one_config_id(experiment: Experiment) -> None:
    a = experiment.new_trial({"int_knob": 3})
    b = experiment.new_trial(experiment.tunables.assign({"int_knob": 3}))
    c = experiment.new_trial(FakeTunableGroups({"int_knob": 3}, TUNABLE_DEFAULTS))
    assert a.tunable_config_id == b.tunable_config_id == c.tunable_config_id
    defaults_id = experiment.new_trial({}).tunable_config_id
    assert experiment.new_trial(dict(TUNABLE_DEFAULTS)).tunable_config_id == defaults_id


def test_different_tunable_values_get_different_config_ids(experiment: Experiment) -> None:
    ids = {
        experiment.new_trial({}).tunable_config_id,
        experiment.new_trial({"int_knob": 11}).tunable_config_id,
        experiment.new_trial({"cat_knob": "b"}).tunable_config_id,
        experiment.new_trial({"bool_knob": True}).tunable_config_id,
        experiment.new_trial({"float_knob": 0.25}).tunable_config_id,
    }
    assert len(ids) == 5


def test_identical_values_share_config_id_across_experiments(storage: Storage, experiment: Experiment) -> None:
    mine = experiment.new_trial({"int_knob": 7})
    with make_experiment(storage, "other", opt_targets={"tput": "max"}) as other:
        theirs = other.new_trial({"int_knob": 7})
        assert theirs.tunable_config_id == mine.tunable_config_id
        assert other.new_trial({"int_knob": 8}).tunable_config_id != mine.tunable_config_id


def test_int_float_and_bool_of_equal_value_are_different_configs(storage: Storage) -> None:
    with make_experiment(storage, "free", tunables={"k": None}) as exp:
        as_int = exp.new_trial({"k": 1}).tunable_config_id
        as_float = exp.new_trial({"k": 1.0}).tunable_config_id
        as_bool = exp.new_trial({"k": True}).tunable_config_id
        assert len({as_int, as_float, as_bool}) == 3
        for config_id, value, kind in ((as_int, 1, int), (as_float, 1.0, float), (as_bool, True, bool)):
            stored = exp.load_tunable_config(config_id)["k"]
            assert stored == value and type(stored) is kind


def test_a_str_and_the_value_it_spells_are_different_configs(storage: Storage) -> None:
    """The config hash is over typed values: "1" is not 1, "True" is not True, "None" is not None."""
    values = [1, "1", 1.0, "1.0", True, "True", "true", None, "None", "null"]
    with make_experiment(storage, "free", tunables={"k": None}) as exp:
        config_ids = [exp.new_trial({"k": value}).tunable_config_id for value in values]
        assert len(set(config_ids)) == len(values)
        for config_id, value in zip(config_ids, values):
            stored = exp.load_tunable_config(config_id)["k"]
            assert (stored, type(stored)) == (value, type(value))
        assert [exp.new_trial({"k": value}).tunable_config_id for value in values] == config_ids


def test_int_and_float_values_of_a_float_tunable_are_different_configs(experiment: Experiment) -> None:
    as_int = experiment.new_trial({"float_knob": 1}).tunable_config_id
    as_float = experiment.new_trial({"float_knob": 1.0}).tunable_config_id
    assert as_int != as_float


# ---------------------------------------------------------------- refused input


def _snapshot(exp: Experiment) -> tuple[Any, ...]:
    return exp.trial_id, pending_ids(exp), exp.load_table()


BAD_TUNABLE_VALUES = [
    ({"no_such_knob": 1}, "no_such_knob"),
    ({"int_knob": 1, "typo_knob": 2}, "typo_knob"),
    ({"int_knob": "ten"}, "int_knob"),
    ({"int_knob": [1]}, "int_knob"),
    ({"int_knob": True}, "int_knob"),
    ({"float_knob": "0.5"}, "float_knob"),
    ({"cat_knob": 3}, "cat_knob"),
    ({"bool_knob": 1}, "bool_knob"),
    ({"bool_knob": "true"}, "bool_knob"),
]


def test_unknown_tunable_or_wrong_value_type_is_refused_and_nothing_stored(experiment: Experiment) -> None:
    trial_with_status(experiment, Status.SUCCEEDED, metrics={"score": 1.0})
    before = _snapshot(experiment)
    for values, name in BAD_TUNABLE_VALUES:
        with pytest.raises(InvalidValueError, match=name) as info:
            experiment.new_trial(values)  # type: ignore[arg-type]  # deliberately bad
        assert isinstance(info.value, ValueError)
        assert _snapshot(experiment) == before, values


def test_list_value_for_a_tunable_is_refused_naming_the_tunable(storage: Storage) -> None:
    with make_experiment(storage, "lists", tunables={"a": 1, "b": 2}) as exp:
        with pytest.raises(InvalidValueError, match="tunable 'b'") as info:
            exp.new_trial({"b": [1]})
        assert "default of tunable" not in str(info.value)
        assert "[1]" in str(info.value)
        assert exp.trial_id == 1
        assert pending_ids(exp) == []


def test_wrong_type_in_tunable_groups_shaped_object_is_refused(experiment: Experiment) -> None:
    with pytest.raises(InvalidValueError, match="cat_knob"):
        experiment.new_trial(FakeTunableGroups({"cat_knob": 5}, TUNABLE_DEFAULTS))
    assert experiment.trial_id == 1


NON_JSON_CONFIGS = [
    {"when": datetime(2026, 1, 1, tzinfo=UTC)},
    {"obj": object()},
    {"nested": {"deep": [1, {2, 3}]}},
    {"fn": print},
    {"keys": {1: "one"}},  # JSON would turn the key into "1": it would not come back as stored
    {"deep_keys": [{"ok": {(1, 2): "tuple key"}}]},
]


def test_non_json_config_is_refused_before_anything_is_written(experiment: Experiment) -> None:
    before = _snapshot(experiment)
    for config in NON_JSON_CONFIGS:
        with pytest.raises(ValueError, match="config") as info:
            experiment.new_trial({"int_knob": 99}, config=config)  # type: ignore[arg-type]
        assert isinstance(info.value, InvalidValueError)
        assert _snapshot(experiment) == before, config
    with pytest.raises(KeyError):  # not even the tunable config was stored
        experiment.load_tunable_config(1)


def test_new_trial_is_one_transaction(storage: Storage, experiment: Experiment,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure while storing the trial config (its last write) leaves no trial, config or id used."""
    engine = storage.engine
    original = engine.insert_rows

    def failing_insert(query: Any, data: Any, **params: Any) -> None:
        if query.name == "trial_param_insert":
            raise OSError("disk full")
        original(query, data, **params)

    before = _snapshot(experiment)
    with monkeypatch.context() as patch:
        patch.setattr(engine, "insert_rows", failing_insert)
        with pytest.raises(OSError, match="disk full"):
            experiment.new_trial({"int_knob": 99}, config={"repeat": 2})
    assert _snapshot(experiment) == before
    assert pending_ids(experiment) == []
    with pytest.raises(KeyError):  # the tunable config was not kept either
        experiment.load_tunable_config(1)
    trial = experiment.new_trial({"int_knob": 99}, config={"repeat": 2})
    assert trial.trial_id == 1
    (restored,) = experiment.pending_trials(FAR_FUTURE, running=False)
    assert restored.config()["repeat"] == 2
    assert [s for _, s in restored.status_history()] == [Status.PENDING]


def test_config_that_is_not_a_mapping_is_refused(experiment: Experiment) -> None:
    with pytest.raises(InvalidValueError, match="config"):
        experiment.new_trial({}, config=[("a", 1)])  # type: ignore[arg-type]
    assert experiment.trial_id == 1


# ---------------------------------------------------------------- config round trip


def test_config_values_round_trip_with_their_types(experiment: Experiment) -> None:
    config = {"i": 3, "f": 2.0, "s": "text", "b": True, "n": None,
              "l": [1, 2.5, "x", None, False], "d": {"k": [1, {"z": None}], "t": "u"}}
    experiment.new_trial({}, config=config)
    (restored,) = experiment.pending_trials(FAR_FUTURE, running=False)
    got = restored.config()
    for key, value in config.items():
        assert got[key] == value
        assert type(got[key]) is type(value), key
    assert got["l"][4] is False and type(got["l"][0]) is int and type(got["l"][1]) is float
    assert got["experiment_id"] == "exp" and got["trial_id"] == restored.trial_id


def test_new_trial_config_is_copied_not_referenced(experiment: Experiment) -> None:
    config = {"a": 1}
    trial = experiment.new_trial({}, config=config)
    config["a"] = 2
    assert trial.config()["a"] == 1


# ---------------------------------------------------------------- pending_trials


def test_future_ts_start_is_pending_only_from_its_time(experiment: Experiment) -> None:
    now = datetime.now(UTC)
    start = now + timedelta(hours=1)
    trial = experiment.new_trial({}, ts_start=start)
    assert pending_ids(experiment, now, running=False) == []
    assert pending_ids(experiment, now, running=True) == []
    assert pending_ids(experiment, start, running=False) == [trial.trial_id]  # at or before
    assert pending_ids(experiment, start + timedelta(hours=1), running=False) == [trial.trial_id]


def test_trial_without_ts_start_is_pending_now(experiment: Experiment) -> None:
    trial = experiment.new_trial({})
    assert pending_ids(experiment, datetime.now(UTC), running=False) == [trial.trial_id]


def test_pending_trials_filter_by_status(experiment: Experiment) -> None:
    ids = {status: trial_with_status(experiment, status).trial_id
           for status in [Status.PENDING, Status.READY, Status.RUNNING, *FINAL_STATUSES]}
    assert pending_ids(experiment, running=False) == [ids[Status.PENDING]]
    assert pending_ids(experiment, running=True) == sorted(
        [ids[Status.PENDING], ids[Status.READY], ids[Status.RUNNING]])


def test_pending_trials_come_in_trial_id_order(experiment: Experiment) -> None:
    now = datetime.now(UTC)
    for delta in (3, 1, 2):
        experiment.new_trial({}, ts_start=now - timedelta(hours=delta))
    assert pending_ids(experiment, running=False) == [1, 2, 3]


def test_pending_trials_restore_tunables_and_config(experiment: Experiment) -> None:
    values = {"int_knob": 5, "float_knob": 1.25, "cat_knob": "q", "bool_knob": True}
    made = experiment.new_trial(values, config={"repeat": 2, "tag": "x"})
    other = experiment.new_trial({}, config={"repeat": 1})
    first, second = experiment.pending_trials(FAR_FUTURE, running=False)
    assert first.trial_id == made.trial_id and second.trial_id == other.trial_id
    assert isinstance(first.tunables, Tunables)
    assert dict(first.tunables) == values
    assert dict(second.tunables) == TUNABLE_DEFAULTS
    assert first.tunables.defaults == TUNABLE_DEFAULTS
    assert first.tunable_config_id == made.tunable_config_id
    assert first.config() == made.config() == {"repeat": 2, "tag": "x", "experiment_id": "exp",
                                               "trial_id": made.trial_id, "trial_runner_id": None}
    assert second.config()["repeat"] == 1 and "tag" not in second.config()
    assert first.opt_targets == OPT_TARGETS


# ---------------------------------------------------------------- load


def test_load_returns_only_completed_trials_in_id_order(experiment: Experiment) -> None:
    made: dict[int, Status] = {}
    for status in [Status.FAILED, Status.PENDING, Status.SUCCEEDED, Status.CANCELED,
                   Status.RUNNING, Status.TIMED_OUT, Status.READY, Status.SUCCEEDED]:
        metrics = {"score": float(len(made))} if status.is_completed() else None
        trial = trial_with_status(experiment, status, {"int_knob": len(made)}, metrics)
        made[trial.trial_id] = status
    trial_ids, configs, scores, statuses = experiment.load()
    assert trial_ids == [1, 3, 6, 8]
    assert statuses == [Status.FAILED, Status.SUCCEEDED, Status.TIMED_OUT, Status.SUCCEEDED]
    assert all(isinstance(s, Status) for s in statuses)
    assert scores == [None, {"score": 2.0}, None, {"score": 7.0}]
    assert configs == [{**TUNABLE_DEFAULTS, "int_knob": i - 1} for i in trial_ids]


def test_load_last_trial_id_keeps_only_later_trials(experiment: Experiment) -> None:
    for i in range(5):
        trial_with_status(experiment, Status.SUCCEEDED, {"int_knob": i}, {"score": i})
    assert experiment.load(last_trial_id=3)[0] == [4, 5]
    assert experiment.load(last_trial_id=5) == ([], [], [], [])
    assert experiment.load(last_trial_id=0)[0] == [1, 2, 3, 4, 5]
    assert experiment.load_table(last_trial_id=3).column("trial_id").to_pylist() == [4, 5]


def test_load_of_empty_experiment_is_empty(experiment: Experiment) -> None:
    experiment.new_trial({})
    assert experiment.load() == ([], [], [], [])


def test_load_scores_keep_result_types(experiment: Experiment) -> None:
    trial_with_status(experiment, Status.SUCCEEDED, metrics={"score": 3, "note": "ok", "flag": True,
                                                             "extra": None})
    (scores,) = experiment.load()[2]
    assert scores == {"score": 3, "note": "ok", "flag": True, "extra": None}
    assert type(scores["score"]) is int and scores["flag"] is True


def test_load_of_many_trials() -> None:
    n = 300  # slow to build (a few ms a trial), so in memory only
    with Storage(None) as storage, make_experiment(storage) as experiment:
        _load_many(experiment, n)


def _load_many(experiment: Experiment, n: int) -> None:
    for i in range(n):
        trial = experiment.new_trial({"int_knob": i % 17, "cat_knob": f"c{i % 3}"})
        status = Status.SUCCEEDED if i % 4 else Status.FAILED
        trial.update(status, T0, {"score": float(i)})
    trial_ids, configs, scores, statuses = experiment.load()
    assert trial_ids == list(range(1, n + 1))
    assert [c["int_knob"] for c in configs] == [i % 17 for i in range(n)]
    assert [c["cat_knob"] for c in configs] == [f"c{i % 3}" for i in range(n)]
    assert scores == [{"score": float(i)} if i % 4 else None for i in range(n)]
    assert statuses == [Status.SUCCEEDED if i % 4 else Status.FAILED for i in range(n)]


def _count_queries(storage: Storage, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    engine = storage.engine
    for method in ("fetch_table", "fetch_one", "fetch_value", "count", "execute", "ingest", "insert_rows", "stream"):
        original = getattr(engine, method)

        def counting(*args: Any, _original: Any = original, _method: str = method, **kwargs: Any) -> Any:
            calls.append(_method)
            return _original(*args, **kwargs)

        monkeypatch.setattr(engine, method, counting)
    return calls


def test_load_table_issues_constant_number_of_queries(storage: Storage, experiment: Experiment,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def queries_for(n: int) -> int:
        for i in range(n):
            trial_with_status(experiment, Status.SUCCEEDED, {"int_knob": i}, {"score": i})
        with monkeypatch.context() as patch:
            calls = _count_queries(storage, patch)
            table = experiment.load_table()
            experiment.load()
        assert table.num_rows == experiment.trial_id - 1
        return len(calls)

    few = queries_for(5)
    many = queries_for(45)
    assert few == many
    assert few <= 8


# ---------------------------------------------------------------- other reads


def test_load_tunable_config_returns_the_values(experiment: Experiment) -> None:
    values = {"int_knob": -4, "float_knob": 3.5, "cat_knob": "zz", "bool_knob": True}
    trial = experiment.new_trial(values)
    stored = experiment.load_tunable_config(trial.tunable_config_id)
    assert stored == values
    assert {k: type(v) for k, v in stored.items()} == {k: type(v) for k, v in values.items()}


MALFORMED_IDS = [
    pytest.param(None, "NoneType None", id="none"),
    pytest.param("10", "str '10'", id="str"),
    pytest.param(2.5, "float 2.5", id="float"),
    pytest.param(True, "bool True", id="bool"),
    pytest.param(2**63, f"int {2**63}", id="beyond-int64"),
]


@pytest.mark.parametrize(("read", "what"), [
    pytest.param(lambda exp, bad: exp.load(bad), "last_trial_id", id="load"),
    pytest.param(lambda exp, bad: exp.load_table(bad), "last_trial_id", id="load_table"),
    pytest.param(lambda exp, bad: exp.load_tunable_config(bad), "config_id", id="load_tunable_config"),
    pytest.param(lambda exp, bad: exp.load_telemetry(bad), "trial_id", id="load_telemetry"),
    pytest.param(lambda exp, bad: exp.telemetry_table(trial_ids=[bad]), "trial id", id="telemetry_table"),
])
@pytest.mark.parametrize(("bad", "shown"), MALFORMED_IDS)
def test_malformed_ids_are_refused_naming_them(experiment: Experiment, read: Callable[[Experiment, Any], Any],
                                               what: str, bad: Any, shown: str) -> None:
    trial_with_status(experiment, Status.SUCCEEDED)  # trial 1 and config 1 exist
    with pytest.raises(InvalidValueError, match=re.escape(f"{what} must be an int, got {shown}")) as info:
        read(experiment, bad)
    assert isinstance(info.value, ValueError)


def test_load_by_keyword_refuses_malformed_last_trial_id(experiment: Experiment) -> None:
    with pytest.raises(InvalidValueError, match="last_trial_id.*'1'"):
        experiment.load(last_trial_id="1")  # type: ignore[arg-type]
    assert experiment.load(last_trial_id=-1) == experiment.load()


def test_load_tunable_config_of_unknown_id_raises_key_error(experiment: Experiment) -> None:
    trial = experiment.new_trial({})
    unknown = trial.tunable_config_id + 1000
    with pytest.raises(KeyError, match=str(unknown)) as info:
        experiment.load_tunable_config(unknown)
    assert isinstance(info.value, UnknownObjectError)


def test_load_telemetry_of_unknown_trial_raises_key_error(experiment: Experiment) -> None:
    experiment.new_trial({})
    with pytest.raises(KeyError, match="42") as info:
        experiment.load_telemetry(42)
    assert isinstance(info.value, UnknownObjectError)


def test_load_telemetry_of_trial_of_another_experiment_raises_key_error(storage: Storage,
                                                                       experiment: Experiment) -> None:
    with make_experiment(storage, "other") as other:
        other.new_trial({})
        other.new_trial({})
    experiment.new_trial({})
    with pytest.raises(KeyError, match="2"):
        experiment.load_telemetry(2)


def test_experiments_in_one_store_do_not_see_each_others_trials(storage: Storage, experiment: Experiment) -> None:
    with make_experiment(storage, "other") as other:
        theirs = other.new_trial({"int_knob": 1}, config={"who": "other"})
        theirs.update(Status.SUCCEEDED, T0, {"score": 5.0})
        other.new_trial({}, config={"who": "other"})
    mine = experiment.new_trial({}, config={"who": "me"})
    assert mine.trial_id == 1  # numbering is per experiment
    assert [t.config()["who"] for t in experiment.pending_trials(FAR_FUTURE, running=True)] == ["me"]
    assert experiment.load() == ([], [], [], [])
    assert other.load()[0] == [1]


@pytest.mark.parametrize("big", [2**31, 2**62], ids=["2**31", "2**62"])
def test_trial_id_beyond_32_bits_works(storage: Storage, big: int) -> None:
    """Trial ids are 64-bit (the constructor accepts up to 2**63 - 2): numbering, reads and telemetry."""
    with make_experiment(storage, trial_id=big) as exp:
        trial = exp.new_trial({})
        assert trial.trial_id == big
        assert exp.trial_id == big + 1
        trial.update_telemetry(Status.RUNNING, T0, [(T0, "cpu", 0.5)])
        trial.update(Status.SUCCEEDED, T0 + timedelta(seconds=1), {"score": 1.0})
        assert exp.new_trial({}).trial_id == big + 1
        assert exp.load()[0] == [big]
        assert exp.load(last_trial_id=big - 1)[0] == [big]
        assert exp.load(last_trial_id=big)[0] == []
        assert exp.load_telemetry(big) == [(T0, "cpu", 0.5)]
        assert pending_ids(exp) == [big + 1]
    with make_experiment(storage, trial_id=1) as again:
        assert again.trial_id == big + 2


def test_running_out_of_trial_ids_is_refused_saying_so_and_stores_nothing(storage: Storage) -> None:
    with make_experiment(storage, trial_id=2**63 - 2) as exp:
        assert [exp.new_trial({}).trial_id for _ in range(2)] == [2**63 - 2, 2**63 - 1]
        with pytest.raises(QueryError, match=r"experiment exp has used every trial id: the largest, 2\*\*63 - 1"):
            exp.new_trial({})
        with pytest.raises(QueryError, match="has used every trial id"):
            _ = exp.trial_id
        assert pending_ids(exp) == [2**63 - 2, 2**63 - 1]
    with make_experiment(storage, experiment_id="other", trial_id=1) as other:  # other experiments go on
        assert other.new_trial({}).trial_id == 1


def test_trial_id_out_of_range_is_refused_naming_it(storage: Storage) -> None:
    for bad in (-1, 2**63 - 1, 2**63, True, 1.0, "1"):
        with pytest.raises(InvalidValueError, match=re.escape(repr(bad))):
            make_experiment(storage, trial_id=bad)  # type: ignore[arg-type]
    with make_experiment(storage, trial_id=0) as exp:  # 0 is a valid first id; nothing was left behind
        assert exp.new_trial({}).trial_id == 0
