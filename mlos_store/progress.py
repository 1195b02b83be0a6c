"""Progress of long operations (export, import), reported to an optional callback.

A callback takes ``(done, total)``: it is called once with ``done`` 0
before the first step and once after each step, the last call having
``done == total``. Steps are coarse (a table exported, a table imported),
so a caller can redraw a progress bar on every call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

#: Called with (steps done, steps in all).
ProgressCallback = Callable[[int, int], None]

T = TypeVar("T")


class Steps:
    """Counts the finished steps of one operation and tells the callback, if there is one."""

    def __init__(self, total: int, callback: ProgressCallback | None) -> None:
        self.total = total
        self.done = 0
        self._callback = callback
        if callback is not None:
            callback(0, total)

    def step(self, result: T) -> T:
        """Count one step as finished; returns ``result`` so a statement's answer passes through."""
        self.done += 1
        if self._callback is not None:
            self._callback(self.done, self.total)
        return result
