"""Storage.compact(): the file rewritten as compactly as a bulk copy, every row, id and sequence kept."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
from conftest import T0
from test_integrity import _counts, _enter, _fill, _snapshot

from mlos_store import InvalidValueError, QueryError, Status, Storage
from mlos_store.catalog import load_catalog
from mlos_store.engine.compaction import COMPACTING_SUFFIX

REPO = Path(__file__).resolve().parent.parent


def _grow_turn_by_turn(path: Path, trials: int) -> None:
    """Trials written a turn per call, as processes sharing a file write it: the file keeps free blocks."""
    with Storage(path, linger=0) as store, _enter(store, "exp") as exp:
        for x in range(100, 100 + trials):
            trial = exp.new_trial({"x": x, "mode": "a"}, ts_start=T0)
            trial.update(Status.RUNNING, T0)
            points = [(T0 + timedelta(seconds=s), "cpu", float(s)) for s in range(20)]
            trial.update_telemetry(Status.RUNNING, T0, points)
            trial.update(Status.SUCCEEDED, T0 + timedelta(seconds=30), {"score": float(x)})


@pytest.mark.parametrize("mode", ["shared", "exclusive"])
def test_compaction_keeps_every_row_and_shrinks_a_file_written_turn_by_turn(db_path: Path, mode: str) -> None:
    with Storage(db_path, mode=mode) as store:
        _fill(store)
    _grow_turn_by_turn(db_path, 40)
    with Storage(db_path, mode=mode) as store:
        before, counts = _snapshot(store), _counts(store)
        size_before, size_after = store.compact()
        assert size_after < size_before and size_after == db_path.stat().st_size
        assert _snapshot(store) == before and _counts(store) == counts
        assert store.check_integrity() == {}
    assert sorted(p.name for p in db_path.parent.iterdir()) == [db_path.name, db_path.name + ".lock",
                                                                 db_path.name + ".wait"]


@pytest.mark.parametrize("mode", ["shared", "exclusive"])
def test_ids_after_compaction_are_never_ones_already_used(db_path: Path, mode: str) -> None:
    """Config ids and the history's order come from sequences, which a copy of the rows alone would restart."""
    with Storage(db_path, mode=mode) as store:
        _fill(store)
        store.compact()
        with _enter(store, "exp") as exp:
            for x in range(3):
                trial = exp.new_trial({"x": 123_456 + x, "mode": "new"})
                trial.update(Status.RUNNING, T0 + timedelta(seconds=2))
                trial.update(Status.SUCCEEDED, T0 + timedelta(seconds=3), {"score": 1.0})
                assert trial.trial_id == 6 + x  # _fill stored trials 1 to 5
                assert [status for _, status in trial.status_history()] == [
                    Status.PENDING, Status.RUNNING, Status.SUCCEEDED]
        assert store.check_integrity() == {}  # config ids and history sequence numbers still unique


def test_the_copy_check_lists_every_table_of_the_schema(tmp_path: Path) -> None:
    """A table the row-count check missed could be lost by a compaction without anyone noticing."""
    with Storage(tmp_path / "s.duckdb", mode="exclusive"):
        pass
    con = duckdb.connect(str(tmp_path / "s.duckdb"), read_only=True)
    tables = {name for (name,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    con.close()
    checked = load_catalog().compaction_row_counts.sql
    assert all(f"compact_source.{t})" in checked and f"compact_target.{t})" in checked for t in tables), tables


def test_compaction_is_refused_where_it_cannot_run(db_path: Path) -> None:
    with pytest.raises(InvalidValueError, match="in-memory store has no file"), Storage() as memory:
        memory.compact()
    with Storage(db_path) as store:
        _fill(store)
        before = _snapshot(store)
        with pytest.raises(QueryError, match="inside a transaction"), store.engine.transaction():
            store.compact()
        assert _snapshot(store) == before
    with Storage(db_path, read_only=True) as reader, pytest.raises(InvalidValueError, match="open read-only"):
        reader.compact()


def _write_trials(path: str, count: int, started: object) -> None:
    with Storage(path) as store, _enter(store, "exp") as exp:
        started.set()  # type: ignore[attr-defined]
        for x in range(count):
            trial = exp.new_trial({"x": 50_000 + x, "mode": "w"})
            trial.update(Status.SUCCEEDED, T0 + timedelta(seconds=1), {"score": float(x)})


def test_a_writer_beside_a_compaction_waits_and_loses_nothing(db_path: Path) -> None:
    _grow_turn_by_turn(db_path, 60)
    context = multiprocessing.get_context("spawn")
    started = context.Event()
    writer = context.Process(target=_write_trials, args=(str(db_path), 40, started))
    writer.start()
    assert started.wait(60)
    with Storage(db_path) as store:
        for _ in range(3):
            store.compact()
    writer.join(120)
    assert writer.exitcode == 0
    with Storage(db_path, read_only=True) as store:
        exp = store.get_experiment_by_id("exp")
        assert exp is not None
        ids, configs, _, statuses = exp.load()
        assert sum(1 for c in configs if c["mode"] == "w") == 40
        assert len(ids) == 100 and len(set(ids)) == 100
        assert store.check_integrity() == {}


KILLED_COMPACTION = """
import sys
from mlos_store import Storage
with Storage(sys.argv[1]) as store:
    print("open", flush=True)
    while True:
        store.compact()
"""


def test_a_compaction_killed_at_any_point_leaves_a_whole_store(db_path: Path) -> None:
    with Storage(db_path) as store:
        _fill(store)
    _grow_turn_by_turn(db_path, 30)
    with Storage(db_path) as store:
        before, counts = _snapshot(store), _counts(store)
    for delay in (0.05, 0.2, 0.35, 0.5, 0.8):
        proc = subprocess.Popen([sys.executable, "-c", KILLED_COMPACTION, str(db_path)], stdout=subprocess.PIPE,
                                cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"open"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        with Storage(db_path) as store:  # the next opener finds every row, and compacts again fine
            assert _snapshot(store) == before and _counts(store) == counts
            assert store.check_integrity() == {}
    with Storage(db_path) as store:
        store.compact()
    assert not (db_path.parent / (db_path.name + COMPACTING_SUFFIX)).exists()
