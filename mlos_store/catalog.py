"""Loads the SQL catalog: numbered schema files and annotated named queries.

A query file holds statements introduced by a header comment::

    -- name: trial_insert :value
    -- One or more doc lines saying why the statement exists.
    INSERT INTO ...;

The kind after the name says what running it returns (see ``KINDS``). The
folder is parsed and checked once, when first loaded: unique names, known
kinds, parameters declared by their ``$name`` placeholders, so a broken file
fails at import with its file and line, not when a query first runs.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from typing import Any

from .errors import CatalogError

#: Result kinds: ``arrow`` a table (or a record-batch stream), ``one`` one row
#: or None, ``value`` the first column of the only row, ``count`` the number
#: of rows an INSERT/UPDATE/DELETE changed, ``none`` nothing,
#: ``ingest`` nothing, reading Arrow rows registered as ``incoming``,
#: ``rows`` nothing, reading the few Arrow rows of one call bound as one
#: list parameter per column (``unnest($name)``), which skips the cost of
#: registering a table (about 1 ms a call here).
KINDS = ("arrow", "one", "value", "count", "none", "ingest", "rows")

#: The kinds of query each Engine method runs: the engine refuses any other
#: kind when the call runs, and ``tests/test_catalog.py`` checks every call in
#: the package against this before anything runs (and the engine's own checks
#: against it). ``attached`` takes two queries, its attach and its detach; the
#: private ``_run`` runs any kind for the methods above.
ENGINE_METHOD_KINDS: dict[str, frozenset[str]] = {
    "fetch_table": frozenset({"arrow"}),
    "stream": frozenset({"arrow"}),
    "fetch_one": frozenset({"one"}),
    "fetch_value": frozenset({"value"}),
    "count": frozenset({"count"}),
    "execute": frozenset({"none"}),
    "ingest": frozenset({"ingest"}),
    "insert_rows": frozenset({"rows"}),
    "attached": frozenset({"none"}),
    "_fetch_row": frozenset({"one"}),
    "_run": frozenset(KINDS),
}

_HEADER = re.compile(r"^--\s*name:\s*(?P<name>\w+)\s+:(?P<kind>\w+)\s*$")
_MIGRATION_FILE = re.compile(r"^(?P<version>\d{4})_(?P<name>\w+)\.sql$")
# Placeholders outside quoted text and comments.
_LEXEME = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|\$(\w+)")


@dataclass(frozen=True)
class Query:
    """One named statement, with where it was defined."""

    name: str
    kind: str
    sql: str
    params: frozenset[str]
    doc: str
    source: str  # file:line of the header, for error messages

    def __str__(self) -> str:
        return f"{self.name} ({self.source})"


@dataclass(frozen=True)
class Migration:
    """One schema file, applied once, in version order, in one transaction."""

    version: int
    name: str
    sql: str


def placeholders(sql: str) -> frozenset[str]:
    """The ``$name`` parameters a statement binds."""
    return frozenset(m.group(1) for m in _LEXEME.finditer(sql) if m.group(1))


def parse_queries(text: str, filename: str) -> list[Query]:
    """Split one query file into its named statements."""
    queries: list[Query] = []
    current: dict[str, object] | None = None
    body: list[str] = []
    doc: list[str] = []

    def finish() -> None:
        if current is None:
            return
        sql = "\n".join(body).strip().rstrip(";").strip()
        if not doc:
            raise CatalogError(
                f"{current['source']}: query {current['name']!r} has no doc line (a '-- ' comment under "
                "the header saying why it exists)"
            )
        if not sql:
            raise CatalogError(f"{current['source']}: query {current['name']!r} has no statement")
        if ";" in _LEXEME.sub(" ", sql):
            raise CatalogError(f"{current['source']}: query {current['name']!r} holds more than one statement")
        queries.append(
            Query(
                name=str(current["name"]),
                kind=str(current["kind"]),
                sql=sql,
                params=placeholders(sql),
                doc=" ".join(doc),
                source=str(current["source"]),
            )
        )

    for lineno, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line.strip())
        if header:
            finish()
            kind = header.group("kind")
            if kind not in KINDS:
                raise CatalogError(f"{filename}:{lineno}: unknown query kind :{kind} (known: {', '.join(KINDS)})")
            current = {"name": header.group("name"), "kind": kind, "source": f"{filename}:{lineno}"}
            body, doc = [], []
        elif current is None:
            if line.strip() and not line.strip().startswith("--"):
                raise CatalogError(f"{filename}:{lineno}: statement before any '-- name:' header")
        elif not body and line.strip().startswith("--"):
            doc.append(line.strip()[2:].strip())
        else:
            body.append(line)
    finish()
    return queries


class Catalog:
    """Every named query and schema file of the package, checked at load.

    Queries are attributes: ``catalog.trial_insert``.
    """

    def __init__(self, queries: list[Query], migrations: list[Migration]) -> None:
        self._queries: dict[str, Query] = {}
        for query in queries:
            if query.name in self._queries:
                raise CatalogError(
                    f"{query.source}: query name {query.name!r} already defined at "
                    f"{self._queries[query.name].source}"
                )
            if query.kind == "ingest" and "incoming" not in query.sql:
                raise CatalogError(f"{query.source}: ingest query {query.name!r} never reads 'incoming'")
            self._queries[query.name] = query
        for expected, migration in enumerate(migrations, start=1):
            if migration.version != expected:
                raise CatalogError(
                    f"sql/schema/{migration.version:04d}_{migration.name}.sql: schema files must be numbered "
                    f"0001, 0002, ... without gaps; expected {expected:04d} here"
                )
        self.migrations: tuple[Migration, ...] = tuple(migrations)
        taken = set(dir(self))
        for query in queries:
            if query.name in taken:  # read as catalog.<name>, it would be the attribute, not the query
                raise CatalogError(
                    f"{query.source}: query name {query.name!r} is taken by the catalog's own attribute "
                    f"Catalog.{query.name}: choose another"
                )

    @property
    def schema_version(self) -> int:
        """The version a fully migrated database records."""
        return len(self.migrations)

    @property
    def queries(self) -> dict[str, Query]:
        return dict(self._queries)

    def with_queries(self, text: str, filename: str) -> Catalog:
        """This catalog plus the named queries in ``text`` (a benchmark's own baseline SQL, say).

        The result migrates databases exactly as this one does, so a
        baseline can run beside the store's queries on a store file.
        """
        return Catalog(list(self._queries.values()) + parse_queries(text, filename), list(self.migrations))

    def __getattr__(self, name: str) -> Query:
        # While copy or pickle rebuilds a Catalog, _queries is not set yet and they probe for
        # optional methods (__setstate__, ...): those must be missing attributes, not a KeyError.
        queries: dict[str, Query] = self.__dict__.get("_queries", {})
        try:
            return queries[name]
        except KeyError:
            raise AttributeError(f"no named query {name!r} in the SQL catalog") from None

    def __contains__(self, name: object) -> bool:
        return name in self._queries


def _sql_files(folder: Traversable) -> list[Traversable]:
    return sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)


def load_catalog_from(root: Traversable) -> Catalog:
    """Parse a catalog folder with ``schema/`` and ``queries/`` below it."""
    migrations = []
    for file in _sql_files(root / "schema"):
        match = _MIGRATION_FILE.match(file.name)
        if not match:
            raise CatalogError(f"schema file {file.name!r} is not named NNNN_name.sql")
        migrations.append(Migration(int(match.group("version")), match.group("name"), file.read_text()))
    queries = []
    for file in _sql_files(root / "queries"):
        queries.extend(parse_queries(file.read_text(), f"sql/queries/{file.name}"))
    return Catalog(queries, migrations)


@functools.cache
def load_catalog() -> Catalog:
    """The package's own catalog, parsed once per process."""
    return load_catalog_from(importlib.resources.files("mlos_store.sql"))


class PicklesWithoutCatalog:
    """For objects holding ``_sql`` (a Catalog) and ``_engine``: pickled without the catalog.

    The catalog is the parsed ``sql/`` folder; the unpickled engine (which
    reconnects on arrival) brings its own, so only the engine's settings travel.
    """

    _sql: Catalog
    _engine: Any

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_sql"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._sql = self._engine.catalog
