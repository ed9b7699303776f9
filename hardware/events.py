"""Delivery of a device thread's events: to the caller's callback, or to a queue it drains.

Card readers and scanners run their own threads and report taps, scans and problems as
events. A caller either passes a callback (called on the device thread) or reads events with
``get_event``. A callback that raises must not kill the device thread; the failure is logged
with its traceback but without the event, which may hold a patron's card number.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["EventDelivery"]

E = TypeVar("E")


class EventDelivery(Generic[E]):
    """Hands events to ``on_event`` when given, else queues them for :meth:`get`."""

    def __init__(
        self, on_event: Callable[[E], None] | None, log: logging.Logger, what: str
    ) -> None:
        self._on_event = on_event
        self._events: queue.Queue[E] = queue.Queue()
        self._log = log
        self._what = what

    def get(self, timeout: float | None = None) -> E | None:
        """Wait for the next queued event; ``None`` on timeout."""
        try:
            return self._events.get(timeout=timeout)
        except queue.Empty:
            return None

    def emit(self, event: E) -> None:
        """Deliver one event; a failing callback is logged, never raised into the device thread."""
        if self._on_event is None:
            self._events.put(event)
            return
        try:
            self._on_event(event)
        except Exception:
            self._log.exception(
                "%s event callback failed on a %s", self._what, type(event).__name__
            )
