"""Turn a :class:`~hardware.printer.receipt.Receipt` into the ESC/POS bytes of a thermal printer.

python-escpos builds the commands (its ``Dummy`` printer collects them); this module decides
the layout and, above all, how text gets onto paper:

* text that is plain ASCII goes in the printer's text mode (crisp and fast);
* other text (Vietnamese) goes in text mode only when the printer has a code page for it and
  the profile names it (e.g. ``cp1258``, ESC t 52 on Epson); Windows-1258 lacks most
  precomposed Vietnamese letters, so they are sent as a base letter plus combining tone mark;
* otherwise — the default, since most thermal printers have no Vietnamese code page — the
  text is drawn with Pillow in a font with full Vietnamese coverage (DejaVu Sans) and sent
  as a raster image (GS v 0), which every ESC/POS printer prints.

The choice is made per receipt, so one receipt never mixes two looks of the same text.
"""

from __future__ import annotations

import codecs
import copy
import logging
import textwrap
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import qrcode
from PIL import Image, ImageDraw, ImageFont

from hardware.printer._escpos import QR_ECLEVEL_M, Profile, escpos_printer, get_profile_class
from hardware.printer.receipt import Receipt

__all__ = [
    "CODEPAGE_NUMBERS",
    "DEJAVU_DIR",
    "PrinterProfile",
    "choose_text_mode",
    "encode_for_codepage",
    "render_receipt",
    "render_text_image",
]

log = logging.getLogger(__name__)

#: Where Debian's fonts-dejavu-core puts DejaVu Sans (full Vietnamese coverage).
DEJAVU_DIR = Path("/usr/share/fonts/truetype/dejavu")

#: ESC t numbers of code pages in Epson's table, which most ESC/POS clones follow. A printer
#: that numbers them differently is configured with ``PrinterProfile.codepage_number``.
CODEPAGE_NUMBERS: dict[str, int] = {
    "cp437": 0, "cp850": 2, "cp860": 3, "cp863": 4, "cp865": 5, "cp1252": 16, "cp866": 17,
    "cp852": 18, "cp858": 19, "cp1250": 45, "cp1251": 46, "cp1253": 47, "cp1254": 48,
    "cp1255": 49, "cp1256": 50, "cp1257": 51, "cp1258": 52,
}  # fmt: skip

TextMode = Literal["ascii", "codepage", "raster"]
_ESC = b"\x1b"


@dataclass(frozen=True, slots=True)
class PrinterProfile:
    """What the receipt printer can do and how receipts should look on it."""

    paper_width_mm: Literal[58, 80] = 80
    dots: int | None = None  #: printable dots per line; 384 (58 mm) or 576 (80 mm) by default
    text_mode: Literal["auto", "raster", "codepage"] = "auto"
    codepage: str | None = None  #: a Python codec the printer has, e.g. "cp1258"
    codepage_number: int | None = None  #: its ESC t number, when not Epson's
    font_path: Path = DEJAVU_DIR / "DejaVuSans.ttf"
    bold_font_path: Path = DEJAVU_DIR / "DejaVuSans-Bold.ttf"
    font_size: int = 24  #: pixel size of raster body text (a 24-dot text line, like font A)
    logo: Path | None = None
    qr_native: bool = True  #: GS ( k (the printer draws it) rather than a raster image
    qr_size: int = 6  #: dots per QR module
    cut: bool = True
    image_impl: Literal["bitImageRaster", "graphics", "bitImageColumn"] = "bitImageRaster"
    escpos_profile: str = "default"  #: python-escpos printer profile (cut and QR support)

    def __post_init__(self) -> None:
        if self.codepage is not None:
            try:
                codecs.lookup(self.codepage)
            except LookupError as exc:
                raise ValueError(f"code page {self.codepage!r} is not a known encoding") from exc
            self.escpos_codepage_number()  # a code page without an ESC t number fails here

    @property
    def width(self) -> int:
        """Printable width in dots."""
        if self.dots is not None:
            return self.dots
        return 384 if self.paper_width_mm == 58 else 576

    @property
    def columns(self) -> int:
        """Characters per line in font A (12 dots wide)."""
        return self.width // 12

    def escpos_codepage_number(self) -> int:
        """The ESC t number of the configured code page."""
        if self.codepage_number is not None:
            return self.codepage_number
        if self.codepage is None or self.codepage.lower() not in CODEPAGE_NUMBERS:
            raise ValueError(
                f"code page {self.codepage!r} has no known ESC t number; set codepage_number"
            )
        return CODEPAGE_NUMBERS[self.codepage.lower()]


def encode_for_codepage(text: str, codec: str) -> bytes:
    """Encode text for a printer code page; raise UnicodeEncodeError when it cannot hold it.

    Windows-1258 (Vietnamese) has the base letters (â, ê, ô, ơ, ư, ă, đ) and the five tone
    marks as combining characters, but only some toned letters precomposed; a letter it
    lacks is sent as its base letter followed by the combining tone mark, as Windows does.
    """
    out = bytearray()
    for char in unicodedata.normalize("NFC", text):
        try:
            out += char.encode(codec)
            continue
        except UnicodeEncodeError:
            pass
        decomposed = unicodedata.normalize("NFD", char)
        base, marks = decomposed[0], list(decomposed[1:])
        # Put back the marks that belong to the base letter (circumflex, breve, horn) while
        # the composed letter still exists in the code page; the rest stay combining.
        # NFD orders marks by combining class (dot below before circumflex), so try each.
        merged = True
        while merged:
            merged = False
            for index, mark in enumerate(marks):
                candidate = unicodedata.normalize("NFC", base + mark)
                if len(candidate) != 1:
                    continue
                try:
                    candidate.encode(codec)
                except UnicodeEncodeError:
                    continue
                base = candidate
                del marks[index]
                merged = True
                break
        out += (base + "".join(marks)).encode(codec)  # raises if still impossible
    return bytes(out)


def choose_text_mode(receipt: Receipt, profile: PrinterProfile) -> TextMode:
    """Decide how this receipt's text is printed (see the module docstring)."""
    texts = receipt.texts()
    if profile.text_mode == "raster":
        return "raster"
    if all(text.isascii() for text in texts) and profile.text_mode == "auto":
        return "ascii"
    if profile.codepage is not None:
        try:
            for text in texts:
                encode_for_codepage(text, profile.codepage)
        except (UnicodeEncodeError, LookupError) as exc:
            log.info(
                "receipt text not printable in %s (%s); printing it as images",
                profile.codepage,
                exc,
            )
        else:
            return "codepage"
    return "raster"


@dataclass(frozen=True, slots=True)
class _Line:
    text: str
    align: Literal["left", "center", "right"] = "left"
    large: bool = False
    bold: bool = False
    indent: int = 0  #: in characters (text mode) or quarter-ems (raster)
    rule: bool = False


def _body_lines(receipt: Receipt) -> list[_Line]:
    lines = [_Line(receipt.library_name, "center", large=True, bold=True)]
    lines += [_Line(text) for text in receipt.lines]
    if receipt.items:
        lines.append(_Line("", rule=True))
        for number, item in enumerate(receipt.items, start=1):
            lines.append(_Line(f"{number}. {item.title}", bold=True))
            if item.due is not None:
                due = item.due.strftime(receipt.date_format)
                lines.append(_Line(f"{receipt.label('due')}: {due}", indent=3))
            if item.note:
                lines.append(_Line(item.note, indent=3))
        lines.append(_Line("", rule=True))
    return lines


def _footer_lines(receipt: Receipt) -> list[_Line]:
    return [_Line(text, "center") for text in receipt.footer]


def _wrap_pixels(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Word-wrap by rendered width; a word wider than the line is broken by characters."""
    out: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if font.getlength(candidate) <= width:
            current = candidate
            continue
        if current:
            out.append(current)
        current = ""
        for char in word:
            if font.getlength(current + char) > width and current:
                out.append(current)
                current = ""
            current += char
    out.append(current)
    return out


def render_text_image(lines: list[_Line], profile: PrinterProfile) -> Image.Image:
    """Draw text lines into a 1-bit image as wide as the paper (black text on white)."""
    regular = ImageFont.truetype(str(profile.font_path), profile.font_size)
    bold = ImageFont.truetype(str(profile.bold_font_path), profile.font_size)
    large = ImageFont.truetype(str(profile.bold_font_path), round(profile.font_size * 1.4))
    width = profile.width
    margin = 4
    rows: list[tuple[str, ImageFont.FreeTypeFont, _Line]] = []
    for line in lines:
        font = large if line.large else (bold if line.bold else regular)
        if line.rule:
            rows.append(("", font, line))
            continue
        indent_px = line.indent * profile.font_size // 2
        for piece in _wrap_pixels(line.text, font, width - 2 * margin - indent_px):
            rows.append((piece, font, line))

    def row_height(font: ImageFont.FreeTypeFont) -> int:
        ascent, descent = font.getmetrics()
        return ascent + descent + profile.font_size // 4

    height = sum(row_height(font) for _, font, _ in rows) + 2 * margin
    canvas = Image.new("L", (width, max(height, 1)), 255)
    draw = ImageDraw.Draw(canvas)
    y = margin
    for text, font, line in rows:
        h = row_height(font)
        if line.rule:
            draw.line([(margin, y + h // 2), (width - margin, y + h // 2)], fill=0, width=2)
        else:
            text_width = font.getlength(text)
            indent_px = line.indent * profile.font_size // 2
            if line.align == "center":
                x = (width - text_width) / 2
            elif line.align == "right":
                x = width - margin - text_width
            else:
                x = margin + indent_px
            draw.text((x, y), text, font=font, fill=0)
        y += h
    # Threshold instead of dithering: dithered glyph edges print as speckles.
    return canvas.point(lambda value: 255 if value >= 128 else 0).convert("1")


def _logo_image(path: Path, width: int) -> Image.Image | None:
    try:
        with Image.open(path) as source:
            logo = source.convert("RGBA")
    except (OSError, ValueError) as exc:
        log.warning("receipt logo %s cannot be read (%s); printing without it", path, exc)
        return None
    max_width = width * 2 // 3
    if logo.width > max_width:
        logo = logo.resize((max_width, max(1, logo.height * max_width // logo.width)))
    canvas = Image.new("RGB", (width, logo.height), (255, 255, 255))
    canvas.paste(logo, ((width - logo.width) // 2, 0), logo)
    return canvas


def _qr_image(payload: str, profile: PrinterProfile) -> Image.Image:
    code = qrcode.QRCode(
        box_size=profile.qr_size, border=2, error_correction=qrcode.constants.ERROR_CORRECT_M
    )
    code.add_data(payload)
    code.make(fit=True)
    symbol = code.make_image().get_image().convert("1")
    if symbol.width > profile.width:
        raise ValueError(f"the QR code is {symbol.width} dots wide; the paper has {profile.width}")
    canvas = Image.new("1", (profile.width, symbol.height), 1)
    canvas.paste(symbol, ((profile.width - symbol.width) // 2, 0))
    return canvas


def _text_lines(p: Any, lines: list[_Line], profile: PrinterProfile, mode: TextMode) -> None:
    """Send lines in the printer's own text mode (``p`` is a python-escpos printer)."""
    raw, set_ = p._raw, p.set
    codec = profile.codepage if mode == "codepage" and profile.codepage else "ascii"
    if mode == "codepage":
        raw(_ESC + b"t" + bytes([profile.escpos_codepage_number()]))
    for line in lines:
        columns = profile.columns // (2 if line.large else 1)
        if line.rule:
            set_(align="left", bold=False, normal_textsize=True)
            raw(b"-" * profile.columns + b"\n")
            continue
        set_(
            align=line.align,
            bold=line.bold or line.large,
            normal_textsize=not line.large,
            double_width=line.large,
            double_height=line.large,
        )
        indent = " " * line.indent
        wrapped = textwrap.wrap(line.text, columns - len(indent), break_long_words=True) or [""]
        for piece in wrapped:
            raw(
                encode_for_codepage(indent + piece if line.align == "left" else piece, codec)
                + b"\n"
            )
    set_(align="left", bold=False, normal_textsize=True)


def _escpos_profile(profile: PrinterProfile) -> Any:
    """The python-escpos profile, told our paper width (its shared class data is not touched)."""
    data = copy.deepcopy(get_profile_class(profile.escpos_profile).profile_data)
    data["media"] = {"dpi": 203, "width": {"mm": profile.paper_width_mm, "pixels": profile.width}}
    escpos_profile = Profile(columns=profile.columns)
    escpos_profile.profile_data = data
    escpos_profile.features = data["features"]
    return escpos_profile


def render_receipt(receipt: Receipt, profile: PrinterProfile | None = None) -> bytes:
    """The complete ESC/POS byte stream for one receipt, ending with a cut."""
    profile = profile or PrinterProfile()
    mode = choose_text_mode(receipt, profile)
    p = escpos_printer.Dummy(profile=_escpos_profile(profile))
    p._raw(_ESC + b"@")
    if profile.logo is not None:
        logo = _logo_image(profile.logo, profile.width)
        if logo is not None:
            p.image(logo, impl=profile.image_impl)
    body, footer = _body_lines(receipt), _footer_lines(receipt)
    if mode == "raster":
        p.image(render_text_image(body, profile), impl=profile.image_impl)
    else:
        _text_lines(p, body, profile, mode)
    if receipt.qr_payload:
        if profile.qr_native:
            p.set(align="center")
            p.qr(receipt.qr_payload, native=True, size=profile.qr_size, ec=QR_ECLEVEL_M)
            p._raw(b"\n")
            p.set(align="left")
        else:
            p.image(_qr_image(receipt.qr_payload, profile), impl=profile.image_impl)
    if footer:
        if mode == "raster":
            p.image(render_text_image(footer, profile), impl=profile.image_impl)
        else:
            _text_lines(p, footer, profile, mode)
    if profile.cut:
        p.cut()
    else:
        p._raw(_ESC + b"d\x04")
    return bytes(p.output)
