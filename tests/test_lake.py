"""The Parquet lake (layout 2): incremental exports, several stores in one lake, filesystems, older layouts."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from conftest import T0
from test_telemetry_parquet import ODD_ID, TUNABLES, fill, open_experiment, snapshot

from mlos_store import InvalidValueError, Status, Storage
from mlos_store import lake as lake_module

SEC = timedelta(seconds=1)


def _files(lake: Path, dataset: str) -> set[str]:
    return {p.relative_to(lake).as_posix() for p in (lake / dataset).rglob("*.parquet")}


def _more(storage: Storage, trials: int = 2) -> None:
    """New trials with telemetry, and new points of an old trial."""
    with open_experiment(storage) as exp:
        for n in range(trials):
            trial = exp.new_trial({**TUNABLES, "threads": 10 + n}, ts_start=T0)
            trial.update(Status.RUNNING, T0)
            trial.update_telemetry(Status.RUNNING, T0, [(T0 + i * SEC, "lat", float(i + n)) for i in range(5)])
            trial.update(Status.SUCCEEDED, T0 + 9 * SEC, {"score": float(n), "tput": n})
        exp.ingest_telemetry(pa.table({"trial_id": [1], "ts": [T0 + 100 * SEC], "metric": ["lat"], "value": [7.0]}))


def test_an_incremental_export_writes_only_what_changed_and_imports_exactly(storage: Storage, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    with open_experiment(storage) as exp:
        fill(exp)
        exp.export_parquet(lake)
    before = {name: _files(lake, name) for name in ("experiment", "objective", "trial", "telemetry")}
    _more(storage)
    with open_experiment(storage) as exp:
        exp.export_parquet(lake)
    after = {name: _files(lake, name) for name in before}
    assert after["experiment"] == before["experiment"] and after["objective"] == before["objective"], "unchanged"
    assert len(after["trial"]) == 1 and after["trial"] != before["trial"], "a changed small table: one new file"
    assert after["telemetry"] > before["telemetry"] and len(after["telemetry"]) == 2, "new points: one new file"
    [new] = after["telemetry"] - before["telemetry"]
    assert pq.read_metadata(lake / new).num_rows == 2 * 5 + 1, "only the points stored since the last export"
    with Storage() as target:
        assert target.import_parquet(lake) == [ODD_ID]
        assert snapshot(target) == snapshot(storage)


def test_an_export_with_nothing_new_writes_no_data_file(storage: Storage, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    with open_experiment(storage) as exp:
        fill(exp)
        exp.export_parquet(lake)
        files = {p: p.stat().st_mtime_ns for p in lake.rglob("*.parquet")}
        exp.export_parquet(lake)
    assert {p: p.stat().st_mtime_ns for p in lake.rglob("*.parquet")} == files


def test_the_manifest_keeps_the_high_water_marks_of_each_export(storage: Storage, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    with open_experiment(storage) as exp:
        fill(exp)
        exp.export_parquet(lake)
    [path] = (lake / "_mlos_store").rglob("*.json")
    first = json.loads(path.read_text())["high_water_marks"]
    _more(storage, trials=1)
    with open_experiment(storage) as exp:
        exp.export_parquet(lake)
    second = json.loads(path.read_text())["high_water_marks"]
    assert (first["max_trial_id"], second["max_trial_id"]) == (5, 6)
    assert second["telemetry_rows"] == first["telemetry_rows"] + 5 + 1
    assert second["telemetry_rowid"] > first["telemetry_rowid"]
    assert second["max_status_seq"] > first["max_status_seq"]


def test_several_stores_export_into_one_lake_without_touching_each_others_files(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    stores = [Storage(tmp_path / f"runner{n}.duckdb") for n in range(3)]
    try:
        for n, store in enumerate(stores):
            with open_experiment(store, f"exp{n % 2}", first_trial_id=1 + 100 * n) as exp:
                fill(exp)
                exp.export_parquet(lake)
        sources = {p.name for p in (lake / "_mlos_store").iterdir()}
        assert len(sources) == 3, "one manifest folder per store"
        assert len(list((lake / "telemetry").glob("experiment_key=*/source=*"))) == 3
        for store in stores:  # a second round writes nothing over another store's files
            with open_experiment(store, "exp0" if store is stores[1] else "exp1") as exp:
                exp.new_trial(dict(TUNABLES))
        kept = {p: p.read_bytes() for p in lake.rglob("*.parquet")}
        with open_experiment(stores[1], "exp1") as exp:
            exp.export_parquet(lake)
        assert all(p.read_bytes() == data for p, data in kept.items() if "source=" in str(p) and p.exists())
        with Storage() as target:
            assert target.import_parquet(lake, ["exp1"]) == ["exp1"]
            assert snapshot(target, "exp1") == snapshot(stores[1], "exp1")
            with pytest.raises(InvalidValueError, match="experiment 'exp0' was exported by 2 stores"):
                target.import_parquet(lake, ["exp0"])
    finally:
        for store in stores:
            store.close()


def test_a_lake_on_a_pyarrow_filesystem_or_a_url(storage: Storage, tmp_path: Path) -> None:
    inside = pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem())
    with open_experiment(storage) as exp:
        fill(exp)
        exp.export_parquet("shared/lake", filesystem=inside)
    assert (tmp_path / "shared" / "lake" / "_mlos_store.json").is_file()
    with Storage() as target:
        assert target.import_parquet("shared/lake", filesystem=inside) == [ODD_ID]
        assert snapshot(target) == snapshot(storage)
    with Storage() as target:
        assert target.import_parquet((tmp_path / "shared" / "lake").as_uri()) == [ODD_ID]
        assert snapshot(target) == snapshot(storage)
    _more(storage)
    with open_experiment(storage) as exp:  # incremental through a URL
        exp.export_parquet((tmp_path / "shared" / "lake").as_uri())
    with Storage() as target:
        assert target.import_parquet("shared/lake", filesystem=inside) == [ODD_ID]
        assert snapshot(target) == snapshot(storage)
    with pytest.raises(InvalidValueError, match="filesystem must be a pyarrow.fs.FileSystem or an fsspec filesystem"):
        storage.import_parquet("lake", filesystem="local")


def test_a_layout_1_export_is_refused_by_name(storage: Storage, tmp_path: Path) -> None:
    old = tmp_path / "old"
    (old / "_manifests").mkdir(parents=True)
    (old / "_manifests" / "exp-0123456789abcdef.json").write_text(json.dumps(
        {"format": "mlos_store experiment export", "layout_version": 1}))
    with Storage() as target:
        with pytest.raises(InvalidValueError, match="it is an export of layout 1 .*this mlos_store reads layout 2: "
                                                    "export the experiments again"):
            target.import_parquet(old)
    with open_experiment(storage) as exp:
        with pytest.raises(InvalidValueError, match="holds an export of layout 1"):
            exp.export_parquet(old)


def test_a_lake_of_an_unknown_layout_version_is_refused_before_export_or_import(storage: Storage,
                                                                                tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    with open_experiment(storage) as exp:
        fill(exp)
        exp.export_parquet(lake)
        root = json.loads((lake / "_mlos_store.json").read_text())
        (lake / "_mlos_store.json").write_text(json.dumps({**root, "layout_version": 3}))
        with pytest.raises(InvalidValueError, match="_mlos_store.json has layout version 3, this mlos_store reads "
                                                    "layout 2"):
            exp.export_parquet(lake)
    with Storage() as target:
        with pytest.raises(InvalidValueError, match="has layout version 3"):
            target.import_parquet(lake)


def test_an_export_whose_last_mark_no_longer_matches_the_store_writes_the_telemetry_again(
        storage: Storage, tmp_path: Path) -> None:
    """If the points below the last export's mark are not the ones it wrote (rowids moved), the telemetry
    is exported whole again and the old files go: the lake never holds a point twice or misses one."""
    lake = tmp_path / "lake"
    with open_experiment(storage) as exp:
        fill(exp)
        exp.export_parquet(lake)
    [path] = (lake / "_mlos_store").rglob("*.json")
    manifest = json.loads(path.read_text())
    manifest["high_water_marks"]["telemetry_rowid"] = 5  # as if rows had moved since
    path.write_text(json.dumps(manifest))
    old = _files(lake, "telemetry")
    _more(storage, trials=1)
    with open_experiment(storage) as exp:
        exp.export_parquet(lake)
    new = _files(lake, "telemetry")
    assert len(new) == 1 and not new & old
    with Storage() as target:
        target.import_parquet(lake)
        assert snapshot(target) == snapshot(storage)
    assert pq.read_metadata(lake / next(iter(new))).num_rows == len(snapshot(storage)["telemetry"])


def test_a_lake_at_an_fsspec_url(storage: Storage, tmp_path: Path) -> None:
    """A URL pyarrow has no filesystem for goes through fsspec (here its in-memory filesystem)."""
    fsspec = pytest.importorskip("fsspec")
    url = f"memory://{tmp_path.name}"  # fsspec's memory is one per process: a folder per test
    with open_experiment(storage) as exp:
        fill(exp)
        exp.export_parquet(url)
    assert fsspec.filesystem("memory").isfile(f"/{tmp_path.name}/_mlos_store.json")
    with Storage() as target:
        assert target.import_parquet(url) == [ODD_ID]
        assert snapshot(target) == snapshot(storage)


def test_many_incremental_exports_are_compacted_into_few_files(storage: Storage, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lake_module, "COMPACT_AFTER_SMALL_FILES", 2)
    lake = tmp_path / "lake"
    counts = []
    with open_experiment(storage) as exp:
        fill(exp)
        exp.export_parquet(lake)
    for _ in range(4):
        _more(storage, trials=1)
        with open_experiment(storage) as exp:
            exp.export_parquet(lake)
        counts.append(len(_files(lake, "telemetry")))
    assert counts == [2, 3, 1, 2], "past 2 small files the next export writes the telemetry whole"
    with Storage() as target:
        target.import_parquet(lake)
        assert snapshot(target) == snapshot(storage)
