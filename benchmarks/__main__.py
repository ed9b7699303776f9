"""``python -m benchmarks NAME [--quick]``: run one benchmark module and print its JSON report."""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time

NAMES = ("rfid", "agent", "gate", "kiosk")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("name", choices=NAMES)
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke check")
    args = parser.parse_args(argv)
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
