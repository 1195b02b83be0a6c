"""A central store following runners: Storage.sync of 8 shards against bare INSERT ... SELECT, and incremental.

Eight shard files of one experiment (each runner its own shard, trials run
to the end, telemetry ingested in bulk) are built once. Each round then
fills two fresh store files, interleaved: the baseline attaches every shard
in turn and copies every table with one bare ``INSERT ... SELECT`` each
(``import_baseline.sql``: no checks, no id mapping, no deduplication); the
candidate calls ``Storage.sync`` on every shard (the full sync). Then every
shard gains 1% more telemetry (new trials run to the end) and each round's
central store is synced again (the incremental sync). Prints the medians and
the ratios sync / baseline and incremental / full. ``--quick`` is the
smoke-test size.

    python benchmarks/bench_sync.py [--quick] [--shards S] [--trials N] [--points K] [--rounds R]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
from bench_import import TABLES, baseline_catalog

from mlos_store import Status, Storage
from mlos_store.catalog import Catalog
from mlos_store.engine import Engine
from mlos_store.experiment import Experiment

T0 = datetime(2026, 1, 1, tzinfo=UTC)
#: The share of new data each shard gains before the incremental sync.
GROWTH = 0.01


def _experiment(storage: Storage, shard: int) -> Experiment:
    return storage.experiment(experiment_id="fleet", trial_id=1, root_env_config="", description="",
                              tunables={"x": 0, "y": 0.0}, opt_targets={"score": "min"}, shard=shard)


def grow_shard(path: Path, shard: int, trials: int, points: int, first: int) -> None:
    """``trials`` more trials of the shard, each run to the end with ``points`` telemetry points."""
    with Storage(path, mode="exclusive") as storage, _experiment(storage, shard) as exp:
        ids = []
        for i in range(first, first + trials):
            trial = exp.new_trial({"x": i % 50, "y": i / 3}, ts_start=T0, config={"rep": i % 3})
            trial.update(Status.RUNNING, T0)
            ids.append(trial.trial_id)
        per_trial = [T0 + timedelta(milliseconds=i) for i in range(points // 4)] * 4
        metrics = [m for m in ("cpu", "mem", "lat", "tput") for _ in range(points // 4)]
        exp.ingest_telemetry(pa.table({
            "trial_id": pa.array([t for t in ids for _ in per_trial], pa.int64()),
            "ts": pa.array(per_trial * len(ids), pa.timestamp("us", tz="UTC")),
            "metric": pa.array(metrics * len(ids)),
            "value": pa.array([float(i % 97) for i in range(len(per_trial) * len(ids))]),
        }))
        for trial in exp.pending_trials(T0 + timedelta(days=1), running=True):
            trial.update(Status.SUCCEEDED, T0 + timedelta(seconds=1), {"score": float(trial.trial_id % 1000)})


def run_baseline(dest: Path, shards: list[Path], catalog: Catalog) -> float:
    engine = Engine(dest, catalog=catalog, mode="exclusive")
    sql = engine.catalog
    start = time.perf_counter()
    for shard in shards:
        with engine.attached(sql.import_store_attach, sql.import_store_detach, str(shard)), engine.transaction():
            for table in TABLES:
                engine.execute(getattr(sql, f"baseline_copy_{table}"))
    seconds = time.perf_counter() - start
    engine.close()
    return seconds


def run_sync(central: Path, shards: list[Path]) -> tuple[float, int]:
    with Storage(central, mode="exclusive") as storage:
        start = time.perf_counter()
        points = sum(storage.sync(shard).new_telemetry_points for shard in shards)
        return time.perf_counter() - start, points


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the smoke test")
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--trials", type=int, default=125, help="trials per shard")
    parser.add_argument("--points", type=int, default=10_000, help="telemetry points per trial")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if args.quick:
        args.shards, args.trials, args.points, args.rounds = 8, 4, 400, 1
    catalog = baseline_catalog()
    full, base, incremental = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        shards = [Path(tmp) / f"shard{k}.duckdb" for k in range(1, args.shards + 1)]
        start = time.perf_counter()
        for k, shard in enumerate(shards, start=1):
            grow_shard(shard, k, args.trials, args.points, 0)
        total = args.shards * args.trials * args.points
        print(f"{args.shards} shards x {args.trials} trials x {args.points} points = {total:,} points, "
              f"built in {time.perf_counter() - start:.1f} s")
        centrals = [Path(tmp) / f"central-{r}.duckdb" for r in range(args.rounds)]
        for round_no, central in enumerate(centrals):  # interleaved, fresh files each time
            baseline_file = Path(tmp) / f"baseline-{round_no}.duckdb"
            base.append(run_baseline(baseline_file, shards, catalog))
            baseline_file.unlink()
            seconds, points = run_sync(central, shards)
            assert points == total
            full.append(seconds)
        new_trials = max(1, round(args.trials * GROWTH))
        for k, shard in enumerate(shards, start=1):
            grow_shard(shard, k, new_trials, args.points, args.trials)
        for central in centrals:
            seconds, points = run_sync(central, shards)
            assert points == args.shards * new_trials * args.points
            incremental.append(seconds)
    b, f, i = statistics.median(base), statistics.median(full), statistics.median(incremental)
    grown = args.shards * new_trials * args.points
    print(f"sync of {args.shards} shards, {total:,} points, then +{grown:,} points ({grown / total:.1%}); "
          f"median of {args.rounds} rounds")
    print("| phase | baseline | baseline s | mlos_store s | ratio |\n|---|---|---:|---:|---:|")
    print(f"| full sync | bare INSERT ... SELECT | {b:.3f} | {f:.3f} | {f / b:.2f}x |")
    print(f"| incremental sync (+{grown / total:.0%}) | the full sync | {f:.3f} | {i:.3f} | {i / f:.3f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
