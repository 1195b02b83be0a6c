"""What a real harness hands the store: numpy scalars, another library's Status enum, a store never closed."""

from __future__ import annotations

import enum
import pickle
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import T0

from mlos_store import Experiment, IllegalTransitionError, Status, Storage

np = pytest.importorskip("numpy")


def test_numpy_scalars_are_stored_as_the_equal_python_values(storage: Storage) -> None:
    with storage.experiment(experiment_id="np", trial_id=1, root_env_config="e", description="d",
                            tunables={"n": 1, "f": 0.5, "b": False}, opt_targets={"score": "min"}) as exp:
        trial = exp.new_trial({"n": np.int64(3), "f": np.float32(0.25), "b": np.bool_(True)},
                              config={"repeat": np.int32(2), "sizes": [np.int64(1), np.float64(2.5)]})
        trial.update_telemetry(Status.RUNNING, np.datetime64("2026-01-01T00:00:01"),
                               [(np.datetime64("2026-01-01T00:00:01.5"), "cpu", np.int64(12)),
                                (np.datetime64("2026-01-01T00:00:02"), "busy", np.bool_(False))])
        trial.update(Status.SUCCEEDED, np.datetime64("2026-01-01T00:00:03"),
                     {"score": np.float64(1.5), "count": np.uint8(4)})
        trial_ids, configs, scores, _ = exp.load()
        telemetry = exp.load_telemetry(np.int64(trial.trial_id))
        restored = exp.get_trial_by_id(trial.trial_id)
    assert configs == [{"n": 3, "f": 0.25, "b": True}]
    assert (type(configs[0]["n"]), type(configs[0]["f"]), type(configs[0]["b"])) == (int, float, bool)
    assert scores == [{"score": 1.5, "count": 4}] and type(scores[0]["count"]) is int  # type: ignore[index]
    assert type(dict(trial.tunables)["n"]) is int
    assert restored.config()["repeat"] == 2 and restored.config()["sizes"] == [1, 2.5]  # type: ignore[union-attr]
    utc = UTC
    assert telemetry == [(datetime(2026, 1, 1, 0, 0, 1, 500000, tzinfo=utc), "cpu", 12),
                         (datetime(2026, 1, 1, 0, 0, 2, tzinfo=utc), "busy", False)]
    assert storage.experiments["np"].trials[trial_ids[0]].ts_end == datetime(2026, 1, 1, 0, 0, 3, tzinfo=utc)


def test_numpy_arrays_are_not_scalars(experiment: Experiment) -> None:
    with pytest.raises(ValueError, match="ndarray"):
        experiment.new_trial({}).update(Status.SUCCEEDED, T0, {"score": np.array([1.0, 2.0])})


class ForeignStatus(enum.Enum):
    """Another library's trial status (as mlos_bench's is): same names, other values and class."""

    PENDING = "p"
    RUNNING = "r"
    SUCCEEDED = "s"
    BROKEN = "b"


def test_status_parse_accepts_any_enum_member_named_as_a_status(experiment: Experiment) -> None:
    assert Status.parse(ForeignStatus.SUCCEEDED, "x") is Status.SUCCEEDED
    trial = experiment.new_trial({})
    trial.update(ForeignStatus.RUNNING, T0)  # type: ignore[arg-type]
    trial.update(ForeignStatus.SUCCEEDED, T0 + timedelta(seconds=1), {"score": 1.0})  # type: ignore[arg-type]
    assert trial.status is Status.SUCCEEDED
    with pytest.raises(IllegalTransitionError, match="is not a trial status"):
        Status.parse(ForeignStatus.BROKEN, "x")


def test_a_store_left_open_is_checkpointed_at_interpreter_exit(tmp_path: Path) -> None:
    """mlos_bench never closes its storage: the data must be in the file, not left in its WAL."""
    path = tmp_path / "left_open.duckdb"
    script = textwrap.dedent(f"""
        from mlos_store import Storage
        store = Storage({str(path)!r})
        holder = {{"store": store}}
        holder["self"] = holder  # a reference cycle, as a launcher holding its storage makes
        with store.experiment(experiment_id="e", trial_id=1, root_env_config="x", description="d",
                              tunables={{"x": 1}}, opt_targets={{"y": "min"}}) as exp:
            for i in range(20):
                exp.new_trial({{"x": i}})
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    assert not path.with_name(path.name + ".wal").exists()
    with Storage(path, read_only=True) as store:
        assert len(store.experiments["e"].trials) == 20


def test_a_store_reopened_by_unpickling_is_checkpointed_at_exit(tmp_path: Path) -> None:
    """A worker that only ever unpickled a Trial (no Storage of its own) still leaves no WAL behind."""
    path = tmp_path / "worker.duckdb"
    with Storage(path) as store, store.experiment(experiment_id="e", trial_id=1, root_env_config="x",
                                                  description="d", tunables={"x": 1},
                                                  opt_targets={"y": "min"}) as exp:
        pickled = pickle.dumps(exp.new_trial({"x": 2}))
    script = textwrap.dedent(f"""
        import pickle
        from datetime import datetime, timezone
        from mlos_store import Status
        trial = pickle.loads({pickled!r})
        trial.update(Status.SUCCEEDED, datetime(2026, 1, 1, tzinfo=timezone.utc), {{"y": 1.0}})
        # exits at once: the shared store still holds the file (linger), with the update in its WAL
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    assert not path.with_name(path.name + ".wal").exists()
    with Storage(path, read_only=True) as store:
        assert store.experiments["e"].trials[1].status is Status.SUCCEEDED
