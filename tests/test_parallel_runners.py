"""Restoring experiments and trials by id, and assigning trials to runners."""

from __future__ import annotations

import pytest
from conftest import FAR_FUTURE, OPT_TARGETS, T0, TUNABLE_DEFAULTS

from mlos_store import Experiment, InvalidValueError, ObjectiveConflictError, Status, Storage


def test_get_experiment_by_id_restores_the_stored_experiment(storage: Storage, experiment: Experiment) -> None:
    experiment.new_trial({"int_knob": 3})
    restored = storage.get_experiment_by_id("exp", None, None)
    assert restored is not None
    assert (restored.experiment_id, restored.description, restored.root_env_config) == \
        ("exp", "test experiment", "env.jsonc")
    assert restored.opt_targets == OPT_TARGETS
    assert restored.tunables.defaults == TUNABLE_DEFAULTS
    assert restored.trial_id == 2
    with restored:
        assert restored.new_trial({"int_knob": 4}).trial_id == 2


def test_get_experiment_by_id_takes_given_tunables_and_matching_targets(storage: Storage,
                                                                        experiment: Experiment) -> None:
    restored = storage.get_experiment_by_id("exp", {**TUNABLE_DEFAULTS, "int_knob": 99}, {"score": "min"})
    assert restored is not None and restored.tunables["int_knob"] == 99


def test_get_experiment_by_id_is_none_for_an_unknown_id(storage: Storage, experiment: Experiment) -> None:
    assert storage.get_experiment_by_id("nope", None, None) is None
    assert storage.get_experiment_by_id("'; DROP TABLE experiment; --", None, None) is None
    assert storage.get_experiment_by_id("exp", None, None) is not None


def test_get_experiment_by_id_refuses_other_objectives(storage: Storage, experiment: Experiment) -> None:
    with pytest.raises(ObjectiveConflictError, match=r"'exp' is stored with objectives \{'score': 'min'\}"):
        storage.get_experiment_by_id("exp", None, {"score": "max"})


def test_get_trial_by_id_restores_tunables_config_status_and_runner(experiment: Experiment) -> None:
    trial = experiment.new_trial({"int_knob": 3, "cat_knob": "b"}, config={"repeat": [1, 2], "name": "x"})
    trial.set_trial_runner(4)
    trial.update(Status.RUNNING, T0)
    restored = experiment.get_trial_by_id(trial.trial_id)
    assert restored is not None
    assert (restored.trial_id, restored.tunable_config_id) == (trial.trial_id, trial.tunable_config_id)
    assert dict(restored.tunables) == {**TUNABLE_DEFAULTS, "int_knob": 3, "cat_knob": "b"}
    assert restored.config() == {"repeat": [1, 2], "name": "x", "experiment_id": "exp", "trial_id": 1,
                                 "trial_runner_id": 4}
    assert (restored.status, restored.trial_runner_id) == (Status.RUNNING, 4)
    assert experiment.get_trial_by_id(2) is None
    with pytest.raises(InvalidValueError, match="trial_id must be an int"):
        experiment.get_trial_by_id("1")  # type: ignore[arg-type]


def test_runner_is_assigned_while_pending_and_kept_once_running(experiment: Experiment) -> None:
    trial = experiment.new_trial({})
    assert trial.trial_runner_id is None
    assert trial.set_trial_runner(1) == 1
    assert trial.set_trial_runner(2) == 2  # a pending trial may still be moved
    trial.update(Status.RUNNING, T0)
    loser = experiment.get_trial_by_id(trial.trial_id)
    assert loser is not None
    assert loser.set_trial_runner(3) == 2  # the stored runner wins and is returned
    assert loser.trial_runner_id == 2
    assert experiment.get_trial_by_id(trial.trial_id).trial_runner_id == 2  # type: ignore[union-attr]


def test_runner_is_in_the_results_table(storage: Storage, experiment: Experiment) -> None:
    experiment.new_trial({}).set_trial_runner(3)
    experiment.new_trial({})
    assert storage.experiments["exp"].results_table.column("trial_runner_id").to_pylist() == [3, None]


def test_running_trial_without_runner_can_be_assigned(experiment: Experiment) -> None:
    trial = experiment.new_trial({})
    trial.update(Status.RUNNING, T0)
    assert trial.set_trial_runner(5) == 5
    assert trial.set_trial_runner(6) == 5


@pytest.mark.parametrize("runner_id", [-1, 2**31, True, 1.0, "1", None])
def test_bad_runner_id_is_refused_and_changes_nothing(experiment: Experiment, runner_id: object) -> None:
    trial = experiment.new_trial({})
    trial.set_trial_runner(1)
    with pytest.raises(InvalidValueError, match=r"trial exp:1: trial_runner_id must be an int in \[0, 2\*\*31 - 1\]"):
        trial.set_trial_runner(runner_id)  # type: ignore[arg-type]
    assert experiment.get_trial_by_id(1).trial_runner_id == 1  # type: ignore[union-attr]


def test_pending_trials_filter_on_runner_assignment(experiment: Experiment) -> None:
    trials = [experiment.new_trial({"int_knob": i}, ts_start=T0) for i in range(4)]
    trials[1].set_trial_runner(0)
    trials[3].set_trial_runner(7)
    trials[3].update(Status.RUNNING, T0)

    def pending(running: bool, assigned: bool | None) -> list[tuple[int, int | None]]:
        return [(t.trial_id, t.trial_runner_id) for t in
                experiment.pending_trials(FAR_FUTURE, running=running, trial_runner_assigned=assigned)]

    assert pending(False, None) == [(1, None), (2, 0), (3, None)]
    assert pending(False, True) == [(2, 0)]
    assert pending(False, False) == [(1, None), (3, None)]
    assert pending(True, True) == [(2, 0), (4, 7)]
    assert pending(True, False) == [(1, None), (3, None)]
    with pytest.raises(InvalidValueError, match="trial_runner_assigned must be None, True or False, got 1"):
        pending(True, 1)  # type: ignore[arg-type]
