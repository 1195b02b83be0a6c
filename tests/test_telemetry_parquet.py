"""Export of an experiment to a Hive-layout Parquet dataset, and import of it into a store."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from conftest import FAR_FUTURE, T0

from mlos_store import Experiment, InvalidValueError, Status, Storage, Trial, TrialConflictError, UnknownObjectError
from mlos_store.lake import DATASETS

SEC = timedelta(seconds=1)
TUNABLES = {"threads": 1, "ratio": 0.5, "mode": "a", "on": False}
ODD_ID = "bench/x=1 ü%"  # a path separator, the Hive '=', a space, non-ASCII, a percent sign


def open_experiment(storage: Storage, experiment_id: str = ODD_ID, first_trial_id: int = 1) -> Experiment:
    return storage.experiment(experiment_id=experiment_id, trial_id=first_trial_id, root_env_config="env.jsonc",
                              description="exported", tunables=dict(TUNABLES),
                              opt_targets={"score": "min", "tput": "max"})


def fill(exp: Experiment) -> None:
    """Trials in every state, shared configs, trial configs, results and telemetry of every type."""
    plans = [{"threads": 2}, {"threads": 4, "mode": "b"}, {"threads": 2}, {"on": True}, {}]
    for n, plan in enumerate(plans):
        trial = exp.new_trial({**TUNABLES, **plan}, ts_start=T0 + n * SEC, config={"rep": n, "tag": f"t{n}"})  # type: ignore[dict-item]
        if n == 4:
            continue  # stays PENDING, no telemetry
        trial.update(Status.RUNNING, T0 + n * SEC)
        trial.update_telemetry(Status.RUNNING, T0 + n * SEC, [
            (T0 + i * SEC, metric, value) for i in range(3)
            for metric, value in (("lat", i * 1.5 + n), ("ops", i + n), ("state", f"s{i}"), ("ok", i % 2 == 0),
                                  ("gap", None), ("nan", float("nan")), ("neg0", -0.0))])
        if n < 2:
            trial.update(Status.SUCCEEDED, T0 + 10 * SEC, {"score": n + 0.5, "tput": 100 * n, "note": None})
        elif n == 2:
            trial.update(Status.FAILED, T0 + 10 * SEC)


def snapshot(storage: Storage, experiment_id: str = ODD_ID) -> dict[str, Any]:
    """Everything a user reads back from one experiment, config ids replaced by the configs' values."""
    exp = open_experiment(storage, experiment_id)
    with exp:
        table = exp.load_table()
        configs = {cid: exp.load_tunable_config(cid) for cid in table.column("tunable_config_id").to_pylist()}
        pending = [(t.trial_id, dict(t.tunables), t.config(), t.status, t.status_history())
                   for t in exp.pending_trials(FAR_FUTURE, running=True)]
        telemetry = exp.telemetry_table()
        return {
            "load": exp.load()[::2] + (exp.load()[3],),  # ids, scores, status
            "load_table": table.drop_columns(["tunable_config_id"]),
            "configs": [configs[c] for c in table.column("tunable_config_id").to_pylist()],
            "telemetry": [tuple(repr(v) for v in row.values()) for row in telemetry.to_pylist()],
            "telemetry_schema": telemetry.schema,
            "pending": pending,
            "summary": exp.telemetry_summary().to_pylist().__repr__(),
            "next_trial_id": exp.trial_id,
            "description": exp.description,
            "root_env_config": exp.root_env_config,
        }


@pytest.fixture
def exported(storage: Storage, tmp_path: Path) -> Path:
    with open_experiment(storage) as exp:
        fill(exp)
        exp.export_parquet(tmp_path / "dataset")
    return tmp_path / "dataset"


def test_export_then_import_round_trips_an_experiment_exactly(storage: Storage, exported: Path,
                                                               tmp_path: Path) -> None:
    before = snapshot(storage)
    with Storage(tmp_path / "copy.duckdb") as target:
        assert target.import_parquet(exported) == [ODD_ID]
        after = snapshot(target)
    assert after == before


def test_import_remaps_config_ids_that_collide(storage: Storage, exported: Path) -> None:
    """In a store whose config ids already mean other values, imported trials keep their values."""
    with Storage() as target:
        with open_experiment(target, "local") as local:  # takes config ids 1 and 2 with other values
            local.new_trial({**TUNABLES, "threads": 99})
            local.new_trial({**TUNABLES, "threads": 2})  # the same values as an imported config: shared
        target.import_parquet(exported)
        assert snapshot(target) == snapshot(storage)
        with open_experiment(target, "local") as local:
            assert local.load_tunable_config(1)["threads"] == 99
            shared = next(t for t in local.pending_trials(FAR_FUTURE, running=True) if t.tunables["threads"] == 2)
        with open_experiment(target) as imported:
            ids = imported.load_table().column("tunable_config_id").to_pylist()
        assert ids[0] == shared.tunable_config_id != 1


def test_status_history_order_survives_the_round_trip(storage: Storage, exported: Path) -> None:
    """The history is in the order the changes were made, not by their timestamps, also after import."""
    with open_experiment(storage) as exp:
        trial = exp.new_trial(dict(TUNABLES))
        trial.update(Status.RUNNING, T0 + 5 * SEC)
        trial.update_telemetry(Status.SUCCEEDED, T0, [])  # recorded with an earlier timestamp
        trial.update(Status.SUCCEEDED, T0 + 6 * SEC, {"score": 1.0, "tput": 2})
        history = trial.status_history()
        exp.export_parquet(exported)  # a re-export over the same folder replaces this experiment's files
    assert [status for _, status in history] == [Status.PENDING, Status.RUNNING, Status.SUCCEEDED, Status.SUCCEEDED]
    with Storage() as target:
        target.import_parquet(exported)
        restored = Trial(engine=target.engine, schema=target.engine.catalog, experiment_id=ODD_ID,
                         trial_id=trial.trial_id, tunable_config_id=trial.tunable_config_id,
                         tunables=trial.tunables, opt_targets={})
        assert restored.status_history() == history
        assert restored.status == Status.SUCCEEDED
        assert snapshot(target) == snapshot(storage)


def test_lake_is_hive_partitioned_by_experiment_and_source_with_the_ids_inside_the_files(exported: Path) -> None:
    telemetry = exported / "telemetry"
    [experiment_dir] = telemetry.iterdir()
    assert experiment_dir.name.startswith("experiment_key=bench_x_1___-") and "/" not in experiment_dir.name
    [source_dir] = experiment_dir.iterdir()
    assert source_dir.name.startswith("source=")
    assert len(list(source_dir.iterdir())) == 1, "one telemetry file for all trials, not one per trial"
    # any Hive reader sees the partition columns as strings; the ids come from inside the files
    partitioning = ds.partitioning(pa.schema([("experiment_key", pa.string()), ("source", pa.string())]),
                                   flavor="hive")
    table = ds.dataset(telemetry, format="parquet", partitioning=partitioning).to_table()
    assert set(table.column("experiment_id").to_pylist()) == {ODD_ID}
    assert sorted(set(table.column("trial_id").to_pylist())) == [1, 2, 3, 4]
    assert table.schema.field("value").type == pa.float64()
    assert table.num_rows == 4 * 3 * 7
    for name in DATASETS:
        files = ds.dataset(exported / name, format="parquet", partitioning=partitioning)
        assert files.count_rows() > 0, name
        assert pa.schema(list(files.schema)[:-2]) == DATASETS[name], name
    root = json.loads((exported / "_mlos_store.json").read_text())
    assert (root["format"], root["layout_version"]) == ("mlos_store lake", 2)
    assert root["datasets"]["telemetry"][:2] == [{"name": "experiment_id", "type": "string"},
                                                 {"name": "trial_id", "type": "int64"}]


def test_export_of_a_second_experiment_keeps_the_first(storage: Storage, exported: Path) -> None:
    with open_experiment(storage, "second") as second:
        trial = second.new_trial(dict(TUNABLES))
        trial.update_telemetry(Status.RUNNING, T0, [(T0, "lat", 1.0)])
        second.export_parquet(exported)
    with Storage() as target:
        assert target.import_parquet(exported, ["second"]) == ["second"]
        assert snapshot(target, "second") == snapshot(storage, "second")
    with Storage() as target:
        assert sorted(target.import_parquet(exported)) == sorted([ODD_ID, "second"])
        assert snapshot(target) == snapshot(storage)


def test_lakes_of_shards_of_one_experiment_combine_and_a_conflicting_trial_is_refused(tmp_path: Path) -> None:
    """import_parquet runs import_store's pipeline: an experiment already stored is extended, as by a store file."""
    lakes = []
    for shard in (1, 2):
        with Storage() as runner:
            with runner.experiment(experiment_id="second", trial_id=1, root_env_config="", description="",
                                   tunables=TUNABLES, opt_targets={"score": "min"}, shard=shard) as exp:
                exp.new_trial(dict(TUNABLES)).update(Status.SUCCEEDED, T0 + timedelta(seconds=shard), {"score": 1.0})
                exp.export_parquet(tmp_path / f"lake{shard}")
        lakes.append(tmp_path / f"lake{shard}")
    with Storage() as target:
        for lake in lakes:
            assert target.import_parquet(lake) == ["second"]
        with target.experiment(experiment_id="second", trial_id=1, root_env_config="", description="",
                               tunables=TUNABLES, opt_targets={"score": "min"}) as exp:
            assert exp.load()[0] == [2**40 + 1, 2 * 2**40 + 1]
        assert target.import_parquet(lakes[0]) == ["second"]  # again: nothing new
        with Storage() as other:
            with other.experiment(experiment_id="second", trial_id=1, root_env_config="", description="",
                                  tunables=TUNABLES, opt_targets={"score": "min"}, shard=1) as exp:
                exp.new_trial({**TUNABLES, "threads": 99}, ts_start=T0)
                exp.export_parquet(tmp_path / "conflict")
        with pytest.raises(TrialConflictError, match="taken here by other trials"):
            target.import_parquet(tmp_path / "conflict")
        assert target.overview().experiments.column("trials").to_pylist() == [2]


def test_import_of_an_unknown_experiment_or_a_foreign_folder_is_refused(exported: Path, tmp_path: Path) -> None:
    with Storage() as target:
        with pytest.raises(UnknownObjectError, match="holds no experiment 'nope'"):
            target.import_parquet(exported, ["nope"])
        with pytest.raises(InvalidValueError, match="not an mlos_store Parquet export"):
            target.import_parquet(tmp_path)
        with pytest.raises(InvalidValueError, match="import_parquet experiment_ids: '' is not an experiment id"):
            target.import_parquet(exported, [""])
        with pytest.raises(InvalidValueError, match="import_parquet experiment_ids takes a list of experiment ids"):
            target.import_parquet(exported, "exp")


def test_a_failing_import_leaves_the_store_as_it_was(exported: Path) -> None:
    """A dataset whose telemetry is corrupt is refused: nothing of the experiment is stored."""
    [part] = (exported / "telemetry").rglob("*.parquet")
    part.write_bytes(b"not parquet")
    with Storage() as target:
        with pytest.raises(InvalidValueError, match=r"telemetry/.*\.parquet' is not a whole Parquet file"):
            target.import_parquet(exported)
        with target.experiment(experiment_id=ODD_ID, trial_id=1, root_env_config="", description="",
                               tunables={}, opt_targets={}) as exp:
            assert exp.load_table().num_rows == 0
            assert exp.telemetry_table().num_rows == 0


def test_export_of_an_unknown_experiment_or_to_a_file_is_refused(storage: Storage, tmp_path: Path) -> None:
    exp = open_experiment(storage, "never-entered")
    with pytest.raises(UnknownObjectError, match="'never-entered' is not stored"):
        exp.export_parquet(tmp_path / "out")
    with open_experiment(storage) as entered:
        (tmp_path / "file").write_text("x")
        with pytest.raises(InvalidValueError, match="is a file, not a folder"):
            entered.export_parquet(tmp_path / "file")
