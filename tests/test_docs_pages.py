"""Every code block of the documentation (docs/**/*.md) runs, and every output shown is what it prints.

Each page runs top to bottom in a fresh folder of its own, so a later block
can read the store an earlier one wrote (as a reader following the page
would). A ``python`` block runs in a fresh namespace; the ``text`` blocks
marked ``<!-- output -->`` right after it are what it prints, one per run (the
tutorial runs its script twice to show the resume). A ``console`` block is
one ``$ mlos-store ...`` command and what it prints. ``sh`` blocks hold
commands: ``mlos-store ...`` and ``python -m mlos_store.demo ...`` run, a
``pip install`` must name extras ``pyproject.toml`` defines, and the
mlos_bench command is the one ``tests/test_mlos_bench_e2e.py`` runs. A block
named ``<!-- example: NAME -->`` with an entry in ``CHECKS`` is also checked
for what it made.

Outputs are produced by this test: ``MLOS_STORE_WRITE_DOCS=1 pytest
tests/test_docs_pages.py`` writes what the blocks print into the pages
instead of comparing (then review the diff).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import os
import re
import shlex
import struct
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from docs_blocks import DOCS, ROOT, Block, blocks, jsonc, mlos_bench_command, mlos_bench_storage_config, named, pages

import mlos_store
from mlos_store import Storage, cli, demo
from mlos_store.catalog import load_catalog

WRITE = os.environ.get("MLOS_STORE_WRITE_DOCS") == "1"
#: Python blocks that run as a script of their own (a process pool needs an importable __main__).
SCRIPTS = {"parallel-runners"}
EXTRAS = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
# The no-op set-up steps of an install line (creating and entering a virtual environment).
SETUP_STEPS = {"python3 -m venv .venv", ". .venv/bin/activate"}


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", path
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def _without_file_size(text: str) -> str:
    return re.sub(r"^file size .*$", "file size (varies)", text, flags=re.M)


# ---------------------------------------------------------------- what named examples made


def _check_tutorial_tune(namespace: dict[str, Any], cwd: Path) -> None:
    with Storage(cwd / "tutorial.duckdb", read_only=True) as storage:
        data = storage.experiments["cache-tuning"]
        assert list(data.trials) == list(range(1, 17))  # two runs of 8 trials: the second resumed at 9
        assert data.telemetry_table().num_rows == 16 * 20


def _check_tutorial_plot(namespace: dict[str, Any], cwd: Path) -> None:
    assert _png_size(cwd / "tutorial-telemetry.png") == (800, 450)


def _check_concepts_analysis(namespace: dict[str, Any], cwd: Path) -> None:
    assert namespace["results"].column("status").to_pylist() == ["SUCCEEDED"] * 3 + ["PENDING"]
    assert namespace["front"].column("trial_id").to_pylist() == [3]
    assert namespace["scores"] == {"latency_ms": 1.5, "throughput": 90}
    assert namespace["group"] == [2, 4]


def _check_telemetry(namespace: dict[str, Any], cwd: Path) -> None:
    assert (cwd / "telemetry-dataset" / "telemetry").is_dir()
    assert namespace["table"].num_rows == 2_001
    assert namespace["streamed"].num_rows == 2_002
    assert namespace["summary"].column("count").to_pylist() == [1_000, 1_000, 1, 1]


def _check_parallel_runners(namespace: dict[str, Any], cwd: Path) -> None:
    with Storage(cwd / "results.duckdb", read_only=True) as store:
        exp = store.get_experiment_by_id("redis-latency")
        assert exp is not None and exp.load()[2] == [{"latency_ms": 1.0}] * 4


def _check_warm_start(namespace: dict[str, Any], cwd: Path) -> None:
    assert namespace["trial_ids"][:2] == [1, 2] and namespace["trial_ids"][2:] == [-2, -3, -4]
    assert namespace["reports"][0].dropped_tunables == ()


def _check_import_store(namespace: dict[str, Any], cwd: Path) -> None:
    with Storage(cwd / "all.duckdb", read_only=True) as storage:
        assert list(storage.experiments["redis-latency"].trials) == [1, 2, 1_000_001, 1_000_002, 2_000_001,
                                                                     2_000_002]


def _check_interop(namespace: dict[str, Any], cwd: Path) -> None:
    assert str(namespace["frame"]["ts_start"].dtype) == "datetime64[us, UTC]"
    assert str(namespace["frame_nullable"]["result.requests"].dtype) == "int64[pyarrow]"
    assert namespace["peaks"]["value"].to_list() == [29.0, 49.0, 89.0]
    assert namespace["fastest"] == [(3, 4)]
    assert namespace["per_trial"].column("mean_cpu").to_pylist() == [24.5, 44.5, 84.5]


def _check_plots(namespace: dict[str, Any], cwd: Path) -> None:
    assert _png_size(cwd / "telemetry.png") == (960, 540)
    assert _png_size(cwd / "latency.png") == (800, 450)


def _check_cli_plot(namespace: dict[str, Any], cwd: Path) -> None:
    shipped = DOCS / "telemetry.png"  # the image the page shows, drawn by this very command
    assert _png_size(cwd / "docs" / "telemetry.png") == _png_size(shipped) == (640, 360)
    assert shipped.stat().st_size < 100_000  # small enough to keep in the repository


def _check_parquet(namespace: dict[str, Any], cwd: Path) -> None:
    assert namespace["imported"] == ["redis-latency"]
    assert (cwd / "dataset" / "_mlos_store.json").is_file() and (cwd / "dataset" / "_mlos_store").is_dir()
    assert namespace["copied"].column("result.latency_ms").to_pylist() == [2.0, 1.0]


CHECKS: dict[str, Callable[[dict[str, Any], Path], None]] = {
    "tutorial-tune": _check_tutorial_tune,
    "tutorial-plot": _check_tutorial_plot,
    "concepts-analysis": _check_concepts_analysis,
    "telemetry": _check_telemetry,
    "parallel-runners": _check_parallel_runners,
    "warm-start": _check_warm_start,
    "import-store": _check_import_store,
    "parquet": _check_parquet,
    "interop": _check_interop,
    "plots": _check_plots,
    "cli-plot-command": _check_cli_plot,
}
#: Set-up a named block needs in its folder before it runs.
BEFORE: dict[str, Callable[[Path], None]] = {
    "cli-plot-command": lambda cwd: (cwd / "docs").mkdir(exist_ok=True),
}


# ---------------------------------------------------------------- running the blocks


def _run_python(block: Block, cwd: Path) -> tuple[str, dict[str, Any]]:
    if block.name in SCRIPTS:
        script = cwd / f"{block.name}.py"
        script.write_text(block.body)
        done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=cwd,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert done.returncode == 0, f"{block.where}: {done.stderr}"
        return done.stdout, {}
    namespace: dict[str, Any] = {"__name__": "__main__"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block.body, block.where, "exec"), namespace)
    return out.getvalue(), namespace


def _run_cli(words: list[str], where: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(words)
    assert (code, err.getvalue()) == (0, ""), f"{where}: mlos-store {shlex.join(words)}"
    return out.getvalue()


def _run_sh(block: Block) -> None:
    for line in block.body.strip().splitlines():
        for step in (part.strip() for part in line.split("&&")):
            words = shlex.split(step, comments=True)
            if step in SETUP_STEPS:
                continue
            if words[:2] == ["pip", "install"]:
                for spec in words[2:]:
                    extras = re.fullmatch(r"(?:\.|mlos_store)(?:\[([\w,-]+)\])?", spec.removeprefix("-e"))
                    assert extras or spec == "-e", f"{block.where}: pip installs {spec!r}, not mlos_store"
                    if extras and extras.group(1):
                        assert set(extras.group(1).split(",")) <= EXTRAS, f"{block.where}: unknown extra in {spec}"
            elif words[:3] == ["python", "-m", "mlos_store.demo"]:
                with contextlib.redirect_stdout(io.StringIO()):
                    assert demo.main(words[3:]) == 0, block.where
            elif words[:2] == ["mlos-store", "serve"]:  # a server runs until stopped: tests/test_web.py runs it
                assert cli.build_parser().parse_args(words[1:]).path, block.where
            elif words[0] == "mlos-store":
                _run_cli(words[1:], block.where)
            elif words[0] == "mlos-store-bench":
                assert block.name == "mlos-bench-command", f"{block.where}: run by tests/test_mlos_bench_e2e.py"
            else:
                raise AssertionError(f"{block.where}: no test runs {step!r}")


def _run_jsonc(block: Block) -> None:
    assert block.name == "mlos-bench-storage-config", f"{block.where}: no test uses this config"
    config = jsonc(block.body)
    assert isinstance(config, dict) and config["class"] == "mlos_store.mlos_bench.MlosStoreStorage"
    if importlib.util.find_spec("mlos_bench") is not None:  # the [mlos-bench] extra: build it as mlos_bench does
        from mlos_store.mlos_bench import MlosStoreStorage

        MlosStoreStorage(config=config["config"]).store.close()


def _rewrite(page: Path, replacements: list[tuple[Block, str]]) -> None:
    """Put each output block's new text in place (bottom up, so line numbers stay right)."""
    lines = page.read_text().splitlines(keepends=True)
    for block, text in sorted(replacements, key=lambda item: -item[0].line):
        lines[block.line:block.line + block.size] = [text if text.endswith("\n") or not text else text + "\n"]
    page.write_text("".join(lines))


@pytest.mark.parametrize("page", pages(), ids=lambda page: str(page.relative_to(DOCS)))
def test_every_code_block_of_the_page_runs_and_prints_what_it_shows(page: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    found = blocks(page)
    replacements: list[tuple[Block, str]] = []
    index = 0
    while index < len(found):
        block = found[index]
        index += 1
        if block.name in BEFORE:
            BEFORE[block.name](tmp_path)
        namespace: dict[str, Any] = {}
        if block.lang == "python":
            outputs = []
            while index < len(found) and found[index].marker == "output":
                outputs.append(found[index])
                index += 1
            for run in range(max(1, len(outputs))):
                printed, namespace = _run_python(block, tmp_path)
                if run < len(outputs):
                    if WRITE:
                        replacements.append((outputs[run], printed))
                    else:
                        assert printed == outputs[run].body, f"{outputs[run].where}: not what {block.where} prints"
        elif block.lang == "console":
            command, _, shown = block.body.partition("\n")
            assert command.startswith("$ mlos-store "), f"{block.where}: a console block is one mlos-store command"
            printed = _run_cli(shlex.split(command)[2:], block.where)
            if WRITE:
                replacements.append((block, command + "\n" + printed))
            else:
                assert _without_file_size(printed) == _without_file_size(shown), f"{block.where}: {command}"
        elif block.lang == "sh":
            _run_sh(block)
        elif block.lang == "jsonc":
            _run_jsonc(block)
        else:
            raise AssertionError(f"{block.where}: a {block.lang or 'plain'} block that no test runs")
        if block.name in CHECKS:
            CHECKS[block.name](namespace, tmp_path)
    if replacements:
        _rewrite(page, replacements)


def test_every_check_has_its_block() -> None:
    for name in CHECKS:
        named(name)  # exactly one block of that name
    assert named("mlos-bench-command").lang == "sh"


def test_the_mlos_bench_how_to_is_what_the_end_to_end_test_runs() -> None:
    command = mlos_bench_command()
    assert command[0] == "mlos-store-bench" and "--storage" in command
    assert mlos_bench_storage_config() == {"class": "mlos_store.mlos_bench.MlosStoreStorage",
                                           "config": {"path": "results.duckdb"}}
    e2e = (ROOT / "tests" / "test_mlos_bench_e2e.py").read_text()
    assert "mlos_bench_command()" in e2e and "mlos_bench_storage_config()" in e2e


# ---------------------------------------------------------------- the generated pages


def _hooks() -> Any:
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_command_line_reference_lists_every_command_and_option() -> None:
    hooks = _hooks()
    page = hooks.command_line_reference()
    parser = cli.build_parser()
    commands = hooks.subcommands(parser)
    assert {"info", "results", "telemetry", "sql", "demo"} <= set(commands)
    for name, command in commands.items():
        assert f"## `{name}`" in page
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            for option in action.option_strings:
                assert f"`{option}`" in page, (name, option)
    assert "default `960x540`" in page and "one of `text`, `json`" in page


def test_sql_catalog_reference_lists_every_query_with_kind_and_doc() -> None:
    page = _hooks().sql_catalog_reference()
    catalog = load_catalog()
    for query in catalog.queries.values():
        row = next(line for line in page.splitlines() if line.startswith(f"| `{query.name}` |"))
        assert f"`:{query.kind}`" in row and query.doc.split()[0] in row
        assert all(f"`${param}`" in row for param in query.params)
    assert page.count("| `sql/schema/") == catalog.schema_version


def test_design_and_benchmarks_pages_include_their_files() -> None:
    hooks = _hooks()
    assert hooks.on_page_markdown((DOCS / "design.md").read_text(), None, None, None) == \
        (ROOT / "DESIGN.md").read_text() + "\n"
    assert "mlos_bench" in hooks.on_page_markdown((DOCS / "benchmarks.md").read_text(), None, None, None)
    with pytest.raises(ValueError, match="outside the repository"):
        hooks.include("../etc/passwd")


def test_api_reference_covers_every_public_name() -> None:
    directives = {line.split()[1] for path in (DOCS / "reference").glob("*.md")
                  for line in path.read_text().splitlines() if line.startswith("::: ")}
    for name in mlos_store.__all__:
        module = getattr(mlos_store, name).__module__
        assert f"mlos_store.{name}" in directives or module in directives, name

