"""What arrives from central, applied: receipts, answers, cache updates, staff commands.

:class:`Inbound` runs on the link's worker thread. It checks each received message with
:func:`~edge_agent.link.downlink.read_downlink` (an unusable one is logged with its reason,
counted and ignored) and hands it on: receipts to :class:`~edge_agent.link.delivery.Delivery`,
answers to the caller waiting in ``ask``, cache updates to the
:class:`~edge_agent.caches.CacheStore`, commands to the kiosk (kept, and a callback).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable

from edge_agent.caches import CacheError, CacheStore
from edge_agent.contract import Command, InService, OutOfService
from edge_agent.link.answers import PendingRequests
from edge_agent.link.delivery import Delivery
from edge_agent.link.downlink import (
    CacheMessage,
    CommandMessage,
    IgnoredMessage,
    ReceiptMessage,
    ResponseMessage,
    read_downlink,
)
from edge_agent.link.events import Received
from edge_agent.link.options import LinkCounters

__all__ = ["Inbound"]

log = logging.getLogger(__name__)


class Inbound:
    """Routes checked downlink messages; state that staff see (commands, last contact)."""

    def __init__(
        self,
        *,
        library_id: str,
        device_id: str,
        delivery: Delivery,
        pending: PendingRequests,
        counters: LinkCounters,
        caches: CacheStore | None = None,
        on_command: Callable[[Command], None] | None = None,
    ) -> None:
        self.library_id = library_id
        self.device_id = device_id
        self.delivery = delivery
        self.pending = pending
        self.counters = counters
        self.caches = caches
        self._on_command = on_command
        self.commands: deque[Command] = deque(maxlen=50)
        self.out_of_service = False
        self.last_central_contact: float | None = None

    def handle(self, event: Received) -> None:
        """Check one received message and apply it (or log why it was ignored)."""
        self._received(event)

    def _received(self, event: Received) -> None:
        try:
            message = read_downlink(
                event.topic,
                event.payload,
                event.properties,
                library_id=self.library_id,
                device_id=self.device_id,
            )
        except IgnoredMessage as exc:
            self.counters.ignored[exc.label] = self.counters.ignored.get(exc.label, 0) + 1
            log.warning("ignored a message (%s): %s", exc.label, exc.detail)
            return
        self.last_central_contact = time.time()
        if isinstance(message, ReceiptMessage):
            self.delivery.receipt(message.receipt)
        elif isinstance(message, ResponseMessage):
            if not self.pending.resolve(message.correlation, message.response):
                log.info("an answer came after its request timed out; dropped")
        elif isinstance(message, CacheMessage):
            self._apply_cache(message)
        elif isinstance(message, CommandMessage):
            self._command(message.command)

    def _apply_cache(self, message: CacheMessage) -> None:
        update = message.update
        if self.caches is None:
            return
        try:
            applied = self.caches.apply(update)
        except CacheError as exc:
            log.warning("cannot store a cache update: %s", exc)
            return
        if applied:
            self.counters.cache_updates += 1
            log.info("cache %s now at version %d", update.body.cache, update.version)
        else:
            self.counters.cache_stale += 1

    def _command(self, command: Command) -> None:
        self.counters.commands += 1
        self.commands.append(command)
        body = command.body
        if isinstance(body, OutOfService):
            self.out_of_service = True
        elif isinstance(body, InService):
            self.out_of_service = False
        log.info("command from central: %s", body.command)
        if self._on_command is not None:
            try:
                self._on_command(command)
            except Exception:
                log.exception("the command handler failed on %s", body.command)
