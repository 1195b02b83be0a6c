"""``mlos-store serve``: a read-only web view of a store file, for a browser and for scripts.

Pages list the experiments, show one experiment (its trials table, its
optimization history, Pareto front, an objective against a tunable, its
telemetry statistics) and one trial (configs, results, telemetry over
time); each page's data is also a JSON endpoint (``mlos_store.web.pages``
builds both from the library's public read API, with no SQL of its own).
Charts are SVG drawn on the server by ``mlos_store.plot`` (matplotlib).

Jinja2 (HTML templates, escaping every value) and matplotlib are the
``[web]`` extra; this module imports them only when a server is made, so
``import mlos_store`` and the rest of the command line never need them.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING

from ..errors import MissingDependencyError

if TYPE_CHECKING:
    from .server import WebServer

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


def make_server(path: str | os.PathLike[str], *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                poll_seconds: float = 2.0) -> WebServer:
    """A server bound to ``host:port`` (port 0: any free one) over the store at ``path``, opened read-only.

    Call ``serve_forever()`` on it, and ``close()`` when done. Refused with
    MissingDependencyError, saying what to install, without the ``[web]`` extra.
    """
    for module in ("jinja2", "matplotlib"):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise MissingDependencyError(
                f"the web view needs {module}, part of an optional extra: pip install 'mlos_store[web]'"
            ) from exc
    from .server import WebServer

    return WebServer(path, host=host, port=port, poll_seconds=poll_seconds)
