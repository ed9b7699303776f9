"""Receipt printers: the :class:`Receipt` model, its ESC/POS rendering, and the printer itself.

The kiosk builds a :class:`Receipt` and calls ``open_printer(url, profile).print_receipt(r)``;
see :mod:`hardware.printer.device` for URLs, status and the exception tree, and
:mod:`hardware.printer.render` for how text (Vietnamese included) reaches the paper.
"""

from hardware.printer.device import (
    PrinterCoverOpen,
    PrinterError,
    PrinterFault,
    PrinterOutOfPaper,
    PrinterProblemKind,
    PrinterStatus,
    PrinterUnavailable,
    PrinterURLError,
    ReceiptPrinter,
    StatusFormatError,
    open_printer,
    parse_status,
)
from hardware.printer.receipt import LABELS, Receipt, ReceiptItem
from hardware.printer.render import (
    CODEPAGE_NUMBERS,
    PrinterProfile,
    choose_text_mode,
    encode_for_codepage,
    render_receipt,
)

__all__ = [
    "CODEPAGE_NUMBERS",
    "LABELS",
    "PrinterCoverOpen",
    "PrinterError",
    "PrinterFault",
    "PrinterOutOfPaper",
    "PrinterProblemKind",
    "PrinterProfile",
    "PrinterStatus",
    "PrinterURLError",
    "PrinterUnavailable",
    "Receipt",
    "ReceiptItem",
    "ReceiptPrinter",
    "StatusFormatError",
    "choose_text_mode",
    "encode_for_codepage",
    "open_printer",
    "parse_status",
    "render_receipt",
]
