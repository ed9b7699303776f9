"""Item operations over any :class:`~hardware.reader.ItemReader`: read the field, switch security.

These are what a kiosk and a staff station do with a reader, written once for every reader
family:

* :func:`read_field` lists the tags on the pad and reads each one whole (registers, memory,
  EAS), decoding it with :func:`hardware.tags.decode_tag`. A tag that leaves mid-read is
  reported in :attr:`FieldReading.lost`, never as a crash and never as a half-read tag.
* :func:`set_security` checks an item out (unsecure) or in (secure): it writes the AFI and/or
  the EAS bit, **reads them back**, retries a bounded number of times and says exactly what
  happened. It never locks AFI or EAS (the reader interface has no lock command at all).

Reader-level failures (:class:`~hardware.reader.ReaderDisconnected`,
:class:`~hardware.reader.ReaderStatusError`) propagate from :func:`read_field`: they are not
about one tag. :func:`set_security` returns them in its result instead, because its caller
must record the failed checkout either way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from hardware.reader import (
    UID_LENGTH,
    FrameError,
    InventoryEntry,
    ItemReader,
    ReaderDisconnected,
    ReaderError,
    ReaderTimeout,
    ReaderUsageError,
    SystemInfo,
    TagError,
    TagNotFound,
    format_uid,
)
from hardware.tags import SecurityConfig, Tag, decode_tag

__all__ = [
    "DEFAULT_BLOCK_COUNT",
    "DEFAULT_BLOCK_SIZE",
    "FieldReading",
    "LostTag",
    "SecurityResult",
    "read_field",
    "read_memory",
    "read_tag",
    "set_security",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Layout assumed when a tag does not answer Get System Information (NXP ICODE SLIX).
DEFAULT_BLOCK_SIZE = 4
DEFAULT_BLOCK_COUNT = 28
_BLOCK_NOT_AVAILABLE = 0x10
_ISO_ERROR = 0x95

# Failures that concern one tag and are worth one more try: an RF hiccup, a garbled reply.
_TRANSIENT = (TagError, ReaderTimeout, FrameError)


@dataclass(frozen=True, slots=True)
class LostTag:
    """A tag seen by the inventory that could not be read whole (it left, or would not answer)."""

    uid: bytes
    stage: str
    error: str

    @property
    def uid_hex(self) -> str:
        """The UID as 16 upper-case hex digits."""
        return format_uid(self.uid)


@dataclass(frozen=True, slots=True)
class FieldReading:
    """What is on the pad: decoded tags, tags lost mid-read, and the raw inventory."""

    tags: tuple[Tag, ...]
    lost: tuple[LostTag, ...]
    inventory: tuple[InventoryEntry, ...]


@dataclass(frozen=True, slots=True)
class SecurityResult:
    """The outcome of switching one item's security, as read back from the tag.

    ``verified`` is True only when the read-back AFI and/or EAS match the requested state.
    ``*_before`` are the values read before writing (None if unread or unused), ``*_after``
    the values read back last. ``error`` says why it is not verified (None when it is).
    """

    uid: bytes
    secured: bool
    verified: bool
    attempts: int
    afi_before: int | None
    afi_after: int | None
    eas_before: bool | None
    eas_after: bool | None
    error: str | None = None

    @property
    def uid_hex(self) -> str:
        """The UID as 16 upper-case hex digits."""
        return format_uid(self.uid)


class _TagLostError(Exception):
    """Internal: one tag could not be read at ``stage``."""

    def __init__(self, stage: str, error: ReaderError) -> None:
        super().__init__(f"{stage}: {error}")
        self.stage = stage
        self.error = error


def _try(stage: str, attempts: int, call: Callable[[], T]) -> T:
    """Run one tag operation, retrying transient failures; a vanished tag is not retried."""
    last: ReaderError | None = None
    for _ in range(attempts):
        try:
            return call()
        except TagNotFound as exc:
            raise _TagLostError(stage, exc) from exc
        except _TRANSIENT as exc:
            last = exc
    if last is None:  # only when attempts < 1, which the public functions refuse
        raise ReaderUsageError(f"attempts must be at least 1, got {attempts}")
    raise _TagLostError(stage, last) from last


def read_memory(reader: ItemReader, uid: bytes, block_size: int, block_count: int) -> bytes:
    """Read a tag's user memory in chunks of at most :meth:`ItemReader.max_blocks_per_read`.

    When a tag reports "block not available" part-way (its memory is smaller than assumed),
    the memory read so far is returned.
    """
    chunk = reader.max_blocks_per_read(block_size)
    memory = bytearray()
    first = 0
    while first < block_count:
        count = min(chunk, block_count - first)
        try:
            memory += reader.read_blocks(uid, first, count).data
        except TagError as exc:
            if first and exc.status == _ISO_ERROR and exc.iso_error == _BLOCK_NOT_AVAILABLE:
                break
            raise
        first += count
    return bytes(memory)


def read_tag(
    reader: ItemReader,
    entry: InventoryEntry,
    security: SecurityConfig,
    *,
    attempts: int = 2,
) -> Tag:
    """Read one tag whole (registers, memory, EAS if configured) and decode it.

    Raises the :class:`~hardware.reader.ReaderError` of the step that failed last.
    """
    try:
        return _read_tag(reader, entry, security, attempts=attempts)
    except _TagLostError as exc:
        raise exc.error from exc


def _read_tag(
    reader: ItemReader,
    entry: InventoryEntry,
    security: SecurityConfig,
    *,
    attempts: int,
) -> Tag:
    uid = entry.uid
    info: SystemInfo | None
    try:
        info = _try("system information", attempts, lambda: reader.system_info(uid))
    except _TagLostError as lost:
        if not (isinstance(lost.error, TagError) and lost.error.status == _ISO_ERROR):
            raise
        # Some chips do not implement Get System Information (an ISO error such as "not
        # supported"): read the memory with the common layout and leave the AFI unknown.
        log.info("tag %s: no system information (%s); assuming SLIX layout", entry.uid_hex, lost)
        info = None
    block_size = info.block_size if info else DEFAULT_BLOCK_SIZE
    block_count = info.block_count if info else DEFAULT_BLOCK_COUNT
    memory = _try(
        f"read {block_count} blocks",
        attempts,
        lambda: read_memory(reader, uid, block_size, block_count),
    )
    eas: bool | None = None
    if security.use_eas:
        eas = _try("EAS alarm", attempts, lambda: reader.eas_alarm(uid))
    return decode_tag(
        uid,
        memory,
        dsfid=info.dsfid if info else entry.dsfid,
        afi=info.afi if info else None,
        eas=eas,
        security=security,
    )


def read_field(
    reader: ItemReader,
    security: SecurityConfig,
    *,
    afi: int | None = None,
    attempts: int = 2,
) -> FieldReading:
    """Inventory the field, then read and decode every tag; tags that vanish go to ``lost``.

    ``afi`` restricts the inventory to tags with that AFI. Each tag operation is tried up to
    ``attempts`` times against RF errors and garbled replies (not when the tag is gone).
    """
    if attempts < 1:
        raise ReaderUsageError(f"attempts must be at least 1, got {attempts}")
    entries = reader.inventory(afi=afi)
    tags: list[Tag] = []
    lost: list[LostTag] = []
    for entry in entries:
        try:
            tags.append(_read_tag(reader, entry, security, attempts=attempts))
        except _TagLostError as exc:
            log.info("tag %s lost during %s: %s", entry.uid_hex, exc.stage, exc.error)
            lost.append(LostTag(uid=entry.uid, stage=exc.stage, error=str(exc.error)))
    return FieldReading(tags=tuple(tags), lost=tuple(lost), inventory=entries)


def _describe_mismatch(
    security: SecurityConfig,
    *,
    target_afi: int,
    target_eas: bool,
    afi: int | None,
    eas: bool | None,
) -> str | None:
    problems = []
    if security.use_afi and afi != target_afi:
        seen = "unread" if afi is None else f"0x{afi:02X}"
        problems.append(f"AFI reads back {seen}, expected 0x{target_afi:02X}")
    if security.use_eas and eas is not target_eas:
        seen = "unread" if eas is None else ("set" if eas else "reset")
        problems.append(f"EAS reads back {seen}, expected {'set' if target_eas else 'reset'}")
    return "; ".join(problems) or None


def _read_state(
    reader: ItemReader, uid: bytes, security: SecurityConfig
) -> tuple[int, bool | None]:
    """Read (AFI, EAS or None) from one tag.

    System information comes first because it also proves the tag is there: EAS Alarm's
    "not armed" answer looks the same as "no tag answered".
    """
    afi = reader.system_info(uid).afi
    eas = reader.eas_alarm(uid) if security.use_eas else None
    return afi, eas


def set_security(
    reader: ItemReader,
    uid: bytes,
    *,
    secured: bool,
    security: SecurityConfig,
    retries: int = 3,
) -> SecurityResult:
    """Secure (check-in) or unsecure (checkout) one item, verify by reading back, retry.

    Writes the configured AFI and/or sets/resets EAS, skipping a register that already holds
    the wanted value, then reads both back. Up to ``1 + retries`` attempts. Never raises for
    tag or reader failures: the result says what happened (a vanished reader ends it at once).
    """
    if not (security.use_afi or security.use_eas):
        raise ReaderUsageError("security configuration uses neither AFI nor EAS: nothing to set")
    if retries < 0:
        raise ReaderUsageError(f"retries must be 0 or more, got {retries}")
    if len(uid) != UID_LENGTH:
        raise ReaderUsageError(f"UID {uid.hex().upper()} has {len(uid)} bytes; expected 8")
    target_afi = security.secured_afi if secured else security.unsecured_afi
    afi_before = afi_after = None
    eas_before = eas_after = None
    error: str | None = None
    attempts = 0

    def result(verified: bool) -> SecurityResult:
        return SecurityResult(
            uid=uid,
            secured=secured,
            verified=verified,
            attempts=attempts,
            afi_before=afi_before,
            afi_after=afi_after,
            eas_before=eas_before,
            eas_after=eas_after,
            error=None if verified else error,
        )

    try:
        # Presence and current state; a tag already in the wanted state is only verified.
        afi_before, eas_before = _read_state(reader, uid, security)
    except ReaderDisconnected as exc:
        error = f"reader lost: {exc}"
        return result(False)
    except ReaderError as exc:
        error = f"reading the state before writing: {exc}"
    afi_now, eas_now = afi_before, eas_before
    for attempt in range(1, retries + 2):
        attempts = attempt
        try:
            if security.use_afi and afi_now != target_afi:
                reader.write_afi(uid, target_afi)
            if security.use_eas and eas_now is not secured:
                (reader.set_eas if secured else reader.reset_eas)(uid)
            afi_after, eas_after = _read_state(reader, uid, security)
            afi_now, eas_now = afi_after, eas_after
        except ReaderDisconnected as exc:
            error = f"attempt {attempt}: reader lost: {exc}"
            break
        except ReaderError as exc:
            error = f"attempt {attempt}: {exc}"
            afi_now = eas_now = None
            continue
        mismatch = _describe_mismatch(
            security, target_afi=target_afi, target_eas=secured, afi=afi_after, eas=eas_after
        )
        if mismatch is None:
            return result(True)
        error = f"attempt {attempt}: {mismatch}"
        log.warning("tag %s: %s", format_uid(uid), error)
    return result(False)
