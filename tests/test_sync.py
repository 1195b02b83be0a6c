"""Storage.sync: a central store that follows runners' store files, and shards of one experiment."""

from __future__ import annotations

import multiprocessing
import os
import random
import shutil
import signal
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from conftest import OPT_TARGETS, T0, store_contents

from mlos_store import InvalidValueError, Status, Storage, TrialConflictError
from mlos_store.experiment import Experiment

TUNABLES = {"x": 0, "mode": "fast"}
EXPERIMENT = "fleet"
#: What a runner of the concurrent test writes: trials, telemetry batches per trial, points per batch.
TRIALS, BATCHES, POINTS = 8, 3, 10


def _experiment(storage: Storage, shard: int = 0, experiment_id: str = EXPERIMENT) -> Experiment:
    return storage.experiment(experiment_id=experiment_id, trial_id=1, root_env_config="env.jsonc",
                              description="one experiment, many machines", tunables=TUNABLES,
                              opt_targets=OPT_TARGETS, shard=shard)


def _points(t0: Any, batch: int, count: int = POINTS) -> list[tuple[Any, str, float]]:
    return [(t0 + timedelta(seconds=batch * count + i), "cpu", float(batch * count + i)) for i in range(count)]


def run_runner(path: str, shard: int, pause: float = 0.0, synced: Any = None) -> None:
    """One machine: its own store file of the experiment, trials through their whole life.

    With ``synced`` (the syncer's count of syncs), each trial waits, once
    RUNNING with some telemetry, for one more sync: so syncs are sure to see
    trials in the middle of their life, whatever the machine's load.
    """
    with Storage(path) as storage, _experiment(storage, shard) as exp:
        for i in range(TRIALS):
            t0 = T0 + timedelta(hours=shard, minutes=i)
            trial = exp.new_trial({"x": i % 3, "mode": "fast"}, ts_start=t0, config={"shard": shard})
            trial.update(Status.RUNNING, t0)
            for batch in range(BATCHES):
                trial.update_telemetry(Status.RUNNING, t0, _points(t0, batch))
                time.sleep(pause)
                if synced is not None and batch == 0:
                    _wait_for_a_sync(synced)
            final = Status.FAILED if i % 4 == 3 else Status.SUCCEEDED
            trial.update(final, t0 + timedelta(minutes=1),
                         {"score": shard + i / 10} if final == Status.SUCCEEDED else None)


def _wait_for_a_sync(synced: Any, timeout: float = 120.0) -> None:
    seen, deadline = synced.value, time.monotonic() + timeout
    while synced.value == seen and time.monotonic() < deadline:
        time.sleep(0.01)


def _logical_rows(path: Path) -> dict[str, list[str]]:
    """A store's rows with what is local to one store left out (config ids, history numbers), sorted."""
    queries = {
        "experiment": "SELECT experiment_id FROM experiment",
        "trial": "SELECT t.experiment_id, t.trial_id, c.config_hash, t.status::VARCHAR, t.ts_created, t.ts_start, "
                 "t.ts_end, t.trial_runner_id FROM trial t JOIN tunable_config c USING (config_id)",
        "trial_param": "SELECT * FROM trial_param",
        "trial_status": "SELECT experiment_id, trial_id, ts, status::VARCHAR FROM trial_status",
        "trial_result": "SELECT * FROM trial_result",
        "trial_telemetry": "SELECT * FROM trial_telemetry",
        "tunable_param": "SELECT DISTINCT c.config_hash, p.tunable_name, p.value_kind::VARCHAR, p.value, "
                         "p.value_int, p.value_text FROM tunable_param p JOIN tunable_config c USING (config_id)",
    }
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {table: sorted(repr(row) for row in con.execute(sql).fetchall()) for table, sql in queries.items()}
    finally:
        con.close()


def _union(paths: list[Path]) -> dict[str, list[Any]]:
    union: dict[str, list[Any]] = {}
    for path in paths:
        for table, rows in _logical_rows(path).items():
            union.setdefault(table, []).extend(rows)
    union["experiment"] = sorted(set(union["experiment"]))  # one experiment, held by every runner
    union["tunable_param"] = sorted(set(union["tunable_param"]))  # equal configs are one config
    return {table: sorted(rows) for table, rows in union.items()}


def _ended_without_results(storage: Storage) -> int:
    """Trials the central store holds as SUCCEEDED without a result (a sync seen half done)."""
    with storage.engine.transaction():
        con = storage.engine._connection()
        row = con.execute("SELECT count(*) FROM trial WHERE status = 'SUCCEEDED' AND (experiment_id, trial_id) "
                          "NOT IN (SELECT (experiment_id, trial_id) FROM trial_result)").fetchone()
    assert row is not None
    return int(row[0])


# ---------------------------------------------------------------- the later life of a trial


def test_sync_brings_the_later_life_of_trials_and_a_second_sync_changes_nothing(tmp_path: Path) -> None:
    source, central = tmp_path / "runner.duckdb", tmp_path / "central.duckdb"
    with Storage(source) as runner, _experiment(runner, shard=1) as exp, Storage(central) as hub:
        trial = exp.new_trial({"x": 1, "mode": "fast"}, ts_start=T0)
        trial.update_telemetry(Status.RUNNING, T0, _points(T0, 0))
        first = hub.sync(source)
        assert (first.new_experiments, first.new_trials, first.new_telemetry_points) == (1, 1, POINTS)
        trial.update_telemetry(Status.RUNNING, T0, _points(T0, 1))
        trial.update(Status.SUCCEEDED, T0 + timedelta(minutes=1), {"score": 0.5})
        later = hub.sync(source)
        assert (later.new_trials, later.advanced_trials, later.new_results, later.new_telemetry_points,
                later.new_history_entries) == (0, 1, 1, POINTS, 1)
        once = store_contents(hub)
        again = hub.sync(source)
        assert (again.new_trials, again.advanced_trials, again.new_results, again.new_telemetry_points) == (0,) * 4
        assert store_contents(hub) == once
    assert _logical_rows(central) == _logical_rows(source)


def test_a_stale_copy_of_a_source_never_moves_a_trial_back(tmp_path: Path) -> None:
    source, stale, central = tmp_path / "runner.duckdb", tmp_path / "stale.duckdb", tmp_path / "central.duckdb"
    with Storage(source) as runner, _experiment(runner, shard=2) as exp:
        trial = exp.new_trial({"x": 1, "mode": "fast"}, ts_start=T0)
        trial.update_telemetry(Status.RUNNING, T0, _points(T0, 0))
    shutil.copy(source, stale)  # the same store (same identity), as it was while the trial ran
    with Storage(source) as runner, _experiment(runner, shard=2) as exp:
        exp.ingest_telemetry(pa.table({"trial_id": [trial.trial_id], "ts": [T0 + timedelta(hours=1)],
                                       "metric": ["cpu"], "value": [1.0]}))
        runner_trial = next(iter(exp.pending_trials(T0 + timedelta(days=1), running=True)))
        runner_trial.update(Status.SUCCEEDED, T0 + timedelta(minutes=5), {"score": 1.0})
    with Storage(central) as hub:
        hub.sync(source)
        newer = store_contents(hub)
        report = hub.sync(stale)
        assert (report.advanced_trials, report.new_results, report.new_telemetry_points) == (0, 0, 0)
        assert store_contents(hub) == newer


def test_one_experiment_on_two_runners_without_shards_is_refused_with_nothing_changed(tmp_path: Path) -> None:
    first, second, central = tmp_path / "a.duckdb", tmp_path / "b.duckdb", tmp_path / "central.duckdb"
    for path, x in ((first, 1), (second, 2)):
        with Storage(path) as runner, _experiment(runner) as exp:
            exp.new_trial({"x": x, "mode": "fast"}, ts_start=T0 + timedelta(minutes=x))
    with Storage(central) as hub:
        hub.sync(first)
        before = store_contents(hub)
        with pytest.raises(TrialConflictError, match="trial id"):
            hub.sync(second)
        assert store_contents(hub) == before


def test_shards_number_apart_and_keep_their_range_in_a_store_holding_others(tmp_path: Path) -> None:
    central = tmp_path / "central.duckdb"
    sources = [tmp_path / f"runner{shard}.duckdb" for shard in (1, 2)]
    for shard, path in zip((1, 2), sources):
        with Storage(path) as runner, _experiment(runner, shard=shard) as exp:
            assert [exp.new_trial({"x": 0, "mode": "fast"}).trial_id for _ in range(2)] == [
                shard * 2**40 + 1, shard * 2**40 + 2]
    with Storage(central) as hub:
        for path in sources:
            hub.sync(path)
        with _experiment(hub, shard=1) as exp:  # numbering goes on within shard 1, not past shard 2's ids
            assert exp.new_trial({"x": 0, "mode": "fast"}).trial_id == 2**40 + 3
        with _experiment(hub, shard=3) as exp:
            assert exp.new_trial({"x": 0, "mode": "fast"}).trial_id == 3 * 2**40 + 1
        assert hub.check_integrity() == {}


@pytest.mark.parametrize("shard", [-1, 2**23, True, 1.5])
def test_a_shard_out_of_range_is_refused(tmp_path: Path, shard: Any) -> None:
    with Storage(tmp_path / "s.duckdb") as storage, pytest.raises(InvalidValueError, match="shard must be"):
        _experiment(storage, shard=shard)


def test_load_watermark_holds_on_a_runner_and_on_the_central_store(tmp_path: Path) -> None:
    source, central = tmp_path / "runner.duckdb", tmp_path / "central.duckdb"
    with Storage(source) as runner, _experiment(runner, shard=5) as exp, Storage(central) as hub:
        seen: list[int] = []
        for i in range(3):
            trial = exp.new_trial({"x": i, "mode": "fast"}, ts_start=T0)
            trial.update(Status.SUCCEEDED, T0 + timedelta(seconds=i + 1), {"score": float(i)})
            hub.sync(source)
            with _experiment(hub, shard=5) as mirror:
                for store_exp in (exp, mirror):
                    watermark = max(seen, default=-1)
                    assert store_exp.load(watermark)[0] == [trial.trial_id]
            seen.append(trial.trial_id)


# ---------------------------------------------------------------- rows the API never stores


@pytest.mark.parametrize(("statement", "rule"), [
    ("UPDATE trial_telemetry SET metric = '' WHERE ts = (SELECT min(ts) FROM trial_telemetry)",
     "empty metric name"),
    ("UPDATE trial_result SET metric = ''", "empty metric name"),
    ("DELETE FROM experiment_tunable WHERE tunable_name = 'mode'", "tunable mode not declared"),
])
def test_a_source_with_rows_the_api_never_stores_is_refused(tmp_path: Path, statement: str, rule: str) -> None:
    source, central = tmp_path / "runner.duckdb", tmp_path / "central.duckdb"
    run_runner(str(source), 1)
    con = duckdb.connect(str(source))
    con.execute(statement)
    con.close()
    with Storage(central) as hub:
        before = store_contents(hub)
        with pytest.raises(InvalidValueError, match=rule):
            hub.sync(source)
        assert store_contents(hub) == before


# ---------------------------------------------------------------- many runners, one syncer


def _syncer(central: str, sources: list[str], stop: str, checks: Any) -> None:
    """Syncs every source into the central store in a loop until told to stop, checking each state seen."""
    with Storage(central) as hub:
        while not os.path.exists(stop):
            for source in sources:
                if os.path.exists(source):
                    hub.sync(source)
                    assert _ended_without_results(hub) == 0
                    assert hub.check_integrity() == {}
                    checks.value += 1


def test_four_runners_synced_in_a_loop_end_as_their_union(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    central, stop = tmp_path / "central.duckdb", tmp_path / "stop"
    sources = [tmp_path / f"runner{shard}.duckdb" for shard in range(1, 5)]
    checks = ctx.Value("i", 0)
    syncer = ctx.Process(target=_syncer, args=(str(central), list(map(str, sources)), str(stop), checks))
    syncer.start()
    runners = [ctx.Process(target=run_runner, args=(str(path), shard, 0.01, checks))
               for shard, path in zip(range(1, 5), sources)]
    for process in runners:
        process.start()
    for process in runners:
        process.join(timeout=300)
        assert process.exitcode == 0
    stop.touch()
    syncer.join(timeout=300)
    assert syncer.exitcode == 0 and checks.value >= TRIALS
    with Storage(central) as hub:
        for source in sources:
            hub.sync(source)
        assert hub.check_integrity() == {}
    assert _logical_rows(central) == _union(sources)
    assert len(_logical_rows(central)["trial_telemetry"]) == 4 * TRIALS * BATCHES * POINTS


def _sync_once(central: str, source: str, started: Any) -> None:
    with Storage(central) as hub:
        started.set()
        hub.sync(source)


def test_a_syncer_killed_mid_sync_loses_nothing_and_the_next_sync_completes(tmp_path: Path) -> None:
    source, central = tmp_path / "runner.duckdb", tmp_path / "central.duckdb"
    run_runner(str(source), 1)
    with Storage(source) as runner, _experiment(runner, shard=1) as exp:
        trial_ids = exp.load()[0]
        many = 300_000
        exp.ingest_telemetry(pa.table({
            "trial_id": pa.array([trial_ids[i % len(trial_ids)] for i in range(many)], pa.int64()),
            "ts": pa.array([T0 + timedelta(days=1, microseconds=i) for i in range(many)], pa.timestamp("us", "UTC")),
            "metric": pa.array(["load"] * many), "value": pa.array([float(i) for i in range(many)])}))
    ctx = multiprocessing.get_context("spawn")
    rng = random.Random(7)
    for _ in range(3):
        started = ctx.Event()
        syncer = ctx.Process(target=_sync_once, args=(str(central), str(source), started))
        syncer.start()
        assert started.wait(timeout=120)
        time.sleep(rng.uniform(0.0, 0.3))
        os.kill(syncer.pid or 0, signal.SIGKILL)
        syncer.join()
        with Storage(central) as hub:
            assert hub.check_integrity() == {}
            assert _ended_without_results(hub) == 0
    with Storage(central) as hub:
        hub.sync(source)
        assert hub.check_integrity() == {}
    assert _logical_rows(central) == _logical_rows(source)


def test_the_sync_command_brings_each_source_and_says_what_it_brought(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from mlos_store.cli import main

    sources = [tmp_path / f"runner{shard}.duckdb" for shard in (1, 2)]
    for shard, path in zip((1, 2), sources):
        run_runner(str(path), shard)
    central = tmp_path / "central.duckdb"
    assert main(["sync", str(central), *map(str, sources)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"synced from {path}: 1 new experiment(s), {TRIALS} new trial(s), 0 trial(s) moved on, "
                     f"{TRIALS - TRIALS // 4} result(s), {TRIALS * BATCHES * POINTS} telemetry point(s)"
                     for path in sources[:1]] + [
                     f"synced from {sources[1]}: 0 new experiment(s), {TRIALS} new trial(s), 0 trial(s) moved on, "
                     f"{TRIALS - TRIALS // 4} result(s), {TRIALS * BATCHES * POINTS} telemetry point(s)"]
    assert _logical_rows(central) == _union(sources)


def test_a_source_holding_its_experiment_record_twice_gives_one_record(tmp_path: Path) -> None:
    source, central = tmp_path / "runner.duckdb", tmp_path / "central.duckdb"
    run_runner(str(source), 1)
    con = duckdb.connect(str(source))
    for table in ("experiment", "objective", "experiment_tunable"):
        con.execute(f"INSERT INTO {table} SELECT * FROM {table}")
    con.close()
    with Storage(central) as hub:
        hub.sync(source)
        assert hub.check_integrity() == {}
    assert _logical_rows(central)["experiment"] == [repr((EXPERIMENT,))]
