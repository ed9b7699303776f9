"""``python -m simulators.printer``: the same as ``libedge sim printer``."""

from simulators.printer.cli import main

raise SystemExit(main())
