"""In-memory stand-ins for the kiosk's devices and clock: pad, printer, mailer, clock.

:class:`MemoryPad` holds tags whose memory is really encoded and decoded with
:mod:`hardware.tags` (for the hypothesis state machine and other fast tests; the flow tests
use the simulated FEIG reader behind :class:`kiosk.adapters.ReaderPad`). :class:`FakeClock`
is moved by hand. :class:`MemoryPrinter` and :class:`MemoryMailer` keep what they are given
and fail on demand. The fake agent is :class:`kiosk.fakes.MemoryAgent`.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from dataclasses import dataclass

from hardware.printer import Receipt
from hardware.reader import InventoryEntry, ReaderDisconnected
from hardware.rfid_ops import FieldReading, SecurityResult
from hardware.tags import DataModel, ItemData, SecurityConfig, decode_tag, encode_item
from kiosk.ports import MailError

__all__ = ["FakeClock", "MemoryMailer", "MemoryPad", "MemoryPrinter", "PadTag"]


class FakeClock:
    """A clock tests move by hand: wall time and monotonic time advance together."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._wall = start or dt.datetime(2025, 3, 10, 9, 0, tzinfo=dt.UTC)
        self._mono = 1000.0
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        """The fake wall time."""
        with self._lock:
            return self._wall

    def monotonic(self) -> float:
        """The fake monotonic time."""
        with self._lock:
            return self._mono

    def advance(self, seconds: float) -> None:
        """Move both clocks forward."""
        with self._lock:
            self._wall += dt.timedelta(seconds=seconds)
            self._mono += seconds


class MemoryPrinter:
    """A printer that keeps receipts in a list (or fails on demand)."""

    def __init__(self) -> None:
        self.receipts: list[Receipt] = []
        self.failure: Exception | None = None
        self.printed = threading.Event()

    def print_receipt(self, receipt: Receipt) -> None:
        """Keep the receipt, or raise the failure set on the printer."""
        if self.failure is not None:
            raise self.failure
        self.receipts.append(receipt)
        self.printed.set()

    def describe(self) -> str:
        """State for staff."""
        return "memory printer: ready" if self.failure is None else f"failing: {self.failure}"


class MemoryMailer:
    """A mailer that keeps receipts per patron id."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Receipt]] = []
        self.fail = False

    def send_receipt(self, patron_id: str, receipt: Receipt) -> None:
        """Keep the receipt, or raise MailError when told to fail."""
        if self.fail:
            raise MailError("the mail server refused the message")
        self.sent.append((patron_id, receipt))


@dataclass
class PadTag:
    """A tag on the memory pad: real ISO 28560 memory, AFI and EAS registers."""

    uid: bytes
    memory: bytes
    afi: int
    eas: bool
    dsfid: int = 0x06
    #: False: writes are acknowledged but do not change the registers (a faulty chip).
    sticky: bool = True

    @classmethod
    def item(
        cls,
        item: ItemData,
        *,
        uid: bytes | None = None,
        secured: bool = True,
        security: SecurityConfig | None = None,
        model: DataModel = DataModel.ISO28560_2,
    ) -> PadTag:
        """A tag holding ``item``, secured or not under ``security``."""
        security = security or SecurityConfig()
        memory = encode_item(item, model)
        uid = (
            uid
            or bytes([0xE0, 0x04, 0x01])
            + uuid.uuid5(uuid.NAMESPACE_OID, f"{item.primary_item_id}/{item.set_info}").bytes[:5]
        )
        return cls(
            uid=uid,
            memory=memory,
            afi=security.secured_afi if secured else security.unsecured_afi,
            eas=secured,
            dsfid=0x06 if model is DataModel.ISO28560_2 else 0x00,
        )


class MemoryPad:
    """An ItemPad over tags in memory; ``broken`` makes reads fail like a vanished reader."""

    def __init__(self, security: SecurityConfig | None = None) -> None:
        self.security = security or SecurityConfig()
        self.tags: dict[bytes, PadTag] = {}
        self.broken = False
        self._lock = threading.Lock()

    def place(self, *tags: PadTag) -> None:
        """Put tags on the pad."""
        with self._lock:
            for tag in tags:
                self.tags[tag.uid] = tag

    def remove(self, *uids: bytes) -> None:
        """Take tags off the pad."""
        with self._lock:
            for uid in uids:
                self.tags.pop(uid, None)

    def clear(self) -> None:
        """Take everything off the pad."""
        with self._lock:
            self.tags.clear()

    def read(self) -> FieldReading:
        """Decode every tag on the pad."""
        if self.broken:
            raise ReaderDisconnected("memory pad unplugged")
        with self._lock:
            tags = list(self.tags.values())
        decoded = tuple(
            decode_tag(
                t.uid,
                t.memory,
                dsfid=t.dsfid,
                afi=t.afi,
                eas=t.eas if self.security.use_eas else None,
                security=self.security,
            )
            for t in tags
        )
        inventory = tuple(InventoryEntry(t.uid, t.dsfid) for t in tags)
        return FieldReading(tags=decoded, lost=(), inventory=inventory)

    def set_security(self, uid: bytes, *, secured: bool) -> SecurityResult:
        """Switch one tag's registers and verify, as set_security does on a reader."""
        security = self.security
        target = security.secured_afi if secured else security.unsecured_afi
        with self._lock:
            tag = self.tags.get(uid)
            if tag is None or self.broken:
                return SecurityResult(
                    uid, secured, False, 1, None, None, None, None, error="no tag answered"
                )
            before_afi, before_eas = tag.afi, tag.eas
            if tag.sticky:
                tag.afi, tag.eas = target, secured
            ok = (not security.use_afi or tag.afi == target) and (
                not security.use_eas or tag.eas is secured
            )
            return SecurityResult(
                uid,
                secured,
                ok,
                1,
                before_afi,
                tag.afi,
                before_eas,
                tag.eas,
                error=None if ok else f"AFI reads back 0x{tag.afi:02X}, expected 0x{target:02X}",
            )

    def describe(self) -> str:
        """For staff."""
        return f"memory pad with {len(self.tags)} tag(s)" + (" (broken)" if self.broken else "")
