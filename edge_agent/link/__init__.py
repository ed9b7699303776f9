"""The edge agent's MQTT link to the central library system.

Modules, lowest first:

``backoff``     jittered exponential reconnect delays
``events``      the records paho callbacks hand to the worker thread
``broker``      broker URL, TLS context, Last Will, what a failed connection attempt means
``connection``  :class:`MqttConnection`: one MQTT v5 connection per device identity, TLS,
                credentials, Last Will, persistent session, reconnects (network thread)
``envelope``    outbox row -> Envelope JSON bytes
``downlink``    checking what central sends (receipts, answers, caches, commands)
``marks``       :class:`MarkWriter`: SENT/CONFIRMED marks committed off the hot path
``delivery``    :class:`Delivery`: the bounded window, receipts, re-sends, refusals
``answers``     :class:`Offline`, the typed "central cannot answer" result of ``ask``
``options``     :class:`LinkOptions`, :class:`LinkStatus`, counters
``inbound``     applying what central sends (receipts, answers, caches, commands)
``link``        :class:`AgentLink`: the worker thread that wires the above together

Errors: a bad broker setting raises :class:`LinkConfigError` (a ``ValueError``) when the
link is built. Nothing else raises to callers: problems while running (broker
unreachable, credentials refused, TLS, an event refused by the ACL) are reported in
:meth:`AgentLink.status` and the log, refused events are dead-lettered with their reason,
and ``ask`` answers :class:`Offline` instead of raising.
"""

from edge_agent.link.answers import AskResult, Offline
from edge_agent.link.broker import LinkConfigError
from edge_agent.link.connection import LinkPhase
from edge_agent.link.events import ProblemKind
from edge_agent.link.link import AgentLink, LinkOptions, LinkStatus

__all__ = [
    "AgentLink",
    "AskResult",
    "LinkConfigError",
    "LinkOptions",
    "LinkPhase",
    "LinkStatus",
    "Offline",
    "ProblemKind",
]
