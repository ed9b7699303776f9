"""The typed answer to "ask central": central's :class:`Response`, or :class:`Offline`.

A kiosk asks central before it lends an item; when central cannot answer (the link is
down, the broker refused the request, or no answer came in time) the kiosk must decide on
its own, by its offline policy. That case is a value, not an exception: ``ask()`` returns
``Offline`` with a reason for the log and staff, and the kiosk branches on the type (or on
``outcome == "offline"`` in JSON). :class:`PendingRequests` pairs answers with the waiting
callers by MQTT v5 correlation data.
"""

from __future__ import annotations

import threading
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from edge_agent.contract import Response

__all__ = ["AskResult", "Offline", "OfflineKind", "PendingRequests"]

OfflineKind = Literal[
    "link_down", "timeout", "link_lost", "not_sent", "agent_unreachable", "stopping"
]


class Offline(BaseModel):
    """Central could not be asked or did not answer in time: decide offline."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    outcome: Literal["offline"] = "offline"
    kind: OfflineKind = Field(description="Why: link down, no answer in time, link lost, ...")
    reason: str = Field(description="A sentence for the log and staff (not for patrons).")
    request_id: UUID | None = None


AskResult = Response | Offline


class _Slot:
    """One caller waiting for its answer."""

    __slots__ = ("done", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: AskResult | None = None


class PendingRequests:
    """Requests waiting for an answer, keyed by correlation data (the request id's bytes).

    Callers (API threads) open and close slots; the link's worker thread resolves them.
    The lock is never taken inside a paho callback.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[bytes, _Slot] = {}

    def __len__(self) -> int:
        return len(self._slots)

    def open(self, key: bytes) -> _Slot:
        """Register a caller before its request is published (an answer may be quick)."""
        slot = _Slot()
        with self._lock:
            self._slots[key] = slot
        return slot

    def close(self, key: bytes) -> None:
        """Forget a caller (answered, timed out or never sent)."""
        with self._lock:
            self._slots.pop(key, None)

    def resolve(self, key: bytes, result: AskResult) -> bool:
        """Hand ``result`` to the caller waiting on ``key``; False when nobody waits (late)."""
        with self._lock:
            slot = self._slots.pop(key, None)
        if slot is None:
            return False
        slot.result = result
        slot.done.set()
        return True

    def fail_all(self, kind: OfflineKind, reason: str) -> int:
        """Answer every waiting caller with Offline (the link dropped); return how many."""
        with self._lock:
            slots, self._slots = self._slots, {}
        for key, slot in slots.items():
            slot.result = Offline(kind=kind, reason=reason, request_id=UUID(bytes=key))
            slot.done.set()
        return len(slots)
