"""Experiments to and from Parquet datasets in the Hive layout, each export with a manifest.

An export is a folder with one dataset per table, each partitioned by
experiment (telemetry also by trial), which Spark, Ray, DuckDB, polars or
pyarrow read as they are::

    <path>/experiment/experiment_key=<key>/part-0.parquet
    <path>/objective/..., experiment_tunable/..., tunable_param/...,
    <path>/trial/..., trial_param/..., trial_status/..., trial_result/...
    <path>/telemetry/experiment_key=<key>/trial_id=<n>/part-0.parquet
    <path>/_manifests/<key>.json

Every file holds its rows' ``experiment_id``. The folder ``<key>`` is made
from the id (its letters, digits, ``_`` and ``-``, at most 40, then 16 hex
digits of its SHA-256), so any experiment id is safe in paths: one no
filesystem or Hive reader takes literally (``/``, ``..``,
``__HIVE_DEFAULT_PARTITION__``), or one too long for a file name.

The manifest of an experiment is written last, atomically (a temporary
file, then ``os.replace``): it names the layout version, the experiment id,
and every table's files with their row counts. Its absence means the export
did not finish (a re-export removes it first). An import reads only the
files a manifest lists, after checking each is a regular file holding the
rows the manifest says, and refuses an experiment without one. Readers that
ignore the manifest skip ``_manifests`` (a leading ``_`` hides it from
Hive readers).

Values keep the store's four columns (value_kind, value, value_int,
value_text), so ``value`` is numeric for other engines and a dataset reads
back exactly. Telemetry is streamed from DuckDB to the files in batches, so
memory stays bounded whatever its size.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from .catalog import Catalog, Query
from .engine import Engine
from .errors import InvalidValueError, StoreUnavailableError, UnknownObjectError
from .import_store import check_config_hashes, import_store, refuse_unless_regular_file
from .progress import ProgressCallback, Steps
from .values import check_timestamp_range, experiment_id_list

if TYPE_CHECKING:
    import pyarrow.dataset as ds


def _ds() -> Any:
    """``pyarrow.dataset``, imported when first needed (it imports pandas if installed; mlos_store must not)."""
    import pyarrow.dataset

    return pyarrow.dataset


def _pq() -> Any:
    """``pyarrow.parquet``, imported when first needed (as ``pyarrow.dataset``)."""
    import pyarrow.parquet

    return pyarrow.parquet


class Table(NamedTuple):
    """One stored table as a dataset folder: how it is exported and imported."""

    folder: str
    export: Query  # rows of one experiment, by $experiment_id
    insert: Query  # reads those rows as `incoming`, stores them under $experiment_id
    partition: tuple[str, ...]  # Hive partitions below the experiment's folder


def tables(sql: Catalog) -> tuple[Table, ...]:
    """Every exported table, in import order (configs before the trials that use them)."""
    return (
        Table("experiment", sql.export_experiment, sql.import_experiment_insert, ()),
        Table("objective", sql.export_objective, sql.import_objective_insert, ()),
        Table("experiment_tunable", sql.export_experiment_tunable, sql.import_experiment_tunable_insert, ()),
        Table("tunable_param", sql.export_tunable_param, sql.import_tunable_param_insert, ()),
        Table("trial", sql.export_trial, sql.import_trial_insert, ()),
        Table("trial_param", sql.export_trial_param, sql.import_trial_param_insert, ()),
        Table("trial_status", sql.export_trial_status, sql.import_trial_status_insert, ()),
        Table("trial_result", sql.export_trial_result, sql.import_trial_result_insert, ()),
        Table("telemetry", sql.export_telemetry, sql.import_telemetry_insert, ("trial_id",)),
    )


#: The folders of ``tables()``, in that order.
TABLE_FOLDERS = ("experiment", "objective", "experiment_tunable", "tunable_param", "trial", "trial_param",
                 "trial_status", "trial_result", "telemetry")
#: The layout this module writes and reads; a manifest of another version is refused.
LAYOUT_VERSION = 1
MANIFEST_FORMAT = "mlos_store experiment export"
MANIFESTS = "_manifests"
_KEY_PARTITION = "experiment_key"
_PARTITION_TYPES = {"trial_id": pa.int64()}
#: Rows DuckDB hands over per batch while exporting.
EXPORT_BATCH_ROWS = 100_000
#: Files pyarrow keeps open at once (telemetry arrives in trial order, so few are needed).
_MAX_OPEN_FILES = 64
_READABLE_KEY_CHARS = 40


def folder_key(experiment_id: str) -> str:
    """The experiment's name in paths: readable, unique by its hash, short, and never special to a reader."""
    readable = re.sub(r"[^A-Za-z0-9_-]", "_", experiment_id)[:_READABLE_KEY_CHARS]
    return f"{readable}-{hashlib.sha256(experiment_id.encode()).hexdigest()[:16]}"


def _partitioning(columns: tuple[str, ...]) -> ds.Partitioning | None:
    if not columns:
        return None
    return _ds().partitioning(pa.schema([(c, _PARTITION_TYPES[c]) for c in columns]), flavor="hive")


def _experiment_folder(root: Path, table: Table, key: str) -> Path:
    return root / table.folder / f"{_KEY_PARTITION}={key}"


# ---------------------------------------------------------------- export


def export_experiment(engine: Engine, experiment_id: str, path: str | os.PathLike[str], *,
                      progress: ProgressCallback | None = None) -> None:
    """Write one experiment to the dataset folder ``path`` (created if need be), its manifest last.

    Other experiments already in the folder stay; this experiment's files
    are replaced. Until the new manifest is in place the experiment reads
    as an unfinished export (refused by imports), never as a mix of old and
    new files. Raises UnknownObjectError for an unknown id.
    ``progress`` hears of each table written (``mlos_store.progress``).
    """
    if not engine.fetch_value(engine.catalog.experiment_exists, experiment_id=experiment_id):
        raise UnknownObjectError(f"experiment {experiment_id!r} is not stored")
    root = Path(path)
    if root.exists() and not root.is_dir():
        raise InvalidValueError(f"cannot export to {os.fspath(path)!r}: it is a file, not a folder")
    key = folder_key(experiment_id)
    manifest_path = root / MANIFESTS / f"{key}.json"
    manifest_path.unlink(missing_ok=True)
    steps = Steps(len(tables(engine.catalog)), progress)
    written: dict[str, Any] = {}
    for table in tables(engine.catalog):
        written[table.folder] = _export_table(engine, experiment_id, root, table, key)
        steps.step(None)
    _write_manifest(manifest_path, {"format": MANIFEST_FORMAT, "layout_version": LAYOUT_VERSION,
                                    "experiment_id": experiment_id, "key": key, "tables": written})


def _export_table(engine: Engine, experiment_id: str, root: Path, table: Table, key: str) -> dict[str, Any]:
    """Write one table of the experiment (its old files removed first); its files and row counts."""
    folder = _experiment_folder(root, table, key)
    shutil.rmtree(folder, ignore_errors=True)
    files: list[dict[str, Any]] = []

    def visit(written: Any) -> None:
        relative = PurePosixPath(Path(os.path.relpath(written.path, root)).as_posix())
        files.append({"path": str(relative), "rows": written.metadata.num_rows})

    reader = engine.stream(table.export, batch_size=EXPORT_BATCH_ROWS, experiment_id=experiment_id)
    _ds().write_dataset(reader, folder, format="parquet", partitioning=_partitioning(table.partition),
                        basename_template="part-{i}.parquet", existing_data_behavior="overwrite_or_ignore",
                        max_partitions=1 << 30, max_open_files=_MAX_OPEN_FILES, file_visitor=visit)
    files.sort(key=lambda f: f["path"])
    return {"rows": sum(f["rows"] for f in files), "files": files}


def _write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest`` to ``path`` atomically: a reader sees the whole file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "w", encoding="utf-8") as file:
        json.dump(manifest, file, ensure_ascii=False, indent=1)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


# ---------------------------------------------------------------- what a folder holds


class Manifest(NamedTuple):
    """One finished export of an experiment, checked: its files by table."""

    experiment_id: str
    key: str
    files: dict[str, list[tuple[Path, int]]]  # table folder -> (file, rows)


def dataset_experiment_ids(path: str | os.PathLike[str]) -> list[str]:
    """The ids of the experiments a dataset folder holds finished exports of, sorted."""
    root = Path(path)
    return sorted(m.experiment_id for m in _manifests(root, TABLE_FOLDERS).values())


def _manifests(root: Path, folders: tuple[str, ...]) -> dict[str, Manifest]:
    """Every manifest of the folder, read and checked, by key."""
    directory = root / MANIFESTS
    if not directory.is_dir():
        return {}
    found = {}
    for entry in sorted(directory.iterdir()):
        if entry.suffix == ".json" and not entry.name.startswith("."):
            manifest = _read_manifest(root, entry, folders)
            found[manifest.key] = manifest
    return found


def _read_manifest(root: Path, path: Path, folders: tuple[str, ...]) -> Manifest:
    refuse_unless_regular_file(os.fspath(path))
    where = f"cannot import {os.fspath(root)!r}: the manifest {path.name!r}"
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidValueError(f"{where} cannot be read ({exc}); nothing was imported") from exc
    if not isinstance(content, dict) or content.get("format") != MANIFEST_FORMAT:
        raise InvalidValueError(f"{where} is not an mlos_store export manifest; nothing was imported")
    version = content.get("layout_version")
    if version != LAYOUT_VERSION:
        raise InvalidValueError(f"{where} has layout version {version!r}, this mlos_store reads version "
                                f"{LAYOUT_VERSION}; nothing was imported")
    experiment_id, key, listed = content.get("experiment_id"), content.get("key"), content.get("tables")
    if (not isinstance(experiment_id, str) or key != folder_key(experiment_id) or path.stem != key
            or not isinstance(listed, dict) or sorted(listed) != sorted(folders)):
        raise InvalidValueError(f"{where} does not describe one experiment's export; nothing was imported")
    files = {folder: _listed_files(root, where, folder, key, listed[folder]) for folder in folders}
    if not any(rows for _, rows in files["experiment"]):  # every other row would be an orphan
        raise InvalidValueError(f"{where}: the export of {experiment_id!r} holds no experiment record; "
                                "nothing was imported")
    return Manifest(experiment_id, key, files)


def _listed_files(root: Path, where: str, folder: str, key: str, listed: Any) -> list[tuple[Path, int]]:
    """The files of one table a manifest lists, each inside that table's folder of the experiment."""
    inside = PurePosixPath(folder, f"{_KEY_PARTITION}={key}")
    entries = listed.get("files") if isinstance(listed, dict) else None
    if not isinstance(entries, list):
        raise InvalidValueError(f"{where} lists no files for {folder!r}; nothing was imported")
    files = []
    for entry in entries:
        relative = PurePosixPath(entry.get("path", "")) if isinstance(entry, dict) else None
        rows = entry.get("rows") if isinstance(entry, dict) else None
        if (relative is None or relative.is_absolute() or ".." in relative.parts
                or inside not in relative.parents or not isinstance(rows, int) or rows < 0):
            raise InvalidValueError(f"{where} lists a file outside {str(inside)!r} or without a row count: "
                                    f"{entry!r}; nothing was imported")
        files.append((root.joinpath(*relative.parts), rows))
    if sum(rows for _, rows in files) != listed.get("rows"):
        raise InvalidValueError(f"{where}: the files of {folder!r} do not add up to its row count; "
                                "nothing was imported")
    return files


def _unfinished(root: Path, finished: Iterable[str], folders: tuple[str, ...]) -> list[str]:
    """Experiment folders (in any table's folder) without a manifest: exports that did not finish, or older."""
    keys = set(finished)
    return sorted({entry.name for folder in folders if (root / folder).is_dir()
                   for entry in (root / folder).iterdir()
                   if entry.is_dir() and entry.name.removeprefix(f"{_KEY_PARTITION}=") not in keys})


def _check_files(root: Path, manifest: Manifest) -> None:
    """Each listed file: a regular file whose Parquet footer holds the rows the manifest says."""
    for files in manifest.files.values():
        for path, rows in files:
            refuse_unless_regular_file(os.fspath(path))
            try:
                stored = _pq().read_metadata(path).num_rows
            except (pa.ArrowException, OSError) as exc:
                raise InvalidValueError(
                    f"cannot import {os.fspath(root)!r}: {os.fspath(path)!r} is not a whole Parquet file "
                    f"(truncated or damaged: {exc}); nothing was imported") from exc
            if stored != rows:
                raise InvalidValueError(
                    f"cannot import {os.fspath(root)!r}: {os.fspath(path)!r} holds {stored} rows, its manifest "
                    f"says {rows}; nothing was imported")


# ---------------------------------------------------------------- import


def import_experiments(engine: Engine, path: str | os.PathLike[str],
                       experiment_ids: Iterable[str] | None = None, *,
                       progress: ProgressCallback | None = None) -> list[str]:
    """Store the experiments of a dataset folder (all, or ``experiment_ids``); returns their ids.

    Before anything is written: every chosen experiment must have a manifest
    (an export that finished; with ``experiment_ids`` None, every experiment
    folder must), each listed file must be a regular file (a FIFO would
    block) whose Parquet footer holds the rows the manifest says, and each
    config's hash must be the hash of its values (a trial takes this store's
    config of that hash, so a forged hash would change its values).

    Then the rows are staged into a temporary store file (a row repeated
    in the files once, a telemetry point with its first value; config ids
    given by hash) and imported from there by ``import_store``'s pipeline:
    the same statements, checks and rules as a store file or a sync (an
    experiment already stored is extended, its trials moving on; rows of a
    trial the export lacks, empty metric names, undeclared tunables and
    forged hashes refuse the import), one transaction, so any failure
    leaves this store as it was. ``progress`` hears of each table of each
    experiment staged (``mlos_store.progress``).
    """
    root = Path(path)
    folders = TABLE_FOLDERS
    if not (root / MANIFESTS).is_dir() and not (root / "experiment").is_dir():
        raise InvalidValueError(f"{os.fspath(path)!r} is not an mlos_store Parquet export (no manifests)")
    manifests = {m.experiment_id: m for m in _manifests(root, folders).values()}
    wanted = (sorted(manifests) if experiment_ids is None
              else experiment_id_list(experiment_ids, "import_parquet experiment_ids"))
    _refuse_unfinished(root, manifests, wanted, folders, everything=experiment_ids is None)
    chosen = [manifests[experiment_id] for experiment_id in wanted]
    for manifest in chosen:
        _check_files(root, manifest)
    configs = {m.experiment_id: _checked_configs(root, m, engine.catalog) for m in chosen}
    if engine.read_only:
        raise StoreUnavailableError(f"{engine.path!r} is open read-only: open it read-write to import into it")
    with tempfile.TemporaryDirectory(prefix="mlos_store_lake_") as staging_folder:
        staged = os.path.join(staging_folder, "staged.duckdb")
        steps = Steps(len(wanted) * len(folders), progress)

        def fill(stage: Engine) -> None:
            for manifest in chosen:
                _import_one(stage, root, manifest, configs[manifest.experiment_id], steps)

        _stage(staged, engine.catalog, fill)
        import_store(engine, staged, wanted, shown_as=os.fspath(root), follow=False)
    return list(wanted)


def _stage(path: str, catalog: Catalog, fill: Callable[[Engine], None]) -> None:
    """A new store file at ``path`` filled by ``fill`` in one transaction: a lake's rows as a store holds them.

    The staging store is what lets one pipeline import a lake: its rows go
    in as the files hold them (config ids given by hash, repeats dropped),
    and ``import_store`` then checks and copies them like any store file's.
    """
    stage = Engine(path, catalog=catalog, mode="exclusive")
    try:
        with stage.transaction():
            fill(stage)
    finally:
        stage.close()


def _refuse_unfinished(root: Path, manifests: dict[str, Manifest], wanted: list[str],
                       folders: tuple[str, ...], *, everything: bool) -> None:
    unfinished = _unfinished(root, (m.key for m in manifests.values()), folders)
    if not everything:
        keys = {folder_key(experiment_id) for experiment_id in wanted}
        unfinished = [u for u in unfinished if u.split("=", 1)[-1] in keys]
    if unfinished:
        raise InvalidValueError(
            f"cannot import {os.fspath(root)!r}: the experiment folder(s) {', '.join(map(repr, unfinished[:3]))} "
            "have no manifest: an export that did not finish (or one by an older mlos_store); export the "
            "experiment again; nothing was imported")
    unknown = [experiment_id for experiment_id in wanted if experiment_id not in manifests]
    if unknown:
        raise UnknownObjectError(f"{os.fspath(root)!r} holds no experiment {', '.join(map(repr, unknown))}")


def _checked_configs(root: Path, manifest: Manifest, sql: Catalog) -> pa.Table | None:
    """The experiment's config rows, their hashes checked against their values and the trials' hashes."""
    by_folder = {t.folder: t for t in tables(sql)}
    configs, trials = _read(root, manifest, by_folder["tunable_param"]), _read(root, manifest, by_folder["trial"])
    rows = None if configs is None else configs.to_table()
    hashes = set() if rows is None else check_config_hashes(rows.rename_columns(
        ["name" if c == "tunable_name" else c for c in rows.column_names]), os.fspath(root))
    used = set() if trials is None else set(trials.to_table(columns=["config_hash"]).column("config_hash").to_pylist())
    if not used <= hashes:
        raise InvalidValueError(
            f"cannot import {os.fspath(root)!r}: trials of {manifest.experiment_id!r} use config hashes the "
            f"export holds no values for ({', '.join(map(repr, sorted(map(str, used - hashes))[:3]))}); "
            "nothing was imported")
    return rows


def _import_one(engine: Engine, root: Path, manifest: Manifest, configs: pa.Table | None, steps: Steps) -> None:
    experiment_id = manifest.experiment_id
    for table in tables(engine.catalog):
        _import_table(engine, root, manifest, table, configs)
        steps.step(None)
    orphans = engine.fetch_table(engine.catalog.import_orphan_rows, experiment_id=experiment_id).to_pylist()
    if orphans:
        listed = ", ".join(f"{o['row_count']} {o['table_name']} row(s) of trial {o['trial_id']}" for o in orphans[:5])
        raise InvalidValueError(
            f"cannot import {os.fspath(root)!r}: experiment {experiment_id!r} has rows of trials its trial table "
            f"lacks ({listed}); nothing was imported")


def _import_table(engine: Engine, root: Path, manifest: Manifest, table: Table, configs: pa.Table | None) -> None:
    experiment_id = manifest.experiment_id
    if table.folder == "tunable_param":  # configs first, so their params and trials find this store's ids
        if configs is not None:
            engine.ingest(engine.catalog.import_tunable_config_insert, configs)
            engine.ingest(table.insert, configs)
        return
    dataset = _read(root, manifest, table)
    if dataset is None:
        return  # the export had no rows for this table
    what = f"cannot import {os.fspath(root)!r}: {table.folder}"
    if table.partition:  # telemetry: streamed, numbered
        times = [f.name for f in dataset.schema if pa.types.is_timestamp(f.type)]
        for batch in dataset.scanner(columns=times).to_batches():  # checked before the ingest, which streams
            _check_times(batch, what)
        engine.ingest(table.insert, _numbered(dataset.scanner().to_reader()), experiment_id=experiment_id)
    else:
        rows = dataset.to_table()
        _check_times(rows, what)
        engine.ingest(table.insert, rows, experiment_id=experiment_id)


def _check_times(rows: pa.Table | pa.RecordBatch, what: str) -> None:
    """Refuse timestamps outside years 1 to 9999: a crafted file's later ones would be stored and then
    break every read of them (as ``update_telemetry`` refuses them)."""
    for field in rows.schema:
        if pa.types.is_timestamp(field.type):
            check_timestamp_range(pc.drop_null(rows.column(field.name)), f"{what} column {field.name!r}")


def _numbered(reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
    """The rows with ``row_idx``, their place in the files, so a repeated point keeps its first value."""
    schema = reader.schema.append(pa.field("row_idx", pa.int64()))

    def batches() -> Iterator[pa.RecordBatch]:
        start, counting = 0, pa.array([], pa.int64())
        for batch in reader:
            if len(counting) < batch.num_rows:  # 0, 1, 2, ... made once per batch size, then sliced
                counting = pa.array(range(batch.num_rows), pa.int64())
            index = pc.add(counting.slice(0, batch.num_rows), pa.scalar(start, pa.int64()))
            yield pa.RecordBatch.from_arrays([*batch.columns, index], schema=schema)
            start += batch.num_rows

    return pa.RecordBatchReader.from_batches(schema, batches())


def _read(root: Path, manifest: Manifest, table: Table) -> ds.Dataset | None:
    """The rows of one table of the experiment, from exactly the files its manifest lists (None: no rows)."""
    files = [os.fspath(path) for path, _ in manifest.files[table.folder]]
    if not files:
        return None
    return _ds().dataset(files, format="parquet", partitioning=_partitioning(table.partition),
                         partition_base_dir=os.fspath(_experiment_folder(root, table, manifest.key)))
