"""What every ``bench_*.py`` script measures with: its arguments, interleaved rounds, medians, ratios.

Each script prices one store feature against bare DuckDB: both run in
turn within each round (so a machine slowing down mid-run hits both
alike), and the table printed gives each side's median and the ratio
store / baseline.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

Name = TypeVar("Name")
Result = TypeVar("Result")


def arguments(doc: str | None, *, rounds: int) -> argparse.ArgumentParser:
    """A parser with the options every script has (``--quick``, ``--rounds``); the script adds its sizes."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the smoke test")
    parser.add_argument("--rounds", type=int, default=rounds)
    return parser


def interleaved(rounds: int, runners: Mapping[Name, Callable[[int], Result]]) -> dict[Name, list[Result]]:
    """Each runner called once per round (with the round number), in turn; the results by runner."""
    results: dict[Name, list[Result]] = {name: [] for name in runners}
    for round_no in range(rounds):
        for name, run in runners.items():
            results[name].append(run(round_no))
    return results


def median(values: Iterable[float]) -> float:
    return statistics.median(values)


def table_header(first: str, baseline: str, candidate: str) -> None:
    print(f"| {first} | {baseline} | {candidate} | ratio |\n|---|---:|---:|---:|")


def ratio_row(label: str, baseline: float, candidate: float, *, digits: int = 3, unit: str = "") -> None:
    """One table row: both figures and the ratio candidate / baseline."""
    suffix = f" {unit}" if unit else ""
    print(f"| {label} | {baseline:.{digits}f}{suffix} | {candidate:.{digits}f}{suffix} | {candidate / baseline:.2f}x |")
