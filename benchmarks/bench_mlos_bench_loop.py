"""mlos_bench's own optimization loop on MlosStoreStorage against its SQL storage on SQLite and DuckDB.

Each round runs, interleaved and on fresh files, the same loop: mlos_bench's
SyncScheduler with its MockEnv (one metric, seeded) and MockOptimizer, N
configs x 3 repeats (``trial_config_repeat_count``), on

* mlos_store: ``MlosStoreStorage`` (a store file, the default shared mode),
  and again with ``"mode": "exclusive"`` (the file held from open to close);
* sqlite (the baseline): mlos_bench's ``SqlStorage`` on a SQLite file;
* duckdb: ``SqlStorage`` on a DuckDB file (needs duckdb-engine, the [bench]
  extra; left out with a note when it is missing). On mlos_bench 0.6.2 this
  loop fails there: the scheduler records a trial's final status twice at
  one timestamp (telemetry, then the result); SQLite shrugs off the
  duplicate, DuckDB aborts the transaction. A backend whose loop fails is
  printed as failed, with the error, instead of numbers.

Measured: wall time of the loop (storage opened and closed included), time
of ``exp.load()`` of every trial at the end (what a resumed scheduler does
first), and the file size after closing. Prints medians and the ratio of
each to the SQLite baseline. ``--quick`` is the smoke-test size.

    python benchmarks/bench_mlos_bench_loop.py [--quick] [--configs N] [--rounds R]
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlos_bench.environments.mock_env import MockEnv
from mlos_bench.optimizers.mock_optimizer import MockOptimizer
from mlos_bench.schedulers.sync_scheduler import SyncScheduler
from mlos_bench.storage.base_storage import Storage
from mlos_bench.storage.sql.storage import SqlStorage
from mlos_bench.tunables.tunable_groups import TunableGroups

from mlos_store.mlos_bench import MlosStoreStorage

if importlib.util.find_spec("duckdb_engine") is not None:
    import backend_mlos_bench  # noqa: F401 - registers alembic's duckdb dialect, which SqlStorage on DuckDB needs

REPEATS = 3
TUNABLES = {"knobs": {"cost": 1, "params": {
    "threads": {"type": "int", "default": 4, "range": [1, 64]},
    "ratio": {"type": "float", "default": 0.5, "range": [0.0, 1.0]},
    "policy": {"type": "categorical", "values": ["lru", "lfu", "fifo"], "default": "lru"},
}}}

#: backend name -> (file name, storage factory given the file path)
BACKENDS: dict[str, tuple[str, Callable[[str], Storage]]] = {
    "sqlite": ("bench.sqlite", lambda path: SqlStorage(config={"drivername": "sqlite", "database": path})),
    "mlos_store": ("bench.duckdb", lambda path: MlosStoreStorage(config={"path": path})),
    "mlos_store exclusive": ("bench_x.duckdb",
                             lambda path: MlosStoreStorage(config={"path": path, "mode": "exclusive"})),
    "duckdb": ("bench_sql.duckdb", lambda path: SqlStorage(config={"drivername": "duckdb", "database": path})),
}


def git_checkout(folder: Path) -> str:
    """A root environment config in a git checkout with an origin (mlos_bench asks git about it)."""
    config = folder / "env.jsonc"
    config.write_text("{}\n")
    for args in (["init", "-q"], ["remote", "add", "origin", "https://example.invalid/bench.git"],
                 ["add", "."], ["-c", "user.name=b", "-c", "user.email=b@example.invalid", "commit", "-qm", "b"]):
        subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True)
    return str(config)


def close(storage: Storage) -> None:
    """Release the file: mlos_store closes, SqlStorage disposes of its SQLAlchemy engine."""
    if isinstance(storage, MlosStoreStorage):
        storage.close()
    else:
        storage._engine.dispose()  # type: ignore[attr-defined]  # SqlStorage has no close()


def one_round(make: Callable[[str], Storage], path: str, root_env_config: str, configs: int) -> dict[str, float]:
    """Run the loop on a fresh file; seconds of the loop and of the final load(), bytes of the file."""
    tunables = TunableGroups(TUNABLES)
    start = time.perf_counter()
    storage = make(path)
    env = MockEnv(name="mock", tunables=tunables, config={
        "tunable_params": ["knobs"], "mock_env_seed": 42, "mock_env_range": [60, 120], "mock_env_metrics": ["score"]})
    optimizer = MockOptimizer(tunables=tunables, config={
        "optimization_targets": {"score": "min"}, "max_suggestions": configs, "seed": 42})
    scheduler = SyncScheduler(config={"trial_config_repeat_count": REPEATS, "max_trials": -1, "teardown": False},
                              global_config={"experiment_id": "bench", "trial_id": 1}, environment=env,
                              optimizer=optimizer, storage=storage, root_env_config=root_env_config)
    with scheduler as running:
        running.start()
        running.teardown()
    loop = time.perf_counter() - start
    with storage.experiment(experiment_id="bench", trial_id=1, root_env_config=root_env_config, description="",
                            tunables=tunables, opt_targets={"score": "min"}) as exp:
        start = time.perf_counter()
        trial_ids = exp.load()[0]
        load = time.perf_counter() - start
    close(storage)
    if len(trial_ids) != configs * REPEATS:
        raise RuntimeError(f"{path}: load() gave {len(trial_ids)} trials, expected {configs * REPEATS}")
    return {"loop": loop, "load": load, "size": float(os.path.getsize(path))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the smoke test")
    parser.add_argument("--configs", type=int, default=50, help="configs the optimizer suggests (x3 trials)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    configs, rounds = (4, 1) if args.quick else (args.configs, args.rounds)
    logging.disable(logging.WARNING)  # mlos_bench logs every trial
    backends = {name: spec for name, spec in BACKENDS.items()
                if name != "duckdb" or importlib.util.find_spec("duckdb_engine") is not None}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in backends}
    failed: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root_env_config = git_checkout(Path(tmp))
        for r in range(rounds):
            for name, (file_name, make) in backends.items():
                if name in failed:
                    continue
                try:
                    results[name].append(one_round(make, str(Path(tmp) / f"{r}_{file_name}"), root_env_config,
                                                   configs))
                except Exception as exc:  # noqa: BLE001 - reported in the table: a store that cannot run the loop
                    failed[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    print(f"mlos_bench SyncScheduler + MockEnv + MockOptimizer: {configs} configs x {REPEATS} repeats "
          f"= {configs * REPEATS} trials, median of {rounds} rounds; ratio to SqlStorage on SQLite")
    if "duckdb" not in backends:
        print("(SqlStorage on DuckDB left out: duckdb-engine is not installed; pip install -e '.[bench]')")
    print("| backend | loop s | loop ratio | load() s | load() ratio | file KB | size ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    base = {m: statistics.median(r[m] for r in results["sqlite"]) for m in ("loop", "load", "size")}
    for name, runs in results.items():
        if name in failed:
            print(f"| {name} | failed: {failed[name]} | - | - | - | - | - |")
            continue
        med: dict[str, Any] = {m: statistics.median(r[m] for r in runs) for m in ("loop", "load", "size")}
        print(f"| {name} | {med['loop']:.3f} | {med['loop'] / base['loop']:.2f}x | {med['load']:.4f} | "
              f"{med['load'] / base['load']:.2f}x | {med['size'] / 1024:.0f} | {med['size'] / base['size']:.1f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
