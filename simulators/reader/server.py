"""The simulated FEIG reader served on a pty or a TCP socket, in its own thread.

:class:`FeigSimulator` is the public face of the package: it joins a
:class:`~simulators.reader.model.ReaderModel` (what the reader does) to a port (where the bytes
go), applies the wire-level fault switches and counts what it saw. Everything the driver does
reaches it as bytes through a real pty or a real socket, so all of the driver's protocol code
runs against it unchanged, the way OctoPrint's virtual printer replaces a printer.

Typical use in a test::

    field = RFField([SimTag.from_item("123456789012")])
    with FeigSimulator(field) as sim:
        path = sim.start_pty()          # open it like /dev/ttyUSB0 at 38400 8E1
        ...
        sim.faults.corrupt_crc = 0.3    # flip a switch while the driver polls
        sim.wait_until(lambda s: s.replies_sent >= 10, timeout=5)

All of the serving thread's descriptors are opened and closed by that thread's owner calls
(``start_*``, ``unplug``/``replug`` through the thread, ``stop``), so nothing leaks.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import select
import threading
import time
from collections.abc import Callable
from typing import Any

from simulators.reader.faults import Faults
from simulators.reader.frames import FrameParser, Request, build_reply
from simulators.reader.model import AirTiming, ReaderModel
from simulators.reader.ports import PtyPort, TcpPort
from simulators.reader.tags import RFField

__all__ = ["FeigSimulator"]

log = logging.getLogger(__name__)

#: How often the idle serving thread looks at switches changed directly on ``faults``.
_POLL_INTERVAL = 0.1


class FeigSimulator:
    """A FEIG ID ISC reader in ISO Host mode, served on a pty or on TCP from a background thread.

    ``air_time`` makes replies take as long as the ISO 15693 exchange would (``timing``);
    ``frame_timeout`` is how long the line may pause inside a request before the bytes are
    dropped; ``enforce_line_settings`` makes the pty deaf to a host at the wrong baud rate, as a
    real reader is (a pty cannot carry parity, so parity is not checked). ``sleep`` is
    injectable so tests can observe waits instead of timing them. Counters:
    ``frames_received``, ``bad_frames``, ``discarded_bytes``, ``replies_sent``,
    ``frames_ignored`` (for another bus address), ``line_mismatch_bytes``, ``connections``,
    ``collisions``.

    More readers may share the port, as on an RS-485 bus (:meth:`add_reader`): each request
    is offered to every reader, and only the addressed one answers. A broadcast (0xFF) that
    several readers answer at once garbles the line, as it would on a real bus: the host
    receives the replies' bytes overlaid (``collisions`` counts those).
    """

    def __init__(
        self,
        field: RFField,
        *,
        address: int = 0,
        air_time: bool = False,
        faults: Faults | None = None,
        block_order_reversed: bool = True,
        buffer_size: int = 1024,
        only_new_tags: bool = False,
        sec_status_always: bool = True,
        crc_high_first: bool = False,
        frame_timeout: float = 0.05,
        timing: AirTiming | None = None,
        baudrate: int = 38400,
        enforce_line_settings: bool = True,
        seed: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_replug: Callable[[str | int], None] | None = None,
    ) -> None:
        self.field = field
        self.faults = faults if faults is not None else Faults()
        self.air_time = air_time
        self.crc_high_first = crc_high_first
        self.frame_timeout = frame_timeout
        self.baudrate = baudrate
        self.enforce_line_settings = enforce_line_settings
        self.on_replug = on_replug
        self._sleep = sleep
        self._rng = random.Random(seed)
        self.buffer_size = buffer_size
        self.model = ReaderModel(
            field,
            address=address,
            faults=self.faults,
            block_order_reversed=block_order_reversed,
            buffer_size=buffer_size,
            only_new_tags=only_new_tags,
            sec_status_always=sec_status_always,
            timing=timing,
            rng=self._rng,
        )
        self._parser = self._new_parser()
        self._port: PtyPort | TcpPort | None = None
        self._plugged = False
        self._plug_error: OSError | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._cond = threading.Condition()
        #: Further readers on the same bus (see add_reader).
        self.neighbours: list[ReaderModel] = []
        self.replies_sent = 0
        self.frames_ignored = 0
        self.collisions = 0
        self.line_mismatch_bytes = 0
        self.connections = 0
        self._frames_before = 0
        self._bad_before = 0
        self._discarded_before = 0

    # ------------------------------------------------------------------ public API

    @property
    def address(self) -> int:
        """The reader's bus address (COM-ADR)."""
        return self.model.address

    @property
    def readers(self) -> tuple[ReaderModel, ...]:
        """Every reader on this port's bus, the first one (``model``) first."""
        return (self.model, *self.neighbours)

    def add_reader(self, model: ReaderModel) -> ReaderModel:
        """Put another reader on this port's bus (before or while serving); return it.

        Its address must differ from every other reader's on the bus. It shares the port's
        wire-level fault switches; its own field and model-level faults are its own.
        """
        with self._cond:
            taken = {reader.address: reader for reader in self.readers}
            if model.address in taken:
                raise ValueError(f"bus address {model.address} is taken on this bus already")
            self.neighbours = [*self.neighbours, model]
            return model

    @property
    def frames_received(self) -> int:
        """Requests received with a good CRC (for this reader or not)."""
        return self._frames_before + self._parser.frames

    @property
    def bad_frames(self) -> int:
        """Runs of bytes dropped as garbage or bad CRC."""
        return self._bad_before + self._parser.bad_frames

    @property
    def discarded_bytes(self) -> int:
        """Bytes dropped in total."""
        return self._discarded_before + self._parser.discarded_bytes

    @property
    def plugged(self) -> bool:
        """Whether the port exists right now."""
        return self._plugged

    @property
    def endpoint(self) -> str | int:
        """The pty slave path or the TCP port ("" / 0 before start)."""
        if self._port is None:
            return ""
        return self._port.endpoint

    @property
    def url(self) -> str:
        """What to put in the driver's configuration: the pty path or a ``socket://`` URL."""
        if isinstance(self._port, TcpPort):
            return f"socket://{self._port.host}:{self._port.port}"
        return str(self.endpoint)

    def counters(self) -> dict[str, int]:
        """Return a snapshot of all counters."""
        with self._cond:
            return {
                "frames_received": self.frames_received,
                "bad_frames": self.bad_frames,
                "discarded_bytes": self.discarded_bytes,
                "replies_sent": self.replies_sent,
                "frames_ignored": self.frames_ignored,
                "line_mismatch_bytes": self.line_mismatch_bytes,
                "connections": self.connections,
                "collisions": self.collisions,
            }

    def wait_until(self, predicate: Callable[[FeigSimulator], bool], timeout: float) -> bool:
        """Block until ``predicate(self)`` holds (checked at every counter change) or time is up."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout)

    def start_pty(self) -> str:
        """Serve on a new pseudo-terminal; return its slave path (e.g. ``/dev/pts/7``)."""
        port = PtyPort(baudrate=self.baudrate)
        path = port.open()
        self._start(port)
        return path

    def start_tcp(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve on TCP (one client at a time); return the bound port."""
        tcp = TcpPort(host, port)
        bound = tcp.open()
        self._start(tcp)
        return bound

    def unplug(self, timeout: float = 5.0) -> None:
        """Make the port disappear (pty closed, TCP refused) until :meth:`replug`."""
        self.faults.unplugged = True
        self._wake()
        if not self.wait_until(lambda s: not s.plugged or not s._alive(), timeout):
            raise TimeoutError("the simulator did not unplug in time")

    def replug(self, timeout: float = 5.0) -> str | int:
        """Bring the port back; return the new pty path or the (same) TCP port."""
        self._require_running()
        self._plug_error = None
        self.faults.unplugged = False
        self._wake()
        if not self.wait_until(lambda s: s.plugged or s._plug_error is not None, timeout):
            raise TimeoutError("the simulator did not re-plug in time")
        if self._plug_error is not None:
            raise self._plug_error
        return self.endpoint

    def stop(self) -> None:
        """Stop serving and close every descriptor; safe to call twice."""
        self._stopping = True
        if self._thread is not None:
            self._wake()
            self._thread.join(timeout=10)
            self._thread = None
        elif self._port is not None:
            self._port.close()
            self._plugged = False
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    log.debug("wake pipe %d already closed", fd)
        self._wake_r = self._wake_w = -1

    def __enter__(self) -> FeigSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ thread

    def _alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _require_running(self) -> None:
        if not self._alive():
            raise RuntimeError("the simulator is not running: call start_pty() or start_tcp()")

    def _new_parser(self) -> FrameParser:
        return FrameParser(max_frame_len=self.buffer_size, crc_high_first=self.crc_high_first)

    def _start(self, port: PtyPort | TcpPort) -> None:
        if self._port is not None or self._stopping:
            port.close()
            raise RuntimeError("this simulator is already serving (or stopped): make another one")
        self._port = port
        self._plugged = True
        self._thread = threading.Thread(
            target=self._serve, name=f"feig-sim-{type(port).__name__}", daemon=True
        )
        self._thread.start()

    def _wake(self) -> None:
        if self._wake_w >= 0:
            # A full pipe means a wake-up is pending already.
            with contextlib.suppress(BlockingIOError):
                os.write(self._wake_w, b"x")

    def _changed(self, **updates: Any) -> None:
        with self._cond:
            for name, value in updates.items():
                setattr(self, name, value)
            self._cond.notify_all()

    def _serve(self) -> None:
        port = self._port
        assert port is not None
        try:
            while not self._stopping:
                try:
                    self._serve_once(port)
                except Exception:
                    # A simulator bug must not look like a vanished reader: log it and go on.
                    log.exception("simulated reader: error while serving; continuing")
        finally:
            port.close()
            self._changed(_plugged=False)

    def _serve_once(self, port: PtyPort | TcpPort) -> None:
        self._sync_plug_state(port)
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        fds = port.poll_fds() if self._plugged else []
        for fd in fds:
            poller.register(fd, select.POLLIN)
        timeout = self.frame_timeout if self._parser.pending else _POLL_INTERVAL
        events = poller.poll(timeout * 1000)
        if not events:
            if self._parser.pending:
                self._handle_all(port, self._parser.flush())
                self._changed()
            return
        for fd, _mask in events:
            if fd == self._wake_r:
                with contextlib.suppress(BlockingIOError):
                    os.read(self._wake_r, 512)
            elif isinstance(port, PtyPort):
                self._on_pty_readable(port, fd)
            else:
                self._on_tcp_readable(port)

    def _sync_plug_state(self, port: PtyPort | TcpPort) -> None:
        if self.faults.unplugged and self._plugged:
            port.close()
            self._reset_parser()
            self._changed(_plugged=False)
            log.info("simulated reader unplugged")
        elif not self.faults.unplugged and not self._plugged:
            try:
                endpoint = port.open()
            except OSError as exc:
                log.warning("simulated reader cannot re-plug yet: %s", exc)
                self._changed(_plug_error=exc)
                return
            self._changed(_plugged=True)
            log.info("simulated reader re-plugged at %s", endpoint)
            if self.on_replug is not None:
                self.on_replug(endpoint)

    def _reset_parser(self) -> None:
        # Keep the counters running across a fresh parser.
        self._frames_before += self._parser.frames
        self._bad_before += self._parser.bad_frames
        self._discarded_before += self._parser.discarded_bytes
        self._parser = self._new_parser()

    def _on_pty_readable(self, port: PtyPort, fd: int) -> None:
        data = port.read(fd)
        if not data:
            return
        if self.enforce_line_settings and not port.line_matches():
            # At the wrong baud rate a real reader's UART sees only framing errors.
            self._changed(line_mismatch_bytes=self.line_mismatch_bytes + len(data))
            log.debug("dropped %d bytes sent at %s baud", len(data), port.host_baudrate())
            return
        self._handle_all(port, self._parser.feed(data))
        self._changed()

    def _on_tcp_readable(self, port: TcpPort) -> None:
        if port.client is None:
            if port.accept():
                self._reset_parser()
                self._changed(connections=self.connections + 1)
            return
        data = port.read()
        if data is None:
            return
        if not data:
            port.drop_client()
            self._reset_parser()
            self._changed()
            return
        self._handle_all(port, self._parser.feed(data))
        self._changed()

    def _handle_all(self, port: PtyPort | TcpPort, requests: list[Request]) -> None:
        for request in requests:
            frames: list[bytes] = []
            air_time = 0.0
            for reader in self.readers:
                reply = reader.handle(request)
                if reply is None:
                    continue
                frames.append(
                    build_reply(
                        reader.address,
                        request.command,
                        reply.status,
                        reply.data,
                        advanced=request.advanced,
                        crc_high_first=self.crc_high_first,
                    )
                )
                air_time = max(air_time, reply.air_time)
            if not frames:
                self._changed(frames_ignored=self.frames_ignored + 1)
                continue
            if self.air_time and air_time > 0:
                self._sleep(air_time)
            if len(frames) > 1:
                self._changed(collisions=self.collisions + 1)
            self._send(port, frames[0] if len(frames) == 1 else _collide(frames))

    def _send(self, port: PtyPort | TcpPort, frame: bytes) -> None:
        faults = self.faults
        if faults.reply_delay > 0:
            self._sleep(faults.reply_delay)
        data = bytearray(frame)
        if faults.corrupt_crc > 0 and self._rng.random() < faults.corrupt_crc:
            data[-1] ^= 0xFF
        if faults.drop_byte > 0 and self._rng.random() < faults.drop_byte:
            del data[self._rng.randrange(len(data))]
        stopping: Callable[[], bool] = lambda: self._stopping  # noqa: E731
        if faults.split_reply and len(data) > 1:
            half = len(data) // 2
            ok = port.send(bytes(data[:half]), stopping)
            if ok:
                self._sleep(faults.split_gap)
                ok = port.send(bytes(data[half:]), stopping)
        else:
            ok = port.send(bytes(data), stopping)
        if ok:
            self._changed(replies_sent=self.replies_sent + 1)


def _collide(frames: list[bytes]) -> bytes:
    """What the host hears when several readers drive the bus at once: their bytes overlaid.

    RS-485 drivers fighting over one pair of wires leave the receiver a mix of both bit
    streams; OR-ing the bytes models that well enough that no CRC survives it.
    """
    heard = bytearray(max(len(frame) for frame in frames))
    for frame in frames:
        for index, byte in enumerate(frame):
            heard[index] |= byte
    return bytes(heard)
