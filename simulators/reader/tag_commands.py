"""What a FEIG reader does with the tags for one 0xB0/0xB1 request: blocks, registers, states.

:class:`TagCommands` carries out every ISO 15693 host command except the inventory (which
lives with the reader's own state in :mod:`simulators.reader.model`) and NXP's custom EAS
commands, over an :class:`~simulators.reader.tags.RFField`. Handlers take the request data
after the sub-command and return a :class:`Reply`; see the model module for the behaviour
taken from FEIG's manuals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from simulators.reader.faults import Faults
from simulators.reader.tags import RFField, SimTag, TagState

__all__ = ["AirTiming", "AnswerNowError", "IsoError", "Reply", "Status", "TagCommands"]

NXP = 0x04


class Status:
    """Status bytes of FEIG replies used by the simulator."""

    OK = 0x00
    NO_TRANSPONDER = 0x01
    WRITE_ERROR = 0x03
    COLLISION = 0x0B
    PARAMETER_RANGE = 0x11
    UNKNOWN_COMMAND = 0x80
    LENGTH_ERROR = 0x81
    RF_COMMUNICATION_ERROR = 0x83
    MORE_DATA = 0x94
    ISO_ERROR = 0x95


class IsoError:
    """ISO 15693 error codes a tag returns (after status 0x95)."""

    NOT_SUPPORTED = 0x01
    UNKNOWN = 0x0F
    BLOCK_NOT_AVAILABLE = 0x10
    ALREADY_LOCKED = 0x11
    LOCKED = 0x12


@dataclass(frozen=True)
class AirTiming:
    """ISO 15693 air time at 26.48 kbit/s; the values follow the reference sheet, all adjustable.

    ~4.6 ms per cleanly singulated UID; ~40 tags/s when a 32-byte read follows each inventory,
    which leaves ~20 ms for 32 bytes. Block write time is an assumption (ICODE programming time
    plus framing).
    """

    per_uid: float = 0.0046
    per_read_byte: float = 0.00064
    per_write_block: float = 0.008


@dataclass(frozen=True)
class Reply:
    """The reader's answer to one request, before framing."""

    status: int
    data: bytes = b""
    #: Seconds the exchange with the tags would take on air.
    air_time: float = 0.0


class AnswerNowError(Exception):
    """Raised inside a handler to answer at once with this reply."""

    def __init__(self, status: int, data: bytes = b"") -> None:
        super().__init__(f"status {status:#04x}")
        self.reply = Reply(status, data)


class TagCommands:
    """The tag-facing command set of a FEIG reader in ISO Host mode (shared reader settings)."""

    def __init__(
        self,
        rf_field: RFField,
        *,
        faults: Faults | None = None,
        block_order_reversed: bool = True,
        buffer_size: int = 1024,
        sec_status_always: bool = True,
        timing: AirTiming | None = None,
    ) -> None:
        if buffer_size < 64:
            raise ValueError(f"buffer_size must be at least 64 bytes, got {buffer_size}")
        self.field = rf_field
        self.faults = faults if faults is not None else Faults()
        self.block_order_reversed = block_order_reversed
        self.buffer_size = buffer_size
        self.sec_status_always = sec_status_always
        self.timing = timing if timing is not None else AirTiming()
        self.rf_on = True

    def iso_handlers(self) -> dict[int, Callable[[bytes, bool], Reply]]:
        """0xB0 sub-command -> handler(data after the sub-command, advanced frame)."""
        return {
            0x02: self._stay_quiet,
            0x22: self._lock_blocks,
            0x23: self._read_blocks,
            0x24: self._write_blocks,
            0x25: self._select,
            0x26: self._reset_to_ready,
            0x27: self._write_afi,
            0x28: self._lock_afi,
            0x29: self._write_dsfid,
            0x2A: self._lock_dsfid,
            0x2B: self._system_information,
            0x2C: self._security_status,
        }

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _expect_length(data: bytes, length: int) -> None:
        if len(data) != length:
            raise AnswerNowError(Status.LENGTH_ERROR)

    @staticmethod
    def _split_mode(data: bytes) -> tuple[int, int, bytes | None, bytes]:
        """Split ``MODE [UID] rest`` into (mode, adr, uid, rest)."""
        if not data:
            raise AnswerNowError(Status.LENGTH_ERROR)
        mode = data[0]
        adr = mode & 0x07
        if adr == 0b001:
            if len(data) < 9:
                raise AnswerNowError(Status.LENGTH_ERROR)
            return mode, adr, bytes(data[1:9]), data[9:]
        if adr in (0b000, 0b010):
            return mode, adr, None, data[1:]
        raise AnswerNowError(Status.PARAMETER_RANGE)

    def _responders(self, adr: int, uid: bytes | None, *, nxp: bool = False) -> list[SimTag]:
        """Tags that hear and answer a command in this addressing mode."""
        if not self.rf_on:
            return []
        if uid is not None:
            tag = self.field.get(uid)
            found = [tag] if tag is not None else []
        elif adr == 0b010:
            found = [t for t in self.field.tags() if self.field.state(t.uid) is TagState.SELECTED]
        else:
            found = [t for t in self.field.tags() if self.field.state(t.uid) is not TagState.QUIET]
        return [t for t in found if t.nxp_custom] if nxp else found

    def _one(self, tags: list[SimTag]) -> SimTag:
        if not tags:
            raise AnswerNowError(Status.NO_TRANSPONDER)
        if len(tags) > 1:
            raise AnswerNowError(Status.COLLISION)
        return tags[0]

    def _leave_mid_write(self, tag: SimTag) -> bool:
        if not self.faults.tag_leaves_mid_write:
            return False
        self.field.remove(tag.uid)
        return True

    def _check_blocks(self, tag: SimTag, first: int, count: int) -> None:
        # Reads answer status 0x95 with the ISO-ERROR byte only (no block address).
        if first + count > tag.block_count:
            raise AnswerNowError(Status.ISO_ERROR, bytes((IsoError.BLOCK_NOT_AVAILABLE,)))

    def _wire_block(self, raw: bytes) -> bytes:
        return raw[::-1] if self.block_order_reversed else raw

    # ------------------------------------------------------------------ blocks

    def _read_blocks(self, data: bytes, advanced: bool) -> Reply:
        mode, adr, uid, rest = self._split_mode(data)
        self._expect_length(rest, 2)
        first, count = rest
        if count == 0:
            return Reply(Status.PARAMETER_RANGE)
        tag = self._one(self._responders(adr, uid))
        overhead = 12 if advanced else 10
        if count > (self.buffer_size - overhead) // (tag.block_size + 1):
            return Reply(Status.PARAMETER_RANGE)
        self._check_blocks(tag, first, count)
        sec_requested = bool(mode & 0x08)
        out = bytearray((count, tag.block_size))
        for number in range(first, first + count):
            if sec_requested:
                out.append(1 if number in tag.locked_blocks else 0)
            elif self.sec_status_always:
                out.append(0)
            out += self._wire_block(tag.block(number))
        return Reply(Status.OK, bytes(out), self.timing.per_read_byte * count * tag.block_size)

    def _write_blocks(self, data: bytes, advanced: bool) -> Reply:
        _mode, adr, uid, rest = self._split_mode(data)
        if len(rest) < 3:
            return Reply(Status.LENGTH_ERROR)
        first, count, size = rest[0], rest[1], rest[2]
        payload = rest[3:]
        if len(payload) != count * size:
            return Reply(Status.LENGTH_ERROR)
        if count == 0 or size == 0:
            return Reply(Status.PARAMETER_RANGE)
        tags = self._responders(adr, uid)
        if not tags:
            return Reply(Status.NO_TRANSPONDER)
        blocks = [payload[i * size : (i + 1) * size] for i in range(count)]
        replies = [self._write_tag_blocks(tag, first, size, blocks) for tag in tags]
        if len(tags) > 1:
            return Reply(Status.COLLISION, air_time=replies[0].air_time)
        return replies[0]

    def _write_tag_blocks(self, tag: SimTag, first: int, size: int, blocks: list[bytes]) -> Reply:
        written = 0

        def failed(status: int, data: bytes) -> Reply:
            return Reply(status, data, self.timing.per_write_block * (written + 1))

        leaves_at = len(blocks) // 2 if self.faults.tag_leaves_mid_write else None
        for offset, wire in enumerate(blocks):
            number = first + offset
            if offset == leaves_at:
                self._leave_mid_write(tag)
                return failed(Status.WRITE_ERROR, bytes((number & 0xFF,)))
            if size != tag.block_size:
                return failed(Status.ISO_ERROR, bytes((IsoError.UNKNOWN, number & 0xFF)))
            if number >= tag.block_count:
                return failed(
                    Status.ISO_ERROR, bytes((IsoError.BLOCK_NOT_AVAILABLE, number & 0xFF))
                )
            if number in tag.locked_blocks:
                return failed(Status.ISO_ERROR, bytes((IsoError.LOCKED, number)))
            if not self.faults.write_does_not_stick:
                start = number * size
                tag.memory[start : start + size] = self._wire_block(wire)
            written += 1
        return Reply(Status.OK, air_time=self.timing.per_write_block * written)

    def _lock_blocks(self, data: bytes, advanced: bool) -> Reply:
        _mode, adr, uid, rest = self._split_mode(data)
        self._expect_length(rest, 2)
        first, count = rest
        if count == 0:
            return Reply(Status.PARAMETER_RANGE)
        tags = self._responders(adr, uid)
        if not tags:
            return Reply(Status.NO_TRANSPONDER)
        results = []
        for tag in tags:
            result = Reply(Status.OK)
            for number in range(first, first + count):
                if number >= tag.block_count:
                    result = Reply(
                        Status.ISO_ERROR, bytes((IsoError.BLOCK_NOT_AVAILABLE, number & 0xFF))
                    )
                    break
                if number in tag.locked_blocks:
                    result = Reply(Status.ISO_ERROR, bytes((IsoError.ALREADY_LOCKED, number)))
                    break
                tag.locked_blocks.add(number)
            results.append(result)
        return Reply(Status.COLLISION) if len(tags) > 1 else results[0]

    def _security_status(self, data: bytes, advanced: bool) -> Reply:
        _mode, adr, uid, rest = self._split_mode(data)
        self._expect_length(rest, 2)
        first, count = rest
        if count == 0:
            return Reply(Status.PARAMETER_RANGE)
        tag = self._one(self._responders(adr, uid))
        self._check_blocks(tag, first, count)
        status = bytes(1 if n in tag.locked_blocks else 0 for n in range(first, first + count))
        return Reply(Status.OK, bytes((count,)) + status, self.timing.per_read_byte * count)

    # ------------------------------------------------------------------ registers

    def _write_register(
        self, data: bytes, *, length: int, apply: Callable[[SimTag, bytes], Reply]
    ) -> Reply:
        """Run a write/lock command (extra request bytes ``length``) on every tag that hears it."""
        _mode, adr, uid, rest = self._split_mode(data)
        self._expect_length(rest, length)
        tags = self._responders(adr, uid)
        if not tags:
            return Reply(Status.NO_TRANSPONDER)
        replies = []
        for tag in tags:
            if self._leave_mid_write(tag):
                replies.append(Reply(Status.NO_TRANSPONDER))
            else:
                replies.append(apply(tag, rest))
        timing = self.timing.per_write_block
        if len(tags) > 1:
            return Reply(Status.COLLISION, air_time=timing)
        return Reply(replies[0].status, replies[0].data, timing)

    def _write_afi(self, data: bytes, advanced: bool) -> Reply:
        def apply(tag: SimTag, rest: bytes) -> Reply:
            if tag.afi_locked:
                return Reply(Status.ISO_ERROR, bytes((IsoError.LOCKED,)))
            if not self.faults.write_does_not_stick:
                tag.afi = rest[0]
            return Reply(Status.OK)

        return self._write_register(data, length=1, apply=apply)

    def _lock_afi(self, data: bytes, advanced: bool) -> Reply:
        def apply(tag: SimTag, rest: bytes) -> Reply:
            if tag.afi_locked:
                return Reply(Status.ISO_ERROR, bytes((IsoError.ALREADY_LOCKED,)))
            tag.afi_locked = True
            return Reply(Status.OK)

        return self._write_register(data, length=0, apply=apply)

    def _write_dsfid(self, data: bytes, advanced: bool) -> Reply:
        def apply(tag: SimTag, rest: bytes) -> Reply:
            if tag.dsfid_locked:
                return Reply(Status.ISO_ERROR, bytes((IsoError.LOCKED,)))
            if not self.faults.write_does_not_stick:
                tag.dsfid = rest[0]
            return Reply(Status.OK)

        return self._write_register(data, length=1, apply=apply)

    def _lock_dsfid(self, data: bytes, advanced: bool) -> Reply:
        def apply(tag: SimTag, rest: bytes) -> Reply:
            if tag.dsfid_locked:
                return Reply(Status.ISO_ERROR, bytes((IsoError.ALREADY_LOCKED,)))
            tag.dsfid_locked = True
            return Reply(Status.OK)

        # Our reference sheet lists a DSFID byte for Lock DSFID too; ISO 15693 has none.
        # Accept both forms (the byte is ignored).
        _mode, _adr, _uid, rest = self._split_mode(data)
        return self._write_register(data, length=min(len(rest), 1), apply=apply)

    def _system_information(self, data: bytes, advanced: bool) -> Reply:
        _mode, adr, uid, rest = self._split_mode(data)
        self._expect_length(rest, 0)
        tag = self._one(self._responders(adr, uid))
        info = (
            bytes((tag.dsfid,))
            + tag.uid
            + bytes((tag.afi, (tag.block_size - 1) & 0x1F, tag.block_count - 1, tag.ic_ref))
        )
        return Reply(Status.OK, info, self.timing.per_read_byte * len(info))

    # ------------------------------------------------------------------ ISO state commands

    def _stay_quiet(self, data: bytes, advanced: bool) -> Reply:
        _mode, _adr, uid, rest = self._split_mode(data)
        self._expect_length(rest, 0)
        if uid is None:
            return Reply(Status.PARAMETER_RANGE)
        if self.rf_on and self.field.get(uid) is not None:
            self.field.set_state(uid, TagState.QUIET)
        return Reply(Status.OK)

    def _select(self, data: bytes, advanced: bool) -> Reply:
        _mode, adr, uid, rest = self._split_mode(data)
        self._expect_length(rest, 0)
        if uid is None:
            return Reply(Status.PARAMETER_RANGE)
        tag = self._one(self._responders(adr, uid))
        for other in self.field.tags():
            if self.field.state(other.uid) is TagState.SELECTED:
                self.field.set_state(other.uid, TagState.READY)
        self.field.set_state(tag.uid, TagState.SELECTED)
        return Reply(Status.OK)

    def _reset_to_ready(self, data: bytes, advanced: bool) -> Reply:
        _mode, adr, uid, rest = self._split_mode(data)
        self._expect_length(rest, 0)
        # Quiet tags ignore a non-addressed reset; an addressed one is how a single tag wakes.
        tags = self._responders(adr, uid)
        if not tags:
            return Reply(Status.NO_TRANSPONDER)
        for tag in tags:
            self.field.set_state(tag.uid, TagState.READY)
        return Reply(Status.COLLISION) if len(tags) > 1 else Reply(Status.OK)

    # ------------------------------------------------------------------ 0xB1 NXP custom

    def nxp_command(self, data: bytes) -> Reply:
        """Carry out a 0xB1 request for manufacturer NXP (data: MFR, CMD, MODE, [UID])."""
        if len(data) < 2:
            return Reply(Status.LENGTH_ERROR)
        manufacturer, command = data[0], data[1]
        if manufacturer != NXP or command not in (0xA2, 0xA3, 0xA4, 0xA5):
            return Reply(Status.UNKNOWN_COMMAND)
        _mode, adr, uid, rest = self._split_mode(data[2:])
        self._expect_length(rest, 0)
        tags = self._responders(adr, uid, nxp=True)
        if command == 0xA5:
            # Every armed tag sends the same EAS sequence, so several tags do not collide.
            armed = any(t.eas for t in tags)
            return Reply(Status.OK if armed else Status.NO_TRANSPONDER)
        if not tags:
            return Reply(Status.NO_TRANSPONDER)
        replies = []
        for tag in tags:
            if self._leave_mid_write(tag):
                replies.append(Reply(Status.NO_TRANSPONDER))
            elif command == 0xA4:
                replies.append(self._lock_eas(tag))
            elif tag.eas_locked:
                replies.append(Reply(Status.ISO_ERROR, bytes((IsoError.LOCKED,))))
            else:
                if not self.faults.write_does_not_stick:
                    tag.eas = command == 0xA2
                replies.append(Reply(Status.OK))
        timing = self.timing.per_write_block
        if len(tags) > 1:
            return Reply(Status.COLLISION, air_time=timing)
        return Reply(replies[0].status, replies[0].data, timing)

    @staticmethod
    def _lock_eas(tag: SimTag) -> Reply:
        if tag.eas_locked:
            return Reply(Status.ISO_ERROR, bytes((IsoError.ALREADY_LOCKED,)))
        tag.eas_locked = True
        return Reply(Status.OK)
