"""Behaviour of Trial: status changes, results, history, config, and update_telemetry's status."""

from __future__ import annotations

import copy
import logging
import re
import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import FAR_FUTURE, FINAL_STATUSES, OPT_TARGETS, T0, TUNABLE_DEFAULTS

from mlos_store import (
    ConcurrentChangeError,
    Experiment,
    IllegalTransitionError,
    InvalidValueError,
    MissingObjectiveWarning,
    Status,
    Storage,
    Trial,
    TrialEndedError,
    Tunables,
)

LOADED_STATUSES = [Status.SUCCEEDED, Status.FAILED, Status.TIMED_OUT]


#: Most status changes are timestamped after the trials are created, as a harness's would be
#: (history keeps the order of the changes whatever their timestamps: see the T0 tests below).
BASE = datetime.now(UTC).replace(microsecond=123456) + timedelta(days=1)


def ts(seconds: float) -> datetime:
    return BASE + timedelta(seconds=seconds)


def restored(exp: Experiment, trial_id: int) -> Trial:
    """The same trial as pending_trials gives it back (a second object for it)."""
    (trial,) = [t for t in exp.pending_trials(FAR_FUTURE, running=True) if t.trial_id == trial_id]
    return trial


def statuses(trial: Trial) -> list[Status]:
    return [s for _, s in trial.status_history()]


def row_of(exp: Experiment, trial_id: int) -> dict[str, Any]:
    (row,) = [r for r in exp.load_table().to_pylist() if r["trial_id"] == trial_id]
    return dict(row)


def running_trial(exp: Experiment) -> Trial:
    trial = exp.new_trial({})
    trial.update(Status.RUNNING, ts(1))
    return trial


def state(exp: Experiment, trial: Trial) -> tuple[Any, ...]:
    """Everything an update could change, to compare before and after."""
    return trial.status, trial.status_history(), exp.load_table(), exp.telemetry_table(trial.trial_id)


# ---------------------------------------------------------------- Status predicates

#: For each predicate, exactly the members it is true for (mlos_bench's meanings).
PREDICATES = {
    "is_good": {Status.PENDING, Status.READY, Status.RUNNING, Status.SUCCEEDED},
    "is_completed": {Status.SUCCEEDED, Status.CANCELED, Status.FAILED, Status.TIMED_OUT},
    "is_pending": {Status.PENDING},
    "is_ready": {Status.READY},
    "is_running": {Status.RUNNING},
    "is_succeeded": {Status.SUCCEEDED},
    "is_failed": {Status.FAILED},
    "is_canceled": {Status.CANCELED},
    "is_timed_out": {Status.TIMED_OUT},
}


def test_status_has_exactly_the_mlos_bench_members() -> None:
    assert [s.name for s in Status] == ["UNKNOWN", "PENDING", "READY", "RUNNING", "SUCCEEDED", "CANCELED",
                                        "FAILED", "TIMED_OUT"]


@pytest.mark.parametrize("predicate", sorted(PREDICATES))
def test_status_predicate_is_true_for_exactly_its_members(predicate: str) -> None:
    truthy = {status for status in Status if getattr(status, predicate)() is True}
    assert truthy == PREDICATES[predicate]
    assert all(getattr(status, predicate)() is False for status in set(Status) - truthy)


# ---------------------------------------------------------------- allowed moves


def test_pending_ready_running_succeeded_is_allowed(experiment: Experiment) -> None:
    trial = experiment.new_trial({})
    assert trial.status == Status.PENDING
    for i, status in enumerate([Status.READY, Status.RUNNING, Status.SUCCEEDED]):
        trial.update(status, ts(i), {"score": 1.0} if status == Status.SUCCEEDED else None)
        assert trial.status == status
    assert statuses(trial)[-3:] == [Status.READY, Status.RUNNING, Status.SUCCEEDED]


def test_pending_to_any_final_status_is_allowed(experiment: Experiment) -> None:
    for final in FINAL_STATUSES:
        trial = experiment.new_trial({})
        trial.update(final, ts(1), {"score": 1.0})
        assert trial.status == final
        assert statuses(trial) == [Status.PENDING, final]


def test_pending_to_running_skipping_ready_is_allowed(experiment: Experiment) -> None:
    trial = experiment.new_trial({})
    trial.update(Status.RUNNING, ts(1))
    assert trial.status == Status.RUNNING


def test_ready_to_final_is_allowed(experiment: Experiment) -> None:
    trial = experiment.new_trial({})
    trial.update(Status.READY, ts(1))
    trial.update(Status.FAILED, ts(2))
    assert trial.status == Status.FAILED


def test_status_may_be_given_by_name(experiment: Experiment) -> None:
    trial = experiment.new_trial({})
    trial.update("RUNNING", ts(1))  # type: ignore[arg-type]
    assert trial.status == Status.RUNNING


# ---------------------------------------------------------------- start and end times, results


def test_running_sets_ts_start_and_final_sets_ts_end(experiment: Experiment) -> None:
    trial = experiment.new_trial({}, ts_start=ts(-100))
    trial.update(Status.RUNNING, ts(5))
    trial.update(Status.SUCCEEDED, ts(9.5), {"score": 2.5})
    row = row_of(experiment, trial.trial_id)
    assert row["ts_start"] == ts(5)
    assert row["ts_end"] == ts(9.5)
    assert row["status"] == "SUCCEEDED"
    assert row["result.score"] == 2.5


def test_pending_to_final_keeps_scheduled_ts_start(experiment: Experiment) -> None:
    trial = experiment.new_trial({}, ts_start=ts(-100))
    trial.update(Status.FAILED, ts(3))
    row = row_of(experiment, trial.trial_id)
    assert row["ts_start"] == ts(-100)
    assert row["ts_end"] == ts(3)


def test_final_update_stores_metrics_with_types(experiment: Experiment) -> None:
    trial = running_trial(experiment)
    metrics = {"score": 3, "latency": 1.5, "label": "fast", "ok": True, "none": None}
    trial.update(Status.SUCCEEDED, ts(2), metrics)
    (scores,) = experiment.load()[2]
    assert scores == metrics
    assert type(scores["score"]) is int and scores["ok"] is True


def test_final_update_is_atomic(storage: Storage, experiment: Experiment,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    trial = running_trial(experiment)
    before = state(experiment, trial)

    def failing_insert(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(storage.engine, "insert_rows", failing_insert)
        with pytest.raises(OSError, match="disk full"):
            trial.update(Status.SUCCEEDED, ts(2), {"score": 1.0})
    assert state(experiment, trial) == before
    trial.update(Status.SUCCEEDED, ts(3), {"score": 1.0})
    assert experiment.load()[2] == [{"score": 1.0}]


def test_update_returns_the_metrics(experiment: Experiment) -> None:
    trial = experiment.new_trial({})
    assert trial.update(Status.RUNNING, ts(1)) is None
    metrics = {"score": 4.0}
    assert trial.update(Status.SUCCEEDED, ts(2), metrics) == metrics


def test_failed_with_metrics_stores_them_but_load_gives_no_scores(experiment: Experiment) -> None:
    trial = running_trial(experiment)
    trial.update(Status.FAILED, ts(2), {"score": 3.0})
    assert experiment.load()[2] == [None]
    assert row_of(experiment, trial.trial_id)["result.score"] == 3.0


def test_succeeded_without_target_warns_but_is_stored(experiment: Experiment) -> None:
    trial = running_trial(experiment)
    with pytest.warns(MissingObjectiveWarning, match="score"):
        trial.update(Status.SUCCEEDED, ts(2), {"other": 1})
    assert trial.status == Status.SUCCEEDED
    assert experiment.load()[2] == [{"other": 1}]


def test_succeeded_without_metrics_warns_but_is_stored(experiment: Experiment) -> None:
    trial = running_trial(experiment)
    with pytest.warns(MissingObjectiveWarning, match="score"):
        trial.update(Status.SUCCEEDED, ts(2))
    assert trial.status == Status.SUCCEEDED
    assert experiment.load()[0] == [trial.trial_id]


def test_missing_objective_warning_comes_before_anything_is_written(experiment: Experiment) -> None:
    """With warnings as errors the update raises the warning and stores nothing; a proper update then works."""
    trial = running_trial(experiment)
    before = state(experiment, trial)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(MissingObjectiveWarning, match=f"exp:{trial.trial_id}.*score"):
            trial.update(Status.SUCCEEDED, ts(2), {"other": 1})
    assert state(experiment, trial) == before
    assert trial.status == Status.RUNNING
    assert statuses(trial) == [Status.PENDING, Status.RUNNING]
    assert experiment.load() == ([], [], [], [])
    trial.update(Status.SUCCEEDED, ts(3), {"score": 1.0, "other": 1})
    assert trial.status == Status.SUCCEEDED  # type: ignore[comparison-overlap]  # changed by update()
    assert statuses(trial) == [Status.PENDING, Status.RUNNING, Status.SUCCEEDED]
    assert experiment.load()[2] == [{"score": 1.0, "other": 1}]
    assert row_of(experiment, trial.trial_id)["ts_end"] == ts(3)


def test_missing_objective_is_a_warning_only_not_a_log_record(experiment: Experiment,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    trial = running_trial(experiment)
    with caplog.at_level(logging.DEBUG):
        with pytest.warns(MissingObjectiveWarning) as record:
            trial.update(Status.SUCCEEDED, ts(2), {"other": 1})
    assert len(record) == 1
    logged = [r for r in caplog.records if r.name.startswith("mlos_store") or "score" in r.getMessage()]
    assert logged == []


def test_succeeded_with_every_target_does_not_warn(experiment: Experiment) -> None:
    trial = running_trial(experiment)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trial.update(Status.SUCCEEDED, ts(2), {"score": 1.0})
    assert trial.status == Status.SUCCEEDED


def test_metrics_with_non_final_status_are_refused(experiment: Experiment) -> None:
    trial = experiment.new_trial({})
    before = state(experiment, trial)
    for status in (Status.READY, Status.RUNNING):
        with pytest.raises(InvalidValueError, match=status.name):
            trial.update(status, ts(1), {"score": 1.0})
        assert state(experiment, trial) == before


def test_unstorable_metric_is_refused_and_trial_not_ended(experiment: Experiment) -> None:
    trial = running_trial(experiment)
    before = state(experiment, trial)
    for bad in (object(), {1: "int key"}, [{"ok": {None: 1}}], {1, 2}):
        with pytest.raises(InvalidValueError, match="score"):
            trial.update(Status.SUCCEEDED, ts(2), {"score": bad})
        assert state(experiment, trial) == before, bad


# ---------------------------------------------------------------- refused moves


def test_updating_ended_trial_raises_and_changes_nothing(experiment: Experiment) -> None:
    for final in FINAL_STATUSES:
        trial = running_trial(experiment)
        trial.update(final, ts(2), {"score": 1.0})
        before = state(experiment, trial)
        for status in [Status.PENDING, Status.READY, Status.RUNNING, *FINAL_STATUSES]:
            with pytest.raises(TrialEndedError, match=f"exp:{trial.trial_id}.*{final.name}") as info:
                trial.update(status, ts(3), {"score": 9.0} if status.is_completed() else None)
            assert isinstance(info.value, RuntimeError)
            assert state(experiment, trial) == before, (final, status)


@pytest.mark.parametrize("current, backwards", [
    (Status.RUNNING, Status.READY),
    (Status.RUNNING, Status.PENDING),
    (Status.READY, Status.PENDING),
], ids=lambda s: s.name)
def test_moving_backwards_raises_and_changes_nothing(experiment: Experiment, current: Status,
                                                     backwards: Status) -> None:
    trial = experiment.new_trial({})
    trial.update(current, ts(1))
    before = state(experiment, trial)
    with pytest.raises(IllegalTransitionError, match=f"{current.name}.*{backwards.name}") as info:
        trial.update(backwards, ts(2))
    assert isinstance(info.value, ValueError)
    assert not isinstance(info.value, TrialEndedError)
    assert state(experiment, trial) == before
    trial.update(Status.SUCCEEDED, ts(3), {"score": 1.0})
    assert row_of(experiment, trial.trial_id)["ts_start"] == ts(1)


def test_unknown_status_is_refused(experiment: Experiment) -> None:
    trial = experiment.new_trial({})
    before = state(experiment, trial)
    with pytest.raises(IllegalTransitionError, match="UNKNOWN"):
        trial.update(Status.UNKNOWN, ts(1))
    for bogus in ("BOGUS", "bogus", 3, None):
        with pytest.raises(IllegalTransitionError, match=re.escape(f"trial exp:{trial.trial_id}: {bogus!r}")):
            trial.update(bogus, ts(1))  # type: ignore[arg-type]
        with pytest.raises(IllegalTransitionError, match=re.escape(f"trial exp:{trial.trial_id}: {bogus!r}")):
            trial.update_telemetry(bogus, ts(1), [(ts(1), "cpu", 0.5)])  # type: ignore[arg-type]
    assert state(experiment, trial) == before


def test_bogus_status_names_the_trial_and_the_status(experiment: Experiment) -> None:
    trial = experiment.new_trial({})
    assert trial.trial_id == 1
    with pytest.raises(IllegalTransitionError) as info:
        trial.update("bogus", ts(1))  # type: ignore[arg-type]
    assert "exp:1" in str(info.value) and "'bogus'" in str(info.value)
    assert isinstance(info.value, ValueError)
    assert trial.status == Status.PENDING


def test_repeating_current_status_is_a_noop(experiment: Experiment) -> None:
    trial = experiment.new_trial({})
    trial.update(Status.PENDING, ts(0))
    assert statuses(trial) == [Status.PENDING]
    trial.update(Status.RUNNING, ts(1))
    history = trial.status_history()
    trial.update(Status.RUNNING, ts(2))
    assert trial.status_history() == history
    trial.update(Status.SUCCEEDED, ts(3), {"score": 1.0})
    assert row_of(experiment, trial.trial_id)["ts_start"] == ts(1)


# ---------------------------------------------------------------- status always agrees with the store


def test_two_objects_of_one_trial_always_agree(experiment: Experiment) -> None:
    mine = experiment.new_trial({})
    theirs = restored(experiment, mine.trial_id)
    mine.update(Status.READY, ts(1))
    assert theirs.status == mine.status == Status.READY
    theirs.update(Status.RUNNING, ts(2))
    assert mine.status == theirs.status == Status.RUNNING  # type: ignore[comparison-overlap]
    mine.update(Status.SUCCEEDED, ts(3), {"score": 1.0})
    assert theirs.status == Status.SUCCEEDED
    with pytest.raises(TrialEndedError):
        theirs.update(Status.FAILED, ts(4))
    assert mine.status == theirs.status == Status.SUCCEEDED


@pytest.mark.parametrize("status", [Status.RUNNING, Status.SUCCEEDED], ids=lambda s: s.name)
def test_status_changed_by_another_writer_meanwhile_is_a_concurrent_change(
    storage: Storage, experiment: Experiment, monkeypatch: pytest.MonkeyPatch, status: Status
) -> None:
    """The guarded UPDATE moving no row (another writer got there first) raises and stores nothing."""
    trial = experiment.new_trial({})
    trial.update(Status.READY, ts(1))
    before = state(experiment, trial)
    with monkeypatch.context() as patch:
        patch.setattr(storage.engine, "count", lambda *args, **kwargs: 0)
        with pytest.raises(ConcurrentChangeError, match=f"exp:{trial.trial_id}.*{status.name}") as info:
            trial.update(status, ts(2), {"score": 1.0} if status.is_completed() else None)
    assert isinstance(info.value, RuntimeError)
    assert state(experiment, trial) == before
    trial.update(status, ts(3), {"score": 1.0} if status.is_completed() else None)
    assert trial.status == status


def test_an_object_acting_on_the_status_it_last_stored_never_overrides_another(experiment: Experiment) -> None:
    """Each object tries the move from the status it stored last; the store's status still decides."""
    mine = experiment.new_trial({})
    theirs = copy.copy(mine)  # both last stored PENDING
    theirs.update(Status.RUNNING, ts(1))
    theirs.update(Status.FAILED, ts(2))
    with pytest.raises(TrialEndedError, match="FAILED"):
        mine.update(Status.RUNNING, ts(3))
    with pytest.raises(TrialEndedError, match="FAILED"):
        mine.update(Status.SUCCEEDED, ts(4), {"score": 1.0})
    assert statuses(mine) == [Status.PENDING, Status.RUNNING, Status.FAILED]
    assert row_of(experiment, mine.trial_id)["status"] == "FAILED"
    assert experiment.load()[2] == [None]


def test_an_object_behind_the_store_still_makes_a_legal_move(experiment: Experiment) -> None:
    mine = experiment.new_trial({})
    theirs = copy.copy(mine)
    theirs.update(Status.RUNNING, ts(1))
    mine.update(Status.SUCCEEDED, ts(2), {"score": 1.0})  # mine last stored PENDING
    assert statuses(theirs) == [Status.PENDING, Status.RUNNING, Status.SUCCEEDED]
    assert experiment.load()[2] == [{"score": 1.0}]


def test_moving_a_trial_this_object_last_moved_skips_reading_its_status(storage: Storage, experiment: Experiment,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    trial = experiment.new_trial({})
    reads: list[str] = []
    original = storage.engine.fetch_one
    monkeypatch.setattr(storage.engine, "fetch_one",
                        lambda query, **params: reads.append(query.name) or original(query, **params))  # type: ignore[func-returns-value]
    trial.update(Status.RUNNING, ts(1))
    trial.update(Status.SUCCEEDED, ts(2), {"score": 1.0})
    assert "trial_get_state" not in reads
    assert trial.status == Status.SUCCEEDED


def test_stale_object_cannot_move_trial_backwards(experiment: Experiment) -> None:
    mine = experiment.new_trial({})
    theirs = restored(experiment, mine.trial_id)
    mine.update(Status.RUNNING, ts(1))
    with pytest.raises(IllegalTransitionError, match="RUNNING.*READY"):
        theirs.update(Status.READY, ts(2))
    assert theirs.status == Status.RUNNING


# ---------------------------------------------------------------- history


def test_status_history_lists_every_change_in_order(experiment: Experiment) -> None:
    trial = experiment.new_trial({})
    start = ts(1)
    trial.update(Status.READY, start)
    trial.update(Status.RUNNING, start + timedelta(seconds=1))
    trial.update(Status.TIMED_OUT, start + timedelta(seconds=2, microseconds=5))
    history = trial.status_history()
    assert [s for _, s in history] == [Status.PENDING, Status.READY, Status.RUNNING, Status.TIMED_OUT]
    assert [t for t, _ in history][1:] == [start, start + timedelta(seconds=1),
                                           start + timedelta(seconds=2, microseconds=5)]
    assert all(t.utcoffset() == timedelta(0) for t, _ in history)


def test_status_history_keeps_the_order_of_changes_not_of_timestamps(experiment: Experiment) -> None:
    """Caller timestamps earlier than the creation time (T0 is in the past) do not reorder the history."""
    trial = experiment.new_trial({})
    theirs = restored(experiment, trial.trial_id)
    created = trial.status_history()[0][0]
    assert created > T0 + timedelta(seconds=1)
    trial.update(Status.RUNNING, T0)
    trial.update(Status.FAILED, T0 + timedelta(seconds=1))
    history = [(created, Status.PENDING), (T0, Status.RUNNING), (T0 + timedelta(seconds=1), Status.FAILED)]
    assert trial.status_history() == history
    assert theirs.status_history() == history


def test_status_history_order_holds_when_timestamps_go_backwards(experiment: Experiment) -> None:
    trial = experiment.new_trial({})
    trial.update(Status.READY, T0 + timedelta(seconds=30))
    trial.update(Status.RUNNING, T0 + timedelta(seconds=10))
    trial.update_telemetry(Status.SUCCEEDED, T0 + timedelta(seconds=20), [])
    trial.update(Status.TIMED_OUT, T0)
    assert statuses(trial) == [Status.PENDING, Status.READY, Status.RUNNING, Status.SUCCEEDED, Status.TIMED_OUT]
    assert [t for t, _ in trial.status_history()][1:] == [
        T0 + timedelta(seconds=30), T0 + timedelta(seconds=10), T0 + timedelta(seconds=20), T0]


def test_status_history_is_per_trial(experiment: Experiment) -> None:
    first = experiment.new_trial({})
    second = experiment.new_trial({})
    first.update(Status.RUNNING, ts(1))
    assert statuses(first) == [Status.PENDING, Status.RUNNING]
    assert statuses(second) == [Status.PENDING]


# ---------------------------------------------------------------- config and tunables


def test_config_adds_global_config_and_ids_without_changing_stored_config(experiment: Experiment) -> None:
    trial = experiment.new_trial({}, config={"a": 1, "b": "x"})
    got = trial.config({"b": "global", "c": [1, 2]})
    assert got == {"a": 1, "b": "global", "c": [1, 2], "experiment_id": "exp", "trial_id": trial.trial_id,
                   "trial_runner_id": None}
    got["a"] = 99
    assert trial.config() == {"a": 1, "b": "x", "experiment_id": "exp", "trial_id": trial.trial_id,
                              "trial_runner_id": None}
    assert restored(experiment, trial.trial_id).config() == trial.config()


def test_config_without_trial_config_has_just_the_ids(experiment: Experiment) -> None:
    trial = experiment.new_trial({})
    assert trial.config() == {"experiment_id": "exp", "trial_id": trial.trial_id, "trial_runner_id": None}


def test_trial_tunables_is_the_library_object(experiment: Experiment) -> None:
    trial = experiment.new_trial({"int_knob": 2})
    for t in (trial, restored(experiment, trial.trial_id)):
        assert isinstance(t.tunables, Tunables)
        assert dict(t.tunables) == {**TUNABLE_DEFAULTS, "int_knob": 2}
        assert t.tunables.default("int_knob") == TUNABLE_DEFAULTS["int_knob"]


def test_trial_knows_ids_and_opt_targets(experiment: Experiment) -> None:
    trial = experiment.new_trial({})
    assert trial.trial_id == 1
    assert trial.experiment_id == "exp"
    assert trial.opt_targets == OPT_TARGETS
    assert trial.tunable_config_id == experiment.new_trial({}).tunable_config_id


# ---------------------------------------------------------------- update_telemetry and status


def test_final_status_in_update_telemetry_is_recorded_but_does_not_end_trial(experiment: Experiment) -> None:
    for final in FINAL_STATUSES:
        trial = running_trial(experiment)
        trial.update_telemetry(final, ts(2), [(ts(2), "cpu", 0.5)])
        assert trial.status == Status.RUNNING, final
        assert statuses(trial) == [Status.PENDING, Status.RUNNING, final]
        assert trial.trial_id not in experiment.load()[0]
        assert trial.trial_id in [t.trial_id for t in experiment.pending_trials(FAR_FUTURE, running=True)]
        trial.update(Status.SUCCEEDED, ts(3), {"score": 1.0})
        assert trial.status == Status.SUCCEEDED  # type: ignore[comparison-overlap]
        assert experiment.load()[0][-1] == trial.trial_id


def test_update_telemetry_with_current_status_is_a_noop_for_status(experiment: Experiment) -> None:
    trial = running_trial(experiment)
    history = trial.status_history()
    trial.update_telemetry(Status.RUNNING, ts(5), [(ts(5), "cpu", 0.5)])
    assert trial.status_history() == history
    assert trial.status == Status.RUNNING
    assert len(experiment.load_telemetry(trial.trial_id)) == 1


def test_update_telemetry_can_move_trial_forward(experiment: Experiment) -> None:
    trial = experiment.new_trial({})
    trial.update_telemetry(Status.RUNNING, ts(1), [])
    assert trial.status == Status.RUNNING


@pytest.mark.parametrize("backwards", [Status.READY, Status.PENDING], ids=lambda s: s.name)
def test_update_telemetry_backwards_raises_and_stores_no_points(experiment: Experiment,
                                                                backwards: Status) -> None:
    trial = running_trial(experiment)
    before = state(experiment, trial)
    with pytest.raises(IllegalTransitionError, match=f"RUNNING.*{backwards.name}"):
        trial.update_telemetry(backwards, ts(2), [(ts(2), "cpu", 0.5)])
    assert state(experiment, trial) == before
    assert experiment.load_telemetry(trial.trial_id) == []


def test_update_telemetry_on_ended_trial_raises_and_stores_no_points(experiment: Experiment) -> None:
    trial = running_trial(experiment)
    trial.update(Status.SUCCEEDED, ts(2), {"score": 1.0})
    before = state(experiment, trial)
    with pytest.raises(TrialEndedError, match="SUCCEEDED"):
        trial.update_telemetry(Status.RUNNING, ts(3), [(ts(3), "cpu", 0.5)])
    assert state(experiment, trial) == before


@pytest.mark.parametrize("final", FINAL_STATUSES, ids=lambda s: s.name)
def test_ended_trial_accepts_no_telemetry_with_any_status(experiment: Experiment, final: Status) -> None:
    """Not even with the status it ended with (once a no-op): nothing is stored and the history stays."""
    trial = running_trial(experiment)
    trial.update_telemetry(Status.RUNNING, ts(1), [(ts(1), "cpu", 0.25)])
    trial.update(final, ts(2), {"score": 1.0})
    before = state(experiment, trial)
    for status in [Status.PENDING, Status.READY, Status.RUNNING, *FINAL_STATUSES]:
        for points in ([(ts(3), "cpu", 0.5)], [(ts(1), "cpu", 9.0)], []):
            with pytest.raises(TrialEndedError,
                               match=f"exp:{trial.trial_id} has already ended with status {final.name}.*"
                                     f"telemetry.*{status.name}") as info:
                trial.update_telemetry(status, ts(3), points)
            assert isinstance(info.value, RuntimeError)
            assert state(experiment, trial) == before, (final, status, points)
    assert experiment.load_telemetry(trial.trial_id) == [(ts(1), "cpu", 0.25)]


# ---------------------------------------------------------------- telemetry through a stale object


def test_stale_object_streaming_telemetry_cannot_write_into_an_ended_trial(experiment: Experiment) -> None:
    """A runner's object streams points without reading the trial first; another object ended it meanwhile."""
    streaming = running_trial(experiment)
    streaming.update_telemetry(Status.RUNNING, ts(2), [(ts(2), "cpu", 0.25)])
    restored(experiment, streaming.trial_id).update(Status.FAILED, ts(3), {"score": 1.0})
    before = state(experiment, streaming)
    with pytest.raises(TrialEndedError, match="already ended with status FAILED"):
        streaming.update_telemetry(Status.RUNNING, ts(4), [(ts(4), "cpu", 0.5)])
    assert state(experiment, streaming) == before


def test_stale_object_streaming_telemetry_keeps_points_unique(experiment: Experiment) -> None:
    """Points another object stored since this one's last write are not stored again."""
    streaming = running_trial(experiment)
    streaming.update_telemetry(Status.RUNNING, ts(2), [(ts(2), "cpu", 0.25)])
    restored(experiment, streaming.trial_id).update_telemetry(Status.RUNNING, ts(5), [(ts(5), "cpu", 0.5)])
    streaming.update_telemetry(Status.RUNNING, ts(5), [(ts(3), "cpu", 0.3), (ts(5), "cpu", 9.0), (ts(6), "cpu", 0.6)])
    assert experiment.load_telemetry(streaming.trial_id) == [
        (ts(2), "cpu", 0.25), (ts(3), "cpu", 0.3), (ts(5), "cpu", 0.5), (ts(6), "cpu", 0.6)]
