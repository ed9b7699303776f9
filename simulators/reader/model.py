"""What the simulated FEIG reader does with one request: the command set, without any I/O.

:class:`ReaderModel` turns a :class:`~simulators.reader.frames.Request` into a
:class:`Reply` (status, data, and the ISO 15693 air time the exchange would take). The server
module frames the reply and puts it on the wire.

Behaviour taken from FEIG's manuals (ID ISC.MR/PR/PRH101, MR200, LR200) where our reference
sheet is silent, and marked as such here:

* 0x23 Read Multiple Blocks: every block is preceded by its SEC-STATUS byte, which is 0x00 unless
  MODE bit 3 asks for the real security status (the manuals: "SEC-STATUS always = 0x00"; this is
  also why the maximum DB-N is (TX-BUF - 10) / (DB-SIZE + 1)). ``sec_status_always=False`` drops
  the byte when it was not asked for.
* 0x24 Write Multiple Blocks is carried out block by block, as the reader does with ICODE tags:
  blocks before a failing one stay written. Status 0x03 returns DB-ADR-E; status 0x95 returns
  ISO-ERROR then DB-ADR-E.
* A new inventory with the ONT setting off (the default) is preceded by an RF reset, so quiet and
  selected tags answer again. With ``only_new_tags`` (ONT on) the reader sets each tag it reports
  quiet, and a tag answers again only after it left the field or an RF reset.
* Stay Quiet gets no answer from a tag, so the reader reports 0x00 whether the tag was there or
  not. Stay Quiet and Select must be addressed.
* Inferred: a non-addressed command reaching several tags is executed by all of them (writes
  included) and their answers collide: status 0x0B. Get System Information reports MEM-SIZE as
  (block size - 1, number of blocks - 1).
* Status choices where the manuals name none: 0x11 for a bad ADR mode, a zero DB-N or a DB-N the
  buffer cannot hold; 0x80 for an unknown 0xB0/0xB1 sub-command or manufacturer; after status
  0x94 a MORE request with nothing left gets 0x01.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from simulators.reader.faults import Faults
from simulators.reader.frames import Request
from simulators.reader.tag_commands import AirTiming, AnswerNowError, Reply, Status, TagCommands
from simulators.reader.tags import RFField, TagState

__all__ = ["AirTiming", "ReaderModel", "Reply", "Status"]

BROADCAST = 0xFF
TR_TYPE_ISO15693 = 0x03


@dataclass
class _Pending:
    """Inventory data sets kept back after status 0x94."""

    records: list[bytes] = field(default_factory=list)
    status: int = Status.OK


def afi_matches(requested: int, tag_afi: int) -> bool:
    """Return whether a tag answers an inventory filtered on ``requested`` AFI (ISO 15693 rules)."""
    if requested in (0, tag_afi):
        return True
    # "X0": every sub-family of family X.
    return requested & 0x0F == 0 and requested & 0xF0 == tag_afi & 0xF0


class ReaderModel(TagCommands):
    """The command set of a FEIG ID ISC reader in ISO Host mode, over an :class:`RFField`."""

    def __init__(
        self,
        rf_field: RFField,
        *,
        address: int = 0,
        faults: Faults | None = None,
        block_order_reversed: bool = True,
        buffer_size: int = 1024,
        only_new_tags: bool = False,
        sec_status_always: bool = True,
        software_version: bytes = bytes.fromhex("03 03 00 44 53 0D 30"),
        timing: AirTiming | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 <= address <= 254:
            raise ValueError(f"reader address must be 0..254, got {address}")
        super().__init__(
            rf_field,
            faults=faults,
            block_order_reversed=block_order_reversed,
            buffer_size=buffer_size,
            sec_status_always=sec_status_always,
            timing=timing,
        )
        self.address = address
        self.only_new_tags = only_new_tags
        self.software_version = software_version
        self.rng = rng if rng is not None else random.Random()
        self._pending: _Pending | None = None
        self._b0 = {0x01: self._inventory, **self.iso_handlers()}

    # ------------------------------------------------------------------ dispatch

    def addressed(self, request: Request) -> bool:
        """Whether this reader answers ``request`` (its own address, or any reader's)."""
        return request.address in (self.address, BROADCAST)

    def handle(self, request: Request) -> Reply | None:
        """Answer one request; None when it is addressed to another reader on the bus."""
        if not self.addressed(request):
            return None
        handlers: dict[int, Callable[[Request], Reply]] = {
            0x52: self._baud_detection,
            0x63: self._cpu_reset,
            0x65: self._software_version,
            0x69: self._rf_reset,
            0x6A: self._rf_onoff,
            0xB0: self._iso_command,
            0xB1: self._nxp_command,
        }
        handler = handlers.get(request.command)
        if handler is None:
            return Reply(Status.UNKNOWN_COMMAND)
        with self.field.lock:
            try:
                reply = handler(request)
            except AnswerNowError as refusal:
                reply = refusal.reply
        self.field.notify()
        return reply

    # ------------------------------------------------------------------ reader control

    def _baud_detection(self, request: Request) -> Reply:
        self._expect_length(request.data, 1)
        return Reply(Status.OK)

    def _cpu_reset(self, request: Request) -> Reply:
        self._expect_length(request.data, 0)
        self.rf_on = True
        self._pending = None
        self.field.reset_states()
        return Reply(Status.OK)

    def _software_version(self, request: Request) -> Reply:
        self._expect_length(request.data, 0)
        return Reply(Status.OK, self.software_version)

    def _rf_reset(self, request: Request) -> Reply:
        self._expect_length(request.data, 0)
        self._pending = None
        self.field.reset_states()
        return Reply(Status.OK)

    def _rf_onoff(self, request: Request) -> Reply:
        self._expect_length(request.data, 1)
        if request.data[0] > 1:
            return Reply(Status.PARAMETER_RANGE)
        on = request.data[0] == 1
        if not on or not self.rf_on:
            # Switching the field off powers every tag down.
            self.field.reset_states()
        self.rf_on = on
        return Reply(Status.OK)

    # ------------------------------------------------------------------ 0xB0 framework

    def _iso_command(self, request: Request) -> Reply:
        if not request.data:
            return Reply(Status.LENGTH_ERROR)
        handler = self._b0.get(request.data[0])
        if handler is None:
            return Reply(Status.UNKNOWN_COMMAND)
        return handler(request.data[1:], request.advanced)

    def _nxp_command(self, request: Request) -> Reply:
        return self.nxp_command(request.data)

    def _reply_frame_len(self, data_len: int, advanced: bool) -> int:
        # Status byte included; see frames.build_reply for the layouts.
        standard = 6 + data_len
        return standard if not advanced and standard <= 255 else 8 + data_len

    # ------------------------------------------------------------------ inventory

    def _inventory(self, data: bytes, advanced: bool) -> Reply:
        if not data:
            return Reply(Status.LENGTH_ERROR)
        mode = data[0]
        with_afi = bool(mode & 0x10)
        if len(data) != (2 if with_afi else 1):
            return Reply(Status.LENGTH_ERROR)
        if mode & 0x80:
            return self._inventory_more(advanced)
        self._pending = None
        if self.rf_on and not self.only_new_tags:
            self.field.reset_states()
        found = self._responders(0b000, None)
        if with_afi:
            found = [t for t in found if afi_matches(data[1], t.afi)]
        status = Status.OK
        if self.faults.collisions:
            kept = [t for t in found if self.rng.random() >= self.faults.collision_miss]
            if len(kept) < len(found):
                status = Status.RF_COMMUNICATION_ERROR
            found = kept
        if self.only_new_tags:
            for tag in found:
                self.field.set_state(tag.uid, TagState.QUIET)
        records = [bytes((TR_TYPE_ISO15693, t.dsfid)) + t.uid for t in found]
        air_time = self.timing.per_uid * len(found)
        if not records and status == Status.OK:
            return Reply(Status.NO_TRANSPONDER, air_time=air_time)
        reply = self._inventory_batch(_Pending(records, status), advanced)
        return Reply(reply.status, reply.data, air_time)

    def _inventory_more(self, advanced: bool) -> Reply:
        if self._pending is None:
            return Reply(Status.NO_TRANSPONDER)
        return self._inventory_batch(self._pending, advanced)

    def _inventory_batch(self, pending: _Pending, advanced: bool) -> Reply:
        records = pending.records
        fit = len(records)
        while fit > 0 and self._reply_frame_len(1 + 10 * fit, advanced) > self.buffer_size:
            fit -= 1
        batch, rest = records[:fit], records[fit:]
        data = bytes((len(batch),)) + b"".join(batch)
        if rest:
            self._pending = _Pending(rest, pending.status)
            return Reply(Status.MORE_DATA, data)
        self._pending = None
        return Reply(pending.status, data)
