"""Storage.compact(): the file rewritten as compactly as a bulk copy, every row, id and sequence kept."""

from __future__ import annotations

import itertools
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

from mlos_store import CompactionWarning, InvalidValueError, QueryError, Status, Storage
from mlos_store.catalog import load_catalog
from mlos_store.engine import compaction
from mlos_store.engine.compaction import COMPACTING_SUFFIX, Compaction

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


def _grow_by_telemetry(path: Path, trials: int, points: int = 5_000) -> None:
    """Trials with many telemetry points each, a turn per call: the file grows by some blocks every trial."""
    with Storage(path, linger=0) as store, _enter(store, "exp") as exp:
        for x in range(trials):
            trial = exp.new_trial({"x": 10_000 + x, "mode": "t"}, ts_start=T0)
            trial.update(Status.RUNNING, T0)
            stamps = [T0 + timedelta(milliseconds=i) for i in range(points)]
            trial.update_telemetry(Status.RUNNING, T0, [(ts, "cpu", float(i * x)) for i, ts in enumerate(stamps)])
            trial.update(Status.SUCCEEDED, T0 + timedelta(seconds=30), {"score": float(x)})


@pytest.fixture
def compacts_early(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Automatic compaction from the smallest files, at 1.05x growth; the sizes each compaction started at."""
    monkeypatch.setattr(compaction, "AUTO_COMPACT_MIN_BYTES", 0)
    monkeypatch.setattr(compaction, "AUTO_COMPACT_GROWTH", 1.05)
    started_at: list[int] = []
    real_copy = Compaction._replace_with_copy

    def copy_and_count(self: Compaction) -> None:
        started_at.append(os.path.getsize(self.file))
        real_copy(self)

    monkeypatch.setattr(Compaction, "_replace_with_copy", copy_and_count)
    return started_at


def _noted_size(path: Path) -> int:
    return int(Path(f"{path}.lock").read_text().removeprefix("compacted_bytes="))


def test_a_shared_store_compacts_itself_once_its_file_has_grown_loose(db_path: Path, compacts_early: list[int]) -> None:
    with Storage(db_path) as store:
        _fill(store)
        expected = _snapshot(store)
    _grow_turn_by_turn(db_path, 20)
    _grow_by_telemetry(db_path, 20)
    assert len(compacts_early) >= 2
    with Storage(db_path) as store:
        snapshot = _snapshot(store)
        assert snapshot["history"] == expected["history"] and snapshot["telemetry"][:20] == expected["telemetry"]
        assert _counts(store)["trial"] == 6 + 40 and _counts(store)["trial_telemetry"] == 20 + 20 * 20 + 20 * 5_000
        assert store.check_integrity() == {}
    assert not Path(f"{db_path}{COMPACTING_SUFFIX}").exists()


def test_an_automatic_compaction_waits_for_the_file_to_grow_again(db_path: Path, compacts_early: list[int],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Each copy costs the whole file: one per 1.05x growth (here) keeps their cost a share of the writes."""
    notes: list[int] = []
    real_note = Compaction._note_compacted_size

    def note_and_keep(self: Compaction) -> None:
        real_note(self)
        notes.append(_noted_size(db_path))

    monkeypatch.setattr(Compaction, "_note_compacted_size", note_and_keep)
    _grow_by_telemetry(db_path, 30)
    assert len(compacts_early) == len(notes) >= 2
    for left, next_start in zip(notes, compacts_early[1:], strict=False):
        assert next_start > 1.05 * left


def test_exclusive_and_read_only_stores_never_compact_by_themselves(db_path: Path, compacts_early: list[int]) -> None:
    with Storage(db_path, mode="exclusive") as store:
        _fill(store)
        with _enter(store, "exp") as exp:
            for x in range(30):
                exp.new_trial({"x": 1000 + x, "mode": "a"}).update(Status.SUCCEEDED, T0, {"score": 1.0})
    with Storage(db_path, read_only=True, linger=0) as reader:
        for _ in range(5):
            assert reader.get_experiment_by_id("exp") is not None
    assert compacts_early == []


def test_a_failed_automatic_compaction_warns_and_the_calls_succeed(
        db_path: Path, compacts_early: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    with Storage(db_path, mode="exclusive") as store:
        _fill(store)
        before = _snapshot(store)

    def no_room(self: Compaction, target: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Compaction, "_copy_rows", no_room)
    with pytest.warns(CompactionWarning, match="automatic compaction failed.*left as it was.*No space left") as caught:
        with Storage(db_path, linger=0) as store, _enter(store, "exp") as exp:
            trial = exp.new_trial({"x": 99, "mode": "a"}, ts_start=T0, config={"k": 99})
            trial.update(Status.RUNNING, T0)
            assert exp.get_trial_by_id(trial.trial_id).status is Status.RUNNING  # type: ignore[union-attr]
            after = _snapshot(store)
            assert after["load"] == before["load"] and len(after["pending"]) == len(before["pending"]) + 1
            assert store.check_integrity() == {}
    # each failure warned once, and the next try waited for the file to grow 1.05x past the size it failed at
    assert 1 <= len(compacts_early) == sum(w.category is CompactionWarning for w in caught) < 5
    assert all(later > 1.05 * earlier for earlier, later in itertools.pairwise(compacts_early))
    assert not Path(f"{db_path}{COMPACTING_SUFFIX}").exists()
