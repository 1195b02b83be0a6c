"""``mlos-store serve`` over HTTP: every page and JSON endpoint, escaping, refusals, a writer beside it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow.compute as pc
import pytest
from webview import (
    HOSTILE,
    HOSTILE_ID,
    HOSTILE_METRIC,
    HOSTILE_TELEMETRY,
    HOSTILE_TUNABLE,
    MERGED,
    PLAIN_ID,
    TRIALS,
    build_store,
    running_server,
)

from mlos_store import Storage
from mlos_store.cli import main
from mlos_store.web.pages import PAGE_ROWS
from mlos_store.web.server import WebServer

pytest.importorskip("jinja2")  # the [web] extra; the [test] extra installs it


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_store(tmp_path_factory.mktemp("web") / "store.duckdb")


@pytest.fixture(scope="module")
def server(store: Path) -> Iterator[WebServer]:
    with running_server(store) as running:
        yield running


def get(server: WebServer, path: str) -> tuple[int, str, str]:
    """(status, content type, body) of GET ``path``; error statuses are answers too."""
    try:
        with urllib.request.urlopen(server.url.rstrip("/") + path, timeout=60) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


def get_json(server: WebServer, path: str) -> Any:
    status, kind, body = get(server, path)
    assert (status, kind) == (200, "application/json; charset=utf-8"), body
    return json.loads(body)


def experiment_url(experiment_id: str) -> str:
    return "/experiments/" + quote(experiment_id, safe="")


def test_the_experiments_endpoint_lists_each_experiment_with_counts_and_best(server: WebServer, store: Path) -> None:
    listed = get_json(server, "/api/experiments")["experiments"]
    with Storage(store, read_only=True) as storage:
        expected = storage.experiments
        best = {eid: data.ranked().slice(0, 1).to_pylist()[0] for eid, data in expected.items()}
    assert [e["experiment_id"] for e in listed] == sorted(expected) == sorted([PLAIN_ID, HOSTILE_ID])
    for entry in listed:
        assert entry["trials"] == TRIALS
        assert entry["by_status"]["SUCCEEDED"] == TRIALS - 1 and entry["by_status"]["FAILED"] == 1
        assert entry["description"] == f"about {HOSTILE}"
        assert entry["best"]["trial_id"] == best[entry["experiment_id"]]["trial_id"]


def test_the_trials_endpoint_sorts_filters_and_pages_the_results_table(server: WebServer, store: Path) -> None:
    base = "/api" + experiment_url(HOSTILE_ID) + "/trials"
    metric = f"result.{HOSTILE_METRIC}"
    with Storage(store, read_only=True) as storage:
        table = storage.experiments[HOSTILE_ID].results_table
    page = get_json(server, base)
    assert [row["trial_id"] for row in page["rows"]] == table["trial_id"].to_pylist()
    assert (page["total"], page["pages"]) == (TRIALS, 1)
    succeeded = get_json(server, f"{base}?status=SUCCEEDED&sort={quote(metric)}&order=desc")
    values = [row[metric] for row in succeeded["rows"]]
    assert values == sorted(values, reverse=True) and len(values) == TRIALS - 1
    assert {row["status"] for row in succeeded["rows"]} == {"SUCCEEDED"}
    failed = get_json(server, f"{base}?status=FAILED")
    assert [row["result.error"] for row in failed["rows"]] == [HOSTILE]
    assert failed["rows"][0]["config.mode"] == HOSTILE


def test_the_experiment_and_trial_endpoints_give_what_the_library_reads(server: WebServer, store: Path) -> None:
    page = get_json(server, "/api" + experiment_url(HOSTILE_ID))
    telemetry = get_json(server, "/api" + experiment_url(HOSTILE_ID) + "/telemetry")
    trial = get_json(server, "/api" + experiment_url(HOSTILE_ID) + "/trials/3")
    with Storage(store, read_only=True) as storage:
        data = storage.experiments[HOSTILE_ID]
        front = data.best()["trial_id"].to_pylist()
        stored = data.trials[3]
        summary = data.telemetry_summary()
        results, config, metadata = stored.results_dict, stored.tunable_config.config_dict, stored.metadata_dict
    assert page["objectives"] == {HOSTILE_METRIC: "min", "cost": "max"}
    assert [row["trial_id"] for row in page["pareto_front"]] == front
    [metric] = telemetry["metrics"]
    assert metric["metric"] == HOSTILE_TELEMETRY
    assert metric["points"] == pc.sum(summary["count"]).as_py()
    assert metric["max"] == pc.max(summary["max"]).as_py()
    assert (trial["results"], trial["config"], trial["trial_config"]) == (results, config, metadata)
    assert trial["status"] == "SUCCEEDED" and len(trial["telemetry"]) == 1


def test_the_experiment_endpoints_list_each_experiments_merges(server: WebServer, store: Path) -> None:
    listed = {e["experiment_id"]: e["merges"] for e in get_json(server, "/api/experiments")["experiments"]}
    pages = {eid: get_json(server, "/api" + experiment_url(eid))["merges"] for eid in MERGED}
    with Storage(store, read_only=True) as storage:
        expected = {eid: [{"experiment_id": merged, "ts_merged": ts.isoformat()} for merged, ts in data.merges]
                    for eid, data in storage.experiments.items()}
    assert listed == pages == expected
    assert [merge["experiment_id"] for merge in expected[PLAIN_ID]] == MERGED[PLAIN_ID] and expected[HOSTILE_ID] == []


@pytest.mark.parametrize("path", ["/", experiment_url(PLAIN_ID)])
def test_the_experiments_list_and_page_link_each_merged_experiment(server: WebServer, path: str) -> None:
    body = get(server, path)[2]
    escaped = "exp &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &#39;q&#39; &amp; é ✓ 日本"
    link = f'<a class="merge-link" href="{experiment_url(HOSTILE_ID)}">{escaped}</a>'
    assert body.count(link) == 1
    if path == "/":  # the hostile experiment merges nothing
        assert body.count('<td class="merges">none</td>') == 1


def test_the_trial_endpoint_and_page_show_its_status_history(server: WebServer, store: Path) -> None:
    trial = get_json(server, "/api" + experiment_url(HOSTILE_ID) + "/trials/3")
    body = get(server, experiment_url(HOSTILE_ID) + "/trials/3")[2]
    with Storage(store, read_only=True) as storage:
        history = storage.experiments[HOSTILE_ID].trials[3].status_history()
    assert trial["status_history"] == [{"ts": ts.isoformat(), "status": status.name} for ts, status in history]
    assert [change["status"] for change in trial["status_history"]] == ["PENDING", "RUNNING", "SUCCEEDED"]
    rows = re.findall(r"<tr><td>([^<]*)</td><td><span class=\"status status-(\w+)\">",
                      body.split('id="status-history"', 1)[1].split("</table>", 1)[0])
    assert rows == [(ts.isoformat(), status.name) for ts, status in history]


@pytest.mark.parametrize("path", ["/", experiment_url(HOSTILE_ID), experiment_url(PLAIN_ID),
                                  experiment_url(HOSTILE_ID) + "/trials/2",
                                  experiment_url(HOSTILE_ID) + "/telemetry",
                                  experiment_url(HOSTILE_ID) + "/charts/history",
                                  experiment_url(HOSTILE_ID) + "/charts/pareto",
                                  experiment_url(HOSTILE_ID) + "/charts/results?x="
                                  + quote(f"config.{HOSTILE_TUNABLE}"),
                                  experiment_url(HOSTILE_ID) + "/trials/2/chart?compare=3",
                                  experiment_url(HOSTILE_ID) + "/trials/2?compare=3,4",
                                  experiment_url(HOSTILE_ID) + "?status=FAILED&sort=config.mode&order=desc"])
def test_every_stored_string_is_escaped_in_every_page(server: WebServer, path: str) -> None:
    status, kind, body = get(server, path)
    assert (status, kind) == (200, "text/html; charset=utf-8")
    assert "<script>alert" not in body
    assert len(re.findall(r"<script\b", body)) == 1  # the page's own app.js, nothing stored
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &#39;q&#39; &amp; é ✓ 日本" in body


@pytest.mark.parametrize(("path", "status"), [
    ("/experiments/nope", 404), (experiment_url(PLAIN_ID) + "/trials/99", 404),
    (experiment_url(PLAIN_ID) + "/trials/x", 404), ("/static/../../etc/passwd", 404),
    ("/static/%2e%2e%2f%2e%2e%2fetc%2fpasswd", 404), ("/static/server.py", 404), ("/nope", 404),
    ("/api/experiments/nope", 404), ("/experiments/nope/telemetry", 404),
    (experiment_url(PLAIN_ID) + "/charts/nope", 404), (experiment_url(PLAIN_ID) + "/trials/2/chart?compare=99", 404),
    (experiment_url(PLAIN_ID) + "?sort=nope", 400),
    (experiment_url(PLAIN_ID) + "?status=DONE", 400), (experiment_url(PLAIN_ID) + "?page=9", 400),
    (experiment_url(PLAIN_ID) + "/trials/2?compare=x", 400), (experiment_url(PLAIN_ID) + "/trials/2?compare=99", 404),
])
def test_unknown_ids_and_bad_parameters_give_an_error_page_not_a_traceback(server: WebServer, path: str,
                                                                          status: int) -> None:
    code, kind, body = get(server, path)
    assert code == status
    assert "Traceback" not in body and "root:" not in body
    if kind.startswith("text/html"):
        assert f"<h1>{status} " in body
    api = get(server, "/api" + path) if path.startswith("/experiments/") and "?" not in path else None
    if api is not None:
        assert api[0] == status and json.loads(api[2])["status"] == status


def test_requests_only_read(server: WebServer, store: Path) -> None:
    before = store.read_bytes()
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        request = urllib.request.Request(server.url + "api/experiments", data=b"{}", method=method)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 501
    with Storage(store, read_only=True) as storage:
        assert sorted(storage.experiments) == sorted([PLAIN_ID, HOSTILE_ID])
    assert store.read_bytes() == before


def test_the_trials_table_pages_a_large_experiment(tmp_path: Path) -> None:
    path = tmp_path / "many.duckdb"
    with Storage(path) as storage, storage.experiment(experiment_id="many", trial_id=1, root_env_config="e",
                                                      description="d", tunables={"x": 0},
                                                      opt_targets={"y": "min"}) as exp:
        for n in range(PAGE_ROWS + 5):
            exp.new_trial({"x": n})
    with running_server(path) as running:
        last = get_json(running, "/api/experiments/many/trials?page=2")
        html = get(running, "/experiments/many?page=2")[2]
    assert (last["total"], last["pages"]) == (PAGE_ROWS + 5, 2)
    assert [row["trial_id"] for row in last["rows"]] == list(range(PAGE_ROWS + 1, PAGE_ROWS + 6))
    assert 'id="previous-page"' in html and 'id="next-page"' not in html


WRITER = textwrap.dedent("""
    import sys
    from datetime import UTC, datetime
    from mlos_store import Status, Storage
    path, count = sys.argv[1], int(sys.argv[2])
    with Storage(path, timeout=30) as storage:
        exp = storage.get_experiment_by_id("plain")
        with exp:
            for n in range(count):
                trial = exp.new_trial({"knob": 100 + n, "mode": "w"})
                trial.update(Status.RUNNING, datetime.now(UTC))
                trial.update(Status.SUCCEEDED, datetime.now(UTC), {"latency": float(n), "cost": 1.0})
    print("wrote", count)
""")


def test_a_writer_beside_a_polled_server_loses_nothing_and_never_times_out(tmp_path: Path) -> None:
    path = build_store(tmp_path / "live.duckdb")
    count = 40
    with running_server(path) as running:
        before = get(running, experiment_url(PLAIN_ID) + "/charts/history")[2]
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(count)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        seen = []
        while writer.poll() is None:  # poll as a browser would: the state, then the page
            state = get_json(running, "/api/state")["experiments"]
            seen.append(next(e["trials"] for e in state if e["experiment_id"] == PLAIN_ID))
            assert get(running, experiment_url(PLAIN_ID))[0] == 200
        out, err = writer.communicate()
        assert (writer.returncode, out, err) == (0, f"wrote {count}\n", "")
        final = get_json(running, "/api/experiments/plain/trials?status=SUCCEEDED&page=1")
        after = get(running, experiment_url(PLAIN_ID) + "/charts/history")[2]
    assert _history_svg(after) != _history_svg(before)  # charts drawn before the writes are not shown again
    assert seen == sorted(seen)  # counts only grow
    assert final["total"] == TRIALS - 1 + count
    with Storage(path, read_only=True) as storage:
        assert storage.experiments[PLAIN_ID].results_table.num_rows == TRIALS + count
        assert not any(storage.check_integrity().values())


def _history_svg(page: str) -> str:
    return page.split('data-chart="history"', 1)[1].split("</svg>", 1)[0]


def test_import_mlos_store_and_its_command_line_never_import_the_web_view() -> None:
    code = ("import sys\nimport mlos_store, mlos_store.cli\n"
            "print(sorted(m for m in ('jinja2', 'mlos_store.web', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out == "[]\n"


def test_a_server_loads_what_a_first_chart_needs_before_its_first_request(store: Path) -> None:
    """matplotlib, its SVG writer and the fonts are loaded when the server is made, not by the first page."""
    code = ("import sys\nfrom mlos_store.web import make_server\n"
            f"server = make_server({str(store)!r}, port=0)\n"
            "print(sorted(m for m in ('matplotlib', 'matplotlib.backends.backend_svg') if m in sys.modules))\n"
            "server.close()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out == "['matplotlib', 'matplotlib.backends.backend_svg']\n"


def test_serve_without_the_web_extra_says_what_to_install(store: Path, capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "jinja2", None)  # what an interpreter without Jinja2 sees
    assert main(["serve", str(store), "--port", "0"]) == 1
    assert capsys.readouterr().err == ("mlos-store: error: the web view needs jinja2, part of an optional extra: "
                                       "pip install 'mlos_store[web]'\n")


def test_serve_prints_its_address_and_answers_there(store: Path) -> None:
    process = subprocess.Popen([sys.executable, "-m", "mlos_store", "serve", str(store), "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.match(rf"serving {re.escape(str(store))} at (http://127\.0\.0\.1:\d+/) \(read-only", line)
        assert match, line + (process.stderr.read() if process.poll() is not None and process.stderr else "")
        with urllib.request.urlopen(match.group(1) + "api/experiments", timeout=60) as response:
            assert len(json.loads(response.read())["experiments"]) == 2
    finally:
        process.terminate()
        process.wait(timeout=60)


def test_serve_refuses_a_missing_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", str(tmp_path / "missing.duckdb"), "--port", "0"]) == 1
    assert "no such file" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
