"""A simulated contactless patron card for nfcpy's ``udp`` reader driver.

nfcpy ships a reader driver (``nfc/clf/udp.py``, opened as ``udp:host:port``) that sends each
RF frame as one UDP datagram, ``b"<bitrate> <hex bytes>"`` (e.g. ``b"106A 26"``), and takes the
first datagram that comes back with the same bitrate as the card's answer; ``b"RFOFF"`` means
the reader switched its field off. This module is the *card* end of that link, so that the
real nfcpy stack (``ContactlessFrontend``, tag activation, NDEF parsing) runs against it
unchanged. It is written from the tag datasheets, not from our driver or from nfcpy's tag
code, so a shared misunderstanding cannot hide.

Card kinds:

``type2``
    An NXP NTAG213 (ISO 14443-A, NFC Forum Type 2): 7-byte UID with the two-level cascade,
    GET_VERSION, READ with page roll-over, WRITE, and an NDEF message (a Text or a URI record)
    carrying the library card number. Unknown commands get a NAK and send the tag to IDLE,
    as on the real chip.
``felica``
    A FeliCa card with the NFC Forum Type 3 system code 12FC: polling, Read Without
    Encryption of the NDEF service (attribute block 0, message from block 1).
``unsupported``
    A 4-byte-UID ISO 14443-A card that announces ISO-DEP (SAK 0x20) and then answers nothing:
    what a damaged or proprietary card looks like to a reader.

Faults: :meth:`SimulatedCard.remove` takes the card off the reader; ``vanish_after_reads``
removes it after that many memory reads (a card pulled away mid-read).

Run it with ``libedge sim card --uid 04A1B2C3D4E5F6 --card-number 21234000123456``; it prints
the reader URL (``nfc:udp:127.0.0.1:PORT``) and takes ``remove``, ``present`` and ``quit``
lines on standard input.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["HELP", "CardKind", "SimulatedCard", "configure", "ndef_message", "run"]

HELP = "a simulated NFC patron card on nfcpy's udp driver (Type 2 NTAG213 or FeliCa Type 3)"

CardKind = Literal["type2", "felica", "unsupported"]
NdefKind = Literal["text", "uri", "none"]

# NTAG213: 45 pages of 4 bytes; user memory pages 4..39 (144 bytes).
_NTAG213_PAGES = 45
_NTAG213_USER_FIRST, _NTAG213_USER_LAST = 4, 39
_NTAG213_VERSION = bytes.fromhex("0004040201000F03")
_ACK, _NAK = b"\x0a", b"\x00"

# FeliCa: a PMm whose IC code (byte 1) names no specific product, so a reader treats the
# card as a plain Type 3 tag; byte 5 (read timeout parameter) is generous because UDP on a
# busy test machine is slower than RF.
_FELICA_PMM = bytes.fromhex("0344FFFFFFFFFFFF")
_FELICA_SYSTEM_CODE = b"\x12\xfc"
_FELICA_BLOCKS = 14  # attribute block + 13 data blocks, like a FeliCa Lite-S


def ndef_message(
    card_number: str, kind: NdefKind, uri_prefix: str = "https://lib.example/card/"
) -> bytes:
    """Encode one short NDEF record (Text 'en', or URI) holding the card number."""
    if kind == "text":
        lang = b"en"
        payload = bytes([len(lang)]) + lang + card_number.encode("utf-8")
        rtype = b"T"
    elif kind == "uri":
        full = uri_prefix + card_number
        # URI identifier code 0x04 abbreviates "https://" (NFC Forum URI RTD table).
        if full.startswith("https://"):
            payload = b"\x04" + full[len("https://") :].encode("utf-8")
        else:
            payload = b"\x00" + full.encode("utf-8")
        rtype = b"U"
    else:
        return b""
    if len(payload) > 255:
        raise ValueError("card number too long for a short NDEF record")
    header = 0x80 | 0x40 | 0x10 | 0x01  # MB, ME, SR, TNF well-known
    return bytes([header, len(rtype), len(payload)]) + rtype + payload


def _bcc(data: bytes) -> int:
    value = 0
    for byte in data:
        value ^= byte
    return value


@dataclass
class _Memory:
    """A card's memory image and the counters the fault switches use."""

    data: bytearray = field(default_factory=bytearray)
    reads: int = 0


class SimulatedCard:
    """One card in front of the simulated reader, answering on a UDP port of 127.0.0.1."""

    def __init__(
        self,
        uid: bytes,
        *,
        kind: CardKind = "type2",
        card_number: str | None = None,
        ndef: NdefKind = "text",
        raw_number_page: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        present: bool = True,
        vanish_after_reads: int | None = None,
    ) -> None:
        expected = {"type2": 7, "felica": 8, "unsupported": 4}[kind]
        if len(uid) != expected:
            raise ValueError(f"a {kind} card needs a {expected}-byte UID, got {len(uid)} bytes")
        if kind == "unsupported" and uid[0] == 0x88:
            raise ValueError("a 4-byte UID must not start with 0x88 (the cascade tag)")
        self.uid = bytes(uid)
        self.kind: CardKind = kind
        self.vanish_after_reads = vanish_after_reads
        self._present = present
        self._state = "idle"
        self._lock = threading.Lock()
        self._memory = _Memory()
        if kind == "type2":
            self._memory.data = self._type2_image(card_number, ndef, raw_number_page)
        elif kind == "felica":
            self._memory.data = self._felica_image(card_number, ndef)
        self._sock = self._bind(host, port)
        self._wake_r, self._wake_w = os.pipe()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._changed = threading.Condition(self._lock)
        #: Frames received, and discovery polls (REQA/WUPA, FeliCa polling) among them.
        self.frames_received = 0
        self.polls = 0

    @staticmethod
    def _bind(host: str, port: int) -> socket.socket:
        """Bind the card's UDP socket, on a port nfcpy's udp driver can use.

        The driver turns the port back into a number through ``getnameinfo`` without
        ``NI_NUMERICSERV``, so a port with a name in /etc/services (57000 is "dircproxy")
        crashes it; a free port is therefore chosen among the unnamed ones.
        """
        for _ in range(20):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.bind((host, port))
                bound = sock.getsockname()
                if port or socket.getnameinfo(bound, socket.NI_NUMERICHOST)[1].isdigit():
                    return sock
            except OSError:
                sock.close()
                raise
            sock.close()
        raise OSError("no free UDP port without a service name")

    # ------------------------------------------------------------------ control
    @property
    def port(self) -> int:
        """The UDP port the card answers on."""
        return int(self._sock.getsockname()[1])

    @property
    def url(self) -> str:
        """The reader URL that reaches this card: ``nfc:udp:HOST:PORT``."""
        host, port = self._sock.getsockname()
        return f"nfc:udp:{host}:{port}"

    @property
    def reads(self) -> int:
        """How many memory reads the card has received since it was last presented."""
        return self._memory.reads

    def wait_until(self, predicate: Callable[[SimulatedCard], bool], timeout: float) -> bool:
        """Wait until ``predicate(card)`` holds after some frame; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout)

    def present(self) -> None:
        """Put the card (back) on the reader."""
        with self._lock:
            self._present = True
            self._state = "idle"
            self._memory.reads = 0

    def remove(self) -> None:
        """Take the card off the reader: it answers nothing until :meth:`present`."""
        with self._lock:
            self._present = False
            self._state = "idle"

    def start(self) -> SimulatedCard:
        """Answer frames in a background thread; returns self."""
        self._thread = threading.Thread(target=self._serve, name="sim-card", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop answering and release the socket."""
        if self._closed:
            return
        self._closed = True
        os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._sock.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def __enter__(self) -> SimulatedCard:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ memory images
    def _type2_image(self, number: str | None, ndef: NdefKind, raw_page: int | None) -> bytearray:
        mem = bytearray(_NTAG213_PAGES * 4)
        uid = self.uid
        mem[0:3] = uid[0:3]
        mem[3] = _bcc(b"\x88" + uid[0:3])
        mem[4:8] = uid[3:7]
        mem[8] = _bcc(uid[3:7])
        mem[9] = 0x48  # internal byte, as shipped
        mem[12:16] = bytes([0xE1, 0x10, 0x12, 0x00])  # CC: NDEF 1.0, 144 bytes, read/write
        message = ndef_message(number, ndef) if number is not None else b""
        tlv = bytes([0x03, len(message)]) + message + b"\xfe"
        user = _NTAG213_USER_FIRST * 4
        mem[user : user + len(tlv)] = tlv
        if raw_page is not None and number is not None:
            if not _NTAG213_USER_FIRST <= raw_page <= _NTAG213_USER_LAST:
                raise ValueError(f"raw_number_page must be a user page 4..39, got {raw_page}")
            raw = number.encode("ascii")
            mem[raw_page * 4 : raw_page * 4 + len(raw)] = raw
        return mem

    def _felica_image(self, number: str | None, ndef: NdefKind) -> bytearray:
        message = ndef_message(number, ndef) if number is not None else b""
        mem = bytearray(_FELICA_BLOCKS * 16)
        attr = bytearray(16)
        attr[0] = 0x10  # mapping version 1.0
        attr[1], attr[2] = 4, 1  # blocks per read / per write
        attr[3:5] = (_FELICA_BLOCKS - 1).to_bytes(2, "big")
        attr[9], attr[10] = 0x00, 0x01  # WriteF done, read/write
        attr[11:14] = len(message).to_bytes(3, "big")
        attr[14:16] = sum(attr[0:14]).to_bytes(2, "big")
        mem[0:16] = attr
        mem[16 : 16 + len(message)] = message
        return mem

    # ------------------------------------------------------------------ the RF link
    def _serve(self) -> None:
        while True:
            ready, _, _ = select.select([self._sock.fileno(), self._wake_r], [], [])
            if self._wake_r in ready:
                return
            try:
                datagram, addr = self._sock.recvfrom(2048)
            except OSError:
                return
            self.frames_received += 1
            reply = self._handle_datagram(datagram)
            if reply is not None:
                with contextlib.suppress(OSError):
                    self._sock.sendto(reply, addr)

    def _handle_datagram(self, datagram: bytes) -> bytes | None:
        """Answer one reader datagram (``b"106A 26"``) or stay silent (``None``)."""
        try:
            return self._answer(datagram)
        finally:
            with self._changed:
                self._changed.notify_all()

    def _answer(self, datagram: bytes) -> bytes | None:
        if datagram.startswith(b"RFOFF"):
            with self._lock:
                self._state = "idle"
            return None
        parts = datagram.split()
        if len(parts) != 2:
            return None
        brty = parts[0].decode("ascii", "replace")
        try:
            frame = bytes.fromhex(parts[1].decode("ascii", "replace"))
        except ValueError:
            return None
        with self._lock:
            if frame in (b"\x26", b"\x52") or (brty.endswith("F") and frame[1:2] == b"\x00"):
                self.polls += 1
            if not self._present:
                return None
            if brty.endswith("A") and self.kind in ("type2", "unsupported"):
                answer = self._answer_a(frame)
            elif brty.endswith("F") and self.kind == "felica":
                answer = self._answer_f(frame)
            else:
                answer = None
        if answer is None:
            return None
        return brty.encode("ascii") + b" " + answer.hex().encode("ascii")

    # ISO 14443-A: activation, then NTAG commands --------------------------------------
    def _cascade_levels(self) -> list[bytes]:
        if len(self.uid) == 4:
            return [self.uid + bytes([_bcc(self.uid)])]
        first = b"\x88" + self.uid[0:3]
        second = self.uid[3:7]
        return [first + bytes([_bcc(first)]), second + bytes([_bcc(second)])]

    def _answer_a(self, frame: bytes) -> bytes | None:  # noqa: PLR0911 - one answer per frame
        levels = self._cascade_levels()
        sel_codes = (0x93, 0x95, 0x97)
        if frame in (b"\x26", b"\x52"):  # REQA / WUPA
            self._state = "ready"
            return b"\x44\x00" if len(self.uid) == 7 else b"\x04\x00"
        if self._state == "idle":
            return None
        if len(frame) == 2 and frame[1] == 0x20 and frame[0] in sel_codes:  # anticollision
            level = sel_codes.index(frame[0])
            return levels[level] if level < len(levels) else None
        if len(frame) == 7 and frame[1] == 0x70 and frame[0] in sel_codes:  # select
            level = sel_codes.index(frame[0])
            if level >= len(levels) or frame[2:7] != levels[level]:
                self._state = "idle"
                return None
            if level + 1 < len(levels):
                return b"\x04"  # SAK: UID not complete
            self._state = "active"
            return b"\x20" if self.kind == "unsupported" else b"\x00"
        if self._state != "active" or self.kind == "unsupported":
            return None
        return self._ntag_command(frame)

    def _ntag_command(self, frame: bytes) -> bytes | None:  # noqa: PLR0911 - one per command
        mem = self._memory
        if frame[:1] == b"\x30" and len(frame) == 2:  # READ four pages
            page = frame[1]
            if page >= _NTAG213_PAGES:
                self._state = "idle"
                return _NAK
            mem.reads += 1
            if self.vanish_after_reads is not None and mem.reads > self.vanish_after_reads:
                self._present = False
                self._state = "idle"
                return None
            out = bytearray()
            for i in range(4):
                p = (page + i) % _NTAG213_PAGES  # NTAG rolls over to page 0
                out += mem.data[p * 4 : p * 4 + 4]
            return bytes(out)
        if frame[:1] == b"\x60" and len(frame) == 1:  # GET_VERSION
            return _NTAG213_VERSION
        if frame[:1] == b"\xa2" and len(frame) == 6:  # WRITE one page
            page = frame[1]
            if not _NTAG213_USER_FIRST <= page <= _NTAG213_USER_LAST:
                self._state = "idle"
                return _NAK
            mem.data[page * 4 : page * 4 + 4] = frame[2:6]
            return _ACK
        # Anything else (e.g. the Ultralight C AUTHENTICATE probe 1A 00): NAK, back to IDLE.
        self._state = "idle"
        return _NAK

    # FeliCa ------------------------------------------------------------------------
    def _answer_f(self, frame: bytes) -> bytes | None:
        if len(frame) < 2 or frame[0] != len(frame):
            return None
        code = frame[1]
        if code == 0x00 and len(frame) == 6:  # polling
            system = frame[2:4]
            for want, have in zip(system, _FELICA_SYSTEM_CODE, strict=True):
                if want not in (0xFF, have):
                    return None
            body = b"\x01" + self.uid + _FELICA_PMM
            if frame[4] == 0x01:
                body += _FELICA_SYSTEM_CODE
            self._state = "active"
            return bytes([len(body) + 1]) + body
        if self._state != "active" or len(frame) < 10 or frame[2:10] != self.uid:
            return None
        if code == 0x06:
            return self._felica_read(frame[10:])
        return None

    def _felica_read(self, body: bytes) -> bytes | None:
        mem = self._memory

        def reply(status: bytes, payload: bytes = b"") -> bytes:
            out = b"\x07" + self.uid + status + payload
            return bytes([len(out) + 1]) + out

        try:
            services = body[0]
            codes = [int.from_bytes(body[1 + 2 * i : 3 + 2 * i], "little") for i in range(services)]
            pos = 1 + 2 * services
            count = body[pos]
            pos += 1
            blocks: list[int] = []
            for _ in range(count):
                head = body[pos]
                if head & 0x80:
                    blocks.append(body[pos + 1])
                    pos += 2
                else:
                    blocks.append(int.from_bytes(body[pos + 1 : pos + 3], "little"))
                    pos += 3
        except IndexError:
            return reply(b"\xff\xa1")
        if any(code not in (0x000B, 0x0009) for code in codes):
            return reply(b"\x01\xa6")  # illegal service code
        if any(block >= _FELICA_BLOCKS for block in blocks):
            return reply(b"\x01\xa8")  # illegal block number
        mem.reads += 1
        if self.vanish_after_reads is not None and mem.reads > self.vanish_after_reads:
            self._present = False
            self._state = "idle"
            return None
        data = b"".join(bytes(mem.data[b * 16 : b * 16 + 16]) for b in blocks)
        return reply(b"\x00\x00", bytes([len(blocks)]) + data)


# ---------------------------------------------------------------------- command line
def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the simulator's options."""
    parser.add_argument("--uid", required=True, help="UID in hex: 7 bytes (type2), 8 (felica), 4")
    parser.add_argument("--kind", choices=["type2", "felica", "unsupported"], default="type2")
    parser.add_argument("--card-number", help="library card number stored in an NDEF record")
    parser.add_argument("--ndef", choices=["text", "uri", "none"], default="text")
    parser.add_argument("--raw-page", type=int, help="also store the number as ASCII at this page")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="UDP port (0: any free port)")


def _control_loop(card: SimulatedCard, readline: Callable[[], str]) -> None:
    while True:
        line = readline()
        if not line:
            return
        word = line.strip().lower()
        if word == "remove":
            card.remove()
        elif word == "present":
            card.present()
        elif word == "quit":
            return
        elif word:
            print(f"unknown command {word!r}: use remove, present or quit", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Serve the card until ``quit`` or end of input."""
    try:
        uid = bytes.fromhex(args.uid)
        card = SimulatedCard(
            uid,
            kind=args.kind,
            card_number=args.card_number,
            ndef=args.ndef,
            raw_number_page=args.raw_page,
            host=args.host,
            port=args.port,
        )
    except (ValueError, OSError) as exc:
        print(f"libedge sim card: {exc}", file=sys.stderr)
        return 2
    with card:
        print(card.url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            _control_loop(card, sys.stdin.readline)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run as ``python -m simulators.card`` (what ``libedge sim card`` dispatches to)."""
    parser = argparse.ArgumentParser(prog="libedge sim card", description=HELP)
    configure(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
