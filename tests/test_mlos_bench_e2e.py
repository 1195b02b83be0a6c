"""End to end: mlos_bench's optimization loop stores in mlos_store, through the documented command line.

A mock environment and mlos_bench's mock optimizer run 10 configs x 3
repeats in a subprocess (``mlos-store-bench``, the mlos_bench how-to's command); the
``mlos-store`` CLI and ``ExperimentData`` then read what it stored, and a
second run of the same command resumes the experiment (trial ids go on
from 31) after warm-starting the optimizer with exactly the stored trials.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from docs_blocks import mlos_bench_command, mlos_bench_storage_config

pytest.importorskip("mlos_bench", reason="mlos_bench is not installed: pip install -e '.[test,mlos-bench]'")

from mlos_store import Status, Storage  # noqa: E402

FILES = {
    "tunables.jsonc": {"knobs": {"cost": 1, "params": {
        "threads": {"type": "int", "default": 4, "range": [1, 64]},
        "ratio": {"type": "float", "default": 0.5, "range": [0.0, 1.0]},
        "policy": {"type": "categorical", "values": ["lru", "lfu", "fifo"], "default": "lru"},
    }}},
    "env.jsonc": {"name": "mock benchmark", "class": "mlos_bench.environments.mock_env.MockEnv",
                  "include_tunables": ["tunables.jsonc"],
                  "config": {"tunable_params": ["knobs"], "mock_env_seed": 42, "mock_env_range": [60, 120],
                             "mock_env_metrics": ["score"]}},
    "opt.jsonc": {"class": "mlos_bench.optimizers.MockOptimizer",
                  "config": {"optimization_targets": {"score": "min"}, "max_suggestions": 10, "seed": 42}},
    # The storage config the mlos_bench how-to (docs/how-to/mlos-bench.md) tells a user to write.
    "storage.jsonc": mlos_bench_storage_config(),
}
# That page's command line, as it is written there.
ARGS = mlos_bench_command()[1:] + ["--log-level", "INFO"]
EXP = ARGS[ARGS.index("--experiment-id") + 1]
REGISTERED = re.compile(r"Register: .* = Status\.SUCCEEDED score: (\{.*\})$", re.MULTILINE)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The configs in a git checkout with an origin remote (mlos_bench records the root config's git origin)."""
    for name, content in FILES.items():
        (tmp_path / name).write_text(json.dumps(content, indent=2))
    for args in (["init", "-q"], ["remote", "add", "origin", "https://example.invalid/bench-configs.git"],
                 ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "c"]):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)
    return tmp_path


def _command(name: str) -> list[str]:
    """The console script beside this interpreter, else the same entry point through ``-c``."""
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    if found:
        return [found]
    module, function = {"mlos-store-bench": ("mlos_store.mlos_bench", "main"),
                        "mlos-store": ("mlos_store.cli", "main")}[name]
    return [sys.executable, "-c", f"import sys; from {module} import {function}; sys.exit({function}())"]


def _run_loop(checkout: Path) -> str:
    done = subprocess.run(_command("mlos-store-bench") + ARGS, cwd=checkout, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def test_mlos_benchs_loop_stores_resumes_and_warm_starts_on_mlos_store(checkout: Path) -> None:
    first_log = _run_loop(checkout)
    assert "QUEUE: Update the optimizer with trial results: []" in first_log  # a new experiment: nothing to load
    path = checkout / "results.duckdb"
    assert not path.with_name("results.duckdb.wal").exists()  # closed (checkpointed) at exit

    with Storage(path, read_only=True) as store:
        data = store.experiments[EXP]
        trials = data.trials
        assert list(trials) == list(range(1, 31))
        assert all(t.status == Status.SUCCEEDED for t in trials.values())
        assert all(isinstance(t.results_dict["score"], float) for t in trials.values())  # typed, not "63.3"
        groups = data.tunable_config_trial_groups
        assert len(groups) == 10 and all(len(g.trials) == 3 for g in groups.values())
        assert data.root_env_config[0] == "env.jsonc"
        assert data.root_env_config[1] == "https://example.invalid/bench-configs.git"
        assert trials[1].metadata_dict["is_defaults"] is True and data.default_tunable_config_id == 1
        assert data.telemetry_table().num_rows >= 30
        assert set(data.telemetry_table().column("metric").to_pylist()) == {"score"}
        history = store.get_experiment_by_id(EXP).get_trial_by_id(1).status_history()  # type: ignore[union-attr]
        assert history[0][1] == Status.PENDING and history[-1][1] == Status.SUCCEEDED
        stored_scores = [trials[i].results_dict["score"] for i in range(1, 31)]

    listed = subprocess.run(_command("mlos-store") + ["trials", str(path), EXP, "--format", "json"],
                            capture_output=True, text=True, check=True, timeout=120)
    assert [row["trial_id"] for row in json.loads(listed.stdout)] == list(range(1, 31))

    second_log = _run_loop(checkout)
    # Warm start: the optimizer was first given exactly the 30 stored trials, with their scores.
    assert "QUEUE: Update the optimizer with trial results: " + str(list(range(1, 31))) in second_log
    assert "Update the optimizer with: 30 configs, 30 scores, 30 status values" in second_log
    registered = [ast.literal_eval(m)["score"] for m in REGISTERED.findall(second_log)][:30]
    assert registered == pytest.approx(stored_scores)
    with Storage(path, read_only=True) as store:
        assert list(store.experiments[EXP].trials) == list(range(1, 61))  # resumed after trial 30
