"""``libedge config show``: print the effective configuration, secrets masked."""

from __future__ import annotations

import argparse
import json
import sys

HELP = "show the effective configuration (file + LIBEDGE_ environment), secrets masked"


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``show`` action and its options."""
    parser.add_argument("action", choices=["show"])
    parser.add_argument("--config", help="TOML file (default: $LIBEDGE_CONFIG or /etc/libedge)")
    parser.add_argument("--format", choices=["toml", "json"], default="toml")


def _toml_value(value: object) -> str:
    # JSON's string, number, boolean and array syntax is valid TOML for the values we hold.
    return json.dumps(value, ensure_ascii=False)


def _to_toml(data: dict[str, object], prefix: str = "") -> list[str]:
    scalars = [(k, v) for k, v in data.items() if not isinstance(v, dict)]
    tables = [(k, v) for k, v in data.items() if isinstance(v, dict)]
    lines = [f"{k} = {_toml_value(v)}" for k, v in scalars if v is not None]
    lines += [f"# {k} is not set" for k, v in scalars if v is None]
    for key, table in tables:
        name = f"{prefix}{key}"
        lines += ["", f"[{name}]", *_to_toml(table, f"{name}.")]
    return lines


def run(args: argparse.Namespace) -> int:
    """Load the configuration and print it, or print why it cannot be loaded."""
    from edge_agent.config import ConfigError, load_config

    try:
        settings = load_config(args.config)
    except ConfigError as exc:
        print(f"libedge: configuration error: {exc}", file=sys.stderr)
        return 2
    data = settings.masked()
    if args.format == "json":
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        print("\n".join(_to_toml(data)).lstrip("\n"))
    return 0
