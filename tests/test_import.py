"""Storage.import_store: whole experiments copied from another store file."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from conftest import OPT_TARGETS, T0, store_contents

from mlos_store import (
    InvalidValueError,
    NotAStoreError,
    ObjectiveConflictError,
    SchemaVersionError,
    Status,
    Storage,
    StoreBusyError,
    StoreUnavailableError,
    Trial,
    TrialConflictError,
    TunableConflictError,
    Tunables,
    UnknownObjectError,
)
from mlos_store.catalog import Catalog, load_catalog
from mlos_store.engine import Engine
from mlos_store.experiment import Experiment
from mlos_store.values import values_from_rows

TUNABLES = {"x": 0, "y": 0.5, "mode": "fast"}


def _experiment(storage: Storage, experiment_id: str = "tune", trial_id: int = 1,
                tunables: dict[str, Any] | None = None, opt_targets: dict[str, str] | None = None) -> Experiment:
    return storage.experiment(experiment_id=experiment_id, trial_id=trial_id, root_env_config="env.jsonc",
                              description=f"{experiment_id} from {trial_id}", tunables=tunables or TUNABLES,
                              opt_targets=opt_targets or OPT_TARGETS)


def run_shard(path: str, shard: int, experiment_id: str = "tune") -> None:
    """The work one machine does: five trials numbered from shard * 1000 + 1, in every life stage.

    Configs repeat across shards (x cycles through 0..3), so equal values
    must end up under one config id when the shards come together.
    """
    with Storage(path) as storage, _experiment(storage, experiment_id, shard * 1000 + 1) as exp:
        for i in range(5):
            t0 = T0 + timedelta(hours=shard, minutes=i)
            trial = exp.new_trial({"x": (i + shard) % 4, "y": i / 4}, ts_start=t0, config={"shard": shard})
            if i == 4:
                continue  # stays PENDING
            trial.update(Status.RUNNING, t0)
            points = [(t0 + timedelta(seconds=s), m, float(s * (i + 1))) for s in range(6) for m in ("cpu", "mem")]
            trial.update_telemetry(Status.RUNNING, t0, points + [(t0, "phase", "warmup")])
            if i == 3:
                continue  # still RUNNING
            final = Status.FAILED if i == 2 else Status.SUCCEEDED
            trial.update(final, t0 + timedelta(seconds=30),
                         {"score": shard + i / 10, "note": f"s{shard}"} if final == Status.SUCCEEDED else None)


def _store_file(tmp_path: Path, name: str, *shards: int, experiment_id: str = "tune") -> Path:
    path = tmp_path / f"{name}.duckdb"
    for shard in shards:
        run_shard(str(path), shard, experiment_id)
    return path


def _trial_history(storage: Storage, experiment_id: str, trial_id: int) -> list[tuple[Any, Status]]:
    """A trial's status history, PENDING's time left out (it is when the trial was created)."""
    trial = Trial(engine=storage.engine, schema=storage.engine.catalog, experiment_id=experiment_id,
                  trial_id=trial_id, tunable_config_id=0, tunables=Tunables({}), opt_targets={})
    return [(None if status == Status.PENDING else ts, status) for ts, status in trial.status_history()]


def _by_values(storage: Storage, table: pa.Table) -> pa.Table:
    """A load or results table with each tunable_config_id replaced by the values it names (ids may differ)."""
    exp = _experiment(storage)
    ids = table.column("tunable_config_id").to_pylist()
    values = [repr(sorted(exp.load_tunable_config(i).items())) for i in ids]
    index = table.column_names.index("tunable_config_id")
    return table.set_column(index, "tunable_config", pa.array(values, pa.string()))


def _all_trial_ids(storage: Storage) -> list[int]:
    with _experiment(storage) as exp:
        return [t.trial_id for t in exp.pending_trials(T0 + timedelta(days=1), running=True)] + exp.load()[0]


@pytest.fixture
def dest(tmp_path: Path) -> Iterator[Storage]:
    with Storage(tmp_path / "dest.duckdb") as storage:
        yield storage


# ---------------------------------------------------------------- copying


def test_import_into_an_empty_store_copies_everything(tmp_path: Path, dest: Storage) -> None:
    source = _store_file(tmp_path, "shard", 0)
    report = dest.import_store(source)
    assert (report.experiment_ids, report.new_experiments, report.new_trials) == (("tune",), 1, 5)
    assert report.new_telemetry_points == 4 * 13
    with Storage(source, read_only=True) as original:
        expected = store_contents(original)
        with _experiment(original) as exp:
            expected_load, expected_telemetry = exp.load_table(), exp.telemetry_table()
    copied = store_contents(dest)
    for table in ("experiment", "objective", "experiment_tunable", "tunable_config", "tunable_param", "trial",
                  "trial_param", "trial_status", "trial_result", "trial_telemetry"):
        assert copied[table] == expected[table], table  # ids preserved: nothing collided
    assert copied["import_config_map"] == copied["import_new_trial"] == []
    with _experiment(dest) as exp:
        assert exp.load_table().equals(expected_load)
        assert exp.telemetry_table().equals(expected_telemetry)
        assert exp.description == "tune from 1"


def test_importing_the_same_file_twice_adds_nothing(tmp_path: Path, dest: Storage) -> None:
    source = _store_file(tmp_path, "shard", 0)
    dest.import_store(source)
    once = store_contents(dest)
    report = dest.import_store(source)
    assert (report.new_experiments, report.new_trials, report.new_configs, report.new_telemetry_points) == (0,) * 4
    assert store_contents(dest) == once


def test_colliding_config_ids_are_remapped_and_equal_configs_shared(tmp_path: Path, dest: Storage) -> None:
    # The store already holds configs 1 and 2 (other values), and one config equal to a source config.
    with _experiment(dest, "local") as local:
        local.new_trial({"x": 100})
        local.new_trial({"x": 101})
        shared = local.new_trial({"x": 1, "y": 0.25})  # the source's second trial's values
    source = _store_file(tmp_path, "shard", 0)
    report = dest.import_store(source)
    assert report.new_configs == 4  # five trials, one config already stored here
    with Storage(source, read_only=True) as original, _experiment(original) as exp:
        source_table = _by_values(original, exp.load_table())
        source_ids = exp.load()[0]
    with _experiment(dest) as exp:
        table = exp.load_table()
        assert _by_values(dest, table).equals(source_table)
        config_ids = table.column("tunable_config_id").to_pylist()
        assert config_ids[source_ids.index(2)] == shared.tunable_config_id
        assert len(set(config_ids)) == len(config_ids)
        assert not {1, 2} & set(config_ids)
        fresh = exp.new_trial({"x": 55})  # new configs number above every imported id
    assert fresh.tunable_config_id > max(config_ids)


def test_imported_trials_go_on_living_here(tmp_path: Path, dest: Storage) -> None:
    dest.import_store(_store_file(tmp_path, "shard", 0))
    with _experiment(dest) as exp:
        [running] = [t for t in exp.pending_trials(T0 + timedelta(days=1), running=True)
                     if t.status == Status.RUNNING]
        running.update(Status.SUCCEEDED, T0 + timedelta(hours=2), {"score": 9.0})
        newest = exp.new_trial({"x": 3})
    assert newest.trial_id == 6
    assert [s for _, s in running.status_history()] == [Status.PENDING, Status.RUNNING, Status.SUCCEEDED]
    assert running.config() == {"shard": 0, "experiment_id": "tune", "trial_id": 4,
                                "trial_runner_id": None}


def test_a_stored_experiment_keeps_its_record_and_gains_tunables(tmp_path: Path, dest: Storage) -> None:
    with _experiment(dest, trial_id=500, tunables={"x": 42}) as exp:
        exp.new_trial({"x": 43}).update(Status.FAILED, T0)
    dest.import_store(_store_file(tmp_path, "shard", 0))
    with _experiment(dest, trial_id=500, tunables={"x": 42}) as exp:
        assert exp.description == "tune from 500"
        trial_ids, configs, _, _ = exp.load()
        tunables = exp.load_tunable_config(exp.new_trial({"x": 1}).tunable_config_id)
    assert trial_ids == [1, 2, 3, 500]
    assert configs[0] == {"x": 0, "y": 0.0, "mode": "fast"} and configs[-1] == {"x": 43}
    assert tunables == {"x": 1}
    declared = dest.engine.fetch_table(dest.engine.catalog.experiment_tunable_list, experiment_id="tune")
    assert values_from_rows(declared) == {"x": 42, "y": 0.5, "mode": "fast"}  # the stored default of x stays


def test_import_of_chosen_experiments_only(tmp_path: Path, dest: Storage) -> None:
    source = _store_file(tmp_path, "two", 0)
    run_shard(str(source), 1, "other")
    report = dest.import_store(source, experiment_ids=["other"])
    assert report.experiment_ids == ("other",)
    with _experiment(dest, "other", 1001) as exp:
        assert exp.load()[0] == [1001, 1002, 1003]
    before = store_contents(dest)
    with pytest.raises(UnknownObjectError, match=r"two\.duckdb' has no experiment 'ghost'; nothing was imported"):
        dest.import_store(source, experiment_ids=["tune", "ghost"])
    with pytest.raises(InvalidValueError, match="import_store experiment_ids takes a list of experiment ids"):
        dest.import_store(source, experiment_ids="tune")
    assert store_contents(dest) == before


def test_import_copies_merges_whose_experiments_are_here(tmp_path: Path, dest: Storage) -> None:
    source = _store_file(tmp_path, "merged", 0)
    run_shard(str(source), 1, "other")
    with Storage(source) as storage, _experiment(storage) as exp:
        exp.merge(["other"])
    dest.import_store(source, experiment_ids=["tune"])
    with _experiment(dest) as exp:
        assert exp.load()[0] == [1, 2, 3]  # "other" is not here: its merge was not copied
    dest.import_store(source)
    with _experiment(dest) as exp:
        assert exp.load_table().column("trial_id").to_pylist() == [1, 2, 3, 1001, 1002, 1003]  # the merge came too
    with Storage(source) as storage, _experiment(storage, "other", 1001) as other:
        other.merge(["tune"])
    dest.import_store(source)
    with _experiment(dest, "other", 1001) as exp:
        assert exp.load_table().column("trial_id").to_pylist() == [1001, 1002, 1003, 1, 2, 3]


# ---------------------------------------------------------------- refusals


def test_an_other_trial_under_a_stored_id_refuses_the_import(tmp_path: Path, dest: Storage) -> None:
    dest.import_store(_store_file(tmp_path, "first", 0))
    before = store_contents(dest)
    clash = _store_file(tmp_path, "clash", 0)  # the same work done again: same ids, other trials
    with pytest.raises(TrialConflictError, match=r"5 trial id\(s\) are taken here by other trials "
                                                 r"\('tune' trial 1, 'tune' trial 2, .*nothing was imported"):
        dest.import_store(clash)
    assert store_contents(dest) == before


def test_other_objectives_refuse_the_import(tmp_path: Path, dest: Storage) -> None:
    with _experiment(dest, opt_targets={"score": "max"}):
        pass
    before = store_contents(dest)
    with pytest.raises(ObjectiveConflictError, match=r"objectives differ \('tune' 'score': min there, max here\)"):
        dest.import_store(_store_file(tmp_path, "shard", 0))
    assert store_contents(dest) == before


def test_tunables_of_other_types_refuse_the_import(tmp_path: Path, dest: Storage) -> None:
    with _experiment(dest, tunables={"x": "zero"}):
        pass
    before = store_contents(dest)
    with pytest.raises(TunableConflictError, match=r"tunable types differ \('tune' 'x': int there, str here\)"):
        dest.import_store(_store_file(tmp_path, "shard", 0))
    assert store_contents(dest) == before


def test_files_that_are_not_stores_are_refused(tmp_path: Path, dest: Storage) -> None:
    before = store_contents(dest)
    text = tmp_path / "notes.txt"
    text.write_text("not a database")
    foreign = tmp_path / "foreign.duckdb"
    con = duckdb.connect(str(foreign))
    con.execute("CREATE TABLE t (x INTEGER)")
    con.close()
    with pytest.raises(NotAStoreError, match="no such file"):
        dest.import_store(tmp_path / "missing.duckdb")
    with pytest.raises(NotAStoreError, match="not a DuckDB file"):
        dest.import_store(text)
    with pytest.raises(NotAStoreError, match="is a DuckDB database but not an mlos_store database"):
        dest.import_store(foreign)
    with pytest.raises(InvalidValueError, match="into itself"):
        dest.import_store(dest.path)
    with pytest.raises(InvalidValueError, match="not ':memory:'"):
        dest.import_store(":memory:")
    assert store_contents(dest) == before
    with Storage(None) as memory:  # an in-memory store imports files too
        assert memory.import_store(_store_file(tmp_path, "shard", 0)).new_trials == 5


def test_a_store_of_an_older_schema_is_refused_with_advice(tmp_path: Path, dest: Storage) -> None:
    core = load_catalog()
    old = tmp_path / "old.duckdb"
    Engine(old, catalog=Catalog(list(core.queries.values()), list(core.migrations[:1]))).close()
    with pytest.raises(SchemaVersionError, match="has schema version 1, .*open it once read-write"):
        dest.import_store(old)
    Storage(old).close()  # upgraded
    assert dest.import_store(old).experiment_ids == ()


def _holder(source: Path, code: str) -> subprocess.Popen[str]:
    """Another process that opens ``source`` (by ``code``), says so, and keeps it until its stdin closes."""
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import sys, duckdb, mlos_store; s = {code}; print('open', flush=True); "
         "sys.stdin.read()", str(source)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "open\n"
    return holder


def test_a_source_a_shared_store_has_open_is_read_when_it_lets_go(tmp_path: Path, dest: Storage) -> None:
    source = _store_file(tmp_path, "shared", 0)
    holder = _holder(source, "mlos_store.Storage(sys.argv[1])")
    try:
        assert dest.import_store(source).new_trials == 5
    finally:
        holder.communicate("", timeout=60)
    assert holder.returncode == 0


def test_a_source_held_exclusively_is_refused_after_the_timeout(tmp_path: Path) -> None:
    source = _store_file(tmp_path, "exclusive", 0)
    with Storage(tmp_path / "dest.duckdb", timeout=0.5) as dest:
        before = store_contents(dest)
        holder = _holder(source, "mlos_store.Storage(sys.argv[1], mode='exclusive')")
        try:
            with pytest.raises(StoreBusyError, match=r"cannot read .*exclusive\.duckdb.*more than 0\.5 s") as info:
                dest.import_store(source)
            assert isinstance(info.value, StoreUnavailableError) and isinstance(info.value, OSError)
        finally:
            holder.communicate("", timeout=60)
        assert store_contents(dest) == before
        assert dest.import_store(source).new_trials == 5  # once released, it imports


def test_a_source_another_program_holds_is_refused_at_once(tmp_path: Path, dest: Storage) -> None:
    source = _store_file(tmp_path, "busy", 0)
    before = store_contents(dest)
    holder = _holder(source, "duckdb.connect(sys.argv[1])")
    try:
        with pytest.raises(StoreUnavailableError, match=r"cannot read .*busy\.duckdb.*lock"):
            dest.import_store(source)
    finally:
        holder.communicate("", timeout=60)
    assert store_contents(dest) == before
    assert dest.import_store(source).new_trials == 5


def test_a_source_open_in_this_process_is_read_or_waited_for(tmp_path: Path) -> None:
    source = _store_file(tmp_path, "open", 0)
    with Storage(tmp_path / "dest.duckdb", timeout=0.5) as dest:
        with Storage(source):  # shared: it lets go of the file for the import
            assert dest.import_store(source).new_trials == 5
        with Storage(source, mode="exclusive"), pytest.raises(StoreBusyError, match="open.duckdb"):
            dest.import_store(source)


def test_a_read_only_store_imports_nothing(tmp_path: Path) -> None:
    path = tmp_path / "ro.duckdb"
    Storage(path).close()
    with Storage(path, read_only=True) as storage, pytest.raises(StoreUnavailableError, match="read-only"):
        storage.import_store(_store_file(tmp_path, "shard", 0))


# ---------------------------------------------------------------- three machines


def test_three_shards_imported_hold_what_one_store_would_have(tmp_path: Path) -> None:
    """Three processes each write a shard file; imported into one, they equal one store that ran it all.

    Compared: load_table and load, results_table (config ids by their values: they may differ),
    telemetry, every trial's status history, and that equal configs share one id.
    """
    context = multiprocessing.get_context("spawn")
    shards = [tmp_path / f"shard{k}.duckdb" for k in range(3)]
    workers = [context.Process(target=run_shard, args=(str(path), k)) for k, path in enumerate(shards)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    single = _store_file(tmp_path, "single", 0, 1, 2)
    with Storage(tmp_path / "merged.duckdb") as merged, Storage(single, read_only=True) as reference:
        for path in shards:
            merged.import_store(path)
        with _experiment(merged) as got, _experiment(reference) as want:
            got_table, want_table = got.load_table(), want.load_table()
            assert got_table.num_rows == 9
            assert _by_values(merged, got_table).equals(_by_values(reference, want_table))
            assert got.load() == want.load()
            assert got.telemetry_table().equals(want.telemetry_table())
            trial_ids = _all_trial_ids(reference)
            assert sorted(_all_trial_ids(merged)) == sorted(trial_ids) and len(trial_ids) == 15
            for trial_id in trial_ids:
                assert _trial_history(merged, "tune", trial_id) == _trial_history(reference, "tune", trial_id)
            config_ids = {i: got.load_tunable_config(i) for i in got_table.column("tunable_config_id").to_pylist()}
            assert len(config_ids) == len({repr(sorted(c.items())) for c in config_ids.values()})
        got_results = merged.experiments["tune"].results_table
        want_results = reference.experiments["tune"].results_table
        assert got_results.num_rows == 15
        assert _by_values(merged, got_results).equals(_by_values(reference, want_results))


def _statement_count(storage: Storage, source: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    calls = []
    engine = storage.engine
    for method in ("fetch_table", "fetch_one", "fetch_value", "count", "execute", "ingest", "insert_rows"):
        original = getattr(engine, method)
        monkeypatch.setattr(engine, method,
                            lambda *a, _original=original, **k: calls.append(a[0].name) or _original(*a, **k))  # type: ignore[func-returns-value]
    storage.import_store(source)
    monkeypatch.undo()
    return len(calls)


def test_import_is_set_based_whatever_the_number_of_trials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small = _store_file(tmp_path, "small", 0)
    large = _store_file(tmp_path, "large", 0, 1, 2)
    with Storage(None) as one, Storage(None) as three:
        counts = _statement_count(one, small, monkeypatch), _statement_count(three, large, monkeypatch)
    assert counts[0] == counts[1] > 10  # one statement per table, plus the checks


def test_a_path_with_quotes_is_bound_not_spliced(tmp_path: Path, dest: Storage) -> None:
    source = _store_file(tmp_path, "it's \"quoted\"; DETACH memory; --", 0)
    assert dest.import_store(source).new_trials == 5
