"""Faults: killed writers, unusable directories and files, a full disk. Nothing committed is lost,
nothing half-written is visible, every refusal is a clear error."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import duckdb
import pytest
from conftest import FAR_FUTURE

from mlos_store import (
    Experiment,
    NotAStoreError,
    SchemaVersionError,
    Status,
    Storage,
    StoreUnavailableError,
)

REPO = Path(__file__).resolve().parent.parent
MODES = ["shared", "exclusive"]

#: A writer that reports each operation once it has returned (so: committed), one JSON line each.
#: Telemetry batches are large, so that kills often land inside an ingest.
_WRITER = """
    import json, sys
    from datetime import datetime, timedelta, timezone
    import pyarrow as pa
    from mlos_store import Status, Storage

    path, points = sys.argv[1], int(sys.argv[2])
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    stamps = [t0 + timedelta(milliseconds=i) for i in range(points)]
    batch = pa.table({"ts": pa.array(stamps, pa.timestamp("us", "UTC")),
                      "metric": ["cpu"] * points, "value": [float(i) for i in range(points)]})

    def report(**what):
        print(json.dumps(what), flush=True)

    store = Storage(path)
    with store.experiment(experiment_id="exp", trial_id=1, root_env_config="env.jsonc", description="faults",
                          tunables={"x": 0}, opt_targets={"score": "min"}) as exp:
        report(op="ready")
        for x in range(10**6):
            trial = exp.new_trial({"x": x}, config={"x": x})
            report(op="new", trial_id=trial.trial_id, x=x)
            trial.update(Status.RUNNING, t0)
            trial.update_telemetry(Status.RUNNING, t0, batch)
            report(op="telemetry", trial_id=trial.trial_id)
            trial.update(Status.SUCCEEDED, t0, {"score": float(x), "done": True})
            report(op="end", trial_id=trial.trial_id)
"""


def _python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code), *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def _experiment(store: Storage) -> Experiment:
    return store.experiment(experiment_id="exp", trial_id=1, root_env_config="env.jsonc", description="faults",
                            tunables={"x": 0}, opt_targets={"score": "min"})


def _kill_writer_after(db_path: Path, seconds: float, points: int) -> list[dict[str, object]]:
    """Run the writer, SIGKILL it after ``seconds`` of work, return what it reported committed."""
    proc = subprocess.Popen(_python(_WRITER, str(db_path), str(points)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env())
    assert proc.stdout is not None
    assert json.loads(proc.stdout.readline()) == {"op": "ready"}, proc.stderr.read() if proc.stderr else ""
    time.sleep(seconds)
    proc.send_signal(signal.SIGKILL)
    # Read on through the buffer readline() filled: communicate() reads the descriptor itself and
    # would lose the lines that buffer already holds (the first "new" of a fast writer).
    out = proc.stdout.read()
    proc.wait(timeout=60)
    if proc.stderr:
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    return [json.loads(line) for line in out.splitlines()]


def _assert_whole(db_path: Path, reported: list[dict[str, object]], points: int) -> int:
    """Every reported operation is stored; every trial is whole (no half of any transaction)."""
    with Storage(db_path, timeout=10) as store:
        exp = _experiment(store)
        trials = {t.trial_id: t for t in exp.pending_trials(FAR_FUTURE, running=True)}
        ended = dict(zip(*exp.load()[::2]))  # trial id -> score dict
        for score in ended.values():
            assert score is not None and set(score) == {"score", "done"}  # status and metrics together
        x_of = {e["trial_id"]: e["x"] for e in reported if e["op"] == "new"}
        for event in reported:
            trial_id = event.get("trial_id")
            if event["op"] == "new":
                assert trial_id in trials or trial_id in ended
            elif event["op"] == "telemetry":
                assert len(exp.load_telemetry(trial_id)) == points  # type: ignore[arg-type]
            elif event["op"] == "end":
                assert ended[trial_id] == {"score": float(x_of[trial_id]), "done": True}  # type: ignore[index,arg-type]
        counts = exp.telemetry_table().group_by("trial_id").aggregate([("ts", "count")])
        assert set(counts.column("ts_count").to_pylist()) <= {points}  # a batch is all there or not at all
        for trial in trials.values():
            assert trial.config() == {"x": trial.tunables["x"], "experiment_id": "exp", "trial_id": trial.trial_id,
                                      "trial_runner_id": None}
        return len(trials) + len(ended)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_writer_killed_at_random_points_leaves_every_committed_operation_whole(db_path: Path) -> None:
    points = 20_000
    rng = random.Random(6)
    stored = 0
    for _ in range(4):  # each round continues the same file
        reported = _kill_writer_after(db_path, rng.uniform(0.3, 2.0), points)
        now_stored = _assert_whole(db_path, reported, points)
        assert now_stored >= stored + len({e["trial_id"] for e in reported if e["op"] == "new"})
        stored = now_stored


# ---------------------------------------------------------------- directories and files


def _snapshot(path: Path) -> bytes:
    return path.read_bytes()


@pytest.mark.parametrize("mode", MODES)
def test_missing_directory_is_refused_clearly(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "missing" / "store.duckdb"
    with pytest.raises(StoreUnavailableError, match=f"cannot open '{path}'"):
        Storage(path, mode=mode)
    with pytest.raises(NotAStoreError, match=f"cannot open '{path}' read-only: no such file"):
        Storage(path, read_only=True, mode=mode)
    assert not path.parent.exists()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("content", [b"", b"not a database\n" * 100, b"\0" * 8 + b"DUCK" + b"\0" * 100])
def test_file_that_is_not_a_store_is_refused_untouched(db_path: Path, mode: str, content: bytes) -> None:
    db_path.write_bytes(content)
    for read_only in (False, True):
        with pytest.raises((NotAStoreError, StoreUnavailableError), match=str(db_path)):
            Storage(db_path, read_only=read_only, mode=mode)
    assert db_path.read_bytes() == content
    assert sorted(p.name for p in db_path.parent.iterdir()) == [db_path.name]  # no lock files left behind


@pytest.mark.parametrize("mode", MODES)
def test_store_from_a_newer_schema_is_refused_untouched(db_path: Path, mode: str) -> None:
    with Storage(db_path, mode=mode) as store, _experiment(store) as exp:
        exp.new_trial({"x": 1})
    con = duckdb.connect(str(db_path))
    con.execute("INSERT INTO schema_migration VALUES (999, 'from_the_future', now())")
    con.close()
    before = _snapshot(db_path)
    for read_only in (False, True):
        with pytest.raises(SchemaVersionError, match="schema version 999, newer than this mlos_store knows"):
            Storage(db_path, read_only=read_only, mode=mode)
    assert _snapshot(db_path) == before


_READ_ONLY_DIRECTORY = """
    import json, os, sys, tempfile
    from datetime import datetime, timezone
    from mlos_store import Storage, StoreError

    def attempt(path, **kwargs):
        try:
            with Storage(path, **kwargs) as store:
                exp = store.experiment(experiment_id="exp", trial_id=1, root_env_config="", description="",
                                       tunables={"x": 0}, opt_targets={"score": "min"})
                if kwargs.get("read_only"):
                    return ["read", exp.load()[0]]
                with exp:
                    exp.new_trial({"x": 2})
                return ["wrote"]
        except StoreError as exc:
            return [type(exc).__name__, str(exc)]

    base = tempfile.mkdtemp()
    folder = os.path.join(base, "results")
    os.mkdir(folder)
    path = os.path.join(folder, "store.duckdb")
    with Storage(path) as store, store.experiment(experiment_id="exp", trial_id=1, root_env_config="",
                                                  description="", tunables={"x": 0},
                                                  opt_targets={"score": "min"}) as exp:
        exp.new_trial({"x": 1}).update("SUCCEEDED", datetime.now(timezone.utc), {"score": 1.0})
    before = open(path, "rb").read()
    os.chmod(folder, 0o555)
    try:
        result = {
            "write, lock files present": attempt(path),
            "read, lock files present": attempt(path, read_only=True),
        }
        os.chmod(folder, 0o755)
        for name in ("store.duckdb.lock", "store.duckdb.wait"):
            os.unlink(os.path.join(folder, name))
        os.chmod(folder, 0o555)
        result["write, no lock files"] = attempt(path)
        result["read, no lock files"] = attempt(path, read_only=True)
        result["new store"] = attempt(os.path.join(folder, "new.duckdb"))
        result["unchanged"] = open(path, "rb").read() == before
        result["listing"] = sorted(os.listdir(folder))
    finally:
        os.chmod(folder, 0o755)
    print(json.dumps(result))
"""


def _as_unprivileged_user(command: list[str]) -> list[str]:
    """Root ignores permissions: run the command as nobody when the tests run as root."""
    if os.geteuid() != 0:
        return command
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: a read-only directory cannot be made")
    as_nobody = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    probe = subprocess.run([*as_nobody, sys.executable, "-c", "import mlos_store"], capture_output=True,
                           timeout=60, env=_env(), cwd="/")
    if probe.returncode != 0:
        pytest.skip("running as root, and user nobody cannot import this checkout: no read-only directory test")
    return [*as_nobody, *command]


def test_read_only_directory_is_read_but_not_written_clearly() -> None:
    env = {**_env(), "TMPDIR": tempfile.gettempdir()}
    proc = subprocess.run(_as_unprivileged_user(_python(_READ_ONLY_DIRECTORY)), capture_output=True, text=True,
                          timeout=120, env=env, cwd="/")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["read, lock files present"] == ["read", [1]]
    assert result["read, no lock files"] == ["read", [1]]
    for case in ("write, lock files present", "write, no lock files", "new store"):
        kind, message = result[case]
        assert kind == "StoreUnavailableError", (case, result[case])
        assert "cannot open" in message and "ermission denied" in message, (case, message)
    assert result["unchanged"] is True
    assert result["listing"] == ["store.duckdb"]


# ---------------------------------------------------------------- a full disk


_DISK_FULL = """
    import json, resource, signal, sys
    from datetime import datetime, timedelta, timezone
    from mlos_store import Status, Storage, StoreError

    path, limit = sys.argv[1], int(sys.argv[2])
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    points = [(t0 + timedelta(milliseconds=i), "cpu", float(i)) for i in range(2000)]
    with Storage(path) as store:  # created before the limit, so the limit only meets trial data
        pass
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    committed, error = [], None
    try:
        with Storage(path) as store, store.experiment(experiment_id="exp", trial_id=1, root_env_config="",
                                                      description="", tunables={"x": 0},
                                                      opt_targets={"score": "min"}) as exp:
            for x in range(10**6):
                trial = exp.new_trial({"x": x})
                trial.update_telemetry(Status.RUNNING, t0, points)
                trial.update(Status.SUCCEEDED, t0, {"score": float(x)})
                committed.append(trial.trial_id)
    except StoreError as exc:
        error = [type(exc).__name__, str(exc)]
    print(json.dumps({"committed": committed, "error": error}), flush=True)
"""


def test_full_disk_is_a_clear_error_and_keeps_every_commit(db_path: Path) -> None:
    """A file size limit (RLIMIT_FSIZE) in a child process stands in for a full disk."""
    proc = subprocess.run(_python(_DISK_FULL, str(db_path), str(4 * 1024 * 1024)), capture_output=True, text=True,
                          timeout=300, env=_env())
    result = json.loads(proc.stdout.splitlines()[-1]) if proc.stdout else {}
    assert result, proc.stderr
    kind, message = result["error"]
    assert kind in ("QueryError", "StoreUnavailableError"), result["error"]
    assert "File too large" in message or "No space" in message or "too large" in message.lower(), message
    committed = result["committed"]
    assert committed, "the limit left no room for a single trial"
    with Storage(db_path) as store:
        exp = _experiment(store)
        trial_ids, _, scores, status = exp.load()
        assert trial_ids[:len(committed)] == committed
        assert scores[:len(committed)] == [{"score": float(i - 1)} for i in committed]
        for trial_id in trial_ids:
            assert len(exp.load_telemetry(trial_id)) == 2000
        assert set(status) == {Status.SUCCEEDED}
        with exp:  # and the store is still writable once there is room again
            exp.new_trial({"x": -1})
