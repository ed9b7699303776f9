"""``libedge agent run|status``: the edge agent service, and its staff view.

``libedge agent run --config FILE`` runs the agent until SIGTERM or SIGINT, then stops
cleanly (status "offline" published, last marks committed, clean MQTT disconnect). A
SIGKILL loses nothing committed; the next start re-sends what central has not confirmed.

``libedge agent status [--config FILE] [--json]`` asks the running agent's local API and
prints what staff need: link up or down and why, events waiting by state, the age of the
oldest unconfirmed event, the last contact with central, dead letters.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

HELP = "run the edge agent (outbox, MQTT link, local API), or show its status"


def configure(parser: argparse.ArgumentParser) -> None:
    """Add ``run`` and ``status`` and their options."""
    parser.add_argument("action", choices=["run", "status"])
    parser.add_argument("--config", help="TOML file (default: $LIBEDGE_CONFIG or /etc/libedge)")
    parser.add_argument("--json", action="store_true", help="status: print JSON")
    parser.add_argument(
        "--log-format", choices=["human", "json"], default="human", help="run: log line format"
    )
    parser.add_argument("--log-level", default="INFO", help="run: DEBUG, INFO, WARNING, ...")


def run(args: argparse.Namespace) -> int:
    """Run the agent or print its status."""
    from edge_agent.config import ConfigError, load_config

    try:
        settings = load_config(args.config)
    except ConfigError as exc:
        print(f"libedge: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.action == "run":
        return _run_agent(settings, args)
    return _status(settings, args)


def _run_agent(settings: Any, args: argparse.Namespace) -> int:
    from edge_agent.link import LinkConfigError
    from edge_agent.logs import setup_logging
    from edge_agent.outbox import OutboxError
    from edge_agent.service import AgentService, ServiceError

    setup_logging(args.log_format, args.log_level.upper())
    try:
        return AgentService(settings).run_until_signalled()
    except (ServiceError, OutboxError, LinkConfigError) as exc:
        print(f"libedge agent: cannot start: {exc}", file=sys.stderr)
        return 1


def _ago(when: dt.datetime | None) -> str:
    if when is None:
        return "never"
    seconds = (dt.datetime.now(dt.UTC) - when).total_seconds()
    return f"{when.isoformat(timespec='seconds')} ({_duration(seconds)} ago)"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _status(settings: Any, args: argparse.Namespace) -> int:
    from edge_agent.client import AgentClient, AgentError

    try:
        with AgentClient.from_settings(settings) as client:
            outbox = client.outbox()
            dead = client.dead_letters(limit=20)
    except AgentError as exc:
        print(f"libedge agent status: {exc}", file=sys.stderr)
        return 1
    if args.json:
        data = outbox.model_dump(mode="json")
        data["dead_letters"] = [d.model_dump(mode="json") for d in dead]
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    link = outbox.link
    state = "UP" if link.connected else f"DOWN ({link.phase})"
    lines = [
        f"device          {outbox.device_id}",
        f"link            {state} to {link.broker}",
    ]
    if link.problem:
        lines.append(f"problem         {link.problem}")
    if link.last_refusal:
        lines.append(f"last refusal    {link.last_refusal}")
    counts = outbox.counts
    lines += [
        f"last central    {_ago(link.last_central_contact)}",
        f"waiting         {outbox.unconfirmed} (pending {counts['pending']}, sent {counts['sent']},"
        f" in flight {link.inflight})",
        f"oldest waiting  {_duration(outbox.oldest_unconfirmed_age_s)}",
        f"confirmed       {counts['confirmed']} (kept for the retention period)",
        f"dead letters    {counts['dead']}"
        + (f" (oldest {_duration(outbox.oldest_dead_age_s)})" if counts["dead"] else ""),
        f"capacity        {outbox.held} of {outbox.max_events or 'unlimited'} events held",
    ]
    for item in dead:
        lines.append(f"  dead {item.device_id}/{item.seq} {item.kind}: {item.dead_reason}")
    print("\n".join(lines))
    return 0
