"""The receipt a kiosk prints: a plain data model, independent of any printer.

The kiosk builds a :class:`Receipt` from a session (lines already in the patron's language)
and hands it to :meth:`hardware.printer.ReceiptPrinter.print_receipt`; how it becomes ESC/POS
bytes (text mode, a code page, or raster images for Vietnamese) is the printer's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

__all__ = ["LABELS", "Receipt", "ReceiptItem"]

#: Words the renderer adds itself, per language; a Receipt may override them.
LABELS: dict[str, dict[str, str]] = {
    "vi": {"due": "Hạn trả", "items": "Tài liệu"},
    "en": {"due": "Due", "items": "Items"},
}


@dataclass(frozen=True, slots=True)
class ReceiptItem:
    """One item on the receipt: its title, and its due date or a note (e.g. why it was refused)."""

    title: str
    due: date | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Receipt:
    """Everything printed on one receipt, top to bottom.

    ``lines`` are patron-facing lines under the library's name (what happened, when, the
    patron's masked card number); ``footer`` closes the receipt under the QR code.
    """

    library_name: str
    lines: tuple[str, ...] = ()
    items: tuple[ReceiptItem, ...] = ()
    qr_payload: str | None = None
    footer: tuple[str, ...] = ()
    language: str = "vi"
    date_format: str = "%d/%m/%Y"
    due_label: str | None = None

    def label(self, key: str) -> str:
        """A label in the receipt's language (English when the language is unknown)."""
        if key == "due" and self.due_label is not None:
            return self.due_label
        return LABELS.get(self.language, LABELS["en"])[key]

    def texts(self) -> list[str]:
        """Every string that will be printed as text (to choose how to print them)."""
        out = [self.library_name, *self.lines, *self.footer]
        for item in self.items:
            out.append(item.title)
            if item.note:
                out.append(item.note)
        if any(item.due for item in self.items):
            out.append(self.label("due"))
        return out
