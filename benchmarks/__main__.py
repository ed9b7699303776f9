"""``python -m benchmarks NAME [--quick]``: run one benchmark module and print its JSON report.

``python -m benchmarks report [--quick] [--out FILE] [--only NAME...]`` runs every benchmark,
each in its own process, and writes the Markdown page (see :mod:`benchmarks.report`).
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time

from benchmarks import report as report_page
from benchmarks.report import NAMES


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["report"]:
        return report_page.main(args_in[1:])
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        epilog="python -m benchmarks report --help: run them all and write docs/benchmarks.md",
    )
    parser.add_argument("name", choices=NAMES)
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke check")
    args = parser.parse_args(args_in)
    module = importlib.import_module(f"benchmarks.{args.name}")
    started = time.perf_counter()
    report = module.run(quick=args.quick)
    report["benchmark"] = args.name
    report["quick"] = args.quick
    report["seconds"] = round(time.perf_counter() - started, 2)
    report["machine"] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.machine(),
    }
    json.dump(report, sys.stdout, indent=2, ensure_ascii=False)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
