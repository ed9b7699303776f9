"""A simulated ESC/POS receipt printer that renders what it receives to PNG and text.

It is written from the ESC/POS command reference, independently of ``hardware.printer``
(which uses python-escpos): the driver and the simulator agree only on the bytes.
"""

from simulators.printer.interpreter import EPSON_CODEPAGES, EscPosInterpreter, PrinterState
from simulators.printer.paper import Paper, PrintedPage
from simulators.printer.server import PrinterSimulator

__all__ = [
    "EPSON_CODEPAGES",
    "EscPosInterpreter",
    "Paper",
    "PrintedPage",
    "PrinterSimulator",
    "PrinterState",
]
