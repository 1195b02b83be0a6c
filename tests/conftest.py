"""Shared fixtures: every behaviour test runs on an in-memory and an on-disk store."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mlos_store import Experiment, Status, Storage

#: Defaults of the tunables most tests use: one of each scalar type.
TUNABLE_DEFAULTS = {"int_knob": 10, "float_knob": 0.5, "cat_knob": "a", "bool_knob": False}
OPT_TARGETS = {"score": "min"}
T0 = datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
FAR_FUTURE = datetime(2999, 1, 1, tzinfo=UTC)
FINAL_STATUSES = [Status.SUCCEEDED, Status.CANCELED, Status.FAILED, Status.TIMED_OUT]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A path where a store file does not exist yet."""
    return tmp_path / "store.duckdb"


@pytest.fixture(params=["memory", "file"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    """A fresh store, in memory or in a file; closed after the test."""
    store = Storage(None if request.param == "memory" else tmp_path / "store.duckdb")
    yield store
    store.close()


@pytest.fixture
def experiment(storage: Storage) -> Iterator[Experiment]:
    """An entered experiment 'exp' with TUNABLE_DEFAULTS and OPT_TARGETS."""
    exp = storage.experiment(
        experiment_id="exp",
        trial_id=1,
        root_env_config="env.jsonc",
        description="test experiment",
        tunables=dict(TUNABLE_DEFAULTS),
        opt_targets=dict(OPT_TARGETS),
    )
    with exp:
        yield exp


@pytest.fixture
def new_york_local_time() -> Iterator[None]:
    """Local time is America/New_York (UTC-5 in winter, UTC-4 in summer) during the test.

    Tests of naive (local) timestamps use it so they cannot pass by accident
    on a machine whose local time is UTC.
    """
    old = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


def store_contents(storage: Storage) -> dict[str, list[str]]:
    """Every row of every table of the store, as text: to check that a refused call changed nothing, or
    that two stores hold the same rows."""
    with storage.engine.transaction():  # a turn on the file, in the shared mode
        con = storage.engine._connection()
        tables = [row[0] for row in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() ORDER BY 1").fetchall()]
        return {table: sorted(repr(row) for row in con.execute(f"SELECT * FROM {table}").fetchall())
                for table in tables}


@contextlib.contextmanager
def bare_experiment(backend: str, tmp_path_factory: pytest.TempPathFactory, experiment_id: str) -> Iterator[Experiment]:
    """An entered experiment with no tunables or objectives, in memory or in a file (``backend``):
    what module-scoped fixtures share among tests that each look only at trials of their own."""
    path = None if backend == "memory" else tmp_path_factory.mktemp(experiment_id) / "store.duckdb"
    with Storage(path) as store, store.experiment(experiment_id=experiment_id, trial_id=1, root_env_config="env.jsonc",
                                                  description="cases", tunables={}, opt_targets={}) as exp:
        yield exp
