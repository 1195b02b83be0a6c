"""A hostile environment for the engine: odd paths, odd files, a full disk, forks, read-only file systems.

Each refusal is one of the library's errors naming the path and what was
wrong, and leaves the store (and the folder around it) as it was.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import warnings
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import FAR_FUTURE
from test_faults import _as_unprivileged_user, _env, _python

from mlos_store import (
    CheckpointWarning,
    Experiment,
    InvalidValueError,
    NotAStoreError,
    QueryError,
    Storage,
    StoreBusyError,
    StoreUnavailableError,
    locking,
)
from mlos_store.cli import main
from mlos_store.engine import Engine

MODES = ["shared", "exclusive"]


def _experiment(store: Storage) -> Experiment:
    return store.experiment(experiment_id="exp", trial_id=1, root_env_config="env.jsonc", description="hostile",
                            tunables={"x": 0}, opt_targets={"score": "min"})


def _stored_xs(store: Storage) -> list[int]:
    """The tunable values of the stored (pending) trials, by trial id."""
    return [t.tunables["x"] for t in _experiment(store).pending_trials(FAR_FUTURE, running=True)]  # type: ignore[misc]


def _trial_xs(path: Path | str) -> list[int]:
    with Storage(path, read_only=True) as store:
        return _stored_xs(store)


def _make_store(path: Path, xs: tuple[int, ...] = (1,)) -> None:
    with Storage(path) as store, _experiment(store) as exp:
        for x in xs:
            exp.new_trial({"x": x})


# ---------------------------------------------------------------- 1. a relative path and chdir


@pytest.mark.parametrize("mode", MODES)
def test_relative_path_names_the_file_opened_even_after_chdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              mode: str) -> None:
    first, elsewhere = tmp_path / "first", tmp_path / "elsewhere"
    first.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(first)
    with Storage("results.duckdb", mode=mode, linger=0) as store, _experiment(store) as exp:
        exp.new_trial({"x": 1})
        monkeypatch.chdir(elsewhere)
        exp.new_trial({"x": 2})
        assert store.path == "results.duckdb"  # as given
    assert list(elsewhere.iterdir()) == []
    assert _trial_xs(first / "results.duckdb") == [1, 2]


# ---------------------------------------------------------------- 2. a checkpoint that fails after a commit


_CHECKPOINT_FAILS = """
    import json, os, resource, signal, sys, warnings
    from datetime import datetime, timezone
    from mlos_store import CheckpointWarning, Status, Storage, StoreError

    path, mode, linger, when = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with Storage(path) as store, store.experiment(experiment_id="exp", trial_id=1, root_env_config="",
                                                  description="", tunables={"x": 0},
                                                  opt_targets={"score": "min"}) as exp:
        trial = exp.new_trial({"x": 0})  # a large file first, so that any checkpoint must make it grow
        points = [(t0.replace(microsecond=i), "cpu", float(i)) for i in range(300_000)]
        trial.update_telemetry(Status.RUNNING, t0, points)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
    limit = os.path.getsize(path) + 10_000  # room for the write-ahead log, none for the file to grow
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    returned, error = [], None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with Storage(path, mode=mode, linger=linger) as store:
                if when == "every-commit":  # DuckDB checkpoints after each commit, not only when detaching
                    store.engine._con.execute("SET checkpoint_threshold = '1KB'")
                with store.experiment(experiment_id="exp", trial_id=1, root_env_config="", description="",
                                      tunables={"x": 0}, opt_targets={"score": "min"}) as exp:
                    for x in (1, 2, 3):
                        trial = exp.new_trial({"x": x})
                        returned.append(["new", x])
                        trial.update(Status.SUCCEEDED, t0, {"score": float(x)})
                        returned.append(["end", x])
                    returned.append(["read", exp.load()[0]])
        except StoreError as exc:
            error = [type(exc).__name__, str(exc)]
    warned = [[w.category.__name__, str(w.message)] for w in caught if issubclass(w.category, CheckpointWarning)]
    print(json.dumps({"returned": returned, "error": error, "warned": warned}), flush=True)
"""


def _calls_with_a_full_disk(db_path: Path, mode: str, linger: float, when: str) -> list[str]:
    """Run the calls above under a file size limit (RLIMIT_FSIZE): the write-ahead log takes each commit but
    no checkpoint fits. Every call returns and every commit is stored once; returns the warnings' messages."""
    proc = subprocess.run(_python(_CHECKPOINT_FAILS, str(db_path), mode, str(linger), when), capture_output=True,
                          text=True, timeout=300, env=_env())
    result = json.loads(proc.stdout.splitlines()[-1]) if proc.stdout else {}
    assert result, proc.stderr
    assert result["error"] is None
    assert result["returned"] == [["new", 1], ["end", 1], ["new", 2], ["end", 2], ["new", 3], ["end", 3],
                                  ["read", [2, 3, 4]]]
    assert result["warned"], "no checkpoint failed: the test did not test anything"
    for kind, message in result["warned"]:
        assert kind == "CheckpointWarning"
        assert message.startswith(f"{str(db_path)!r}: committed changes are safe in {str(db_path) + '.wal'!r} "
                                  "but could not be written into the store file (its checkpoint failed); the "
                                  "next use of the store replays them: "), message
        assert "File too large" in message
    with Storage(db_path) as store:  # every call stored once, and replayed
        exp = _experiment(store)
        assert exp.load()[:3] == ([2, 3, 4], [{"x": 1}, {"x": 2}, {"x": 3}], [{"score": 1.0}, {"score": 2.0},
                                                                               {"score": 3.0}])
        assert _stored_xs(store) == [0]  # the first trial, still running
    return [message for _, message in result["warned"]]


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs RLIMIT_FSIZE")
def test_failed_checkpoint_when_a_turn_ends_warns_and_the_call_succeeds(db_path: Path) -> None:
    """A turn per operation (linger=0): each call ends with a DETACH, whose checkpoint fails."""
    messages = _calls_with_a_full_disk(db_path, "shared", 0, "detach")
    assert "CHECKPOINT during DETACH failed" in messages[0]


_EVERY_COMMIT_CHECKPOINTS = """
    import json, os, resource, signal, sys, warnings
    from datetime import datetime, timezone
    from mlos_store import CheckpointWarning, Status, Storage, StoreError

    path, mode = sys.argv[1], sys.argv[2]
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with Storage(path) as store, store.experiment(experiment_id="exp", trial_id=1, root_env_config="",
                                                  description="", tunables={"x": 0},
                                                  opt_targets={"score": "min"}) as exp:
        points = [(t0.replace(microsecond=i), "cpu", float(i)) for i in range(300_000)]
        exp.new_trial({"x": 0}).update_telemetry(Status.RUNNING, t0, points)  # a file that must grow to checkpoint
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(path) + 10_000, hard))
    outcomes = {}

    def attempt(name, call):
        try:
            call()
            outcomes[name] = "ok"
        except StoreError as exc:
            outcomes[name] = f"{type(exc).__name__}: {exc}"

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Storage(path, mode=mode) as store, store.experiment(
                experiment_id="exp", trial_id=1, root_env_config="", description="", tunables={"x": 0},
                opt_targets={"score": "min"}) as exp:
            store.engine._con.execute("SET checkpoint_threshold = '1KB'")  # DuckDB checkpoints at each commit
            for x in (1, 2, 3):
                trial = []
                attempt(f"new {x}", lambda: trial.append(exp.new_trial({"x": x})))
                if trial:
                    attempt(f"end {x}", lambda: trial[0].update(Status.SUCCEEDED, t0, {"score": float(x)}))
            resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))  # room again: the same store carries on
            attempt("new 99", lambda: exp.new_trial({"x": 99}))
    warned = [str(w.message) for w in caught if issubclass(w.category, CheckpointWarning)]
    print(json.dumps({"outcomes": outcomes, "warned": warned}), flush=True)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs RLIMIT_FSIZE")
@pytest.mark.parametrize("mode", MODES)
def test_failed_checkpoint_at_a_commit_fails_only_calls_that_stored_nothing(db_path: Path, mode: str) -> None:
    """DuckDB checkpoints at every commit (a tiny checkpoint_threshold) on a full disk: it either wrote the
    commit to its log first (the call returns, with a CheckpointWarning) or nothing (the call raises). Either
    way it gives the database up; the engine opens it again and carries on."""
    proc = subprocess.run(_python(_EVERY_COMMIT_CHECKPOINTS, str(db_path), mode), capture_output=True, text=True,
                          timeout=300, env=_env())
    result = json.loads(proc.stdout.splitlines()[-1]) if proc.stdout else {}
    assert result, proc.stderr
    outcomes = result["outcomes"]
    assert outcomes["new 99"] == "ok"  # the engine is usable again
    assert any(outcome != "ok" for outcome in outcomes.values()) or result["warned"], "no checkpoint failed"
    for message in result["warned"]:
        assert message.startswith(f"{str(db_path)!r}: committed changes are safe in "), message
    with Storage(db_path) as store:
        exp = _experiment(store)
        stored = set(_stored_xs(store)) | {config["x"] for config in exp.load()[1]}
        succeeded = {config["x"] for config in exp.load()[1]}
    for x in (1, 2, 3):
        assert (x in stored) == (outcomes[f"new {x}"] == "ok"), (x, outcomes)
        assert (x in succeeded) == (outcomes.get(f"end {x}") == "ok"), (x, outcomes)
    for name, outcome in outcomes.items():
        assert outcome == "ok" or outcome.startswith("QueryError: commit failed, nothing was stored: "), name
    assert 99 in stored


# ---------------------------------------------------------------- 4. a backslash in a path


@pytest.mark.skipif(os.sep != "/", reason="a backslash is a separator on Windows")
@pytest.mark.parametrize("read_only", [False, True])
def test_backslash_in_a_store_path_is_refused(tmp_path: Path, read_only: bool) -> None:
    (tmp_path / "x").mkdir()
    path = str(tmp_path / "x\\y.duckdb")
    with pytest.raises(InvalidValueError, match=r"^" + repr(path).replace("\\", "\\\\") +
                       r": a backslash in a store path is refused: DuckDB would read it as '/'"):
        Storage(path, read_only=read_only)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["x"]


@pytest.mark.skipif(os.sep != "/", reason="a backslash is a separator on Windows")
def test_backslash_in_an_imported_store_path_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "a\\b.duckdb"
    _make_store(tmp_path / "plain.duckdb")
    os.rename(tmp_path / "plain.duckdb", source)
    with Storage(tmp_path / "into.duckdb") as store:
        with pytest.raises(InvalidValueError, match="a backslash in a store path is refused"):
            store.import_store(source)
        assert store.experiments == {}


# ---------------------------------------------------------------- 12. user SQL reads only the store


@pytest.fixture
def reader(db_path: Path, request: pytest.FixtureRequest) -> Storage:
    _make_store(db_path, (1, 2))
    store = Storage(db_path, read_only=True, mode=request.param)
    request.addfinalizer(store.close)
    return store


@pytest.mark.parametrize("reader", MODES, indirect=True)
def test_user_sql_cannot_read_other_files(reader: Storage, tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("password\nhunter2\n")
    for text in (f"SELECT * FROM read_text('{secret}')", f"SELECT * FROM '{secret}'",
                 "SELECT * FROM glob('/*')", "SELECT * FROM read_csv('https://example.com/x.csv')"):
        with pytest.raises(QueryError, match="file system operations are disabled by configuration"):
            reader.engine.fetch_user_query(text)
    assert reader.engine.fetch_user_query("SELECT count(*) AS n FROM trial").to_pylist() == [{"n": 2}]


@pytest.mark.parametrize("reader", MODES, indirect=True)
def test_user_sql_runs_without_extension_autoinstall_and_leaves_the_store_working(reader: Storage,
                                                                                  tmp_path: Path) -> None:
    settings = ("SELECT current_setting('autoinstall_known_extensions') AS install, "
                "current_setting('autoload_known_extensions') AS load, "
                "current_setting('enable_external_access') AS external")
    for _ in range(2):
        assert reader.engine.fetch_user_query(settings).to_pylist() == [
            {"install": False, "load": False, "external": False}]
    exported = tmp_path / "export"
    _experiment(reader).export_parquet(exported)  # the library's own connection still writes files
    assert any(exported.iterdir())


# ---------------------------------------------------------------- 13. a read-only file system


def _read_only_file_system(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lock files beside the store cannot be created or opened for writing (EROFS), as on a read-only mount."""
    real_open = os.open

    def open_on_read_only_fs(path: str, flags: int, mode: int = 0o777) -> int:
        writes = flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        if writes and str(path).endswith((".lock", ".wait")):
            if flags & os.O_CREAT and flags & os.O_EXCL and os.path.lexists(path):
                raise FileExistsError(errno.EEXIST, "File exists", path)
            raise OSError(errno.EROFS, "Read-only file system", path)
        return real_open(path, flags, mode)

    monkeypatch.setattr(locking.os, "open", open_on_read_only_fs)  # type: ignore[attr-defined]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("lock_files", ["present", "absent"])
def test_store_on_a_read_only_file_system_opens_read_only(db_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          mode: str, lock_files: str) -> None:
    _make_store(db_path, (1, 2))
    if lock_files == "absent":
        for suffix in (".lock", ".wait"):
            os.unlink(f"{db_path}{suffix}")
    _read_only_file_system(monkeypatch)
    with Storage(db_path, read_only=True, mode=mode) as store:
        assert _stored_xs(store) == [1, 2]
    if lock_files == "absent":
        with pytest.raises(StoreUnavailableError, match=rf"^cannot open '{db_path}': cannot create its lock file "
                           r"beside it \(\[Errno 30\] Read-only file system"):
            Storage(db_path, mode=mode)


_ON_A_READ_ONLY_MOUNT = """
    import json, os, subprocess, sys
    from mlos_store import Storage, StoreError

    folder = sys.argv[1]
    path = os.path.join(folder, "store.duckdb")
    with Storage(path) as store, store.experiment(experiment_id="exp", trial_id=1, root_env_config="",
                                                  description="", tunables={"x": 0},
                                                  opt_targets={"score": "min"}) as exp:
        exp.new_trial({"x": 1})
    os.unlink(path + ".lock")  # as if copied onto the medium without them
    os.unlink(path + ".wait")
    subprocess.run(["mount", "-o", "remount,ro", folder], check=True)
    result = {}
    for mode in ("shared", "exclusive"):
        for read_only in (True, False):
            try:
                with Storage(path, mode=mode, read_only=read_only) as store:
                    result[f"{mode} {read_only}"] = ["read", len(store.experiments["exp"].trials)]
            except StoreError as exc:
                result[f"{mode} {read_only}"] = [type(exc).__name__, str(exc)]
    result["listing"] = sorted(os.listdir(folder))
    print(json.dumps(result))
"""


def test_store_on_a_real_read_only_mount_opens_read_only(tmp_path: Path) -> None:
    """A tmpfs remounted read-only in a mount namespace of its own (needs root and unshare, else skipped)."""
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None or sys.platform != "linux":
        pytest.skip("mounting a file system needs root and unshare")
    mount = [unshare, "-m", "sh", "-c", 'mount -t tmpfs tmpfs "$0" && exec "$@"', str(tmp_path)]
    if subprocess.run([*mount, "true"], capture_output=True, timeout=60).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    proc = subprocess.run([*mount, *_python(_ON_A_READ_ONLY_MOUNT, str(tmp_path))], capture_output=True, text=True,
                          timeout=120, env=_env())
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    path = tmp_path / "store.duckdb"
    assert result.pop("listing") == ["store.duckdb"]
    for mode in MODES:
        assert result[f"{mode} True"] == ["read", 1]
        kind, message = result[f"{mode} False"]
        assert kind == "StoreUnavailableError"
        assert message.startswith(f"cannot open '{path}' read-write: "), message
        assert "open it with read_only=True to read it" in message


# ---------------------------------------------------------------- 14. a killed holder's forked child


_HOLD_THEN_FORK = """
    import os, sys, time
    from mlos_store import Storage

    path, mode = sys.argv[1], sys.argv[2]
    store = Storage(path, mode=mode)
    turn = store.engine.transaction()  # in the shared mode, a turn that lasts across the fork
    turn.__enter__()
    child = os.fork()
    if child == 0:
        time.sleep(120)  # never touches the store
        os._exit(0)
    print(child, flush=True)
    time.sleep(120)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.parametrize("mode", MODES)
def test_killed_holder_frees_the_store_though_its_forked_child_lives(db_path: Path, mode: str) -> None:
    _make_store(db_path)
    proc = subprocess.Popen(_python(_HOLD_THEN_FORK, str(db_path), mode), stdout=subprocess.PIPE, text=True,
                            env=_env())
    assert proc.stdout is not None
    child = int(proc.stdout.readline())
    try:
        with pytest.raises(StoreBusyError):  # the holder holds it
            Storage(db_path, timeout=0.2)
        proc.kill()
        proc.wait(timeout=30)
        with Storage(db_path, timeout=5) as store:  # the child's copies of the lock are gone
            assert _stored_xs(store) == [1]
    finally:
        proc.kill()
        os.kill(child, signal.SIGKILL)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.parametrize("mode", MODES)
def test_forked_child_exiting_leaves_its_parent_holding_the_store(db_path: Path, mode: str) -> None:
    _make_store(db_path)
    with Storage(db_path, mode=mode) as store:
        turn = store.engine.transaction()  # in the shared mode, a turn that lasts across the fork
        turn.__enter__()
        child = os.fork()
        if child == 0:
            os._exit(0)
        os.waitpid(child, 0)
        holder = subprocess.run(_python("import sys; from mlos_store import Storage; Storage(sys.argv[1], "
                                        "timeout=0.2)", str(db_path)), capture_output=True, text=True,
                                env=_env(), timeout=60)
        assert "StoreBusyError" in holder.stderr
        turn.__exit__(None, None, None)


# ---------------------------------------------------------------- 15. a FIFO, a socket


def _opened_within(seconds: float, path: Path, **kwargs: object) -> BaseException | None:
    """What opening ``path`` raised, failing the test if it blocked longer than ``seconds``."""
    outcome: list[BaseException | None] = []

    def attempt() -> None:
        try:
            Storage(path, timeout=1, **kwargs).close()  # type: ignore[arg-type]
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"opening {path} blocked for more than {seconds} s"
    return outcome[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("read_only", [False, True])
def test_fifo_or_socket_given_as_the_store_is_refused_at_once(tmp_path: Path, mode: str, read_only: bool) -> None:
    fifo = tmp_path / "fifo.duckdb"
    os.mkfifo(fifo)
    listener = socket.socket(socket.AF_UNIX)
    sock = tmp_path / "sock.duckdb"
    listener.bind(str(sock))
    try:
        for path, kind in ((fifo, "a FIFO"), (sock, "a socket")):
            error = _opened_within(10, path, mode=mode, read_only=read_only)
            assert isinstance(error, NotAStoreError), error
            assert str(error) == f"{str(path)!r} is {kind}, not an mlos_store database; it was left untouched"
    finally:
        listener.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo.duckdb", "sock.duckdb"]


# ---------------------------------------------------------------- 17. refused opens leave nothing behind


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("lock", ["directory", "dangling symlink"])
def test_unusable_lock_file_refuses_the_open_and_leaves_no_wait_file(tmp_path: Path, mode: str, lock: str) -> None:
    path = tmp_path / "store.duckdb"
    lock_path = tmp_path / "store.duckdb.lock"
    if lock == "directory":
        lock_path.mkdir()
    else:
        lock_path.symlink_to(tmp_path / "nowhere" / "lock")
    with pytest.raises(StoreUnavailableError, match=rf"^cannot open '{path}': cannot create its lock file beside it"):
        Storage(path, mode=mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store.duckdb.lock"]


_UNREADABLE = """
    import json, os, sys, tempfile
    from mlos_store import Storage, StoreError

    folder = tempfile.mkdtemp()
    path = os.path.join(folder, "store.duckdb")
    Storage(path).close()
    os.chmod(path, 0)
    result = {}
    for mode in ("shared", "exclusive"):
        for read_only in (False, True):
            try:
                Storage(path, mode=mode, read_only=read_only).close()
                result[f"{mode} {read_only}"] = ["opened"]
            except StoreError as exc:
                result[f"{mode} {read_only}"] = [type(exc).__name__, str(exc)]
    result["path"] = path
    result["listing"] = sorted(os.listdir(folder))
    print(json.dumps(result))
"""


def test_unreadable_store_file_is_a_store_unavailable_error() -> None:
    env = {**_env(), "TMPDIR": tempfile.gettempdir()}
    proc = subprocess.run(_as_unprivileged_user(_python(_UNREADABLE)), capture_output=True, text=True,
                          timeout=120, env=env, cwd="/")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    path = result.pop("path")
    assert result.pop("listing") == ["store.duckdb", "store.duckdb.lock", "store.duckdb.wait"]
    for case, outcome in result.items():
        assert outcome == ["StoreUnavailableError", f"cannot open {path!r}: Permission denied"], case


def test_cli_shows_an_unusable_store_in_one_line(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.duckdb"
    os.mkfifo(fifo)
    proc = subprocess.run([sys.executable, "-m", "mlos_store", "info", str(fifo)], capture_output=True, text=True,
                          timeout=60, env=_env())
    assert proc.returncode == 1
    assert proc.stderr == (f"mlos-store: error: {str(fifo)!r} is a FIFO, not an mlos_store database; "
                           "it was left untouched\n")


def test_cli_shows_a_warning_in_one_line(db_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    _make_store(db_path)
    query = Engine.fetch_user_query

    def query_that_warns(engine: Engine, text: str) -> pa.Table:
        warnings.warn("stored, but:\nthe checkpoint failed", CheckpointWarning, stacklevel=1)
        return query(engine, text)

    monkeypatch.setattr(Engine, "fetch_user_query", query_that_warns)
    assert main(["sql", str(db_path), "SELECT 1 AS one"]) == 0
    assert capsys.readouterr().err == "mlos-store: warning: stored, but: the checkpoint failed\n"
