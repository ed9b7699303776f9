"""Virtual ISO 15693 tags with real memory, and the antenna field they sit in.

A :class:`SimTag` is what a library item's label holds: a UID, user memory in blocks (some
possibly locked for good), the AFI and DSFID registers and NXP's EAS bit. An :class:`RFField`
is the set of tags a reader's antenna currently powers; tests, the control socket and scenario
files move tags in and out of it while the driver polls, from any thread.

ISO 15693 gives every powered tag a state (ready, quiet, selected). The state lives in the
field, not in the tag, because it is lost whenever the tag leaves the field.
"""

from __future__ import annotations

import enum
import hashlib
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RFField", "SimTag", "TagState", "nxp_uid"]

UID_LEN = 8


def nxp_uid(seed: str | bytes) -> bytes:
    """Return a stable NXP ICODE SLIX style UID (E0 04 01 ...) derived from ``seed``.

    The same item id always gets the same UID, so scenario runs are reproducible.
    """
    raw = seed.encode() if isinstance(seed, str) else seed
    return bytes((0xE0, 0x04, 0x01)) + hashlib.sha256(raw).digest()[:5]


def _check_byte(name: str, value: int) -> None:
    if not 0 <= value <= 0xFF:
        raise ValueError(f"{name} must be a byte (0..255), got {value}")


@dataclass(eq=False)
class SimTag:
    """A virtual ISO 15693 tag with real memory (defaults: NXP ICODE SLIX, secured library item).

    ``memory`` is padded with zero bytes to ``block_size * block_count``; a longer memory is an
    error. The UID is MSB first, E0 first, as FEIG readers report it.
    """

    uid: bytes
    memory: bytearray = field(default_factory=bytearray)
    block_size: int = 4
    block_count: int = 28
    afi: int = 0x07
    dsfid: int = 0x06
    eas: bool = True
    locked_blocks: set[int] = field(default_factory=set)
    afi_locked: bool = False
    dsfid_locked: bool = False
    eas_locked: bool = False
    #: IC reference reported by Get System Information.
    ic_ref: int = 0x01
    #: Whether the chip answers NXP custom commands (EAS); NXP ICODE SLI/SLIX do.
    nxp_custom: bool = True

    def __post_init__(self) -> None:
        self.uid = bytes(self.uid)
        if len(self.uid) != UID_LEN:
            raise ValueError(f"UID must be {UID_LEN} bytes, got {len(self.uid)}: {self.uid.hex()}")
        if not 1 <= self.block_size <= 32:
            raise ValueError(f"block_size must be 1..32 bytes, got {self.block_size}")
        if not 1 <= self.block_count <= 256:
            raise ValueError(f"block_count must be 1..256, got {self.block_count}")
        for name in ("afi", "dsfid", "ic_ref"):
            _check_byte(name, getattr(self, name))
        capacity = self.block_size * self.block_count
        memory = bytearray(self.memory)
        if len(memory) > capacity:
            raise ValueError(
                f"memory of {len(memory)} bytes does not fit {self.block_count} blocks"
                f" of {self.block_size} bytes ({capacity} bytes)"
            )
        self.memory = memory + bytes(capacity - len(memory))
        self.locked_blocks = set(self.locked_blocks)
        bad = sorted(b for b in self.locked_blocks if not 0 <= b < self.block_count)
        if bad:
            raise ValueError(f"locked_blocks {bad} outside blocks 0..{self.block_count - 1}")

    @classmethod
    def from_item(
        cls,
        item_id: str,
        *,
        model: str = "2",
        isil: str | None = None,
        title: str | None = None,
        secured: bool = True,
        uid: bytes | None = None,
        secured_afi: int = 0x07,
        unsecured_afi: int = 0xC2,
        block_size: int = 4,
        block_count: int | None = None,
        **item_fields: Any,
    ) -> SimTag:
        """Build a tag holding a library item encoded as ISO 28560-``model`` ("2" or "3").

        ``secured`` sets the AFI (``secured_afi`` / ``unsecured_afi``, per-library values) and
        the EAS bit. ``item_fields`` are further :class:`hardware.tags.ItemData` fields
        (``shelf_location``, ``type_of_usage``, ``set_info`` as ``SetInfo`` or ``(parts, part)``,
        ``other``). Without ``block_count`` the tag is an ICODE SLIX (28 blocks) when the data
        fits, else a SLIX2 (80 blocks).
        """
        from simulators.reader.items import encode_item_memory

        memory, dsfid = encode_item_memory(
            item_id, model=model, isil=isil, title=title, block_size=block_size, **item_fields
        )
        if block_count is None:
            block_count = next((n for n in (28, 80, 256) if n * block_size >= len(memory)), 256)
        return cls(
            uid=uid if uid is not None else nxp_uid(item_id),
            memory=bytearray(memory),
            block_size=block_size,
            block_count=block_count,
            afi=secured_afi if secured else unsecured_afi,
            dsfid=dsfid,
            eas=secured,
        )

    def block(self, number: int) -> bytes:
        """Return the bytes of one block, in tag memory order."""
        start = number * self.block_size
        return bytes(self.memory[start : start + self.block_size])

    def describe(self) -> dict[str, Any]:
        """Return the tag as plain JSON-friendly data (hex strings for bytes)."""
        return {
            "uid": self.uid.hex().upper(),
            "memory": self.memory.hex().upper(),
            "block_size": self.block_size,
            "block_count": self.block_count,
            "afi": self.afi,
            "dsfid": self.dsfid,
            "eas": self.eas,
            "locked_blocks": sorted(self.locked_blocks),
            "afi_locked": self.afi_locked,
            "dsfid_locked": self.dsfid_locked,
            "eas_locked": self.eas_locked,
            "ic_ref": self.ic_ref,
            "nxp_custom": self.nxp_custom,
        }


class TagState(enum.Enum):
    """ISO 15693 state of a powered tag."""

    READY = "ready"
    QUIET = "quiet"
    SELECTED = "selected"


class RFField:
    """Thread-safe set of the tags currently in the antenna field, in the order they arrived.

    ``lock`` is re-entrant; the reader holds it while it runs one command so that a tag cannot
    change halfway through a reply. :meth:`wait_for` lets a test wait for a change without
    sleeping.
    """

    def __init__(self, tags: Iterable[SimTag] = ()) -> None:
        self.lock = threading.RLock()
        self._changed = threading.Condition(self.lock)
        self._tags: dict[bytes, SimTag] = {}
        self._states: dict[bytes, TagState] = {}
        self.place(*tags)

    def place(self, *tags: SimTag) -> None:
        """Put tags into the field (a tag already there with the same UID is replaced)."""
        with self._changed:
            for tag in tags:
                self._tags.pop(tag.uid, None)
                self._tags[tag.uid] = tag
                # Entering the field powers the chip up afresh.
                self._states[tag.uid] = TagState.READY
            self._changed.notify_all()

    def remove(self, *uids: bytes) -> None:
        """Take tags out of the field by UID; a UID not in the field is ignored."""
        with self._changed:
            for uid in uids:
                self._tags.pop(bytes(uid), None)
                self._states.pop(bytes(uid), None)
            self._changed.notify_all()

    def clear(self) -> None:
        """Empty the field."""
        with self._changed:
            self._tags.clear()
            self._states.clear()
            self._changed.notify_all()

    def tags(self) -> list[SimTag]:
        """Return the tags in the field, oldest first (a copy of the list, the tags themselves)."""
        with self.lock:
            return list(self._tags.values())

    def get(self, uid: bytes) -> SimTag | None:
        """Return the tag with this UID if it is in the field."""
        with self.lock:
            return self._tags.get(bytes(uid))

    def __len__(self) -> int:
        with self.lock:
            return len(self._tags)

    def state(self, uid: bytes) -> TagState | None:
        """Return the ISO 15693 state of a tag in the field (None if it is not there)."""
        with self.lock:
            return self._states.get(bytes(uid))

    def set_state(self, uid: bytes, state: TagState) -> None:
        """Set the state of a tag in the field (ignored if it is not there)."""
        with self.lock:
            if uid in self._states:
                self._states[uid] = state

    def reset_states(self) -> None:
        """Return every tag to ready, as when the RF field is switched off and on."""
        with self.lock:
            for uid in self._states:
                self._states[uid] = TagState.READY

    def notify(self) -> None:
        """Wake :meth:`wait_for` callers after a tag's content changed in place."""
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[RFField], bool], timeout: float) -> bool:
        """Block until ``predicate(field)`` holds or ``timeout`` seconds pass; return the result."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout)
