"""The simulated printer's paper: what the print head would have put on the roll.

The interpreter (``simulators.printer.interpreter``) decides *what* to print; this module draws
it: text in fixed character cells (font A 12x24 dots, font B 9x17) with the size multipliers,
bold, underline and reverse of ESC/POS; bit images; QR symbols. A finished receipt is a
:class:`PrintedPage`: a PNG-ready image plus a transcript of its text-mode lines.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import qrcode
from PIL import Image, ImageDraw, ImageFont

__all__ = ["CellStyle", "Paper", "PrintedPage", "bitmap_from_columns", "bitmap_from_raster"]

_FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
_CELLS = {False: (12, 24), True: (9, 17)}  # font A / font B cell size in dots
_MAX_HEIGHT = 30_000  # dots (~3.7 m of paper): beyond this a job is cut off, not rendered


@dataclass(frozen=True, slots=True)
class CellStyle:
    """How one character is printed."""

    font_b: bool = False
    bold: bool = False
    underline: int = 0
    width: int = 1
    height: int = 1
    reverse: bool = False


@dataclass
class PrintedPage:
    """One receipt as printed: the image of the paper and what was printed as text."""

    image: Image.Image
    transcript: list[str] = field(default_factory=list)
    qr_payloads: list[str] = field(default_factory=list)
    cut: bool = False
    png: Path | None = None
    text_file: Path | None = None

    @property
    def text(self) -> str:
        """The transcript as one string, a line per entry."""
        return "\n".join(self.transcript)


@lru_cache(maxsize=8)
def _font(font_b: bool, bold: bool) -> ImageFont.FreeTypeFont:
    name = "DejaVuSansMono-Bold.ttf" if bold else "DejaVuSansMono.ttf"
    return ImageFont.truetype(str(_FONT_DIR / name), 15 if font_b else 20)


def _cell(char: str, style: CellStyle) -> Image.Image:
    cell_w, cell_h = _CELLS[style.font_b]
    # Stacked Vietnamese marks (ế, ỉ) reach past the advance width in DejaVu Sans Mono:
    # draw wide, then squeeze the ink into the cell, as a printer's own font would fit it.
    wide = Image.new("L", (cell_w * 2, cell_h), 255)
    font = _font(style.font_b, style.bold)
    ImageDraw.Draw(wide).text((0, cell_h - 4), char, font=font, fill=0, anchor="ls")
    ink = wide.point(lambda v: 255 - v).getbbox()
    right = max(cell_w, ink[2] if ink else 0)
    cell = wide.crop((0, 0, right, cell_h))
    if right != cell_w:
        cell = cell.resize((cell_w, cell_h), Image.Resampling.LANCZOS)
    draw = ImageDraw.Draw(cell)
    if style.underline:
        draw.line([(0, cell_h - 1), (cell_w, cell_h - 1)], fill=0, width=style.underline)
    if style.reverse:
        cell = cell.point(lambda v: 255 - v)
    if style.width != 1 or style.height != 1:
        cell = cell.resize((cell_w * style.width, cell_h * style.height), Image.Resampling.NEAREST)
    return cell


def bitmap_from_raster(data: bytes, width_bytes: int, height: int) -> Image.Image:
    """A raster bit image (GS v 0, GS ( L): rows of bytes, MSB leftmost, 1 = black."""
    image = Image.frombytes("1", (width_bytes * 8, height), data)
    return image.convert("L").point(lambda v: 255 - v)


def bitmap_from_columns(data: bytes, columns: int, dots: int) -> Image.Image:
    """A column bit image (ESC *): per column ``dots // 8`` bytes, top byte first, MSB on top."""
    per_column = dots // 8
    image = Image.new("L", (columns, dots), 255)
    pixels = image.load()
    assert pixels is not None
    for x in range(columns):
        for k in range(per_column):
            byte = data[x * per_column + k]
            for bit in range(8):
                if byte & (0x80 >> bit):
                    pixels[x, k * 8 + bit] = 0
    return image


class Paper:
    """The roll under the print head: bands of dots added top to bottom."""

    def __init__(self, width: int) -> None:
        self.width = width
        self._bands: list[Image.Image] = []
        self.height = 0
        self.transcript: list[str] = []
        self.qr_payloads: list[str] = []
        self.overflowed = False

    @property
    def empty(self) -> bool:
        """True when nothing has been printed on this page yet."""
        return not self._bands and not self.transcript

    def _add(self, band: Image.Image) -> None:
        if self.height + band.height > _MAX_HEIGHT:
            if not self.overflowed:
                self.transcript.append("[paper limit reached: rest of the job not rendered]")
            self.overflowed = True
            return
        self._bands.append(band)
        self.height += band.height

    def feed(self, dots: int) -> None:
        """Advance the paper without printing."""
        if dots > 0:
            self._add(Image.new("L", (self.width, dots), 255))

    def place(self, image: Image.Image, align: int, advance: int | None = None) -> None:
        """Print an image band aligned left (0), centred (1) or right (2), clipped to the paper."""
        if image.width > self.width:
            image = image.crop((0, 0, self.width, image.height))
        band = Image.new("L", (self.width, max(advance or 0, image.height)), 255)
        x = {0: 0, 1: (self.width - image.width) // 2, 2: self.width - image.width}.get(align, 0)
        band.paste(image, (x, 0))
        self._add(band)

    def text_line(self, cells: list[tuple[str, CellStyle]], align: int, spacing: int) -> None:
        """Print one line of text cells and record it in the transcript."""
        text = unicodedata.normalize("NFC", "".join(char for char, _ in cells))
        self.transcript.append(text.rstrip())
        if not cells:
            self.feed(spacing)
            return
        images = [_cell(char, style) for char, style in _compose(cells)]
        line_w = sum(img.width for img in images)
        line_h = max(img.height for img in images)
        line = Image.new("L", (line_w, line_h), 255)
        x = 0
        for img in images:
            line.paste(img, (x, line_h - img.height))
            x += img.width
        self.place(line, align, advance=max(spacing, line_h))

    def qr(self, payload: str, module: int, level: str, align: int) -> None:
        """Print a QR symbol (model 2) with the given module size and error-correction level."""
        levels = {
            "L": qrcode.constants.ERROR_CORRECT_L,
            "M": qrcode.constants.ERROR_CORRECT_M,
            "Q": qrcode.constants.ERROR_CORRECT_Q,
            "H": qrcode.constants.ERROR_CORRECT_H,
        }
        code = qrcode.QRCode(box_size=max(1, module), border=4, error_correction=levels[level])
        code.add_data(payload)
        code.make(fit=True)
        symbol = code.make_image().get_image().convert("L")
        self.qr_payloads.append(payload)
        self.transcript.append(f"[QR {payload}]")
        self.place(symbol, align)

    def finish(self, cut: bool) -> PrintedPage:
        """Take the page off the roll (the printer cut it, or the job ended)."""
        height = max(self.height, 1) + 16
        image = Image.new("L", (self.width, height), 255)
        y = 8
        for band in self._bands:
            image.paste(band, (0, y))
            y += band.height
        page = PrintedPage(image, self.transcript, self.qr_payloads, cut)
        self._bands, self.height, self.transcript, self.qr_payloads = [], 0, [], []
        self.overflowed = False
        return page


def _compose(cells: list[tuple[str, CellStyle]]) -> list[tuple[str, CellStyle]]:
    """Fold combining marks (sent after their base letter, as in CP1258) into the base's cell."""
    out: list[tuple[str, CellStyle]] = []
    for char, style in cells:
        if out and unicodedata.combining(char):
            base, base_style = out[-1]
            out[-1] = (unicodedata.normalize("NFC", base + char), base_style)
        else:
            out.append((char, style))
    return out
