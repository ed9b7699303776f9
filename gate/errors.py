"""The gate's exception tree: the few kinds of failure the gate agent's callers act on.

Errors are translated at the gate's boundaries (reader, agent, disk) into these, with the
original chained as ``__cause__``::

    GateError
    ├── GateConfigError      the configuration cannot work (no readers, a bad turn group,
    │                        an agent URL of an unknown kind); raised before anything starts
    ├── AgentUnavailable     the edge agent did not accept an event or a cache read now
    │   │                    (not running, refused the connection, timed out, a disk error
    │   │                    on its side); the gate keeps the event and tries again later
    │   └── AgentRejected    the agent will never accept this event (it fails the contract);
    │                        the gate dead-letters it in its own queue for staff, never drops it
    └── HandoverFull         the gate's own hand-over queue reached its cap; the event is held
                             in memory and the health snapshot says so

Nothing here is raised on the polling thread: a reader that vanishes, a garbled reply or an
agent that is down are reported in the health snapshot and the log, and polling goes on.
"""

from __future__ import annotations

__all__ = ["AgentRejected", "AgentUnavailable", "GateConfigError", "GateError", "HandoverFull"]


class GateError(Exception):
    """Base of every error the gate raises."""


class GateConfigError(GateError, ValueError):
    """The configuration cannot work; the message names the key and the reason."""


class AgentUnavailable(GateError):  # noqa: N818 - named for the condition, like the reader's
    """The edge agent cannot take the event (or answer) now; try again later."""


class AgentRejected(AgentUnavailable):
    """The edge agent refused the event for good (it does not follow the contract)."""


class HandoverFull(GateError):  # noqa: N818
    """The gate's hand-over queue is at its cap; the event could not be stored on disk."""
