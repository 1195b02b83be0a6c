"""The README's telemetry example runs as written, so it cannot drift from the API."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_readme_telemetry_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    example = re.search(r"## Telemetry at scale.*?```python\n(.*?)\n```", README, re.S)
    assert example is not None
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(example.group(1), "README.md", "exec"), namespace)
    assert (tmp_path / "telemetry-dataset" / "telemetry").is_dir()
    assert namespace["table"].num_rows == 2_001  # type: ignore[attr-defined]
    assert namespace["streamed"].num_rows == 2_002  # type: ignore[attr-defined]
    assert namespace["summary"].column("count").to_pylist() == [1_000, 1_000, 1, 1]  # type: ignore[attr-defined]
