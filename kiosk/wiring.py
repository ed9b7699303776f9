"""Building a running kiosk controller from the site configuration (for the Kivy app).

:func:`open_kiosk` opens the pad reader (``[devices] item_reader``), the receipt printer
(``[devices] printer``, optional), the agent's local API (``[agent]``: its unix socket when
one is configured, else host and port, with the API token), the intent journal (beside the
agent's database unless a data directory is given) and a worker thread, then builds the
controller and runs its start-up recovery. Last it starts the NFC card reader and the barcode
scanner when ``[devices] card_reader`` / ``scanner`` name them
(:mod:`kiosk.identify_devices`): a missing one is logged and retried, never fatal. The UI
passes its ``post`` (Kivy: ``lambda fn: Clock.schedule_once(lambda dt: fn())``) and calls
:meth:`KioskRuntime.close` when it stops.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edge_agent.client import AgentClient
from edge_agent.config import ConfigError, LibedgeSettings
from hardware.printer import PrinterProfile, open_printer
from kiosk.adapters import ClientAgent, EscposPrinter, SystemClock, open_pad
from kiosk.config import KioskConfig
from kiosk.controller import KioskController
from kiosk.identify_devices import IdentifyDevices, open_identify_devices
from kiosk.journal import IntentJournal
from kiosk.ports import Mailer, Reloader
from kiosk.workers import Post, ThreadWorker

__all__ = ["JOURNAL_NAME", "KioskRuntime", "open_kiosk"]

log = logging.getLogger(__name__)

#: The intent journal's file name in the kiosk's data directory.
JOURNAL_NAME = "kiosk-intents.sqlite"


@dataclass
class KioskRuntime:
    """A started controller and what it owns; :meth:`close` releases everything."""

    controller: KioskController
    worker: ThreadWorker
    closers: list[Callable[[], None]] = field(default_factory=list)
    #: The card reader and scanner (None when open_kiosk was not asked for them).
    identify: IdentifyDevices | None = None
    _closed: bool = field(default=False, init=False, repr=False)

    def close(self) -> None:
        """Stop card reader and scanner, then the worker (its job finishes), then the rest.

        Card reader and scanner stop first, so that no new visit can begin while the rest
        closes. Idempotent; logs "kiosk stopped" once everything is closed.
        """
        if self._closed:
            return
        self._closed = True
        if self.identify is not None:
            self._best_effort(self.identify.close)
        self.worker.close()
        for close in reversed(self.closers):
            self._best_effort(close)
        self.closers.clear()
        log.info("kiosk stopped")

    @staticmethod
    def _best_effort(close: Callable[[], None]) -> None:
        try:
            close()
        except Exception:
            # Closing is best effort; the process is stopping anyway.
            log.exception("closing a kiosk resource failed")


def open_kiosk(
    settings: LibedgeSettings,
    post: Post,
    *,
    data_dir: Path | None = None,
    mailer: Mailer | None = None,
    on_reload: Reloader | None = None,
) -> KioskRuntime:
    """Open every device the configuration names and return a started controller."""
    devices = settings.devices
    if devices.item_reader is None:
        raise ConfigError("devices.item_reader: a kiosk needs its pad reader's URL")
    config = KioskConfig.from_settings(settings)
    closers: list[Callable[[], None]] = []
    worker = ThreadWorker()
    try:
        pad = open_pad(devices.item_reader, config.security, address=devices.item_reader_address)
        closers.append(pad.close)
        client = AgentClient.from_settings(settings)
        closers.append(client.close)
        journal_dir = data_dir or Path(settings.agent.database).parent
        journal = IntentJournal(journal_dir / JOURNAL_NAME)
        closers.append(journal.close)
        printer = None
        if devices.printer is not None:
            profile = PrinterProfile(paper_width_mm=devices.printer_width_mm)
            printer = EscposPrinter(devices.printer, open_printer(devices.printer, profile))
        controller = KioskController(
            config,
            pad=pad,
            agent=ClientAgent(client),
            clock=SystemClock(),
            journal=journal,
            worker=worker,
            post=post,
            printer=printer,
            mailer=mailer,
            on_reload=on_reload,
        )
        controller.start()
        # Last: their events go straight to a controller that has started.
        identify = open_identify_devices(
            controller, post, card_reader=devices.card_reader, scanner=devices.scanner
        )
    except BaseException:
        worker.close()
        for close in reversed(closers):
            close()
        raise
    return KioskRuntime(controller, worker, closers, identify)
