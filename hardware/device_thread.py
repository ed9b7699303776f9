"""One device served by a thread of its own, reopened with backoff whenever it is lost.

The NFC card reader (:mod:`hardware.nfc_card`) and the barcode scanners
(:mod:`hardware.scanner`) each read one device in a daemon thread. Both must survive the
device being unplugged, must not spin on a device that is absent, and must never die silently
of a bug. :class:`ReconnectingThread` is that thread, written once; a driver subclasses it and
supplies the device-specific parts:

``_open()``
    Open the device, raising any exception when it cannot be opened.
``_serve(device)``
    Use it until :attr:`~ReconnectingThread._stop` is set (return ``None``) or the device is
    lost (return a :class:`Lost` saying why, and whether the device had worked).
``_open_failure(exc)``
    The words for a device that could not be opened.
``_report(trouble, detail, retry_in)``
    Turn a :class:`Trouble` into the driver's own problem event.
``_close(device)``
    Release the device (``device.close()`` unless overridden); its errors are ignored.

The loop: open the device; if that fails, report :attr:`Trouble.UNAVAILABLE` with
``retry_in=backoff``. If it opens, serve it, close it, and report :attr:`Trouble.LOST` (or
:attr:`Trouble.INTERNAL_ERROR`, after logging the traceback, when ``_serve`` raised: the
thread carries on). Then wait ``backoff`` seconds on the stop event — returning at once when
stopped — and try again. The backoff starts at ``backoff_initial`` and doubles up to
``backoff_max``; when it starts afresh depends on :attr:`ReconnectingThread.fresh_start_on_open`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, Self

__all__ = ["Lost", "ReconnectingThread", "Trouble"]


class Trouble(Enum):
    """Why the device is being retried; each driver maps it to its own problem kind."""

    UNAVAILABLE = "unavailable"  #: it cannot be opened
    LOST = "lost"  #: it was open and stopped answering
    INTERNAL_ERROR = "internal_error"  #: serving it raised: a bug or an unexpected library error


@dataclass(frozen=True, slots=True)
class Lost:
    """What ``_serve`` returns when the device is gone (rather than stopped)."""

    detail: str  #: plain words for the log and for staff
    worked: bool  #: the device had worked before it was lost: start the backoff afresh


class ReconnectingThread(ABC):
    """A daemon thread that opens a device, serves it, and reopens it with backoff when lost.

    ``ident`` names the device in log lines (a path or URL); ``noun`` (a class attribute,
    e.g. ``"scanner"``) names the kind of driver in messages and errors.
    """

    #: How messages name the driver: "{noun} already started", "the {noun} loop failed: …".
    noun: ClassVar[str]
    #: When the backoff starts afresh. False: only after a device that ``_serve`` says
    #: worked, and every wait doubles it — so a device that opens but then refuses to work
    #: backs off like one that cannot be opened (the NFC reader: nfcpy may open a reader that
    #: refuses every technology). True: whenever the device opens, and the retry after a lost
    #: device does not double it — only failures to open do (the scanners: a port that opens
    #: is there).
    fresh_start_on_open: ClassVar[bool] = False

    def __init__(
        self,
        ident: str,
        *,
        thread_name: str,
        log: logging.Logger,
        backoff_initial: float,
        backoff_max: float,
    ) -> None:
        self._ident = ident
        self._thread_name = thread_name
        self._log = log
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the device thread (once)."""
        if self._thread is not None:
            raise RuntimeError(f"{self.noun} already started")
        self._thread = threading.Thread(target=self._run, name=self._thread_name, daemon=True)
        self._thread.start()

    def _stop_and_join(self, timeout: float) -> bool:
        """Ask the thread to stop and wait up to ``timeout``; True when it has ended (or never ran).

        Each driver's ``stop`` calls this with its own default timeout and decides whether a
        thread that outlives it is worth a log line.
        """
        self._stop.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        """True while the device thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    @abstractmethod
    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread and release the device (see :meth:`_stop_and_join`)."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ the driver's part
    @abstractmethod
    def _open(self) -> Any:
        """Open the device; raise when it cannot be opened."""

    @abstractmethod
    def _serve(self, device: Any) -> Lost | None:
        """Use the device until stopped (``None``) or lost (why, and whether it had worked)."""

    @abstractmethod
    def _open_failure(self, exc: Exception) -> str:
        """The detail of an :attr:`Trouble.UNAVAILABLE` report for this failure to open."""

    @abstractmethod
    def _report(self, trouble: Trouble, detail: str, retry_in: float) -> None:
        """Deliver the driver's problem event for ``trouble``."""

    def _close(self, device: Any) -> None:
        """Release the device; exceptions are ignored by the caller."""
        device.close()

    # ------------------------------------------------------------------ the thread
    def _run(self) -> None:
        initial = backoff = self._backoff_initial
        while not self._stop.is_set():
            try:
                device = self._open()
            except Exception as exc:  # every device library raises its own kinds on open
                trouble, detail = Trouble.UNAVAILABLE, self._open_failure(exc)
            else:
                if self.fresh_start_on_open:
                    backoff = initial
                outcome = self._serve_once(device)
                if outcome is None:
                    break  # asked to stop
                trouble, lost = outcome
                detail = lost.detail
                if lost.worked:
                    backoff = initial
            self._report(trouble, detail, backoff)
            if self._stop.wait(backoff):  # returns at once when stopping
                break
            if trouble is Trouble.UNAVAILABLE or not self.fresh_start_on_open:
                backoff = min(backoff * 2, self._backoff_max)
        self._log.debug("%s %s stopped", self.noun, self._ident)

    def _serve_once(self, device: Any) -> tuple[Trouble, Lost] | None:
        """Serve an open device, then close it; an exception becomes an internal error."""
        try:
            lost = self._serve(device)
        except Exception as exc:
            # The thread must outlive a bug: log the traceback, report, retry after a backoff.
            self._log.exception("%s %s failed", self.noun, self._ident)
            detail = f"the {self.noun} loop failed: {type(exc).__name__}: {exc}"
            return Trouble.INTERNAL_ERROR, Lost(detail, worked=False)
        finally:
            with contextlib.suppress(Exception):
                self._close(device)
        return None if lost is None else (Trouble.LOST, lost)
