"""read_field and set_security against an in-memory ItemReader with scripted failures.

The simulator-backed tests (tests/test_rfid_sim.py) run the same operations through the real
driver; these pin down the operations' own logic: chunking, retries, lost tags, verification.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pytest

from hardware.reader import (
    BlockRead,
    InventoryEntry,
    ItemReader,
    ReaderDisconnected,
    ReaderError,
    ReaderInfo,
    ReaderTimeout,
    ReaderUsageError,
    SystemInfo,
    TagError,
    TagNotFound,
)
from hardware.rfid_ops import read_field, read_memory, read_tag, set_security
from hardware.tags import (
    DataModel,
    ItemData,
    SecurityConfig,
    SecurityState,
    encode_item,
)

AFI_SHELF, AFI_LOAN = 0x07, 0xC2


def uid(n: int) -> bytes:
    return bytes([0xE0, 0x04, 0x01, 0, 0, 0, 0, n])


@dataclass
class MemTag:
    """A tag in the fake field."""

    memory: bytearray
    afi: int = AFI_SHELF
    eas: bool = True
    dsfid: int = 0x06
    block_size: int = 4
    sticky: bool = True  # False: writes are acknowledged but do not change anything


@dataclass
class FakeReader:
    """An ItemReader over a dict of tags; ``fail`` maps a method name to errors to raise first."""

    tags: dict[bytes, MemTag] = field(default_factory=dict)
    fail: dict[str, list[ReaderError]] = field(default_factory=dict)
    max_blocks: int = 5
    system_info_supported: bool = True
    calls: list[tuple[str, object]] = field(default_factory=list)
    on_call: Callable[[str], None] | None = None

    def _enter(self, name: str, arg: object) -> None:
        self.calls.append((name, arg))
        if self.on_call is not None:
            self.on_call(name)
        queue = self.fail.get(name)
        if queue:
            raise queue.pop(0)

    def _tag(self, uid_: bytes | None) -> MemTag:
        assert uid_ is not None
        tag = self.tags.get(uid_)
        if tag is None:
            raise TagNotFound("no transponder", status=0x01, status_name="no transponder")
        return tag

    def inventory(self, *, afi: int | None = None) -> tuple[InventoryEntry, ...]:
        self._enter("inventory", afi)
        return tuple(
            InventoryEntry(uid=u, dsfid=t.dsfid)
            for u, t in self.tags.items()
            if afi is None or t.afi == afi
        )

    def read_blocks(self, uid_: bytes | None, first_block: int, count: int) -> BlockRead:
        self._enter("read_blocks", (first_block, count))
        assert count <= self.max_blocks, "caller exceeded max_blocks_per_read"
        tag = self._tag(uid_)
        size = tag.block_size
        if (first_block + count) * size > len(tag.memory):
            raise TagError("block", status=0x95, status_name="ISO error", iso_error=0x10)
        blocks = tuple(
            bytes(tag.memory[(first_block + i) * size : (first_block + i + 1) * size])
            for i in range(count)
        )
        return BlockRead(first_block=first_block, block_size=size, blocks=blocks)

    def write_blocks(self, uid_: bytes | None, first_block: int, blocks: Sequence[bytes]) -> None:
        raise NotImplementedError

    def system_info(self, uid_: bytes | None = None) -> SystemInfo:
        self._enter("system_info", uid_)
        tag = self._tag(uid_)
        if not self.system_info_supported:
            raise TagError("nope", status=0x95, status_name="ISO error", iso_error=0x01)
        return SystemInfo(
            uid=uid_ or b"",
            dsfid=tag.dsfid,
            afi=tag.afi,
            block_size=tag.block_size,
            block_count=len(tag.memory) // tag.block_size,
            ic_reference=1,
        )

    def write_afi(self, uid_: bytes | None, afi: int) -> None:
        self._enter("write_afi", afi)
        tag = self._tag(uid_)
        if tag.sticky:
            tag.afi = afi

    def set_eas(self, uid_: bytes | None) -> None:
        self._enter("set_eas", uid_)
        tag = self._tag(uid_)
        if tag.sticky:
            tag.eas = True

    def reset_eas(self, uid_: bytes | None) -> None:
        self._enter("reset_eas", uid_)
        tag = self._tag(uid_)
        if tag.sticky:
            tag.eas = False

    def eas_alarm(self, uid_: bytes | None = None) -> bool:
        self._enter("eas_alarm", uid_)
        tag = self.tags.get(uid_) if uid_ else None
        return bool(tag and tag.eas)

    def rf_reset(self) -> None:
        self._enter("rf_reset", None)

    def reader_info(self) -> ReaderInfo:
        return ReaderInfo(0x0303, 0, 0x44, 0x53, 0x0D30, b"")

    def max_blocks_per_read(self, block_size: int) -> int:
        return self.max_blocks

    def close(self) -> None:
        self.calls.append(("close", None))


def item_memory(item_id: str, blocks: int = 28) -> bytearray:
    memory = encode_item(ItemData(primary_item_id=item_id), DataModel.ISO28560_2)
    return bytearray(memory + bytes(blocks * 4 - len(memory)))


def rf_error() -> TagError:
    return TagError("RF", status=0x83, status_name="RF communication error")


CONFIG = SecurityConfig(secured_afi=AFI_SHELF, unsecured_afi=AFI_LOAN)
CONFIG_EAS = SecurityConfig(secured_afi=AFI_SHELF, unsecured_afi=AFI_LOAN, use_eas=True)


def test_fake_reader_satisfies_the_protocol() -> None:
    """The fake is a structural ItemReader (so the ops are tested against the real interface)."""
    reader: ItemReader = FakeReader()
    assert reader.max_blocks_per_read(4) == 5


# ---------------------------------------------------------------- read_field


def test_read_field_decodes_every_tag() -> None:
    """Every tag in the field is read and decoded with its security state."""
    reader = FakeReader(
        tags={
            uid(1): MemTag(item_memory("1001")),
            uid(2): MemTag(item_memory("1002"), afi=AFI_LOAN, eas=False),
        }
    )
    reading = read_field(reader, CONFIG)
    assert [(t.primary_item_id, t.security) for t in reading.tags] == [
        ("1001", SecurityState.SECURED),
        ("1002", SecurityState.UNSECURED),
    ]
    assert reading.lost == ()
    assert [e.uid for e in reading.inventory] == [uid(1), uid(2)]


def test_read_field_reads_memory_in_chunks_of_the_reader_limit() -> None:
    """28 blocks with at most 5 per read are read as 5,5,5,5,5,3 from blocks 0,5,…,25."""
    reader = FakeReader(tags={uid(1): MemTag(item_memory("1001"))}, max_blocks=5)
    read_field(reader, CONFIG)
    reads = [arg for name, arg in reader.calls if name == "read_blocks"]
    assert reads == [(0, 5), (5, 5), (10, 5), (15, 5), (20, 5), (25, 3)]


def test_read_field_passes_the_afi_filter_to_the_inventory() -> None:
    """An AFI filter reaches the inventory, and only matching tags are read."""
    reader = FakeReader(
        tags={uid(1): MemTag(item_memory("1")), uid(2): MemTag(item_memory("2"), afi=AFI_LOAN)}
    )
    reading = read_field(reader, CONFIG, afi=AFI_SHELF)
    assert ("inventory", AFI_SHELF) in reader.calls
    assert [t.uid for t in reading.tags] == [uid(1)]


def test_tag_leaving_mid_read_is_reported_lost() -> None:
    """A tag that leaves after the inventory is in ``lost`` with the stage; the others are read."""
    reader = FakeReader(tags={uid(1): MemTag(item_memory("1")), uid(2): MemTag(item_memory("2"))})

    def leave(name: str) -> None:
        if name == "read_blocks":
            reader.tags.pop(uid(1), None)

    reader.on_call = leave
    reading = read_field(reader, CONFIG)
    assert [t.uid for t in reading.tags] == [uid(2)]
    assert len(reading.lost) == 1
    assert reading.lost[0].uid == uid(1)
    assert reading.lost[0].stage == "read 28 blocks"
    assert "no transponder" in reading.lost[0].error


def test_rf_error_is_retried_then_the_tag_is_read() -> None:
    """One RF error on system information is retried and the tag comes out whole."""
    reader = FakeReader(tags={uid(1): MemTag(item_memory("1"))}, fail={"system_info": [rf_error()]})
    reading = read_field(reader, CONFIG)
    assert [t.primary_item_id for t in reading.tags] == ["1"]
    assert [n for n, _ in reader.calls].count("system_info") == 2


def test_persistent_rf_errors_make_the_tag_lost() -> None:
    """RF errors on every attempt put the tag in ``lost`` after ``attempts`` tries."""
    reader = FakeReader(
        tags={uid(1): MemTag(item_memory("1"))},
        fail={"eas_alarm": [rf_error(), rf_error(), rf_error()]},
    )
    reading = read_field(reader, CONFIG_EAS, attempts=3)
    assert reading.tags == ()
    assert reading.lost[0].stage == "EAS alarm"
    assert [n for n, _ in reader.calls].count("eas_alarm") == 3


def test_reader_disconnect_propagates_from_read_field() -> None:
    """A vanished reader is not a lost tag: ReaderDisconnected propagates."""
    reader = FakeReader(
        tags={uid(1): MemTag(item_memory("1"))},
        fail={"read_blocks": [ReaderDisconnected("gone")]},
    )
    with pytest.raises(ReaderDisconnected):
        read_field(reader, CONFIG)


def test_eas_is_read_when_configured() -> None:
    """With EAS in use, each tag's EAS is read and enters its security state."""
    reader = FakeReader(tags={uid(1): MemTag(item_memory("1"), afi=AFI_LOAN, eas=True)})
    tag = read_field(reader, CONFIG_EAS).tags[0]
    assert tag.eas is True
    assert tag.security is SecurityState.SECURED


def test_tag_without_system_information_is_read_with_the_default_layout() -> None:
    """A chip refusing Get System Information is read as 28 blocks of 4, AFI unknown."""
    reader = FakeReader(tags={uid(1): MemTag(item_memory("77"))}, system_info_supported=False)
    tag = read_field(reader, CONFIG).tags[0]
    assert tag.primary_item_id == "77"
    assert tag.afi is None
    assert tag.security is SecurityState.UNKNOWN


def test_read_memory_stops_at_the_end_of_a_smaller_tag() -> None:
    """A tag smaller than assumed returns the memory up to "block not available"."""
    reader = FakeReader(tags={uid(1): MemTag(bytearray(range(40)))}, max_blocks=5)
    assert read_memory(reader, uid(1), 4, 28) == bytes(range(40))


def test_read_tag_raises_the_underlying_error() -> None:
    """read_tag (the public single-tag reader) raises the reader error itself."""
    reader = FakeReader()
    with pytest.raises(TagNotFound):
        read_tag(reader, InventoryEntry(uid=uid(9), dsfid=6), CONFIG)


# ---------------------------------------------------------------- set_security


def test_unsecure_writes_afi_and_reset_eas_and_verifies() -> None:
    """Checkout writes the loan AFI, resets EAS, reads both back: verified in one attempt."""
    tag = MemTag(item_memory("1"))
    reader = FakeReader(tags={uid(1): tag})
    result = set_security(reader, uid(1), secured=False, security=CONFIG_EAS)
    assert result.verified
    assert result.error is None
    assert (result.afi_before, result.afi_after) == (AFI_SHELF, AFI_LOAN)
    assert (result.eas_before, result.eas_after) == (True, False)
    assert result.attempts == 1
    assert (tag.afi, tag.eas) == (AFI_LOAN, False)


def test_secure_skips_registers_already_right() -> None:
    """A tag already secured is verified without any write."""
    reader = FakeReader(tags={uid(1): MemTag(item_memory("1"))})
    result = set_security(reader, uid(1), secured=True, security=CONFIG_EAS)
    assert result.verified
    names = [n for n, _ in reader.calls]
    assert "write_afi" not in names
    assert "set_eas" not in names


def test_write_that_does_not_stick_is_not_verified() -> None:
    """Writes acknowledged but not kept: all attempts used, not verified, the error says why."""
    reader = FakeReader(tags={uid(1): MemTag(item_memory("1"), sticky=False)})
    result = set_security(reader, uid(1), secured=False, security=CONFIG, retries=2)
    assert not result.verified
    assert result.attempts == 3
    assert [n for n, _ in reader.calls].count("write_afi") == 3
    assert result.afi_after == AFI_SHELF
    assert result.error is not None
    assert "AFI reads back 0x07, expected 0xC2" in result.error


def test_transient_failure_is_retried_until_verified() -> None:
    """An RF error on the first write is retried; the second attempt verifies."""
    reader = FakeReader(tags={uid(1): MemTag(item_memory("1"))}, fail={"write_afi": [rf_error()]})
    result = set_security(reader, uid(1), secured=False, security=CONFIG)
    assert result.verified
    assert result.attempts == 2


def test_tag_gone_is_not_verified_and_says_so() -> None:
    """A tag that is not there gives an unverified result naming "no transponder"."""
    reader = FakeReader()
    result = set_security(reader, uid(5), secured=False, security=CONFIG, retries=1)
    assert not result.verified
    assert result.afi_before is None
    assert result.error is not None
    assert "no transponder" in result.error


def test_reader_lost_ends_set_security_at_once() -> None:
    """ReaderDisconnected during a write stops retrying and is reported."""
    reader = FakeReader(
        tags={uid(1): MemTag(item_memory("1"))},
        fail={"write_afi": [ReaderDisconnected("port vanished")]},
    )
    result = set_security(reader, uid(1), secured=False, security=CONFIG, retries=3)
    assert not result.verified
    assert result.attempts == 1
    assert result.error is not None
    assert "reader lost" in result.error


def test_timeout_during_read_back_is_retried() -> None:
    """A timeout while reading back counts as a failed attempt and is retried."""
    tag = MemTag(item_memory("1"))
    reader = FakeReader(tags={uid(1): tag})
    reader.fail["system_info"] = []

    def fail_second_system_info(name: str) -> None:
        if name == "system_info" and [n for n, _ in reader.calls].count("system_info") == 2:
            reader.fail["system_info"].append(ReaderTimeout("slow"))

    reader.on_call = fail_second_system_info
    result = set_security(reader, uid(1), secured=False, security=CONFIG)
    assert result.verified
    assert result.attempts == 2


def test_eas_only_library_never_writes_afi() -> None:
    """With use_afi off, only EAS is switched; AFI stays as it was."""
    tag = MemTag(item_memory("1"))
    reader = FakeReader(tags={uid(1): tag})
    config = SecurityConfig(use_afi=False, use_eas=True)
    result = set_security(reader, uid(1), secured=False, security=config)
    assert result.verified
    assert tag.afi == AFI_SHELF
    assert tag.eas is False


def test_no_lock_command_is_ever_sent() -> None:
    """Checkout and check-in never call anything but reads, AFI writes and EAS set/reset."""
    reader = FakeReader(tags={uid(1): MemTag(item_memory("1"))})
    set_security(reader, uid(1), secured=False, security=CONFIG_EAS)
    set_security(reader, uid(1), secured=True, security=CONFIG_EAS)
    allowed = {"system_info", "eas_alarm", "write_afi", "set_eas", "reset_eas"}
    assert {n for n, _ in reader.calls} <= allowed


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"security": SecurityConfig(use_afi=False, use_eas=False)}, "neither AFI nor EAS"),
        ({"security": CONFIG, "retries": -1}, "retries"),
    ],
)
def test_impossible_requests_are_usage_errors(kwargs: dict[str, object], message: str) -> None:
    """A configuration with nothing to switch, or negative retries, raises ReaderUsageError."""
    with pytest.raises(ReaderUsageError, match=message):
        set_security(FakeReader(), uid(1), secured=True, **kwargs)  # type: ignore[arg-type]
