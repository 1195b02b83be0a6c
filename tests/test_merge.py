"""Experiment.merge: warm starts from other experiments of the same store."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pyarrow as pa
import pytest
from conftest import OPT_TARGETS, T0

from mlos_store import (
    Experiment,
    ExperimentStateError,
    InvalidValueError,
    ObjectiveConflictError,
    Status,
    Storage,
    TunableConflictError,
    UnknownObjectError,
)
from mlos_store.merge import IMPUTED_COLUMN, MergeReport

HERE = {"x": 1, "y": 0.5, "mode": "fast"}


def _experiment(storage: Storage, experiment_id: str, tunables: Mapping[str, Any],
                opt_targets: Mapping[str, str] | None = None) -> Experiment:
    return storage.experiment(experiment_id=experiment_id, trial_id=1, root_env_config="env.jsonc",
                              description=experiment_id, tunables=dict(tunables),
                              opt_targets=dict(opt_targets or OPT_TARGETS))


def _run(exp: Experiment, configs: list[dict[str, Any]], status: Status = Status.SUCCEEDED) -> list[int]:
    """One trial per config, ended with ``status`` (score = its position); their ids."""
    ids = []
    with exp:
        for i, config in enumerate(configs):
            trial = exp.new_trial(config, ts_start=T0)
            trial.update(status, T0 + timedelta(seconds=i + 1),
                         {"score": float(i)} if status == Status.SUCCEEDED else None)
            ids.append(trial.trial_id)
    return ids


@pytest.fixture
def here(storage: Storage) -> Experiment:
    exp = _experiment(storage, "here", HERE)
    _run(exp, [{"x": 5}, {"x": 6, "mode": "slow"}])
    return exp


def test_merge_with_the_same_tunables_appends_the_other_trials_with_their_origin(storage: Storage,
                                                                                 here: Experiment) -> None:
    other_ids = _run(_experiment(storage, "other", HERE), [{"x": 7, "y": 0.25}, {"mode": "slow"}])
    with here:
        [report] = here.merge(["other"])
        table = here.load_table()
        trial_ids, configs, scores, status = here.load()
    assert report == MergeReport("other", newly_merged=True, dropped_tunables=(), imputed_tunables=())
    assert table.column("experiment_id").to_pylist() == ["here", "here", "other", "other"]
    assert trial_ids == [1, 2, -2, -3]  # merged trials listed below every own id (the watermark rule)
    assert table.column("trial_id").to_pylist() == [1, 2] + other_ids  # the Arrow form keeps their origin
    assert table.column(IMPUTED_COLUMN).to_pylist() == [[], [], [], []]
    assert configs == [
        {"x": 5, "y": 0.5, "mode": "fast"},
        {"x": 6, "y": 0.5, "mode": "slow"},
        {"x": 7, "y": 0.25, "mode": "fast"},
        {"x": 1, "y": 0.5, "mode": "slow"},
    ]
    assert scores == [{"score": 0.0}, {"score": 1.0}, {"score": 0.0}, {"score": 1.0}]
    assert status == [Status.SUCCEEDED] * 4


def test_merge_with_disjoint_tunables_imputes_every_tunable_and_drops_theirs(storage: Storage,
                                                                          here: Experiment) -> None:
    _run(_experiment(storage, "disjoint", {"cache_mb": 64}), [{"cache_mb": 128}])
    with here:
        [report] = here.merge(["disjoint"])
        table = here.load_table()
        configs = here.load()[1]
    assert report.dropped_tunables == ("cache_mb",)
    assert report.imputed_tunables == ("mode", "x", "y")
    assert "config.cache_mb" not in table.column_names
    assert configs[2] == HERE
    assert table.column(IMPUTED_COLUMN).to_pylist()[2] == ["mode", "x", "y"]


def test_merge_with_a_renamed_tunable_keeps_the_shared_ones(storage: Storage, here: Experiment) -> None:
    renamed = {"x": 1, "y": 0.5, "speed": "fast"}  # "mode" is called "speed" there
    _run(_experiment(storage, "renamed", renamed), [{"x": 9, "speed": "slow"}])
    with here:
        [report] = here.merge(["renamed"])
        table = here.load_table()
        configs = here.load()[1]
    assert (report.dropped_tunables, report.imputed_tunables) == (("speed",), ("mode",))
    assert configs[2] == {"x": 9, "y": 0.5, "mode": "fast"}
    assert table.column(IMPUTED_COLUMN).to_pylist() == [[], [], ["mode"]]
    assert table.column("config.mode").to_pylist() == ["fast", "slow", "fast"]


def test_merged_ints_widen_a_float_tunable_column(storage: Storage, here: Experiment) -> None:
    _run(_experiment(storage, "ints", {"y": 0}), [{"y": 3}])
    with here:
        here.merge(["ints"])
        table = here.load_table()
        configs = here.load()[1]
    assert table.schema.field("config.y").type == pa.float64()
    assert configs[2]["y"] == 3.0
    assert table.column(IMPUTED_COLUMN).to_pylist()[2] == ["mode", "x"]


def test_a_stored_value_that_does_not_fit_is_imputed_and_flagged(storage: Storage, here: Experiment) -> None:
    # A tunable declared with a None default takes any type, so the mismatch is found per value.
    _run(_experiment(storage, "untyped", {"x": None}), [{"x": "seven"}, {"x": 8}])
    with here:
        here.merge(["untyped"])
        table = here.load_table()
        configs = here.load()[1]
    assert [c["x"] for c in configs] == [5, 6, 1, 8]
    assert table.schema.field("config.x").type == pa.int64()
    assert table.column(IMPUTED_COLUMN).to_pylist()[2:] == [["mode", "x", "y"], ["mode", "y"]]


def test_merging_twice_adds_nothing_and_later_trials_come_in_on_the_next_load(storage: Storage,
                                                                             here: Experiment) -> None:
    other = _experiment(storage, "other", HERE)
    _run(other, [{"x": 7}])
    with here:
        assert here.merge(["other"])[0].newly_merged
        assert [r.newly_merged for r in here.merge(["other", "other"])] == [False]
        assert here.load()[0] == [1, 2, -2]
        _run(other, [{"x": 8}])
        trial_ids, configs, _, _ = here.load()
    assert trial_ids == [1, 2, -2, -3]
    assert [c["x"] for c in configs] == [5, 6, 7, 8]


def test_only_completed_merged_trials_are_loaded(storage: Storage, here: Experiment) -> None:
    other = _experiment(storage, "other", HERE)
    _run(other, [{"x": 7}], Status.FAILED)
    _run(other, [{"x": 8}], Status.CANCELED)
    with other:
        other.new_trial({"x": 9}).update(Status.RUNNING, T0)
    with here:
        here.merge(["other"])
        trial_ids, configs, scores, status = here.load()
    assert trial_ids == [1, 2, -2]
    assert (configs[2]["x"], scores[2], status[2]) == (7, None, Status.FAILED)


def test_incremental_load_returns_only_own_newer_trials(storage: Storage, here: Experiment) -> None:
    """The watermark rule: merged trials (even with larger ids) never appear after last_trial_id."""
    other = storage.experiment(experiment_id="other", trial_id=100, root_env_config="", description="",
                               tunables=HERE, opt_targets=OPT_TARGETS)
    _run(other, [{"x": 7}, {"x": 8}])
    with here:
        here.merge(["other"])
    newer = _run(here, [{"x": 3}])
    with here:
        assert here.load(last_trial_id=2)[0] == newer
        assert here.load(last_trial_id=0)[0] == [1, 2] + newer
        assert here.load()[0] == [1, 2] + newer + [-2, -3]
        assert here.load(last_trial_id=-2)[0] == [1, 2] + newer  # only merged trials seen so far: all own ones
        incremental = here.load_table(last_trial_id=2)
    assert incremental.column("experiment_id").to_pylist() == ["here"]
    assert incremental.column(IMPUTED_COLUMN).to_pylist() == [[]]


def test_a_schedulers_max_trial_id_watermark_sees_every_own_trial_once(storage: Storage) -> None:
    """mlos_bench's scheduler loop: load(last), register, last = max(trial_ids, default=last).

    The merged experiment's ids (1..50) are far above the experiment's own;
    every trial must still reach the optimizer exactly once.
    """
    big = storage.experiment(experiment_id="big", trial_id=1, root_env_config="", description="",
                             tunables=HERE, opt_targets=OPT_TARGETS)
    merged_ids = _run(big, [{"x": i} for i in range(50)])
    fresh = _experiment(storage, "fresh", HERE)
    registered: list[tuple[str, int]] = []
    last = -1

    def scheduler_step(exp: Experiment) -> None:
        nonlocal last
        trial_ids, configs, _, _ = exp.load(last)
        registered.extend(("merged" if tid < 0 else "own", configs[i]["x"]) for i, tid in enumerate(trial_ids))
        last = max(trial_ids, default=last)

    with fresh:
        fresh.merge(["big"])
        scheduler_step(fresh)  # only the merged trials so far
    assert last == -2
    for x in range(100, 105):
        _run(fresh, [{"x": x}])
        with fresh:
            scheduler_step(fresh)
    assert sorted(x for origin, x in registered if origin == "merged") == list(range(50))
    assert [x for origin, x in registered if origin == "own"] == list(range(100, 105))
    assert len(registered) == len(merged_ids) + 5 and last == 5


def test_an_experiment_without_merges_has_no_imputed_column(here: Experiment) -> None:
    assert IMPUTED_COLUMN not in here.load_table().column_names


def test_merges_are_only_those_of_the_experiment_itself(storage: Storage, here: Experiment) -> None:
    """Not transitive: what a merged experiment merges in stays out."""
    _run(_experiment(storage, "far", HERE), [{"x": 9}])
    middle = _experiment(storage, "middle", HERE)
    _run(middle, [{"x": 7}])
    with middle:
        middle.merge(["far"])
    with here:
        here.merge(["middle"])
        assert [c["x"] for c in here.load()[1]] == [5, 6, 7]


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize("objectives", [{"score": "max"}, {"score": "max", "latency": "min"}])
def test_conflicting_objective_is_refused_and_nothing_is_merged(storage: Storage, here: Experiment,
                                                                objectives: dict[str, str]) -> None:
    _run(_experiment(storage, "fine", HERE), [{"x": 7}])
    _run(_experiment(storage, "opposite", HERE, objectives), [{"x": 8}], Status.FAILED)
    before = here.load_table()
    with here, pytest.raises(ObjectiveConflictError,
                             match=r"'here' cannot merge 'opposite': objective 'score' is 'min' here "
                                   r"and 'max' there; nothing was merged"):
        here.merge(["fine", "opposite"])
    assert here.load_table().equals(before)
    with here:
        assert here.merge(["fine"])[0].newly_merged  # "fine" was not recorded by the refused call


def test_other_objectives_in_the_same_direction_are_accepted(storage: Storage, here: Experiment) -> None:
    _run(_experiment(storage, "more", HERE, {"score": "min", "latency": "max"}), [{"x": 7}], Status.FAILED)
    with here:
        here.merge(["more"])
        assert here.load()[0] == [1, 2, -2]


def test_unknown_experiment_is_refused_as_key_error_and_nothing_is_merged(storage: Storage,
                                                                          here: Experiment) -> None:
    _run(_experiment(storage, "fine", HERE), [{"x": 7}])
    with here:
        with pytest.raises(UnknownObjectError, match="'here' cannot merge 'ghost': no such experiment") as info:
            here.merge(["fine", "ghost"])
        assert isinstance(info.value, KeyError)
        assert here.load()[0] == [1, 2]


@pytest.mark.parametrize(("ids", "message"), [
    (["here"], "'here' cannot merge itself"),
    ("other", "merge takes a list of experiment ids, got 'other'"),
    ([""], "experiment 'here': merge: '' is not an experiment id"),
    ([3], "experiment 'here': merge: 3 is not an experiment id"),
])
def test_malformed_ids_are_refused(here: Experiment, ids: Any, message: str) -> None:
    with here, pytest.raises(InvalidValueError, match=message):
        here.merge(ids)


def test_tunable_of_another_type_is_refused(storage: Storage, here: Experiment) -> None:
    _run(_experiment(storage, "typed", {"x": "one"}), [{"x": "two"}])
    before = here.load_table()
    with here, pytest.raises(TunableConflictError,
                             match="cannot merge 'typed': tunable 'x' holds int values here and str values there"):
        here.merge(["typed"])
    assert here.load_table().equals(before)


def test_merge_needs_an_entered_experiment(storage: Storage, here: Experiment) -> None:
    _run(_experiment(storage, "other", HERE), [{"x": 7}])
    with pytest.raises(ExperimentStateError, match="must be entered"):
        here.merge(["other"])
