"""The web view in a real browser: Debian's headless Chromium driven by Playwright for Python.

The browser is required: without it these tests fail, saying what to
install (``.ci/run`` installs it), unless ``MLOS_STORE_SKIP_BROWSER_TESTS=1``
says to skip them on a machine that cannot have it. Screenshots of every
page are saved under the test's tmp folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_web import WRITER, experiment_url
from webview import HOSTILE_ID, HOSTILE_METRIC, HOSTILE_TELEMETRY, TRIALS, build_store, running_server

pytest.importorskip("jinja2")  # the [web] extra; the [test] extra installs it
if os.environ.get("MLOS_STORE_SKIP_BROWSER_TESTS") == "1":
    pytest.skip("MLOS_STORE_SKIP_BROWSER_TESTS=1: browser tests skipped on request", allow_module_level=True)

from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright  # noqa: E402


def chromium_path() -> str:
    """The system Chromium (Debian's ``chromium``), or a failure naming what to install."""
    path = os.environ.get("MLOS_STORE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("the browser tests need Chromium: apt-get install chromium (or set MLOS_STORE_CHROMIUM; "
                    "MLOS_STORE_SKIP_BROWSER_TESTS=1 skips them)")
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_store(tmp_path_factory.mktemp("web") / "store.duckdb")


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page whose console errors and uncaught exceptions are collected in ``page.errors``."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("console", lambda message: _keep_errors(message, errors))
    opened.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    opened.errors = errors  # type: ignore[attr-defined]
    yield opened
    context.close()


def _keep_errors(message: ConsoleMessage, errors: list[str]) -> None:
    if message.type == "error":
        errors.append(f"console: {message.text}")


def chart_marks(page: Page, kind: str) -> int:
    """How many drawn marks (paths, markers, raster layers) the chart ``kind`` holds, once it has loaded."""
    page.wait_for_selector(f'figure.chart[data-chart="{kind}"] svg')
    count: int = page.locator(f'figure.chart[data-chart="{kind}"] svg').locator("path, use, image").count()
    return count


def column_texts(page: Page, column: str) -> list[str]:
    headers = page.locator("#trials thead a.sort").evaluate_all("links => links.map(a => a.dataset.column)")
    index = headers.index(column)
    texts: list[str] = page.locator(f"#trials tbody tr td:nth-child({index + 1})").all_inner_texts()
    return texts


def test_browse_every_page_sort_filter_and_go_back(page: Page, store: Path, tmp_path: Path) -> None:
    with running_server(store) as server:
        page.goto(server.url)
        page.screenshot(path=tmp_path / "experiments.png", full_page=True)
        assert page.locator("#experiments tbody tr").count() == 2
        # a hostile name renders as text: the link shows it exactly, and no stored markup became an element
        link = page.locator("#experiments a.experiment-link").get_by_text(HOSTILE_ID, exact=True)
        assert link.inner_text() == HOSTILE_ID
        assert page.locator("script").count() == 1
        # the plain experiment merges the hostile one: a link to it, named as stored
        merge = page.locator("#experiments a.merge-link")
        assert merge.count() == 1 and merge.inner_text() == HOSTILE_ID
        assert merge.get_attribute("href") == link.get_attribute("href")

        merge.click()
        page.wait_for_selector("#trials")
        assert page.locator("#experiment-id").inner_text() == HOSTILE_ID
        assert page.locator("#merges").inner_text() == "none"
        assert page.locator("script").count() == 1
        assert chart_marks(page, "history") > TRIALS
        assert chart_marks(page, "pareto") > 0
        assert chart_marks(page, "results") > 0
        expect(page.locator("#telemetry-section #telemetry")).to_contain_text(HOSTILE_TELEMETRY)
        page.screenshot(path=tmp_path / "experiment.png", full_page=True)
        experiment_page = page.url

        metric = f"result.{HOSTILE_METRIC}"
        sort_link = page.locator(f"#trials a.sort[data-column={json.dumps(metric, ensure_ascii=False)}]")
        sort_link.click()
        page.wait_for_load_state()
        values = [float(text) for text in column_texts(page, metric) if text]
        assert values == sorted(values) and len(values) == TRIALS - 1
        sort_link.click()  # again: descending
        page.wait_for_load_state()
        values = [float(text) for text in column_texts(page, metric) if text]
        assert values == sorted(values, reverse=True)

        page.select_option("#status-filter", "FAILED")
        page.wait_for_url("**status=FAILED**")
        assert column_texts(page, "status") == ["FAILED"]
        page.select_option("#status-filter", "SUCCEEDED")
        page.wait_for_url("**status=SUCCEEDED**")
        assert column_texts(page, "status") == ["SUCCEEDED"] * (TRIALS - 1)
        page.screenshot(path=tmp_path / "experiment-filtered.png", full_page=True)

        page.locator("#trials a.trial-link").first.click()
        page.wait_for_selector("#trial-title")
        assert page.locator("#results th").all_inner_texts() == sorted(["cost", HOSTILE_METRIC])
        statuses = page.locator("#status-history tbody tr td:nth-child(2)").all_inner_texts()
        assert statuses == ["PENDING", "RUNNING", "SUCCEEDED"]
        assert chart_marks(page, "telemetry") > 0
        assert HOSTILE_TELEMETRY in page.locator("#telemetry").inner_text()
        page.fill("#compare", "3,4")
        page.get_by_role("button", name="overlay").click()
        page.wait_for_url("**compare=3%2C4**")
        assert chart_marks(page, "telemetry") > 0
        page.screenshot(path=tmp_path / "trial.png", full_page=True)

        page.go_back()
        page.go_back()
        page.wait_for_selector("#trials")
        assert "status=SUCCEEDED" in page.url
        page.goto(experiment_page)
        assert page.locator("#experiment-id").inner_text() == HOSTILE_ID

        page.goto(server.url + "experiments/nope")
        assert page.locator("h1").inner_text() == "404 Not Found"
    assert [e for e in page.errors if "404" not in e] == []  # type: ignore[attr-defined]
    # the 404 page is the only error the console saw: "Failed to load resource ... 404"
    assert len(page.errors) == 1  # type: ignore[attr-defined]
    assert {p.name for p in tmp_path.iterdir()} >= {"experiments.png", "experiment.png", "trial.png"}


def test_a_running_experiment_page_follows_new_trials(page: Page, tmp_path: Path) -> None:
    path = build_store(tmp_path / "live.duckdb")
    with running_server(path, poll_seconds=0.2) as server:
        page.goto(server.url + experiment_url("plain").lstrip("/"))
        page.wait_for_selector(".live:not([hidden])")
        assert page.locator("#trial-count").inner_text().startswith(f"{TRIALS} trial(s)")
        writer = subprocess.run([sys.executable, "-c", WRITER, str(path), "3"], capture_output=True, text=True,
                                timeout=120)
        assert writer.returncode == 0, writer.stderr
        expect(page.locator("#trial-count")).to_have_text(re.compile(rf"^{TRIALS + 3} trial"), timeout=60_000)
        assert column_texts(page, "trial_id")[-3:] == [str(TRIALS + n) for n in (1, 2, 3)]
        assert chart_marks(page, "history") > TRIALS
    assert page.errors == []  # type: ignore[attr-defined]

