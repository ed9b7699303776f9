"""An ESC/POS interpreter for the simulated receipt printer, written from the command reference.

It takes the byte stream a printer would receive, in pieces of any size, keeps the printer's
state (character size, emphasis, alignment, code page, line spacing) and prints onto a
:class:`~simulators.printer.paper.Paper`: text lines, raster images (GS v 0, GS ( L), column
images (ESC *), QR codes (GS ( k), feeds and cuts. Real-time status requests (DLE EOT n, and
the older GS r / ESC v) are answered through a callback with the printer's configured state.

Commands it does not know are noted in the transcript and skipped, never fatal: the
simulator must survive any byte stream, as a printer does. A command whose declared length
has not fully arrived waits for more bytes.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace

from PIL import Image

from simulators.printer.paper import (
    CellStyle,
    Paper,
    PrintedPage,
    bitmap_from_columns,
    bitmap_from_raster,
)

__all__ = ["EPSON_CODEPAGES", "EscPosInterpreter", "PrinterState"]

#: ESC t n -> Python codec, from Epson's character code table list.
EPSON_CODEPAGES: dict[int, str] = {
    0: "cp437", 2: "cp850", 3: "cp860", 4: "cp863", 5: "cp865", 16: "cp1252", 17: "cp866",
    18: "cp852", 19: "cp858", 45: "cp1250", 46: "cp1251", 47: "cp1253", 48: "cp1254",
    49: "cp1255", 50: "cp1256", 51: "cp1257", 52: "cp1258",
}  # fmt: skip

ESC, GS, FS, DLE = 0x1B, 0x1D, 0x1C, 0x10
_MAX_IMAGE_DOTS = 4096
_QR_LEVELS = {48: "L", 49: "M", 50: "Q", 51: "H"}

# Commands that take a fixed number of argument bytes after their two-byte code.
_ESC_ARGS = {
    ord(c): n
    for c, n in {
        "!": 1, "E": 1, "G": 1, "-": 1, "M": 1, "a": 1, "t": 1, "d": 1, "J": 1, "3": 1,
        "R": 1, "{": 1, "V": 1, "r": 1, "U": 1, " ": 1, "K": 1, "e": 1, "=": 1, "%": 1,
        "?": 1, "T": 1, "u": 1, "v": 1, "p": 3, "B": 2, "$": 2, "\\": 2, "W": 8, "@": 0,
        "2": 0, "i": 0, "m": 0, "<": 0, "L": 0, "S": 0, "\x0c": 0, "A": 1, "+": 1,
    }.items()
}  # fmt: skip
_GS_ARGS = {
    ord(c): n
    for c, n in {
        "!": 1, "B": 1, "H": 1, "f": 1, "h": 1, "w": 1, "a": 1, "b": 1, "|": 1, "E": 1,
        "r": 1, "I": 1, "j": 1, "T": 1, "/": 1, "L": 2, "W": 2, "$": 2, "\\": 2, "P": 2,
        "^": 3, ":": 0, "\x0c": 0,
    }.items()
}  # fmt: skip
_FS_ARGS = {
    ord(c): n for c, n in {"p": 2, ".": 0, "&": 0, "C": 1, "!": 1, "-": 1, "S": 2, "W": 1}.items()
}


class _IncompleteError(Exception):
    """The command at the head of the buffer has not fully arrived."""


@dataclass(frozen=True, slots=True)
class PrinterState:
    """The printer's configured condition, as DLE EOT reports it."""

    paper_out: bool = False
    paper_near_end: bool = False
    cover_open: bool = False
    error: bool = False

    def dle_eot(self, n: int) -> int:
        """The status byte for DLE EOT n (1 printer, 2 offline cause, 3 error, 4 paper)."""
        value = 0x12
        if n == 1 and (self.paper_out or self.cover_open or self.error):
            value |= 0x08  # offline
        elif n == 2:
            value |= (0x04 if self.cover_open else 0) | (0x20 if self.paper_out else 0)
            value |= 0x40 if self.error else 0
        elif n == 3 and self.error:
            value |= 0x40  # unrecoverable error
        elif n == 4:
            value |= (0x0C if self.paper_near_end else 0) | (0x60 if self.paper_out else 0)
        return value


class EscPosInterpreter:
    """Feed bytes in; pages come out through ``on_page`` at each cut (and at :meth:`finish`)."""

    def __init__(
        self,
        width: int = 576,
        *,
        on_page: Callable[[PrintedPage], None],
        respond: Callable[[bytes], None] | None = None,
        state: Callable[[], PrinterState] = PrinterState,
        codepages: dict[int, str] | None = None,
    ) -> None:
        self.paper = Paper(width)
        self._on_page = on_page
        self._respond = respond or (lambda data: None)
        self._state = state
        self._codepages = dict(EPSON_CODEPAGES if codepages is None else codepages)
        self._buf = bytearray()
        self._line: list[tuple[str, CellStyle]] = []
        self._line_width = 0
        self._graphics: Image.Image | None = None
        self._qr_data = b""
        self._reset()

    def _reset(self) -> None:
        self.style = CellStyle()
        self.align = 0
        self.spacing = 30
        self.codepage = 0
        self._qr_module = 3
        self._qr_level = "L"
        self._blocked_noted = False

    # ------------------------------------------------------------------ input
    def feed(self, data: bytes) -> None:
        """Interpret as many complete commands as ``data`` (with earlier leftovers) holds."""
        self._buf += data
        pos = 0
        while pos < len(self._buf):
            try:
                pos = self._step(pos)
            except _IncompleteError:
                break
        del self._buf[:pos]

    def finish(self) -> None:
        """The job ended (connection closed, file read): print what is pending."""
        if self._buf:
            self.paper.transcript.append(
                f"[incomplete command at end of job: {len(self._buf)} bytes]"
            )
            self._buf.clear()
        if self._line:
            self._print_line()
        if not self.paper.empty:
            self._on_page(self.paper.finish(cut=False))

    # ------------------------------------------------------------------ helpers
    def _need(self, pos: int, count: int) -> None:
        if len(self._buf) < pos + count:
            raise _IncompleteError

    def _note(self, text: str) -> None:
        self.paper.transcript.append(f"[{text}]")

    def _blocked(self) -> bool:
        state = self._state()
        if state.paper_out or state.cover_open:
            if not self._blocked_noted:
                self._note("not printed: " + ("out of paper" if state.paper_out else "cover open"))
                self._blocked_noted = True
            return True
        return False

    def _cell_size(self) -> int:
        return (9 if self.style.font_b else 12) * self.style.width

    def _print_line(self) -> None:
        if not self._blocked():
            self.paper.text_line(self._line, self.align, self.spacing)
        self._line, self._line_width = [], 0

    def _add_char(self, char: str) -> None:
        if unicodedata.combining(char) and self._line:
            self._line.append((char, self.style))  # a tone mark shares its letter's cell
            return
        width = self._cell_size()
        if self._line_width + width > self.paper.width:
            self._print_line()  # the printer wraps a line that does not fit
        self._line.append((char, self.style))
        self._line_width += width

    def _decode(self, byte: int) -> str:
        codec = self._codepages.get(self.codepage)
        if codec is None:
            return "?"
        try:
            return bytes([byte]).decode(codec)
        except UnicodeDecodeError:
            return "?"

    # ------------------------------------------------------------------ one command
    def _step(self, pos: int) -> int:  # noqa: PLR0911 - one branch per command
        byte = self._buf[pos]
        if byte == 0x0A:
            self._print_line()
            return pos + 1
        if byte == ESC:
            return self._esc(pos)
        if byte == GS:
            return self._gs(pos)
        if byte == FS:
            return self._fs(pos)
        if byte == DLE:
            return self._dle(pos)
        if byte == 0x09:
            for _ in range(8 - len(self._line) % 8):
                self._add_char(" ")
            return pos + 1
        if byte < 0x20 or byte == 0x7F:
            return pos + 1  # CR, NUL and other controls a receipt printer ignores
        self._add_char(self._decode(byte))
        return pos + 1

    def _esc(self, pos: int) -> int:  # noqa: PLR0911 - one branch per command
        self._need(pos, 2)
        cmd = self._buf[pos + 1]
        if cmd == ord("*"):  # column bit image: m nL nH data
            self._need(pos, 5)
            m, columns = self._buf[pos + 2], self._buf[pos + 3] | self._buf[pos + 4] << 8
            dots = 24 if m in (32, 33) else 8
            size = columns * dots // 8
            self._need(pos, 5 + size)
            image = bitmap_from_columns(bytes(self._buf[pos + 5 : pos + 5 + size]), columns, dots)
            if m in (0, 32):
                image = image.resize((columns * 2, dots))
            if not self._blocked():
                self.paper.place(image, self.align)
            return pos + 5 + size
        if cmd == ord("D"):  # tab positions, NUL-terminated
            end = self._buf.find(b"\x00", pos + 2)
            if end < 0:
                if len(self._buf) - pos > 34:
                    return pos + 2
                raise _IncompleteError
            return end + 1
        if cmd == ord("&"):  # user-defined characters: y c1 c2 then per char x, y*x bytes
            self._need(pos, 5)
            y, c1, c2 = self._buf[pos + 2], self._buf[pos + 3], self._buf[pos + 4]
            at = pos + 5
            for _ in range(max(0, c2 - c1 + 1)):
                self._need(at, 1)
                at += 1 + y * self._buf[at]
            if len(self._buf) < at:
                raise _IncompleteError
            self._note("user-defined characters ignored")
            return at
        if cmd == ord("c"):  # ESC c 3/4/5 n: paper sensors, panel buttons
            self._need(pos, 4)
            return pos + 4
        count = _ESC_ARGS.get(cmd)
        if count is None:
            self._note(f"unknown command ESC 0x{cmd:02X}")
            return pos + 2
        self._need(pos, 2 + count)
        args = self._buf[pos + 2 : pos + 2 + count]
        self._esc_apply(chr(cmd), args)
        return pos + 2 + count

    def _esc_apply(self, cmd: str, args: bytearray) -> None:  # noqa: PLR0912 - one per command
        n = args[0] if args else 0
        s = self.style
        if cmd == "@":
            if self._line:
                self._print_line()
            self._reset()
        elif cmd == "!":
            self.style = replace(
                s, font_b=bool(n & 0x01), bold=bool(n & 0x08), height=2 if n & 0x10 else 1,
                width=2 if n & 0x20 else 1, underline=1 if n & 0x80 else 0,
            )  # fmt: skip
        elif cmd in "EG":
            self.style = replace(s, bold=bool(n & 1))
        elif cmd == "-":
            self.style = replace(s, underline=n % 48 if n % 48 <= 2 else 0)
        elif cmd == "M":
            self.style = replace(s, font_b=n in (1, 49))
        elif cmd == "a":
            self.align = n % 48 if n % 48 <= 2 else 0
        elif cmd == "t":
            self.codepage = n
            if n not in self._codepages:
                self._note(f"code page {n} unknown to the simulator; printed as '?'")
        elif cmd == "d":
            if self._line:
                self._print_line()
                n = max(0, n - 1)
            if not self._blocked():
                self.paper.feed(n * self.spacing)
        elif cmd == "J":
            if not self._blocked():
                self.paper.feed(n)
        elif cmd == "2":
            self.spacing = 30
        elif cmd == "3":
            self.spacing = n
        elif cmd in "im":
            self._cut()
        elif cmd in "uv":  # old-style status requests
            self._respond(bytes([0x0C if self._state().paper_out else 0x00]))

    def _gs(self, pos: int) -> int:  # noqa: PLR0911, PLR0912 - one branch per command
        self._need(pos, 2)
        cmd = self._buf[pos + 1]
        if cmd == ord("v"):
            return self._raster(pos)
        if cmd == ord("("):
            self._need(pos, 5)
            length = self._buf[pos + 3] | self._buf[pos + 4] << 8
            self._need(pos, 5 + length)
            self._extended(chr(self._buf[pos + 2]), bytes(self._buf[pos + 5 : pos + 5 + length]))
            return pos + 5 + length
        if cmd == ord("8"):  # GS 8 L p1..p4 m fn: graphics with a 4-byte length
            self._need(pos, 7)
            length = int.from_bytes(self._buf[pos + 3 : pos + 7], "little")
            self._need(pos, 7 + length)
            if self._buf[pos + 2] == ord("L"):
                self._extended("L", bytes(self._buf[pos + 7 : pos + 7 + length]))
            return pos + 7 + length
        if cmd == ord("V"):
            self._need(pos, 3)
            m = self._buf[pos + 2]
            extra = 1 if m in (65, 66, 97, 98, 103, 104) else 0
            self._need(pos, 3 + extra)
            if extra and m in (65, 66) and not self._blocked():
                self.paper.feed(self._buf[pos + 3])
            self._cut()
            return pos + 3 + extra
        if cmd == ord("k"):
            return self._barcode(pos)
        if cmd == ord("*"):  # define downloaded bit image: x y then x*y*8 bytes
            self._need(pos, 4)
            size = self._buf[pos + 2] * self._buf[pos + 3] * 8
            self._need(pos, 4 + size)
            return pos + 4 + size
        count = _GS_ARGS.get(cmd)
        if count is None:
            self._note(f"unknown command GS 0x{cmd:02X}")
            return pos + 2
        self._need(pos, 2 + count)
        n = self._buf[pos + 2] if count else 0
        if cmd == ord("!"):
            self.style = replace(self.style, width=(n >> 4 & 7) + 1, height=(n & 7) + 1)
        elif cmd == ord("B"):
            self.style = replace(self.style, reverse=bool(n & 1))
        elif cmd == ord("r"):
            state = self._state()
            self._respond(
                bytes([(0x03 if state.paper_near_end else 0) | (0x0C if state.paper_out else 0)])
            )
        elif cmd == ord("I"):
            self._respond(b"_libedge simulator\x00" if n >= 65 else b"\x00")
        return pos + 2 + count

    def _raster(self, pos: int) -> int:
        self._need(pos, 8)
        m = self._buf[pos + 3]
        width_bytes = self._buf[pos + 4] | self._buf[pos + 5] << 8
        height = self._buf[pos + 6] | self._buf[pos + 7] << 8
        if (
            self._buf[pos + 2] not in (0, 48)
            or width_bytes * 8 > _MAX_IMAGE_DOTS
            or height > _MAX_IMAGE_DOTS
        ):
            self._note("malformed raster image command ignored")
            return pos + 2
        size = width_bytes * height
        self._need(pos, 8 + size)
        image = bitmap_from_raster(bytes(self._buf[pos + 8 : pos + 8 + size]), width_bytes, height)
        if m % 48 in (1, 3):
            image = image.resize((image.width * 2, image.height))
        if m % 48 in (2, 3):
            image = image.resize((image.width, image.height * 2))
        if self._line:
            self._print_line()
        if not self._blocked():
            self.paper.transcript.append(f"[image {image.width}x{image.height}]")
            self.paper.place(image, self.align)
        return pos + 8 + size

    def _extended(self, kind: str, body: bytes) -> None:  # noqa: PLR0912 - one per function
        """GS ( x: 'k' 2-D codes, 'L' graphics; others are skipped."""
        if kind == "k" and len(body) >= 2 and body[0] == 49:  # QR code
            fn = body[1]
            if fn == 67 and len(body) >= 3:
                self._qr_module = max(1, min(16, body[2]))
            elif fn == 69 and len(body) >= 3:
                self._qr_level = _QR_LEVELS.get(body[2], "L")
            elif fn == 80 and len(body) >= 3:
                self._qr_data = body[3:]
            elif fn == 81:
                payload = self._qr_data.decode("utf-8", "replace")
                if payload and not self._blocked():
                    if self._line:
                        self._print_line()
                    try:
                        self.paper.qr(payload, self._qr_module, self._qr_level, self.align)
                    except ValueError as exc:  # data too long for any QR version
                        self._note(f"QR code not printable: {exc}")
        elif kind == "k":
            self._note("2-D code other than QR not rendered")
        elif kind == "L" and len(body) >= 2:
            fn = body[1]
            if fn == 112 and len(body) >= 10:  # store raster graphics: a bx by c xL xH yL yH d
                width = body[6] | body[7] << 8
                height = body[8] | body[9] << 8
                width_bytes = (width + 7) // 8
                data = body[10 : 10 + width_bytes * height]
                if (
                    len(data) == width_bytes * height
                    and 0 < width <= _MAX_IMAGE_DOTS
                    and height <= _MAX_IMAGE_DOTS
                ):
                    self._graphics = bitmap_from_raster(data, width_bytes, height)
                else:
                    self._note("malformed graphics data ignored")
            elif fn in (50, 2) and self._graphics is not None:  # print stored graphics
                if self._line:
                    self._print_line()
                if not self._blocked():
                    image = self._graphics
                    self.paper.transcript.append(f"[image {image.width}x{image.height}]")
                    self.paper.place(image, self.align)
                self._graphics = None

    def _barcode(self, pos: int) -> int:
        self._need(pos, 3)
        m = self._buf[pos + 2]
        if m <= 6:  # data ends with NUL
            end = self._buf.find(b"\x00", pos + 3)
            if end < 0:
                if len(self._buf) - pos > 256:
                    return pos + 3
                raise _IncompleteError
            data, nxt = bytes(self._buf[pos + 3 : end]), end + 1
        else:
            self._need(pos, 4)
            count = self._buf[pos + 3]
            self._need(pos, 4 + count)
            data, nxt = bytes(self._buf[pos + 4 : pos + 4 + count]), pos + 4 + count
        self._note(f"barcode {data.decode('ascii', 'replace')}")
        return nxt

    def _fs(self, pos: int) -> int:
        self._need(pos, 2)
        cmd = self._buf[pos + 1]
        count = _FS_ARGS.get(cmd)
        if count is None:
            self._note(f"unknown command FS 0x{cmd:02X}")
            return pos + 2
        self._need(pos, 2 + count)
        return pos + 2 + count

    def _dle(self, pos: int) -> int:
        self._need(pos, 2)
        cmd = self._buf[pos + 1]
        if cmd == 0x04:  # DLE EOT n [a]: real-time status
            self._need(pos, 3)
            n = self._buf[pos + 2]
            if n in (7, 8):
                self._need(pos, 4)
                self._respond(b"\x12")
                return pos + 4
            self._respond(bytes([self._state().dle_eot(n)]))
            return pos + 3
        if cmd == 0x05:  # DLE ENQ n: real-time request, no answer
            self._need(pos, 3)
            return pos + 3
        if cmd == 0x14:  # DLE DC4 fn m t: real-time pulse / power off / clear
            self._need(pos, 5)
            return pos + 5
        return pos + 1  # a lone DLE is data the printer ignores

    def _cut(self) -> None:
        if self._line:
            self._print_line()
        if self._blocked():
            return
        self.paper.transcript.append("[cut]")
        self._on_page(self.paper.finish(cut=True))
