"""The library's tunables: a read-only mapping of name to value that knows defaults."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeAlias

import pyarrow as pa

from .errors import InvalidValueError
from .values import Scalar, check_name, encode_value, plain_scalar

#: Tunables as the API takes them: the library's ``Tunables``, a plain mapping of name to value,
#: or an object shaped like mlos_bench's TunableGroups (iterating it yields ``(tunable, group)`` pairs).
TunablesLike: TypeAlias = "Tunables | Mapping[str, Any] | Iterable[Any]"


class Tunables(Mapping[str, Scalar]):
    """Current values of named tunables, with each one's default (and so its type).

    Iterates in name order. Immutable: ``assign`` and ``copy`` return new
    objects. A plain mapping given to ``Storage.experiment`` becomes the
    defaults; values of a trial are the defaults with the trial's values
    assigned. A None default declares no type (any value fits) unless
    ``typed_like`` gives the tunable one.
    """

    __slots__ = ("_defaults", "_types", "_values")

    def __init__(self, defaults: Mapping[str, Any], values: Mapping[str, Any] | None = None) -> None:
        for name, default in defaults.items():
            check_name(name, "tunable")
            encode_value(default, f"default of tunable {name!r}", allow_json=False)
        self._defaults: dict[str, Scalar] = {name: plain_scalar(defaults[name]) for name in sorted(defaults)}
        self._types: dict[str, type | None] = {
            name: None if default is None else type(default) for name, default in self._defaults.items()
        }
        self._values: dict[str, Scalar] = dict(self._defaults)
        if values:
            self._values.update(self._checked(values))

    @classmethod
    def from_any(cls, tunables: TunablesLike | None) -> Tunables:
        """The library's object for a Tunables, a mapping, or a TunableGroups-shaped object.

        A TunableGroups-shaped object iterates as ``(tunable, group)`` pairs
        whose tunable has ``name``, ``value`` and ``default``.
        """
        if isinstance(tunables, Tunables):
            return tunables
        if tunables is None:
            return cls({})
        if isinstance(tunables, Mapping):
            return cls(tunables)
        if isinstance(tunables, Iterable):
            defaults: dict[str, Any] = {}
            values: dict[str, Any] = {}
            for item in tunables:
                tunable: Any = item[0] if isinstance(item, tuple) else item
                try:
                    name, value, default = tunable.name, tunable.value, tunable.default
                except AttributeError:
                    raise InvalidValueError(
                        f"tunables: {item!r} has no name/value/default (expected a mapping, "
                        "Tunables, or TunableGroups-shaped object)"
                    ) from None
                defaults[name], values[name] = default, value
            return cls(defaults, values)
        raise InvalidValueError(f"tunables: cannot read tunables from {type(tunables).__name__} {tunables!r}")

    @classmethod
    def restored(cls, declared: Tunables, values: Mapping[str, Any]) -> Tunables:
        """A stored trial's values on the ``declared`` tunables, taken as the store holds them.

        They are not checked against the declared types: a type given when
        the experiment was re-entered may not fit values stored before (a
        tunable first declared with a None default). Names not declared
        keep their value as default.
        """
        new = cls({**values, **declared.defaults}).typed_like(declared)
        new._values.update(values)
        return new

    def _checked(self, values: Mapping[str, Any]) -> dict[str, Scalar]:
        checked: dict[str, Scalar] = {}
        for name, given in values.items():
            value = plain_scalar(given)
            if name not in self._defaults:
                known = ", ".join(map(repr, self._defaults)) or "none"
                raise InvalidValueError(f"unknown tunable {name!r} (known tunables: {known})")
            kind = encode_value(value, f"tunable {name!r}", allow_json=False)[0]
            expected = self.type_of(name)
            if value is not None and expected is not None and not _fits(kind, expected):
                raise InvalidValueError(
                    f"tunable {name!r} holds {expected.__name__} values, got {type(value).__name__} {value!r}"
                )
            checked[name] = value
        return checked

    def type_of(self, name: str) -> type | None:
        """The type a tunable's values must fit: its default's, or the one ``typed_like`` gave; None: any."""
        return self._types[name]

    def typed_like(self, declared: Tunables) -> Tunables:
        """A copy whose tunables without a type (None default) take the type ``declared`` gives them.

        An experiment re-entered with a None default keeps checking new
        values against the type stored when it was created, instead of
        letting one experiment's tunable hold ints in some trials and
        strings in others. The defaults and values stay as they are.
        """
        new = self.copy()
        new._types = {name: typ if typ is not None or name not in declared else declared.type_of(name)
                      for name, typ in self._types.items()}
        return new

    def default(self, name: str) -> Scalar:
        return self._defaults[name]

    @property
    def defaults(self) -> dict[str, Scalar]:
        return dict(self._defaults)

    def assign(self, values: Mapping[str, Any]) -> Tunables:
        """A new object with these values set; unknown names and wrong types are refused."""
        new = Tunables.__new__(Tunables)
        new._defaults, new._types = self._defaults, self._types
        new._values = {**self._values, **self._checked(values)}
        return new

    def copy(self) -> Tunables:
        return self.assign({})

    def __getitem__(self, name: str) -> Scalar:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Tunables({self._values!r})"


def tunable_values(tunables: TunablesLike) -> dict[str, Any]:
    """{name: value} of a Tunables, a plain mapping of values, or a TunableGroups-shaped object."""
    if isinstance(tunables, Mapping):
        return dict(tunables)
    return dict(Tunables.from_any(tunables))


def _fits(kind: str, expected: type) -> bool:
    numeric = {"int", "float"}
    if expected is bool:
        return kind == "bool"
    if expected in (int, float):
        return kind in numeric
    return kind == "str"


def config_hash_of(rows: pa.Table) -> str:
    """SHA-256 of a config's canonical values: equal exactly when the named values and their types are.

    ``rows`` are ``values.named_values_table`` rows (name order), hashed as
    encoded, with no decoding back to Python values: the text hashed is
    ``[[name, kind, value], ...]``, a float as its repr, a bool as
    true/false, an int exact. Stored config hashes are this text's, so it
    never changes (tests/upgrade/0001.sql holds two).
    """
    canonical = [[row["name"], row["value_kind"], _canonical_value(row)] for row in rows.select(
        ["name", "value_kind", "value", "value_int", "value_text"]).to_pylist()]
    return hashlib.sha256(json.dumps(canonical, separators=(",", ":")).encode()).hexdigest()


def _canonical_value(row: dict[str, Any]) -> Any:
    kind = row["value_kind"]
    if kind == "float":
        return repr(row["value"])
    if kind == "bool":
        return row["value_int"] == 1
    if kind == "int":
        return row["value_int"]
    if kind == "json":  # never a tunable's: a config imported from a crafted file hashes as it always did
        return json.loads(row["value_text"])
    return row["value_text"]  # str, and None for null
