"""Store files written at every earlier schema version, opened and upgraded by the current code.

Files outlive the code that wrote them. Each version below the current one
gets a real store (``store_versions.build_stores``: the schema files of
that version, rows of every kind from ``tests/upgrade/``), which the
current code upgrades on open; then every value is read back through the
public API, every named query runs on the upgraded file, and the store
keeps working. A new migration needs no edit here: the store of the
version before it is built and upgraded like the others.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from store_versions import build_stores, fixtures
from test_catalog import MISSING_ON_EMPTY_STORE, TRANSACTIONAL_QUERIES, run_by_kind

from mlos_store import Experiment, Status, Storage
from mlos_store.catalog import load_catalog
from mlos_store.engine import Engine
from mlos_store.errors import QueryError

CURRENT = load_catalog().schema_version
EARLIER = list(range(1, CURRENT))
#: The fixture (tests/upgrade/0002.sql) whose rows hold a merge: present from that version on.
MERGE_FROM = 2


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """A store file per earlier version, built once for the module."""
    return build_stores(EARLIER, tmp_path_factory.mktemp("versions"))


@pytest.fixture(params=EARLIER, ids=lambda v: f"v{v}")
def version(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture
def upgraded(written: dict[int, Path], version: int, tmp_path: Path) -> Iterator[Storage]:
    """The store written at ``version``, copied and opened (so upgraded) by the current code."""
    path = tmp_path / "store.duckdb"
    shutil.copyfile(written[version], path)
    with Storage(path) as store:
        yield store


def stored(store: Storage, experiment_id: str) -> Experiment:
    experiment = store.get_experiment_by_id(experiment_id)
    assert experiment is not None, experiment_id
    return experiment


# ---------------------------------------------------------------- what tests/upgrade/0001.sql wrote

CONFIGS: dict[int, dict[str, Any]] = {
    1: {"anything": 7, "count": 4, "flag": True, "mode": "a", "ratio": 0.5},
    2: {"anything": None, "count": 3, "flag": False, "mode": "b", "ratio": -1.25},
}
DECLARED = {"anything": None, "count": 3, "flag": True, "mode": "a", "ratio": 0.5}
OBJECTIVES = {"score": "min", "speed": "max"}
#: trial id: (status, config id, ts_start, ts_end, trial_runner_id)
TRIALS = {
    1: (Status.SUCCEEDED, 1, utc("2026-01-01 12:00:00.123456"), utc("2026-01-01 12:00:05.123456"), 1),
    2: (Status.SUCCEEDED, 2, utc("2026-01-01 12:01:00"), utc("2026-01-01 12:01:05"), None),
    3: (Status.FAILED, 2, utc("2026-01-01 12:02:00"), utc("2026-01-01 12:02:05"), None),
    4: (Status.RUNNING, 1, utc("2026-01-01 12:03:00"), None, 2),
    5: (Status.PENDING, 2, utc("2026-01-01 13:00:00"), None, None),
    6: (Status.TIMED_OUT, 1, utc("2026-01-01 12:04:00"), utc("2026-01-01 12:04:05"), None),
    7: (Status.CANCELED, 2, utc("2026-01-01 12:05:00"), utc("2026-01-01 12:05:05"), None),
}
TRIAL_CONFIGS = {
    1: {"b": False, "f": 1e300, "i": -(2**63), "j": {"k": [1, 2.5, None]}, "n": None, "s": "x'y"},
    4: {"s": "running"},
}
RESULTS = {
    1: {"detail": [1, "two"], "missing": None, "note": "fine", "passed": True, "score": 1.5, "speed": 100},
    2: {"score": 0.5, "speed": 50},
    3: {"score": math.nan},
    6: {"score": math.inf},
}
HISTORY = {
    1: [("11:01:00", Status.PENDING), ("12:00:00.123456", Status.RUNNING), ("12:00:05.123456", Status.SUCCEEDED)],
    2: [("11:02:00", Status.PENDING), ("12:01:00", Status.RUNNING), ("12:01:05", Status.SUCCEEDED)],
    3: [("11:03:00", Status.PENDING), ("12:02:00", Status.RUNNING), ("12:02:05", Status.FAILED)],
    4: [("11:04:00", Status.PENDING), ("12:03:00", Status.RUNNING)],
    5: [("11:05:00", Status.PENDING)],
    6: [("11:06:00", Status.PENDING), ("12:04:00", Status.RUNNING), ("12:04:05", Status.TIMED_OUT)],
    7: [("11:07:00", Status.PENDING), ("12:05:05", Status.CANCELED)],
}
TELEMETRY = {
    1: [(utc("2026-01-01 12:00:00.123456"), "cpu", 0.25), (utc("2026-01-01 12:00:00.123456"), "gone", None),
        (utc("2026-01-01 12:00:00.123456"), "ok", True), (utc("2026-01-01 12:00:00.123456"), "phase", "warm"),
        (utc("2026-01-01 12:00:01.123456"), "cpu", 3)],
    4: [(utc("2026-01-01 12:03:01"), "cpu", 0.75)],
}
COMPLETED = [1, 2, 3, 6]  # SUCCEEDED, FAILED and TIMED_OUT, by id


def same(actual: Any, expected: Any) -> bool:
    """Equality in which NaN equals NaN (a stored NaN must come back as NaN)."""
    if isinstance(expected, float) and math.isnan(expected):
        return isinstance(actual, float) and math.isnan(actual)
    if isinstance(expected, dict):
        return isinstance(actual, dict) and actual.keys() == expected.keys() and all(
            same(actual[k], v) for k, v in expected.items())
    return type(actual) is type(expected) and bool(actual == expected)


# ---------------------------------------------------------------- the tests


def test_every_fixture_is_written_at_a_shipped_version() -> None:
    """A fixture numbered past the schema would never run; 0001 must exist for version 1 stores."""
    assert 1 in fixtures() and set(fixtures()) <= set(range(1, CURRENT + 1))


def test_store_is_upgraded_to_the_current_version(upgraded: Storage) -> None:
    assert upgraded.overview().schema_version == CURRENT
    assert upgraded.check_integrity() == {}


def test_experiments_keep_their_fields_and_objectives(upgraded: Storage, version: int) -> None:
    experiments = upgraded.experiments
    assert sorted(experiments) == (["exp", "warm"] if version >= MERGE_FROM else ["exp"])
    exp = experiments["exp"]
    assert (exp.description, exp.root_env_config) == (
        "written at schema 1", ("env.jsonc", "https://example.org/repo.git", "abc123"))
    assert exp.objectives == OBJECTIVES
    restored = upgraded.get_experiment_by_id("exp")
    assert restored is not None
    assert dict(restored.tunables.defaults) == DECLARED and restored.opt_targets == OBJECTIVES
    assert restored.trial_id == 8  # the next id: one past the stored trials


def test_trials_keep_status_times_runner_config_and_results(upgraded: Storage) -> None:
    trials = upgraded.experiments["exp"].trials
    assert sorted(trials) == sorted(TRIALS)
    for trial_id, (status, config_id, ts_start, ts_end, runner) in TRIALS.items():
        trial = trials[trial_id]
        assert (trial.status, trial.tunable_config_id, trial.ts_start, trial.ts_end, trial.trial_runner_id) == (
            status, config_id, ts_start, ts_end, runner), trial_id
        assert trial.tunable_config.config_dict == CONFIGS[config_id]
        assert same(trial.metadata_dict, TRIAL_CONFIGS.get(trial_id, {})), trial_id
        assert same(trial.results_dict, RESULTS.get(trial_id, {})), trial_id


def test_status_histories_trial_configs_and_telemetry_are_kept(upgraded: Storage) -> None:
    with stored(upgraded, "exp") as exp:
        for trial_id, history in HISTORY.items():
            trial = exp.get_trial_by_id(trial_id)
            assert trial is not None
            assert trial.status_history() == [(utc(f"2026-01-01 {t}"), s) for t, s in history]
            config = {k: v for k, v in trial.config().items()
                      if k not in ("experiment_id", "trial_id", "trial_runner_id")}
            assert same(config, TRIAL_CONFIGS.get(trial_id, {}))
        for trial_id in TRIALS:
            assert exp.load_telemetry(trial_id) == TELEMETRY.get(trial_id, [])
        assert {i: exp.load_tunable_config(i) for i in CONFIGS} == CONFIGS


def test_load_and_rankings_read_the_upgraded_rows(upgraded: Storage) -> None:
    with stored(upgraded, "exp") as exp:
        trial_ids, configs, scores, statuses = exp.load()
    assert trial_ids == COMPLETED
    assert configs == [CONFIGS[TRIALS[i][1]] for i in COMPLETED]
    assert statuses == [TRIALS[i][0] for i in COMPLETED]
    assert scores == [RESULTS[1], RESULTS[2], None, None]  # scores of SUCCEEDED trials only
    data = upgraded.experiments["exp"]
    assert data.best().column("trial_id").to_pylist() == [2, 1]  # each better on one objective
    assert data.ranked().column("trial_id").to_pylist() == [2, 1]
    assert data.results_table.column("trial_id").to_pylist() == sorted(TRIALS)
    assert sorted(data.tunable_config_trial_groups) == [1, 2]


@pytest.mark.parametrize("version", [v for v in EARLIER if v >= MERGE_FROM], ids=lambda v: f"v{v}")
def test_merges_are_kept(upgraded: Storage, version: int) -> None:
    """From the version whose fixture holds a merge on (a version 1 store holds none)."""
    with stored(upgraded, "warm") as warm:
        table = warm.load_table()
        trial_ids, configs, _, statuses = warm.load()
    assert table.column("experiment_id").to_pylist() == ["exp"] * len(COMPLETED)
    assert table.column("trial_id").to_pylist() == COMPLETED
    assert table.column("imputed").to_pylist() == [["level"]] * len(COMPLETED)
    assert trial_ids == [-2, -3, -4, -5]
    assert configs == [{**CONFIGS[TRIALS[i][1]], "level": 1} for i in COMPLETED]
    assert statuses == [TRIALS[i][0] for i in COMPLETED]


def test_upgraded_store_keeps_working(upgraded: Storage) -> None:
    """New rows continue the stored ids and sequences and reuse stored configs by their hash."""
    with stored(upgraded, "exp") as exp:
        again = exp.new_trial(CONFIGS[1])
        fresh = exp.new_trial({**CONFIGS[2], "count": 99})
        assert (again.trial_id, again.tunable_config_id) == (8, 1)
        assert (fresh.trial_id, fresh.tunable_config_id) == (9, 3)
        pending = exp.get_trial_by_id(5)
        assert pending is not None
        pending.update(Status.RUNNING, utc("2026-01-01 13:00:01"))
        pending.update(Status.SUCCEEDED, utc("2026-01-01 13:00:02"), {"score": 0.1, "speed": 60})
        assert pending.status_history()[-2:] == [(utc("2026-01-01 13:00:01"), Status.RUNNING),
                                                 (utc("2026-01-01 13:00:02"), Status.SUCCEEDED)]
    data = upgraded.experiments["exp"]
    assert data.best().column("trial_id").to_pylist() == [5, 1]  # 5 now dominates 2
    assert upgraded.check_integrity() == {}


def test_every_named_query_runs_on_the_upgraded_store(written: dict[int, Path], version: int,
                                                      tmp_path: Path) -> None:
    """Each query through its engine method, each in a transaction rolled back, on real upgraded rows."""
    path, source = tmp_path / "store.duckdb", tmp_path / "source.duckdb"
    shutil.copyfile(written[version], path)
    shutil.copyfile(written[version], source)
    Engine(source, mode="exclusive").close()  # upgraded too: an import source must be current
    engine = Engine(path, mode="exclusive")
    failed = set()
    try:
        sql = engine.catalog
        with engine.attached(sql.import_store_attach, sql.import_store_detach, str(source)):  # for READS_SOURCE
            for name in set(TRANSACTIONAL_QUERIES) - {"import_store_attach", "import_store_detach"}:  # run above
                try:
                    with engine.transaction():
                        run_by_kind(engine, sql.queries[name], str(source))
                        raise _Rollback
                except _Rollback:
                    pass
                except QueryError as exc:
                    failed.add(name)
                    print(exc)  # shown when the assertion fails
    finally:
        engine.close()
    assert failed == MISSING_ON_EMPTY_STORE  # the dummy hash names no stored config


class _Rollback(Exception):
    """Leaves a transaction block without committing."""
