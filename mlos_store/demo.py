"""A small autotuning loop end to end on an embedded store file.

Run ``python -m mlos_store.demo [PATH]`` (default ``mlos_store_demo.duckdb``).
A toy optimizer proposes configurations, a fake benchmark "runs" each one,
streaming telemetry while it runs, and some runs fail. Running it again on
the same file resumes the experiment: numbering continues and the optimizer
warms up from the trials already stored.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from . import Experiment, Status, Storage
from .arguments import iso_timestamp
from .progress import ProgressCallback, Steps

TUNABLES = {"buffer_mb": 64, "threads": 4, "compression": "lz4", "prefetch": False}
OPT_TARGETS = {"latency_ms": "min"}
TRIALS_PER_RUN = 12
SAMPLES_PER_TRIAL = 200


def latency_of(config: Mapping[str, Any], rng: random.Random) -> float:
    """The toy benchmark: a bowl around buffer_mb=256, threads=8, with noise."""
    base: float = ((config["buffer_mb"] - 256) / 64) ** 2 + (config["threads"] - 8) ** 2
    base += {"lz4": 0.0, "zstd": 1.5, "none": 3.0}[config["compression"]]
    base -= 2.0 if config["prefetch"] else 0.0
    return round(20.0 + base + rng.gauss(0, 0.5), 3)


def propose(best: Mapping[str, Any] | None, rng: random.Random) -> dict[str, Any]:
    """The toy optimizer: a random step around the best configuration so far."""
    start: Mapping[str, Any] = best or TUNABLES
    return {
        "buffer_mb": max(16, int(start["buffer_mb"]) + rng.choice([-64, 0, 64, 128])),
        "threads": max(1, int(start["threads"]) + rng.choice([-2, -1, 0, 1, 2])),
        "compression": rng.choice(["lz4", "zstd", "none"]),
        "prefetch": rng.random() < 0.5,
    }


def best_so_far(exp: Experiment) -> tuple[dict[str, Any] | None, float | None]:
    """Warm-up from stored results: the SUCCEEDED trial with the lowest latency."""
    _, configs, scores, _ = exp.load()
    scored = [(s["latency_ms"], c) for c, s in zip(configs, scores) if s and "latency_ms" in s]
    if not scored:
        return None, None
    latency, config = min(scored, key=lambda pair: pair[0])
    return config, latency


def run_benchmark(trial: Any, start: datetime, rng: random.Random) -> None:
    """Run one trial: telemetry as an Arrow batch while running, then the result.

    Too many threads time out, and one combination crashes, as real ones do."""
    trial.update(Status.RUNNING, start)
    config = dict(trial.tunables)
    latency = latency_of(config, rng)
    stamps = [start + timedelta(milliseconds=10 * i) for i in range(SAMPLES_PER_TRIAL)]
    samples = pa.table({
        "ts": pa.array(stamps * 2, pa.timestamp("us", tz="UTC")),
        "metric": ["cpu_pct"] * SAMPLES_PER_TRIAL + ["latency_ms"] * SAMPLES_PER_TRIAL,
        "value": [rng.uniform(20, 95) for _ in stamps] + [latency + rng.gauss(0, 1) for _ in stamps],
    })
    trial.update_telemetry(Status.RUNNING, stamps[-1], samples)
    end = stamps[-1] + timedelta(milliseconds=10)
    if config["threads"] >= 10:
        trial.update(Status.TIMED_OUT, end)
    elif config["compression"] == "none" and config["prefetch"]:
        trial.update(Status.FAILED, end, {"error": "crashed: prefetch needs compression"})
    else:
        trial.update(Status.SUCCEEDED, end, {"latency_ms": latency, "throughput": round(1000 / latency, 2)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    run_demo(args.path, trials=args.trials, seed=args.seed, start=args.start)
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The demo's options (shared with ``mlos-store demo``)."""
    parser.add_argument("path", nargs="?", default="mlos_store_demo.duckdb", help="store file (created if missing)")
    parser.add_argument("--trials", type=int, default=TRIALS_PER_RUN, help="trials to run this time")
    parser.add_argument("--seed", type=int, default=None, help="random seed")
    parser.add_argument("--start", type=iso_timestamp, default=None,
                        help="start time of the first trial, ISO 8601 (default: now); with --seed, "
                             "a run that repeats exactly")


def run_demo(path: str, *, trials: int = TRIALS_PER_RUN, seed: int | None = None, start: datetime | None = None,
             progress: ProgressCallback | None = None) -> None:
    """Run ``trials`` trials of the toy loop on the store at ``path`` and print what it holds.

    ``progress(done, total)`` hears of each trial run.
    """
    rng = random.Random(seed)
    with Storage(path) as storage:
        exp = storage.experiment(experiment_id="demo-latency", trial_id=1, root_env_config="demo/env.jsonc",
                                 description="toy latency tuning", tunables=TUNABLES, opt_targets=OPT_TARGETS)
        with exp:
            print(f"store {path}: experiment {exp.experiment_id!r}, next trial id {exp.trial_id}")
            best, _ = best_so_far(exp)
            clock = datetime.now(UTC) if start is None else start
            steps = Steps(trials, progress)
            for _ in range(trials):
                trial = exp.new_trial(propose(best, rng), ts_start=clock)
                run_benchmark(trial, clock, rng)
                clock += timedelta(seconds=3)
                best, _ = steps.step(best_so_far(exp))
            report(exp)


def report(exp: Experiment) -> None:
    """Print what the store now holds, read back through the Arrow forms."""
    table = exp.load_table()
    print(f"\n{table.num_rows} completed trials:")
    print(f"{'trial':>5} {'status':<10} {'buffer_mb':>9} {'threads':>7} {'compression':<11} {'prefetch':<8} "
          f"{'latency_ms':>10}")
    for row in table.to_pylist():
        latency = row.get("result.latency_ms")
        print(f"{row['trial_id']:>5} {row['status']:<10} {row['config.buffer_mb']:>9} {row['config.threads']:>7} "
              f"{row['config.compression']:<11} {str(row['config.prefetch']):<8} "
              f"{'' if latency is None else f'{latency:.3f}':>10}")
    telemetry = exp.telemetry_table(metrics=["cpu_pct"])
    mean_cpu = pc.mean(telemetry.column("value")).as_py()
    print(f"\ntelemetry: {telemetry.num_rows} cpu_pct points, mean {mean_cpu:.1f}%")
    best, latency = best_so_far(exp)
    print(f"best configuration: {best} at {latency} ms")


if __name__ == "__main__":
    raise SystemExit(main())
