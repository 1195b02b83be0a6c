"""The Parquet lake (layout 2): where an export puts its files and manifests, and how a lake is read back.

A lake is a folder on any filesystem pyarrow reaches (a local path, a
``pyarrow.fs.FileSystem`` with a path in it, or a URL such as
``s3://bucket/lake``), shared by every store that exports into it::

    <lake>/_mlos_store.json                                the lake: format, layout version,
                                                           each dataset's Arrow schema
    <lake>/_mlos_store/<source key>/<experiment key>.json  one store's export of one experiment:
                                                           its files, row counts, high-water marks
    <lake>/<dataset>/experiment_key=<key>/source=<source key>/part-....parquet

The datasets are ``DATASETS`` (one per stored table; ``telemetry`` holds
the trial points). Every file holds its rows' ``experiment_id`` (and
``trial_id`` where rows belong to a trial), so no reader needs the
partition folders' values, which engines type-guess. A key is the name's
letters, digits, ``_`` and ``-`` (at most 40) and 16 hex digits of its
SHA-256: safe in any path, ASCII, and never a number or a date to a reader.

Each exporting store is a *source* with its own folders and manifests, so
several stores export one experiment into one lake without touching each
other's files; an import combines the sources of an experiment. An export
of one experiment from one source writes only what changed since that
source's last export: new telemetry as new files (by the store's rowids,
which only grow), a small table as one new file when its content changed.
Every data file is written under a hidden temporary name and renamed into
place; the manifest is written the same way, after its files; files the
new manifest no longer lists are removed last. Readers that follow the
manifests (``import_parquet``) see one finished export or the one before;
readers that list folders (Spark) see whole files only.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import posixpath
import re
import socket
import uuid
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs

from .errors import InvalidValueError, NotAStoreError, UnknownObjectError
from .values import experiment_id_list

if TYPE_CHECKING:
    import pyarrow.dataset as ds

    from .engine import Engine

LAKE_FORMAT = "mlos_store lake"
#: The layout this module writes and reads; a lake of another version is refused.
LAYOUT_VERSION = 2
ROOT_MANIFEST = "_mlos_store.json"
MANIFESTS = "_mlos_store"
PARTITION_KEYS = ("experiment_key", "source")
#: Telemetry rows per data file: few, large files for lake engines (not one per trial).
TELEMETRY_ROWS_PER_FILE = 4_000_000
#: Small telemetry files (below a quarter of TELEMETRY_ROWS_PER_FILE) a source keeps per experiment before
#: its next export writes the telemetry whole again, as few large files (many increments, compacted).
COMPACT_AFTER_SMALL_FILES = 64
#: Rows DuckDB hands over per batch while exporting.
EXPORT_BATCH_ROWS = 100_000
_READABLE_KEY_CHARS = 40
_TS = pa.timestamp("us", tz="UTC")
_VALUE = [("value_kind", pa.string()), ("value", pa.float64()), ("value_int", pa.int64()),
          ("value_text", pa.string())]

#: Every dataset of a lake and the Arrow schema of its files, in import order
#: (configs before the trials that use them). The files may hold more columns
#: (ignored); these must be there, with these types.
DATASETS: dict[str, pa.Schema] = {
    "experiment": pa.schema([("experiment_id", pa.string()), ("description", pa.string()),
                             ("root_env_config", pa.string()), ("git_repo", pa.string()),
                             ("git_commit", pa.string()), ("first_trial_id", pa.int64()), ("ts_created", _TS)]),
    "objective": pa.schema([("experiment_id", pa.string()), ("optimization_target", pa.string()),
                            ("optimization_direction", pa.string()), ("ordinal", pa.int32())]),
    "experiment_tunable": pa.schema([("experiment_id", pa.string()), ("tunable_name", pa.string()), *_VALUE]),
    "tunable_param": pa.schema([("experiment_id", pa.string()), ("config_id", pa.int64()),
                                ("config_hash", pa.string()), ("ts_created", _TS), ("tunable_name", pa.string()),
                                *_VALUE]),
    "trial": pa.schema([("experiment_id", pa.string()), ("trial_id", pa.int64()), ("config_id", pa.int64()),
                        ("config_hash", pa.string()), ("status", pa.string()), ("ts_created", _TS),
                        ("ts_start", _TS), ("ts_end", _TS), ("trial_runner_id", pa.int32())]),
    "trial_param": pa.schema([("experiment_id", pa.string()), ("trial_id", pa.int64()), ("param_name", pa.string()),
                              *_VALUE]),
    "trial_status": pa.schema([("experiment_id", pa.string()), ("trial_id", pa.int64()), ("seq", pa.int64()),
                               ("ts", _TS), ("status", pa.string())]),
    "trial_result": pa.schema([("experiment_id", pa.string()), ("trial_id", pa.int64()), ("metric", pa.string()),
                               *_VALUE]),
    "telemetry": pa.schema([("experiment_id", pa.string()), ("trial_id", pa.int64()), ("ts", _TS),
                            ("metric", pa.string()), *_VALUE]),
}
#: The datasets exported whole (rewritten when changed); telemetry grows by new files.
SMALL_DATASETS = tuple(name for name in DATASETS if name != "telemetry")


def _pq() -> Any:
    """``pyarrow.parquet``, imported when first needed (it may import pandas; mlos_store must not at import)."""
    import pyarrow.parquet

    return pyarrow.parquet


def _ds() -> Any:
    import pyarrow.dataset

    return pyarrow.dataset


def folder_key(name: str) -> str:
    """A name in paths: readable, unique by its hash, short, ASCII, and never special or typed by a reader."""
    readable = re.sub(r"[^A-Za-z0-9_-]", "_", name)[:_READABLE_KEY_CHARS]
    return f"{readable}-{hashlib.sha256(name.encode()).hexdigest()[:16]}"


def root_manifest() -> dict[str, Any]:
    """What ``_mlos_store.json`` says: the same for every store writing this layout, so concurrent writers agree."""
    return {"format": LAKE_FORMAT, "layout_version": LAYOUT_VERSION,
            "manifests": f"{MANIFESTS}/<source key>/<experiment key>.json",
            "partitioning": [{"name": key, "type": "string"} for key in PARTITION_KEYS],
            "datasets": {name: [{"name": f.name, "type": str(f.type)} for f in schema]
                         for name, schema in DATASETS.items()}}


# ---------------------------------------------------------------- where a lake is


@dataclass(frozen=True)
class Lake:
    """A lake's filesystem and root folder in it; ``shown`` is how messages name it."""

    fs: pafs.FileSystem
    root: str
    shown: str

    def path(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts) if self.root else posixpath.join(*parts)

    def relative(self, path: str) -> str:
        return posixpath.relpath(path, self.root) if self.root else path

    def kind(self, path: str) -> pafs.FileType:
        return self.fs.get_file_info(path).type


def open_lake(path: str | os.PathLike[str], filesystem: Any = None) -> Lake:
    """The lake at ``path``: on ``filesystem`` (a ``pyarrow.fs.FileSystem`` or an fsspec one) if given,
    else a URL's filesystem (``s3://...``, ``file://...``), else a local folder."""
    text = os.fspath(path)
    if filesystem is not None:
        return Lake(_arrow_filesystem(filesystem), text.rstrip("/") if text not in ("", "/") else text, text)
    if "://" in text:
        try:
            fs, root = pafs.FileSystem.from_uri(text)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
            try:
                import fsspec  # optional: URLs pyarrow has no filesystem for
            except ImportError:
                raise InvalidValueError(f"cannot use {text!r}: pyarrow has no filesystem for it ({exc}) and "
                                        "fsspec is not installed") from exc
            spec_fs, root = fsspec.core.url_to_fs(text)
            fs = _arrow_filesystem(spec_fs)
        return Lake(fs, root.rstrip("/"), text)
    return Lake(pafs.LocalFileSystem(), os.path.abspath(text), text)


def _arrow_filesystem(filesystem: Any) -> pafs.FileSystem:
    if isinstance(filesystem, pafs.FileSystem):
        return filesystem
    if hasattr(filesystem, "protocol") and hasattr(filesystem, "open"):  # an fsspec filesystem
        return pafs.PyFileSystem(pafs.FSSpecHandler(filesystem))
    raise InvalidValueError(f"filesystem must be a pyarrow.fs.FileSystem or an fsspec filesystem, "
                            f"not {type(filesystem).__name__}")


def _write_atomically(lake: Lake, path: str, write: Any) -> None:
    """Call ``write(stream)`` on a hidden temporary file beside ``path``, then rename it to ``path``.

    A reader sees the whole file or none (on a local disk the data is
    flushed first, so a crash does not leave a manifest naming lost data).
    """
    folder, name = posixpath.split(path)
    temporary = posixpath.join(folder, f".{name}.{uuid.uuid4().hex[:8]}.tmp")
    lake.fs.create_dir(folder, recursive=True)
    try:
        with lake.fs.open_output_stream(temporary) as stream:
            write(stream)
        if isinstance(lake.fs, pafs.LocalFileSystem):
            descriptor = os.open(temporary, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        lake.fs.move(temporary, path)
    except BaseException:
        if lake.kind(temporary) == pafs.FileType.File:
            lake.fs.delete_file(temporary)
        raise


def _write_json(lake: Lake, path: str, content: dict[str, Any]) -> None:
    data = json.dumps(content, ensure_ascii=False, indent=1).encode()
    _write_atomically(lake, path, lambda stream: stream.write(data))


def _write_parquet(lake: Lake, path: str, batches: Iterable[pa.RecordBatch], schema: pa.Schema) -> int:
    """One Parquet file of ``batches`` at ``path`` (atomically); its row count."""
    rows = 0

    def write(stream: Any) -> None:
        nonlocal rows
        with _pq().ParquetWriter(stream, schema) as writer:
            for batch in batches:
                writer.write_batch(batch.cast(schema))
                rows += batch.num_rows

    _write_atomically(lake, path, write)
    return rows


# ---------------------------------------------------------------- export


def default_source(engine: Engine) -> str:
    """A store's name as a source: its host and file (an in-memory store: one name per engine)."""
    if engine.in_memory:
        return _memory_sources.setdefault(engine, f"{socket.gethostname()}:memory:{uuid.uuid4().hex[:12]}")
    return f"{socket.gethostname()}:{engine.file}"


_memory_sources: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()


class _Snapshot(NamedTuple):
    """One export's reading of the store: the small tables and the telemetry bound, all of one moment."""

    tables: dict[str, pa.Table]
    next_rowid: int
    rows_before: int  # points below the previous export's mark, now


def export_experiment(engine: Engine, experiment_id: str, path: str | os.PathLike[str], *, filesystem: Any = None,
                      source: str | None = None, step: Any = None) -> None:
    """Write what changed of one experiment since this source's last export into the lake at ``path``.

    ``source`` names the exporting store in the lake (default: host and
    store file); one export per source and experiment at a time.
    ``step()`` is called after each dataset. Raises UnknownObjectError for
    an unknown id, InvalidValueError for a path that is a file or a lake of
    another layout.
    """
    sql = engine.catalog
    if not engine.fetch_value(sql.experiment_exists, experiment_id=experiment_id):
        raise UnknownObjectError(f"experiment {experiment_id!r} is not stored")
    lake = open_lake(path, filesystem)
    _check_writable(lake)
    source = default_source(engine) if source is None else source
    if not isinstance(source, str) or not source:
        raise InvalidValueError(f"export_parquet source must be a non-empty string, not {source!r}")
    place = _Place(lake, folder_key(experiment_id), folder_key(source))
    if lake.kind(lake.path(ROOT_MANIFEST)) != pafs.FileType.File:  # first: an unfinished export reads as such
        _write_json(lake, lake.path(ROOT_MANIFEST), root_manifest())
    previous = _previous_export(place)
    snapshot = _read_snapshot(engine, experiment_id, previous)
    listed: dict[str, Any] = {}
    for name in SMALL_DATASETS:
        listed[name] = _export_small(place, name, snapshot.tables[name], previous)
        if step is not None:
            step()
    listed["telemetry"], marks = _export_telemetry(engine, experiment_id, place, snapshot, previous)
    trials, history = snapshot.tables["trial"], snapshot.tables["trial_status"]
    marks["max_trial_id"] = pc.max(trials.column("trial_id")).as_py() if trials.num_rows else None
    marks["max_status_seq"] = pc.max(history.column("seq")).as_py() if history.num_rows else None
    _write_json(lake, place.manifest, {
        "format": LAKE_FORMAT, "layout_version": LAYOUT_VERSION, "source": source, "source_key": place.source_key,
        "experiment_id": experiment_id, "experiment_key": place.experiment_key,
        "exported_at": datetime.now(UTC).isoformat(), "high_water_marks": marks, "datasets": listed})
    _remove_unlisted(place, listed)
    if step is not None:
        step()


class _Place(NamedTuple):
    """Where one source's export of one experiment lives in a lake."""

    lake: Lake
    experiment_key: str
    source_key: str

    def folder(self, dataset: str) -> str:
        return self.lake.path(dataset, f"experiment_key={self.experiment_key}", f"source={self.source_key}")

    @property
    def manifest(self) -> str:
        return self.lake.path(MANIFESTS, self.source_key, f"{self.experiment_key}.json")


def _check_writable(lake: Lake) -> None:
    """Refuse a path that is a file, and a folder holding a lake of another layout (mixing would corrupt both)."""
    if lake.root and lake.kind(lake.root) == pafs.FileType.File:
        raise InvalidValueError(f"cannot export to {lake.shown!r}: it is a file, not a folder")
    if lake.kind(lake.path("_manifests")) == pafs.FileType.Directory:
        raise InvalidValueError(f"cannot export to {lake.shown!r}: it holds an export of layout 1 (_manifests/); "
                                "export into a new folder")
    if lake.kind(lake.path(ROOT_MANIFEST)) == pafs.FileType.File:
        _read_root_manifest(lake, "export to")


def _previous_export(place: _Place) -> dict[str, Any] | None:
    """This source's last finished export of the experiment, if its manifest reads as one of this layout."""
    if place.lake.kind(place.manifest) != pafs.FileType.File:
        return None
    try:
        with place.lake.fs.open_input_stream(place.manifest) as stream:
            content = json.loads(stream.read())
    except (OSError, ValueError):
        return None  # unreadable: export everything again
    return content if _continuable(content) else None


def _continuable(content: Any) -> bool:
    """Whether a manifest holds what an incremental export builds on (else everything is exported again)."""
    if not isinstance(content, dict) or content.get("layout_version") != LAYOUT_VERSION:
        return False
    marks, listed = content.get("high_water_marks"), content.get("datasets")
    return (isinstance(marks, dict) and isinstance(marks.get("telemetry_rowid"), int)
            and isinstance(listed, dict) and all(
                isinstance(listed.get(name), dict) and isinstance(listed[name].get("rows"), int)
                and isinstance(listed[name].get("files"), list) for name in DATASETS))


def _read_snapshot(engine: Engine, experiment_id: str, previous: dict[str, Any] | None) -> _Snapshot:
    """The small tables and the telemetry mark in one transaction: a consistent moment of the store
    (no trial without its history and results, no telemetry of a trial the trial table lacks)."""
    sql = engine.catalog
    queries = {"experiment": sql.export_experiment, "objective": sql.export_objective,
               "experiment_tunable": sql.export_experiment_tunable, "tunable_param": sql.export_tunable_param,
               "trial": sql.export_trial, "trial_param": sql.export_trial_param,
               "trial_status": sql.export_trial_status, "trial_result": sql.export_trial_result}
    exported_before = previous["high_water_marks"]["telemetry_rowid"] if previous else 0
    with engine.transaction():
        mark = engine.fetch_one(sql.export_telemetry_mark, experiment_id=experiment_id,
                                exported_before=exported_before)
        tables = {name: engine.fetch_table(queries[name], experiment_id=experiment_id) for name in SMALL_DATASETS}
    assert mark is not None
    return _Snapshot(tables, int(mark[0]), int(mark[1]))


def _export_small(place: _Place, name: str, rows: pa.Table, previous: dict[str, Any] | None) -> dict[str, Any]:
    """A small table's entry: the last export's if its content is unchanged, else one new file (none if empty).

    The table is encoded as Parquet in memory first: those bytes tell
    whether it changed (Arrow buffers may differ under null slots; Parquet
    stores no such slot) and are the file written.
    """
    sink = pa.BufferOutputStream()
    _pq().write_table(rows.cast(DATASETS[name]), sink)
    encoded = sink.getvalue()
    digest = hashlib.sha256(encoded).hexdigest()
    if previous is not None and previous["datasets"].get(name, {}).get("digest") == digest:
        return dict(previous["datasets"][name])
    path = posixpath.join(place.folder(name), f"part-{digest[:16]}.parquet")  # also empty: readers find the folder
    _write_atomically(place.lake, path, lambda stream: stream.write(encoded))
    entry = {"path": place.lake.relative(path), "rows": rows.num_rows}
    return {"rows": rows.num_rows, "digest": digest, "files": [entry]}


def _export_telemetry(engine: Engine, experiment_id: str, place: _Place, snapshot: _Snapshot,
                      previous: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The points stored since the last export as new files (all of them again if rows below its mark changed)."""
    old = previous["datasets"]["telemetry"] if previous else None
    start = 0
    kept: list[dict[str, Any]] = []
    if previous is not None and old is not None and snapshot.rows_before == old["rows"] and not _fragmented(old):
        start, kept = previous["high_water_marks"]["telemetry_rowid"], list(old["files"])
    files = kept
    if snapshot.next_rowid > start:
        reader = engine.stream(engine.catalog.export_telemetry, batch_size=EXPORT_BATCH_ROWS,
                               experiment_id=experiment_id, from_rowid=start, to_rowid=snapshot.next_rowid)
        files = kept + _write_chunks(place, reader, f"part-{start:019d}-{uuid.uuid4().hex[:8]}")
    if not files:  # no points yet: one empty file, so readers find the dataset
        path = posixpath.join(place.folder("telemetry"), "part-empty.parquet")
        _write_parquet(place.lake, path, [], DATASETS["telemetry"])
        files = [{"path": place.lake.relative(path), "rows": 0}]
    rows = sum(f["rows"] for f in files)
    return {"rows": rows, "files": files}, {"telemetry_rowid": max(start, snapshot.next_rowid), "telemetry_rows": rows}


def _fragmented(listed: dict[str, Any]) -> bool:
    """Whether incremental exports left so many small telemetry files that readers would pay for listing them."""
    small = sum(1 for f in listed["files"] if f["rows"] < TELEMETRY_ROWS_PER_FILE // 4)
    return small > COMPACT_AFTER_SMALL_FILES


def _write_chunks(place: _Place, reader: pa.RecordBatchReader, stem: str) -> list[dict[str, Any]]:
    """Telemetry batches as files of at most TELEMETRY_ROWS_PER_FILE rows; their entries (empty files skipped)."""
    schema = DATASETS["telemetry"]
    batches = iter(reader)
    files: list[dict[str, Any]] = []
    pending: list[pa.RecordBatch] = []
    for number in itertools.count():
        first = next(batches, None) if not pending else pending.pop()
        if first is None:
            return files
        path = posixpath.join(place.folder("telemetry"), f"{stem}-{number}.parquet")
        rows = _write_parquet(place.lake, path, _up_to(first, batches, pending), schema)
        files.append({"path": place.lake.relative(path), "rows": rows})
    raise AssertionError("unreachable: itertools.count() never ends")


def _up_to(first: pa.RecordBatch, batches: Iterator[pa.RecordBatch],
           rest: list[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """``first`` and the following batches up to TELEMETRY_ROWS_PER_FILE rows; the remainder goes to ``rest``."""
    room = TELEMETRY_ROWS_PER_FILE
    batch: pa.RecordBatch | None = first
    while batch is not None:
        if batch.num_rows > room:
            rest.append(batch.slice(room))
            yield batch.slice(0, room)
            return
        if batch.num_rows:
            yield batch
        room -= batch.num_rows
        if room == 0:
            return
        batch = next(batches, None)


def _remove_unlisted(place: _Place, listed: dict[str, Any]) -> None:
    """Remove this source's files of the experiment no manifest lists: replaced ones, and those of a killed export."""
    keep = {place.lake.path(f["path"]) for entry in listed.values() for f in entry["files"]}
    for name in DATASETS:
        folder = place.folder(name)
        if place.lake.kind(folder) != pafs.FileType.Directory:
            continue
        for info in place.lake.fs.get_file_info(pafs.FileSelector(folder)):
            if info.type == pafs.FileType.File and info.path not in keep:
                place.lake.fs.delete_file(info.path)


# ---------------------------------------------------------------- reading a lake


class Manifest(NamedTuple):
    """One experiment of a lake, checked: its files by dataset, from every source that exported it."""

    experiment_id: str
    key: str
    files: dict[str, list[tuple[str, int]]]  # dataset -> (path in the lake's filesystem, rows)
    lake: Lake
    sources: tuple[str, ...]  # the source keys that exported it


def _refuse(lake: Lake, what: str) -> InvalidValueError:
    return InvalidValueError(f"cannot import {lake.shown!r}: {what}; nothing was imported")


def _read_json(lake: Lake, path: str) -> Any:
    _refuse_unless_file(lake, path)
    try:
        with lake.fs.open_input_stream(path) as stream:
            return json.loads(stream.read().decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _refuse(lake, f"the manifest {lake.relative(path)!r} cannot be read ({exc})") from exc


def _refuse_unless_file(lake: Lake, path: str) -> None:
    """Refuse, from its metadata alone, a path that is not a regular file: a FIFO would block a reader."""
    kind = lake.kind(path)
    if kind != pafs.FileType.File:
        missing = "no such file" if kind == pafs.FileType.NotFound else "not a regular file"
        raise NotAStoreError(f"cannot import {path!r}: {missing}; it was not opened and nothing was imported")


def _read_root_manifest(lake: Lake, doing: str = "import") -> None:
    """Refuse a lake whose ``_mlos_store.json`` is not this layout: another format, version or dataset schemas."""
    content = _read_json(lake, lake.path(ROOT_MANIFEST))
    where = f"cannot {doing} {lake.shown!r}: its {ROOT_MANIFEST}"
    if not isinstance(content, dict) or content.get("format") != LAKE_FORMAT:
        raise InvalidValueError(f"{where} is not an mlos_store lake manifest; nothing was imported")
    version = content.get("layout_version")
    if version != LAYOUT_VERSION:
        raise InvalidValueError(f"{where} has layout version {version!r}, this mlos_store reads layout "
                                f"{LAYOUT_VERSION}; nothing was imported")
    expected = root_manifest()["datasets"]
    datasets = content.get("datasets")
    for name, columns in expected.items():
        if not isinstance(datasets, dict) or datasets.get(name) != columns:
            raise InvalidValueError(f"{where} describes the dataset {name!r} otherwise than layout "
                                    f"{LAYOUT_VERSION} ({columns}); nothing was imported")


def lake_experiments(lake: Lake, experiment_ids: Iterable[str] | None = None) -> list[Manifest]:
    """The experiments to import from a lake (all, or ``experiment_ids``), every check done before any row is read.

    Refused: a folder that is no lake of this layout (a layout 1 export is
    named as such), a manifest that is unreadable or not this layout's, an
    experiment folder of a source that has no manifest for it (an export
    that did not finish), a listed file that is not a regular file, is not
    whole, holds other rows than listed, or lacks a column of its dataset or
    has it with another Arrow type.
    """
    if lake.kind(lake.path(ROOT_MANIFEST)) != pafs.FileType.File:
        if lake.kind(lake.path("_manifests")) == pafs.FileType.Directory:
            raise InvalidValueError(f"cannot import {lake.shown!r}: it is an export of layout 1 (_manifests/), "
                                    f"this mlos_store reads layout {LAYOUT_VERSION}: export the experiments "
                                    "again with it; nothing was imported")
        raise InvalidValueError(f"{lake.shown!r} is not an mlos_store Parquet export (no {ROOT_MANIFEST})")
    _read_root_manifest(lake)
    found = _manifests(lake)
    wanted = (sorted(found) if experiment_ids is None
              else experiment_id_list(experiment_ids, "import_parquet experiment_ids"))
    _refuse_unfinished(lake, found, wanted, everything=experiment_ids is None)
    chosen = [found[experiment_id] for experiment_id in wanted]
    for manifest in chosen:
        _check_files(lake, manifest)
    return chosen


def _manifests(lake: Lake) -> dict[str, Manifest]:
    """Every experiment the lake's manifests list, the files of all its sources together, by id."""
    folder = lake.path(MANIFESTS)
    if lake.kind(folder) != pafs.FileType.Directory:
        return {}
    files: dict[str, dict[str, list[tuple[str, int]]]] = {}
    sources: dict[str, list[str]] = {}
    for info in sorted(lake.fs.get_file_info(pafs.FileSelector(folder, recursive=True)), key=lambda i: i.path):
        name = posixpath.basename(info.path)
        if name.endswith(".json") and not name.startswith(".") and info.type != pafs.FileType.Directory:
            experiment_id, listed = _read_manifest(lake, info.path)
            mine = files.setdefault(experiment_id, {name: [] for name in DATASETS})
            for dataset, entries in listed.items():
                mine[dataset].extend(entries)
            sources.setdefault(experiment_id, []).append(posixpath.basename(posixpath.dirname(info.path)))
    return {e: Manifest(e, folder_key(e), listed, lake, tuple(sources[e])) for e, listed in files.items()}


def _read_manifest(lake: Lake, path: str) -> tuple[str, dict[str, list[tuple[str, int]]]]:
    """One source's manifest of one experiment, checked: the experiment id and its files by dataset."""
    content = _read_json(lake, path)
    where = f"the manifest {lake.relative(path)!r}"
    if not isinstance(content, dict) or content.get("format") != LAKE_FORMAT:
        raise _refuse(lake, f"{where} is not an mlos_store lake manifest")
    version = content.get("layout_version")
    if version != LAYOUT_VERSION:
        raise _refuse(lake, f"{where} has layout version {version!r}, this mlos_store reads layout {LAYOUT_VERSION}")
    experiment_id, source_key = content.get("experiment_id"), content.get("source_key")
    listed = content.get("datasets")
    if (not isinstance(experiment_id, str) or not isinstance(source_key, str) or not isinstance(listed, dict)
            or path != lake.path(MANIFESTS, source_key, f"{folder_key(experiment_id)}.json")
            or sorted(listed) != sorted(DATASETS)):
        raise _refuse(lake, f"{where} does not describe one source's export of one experiment")
    place = _Place(lake, folder_key(experiment_id), source_key)
    files = {name: _listed_files(lake, where, place, name, listed[name]) for name in DATASETS}
    if not any(rows for _, rows in files["experiment"]):  # every other row would be an orphan
        raise _refuse(lake, f"{where}: the export of {experiment_id!r} holds no experiment record")
    return experiment_id, files


def _listed_files(lake: Lake, where: str, place: _Place, name: str, listed: Any) -> list[tuple[str, int]]:
    """The files of one dataset a manifest lists, each inside that dataset's folder of its source and experiment."""
    inside = lake.relative(place.folder(name))
    entries = listed.get("files") if isinstance(listed, dict) else None
    if not isinstance(entries, list):
        raise _refuse(lake, f"{where} lists no files for {name!r}")
    files = []
    for entry in entries:
        relative = entry.get("path") if isinstance(entry, dict) else None
        rows = entry.get("rows") if isinstance(entry, dict) else None
        if (not isinstance(relative, str) or posixpath.dirname(relative) != inside or ".." in relative.split("/")
                or not isinstance(rows, int) or rows < 0):
            raise _refuse(lake, f"{where} lists a file outside {inside!r} or without a row count: {entry!r}")
        files.append((lake.path(relative), rows))
    if sum(rows for _, rows in files) != listed.get("rows"):
        raise _refuse(lake, f"{where}: the files of {name!r} do not add up to its row count")
    return files


def _refuse_unfinished(lake: Lake, found: dict[str, Manifest], wanted: list[str], *, everything: bool) -> None:
    """Refuse experiment folders of a source without its manifest for them (an export killed before its end)."""
    finished = _manifest_places(lake)
    keys = None if everything else {folder_key(e) for e in wanted}
    unfinished = sorted({f"{key}/{source}" for key, source in _data_places(lake)
                         if (key, source) not in finished and (keys is None or key in keys)})
    if unfinished:
        raise _refuse(lake, f"the experiment folder(s) {', '.join(map(repr, unfinished[:3]))} have no manifest: an "
                            "export that did not finish; export the experiment again")
    unknown = [experiment_id for experiment_id in wanted if experiment_id not in found]
    if unknown:
        raise UnknownObjectError(f"{lake.shown!r} holds no experiment {', '.join(map(repr, unknown))}")


def _manifest_places(lake: Lake) -> set[tuple[str, str]]:
    """(experiment key, source key) of every manifest file."""
    folder = lake.path(MANIFESTS)
    if lake.kind(folder) != pafs.FileType.Directory:
        return set()
    return {(posixpath.basename(i.path).removesuffix(".json"), posixpath.basename(posixpath.dirname(i.path)))
            for i in lake.fs.get_file_info(pafs.FileSelector(folder, recursive=True))
            if i.path.endswith(".json") and not posixpath.basename(i.path).startswith(".")}


def _data_places(lake: Lake) -> set[tuple[str, str]]:
    """(experiment key, source key) of every data folder of every dataset."""
    places = set()
    for name in DATASETS:
        for experiment in _subfolders(lake, lake.path(name), "experiment_key="):
            for source in _subfolders(lake, experiment, "source="):
                places.add((posixpath.basename(experiment).removeprefix("experiment_key="),
                            posixpath.basename(source).removeprefix("source=")))
    return places


def _subfolders(lake: Lake, folder: str, prefix: str) -> list[str]:
    if lake.kind(folder) != pafs.FileType.Directory:
        return []
    return [i.path for i in lake.fs.get_file_info(pafs.FileSelector(folder))
            if i.type == pafs.FileType.Directory and posixpath.basename(i.path).startswith(prefix)]


def _check_files(lake: Lake, manifest: Manifest) -> None:
    """Each listed file: a regular file, whole, with the rows its manifest says and its dataset's columns and types."""
    for name, files in manifest.files.items():
        for path, rows in files:
            _refuse_unless_file(lake, path)
            try:
                with lake.fs.open_input_file(path) as file:
                    metadata = _pq().read_metadata(file)
                    schema = metadata.schema.to_arrow_schema()
            except (pa.ArrowException, OSError) as exc:
                raise _refuse(lake, f"{path!r} is not a whole Parquet file (truncated or damaged: {exc})") from exc
            if metadata.num_rows != rows:
                raise _refuse(lake, f"{path!r} holds {metadata.num_rows} rows, its manifest says {rows}")
            _check_schema(lake, name, path, schema)


def _check_schema(lake: Lake, name: str, path: str, schema: pa.Schema) -> None:
    for field in DATASETS[name]:
        index = schema.get_field_index(field.name)
        if index < 0:
            raise _refuse(lake, f"{path!r} ({name}) has no column {field.name!r}")
        if not schema.field(index).type.equals(field.type):
            raise _refuse(lake, f"{path!r} ({name}) column {field.name!r} is {schema.field(index).type}, "
                                f"layout {LAYOUT_VERSION} has {field.type}")


def dataset(manifest: Manifest, name: str) -> ds.Dataset | None:
    """The rows of one dataset of the experiment, from exactly the files its manifests list (None: no rows)."""
    files = [path for path, _ in manifest.files[name]]
    if not files:
        return None
    return _ds().dataset(files, schema=DATASETS[name], format="parquet", filesystem=manifest.lake.fs)
