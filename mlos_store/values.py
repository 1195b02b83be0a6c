"""Typed values and timestamps between Python, Arrow and the store's columns.

Every stored value is four columns (see ``sql/schema/0001_core.sql``):
``value_kind`` (null, bool, int, float, str, json), ``value`` (the numeric
view), ``value_int`` (exact int or bool) and ``value_text`` (str, or the JSON
text of a list or dict). This module is the one place that maps Python values
to those columns and back, and that turns long value rows into the typed
columns of the wide Arrow tables.

Wide columns get one Arrow type each:

* only ints: ``int64``; only floats, or ints and floats: ``float64`` (an int
  comes back as the equal float; an int beyond 2**53 forces JSON instead);
* only bools: ``bool``; only strs: ``string``; only None: ``null``;
* anything else (str with numbers, lists, dicts): ``string`` holding JSON,
  marked by field metadata ``mlos_store.encoding = json``.

A null cell means "stored None" or "not stored for this row"; field metadata
``mlos_store.null`` says which (``value`` or ``absent``). When a column has
both, it is JSON-encoded: the text ``null`` is a stored None and a null cell
is absent. So the converters give back exactly what was stored.

Decimals, Python or Arrow, are refused (with a hint to pass floats or
strings): as a float one would come back rounded and of another type.

Telemetry differs in one way, so numbers always aggregate: where the values
mix types beyond ints and floats, ``value`` stays the float64 numeric view
and a ``value_json`` column holds the exact value of every non-float row
(see ``telemetry_value_columns``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc

from .errors import InvalidValueError

_Item = TypeVar("_Item")

ENCODING_KEY = b"mlos_store.encoding"
NULL_KEY = b"mlos_store.null"
#: Telemetry ``value`` encoding when values mix types: numbers plus JSON_COMPANION.
NUMERIC_WITH_JSON = b"numeric+json"
JSON_COMPANION = "value_json"

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_EXACT_FLOAT_INT = 2**53

#: Arrow schema of named typed values, as ingest queries read them.
NAMED_VALUES_SCHEMA = pa.schema(
    [
        ("name", pa.string()),
        ("value_kind", pa.string()),
        ("value", pa.float64()),
        ("value_int", pa.int64()),
        ("value_text", pa.string()),
    ]
)

Scalar = bool | int | float | str | None


# ---------------------------------------------------------------- numpy scalars


def plain_scalar(value: Any) -> Any:
    """The equal Python value of a numpy scalar (np.int64(12) -> 12); anything else as it is.

    Environments hand back numpy scalars (a LocalEnv's parsed results, an
    optimizer's suggestions), so every value and timestamp entering the
    store passes through here. numpy stays optional: it is recognised by
    its module, never imported. A numpy datetime64 is naive by numpy's own
    convention of UTC (``np.datetime64("now")`` is UTC), so it becomes an
    aware UTC datetime, to microseconds.
    """
    if type(value).__module__ != "numpy" or getattr(value, "ndim", None) != 0 or not hasattr(value, "item"):
        return value
    if getattr(value, "dtype", None) is not None and value.dtype.kind == "M":  # datetime64
        micros = value.astype("datetime64[us]").item()
        return micros.replace(tzinfo=UTC) if isinstance(micros, datetime) else micros
    return value.item()


def _json_default(value: Any) -> Any:
    """json.dumps' fallback: numpy scalars nested in a list or dict are stored as their Python value."""
    plain = plain_scalar(value)
    if plain is value:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
    return plain


# ---------------------------------------------------------------- time


def to_utc(ts: Any, what: str = "timestamp") -> datetime:
    """A timezone-aware UTC datetime; a naive one is taken as local time (a numpy datetime64 as UTC)."""
    ts = plain_scalar(ts)
    if not isinstance(ts, datetime):
        raise InvalidValueError(f"{what} must be a datetime, got {type(ts).__name__} {ts!r}")
    try:
        return ts.astimezone(UTC)
    except (OverflowError, ValueError) as exc:  # near datetime.min / max, the offset leaves the calendar
        raise InvalidValueError(f"{what} {ts!r} is out of range in UTC ({exc})") from None


def now_utc() -> datetime:
    return datetime.now(UTC)


#: 0001-01-01 and 10000-01-01 (UTC) in seconds since the epoch: the instants a datetime can hold lie between.
_FIRST_SECOND, _END_SECOND = -62135596800, 253402300800
_UNITS_PER_SECOND = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}


def check_timestamp_range(ts: pa.Array, what: str) -> None:
    """Refuse Arrow timestamps outside years 1 to 9999: UTC for aware ones, the local wall clock for naive ones.

    Every read returns datetimes, which hold no other years: a later value
    would be stored and then break each read of it, and seconds or
    milliseconds far enough out wrap around when cast to the stored
    microseconds. The first such row is named with its raw value.
    """
    per_second = _UNITS_PER_SECOND[ts.type.unit]
    first, end = _FIRST_SECOND * per_second, _END_SECOND * per_second
    raw = ts.cast(pa.int64())
    bounds = pc.min_max(raw).as_py()
    if bounds["min"] is None or (first <= bounds["min"] and bounds["max"] < end):
        return
    # Only units coarser than ns get here, so both bounds fit in an int64.
    outside = pc.or_(pc.less(raw, pa.scalar(first, pa.int64())), pc.greater_equal(raw, pa.scalar(end, pa.int64())))
    row = pc.indices_nonzero(outside)[0].as_py()
    raise InvalidValueError(f"{what} row {row} holds {raw[row].as_py()} ({ts.type}), outside years 1 to 9999, "
                            "the range timestamps can be read back in")


# ---------------------------------------------------------------- one value


def encode_value(value: Any, what: str, *, allow_json: bool) -> tuple[str, float | None, int | None, str | None]:
    """(kind, value, value_int, value_text) for one Python (or numpy scalar) value."""
    value = plain_scalar(value)
    if value is None:
        return ("null", None, None, None)
    if isinstance(value, bool):
        return ("bool", float(value), int(value), None)
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise InvalidValueError(f"{what}: int {value} does not fit in 64 bits")
        return ("int", float(value), int(value), None)
    if isinstance(value, float):
        return ("float", float(value), None, None)
    if isinstance(value, str):
        return ("str", None, None, check_text(value, what))
    _refuse_decimal(value, what)
    if allow_json and isinstance(value, (list, tuple, dict)):
        _check_json_keys(value, what)
        try:
            text = json.dumps(value, sort_keys=True, default=_json_default)
        except (TypeError, ValueError) as exc:
            raise InvalidValueError(f"{what}: {value!r} is not JSON-serialisable ({exc})") from None
        return ("json", None, None, text)
    if allow_json:
        raise InvalidValueError(f"{what}: {value!r} of type {type(value).__name__} is not JSON-serialisable")
    raise InvalidValueError(
        f"{what}: {value!r} of type {type(value).__name__} cannot be stored (expected int, float, str, bool or None)"
    )


def _refuse_decimal(value: Any, what: str) -> None:
    """Refuse a Decimal, naming what to pass instead: no stored kind keeps it exactly.

    As a float it would come back rounded and of another type; the caller
    decides whether that or its text is what they mean.
    """
    if isinstance(value, Decimal):
        raise InvalidValueError(f"{what}: {value!r} cannot be stored exactly: pass float(value) or str(value)")


def _check_json_keys(value: Any, what: str) -> None:
    """Refuse dict keys JSON would silently turn into strings (a tuple comes back as a list), and Decimals."""
    _refuse_decimal(value, what)
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidValueError(f"{what}: key {key!r} in {value!r} is not a str, so it would not round-trip")
            _check_json_keys(item, what)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_json_keys(item, what)


def decode_value(kind: str, value: float | None, value_int: int | None, value_text: str | None) -> Any:
    """The Python value one stored row holds."""
    if kind == "null":
        return None
    if kind == "bool":
        return bool(value_int)
    if kind == "int":
        return value_int
    if kind == "float":
        return value
    if kind == "str":
        return value_text
    if kind == "json":
        return json.loads(value_text) if value_text is not None else None
    raise InvalidValueError(f"unknown stored value kind {kind!r}")


def checked_id(value: Any, what: str) -> int:
    """An id as the store keeps it (a 64-bit int), or InvalidValueError naming it."""
    value = plain_scalar(value)
    if not isinstance(value, int) or isinstance(value, bool) or not _INT64_MIN <= value <= _INT64_MAX:
        raise InvalidValueError(f"{what} must be an int, got {type(value).__name__} {value!r}")
    return value


def check_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidValueError(f"{what} name must be a non-empty str, got {name!r}")
    return check_text(name, f"{what} name")


def distinct_list(items: Any, what: str, noun: str, check: Callable[[Any], _Item]) -> list[_Item]:
    """Items given as a list, each checked by ``check``, each once, in the order given.

    A bare str (or bytes) is refused rather than read as a list of its
    characters or as one item: ``merge("exp")`` for ``merge(["exp"])`` is an
    easy slip.
    """
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise InvalidValueError(f"{what} takes a list of {noun}, got {items!r}")
    unique: list[_Item] = []
    for item in items:
        checked = check(item)
        if checked not in unique:
            unique.append(checked)
    return unique


def experiment_id_list(ids: Any, what: str) -> list[str]:
    """Experiment ids given as a list, each once, in the order given (see ``distinct_list``)."""
    def checked(experiment_id: Any) -> str:
        if not isinstance(experiment_id, str) or not experiment_id:
            raise InvalidValueError(f"{what}: {experiment_id!r} is not an experiment id")
        return experiment_id
    return distinct_list(ids, what, "experiment ids", checked)


def check_text(text: str, what: str) -> str:
    """Refuse text that is not valid Unicode (a lone surrogate): it has no UTF-8 form to store."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidValueError(
            f"{what}: {text[max(exc.start - 10, 0):exc.end + 10]!r} is not valid Unicode "
            f"(lone surrogate at position {exc.start}), so it cannot be stored"
        ) from None
    return text


def named_values_table(values: Mapping[str, Any], what: str, *, allow_json: bool) -> pa.Table:
    """Arrow rows (NAMED_VALUES_SCHEMA) for a mapping, sorted by name."""
    rows = [
        (check_name(name, what), *encode_value(values[name], f"{what} {name!r}", allow_json=allow_json))
        for name in sorted(values, key=lambda n: (not isinstance(n, str), str(n)))
    ]
    columns: list[tuple[Any, ...]] = list(zip(*rows)) if rows else [() for _ in NAMED_VALUES_SCHEMA]
    return pa.table([pa.array(c, f.type) for c, f in zip(columns, NAMED_VALUES_SCHEMA)], schema=NAMED_VALUES_SCHEMA)


def named_value_pairs(table: pa.Table) -> Iterator[tuple[str, Any]]:
    """(name, value) for each row with name and the four value columns."""
    for row in table.select(["name", "value_kind", "value", "value_int", "value_text"]).to_pylist():
        yield row["name"], decode_value(row["value_kind"], row["value"], row["value_int"], row["value_text"])


def values_from_rows(table: pa.Table) -> dict[str, Any]:
    """{name: value} from rows with name and the four value columns."""
    return dict(named_value_pairs(table))


# ---------------------------------------------------------------- Arrow columns


def is_string_type(typ: pa.DataType) -> bool:
    return bool(pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_string_view(typ))


def encode_arrow_values(values: pa.Array | pa.ChunkedArray, what: str) -> dict[str, pa.Array]:
    """The four value columns for an Arrow array of one primitive type.

    Decimal columns are refused like Python Decimals: as float64 they would
    come back rounded, so the caller casts them, knowing it.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    n, typ = len(values), values.type
    if pa.types.is_null(typ):
        kind_name = "null"
    elif pa.types.is_boolean(typ):
        kind_name = "bool"
    elif pa.types.is_integer(typ):
        kind_name = "int"
    elif pa.types.is_floating(typ):
        kind_name = "float"
    elif pa.types.is_decimal(typ):
        raise InvalidValueError(f"{what} is {typ}, which the store cannot keep exactly: cast it to float64 or "
                                "string first")
    elif is_string_type(typ):
        kind_name = "str"
    else:
        raise InvalidValueError(f"{what}: Arrow type {typ} cannot be stored (expected numbers, bool, string or null)")
    nulls = pa.nulls(n)
    if kind_name == "null":
        kinds: pa.Array = pa.array(["null"] * n, pa.string()) if n else pa.array([], pa.string())
        return {"value_kind": kinds, "value": nulls.cast(pa.float64()), "value_int": nulls.cast(pa.int64()),
                "value_text": nulls.cast(pa.string())}
    # Typed scalars: an untyped one makes pyarrow try optional imports on every call.
    kinds = pc.if_else(pc.is_valid(values), pa.scalar(kind_name, pa.string()), pa.scalar("null", pa.string()))
    as_float = as_int = as_text = None
    if kind_name in ("int", "bool"):
        try:
            as_int = values.cast(pa.int64())
        except pa.ArrowInvalid as exc:
            raise InvalidValueError(f"{what}: integer does not fit in 64 bits ({exc})") from None
        as_float = values.cast(pa.float64(), safe=False)  # the numeric view may round
    elif kind_name == "float":
        as_float = values.cast(pa.float64())
    else:
        as_text = values.cast(pa.string())
    return {
        "value_kind": kinds,
        "value": as_float if as_float is not None else nulls.cast(pa.float64()),
        "value_int": as_int if as_int is not None else nulls.cast(pa.int64()),
        "value_text": as_text if as_text is not None else nulls.cast(pa.string()),
    }


def encode_python_values(values: list[Any], what: str, *, allow_json: bool = False) -> dict[str, pa.Array]:
    """The four value columns for a list of Python values of any mix of types."""
    if all(type(v) is float for v in values):
        return encode_arrow_values(pa.array(values, pa.float64()), what)
    encoded = [encode_value(v, f"{what} row {i}", allow_json=allow_json) for i, v in enumerate(values)]
    kinds, nums, ints, texts = zip(*encoded) if encoded else ((), (), (), ())
    return {
        "value_kind": pa.array(kinds, pa.string()),
        "value": pa.array(nums, pa.float64()),
        "value_int": pa.array(ints, pa.int64()),
        "value_text": pa.array(texts, pa.string()),
    }


def sorted_runs(table: pa.Table, keys: list[str]) -> list[tuple[int, int]]:
    """(start, length) of each run of equal keys in a table sorted by them."""
    n = table.num_rows
    if n == 0:
        return []
    changed = pa.array([False] * (n - 1), pa.bool_())
    for key in keys:
        column = table.column(key)
        changed = pc.or_(changed, pc.not_equal(column.slice(1), column.slice(0, n - 1)))
    starts = [0] + [i + 1 for i in pc.indices_nonzero(changed).to_pylist()]
    return [(start, end - start) for start, end in zip(starts, starts[1:] + [n])]


def json_column(rows: pa.Table, *, floats: bool) -> pa.Array:
    """JSON text of each row's exact value, kind by kind with Arrow compute.

    Only str rows (and float rows, when ``floats``) need Python's encoder;
    with ``floats`` False a float row is left null.
    """
    kind = rows.column("value_kind").combine_chunks()
    ints = rows.column("value_int").combine_chunks()
    texts = pa.nulls(len(rows), pa.string())
    texts = pc.if_else(pc.equal(kind, "int"), ints.cast(pa.string()), texts)
    texts = pc.if_else(pc.equal(kind, "bool"), pc.if_else(pc.equal(ints, 1), "true", "false"), texts)
    texts = pc.if_else(pc.equal(kind, "null"), "null", texts)
    texts = pc.if_else(pc.equal(kind, "json"), rows.column("value_text").combine_chunks(), texts)
    encoded = [("str", "value_text")] + ([("float", "value")] if floats else [])
    for kind_name, column in encoded:
        mask = pc.equal(kind, kind_name)
        if pc.any(mask).as_py():
            selected = rows.column(column).combine_chunks().filter(mask).to_pylist()
            texts = pc.replace_with_mask(texts, mask, pa.array([json.dumps(v) for v in selected], pa.string()))
    return texts


def typed_column(name: str, rows: pa.Table, positions: pa.Array | None, length: int) -> tuple[pa.Field, pa.Array]:
    """One wide column of ``length`` rows from long value rows.

    ``rows`` has the four value columns, sorted by output position;
    ``positions`` says which output row each belongs to (None: row i is
    output row i). Output rows no value belongs to are absent.
    """
    kinds = set(rows.column("value_kind").unique().to_pylist())
    stored = kinds - {"null"}
    has_none = "null" in kinds
    has_absent = len(rows) < length
    metadata: dict[bytes, bytes] = {}
    needs_json = (has_none and has_absent) or _needs_json(stored, rows)
    if needs_json:
        values: pa.Array = json_column(rows, floats=True)
        metadata[ENCODING_KEY] = b"json"
    else:
        values = _typed_values(stored, rows)
    metadata[NULL_KEY] = b"absent" if has_absent else b"value"
    if positions is not None and has_absent:
        index = pc.index_in(pa.array(range(length), pa.int64()), value_set=positions.cast(pa.int64()))
        values = pc.take(values, index)
    return pa.field(name, values.type, metadata=metadata), values


def telemetry_value_columns(rows: pa.Table) -> list[tuple[pa.Field, pa.Array]]:
    """The ``value`` column of a telemetry table, numeric whenever any value is.

    Uniform values get one typed column, as in wide tables. Mixed values
    (say numbers and strings) keep ``value`` as the float64 numeric view, so
    it still aggregates, beside ``value_json``: the JSON of every row whose
    exact value is not that float (null for float rows).
    """
    stored = set(rows.column("value_kind").unique().to_pylist()) - {"null"}
    return telemetry_value_layout(stored, _needs_json(stored, rows)).columns(rows)


class TelemetryValueLayout:
    """The value column(s) a telemetry read returns, decided once from the stored kinds.

    A stream decides it before its first batch (from every row it will
    return) and applies it to each batch, so all batches share one schema
    and equal a table read of the same rows.
    """

    def __init__(self, stored: frozenset[str], mixed: bool) -> None:
        self.stored, self.mixed = stored, mixed

    def fields(self) -> list[pa.Field]:
        if self.mixed:
            return [pa.field("value", pa.float64(), metadata={ENCODING_KEY: NUMERIC_WITH_JSON}),
                    pa.field(JSON_COMPANION, pa.string(), metadata={ENCODING_KEY: b"json"})]
        typ = _typed_values(set(self.stored), NAMED_VALUES_SCHEMA.empty_table()).type
        return [pa.field("value", typ, metadata={NULL_KEY: b"value"})]

    def columns(self, rows: pa.Table) -> list[tuple[pa.Field, pa.Array]]:
        """The value column(s) of ``rows``, whose kinds must be among ``stored`` (or null)."""
        if self.mixed:
            return list(zip(self.fields(), [rows.column("value").combine_chunks(), json_column(rows, floats=False)]))
        return list(zip(self.fields(), [_typed_values(set(self.stored), rows)]))


def telemetry_value_layout(stored: set[str], beyond_exact_float: bool) -> TelemetryValueLayout:
    """The layout for telemetry holding the value kinds ``stored`` (``null`` ignored).

    ``beyond_exact_float``: some int is too large for float64 to hold exactly.
    """
    stored = set(stored) - {"null"}
    mixed = _needs_json(stored, None) or (stored == {"int", "float"} and beyond_exact_float)
    return TelemetryValueLayout(frozenset(stored), mixed)


_UTC_EPOCH = datetime(1970, 1, 1, tzinfo=ZoneInfo("UTC"))


def utc_datetimes(column: pa.Array | pa.ChunkedArray) -> list[datetime]:
    """The cells of a timestamp column without nulls as UTC datetimes, equal to Arrow's ``to_pylist()``.

    Arrow goes through the zone database for every cell (about 6 us each
    here), and telemetry reads convert millions of cells, where one
    sample's timestamp repeats for each of its metrics: each distinct
    instant is built once, by adding microseconds to the epoch.
    """
    micros = column.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_pylist()
    built = {m: _UTC_EPOCH + timedelta(microseconds=m) for m in set(micros)}
    return [built[m] for m in micros]


def telemetry_values(table: pa.Table) -> list[Any]:
    """The exact values of a telemetry table's ``value`` (and ``value_json``) columns."""
    field = table.schema.field("value")
    if (field.metadata or {}).get(ENCODING_KEY) != NUMERIC_WITH_JSON:
        return column_to_python(field, table.column("value"))
    numbers = table.column("value").to_pylist()
    texts = table.column(JSON_COMPANION).to_pylist()
    return [number if text is None else json.loads(text) for number, text in zip(numbers, texts)]


def _needs_json(stored: set[str], rows: pa.Table | None) -> bool:
    """Whether values of these kinds need JSON; ``rows`` None: assume ints and floats mix exactly."""
    if len(stored) <= 1:
        return stored == {"json"}
    if stored == {"int", "float"}:
        if rows is None:
            return False
        ints = rows.column("value_int")
        beyond = pc.or_(pc.greater(ints, _EXACT_FLOAT_INT), pc.less(ints, -_EXACT_FLOAT_INT))
        return bool(pc.any(beyond).as_py() or False)
    return True


def _typed_values(stored: set[str], rows: pa.Table) -> pa.Array:
    if not stored:
        return pa.nulls(len(rows))
    if stored == {"int"}:
        return rows.column("value_int").combine_chunks()
    if stored <= {"int", "float"}:
        return rows.column("value").combine_chunks()
    if stored == {"bool"}:
        return rows.column("value_int").combine_chunks().cast(pa.bool_())
    return rows.column("value_text").combine_chunks()  # str


def column_to_python(field: pa.Field, column: pa.Array | pa.ChunkedArray) -> list[Any]:
    """Decode one wide column to Python values; ABSENT marks cells not stored."""
    values: list[Any] = column.to_pylist()
    meta = field.metadata or {}
    absent_nulls = meta.get(NULL_KEY) == b"absent"
    if meta.get(ENCODING_KEY) == b"json":
        return [ABSENT if v is None else json.loads(v) for v in values]
    if absent_nulls:
        return [ABSENT if v is None else v for v in values]
    return values


class _Absent:
    """Marks a cell with no stored value (as opposed to a stored None)."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


