"""``python -m simulators.reader``: the same as ``libedge sim reader``."""

from simulators.reader.cli import main

raise SystemExit(main())
