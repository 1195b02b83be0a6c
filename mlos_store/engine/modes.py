"""The two connection modes of a file store and the seconds that govern them."""

from __future__ import annotations

from ..errors import InvalidValueError
from ..locking import FLOCK_AVAILABLE

#: Connection modes of a file store (an in-memory store is always private).
SHARED, EXCLUSIVE = "shared", "exclusive"
MODES = (SHARED, EXCLUSIVE)
#: Seconds to wait for a store another process holds before raising StoreBusyError.
DEFAULT_TIMEOUT = 30.0
#: Seconds a shared store keeps the file after an operation while nobody waits for it.
DEFAULT_LINGER = 0.5


def checked_mode(mode: str | None, in_memory: bool) -> str:
    """The connection mode: shared for a file unless asked otherwise; an in-memory store is private."""
    if mode is None:
        return SHARED if FLOCK_AVAILABLE and not in_memory else EXCLUSIVE
    if mode not in MODES:
        raise InvalidValueError(f"mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
    if in_memory and mode == SHARED:
        raise InvalidValueError("an in-memory store cannot be shared between processes: use a store file")
    if mode == SHARED and not FLOCK_AVAILABLE:
        raise InvalidValueError("the shared mode needs flock, which this platform lacks: use mode='exclusive'")
    return mode


def checked_seconds(seconds: float, what: str) -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < float("inf"):
        raise InvalidValueError(f"{what} must be a finite number of seconds >= 0, got {seconds!r}")
    return float(seconds)
