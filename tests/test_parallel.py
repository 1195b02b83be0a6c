"""Several processes on one store file (the shared mode): nothing lost, nobody fails but by timeout."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from conftest import FAR_FUTURE, T0

from mlos_store import Experiment, Status, Storage, StoreBusyError, StoreUnavailableError

REPO = Path(__file__).resolve().parent.parent
SPAWN = multiprocessing.get_context("spawn")
POINTS_PER_TRIAL = 10


def _experiment(store: Storage) -> Experiment:
    return store.experiment(experiment_id="exp", trial_id=1, root_env_config="env.jsonc",
                            description="parallel", tunables={"worker": 0, "seq": 0},
                            opt_targets={"score": "min"})


def _create(path: Path) -> None:
    with Storage(path) as store, _experiment(store):
        pass


# ---------------------------------------------------------------- 8 processes, every commit counted


def _commit_in_turn(path: str, worker: int, commits: int) -> list[int]:
    """One small transaction per commit (a new trial); returns the trial ids the store reported."""
    ids = []
    with Storage(path) as store, _experiment(store) as exp:
        for seq in range(commits):
            ids.append(exp.new_trial({"worker": worker, "seq": seq}, ts_start=T0).trial_id)
    return ids


def test_eight_processes_committing_in_turn_lose_no_commit(db_path: Path) -> None:
    workers, commits = 8, 50
    _create(db_path)
    with SPAWN.Pool(workers) as pool:
        reported = pool.starmap(_commit_in_turn, [(str(db_path), w, commits) for w in range(workers)])
    with Storage(db_path) as store:
        stored = list(_experiment(store).pending_trials(FAR_FUTURE, running=False))
    assert len(stored) == workers * commits
    by_id = {t.trial_id: (t.tunables["worker"], t.tunables["seq"]) for t in stored}
    for worker, ids in enumerate(reported):
        assert [by_id[i] for i in ids] == [(worker, seq) for seq in range(commits)]
    assert sorted(by_id) == list(range(1, workers * commits + 1))  # ids allocated by the database


# ---------------------------------------------------------------- 4 workers and a reader


def _run_trials(path: str, worker: int, trials: int) -> list[int]:
    ids = []
    with Storage(path) as store, _experiment(store) as exp:
        for seq in range(trials):
            trial = exp.new_trial({"worker": worker, "seq": seq})
            trial.update(Status.RUNNING, T0)
            points = [(T0 + timedelta(seconds=i), f"m{i % 2}", float(worker * 1000 + seq + i))
                      for i in range(POINTS_PER_TRIAL)]
            trial.update_telemetry(Status.RUNNING, T0, points)
            trial.update(Status.SUCCEEDED, T0 + timedelta(minutes=1), {"score": float(seq)})
            ids.append(trial.trial_id)
    return ids


def _read_until(path: str, done: str) -> int:
    """Reads ``results_table`` in a loop, read-only, until file ``done`` exists; returns how many reads it made.

    Every read must be a consistent snapshot: trial ids unique, each
    SUCCEEDED trial with its score, the count never going down.
    """
    reads, seen = 0, 0
    with Storage(path, read_only=True) as store:
        while not os.path.exists(done) or reads == 0:
            table = store.experiments["exp"].results_table
            ids = table.column("trial_id").to_pylist()
            assert len(ids) == len(set(ids)) >= seen
            if "result.score" in table.column_names:
                scores = zip(table.column("status").to_pylist(), table.column("result.score").to_pylist())
                assert all(score is not None for status, score in scores if status == "SUCCEEDED")
            seen, reads = len(ids), reads + 1
    return reads


def test_four_workers_and_a_reader_store_every_trial_and_point_once(db_path: Path) -> None:
    workers, trials = 4, 100
    _create(db_path)
    done = db_path.with_name("workers-done")
    with SPAWN.Pool(workers + 1) as pool:
        reader = pool.apply_async(_read_until, (str(db_path), str(done)))
        results = [pool.apply_async(_run_trials, (str(db_path), w, trials)) for w in range(workers)]
        reported = [r.get(timeout=600) for r in results]
        done.touch()
        reads = reader.get(timeout=600)
    assert reads >= 1
    with Storage(db_path, read_only=True) as store:
        exp = _experiment(store)
        table = exp.load_table()
        telemetry = exp.telemetry_table()
    assert sorted(table.column("trial_id").to_pylist()) == sorted(i for ids in reported for i in ids)
    assert table.num_rows == workers * trials
    assert set(table.column("status").to_pylist()) == {"SUCCEEDED"}
    assert telemetry.num_rows == workers * trials * POINTS_PER_TRIAL
    per_trial = telemetry.group_by("trial_id").aggregate([("value", "count")])
    assert set(per_trial.column("value_count").to_pylist()) == {POINTS_PER_TRIAL}
    by_trial = dict(zip(table.column("trial_id").to_pylist(),
                        zip(table.column("config.worker").to_pylist(), table.column("config.seq").to_pylist())))
    first = telemetry.filter(pa.compute.equal(telemetry.column("ts"), pa.scalar(T0, pa.timestamp("us", "UTC"))))
    for trial_id, value in zip(first.column("trial_id").to_pylist(), first.column("value").to_pylist()):
        worker, seq = by_trial[trial_id]
        assert value == float(worker * 1000 + seq)  # each trial's telemetry is its own


# ---------------------------------------------------------------- waiting for a long transaction


_LONG_TRANSACTION = """
    import sys, time
    from datetime import datetime, timezone
    from mlos_store import Storage
    store = Storage(sys.argv[1])
    exp = store.experiment(experiment_id="exp", trial_id=1, root_env_config="env.jsonc", description="parallel",
                           tunables={"worker": 0, "seq": 0}, opt_targets={"score": "min"})
    with exp:
        with store.engine.transaction():
            exp.new_trial({"worker": 9, "seq": 0})
            print("holding", flush=True)
            time.sleep(float(sys.argv[2]))
    print("committed", flush=True)
    store.close()
"""


def _hold_in_transaction(db_path: Path, seconds: float) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(_LONG_TRANSACTION), str(db_path), str(seconds)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "holding", proc.stderr.read() if proc.stderr else ""
    return proc


def _finish(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return out


def test_writer_times_out_with_store_busy_while_another_holds_a_long_transaction(db_path: Path) -> None:
    _create(db_path)
    with Storage(db_path, timeout=0.5) as store, _experiment(store) as exp:
        proc = _hold_in_transaction(db_path, 4.0)
        started = time.monotonic()
        with pytest.raises(StoreBusyError, match=rf"store '{db_path}' is busy: .* more than 0.5 s") as info:
            exp.new_trial({"worker": 1, "seq": 1})
        assert 0.5 <= time.monotonic() - started < 3.5
        assert isinstance(info.value, StoreUnavailableError) and isinstance(info.value, TimeoutError)
        assert _finish(proc).strip() == "committed"
        stored = [(t.tunables["worker"], t.trial_id) for t in exp.pending_trials(FAR_FUTURE, running=False)]
    assert stored == [(9, 1)]  # the holder's trial; the refused one left nothing


def test_writer_waits_for_a_long_transaction_then_succeeds(db_path: Path) -> None:
    _create(db_path)
    with Storage(db_path, timeout=60) as store, _experiment(store) as exp:
        proc = _hold_in_transaction(db_path, 1.5)
        started = time.monotonic()
        trial = exp.new_trial({"worker": 1, "seq": 1})
        assert time.monotonic() - started >= 0.5  # it waited for the holder's commit
        _finish(proc)
        assert trial.trial_id == 2  # allocated after the holder's trial 1
        stored = [(t.trial_id, t.tunables["worker"]) for t in exp.pending_trials(FAR_FUTURE, running=False)]
    assert stored == [(1, 9), (2, 1)]


# ---------------------------------------------------------------- one process, modes


def test_two_stores_in_one_process_take_turns_on_one_file(db_path: Path) -> None:
    with Storage(db_path) as first, Storage(db_path) as second:
        a, b = _experiment(first).__enter__(), _experiment(second).__enter__()
        ids = [(a if i % 2 else b).new_trial({"worker": i % 2, "seq": i}).trial_id for i in range(10)]
        assert ids == list(range(1, 11))
        assert [t.trial_id for t in a.pending_trials(FAR_FUTURE, running=False)] == ids


def test_every_read_works_with_a_turn_per_call(db_path: Path) -> None:
    """With ``linger=0`` the turn ends (other statements run on the connection) before a read's row is built."""
    with Storage(db_path, linger=0) as store, _experiment(store) as exp:
        trial = exp.new_trial({"worker": 1, "seq": 1})
        trial.update(Status.RUNNING, T0)
        found = exp.get_trial_by_id(trial.trial_id)
        assert found is not None and found.status is Status.RUNNING
        assert [status for _, status in found.status_history()] == [Status.PENDING, Status.RUNNING]
        assert store.get_experiment_by_id(exp.experiment_id) is not None
        assert [t.trial_id for t in exp.pending_trials(FAR_FUTURE, running=True)] == [trial.trial_id]


def test_shared_store_releases_the_file_once_idle(db_path: Path) -> None:
    with Storage(db_path, linger=0.05) as store, _experiment(store) as exp:
        exp.new_trial({"worker": 1, "seq": 1})
        time.sleep(0.5)
        con = duckdb.connect(str(db_path))  # another program can open the file meanwhile
        assert con.execute("SELECT count(*) FROM trial").fetchone() == (1,)
        con.close()
        assert exp.trial_id == 2  # and the store takes it back when next used


def test_shared_store_lets_go_at_once_when_another_process_waits(db_path: Path) -> None:
    _create(db_path)
    with Storage(db_path, linger=3600) as store, _experiment(store) as exp:
        exp.new_trial({"worker": 1, "seq": 1})
        started = time.monotonic()
        proc = _hold_in_transaction(db_path, 0)
        assert time.monotonic() - started < 30  # not the hour of linger
        _finish(proc)
        assert exp.trial_id == 3


def test_exclusive_store_holds_the_file_and_shared_openers_time_out(db_path: Path) -> None:
    with Storage(db_path, mode="exclusive") as store:
        assert store.mode == "exclusive"
        with pytest.raises(StoreBusyError, match=rf"cannot open '{db_path}': another process held it"):
            Storage(db_path, timeout=0.2)
    with Storage(db_path, timeout=0.2) as store:
        assert store.mode == "shared"


def _stream_pending(store: Storage) -> pa.RecordBatchReader:
    return store.engine.stream(store.engine.catalog.trial_list_pending, batch_size=2, experiment_id="exp",
                               statuses=["PENDING"], timestamp=FAR_FUTURE, runner_assigned=None)


def test_shared_stream_keeps_the_file_until_read_through(db_path: Path) -> None:
    """A stream is read lazily in one turn; other stores wait for it, and get the file once it is read."""
    with Storage(db_path, timeout=0.3) as other, _experiment(other) as other_exp, \
            Storage(db_path) as store, _experiment(store) as exp:
        for seq in range(5):
            exp.new_trial({"worker": 0, "seq": seq})
        reader = _stream_pending(store)
        first = reader.read_next_batch()
        with pytest.raises(StoreBusyError, match="is busy"):
            other_exp.new_trial({"worker": 1, "seq": 0})
        exp.new_trial({"worker": 0, "seq": 5})  # this store's own calls go on during its stream
        rest = reader.read_all()
        other_exp.new_trial({"worker": 1, "seq": 0})
        ids = first.column("trial_id").to_pylist() + rest.column("trial_id").to_pylist()
        assert ids == [1, 2, 3, 4, 5]
        assert exp.trial_id == 8


def test_dropped_stream_gives_the_file_back(db_path: Path) -> None:
    with Storage(db_path) as store, _experiment(store) as exp:
        exp.new_trial({"worker": 0, "seq": 0})
        _stream_pending(store)  # never read
        with Storage(db_path, timeout=5) as other, _experiment(other) as other_exp:
            assert other_exp.new_trial({"worker": 1, "seq": 0}).trial_id == 2


@pytest.mark.parametrize("kwargs, match", [
    ({"mode": "sharing"}, "mode must be one of 'shared', 'exclusive', got 'sharing'"),
    ({"timeout": -1}, "timeout must be a finite number of seconds >= 0, got -1"),
    ({"linger": float("nan")}, "linger must be a finite number of seconds >= 0, got nan"),
])
def test_bad_connection_settings_are_refused(db_path: Path, kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Storage(db_path, **kwargs)  # type: ignore[arg-type]
    assert not db_path.exists()


def test_memory_store_cannot_be_shared() -> None:
    with pytest.raises(ValueError, match="in-memory store cannot be shared"):
        Storage(None, mode="shared")
    with Storage(None) as store:
        assert store.mode == "exclusive"


def test_without_flock_file_stores_are_exclusive(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a platform without flock (Windows) the store still works, holding its file from open to close."""
    import mlos_store.engine.modes
    import mlos_store.engine.turns

    for module in (mlos_store.engine.modes, mlos_store.engine.turns):
        monkeypatch.setattr(module, "FLOCK_AVAILABLE", False)
    with pytest.raises(ValueError, match="shared mode needs flock"):
        Storage(db_path, mode="shared")
    with Storage(db_path) as store, _experiment(store) as exp:
        assert store.mode == "exclusive"
        exp.new_trial({"worker": 0, "seq": 0})
    assert sorted(p.name for p in db_path.parent.iterdir()) == [db_path.name]
