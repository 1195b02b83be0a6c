"""The analysis side in mlos_bench's shapes: dicts with exact types, telemetry_df, equality, new config data."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from conftest import T0

from mlos_store import Experiment, Status, Storage


@pytest.fixture
def exp(storage: Storage) -> Iterator[Experiment]:
    """Experiment 'mix' whose one tunable config mixes an int and a float."""
    with storage.experiment(experiment_id="mix", trial_id=1, root_env_config="e", description="d",
                            tunables={"x": 0.5, "n": 3}, opt_targets={"score": "min"}) as experiment:
        yield experiment


def _succeed(exp: Experiment, tunables: dict[str, Any], metrics: dict[str, Any],
             config: dict[str, Any] | None = None) -> int:
    trial = exp.new_trial(tunables, config=config)
    trial.update(Status.RUNNING, T0)
    trial.update(Status.SUCCEEDED, T0 + timedelta(seconds=1), metrics)
    return trial.trial_id


def test_dict_forms_keep_each_values_type_when_ints_and_floats_mix(storage: Storage, exp: Experiment) -> None:
    trial_id = _succeed(exp, {}, {"score": 1, "latency": 2.5}, config={"repeat": 2, "weight": 0.25})
    trial = storage.experiments["mix"].trials[trial_id]
    config = trial.tunable_config.config_dict
    assert config == {"n": 3, "x": 0.5} and type(config["n"]) is int and type(config["x"]) is float
    assert trial.results_dict == {"latency": 2.5, "score": 1} and type(trial.results_dict["score"]) is int
    assert trial.metadata_dict == {"repeat": 2, "weight": 0.25} and type(trial.metadata_dict["repeat"]) is int
    # The Arrow tables keep their documented columns: one float64 numeric view.
    assert trial.tunable_config.config_table.column("value").to_pylist() == [3.0, 0.5]


def test_telemetry_df_has_mlos_benchs_three_columns(storage: Storage, exp: Experiment) -> None:
    trial = exp.new_trial({})
    trial.update_telemetry(Status.RUNNING, T0, [(T0, "cpu", 1), (T0, "state", "warm")])
    frame = storage.experiments["mix"].trials[trial.trial_id].telemetry_df
    assert list(frame.columns) == ["ts", "metric", "value"]
    assert [(metric, value) for _, metric, value in frame.itertuples(index=False)] == [("cpu", 1), ("state", "warm")]
    assert storage.experiments["mix"].trials[trial.trial_id].telemetry_table().column_names[:2] == [
        "experiment_id", "trial_id"]


def test_analysis_objects_describing_one_stored_thing_are_equal_and_hash_equal(storage: Storage,
                                                                               exp: Experiment) -> None:
    first = _succeed(exp, {}, {"score": 1})
    _succeed(exp, {"n": 4}, {"score": 2})
    again = _succeed(exp, {}, {"score": 3})
    data = storage.experiments["mix"]
    trial = data.trials[again]
    assert data == storage.experiments["mix"] and hash(data) == hash(storage.experiments["mix"])
    assert trial == data.trials[again] and hash(trial) == hash(data.trials[again])
    assert trial != data.trials[first]
    assert trial.tunable_config == data.tunable_configs[trial.tunable_config_id]
    assert hash(trial.tunable_config) == hash(data.tunable_configs[trial.tunable_config_id])
    group = data.tunable_config_trial_groups[trial.tunable_config_id]
    assert group == trial.tunable_config_trial_group == data.trials[first].tunable_config_trial_group
    assert group.tunable_config_trial_group_id == first
    assert len({group, trial.tunable_config_trial_group, trial, data.trials[again], data}) == 3
    assert trial.tunable_config != group  # different kinds of object never compare equal


def test_add_new_config_data_adds_keys_to_the_stored_trial_config(storage: Storage, exp: Experiment) -> None:
    trial = exp.new_trial({}, config={"repeat": 1})
    trial.add_new_config_data({"host": "vm-3", "cores": 8})
    assert trial.config()["host"] == "vm-3"
    assert storage.experiments["mix"].trials[trial.trial_id].metadata_dict == {"cores": 8, "host": "vm-3",
                                                                                 "repeat": 1}
    assert exp.get_trial_by_id(trial.trial_id).config()["cores"] == 8  # type: ignore[union-attr]


def test_add_new_config_data_refuses_an_existing_key_and_writes_nothing(storage: Storage, exp: Experiment) -> None:
    trial = exp.new_trial({}, config={"repeat": 1})
    with pytest.raises(ValueError, match=r"config already has \['repeat'\]"):
        trial.add_new_config_data({"repeat": 2, "new": True})
    assert storage.experiments["mix"].trials[trial.trial_id].metadata_dict == {"repeat": 1}
    assert "new" not in trial.config()
    with pytest.raises(ValueError, match="not JSON-serialisable"):
        trial.add_new_config_data({"bad": object()})


def test_trial_config_names_its_runner(exp: Experiment) -> None:
    trial = exp.new_trial({})
    assert trial.config()["trial_runner_id"] is None
    trial.set_trial_runner(3)
    assert trial.config()["trial_runner_id"] == 3
    assert exp.get_trial_by_id(trial.trial_id).config()["trial_runner_id"] == 3  # type: ignore[union-attr]
