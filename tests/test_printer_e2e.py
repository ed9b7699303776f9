"""Receipts through the real driver to the simulated printer, read back as a patron would.

The PNG the simulator renders is read with real OCR (tesseract, Vietnamese model) and its QR
code decoded with zbarimg, so the tests prove what is on the paper, not what was sent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import unicodedata
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from hardware.printer import (
    PrinterCoverOpen,
    PrinterOutOfPaper,
    PrinterProblemKind,
    PrinterProfile,
    PrinterUnavailable,
    Receipt,
    ReceiptItem,
    open_printer,
)
from simulators.printer import PrintedPage, PrinterSimulator
from tests.support.broker import free_port

WAIT = 20.0
QR_PAYLOAD = "https://thuvien.example/bienlai/2026-0001?the=21234000123455"


def require_tool(name: str) -> str:
    path = shutil.which(name)
    assert path, (
        f"{name} is missing: install Debian packages tesseract-ocr tesseract-ocr-vie zbar-tools"
    )
    return path


def ocr(png: Path, language: str) -> str:
    """The text tesseract reads on a receipt image (NFC-normalised, one line per line)."""
    env = dict(os.environ, OMP_THREAD_LIMIT="1")  # the machine is shared: one core is enough
    done = subprocess.run(
        [require_tool("tesseract"), str(png), "stdout", "-l", language, "--psm", "6"],
        capture_output=True, text=True, timeout=120, check=True, env=env,
    )  # fmt: skip
    return unicodedata.normalize("NFC", done.stdout)


def qr_codes(png: Path) -> list[str]:
    """The QR payloads zbarimg decodes from a receipt image."""
    done = subprocess.run(
        [require_tool("zbarimg"), "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(png)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return [line for line in done.stdout.splitlines() if line]


def vietnamese_receipt() -> Receipt:
    return Receipt(
        "Thư viện tỉnh Quảng Ngãi",
        lines=("Mượn thành công", "Thẻ: ****3455"),
        items=(ReceiptItem("Dế Mèn phiêu lưu ký", date(2026, 12, 5)),),
        qr_payload=QR_PAYLOAD,
        footer=("Cảm ơn bạn!",),
    )


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[PrinterSimulator]:
    with PrinterSimulator(tmp_path / "out", width=384) as simulator:
        simulator.start_tcp()
        yield simulator


def print_one(sim: PrinterSimulator, receipt: Receipt, profile: PrinterProfile) -> PrintedPage:
    status = open_printer(sim.url, profile).print_receipt(receipt)
    assert status.answered
    assert status.problem is None
    (page,) = sim.wait_for_pages(1, WAIT)
    assert page.cut
    assert page.png is not None
    return page


def test_vietnamese_receipt_reads_right_and_its_qr_decodes(sim: PrinterSimulator) -> None:
    """A Vietnamese receipt on a 58 mm printer: OCR reads title and due date, zbar reads the QR."""
    page = print_one(sim, vietnamese_receipt(), PrinterProfile(paper_width_mm=58))
    assert page.png is not None
    text = ocr(page.png, "vie")
    assert "Dế Mèn phiêu lưu ký" in text
    assert "Hạn trả: 05/12/2026" in text
    assert "Cảm ơn bạn!" in text
    assert qr_codes(page.png) == [QR_PAYLOAD]


def test_qr_as_image_on_an_80mm_printer(sim: PrinterSimulator, tmp_path: Path) -> None:
    """With printer-side QR switched off, the QR goes as a raster image and still decodes."""
    with PrinterSimulator(tmp_path / "wide", width=576) as wide:
        wide.start_tcp()
        page = print_one(
            wide, vietnamese_receipt(), PrinterProfile(paper_width_mm=80, qr_native=False)
        )
    assert page.png is not None
    assert qr_codes(page.png) == [QR_PAYLOAD]
    assert "Hạn trả: 05/12/2026" in ocr(page.png, "vie")


def test_english_receipt_in_text_mode(sim: PrinterSimulator) -> None:
    """An English receipt prints in the printer's text mode; OCR and the transcript agree."""
    receipt = Receipt(
        "City Library",
        lines=("Checked out",),
        items=(ReceiptItem("Moby Dick", date(2026, 12, 5)),),
        qr_payload="https://lib.example/r/7",
        footer=("Thank you",),
        language="en",
    )
    page = print_one(sim, receipt, PrinterProfile(paper_width_mm=58))
    assert "   Due: 05/12/2026" in page.transcript
    assert page.png is not None
    text = ocr(page.png, "eng")
    assert "Moby Dick" in text
    assert "Due: 05/12/2026" in text
    assert qr_codes(page.png) == ["https://lib.example/r/7"]


def test_cp1258_printer_gets_text_mode_vietnamese(sim: PrinterSimulator) -> None:
    """On a printer with CP1258 the Vietnamese text goes as text and reads back exactly."""
    page = print_one(
        sim, vietnamese_receipt(), PrinterProfile(paper_width_mm=58, codepage="cp1258")
    )
    assert "1. Dế Mèn phiêu lưu ký" in page.transcript
    assert "   Hạn trả: 05/12/2026" in page.transcript


def test_out_of_paper_is_refused_before_printing(sim: PrinterSimulator) -> None:
    """Out of paper: the driver raises PrinterOutOfPaper with the status and sends no receipt."""
    sim.paper_out = True
    printer = open_printer(sim.url, PrinterProfile(paper_width_mm=58))
    with pytest.raises(PrinterOutOfPaper) as caught:
        printer.print_receipt(vietnamese_receipt())
    assert caught.value.kind is PrinterProblemKind.OUT_OF_PAPER
    assert caught.value.status is not None
    assert caught.value.status.paper == "out"
    assert printer.status().describe() == "out of paper"
    sim.paper_out = False
    print_one(sim, vietnamese_receipt(), PrinterProfile(paper_width_mm=58))
    assert sim.bytes_received > 0


def test_cover_open_is_refused(sim: PrinterSimulator) -> None:
    """Cover open: PrinterCoverOpen, and the status says so in words."""
    sim.cover_open = True
    printer = open_printer(sim.url)
    with pytest.raises(PrinterCoverOpen):
        printer.print_receipt(vietnamese_receipt())
    assert printer.status().problem is PrinterProblemKind.COVER_OPEN
    assert sim.pages == []


def test_offline_printer() -> None:
    """Nothing listening: the status says 'not reachable' and printing raises PrinterUnavailable."""
    port = free_port()
    printer = open_printer(f"tcp://127.0.0.1:{port}", timeout=2.0)
    status = printer.status()
    assert not status.reachable
    assert status.problem is PrinterProblemKind.OFFLINE
    assert status.describe().startswith("not reachable")
    with pytest.raises(PrinterUnavailable, match=str(port)):
        printer.print_receipt(vietnamese_receipt())


def test_printer_without_status_answers_still_prints(tmp_path: Path) -> None:
    """A printer that ignores DLE EOT is 'reachable, status unknown' and the receipt is printed."""
    with PrinterSimulator(tmp_path, width=384, answer_status=False) as mute:
        mute.start_tcp()
        printer = open_printer(mute.url, PrinterProfile(paper_width_mm=58), status_timeout=0.2)
        status = printer.print_receipt(vietnamese_receipt())
        assert not status.answered
        assert "no answer" in status.detail
        assert mute.wait_for_pages(1, WAIT)[0].cut


def test_serial_style_transport(sim: PrinterSimulator) -> None:
    """A pyserial URL (socket://, as a serial-over-TCP server) goes through the serial transport."""
    url = sim.url.replace("tcp://", "socket://")
    status = open_printer(url, PrinterProfile(paper_width_mm=58)).print_receipt(
        vietnamese_receipt()
    )
    assert status.answered
    assert sim.wait_for_pages(1, WAIT)[0].cut


def test_file_printer_output_renders_in_the_simulator(tmp_path: Path) -> None:
    """A file: printer cannot report status; the bytes it wrote render as the same receipt."""
    job = tmp_path / "lp0"
    printer = open_printer(f"file:{job}", PrinterProfile(paper_width_mm=58))
    assert not printer.status().answered
    printer.print_receipt(vietnamese_receipt())
    with PrinterSimulator(tmp_path / "out", width=384) as sim:
        (page,) = sim.feed_file(job)
    assert page.cut
    assert page.png is not None
    assert qr_codes(page.png) == [QR_PAYLOAD]
