"""The built wheel works on its own, outside the source tree (the SQL ships inside it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _pip(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pip", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a clean copy of the repository (no stale build/ or egg-info)."""
    work = tmp_path_factory.mktemp("build")
    source = work / "src"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "tests", "benchmarks"))
    dist = work / "dist"
    proc = _pip("wheel", "--no-deps", "-w", str(dist), str(source), cwd=work)
    if proc.returncode != 0:  # offline: build isolation cannot fetch setuptools
        proc = _pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(source), cwd=work)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [built] = dist.glob("mlos_store-*.whl")
    return built


@pytest.fixture(scope="module")
def target(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel installed into a bare folder."""
    folder = tmp_path_factory.mktemp("target")
    proc = _pip("install", "--no-deps", "--no-index", "--target", str(folder), str(wheel), cwd=folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return folder


def test_wheel_holds_every_sql_file(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name for name in archive.namelist() if name.endswith(".sql")}
    expected = {
        f"mlos_store/sql/{path.relative_to(REPO / 'sql').as_posix()}"
        for path in (REPO / "sql").rglob("*.sql")
    }
    assert expected
    assert shipped == expected


def test_wheel_and_installed_package_are_marked_typed(wheel: Path, target: Path) -> None:
    """PEP 561: ``py.typed`` makes type checkers use the package's own annotations."""
    with zipfile.ZipFile(wheel) as archive:
        assert "mlos_store/py.typed" in archive.namelist()
    assert (target / "mlos_store" / "py.typed").is_file()


def test_wheel_holds_the_web_views_templates_and_static_files(wheel: Path) -> None:
    """``mlos-store serve`` reads its templates and static files from the installed package."""
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name for name in archive.namelist() if name.startswith("mlos_store/web/")}
    web = REPO / "mlos_store" / "web"
    expected = {f"mlos_store/web/{path.relative_to(web).as_posix()}"
                for pattern in ("*.py", "templates/*.html", "static/*") for path in web.glob(pattern)}
    assert len(expected) > 8
    assert shipped == expected


def test_wheel_holds_no_tests_or_build_leftovers(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        tops = {name.split("/")[0] for name in archive.namelist()}
    assert tops == {"mlos_store", "mlos_store-0.1.0.dist-info"}


_END_TO_END = """
    import json, sys
    from datetime import datetime, timedelta, timezone
    from pathlib import Path

    import mlos_store
    import mlos_store.sql
    from mlos_store import Status, Storage
    from mlos_store.catalog import load_catalog

    t0 = datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
    with Storage() as store:
        exp = store.experiment(experiment_id="exp", trial_id=1, root_env_config="env.jsonc",
                               description="from the wheel", tunables={"x": 1, "mode": "a"},
                               opt_targets={"score": "min"})
        with exp:
            trial = exp.new_trial({"x": 3}, ts_start=t0, config={"repeat": 2})
            trial.update(Status.RUNNING, t0)
            trial.update_telemetry(Status.RUNNING, t0 + timedelta(seconds=1),
                                   [(t0 + timedelta(seconds=1), "cpu", 0.5)])
            trial.update(Status.SUCCEEDED, t0 + timedelta(seconds=2), {"score": 1.25})
            trial_ids, configs, scores, status = exp.load()
            telemetry = exp.load_telemetry(trial.trial_id)
    print(json.dumps({
        "package": mlos_store.__file__,
        "sql": str(Path(mlos_store.sql.__file__).parent),
        "modules": sorted(m.__file__ for m in list(sys.modules.values())
                          if m.__name__.startswith("mlos_store") and getattr(m, "__file__", None)),
        "migrations": len(load_catalog().migrations),
        "queries": len(load_catalog().queries),
        "trial_ids": trial_ids,
        "configs": configs,
        "scores": scores,
        "status": [s.name for s in status],
        "telemetry": [[ts.isoformat(), name, value] for ts, name, value in telemetry],
    }))
"""


def test_installed_wheel_runs_a_trial_outside_the_source_tree(target: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env["PYTHONPATH"] = str(target)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(_END_TO_END)], cwd=elsewhere, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)

    assert Path(out["package"]).is_relative_to(target)
    assert Path(out["sql"]).is_relative_to(target)
    assert all(Path(m).is_relative_to(target) for m in out["modules"]), out["modules"]
    assert out["migrations"] == len(list((REPO / "sql" / "schema").glob("*.sql")))
    assert out["queries"] > 0
    assert out["trial_ids"] == [1]
    assert out["configs"] == [{"mode": "a", "x": 3}]
    assert out["scores"] == [{"score": 1.25}]
    assert out["status"] == ["SUCCEEDED"]
    assert out["telemetry"] == [["2026-01-01T12:00:01.123456+00:00", "cpu", 0.5]]
    assert list(elsewhere.iterdir()) == []
