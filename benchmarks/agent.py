"""The edge agent's benchmarks: the durable outbox and the MQTT link's drain, in one report.

``python -m benchmarks agent [--quick]`` runs :mod:`benchmarks.agent_outbox` (durable
appends and their latency, beside raw sqlite3) and :mod:`benchmarks.agent_drain` (a
backlog through the link, beside a raw paho QoS 1 loop; the agent's memory with the
backlog). Each part measures its own baseline in the same run; see those modules.
"""

from __future__ import annotations

from benchmarks import agent_drain, agent_outbox


def run(quick: bool) -> dict[str, object]:
    """Both parts; quick=True is a smoke run that finishes in well under a minute."""
    outbox = agent_outbox.run(quick)
    drain = agent_drain.run(quick)
    return {
        "outbox": outbox,
        "drain": drain,
        "targets_met": {
            "outbox_throughput_ratio": _met(outbox["throughput"]),
            "outbox_p99_ratio": _met(outbox["latency"]),
            "drain_ratio": drain["ratio_ok"],
            "rss": drain["rss_ok"],
        },
    }


def _met(part: object) -> bool:
    """A part's ``meets_target`` flag (False if it has none)."""
    return isinstance(part, dict) and part.get("meets_target") is True
