"""``libedge contract export DIR``: write the JSON Schemas and the AsyncAPI 3.0 document."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "export the event contract: JSON Schema per message and the AsyncAPI 3.0 document"


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``export`` action and the target directory."""
    parser.add_argument("action", choices=["export"])
    parser.add_argument("directory", type=Path)


def run(args: argparse.Namespace) -> int:
    """Write the documents and list them."""
    from edge_agent.contract.asyncapi import export

    for path in export(args.directory):
        print(path)
    return 0
