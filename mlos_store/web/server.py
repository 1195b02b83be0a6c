"""The web view's HTTP server: the standard library's threading server, Jinja2 pages, JSON endpoints.

Why the standard library's server: the view serves one person's browser
and a few scripts on a local machine, every request reads the store under
one lock (a store's engine serves one caller at a time), so an async
framework would add dependencies without adding throughput.

Safety: only GET and HEAD are answered; a URL is split into segments that
are matched against fixed routes, never joined into a file path (the two
static files are read from the package once, at start); every value reaches
HTML through Jinja2's autoescaping; unknown ids and bad parameters give an
error page (404 / 400), never a traceback.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import jinja2
import pyarrow as pa
from markupsafe import Markup

from ..errors import InvalidValueError, StoreError, UnknownObjectError
from ..storage import Storage
from . import charts, pages

#: The files under ``static/`` a page may ask for, with their content types.
STATIC_FILES = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
_INTEGER = re.compile(r"^[0-9]{1,18}$")


@dataclass
class Response:
    status: HTTPStatus
    content_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class WebView:
    """Turns a GET path into a response, reading the store under one lock."""

    def __init__(self, storage: Storage, poll_seconds: float) -> None:
        self._storage = storage
        self._lock = threading.Lock()
        self._poll_ms = int(poll_seconds * 1000)
        self._charts = charts.ChartCache()
        self._templates = jinja2.Environment(
            loader=jinja2.PackageLoader("mlos_store.web", "templates"), autoescape=True,
            undefined=jinja2.StrictUndefined)
        self._templates.filters["url"] = lambda value: quote(str(value), safe="")
        self._templates.filters["cell"] = cell_text
        self._static = {name: resources.files("mlos_store.web").joinpath("static", name).read_bytes()
                        for name in STATIC_FILES}
        self._routes: list[tuple[tuple[str, ...], Callable[..., Response]]] = [
            ((), self.experiments_html),
            (("static", "*"), self.static_file),
            (("experiments", "*"), self.experiment_html),
            (("experiments", "*", "telemetry"), self.telemetry_html),
            (("experiments", "*", "charts", "*"), self.experiment_chart_html),
            (("experiments", "*", "trials", "#"), self.trial_html),
            (("experiments", "*", "trials", "#", "chart"), self.trial_chart_html),
            (("api", "state"), self.state_json),
            (("api", "experiments"), self.experiments_json),
            (("api", "experiments", "*"), self.experiment_json),
            (("api", "experiments", "*", "telemetry"), self.telemetry_json),
            (("api", "experiments", "*", "trials"), self.trials_json),
            (("api", "experiments", "*", "trials", "#"), self.trial_json),
        ]

    def respond(self, target: str) -> Response:
        """The response to GET ``target`` (a path with an optional query string)."""
        url = urlsplit(target)
        segments = tuple(unquote(part) for part in url.path.strip("/").split("/") if part)
        query = {name: values[-1] for name, values in parse_qs(url.query).items()}
        try:
            handler, arguments = self._route(segments)
            with self._lock:
                return handler(*arguments, query)
        except UnknownObjectError as missing:
            return self.error_page(HTTPStatus.NOT_FOUND, _message(missing), segments)
        except InvalidValueError as refused:
            return self.error_page(HTTPStatus.BAD_REQUEST, str(refused), segments)
        except StoreError as failed:
            return self.error_page(HTTPStatus.SERVICE_UNAVAILABLE, str(failed), segments)

    def forget_charts(self) -> None:
        """Draw every chart afresh from now on (what a first view of each page costs; for benchmarks)."""
        with self._lock:
            self._charts = charts.ChartCache()

    def _route(self, segments: tuple[str, ...]) -> tuple[Callable[..., Response], list[Any]]:
        """The handler of a path and its arguments (``*`` any segment, ``#`` a trial id)."""
        for pattern, handler in self._routes:
            if len(pattern) != len(segments):
                continue
            arguments: list[Any] = []
            for expected, segment in zip(pattern, segments):
                if expected == "*":
                    arguments.append(segment)
                elif expected == "#" and _INTEGER.match(segment):
                    arguments.append(int(segment))
                elif expected != segment:
                    break
            else:
                return handler, arguments
        raise UnknownObjectError("no such page")

    # ------------------------------------------------------------ pages

    def experiments_html(self, query: dict[str, str]) -> Response:
        return self.html("experiments.html", page=pages.experiments_page(self._storage), title="Experiments",
                         state_url="/api/state")

    def experiment_html(self, experiment_id: str, query: dict[str, str]) -> Response:
        page = pages.experiment_page(self._storage, experiment_id)
        trials = pages.trials_page(self._storage, experiment_id, **_trials_query(query))
        x = query.get("x") or (page["tunables"][0] if page["tunables"] else None)
        return self.html("experiment.html", page=page, trials=trials, x=x, title=experiment_id,
                         chart_kinds=charts.experiment_chart_kinds(list(page["objectives"]), x),
                         state_url="/api/state", statuses=pages.STATUSES, query=query)

    def experiment_chart_html(self, experiment_id: str, kind: str, query: dict[str, str]) -> Response:
        """One chart of an experiment page, on a page of its own: the experiment page loads it after itself."""
        data = pages.experiment_of(self._storage, experiment_id)
        x = query.get("x") or None
        key = (experiment_id, kind, x, pages.chart_state(self._storage, experiment_id))
        chart = self._charts.kept(key, lambda: charts.experiment_chart(data, kind, x))
        return self.html("chart_page.html", chart=chart, experiment_id=experiment_id, title=chart.title,
                         state_url="")

    def telemetry_html(self, experiment_id: str, query: dict[str, str]) -> Response:
        return self.html("telemetry.html", page=self._telemetry_page(experiment_id),
                         title=f"{experiment_id} telemetry", state_url="/api/state")

    def _telemetry_page(self, experiment_id: str) -> dict[str, Any]:
        """``pages.telemetry_page``, kept as charts are: it reads every point of the experiment."""
        key = (experiment_id, "telemetry statistics", pages.chart_state(self._storage, experiment_id))
        page: dict[str, Any] = self._charts.kept(key, lambda: pages.telemetry_page(self._storage, experiment_id))
        return page

    def trial_html(self, experiment_id: str, trial_id: int, query: dict[str, str]) -> Response:
        page = pages.trial_page(self._storage, experiment_id, trial_id)
        compared = self._compared(experiment_id, trial_id, query)
        return self.html("trial.html", page=page, compared=compared[1:], title=f"{experiment_id} trial {trial_id}",
                         state_url="/api/state")

    def trial_chart_html(self, experiment_id: str, trial_id: int, query: dict[str, str]) -> Response:
        """A trial's telemetry chart (with the trials compared to it), loaded by the trial page after itself."""
        data = pages.experiment_of(self._storage, experiment_id)
        compared = self._compared(experiment_id, trial_id, query)
        key = (experiment_id, "telemetry", tuple(compared), pages.chart_state(self._storage, experiment_id))
        chart = self._charts.kept(key, lambda: charts.telemetry_chart(data, compared))
        return self.html("chart_page.html", chart=chart, experiment_id=experiment_id, title=chart.title,
                         state_url="")

    def _compared(self, experiment_id: str, trial_id: int, query: dict[str, str]) -> list[int]:
        """The trial and those of ``?compare=``, each a trial of the experiment (else a 404)."""
        data = pages.experiment_of(self._storage, experiment_id)
        compared = [trial_id] + [other for other in _id_list(query.get("compare", "")) if other != trial_id]
        for trial in compared:
            pages.trial_of(data, trial)
        return compared

    def error_page(self, status: HTTPStatus, message: str, segments: tuple[str, ...]) -> Response:
        if segments[:1] == ("api",):
            return _json({"error": message, "status": status.value}, status)
        response = self.html("error.html", status=status, message=message, title=status.phrase, state_url="")
        response.status = status
        return response

    def static_file(self, name: str, query: dict[str, str]) -> Response:
        if name not in STATIC_FILES:
            raise UnknownObjectError(f"no static file {name!r}")
        return Response(HTTPStatus.OK, STATIC_FILES[name], self._static[name])

    def html(self, template: str, **values: Any) -> Response:
        text = self._templates.get_template(template).render(poll_ms=self._poll_ms, Markup=Markup, **values)
        return Response(HTTPStatus.OK, "text/html; charset=utf-8", text.encode("utf-8"))

    # ------------------------------------------------------------ JSON

    def state_json(self, query: dict[str, str]) -> Response:
        return _json({"experiments": pages.store_state(self._storage)})

    def experiments_json(self, query: dict[str, str]) -> Response:
        return _json(pages.experiments_page(self._storage))

    def experiment_json(self, experiment_id: str, query: dict[str, str]) -> Response:
        return _json(pages.experiment_page(self._storage, experiment_id))

    def telemetry_json(self, experiment_id: str, query: dict[str, str]) -> Response:
        return _json(self._telemetry_page(experiment_id))

    def trials_json(self, experiment_id: str, query: dict[str, str]) -> Response:
        return _json(pages.trials_page(self._storage, experiment_id, **_trials_query(query)))

    def trial_json(self, experiment_id: str, trial_id: int, query: dict[str, str]) -> Response:
        return _json(pages.trial_page(self._storage, experiment_id, trial_id))


def _message(error: UnknownObjectError) -> str:
    """A KeyError's text without the quotes ``str(KeyError)`` adds."""
    return str(error.args[0]) if error.args else str(error)


def _trials_query(query: dict[str, str]) -> dict[str, Any]:
    """The trials table's parameters from a query string (status, sort, order, page)."""
    page = query.get("page", "1")
    if not _INTEGER.match(page):
        raise InvalidValueError(f"page must be a whole number, got {page!r}")
    return {"status": query.get("status") or None, "sort": query.get("sort", "trial_id"),
            "order": query.get("order", "asc"), "page": int(page)}


def _id_list(text: str) -> list[int]:
    ids = [part.strip() for part in text.split(",") if part.strip()]
    bad = [part for part in ids if not _INTEGER.match(part)]
    if bad:
        raise InvalidValueError(f"compare takes trial ids separated by commas, got {', '.join(map(repr, bad))}")
    return [int(part) for part in ids]


def _json(data: Any, status: HTTPStatus = HTTPStatus.OK) -> Response:
    body = json.dumps(data, ensure_ascii=False, allow_nan=False).encode("utf-8")
    return Response(status, "application/json; charset=utf-8", body)


def cell_text(value: Any) -> str:
    """A JSON-ready value as the text of a table cell (floats short, nested values as compact JSON)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = repr(value)
        return text if len(text) <= 12 else f"{value:.6g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


class _Handler(BaseHTTPRequestHandler):
    """One request: GET or HEAD only, answered by the server's WebView."""

    server: WebServer

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _answer(self, send_body: bool) -> None:
        try:
            response = self.server.view.respond(self.path)
        except Exception:  # a bug: the browser gets a plain 500, the console the traceback
            traceback.print_exc(file=sys.stderr)
            response = Response(HTTPStatus.INTERNAL_SERVER_ERROR, "text/plain; charset=utf-8",
                                b"internal error: see the server's output\n")
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                         "img-src 'self' data:")
        self.end_headers()
        if send_body:
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a browser polling every few seconds would flood the terminal."""


def warm() -> None:
    """Pay, before the first request, what a process pays once: so no page is slow for having been first.

    A first figure (``charts.warm``: matplotlib imported, its fonts loaded),
    and pyarrow's first timezone-aware timestamp turned into Python (which
    imports pandas when installed: 0.3-0.5 s).
    """
    charts.warm()
    pa.array([datetime.now(UTC)], pa.timestamp("us", tz="UTC")).to_pylist()


class WebServer(ThreadingHTTPServer):
    """A threading HTTP server over one store opened read-only in the shared mode."""

    daemon_threads = True

    def __init__(self, path: str | os.PathLike[str], *, host: str, port: int, poll_seconds: float) -> None:
        self.storage = Storage(path, read_only=True, mode="shared")
        try:
            warm()
            self.view = WebView(self.storage, poll_seconds)
            super().__init__((host, port), _Handler)
        except BaseException:
            self.storage.close()
            raise

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A browser that left before its answer was written is no error; anything else is reported."""
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://{name if ':' not in name else f'[{name}]'}:{port}/"

    def close(self) -> None:
        """Stop listening and close the store."""
        self.server_close()
        self.storage.close()
