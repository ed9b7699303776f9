"""Committing SENT and CONFIRMED marks on a thread of their own, so publishing never waits.

A commit with ``synchronous=FULL`` takes milliseconds; in that time a 64-message window
at 10,000 events/s would run dry several times over. :class:`MarkWriter` takes the marks
the link's worker learned (PUBACKs, receipts) and commits them in batches while the worker
goes on publishing. Nothing depends on a mark being committed quickly: until it is, the
event is simply still PENDING (or SENT) in the outbox, and the worker, which knows better,
skips it when it reads due events. ``outstanding`` says how many marks are not committed
yet, so that the worker can read that many more rows.

A storage error keeps the marks and retries them (with a pause); a mark lost in a crash
costs only a duplicate that central drops.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from edge_agent.outbox import Outbox, OutboxClosed, OutboxError

__all__ = ["MarkWriter"]

log = logging.getLogger(__name__)

#: Pause before retrying marks after a storage error (seconds).
RETRY_AFTER_S = 0.5


class MarkWriter:
    """A thread that commits ``mark_sent`` / ``mark_confirmed`` batches for one device."""

    def __init__(
        self,
        outbox: Outbox,
        device_id: str,
        *,
        on_confirmed: Callable[[int], None] | None = None,
        on_error: Callable[[OutboxError], None] | None = None,
    ) -> None:
        self.outbox = outbox
        self.device_id = device_id
        self._on_confirmed = on_confirmed
        self._on_error = on_error
        self._lock = threading.Condition()
        self._sent: list[int] = []
        self._confirmed: list[int] = []
        self._busy = 0  # marks taken by the thread and not yet committed
        self._stopping = False
        self._thread: threading.Thread | None = None

    @property
    def outstanding(self) -> int:
        """Marks handed over and not committed yet."""
        with self._lock:
            return len(self._sent) + len(self._confirmed) + self._busy

    def start(self) -> None:
        """Start the writer thread."""
        if self._thread is None:
            self._stopping = False
            self._thread = threading.Thread(
                target=self._run, name=f"link-marks-{self.device_id}", daemon=True
            )
            self._thread.start()

    def submit(self, sent: list[int], confirmed: list[int]) -> None:
        """Hand over marks to commit (returns at once)."""
        if not sent and not confirmed:
            return
        with self._lock:
            self._sent.extend(sent)
            self._confirmed.extend(confirmed)
            self._lock.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every mark handed over is committed; False on timeout."""
        with self._lock:
            return self._lock.wait_for(
                lambda: not (self._sent or self._confirmed or self._busy), timeout
            )

    def stop(self, timeout: float = 10.0) -> None:
        """Commit what is left, then stop the thread."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._sent or self._confirmed or self._stopping)
                if not (self._sent or self._confirmed):
                    return  # stopping, and nothing left
                sent, self._sent = self._sent, []
                confirmed, self._confirmed = self._confirmed, []
                self._busy = len(sent) + len(confirmed)
            failed = self._commit(sent, confirmed)
            with self._lock:
                self._busy = 0
                if failed is not None:
                    # Put them back in front; the next batch retries them.
                    self._sent[:0], self._confirmed[:0] = failed
                self._lock.notify_all()
                if failed is not None:
                    if self._stopping:
                        log.warning("%d marks not committed at stop", sum(map(len, failed)))
                        return
                    self._lock.wait(RETRY_AFTER_S)

    def _commit(self, sent: list[int], confirmed: list[int]) -> tuple[list[int], list[int]] | None:
        """Commit; on a storage error return what is left to retry."""
        try:
            if sent:
                self.outbox.mark_sent(self.device_id, sent)
                sent = []
            if confirmed:
                changed = self.outbox.mark_confirmed(self.device_id, confirmed)
                confirmed = []
                if self._on_confirmed is not None:
                    self._on_confirmed(changed)
        except OutboxClosed:
            log.warning("outbox closed with %d marks not committed", len(sent) + len(confirmed))
            return None
        except OutboxError as exc:
            log.warning("cannot commit marks (will retry): %s", exc)
            if self._on_error is not None:
                self._on_error(exc)
            return sent, confirmed
        return None
