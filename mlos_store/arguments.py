"""Argument types shared by the command-line parsers (``mlos-store`` and the demo)."""

from __future__ import annotations

import argparse
from datetime import datetime


def iso_timestamp(text: str) -> datetime:
    """An ISO 8601 timestamp; one without an offset is local time, as everywhere in mlos_store."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 timestamp: {text!r}") from None
