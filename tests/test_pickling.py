"""Storage, Experiment and Trial pickle, reconnect on arrival, and work in worker processes."""

from __future__ import annotations

import copy
import multiprocessing
import os
import pickle
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import FAR_FUTURE, T0

from mlos_store import Experiment, Status, Storage, StoreUnavailableError, Trial
from mlos_store.catalog import load_catalog

START_METHODS = [m for m in ("spawn", "fork") if m in multiprocessing.get_all_start_methods()]


def _experiment(store: Storage) -> Experiment:
    return store.experiment(experiment_id="exp", trial_id=1, root_env_config="env.jsonc", description="pickled",
                            tunables={"x": 0, "name": "a"}, opt_targets={"score": "min"})


def _run_trial(trial: Trial) -> tuple[int, int, dict[str, object]]:
    """What a worker does with a trial it was sent: run it to the end and report."""
    trial.update(Status.RUNNING, T0)
    trial.update_telemetry(Status.RUNNING, T0, [(T0, "cpu", float(trial.trial_id))])
    trial.update(Status.SUCCEEDED, T0 + timedelta(seconds=1), {"score": trial.tunables["x"] * 1.5})  # type: ignore[operator]
    return trial.trial_id, os.getpid(), trial.config()


def _add_trials(experiment: Experiment, values: list[int]) -> list[int]:
    """What a worker does with an entered experiment it was sent: add trials."""
    return [experiment.new_trial({"x": x}).trial_id for x in values]


def _read_storage(storage: Storage) -> list[int]:
    return _experiment(storage).load()[0]


@pytest.fixture
def stored(db_path: Path) -> Iterator[tuple[Storage, Experiment, list[Trial]]]:
    storage = Storage(db_path)
    exp = _experiment(storage).__enter__()
    trials = [exp.new_trial({"x": x, "name": f"n{x}"}, config={"repeat": x}) for x in range(1, 5)]
    yield storage, exp, trials
    storage.close()


def test_unpickled_objects_keep_their_state(stored: tuple[Storage, Experiment, list[Trial]]) -> None:
    storage, exp, trials = stored
    trials[0].set_trial_runner(7)
    copy_storage, copy_exp, copy_trial = pickle.loads(pickle.dumps((storage, exp, trials[0])))
    assert (copy_storage.path, copy_storage.mode, copy_storage.read_only) == (storage.path, "shared", False)
    assert (copy_exp.experiment_id, copy_exp.opt_targets, dict(copy_exp.tunables)) == \
        ("exp", {"score": "min"}, {"x": 0, "name": "a"})
    assert copy_exp.trial_id == 5
    assert (copy_trial.trial_id, copy_trial.tunable_config_id, dict(copy_trial.tunables)) == \
        (1, trials[0].tunable_config_id, {"x": 1, "name": "n1"})
    assert copy_trial.config() == {"repeat": 1, "experiment_id": "exp", "trial_id": 1, "trial_runner_id": 7}
    assert (copy_trial.status, copy_trial.trial_runner_id) == (Status.PENDING, 7)
    assert copy_exp.new_trial({"x": 9}).trial_id == 5  # an entered experiment arrives entered


def test_objects_pickled_together_share_one_connection(stored: tuple[Storage, Experiment, list[Trial]]) -> None:
    storage, exp, trials = stored
    copy_storage, copy_exp, *copy_trials = pickle.loads(pickle.dumps((storage, exp, *trials)))
    assert copy_exp._engine is copy_storage.engine
    assert all(t._engine is copy_storage.engine for t in copy_trials)


def test_memory_store_refuses_to_pickle_clearly() -> None:
    with Storage(None) as storage:
        with pytest.raises(StoreUnavailableError, match="in-memory store cannot be pickled"):
            pickle.dumps(storage)
        exp = _experiment(storage)
        with pytest.raises(StoreUnavailableError, match="in-memory store cannot be pickled"):
            pickle.dumps(exp)


@pytest.mark.parametrize("method", START_METHODS)
def test_trials_run_in_a_process_pool(stored: tuple[Storage, Experiment, list[Trial]], method: str) -> None:
    _, exp, trials = stored
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context(method)) as pool:
        done = list(pool.map(_run_trial, trials))
    assert [trial_id for trial_id, _, _ in done] == [1, 2, 3, 4]
    assert all(pid != os.getpid() for _, pid, _ in done)
    assert [config for _, _, config in done] == [
        {"repeat": x, "experiment_id": "exp", "trial_id": x, "trial_runner_id": None} for x in range(1, 5)]
    trial_ids, configs, scores, status = exp.load()
    assert trial_ids == [1, 2, 3, 4]
    assert scores == [{"score": x * 1.5} for x in range(1, 5)]
    assert status == [Status.SUCCEEDED] * 4
    assert [exp.load_telemetry(i) for i in trial_ids] == [[(T0, "cpu", float(i))] for i in trial_ids]


@pytest.mark.parametrize("method", START_METHODS)
def test_experiment_and_storage_work_in_a_worker_process(stored: tuple[Storage, Experiment, list[Trial]],
                                                         method: str) -> None:
    storage, exp, _ = stored
    context = multiprocessing.get_context(method)
    # fork: inherited, not pickled
    process = context.Process(target=_add_trials, args=(exp, [10, 11]))  # type: ignore[attr-defined]
    process.start()
    process.join(120)
    assert process.exitcode == 0
    with context.Pool(1) as pool:
        assert pool.apply(_add_trials, (exp, [12])) == [7]
        trials = list(exp.pending_trials(FAR_FUTURE, running=False))
        assert [(t.trial_id, t.tunables["x"]) for t in trials][-3:] == [(5, 10), (6, 11), (7, 12)]
        for trial in trials:
            _run_trial(trial)
        assert pool.apply(_read_storage, (storage,)) == [1, 2, 3, 4, 5, 6, 7]


def _analysis_objects(store: Storage) -> list[object]:
    data = store.experiments["exp"]
    trial = data.trials[1]
    return [data, trial, trial.tunable_config, trial.tunable_config_trial_group]


def _results_rows(data: object) -> int:
    return data.results_table.num_rows  # type: ignore[attr-defined, no-any-return]


def test_analysis_objects_pickle_and_read_in_another_process(db_path: Path) -> None:
    with Storage(db_path) as store:
        with _experiment(store) as exp:
            _add_trials(exp, [1, 2])
        objects = _analysis_objects(store)
        assert [pickle.loads(pickle.dumps(o)) for o in objects] == objects
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            assert pool.submit(_results_rows, objects[0]).result() == 2


def test_analysis_objects_of_a_memory_store_refuse_pickling_clearly() -> None:
    with Storage() as store:
        with _experiment(store) as exp:
            _add_trials(exp, [1])
        for obj in _analysis_objects(store):
            with pytest.raises(StoreUnavailableError, match="in-memory store cannot be pickled"):
                pickle.dumps(obj)


def test_the_catalog_copies_and_pickles() -> None:
    catalog = load_catalog()
    for copied in (copy.copy(catalog), copy.deepcopy(catalog), pickle.loads(pickle.dumps(catalog))):
        assert copied.trial_insert == catalog.trial_insert
        assert copied.schema_version == catalog.schema_version
