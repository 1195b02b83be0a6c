"""Store files as each earlier schema version wrote them, built from the catalog at that version.

A store at version N is made the way a user's file came to be: the
schema files 0001..N applied by the engine one version at a time (from a
copy of ``sql/`` cut to that version), and after each version k the rows
of ``tests/upgrade/000k.sql`` (if there is one) written with the SQL valid
at version k. So a store at version 4 holds rows written at version 1 and
migrated by 0002..0004 before the current code ever opens it.

The rows are SQL text rather than committed store files: a reviewer reads
them, a DuckDB release that changes the file format cannot strand them,
and a migration added later (0006, ...) is covered with no new file, since
every version below the current one is built from the same fixtures.

Run as a script to keep one for inspection:
``python tests/store_versions.py 3 /tmp/store-v3.duckdb``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import duckdb

from mlos_store.catalog import Catalog, load_catalog_from
from mlos_store.engine import Engine

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
#: ``NNNN.sql``: rows a store could first hold at schema version NNNN, run once at that version.
FIXTURE_DIR = Path(__file__).resolve().parent / "upgrade"


def catalog_at(version: int, workdir: Path) -> Catalog:
    """The catalog as it was at ``version``: today's queries over the schema files up to it.

    Only the engine's bookkeeping queries (version probe, migration record)
    run against such a catalog, and they read tables that exist since 0001.
    """
    root = workdir / f"sql_v{version}"
    if not root.exists():
        shutil.copytree(SQL_DIR, root, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
        for later in sorted((root / "schema").glob("*.sql"))[version:]:
            later.unlink()
    catalog = load_catalog_from(root)
    assert catalog.schema_version == version, (version, catalog.schema_version)
    return catalog


def fixtures() -> dict[int, Path]:
    """The row fixtures by the schema version each is written at."""
    return {int(path.stem): path for path in sorted(FIXTURE_DIR.glob("*.sql"))}


def build_stores(versions: list[int], workdir: Path) -> dict[int, Path]:
    """One store file per version in ``versions``, each written as that version's code left it."""
    path = workdir / "growing.duckdb"
    rows = fixtures()
    stores: dict[int, Path] = {}
    for version in range(1, max(versions) + 1):
        Engine(path, catalog=catalog_at(version, workdir), mode="exclusive").close()  # migrate to it
        if version in rows:
            write_rows(path, rows[version])
        if version in versions:
            stores[version] = workdir / f"store_v{version}.duckdb"
            shutil.copyfile(path, stores[version])
    return stores


def write_rows(path: Path, fixture: Path) -> None:
    """Run a fixture file's statements on the store, in one transaction."""
    con = duckdb.connect(str(path))
    try:
        con.begin()
        con.execute(fixture.read_text())
        con.commit()
    finally:
        con.close()


if __name__ == "__main__":
    wanted, target = int(sys.argv[1]), Path(sys.argv[2])
    work = target.parent / f".{target.name}.build"
    work.mkdir(parents=True)
    try:
        shutil.move(build_stores([wanted], work)[wanted], target)
    finally:
        shutil.rmtree(work)
