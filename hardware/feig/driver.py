"""FeigReader: an :class:`~hardware.reader.ItemReader` for FEIG ID ISC readers (ISO Host protocol).

One request, one reply: the driver writes a frame, then reads until a valid reply for that
command arrives or the timeout passes. Garbage on the line is skipped (see
:class:`~hardware.feig.frames.FrameDecoder`). Every port failure becomes
:class:`~hardware.reader.ReaderDisconnected`; after one, the port is closed and the next call
reopens it once when ``auto_reconnect`` is on, or :meth:`FeigReader.reconnect` retries with
bounded exponential backoff.

The port is anything :func:`hardware.ports.open_port` opens (``serial:///dev/ttyUSB0?baud=38400``,
``/dev/pts/3``, ``socket://host:port``, ``spy://…``), or any :class:`Transport` a test supplies.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Self

import serial

from hardware.feig import commands as cmd
from hardware.feig.commands import BlockOrder, NxpCommand
from hardware.feig.frames import FrameDecoder, Reply, encode_request
from hardware.feig.status import B0_DATA_STATUSES, Status, status_error
from hardware.feig.transport import (
    PORT_ERRORS,
    PortOpener,
    Transport,
    close_transport,
    open_serial_transport,
)
from hardware.ports import LineSettings, PortURLError
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
    UnexpectedReplyError,
)

__all__ = ["BROADCAST", "FeigReader"]

log = logging.getLogger(__name__)

#: The bus address every reader accepts; it answers from its own configured address.
BROADCAST = 0xFF

# Shrink a port's read timeout for the tail of an exchange only once this share of the
# timeout has passed: changing it reconfigures a real port (tcsetattr), which costs time.
_SHRINK_AFTER = 0.25


class FeigReader:
    """A FEIG ID ISC reader on a serial line, RS-485 bus, USB-serial adapter or TCP bridge.

    ``address`` is the reader's bus address (0xFF reaches any reader, which answers from its
    own address). ``timeout`` bounds each exchange. ``block_order`` says how block bytes travel
    (reversed by default, see the facts doc). ``advanced_requests`` sends advanced frames;
    ``advanced_crc_high_first`` flips the CRC byte order of advanced frames both ways.
    ``tx_buffer`` is the reader's transmit buffer size, which limits blocks per read.
    ``inventory_afi_bit`` is the inventory MODE bit announcing an AFI byte (inferred: bit 4);
    ``max_more_data`` bounds the "more data" continuation requests of one inventory.

    After a disconnect, ``auto_reconnect`` makes the next call try one reopen (no sleeping);
    :meth:`reconnect` tries ``reconnect_attempts`` times, sleeping ``backoff_initial`` doubling
    up to ``backoff_max`` between tries. ``connect=False`` defers opening to the first call or
    :meth:`reconnect`. ``opener`` and ``sleep`` are the seams tests use.
    """

    def __init__(
        self,
        url: str,
        *,
        address: int = BROADCAST,
        timeout: float = 0.5,
        line: LineSettings | None = None,
        block_order: BlockOrder | str = BlockOrder.REVERSED,
        advanced_requests: bool = False,
        advanced_crc_high_first: bool = False,
        tx_buffer: int = 256,
        inventory_afi_bit: int = cmd.INVENTORY_AFI,
        max_more_data: int = 64,
        auto_reconnect: bool = True,
        reconnect_attempts: int = 5,
        backoff_initial: float = 0.1,
        backoff_max: float = 2.0,
        connect: bool = True,
        opener: PortOpener = open_serial_transport,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 0 <= address <= 0xFF:
            raise ReaderUsageError(f"bus address {address} is out of range 0..255")
        if timeout <= 0:
            raise ReaderUsageError(f"timeout must be positive, got {timeout}")
        if tx_buffer < 16:
            raise ReaderUsageError(f"tx_buffer {tx_buffer} is too small for any reply")
        try:
            self.block_order = BlockOrder(block_order)
        except ValueError:
            raise ReaderUsageError(
                f"block order {block_order!r} is not one of "
                f"{', '.join(o.value for o in BlockOrder)}"
            ) from None
        self.url = url
        self.address = address
        self.timeout = timeout
        self.line = line or LineSettings()
        self.advanced_requests = advanced_requests
        self.advanced_crc_high_first = advanced_crc_high_first
        self.tx_buffer = tx_buffer
        self.inventory_afi_bit = inventory_afi_bit
        self.max_more_data = max_more_data
        self.auto_reconnect = auto_reconnect
        self.reconnect_attempts = reconnect_attempts
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        #: The address the reader last answered from (learned when asking 0xFF).
        self.reader_address: int | None = None
        self._opener = opener
        self._sleep = sleep
        self._port: Transport | None = None
        self._closed = False
        self._decoder = FrameDecoder(crc_high_first=advanced_crc_high_first)
        # One exchange at a time: a gate's polling thread and a staff command may share a
        # reader, and interleaved frames would be read as garbage by both.
        self._lock = threading.RLock()
        if connect:
            self._open()

    # ------------------------------------------------------------ port handling

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "open" if self._port is not None else "closed"
        return f"FeigReader({self.url!r}, address=0x{self.address:02X}, {state})"

    @property
    def is_open(self) -> bool:
        """True while the port is open."""
        return self._port is not None

    def _open(self) -> Transport:
        try:
            port = self._opener(self.url, self.line, self.timeout)
        except (PortURLError, ValueError) as exc:
            # A bad URL, or line settings pyserial refuses (e.g. an impossible baud rate).
            raise ReaderUsageError(f"reader port {self.url!r}: {exc}") from exc
        except PORT_ERRORS as exc:
            raise ReaderDisconnected(f"cannot open reader port {self.url!r}: {exc}") from exc
        self._port = port
        self._closed = False
        return port

    def _drop_port(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            close_transport(port)

    def close(self) -> None:
        """Close the port; later calls raise ReaderDisconnected until :meth:`reconnect`."""
        with self._lock:
            self._closed = True
            self._drop_port()

    def reconnect(self, attempts: int | None = None) -> None:
        """Reopen the port, retrying with exponential backoff; raise ReaderDisconnected if not."""
        tries = self.reconnect_attempts if attempts is None else attempts
        if tries < 1:
            raise ReaderUsageError(f"reconnect attempts must be at least 1, got {tries}")
        with self._lock:
            self._drop_port()
            delay = self.backoff_initial
            last: ReaderDisconnected | None = None
            for attempt in range(1, tries + 1):
                try:
                    self._open()
                except ReaderDisconnected as exc:
                    last = exc
                    log.info("reconnect %d/%d to %s failed: %s", attempt, tries, self.url, exc)
                    if attempt < tries:
                        self._sleep(delay)
                        delay = min(delay * 2, self.backoff_max)
                else:
                    return
            raise ReaderDisconnected(f"gave up after {tries} attempts: {last}") from last

    def _ensure_port(self) -> Transport:
        if self._port is not None:
            return self._port
        if self._closed:
            raise ReaderDisconnected(f"reader {self.url!r} was closed; call reconnect()")
        if not self.auto_reconnect:
            raise ReaderDisconnected(f"reader port {self.url!r} is not open; call reconnect()")
        # One attempt per call, no sleeping: a caller's loop keeps its own pace.
        return self._open()

    def _lost(self, exc: BaseException, doing: str) -> ReaderDisconnected:
        self._drop_port()
        return ReaderDisconnected(f"reader port {self.url!r} failed while {doing}: {exc}")

    # ------------------------------------------------------------ one exchange

    def exchange(self, command: int, data: bytes = b"") -> Reply:
        """Send one request and return the reply for it (any status); the low-level door."""
        with self._lock:
            port = self._ensure_port()
            request = encode_request(
                self.address,
                command,
                data,
                advanced=self.advanced_requests,
                crc_high_first=self.advanced_crc_high_first,
            )
            try:
                # Bytes left over from an earlier, timed-out exchange would be taken for the
                # reply to this one.
                port.reset_input_buffer()
                if port.timeout != self.timeout:
                    self._set_port_timeout(port, self.timeout)
                port.write(request)
            except serial.SerialTimeoutException as exc:
                raise ReaderTimeout(f"writing to {self.url!r} timed out: {exc}") from exc
            except PORT_ERRORS as exc:
                raise self._lost(exc, "writing") from exc
            if log.isEnabledFor(logging.DEBUG):
                log.debug("-> %s", request.hex(" ").upper())
            reply = self._read_reply(port, command, request)
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "<- %02X %02X status %02X %s",
                    reply.address,
                    reply.command,
                    reply.status,
                    reply.data.hex(" ").upper(),
                )
            return reply

    def _read_reply(self, port: Transport, command: int, request: bytes) -> Reply:
        decoder = self._decoder
        decoder.clear()
        deadline = time.monotonic() + self.timeout
        ignored: list[str] = []
        while True:
            reply = decoder.next_frame()
            while reply is not None:
                if reply.raw == request:
                    # An RS-485 adapter with local echo (or a loopback) hands our own request
                    # back; an inventory request even parses as a "no tag" reply.
                    ignored.append("an echo of the request")
                elif reply.command != command:
                    # A late reply to an earlier request (that timed out) is not ours.
                    ignored.append(f"a reply to command 0x{reply.command:02X}")
                elif self.address not in (BROADCAST, reply.address):
                    # On a shared RS-485 bus, a neighbour's late reply to the same command
                    # is not ours either. If it is the only answer, the timeout names it,
                    # which is how a reader configured at the wrong address shows itself.
                    ignored.append(
                        f"a reply from bus address 0x{reply.address:02X} "
                        f"(this reader is 0x{self.address:02X})"
                    )
                else:
                    self.reader_address = reply.address
                    return reply
                reply = decoder.next_frame()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._timeout_error(command, ignored)
            if remaining < (port.timeout or 0) * (1 - _SHRINK_AFTER):
                # A reply trickling in late: do not let the next read overrun the deadline.
                self._set_port_timeout(port, remaining)
            try:
                # Ask for what the frame header says is still coming: in_waiting alone would
                # make a socket:// port (which reports 0 or 1) read a long reply byte by byte.
                chunk = port.read(max(decoder.needed(), port.in_waiting))
            except PORT_ERRORS as exc:
                raise self._lost(exc, "reading") from exc
            if not chunk:
                # read() returns nothing only once its timeout (<= what was left) has passed.
                raise self._timeout_error(command, ignored)
            decoder.feed(chunk)

    def _set_port_timeout(self, port: Transport, value: float) -> None:
        try:
            port.timeout = value
        except (*PORT_ERRORS, ValueError) as exc:
            # pyserial stores the new timeout before it reconfigures the device, so reads
            # honour it even when the device refuses the (unchanged) line settings.
            log.debug("setting the read timeout on %s: %s", self.url, exc)

    def _timeout_error(self, command: int, ignored: list[str]) -> ReaderTimeout:
        detail = self._decoder.describe()
        if ignored:
            detail += f"; ignored {', '.join(ignored)}"
        return ReaderTimeout(
            f"no reply to command 0x{command:02X} from {self.url!r} within "
            f"{self.timeout:g} s ({detail})"
        )

    def _host(self, data: bytes, action: str) -> Reply:
        """Send an 0xB0 request; return the reply if its status is OK, else raise for it."""
        reply = self.exchange(cmd.CMD_HOST, data)
        if reply.status != Status.OK:
            raise self._b0_error(reply, action)
        return reply

    def _b0_error(self, reply: Reply, action: str) -> ReaderError:
        iso_error = block = None
        if reply.status == Status.ISO_ERROR and reply.data:
            iso_error = reply.data[0]
            # Write Multiple Blocks also names the failing block after the ISO error.
            block = reply.data[1] if len(reply.data) > 1 else None
        elif reply.status == Status.WRITE_ERROR and reply.data:
            block = reply.data[0]
        return status_error(reply.status, action=action, iso_error=iso_error, block=block)

    def _simple(self, command: int, data: bytes, action: str) -> Reply:
        reply = self.exchange(command, data)
        if reply.status != Status.OK:
            raise status_error(reply.status, action=action)
        return reply

    # ------------------------------------------------------------ ItemReader

    def inventory(self, *, afi: int | None = None) -> tuple[InventoryEntry, ...]:
        """List every tag in the field, fetching the rest after each "more data" (0x94)."""
        found: dict[bytes, InventoryEntry] = {}
        more = False
        with self._lock:
            for _ in range(self.max_more_data):
                request = cmd.inventory_request(
                    more=more, afi=afi, afi_mode_bit=self.inventory_afi_bit
                )
                reply = self.exchange(cmd.CMD_HOST, request)
                if reply.status == Status.NO_TRANSPONDER:
                    break
                if reply.status not in B0_DATA_STATUSES or reply.status == Status.ISO_ERROR:
                    raise self._b0_error(reply, "inventory")
                for entry in cmd.parse_inventory(reply.data):
                    found.setdefault(entry.uid, entry)
                if reply.status == Status.RF_COMMUNICATION_ERROR:
                    # The reader still sends the tags it did singulate; a gate polls again
                    # anyway, so keep them rather than lose a passing item.
                    log.warning(
                        "inventory on %s: RF communication error; %d tags kept",
                        self.url,
                        len(found),
                    )
                    break
                if reply.status != Status.MORE_DATA:
                    break
                more = True
            else:
                raise ReaderError(
                    f"inventory: reader still reported more data after "
                    f"{self.max_more_data} requests ({len(found)} tags so far)"
                )
        return tuple(found.values())

    def max_blocks_per_read(self, block_size: int) -> int:
        """Return the most blocks one read returns: (TX-BUF - 10) / (DB-SIZE + 1), max 255."""
        if block_size < 1:
            raise ReaderUsageError(f"block size {block_size} must be at least 1")
        return max(1, min(255, (self.tx_buffer - 10) // (block_size + 1)))

    def read_blocks(self, uid: bytes | None, first_block: int, count: int) -> BlockRead:
        """Read ``count`` blocks from ``first_block``; blocks come back in tag-memory order."""
        reply = self._host(
            cmd.read_blocks_request(uid, first_block, count),
            f"read {count} blocks from block {first_block}",
        )
        size, blocks, security = cmd.parse_block_read(reply.data, first_block, self.block_order)
        if len(blocks) != count:
            raise UnexpectedReplyError(
                f"asked for {count} blocks from block {first_block}, got {len(blocks)}"
            )
        return BlockRead(
            first_block=first_block,
            block_size=size,
            blocks=tuple(blocks),
            security_status=security,
        )

    def write_blocks(self, uid: bytes | None, first_block: int, blocks: Sequence[bytes]) -> None:
        """Write equally sized blocks (tag-memory byte order) from ``first_block``."""
        self._host(
            cmd.write_blocks_request(uid, first_block, blocks, self.block_order),
            f"write {len(blocks)} blocks from block {first_block}",
        )

    def system_info(self, uid: bytes | None = None) -> SystemInfo:
        """Read the tag's DSFID, AFI, memory layout and IC reference."""
        reply = self._host(cmd.system_info_request(uid), "get system information")
        return cmd.parse_system_info(reply.data)

    def write_afi(self, uid: bytes | None, afi: int) -> None:
        """Write the tag's AFI (this driver has no command that locks it)."""
        self._host(cmd.write_afi_request(uid, afi), f"write AFI 0x{afi:02X}")

    def _custom(self, command: NxpCommand, uid: bytes | None, action: str) -> Reply:
        reply = self.exchange(cmd.CMD_CUSTOM, cmd.custom_request(command, uid))
        # EAS Alarm answers 0x01 for "not armed"; for the others 0x01 means the tag is gone.
        allowed: tuple[int, ...] = (Status.OK,)
        if command is NxpCommand.EAS_ALARM:
            allowed = (Status.OK, Status.NO_TRANSPONDER)
        if reply.status not in allowed:
            raise self._b0_error(reply, action)
        return reply

    def set_eas(self, uid: bytes | None) -> None:
        """Arm the tag's EAS bit (NXP; this driver has no command that locks it)."""
        self._custom(NxpCommand.SET_EAS, uid, "set EAS")

    def reset_eas(self, uid: bytes | None) -> None:
        """Disarm the tag's EAS bit (NXP)."""
        self._custom(NxpCommand.RESET_EAS, uid, "reset EAS")

    def eas_alarm(self, uid: bytes | None = None) -> bool:
        """Return True when the tag (any tag, if ``uid`` is None) has its EAS bit set.

        Status 0x01 means "not armed" *or* "no tag answered": confirm presence another way
        (e.g. :meth:`system_info`) before reading False as "disarmed".
        """
        reply = self._custom(NxpCommand.EAS_ALARM, uid, "EAS alarm")
        return reply.status == Status.OK

    def rf_reset(self) -> None:
        """Switch the field off for ~15 ms; every tag returns to the ready state."""
        self._simple(cmd.CMD_RF_RESET, b"", "RF reset")

    def reader_info(self) -> ReaderInfo:
        """Ask the reader for its firmware revision and hardware type (0x65)."""
        reply = self._simple(cmd.CMD_SOFTWARE_VERSION, b"", "get software version")
        return cmd.parse_reader_info(reply.data)

    # ------------------------------------------------------------ reader control

    def ping(self) -> None:
        """Baud-rate detection (0x52): returns if a reader answers at these line settings."""
        self._simple(cmd.CMD_BAUD_DETECTION, b"\x00", "baud-rate detection")

    def cpu_reset(self) -> None:
        """Restart the reader's firmware (0x63); it is deaf for a moment afterwards."""
        self._simple(cmd.CMD_CPU_RESET, b"", "CPU reset")


if TYPE_CHECKING:  # mypy proves here that FeigReader implements the ItemReader interface

    def _implements_item_reader(reader: FeigReader) -> ItemReader:
        return reader
