"""``python -m mlos_store``: the ``mlos-store`` command line."""

from .cli import main

raise SystemExit(main())
