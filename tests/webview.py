"""Helpers of the web view's tests: a small store with hostile names, and a running server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from conftest import T0

from mlos_store import Status, Storage
from mlos_store.web import make_server
from mlos_store.web.server import WebServer

#: Every stored string of the hostile experiment holds markup, quotes and non-ASCII text.
HOSTILE = "<script>alert(\"x\")</script> 'q' & é ✓ 日本"
HOSTILE_ID = f"exp {HOSTILE}"
HOSTILE_TUNABLE = f"knob {HOSTILE}"
HOSTILE_METRIC = f"lat {HOSTILE}"
HOSTILE_TELEMETRY = f"cpu {HOSTILE}"
PLAIN_ID = "plain"
TRIALS = 8
#: The experiments each experiment of the store merges.
MERGED = {PLAIN_ID: [HOSTILE_ID], HOSTILE_ID: []}
POINTS = 50


def build_store(path: Path) -> Path:
    """Two experiments: a plain one and a hostile one (every name and value hostile), two objectives each.

    Trial 1 of each fails, the rest succeed; every trial has ``POINTS``
    points of one telemetry metric. The plain experiment merges the hostile
    one (``MERGED``), so a merge shows, and its link carries a hostile id.
    """
    with Storage(path) as storage:
        for experiment_id, tunable, metric, cpu in ((PLAIN_ID, "knob", "latency", "cpu"),
                                                     (HOSTILE_ID, HOSTILE_TUNABLE, HOSTILE_METRIC, HOSTILE_TELEMETRY)):
            with storage.experiment(experiment_id=experiment_id, trial_id=1, root_env_config=f"env {HOSTILE}",
                                    description=f"about {HOSTILE}",
                                    tunables={tunable: 1, "mode": HOSTILE},
                                    opt_targets={metric: "min", "cost": "max"}) as exp:
                for n in range(1, TRIALS + 1):
                    start = T0 + timedelta(minutes=n)
                    trial = exp.new_trial({tunable: n, "mode": HOSTILE if n % 2 else "b"}, start,
                                          config={"note": HOSTILE})
                    points = [(start + timedelta(seconds=s), cpu, float((s * n) % 17)) for s in range(POINTS)]
                    trial.update_telemetry(Status.RUNNING, start, points)
                    end = start + timedelta(seconds=POINTS)
                    if n == 1:
                        trial.update(Status.FAILED, end, {"error": HOSTILE})
                    else:
                        trial.update(Status.SUCCEEDED, end, {metric: float((n * 7) % 11), "cost": float(n)})
        plain = storage.get_experiment_by_id(PLAIN_ID)
        assert plain is not None
        with plain:
            plain.merge(MERGED[PLAIN_ID])
    return path


@contextmanager
def running_server(path: Path, poll_seconds: float = 2.0) -> Iterator[WebServer]:
    """``mlos-store serve``'s server on a free port, in a thread; stopped and closed after."""
    server = make_server(path, port=0, poll_seconds=poll_seconds)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join()
        server.close()
