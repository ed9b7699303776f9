"""The receipt printer driver's pure parts: text modes, code pages, status bytes, URLs, bytes out."""

from __future__ import annotations

import unicodedata
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from hardware.printer import (
    PrinterProblemKind,
    PrinterProfile,
    PrinterStatus,
    PrinterURLError,
    Receipt,
    ReceiptItem,
    StatusFormatError,
    choose_text_mode,
    encode_for_codepage,
    open_printer,
    parse_status,
    render_receipt,
)

VIETNAMESE = "Dế Mèn phiêu lưu ký — Hạn trả: 05/12/2026. Thư viện tỉnh Quảng Ngãi, Ỷ Ửng Ẫ đĐ"
VI_LETTERS = "aăâbcdđeêghiklmnoôơpqrstuưvxyAĂÂĐÊÔƠƯàảãáạằẳẵắặầẩẫấậèẻẽéẹềểễếệìỉĩíịòỏõóọồổỗốộờởỡớợùủũúụừửữứựỳỷỹýỵ"


def english_receipt() -> Receipt:
    return Receipt(
        "City Library",
        lines=("Checked out to card ****3455",),
        items=(
            ReceiptItem("Moby Dick", date(2026, 12, 5)),
            ReceiptItem("Atlas", note="On hold: see staff"),
        ),
        qr_payload="https://lib.example/r/1",
        footer=("Thank you!",),
        language="en",
    )


def vietnamese_receipt() -> Receipt:
    return Receipt(
        "Thư viện tỉnh",
        lines=("Mượn thành công",),
        items=(ReceiptItem("Dế Mèn phiêu lưu ký", date(2026, 12, 5)),),
        qr_payload="https://lib.example/r/2",
        footer=("Cảm ơn bạn!",),
    )


def test_cp1258_encoding_decodes_back_to_the_same_text() -> None:
    """Vietnamese text encoded for CP1258 (base letter + combining tone) reads back identically."""
    encoded = encode_for_codepage(VIETNAMESE.replace("—", "-"), "cp1258")
    assert unicodedata.normalize("NFC", encoded.decode("cp1258")) == VIETNAMESE.replace("—", "-")


@given(st.text(alphabet=VI_LETTERS + " 0123456789:/.,", max_size=60))
def test_every_vietnamese_letter_fits_cp1258(text: str) -> None:
    """Any text of Vietnamese letters is printable in CP1258 and survives the round trip."""
    encoded = encode_for_codepage(text, "cp1258")
    assert unicodedata.normalize("NFC", encoded.decode("cp1258")) == unicodedata.normalize(
        "NFC", text
    )


def test_text_a_code_page_cannot_hold_is_an_error() -> None:
    """Vietnamese in CP437 (no such letters) raises instead of printing question marks."""
    with pytest.raises(UnicodeEncodeError):
        encode_for_codepage("Dế Mèn", "cp437")


def test_text_mode_choice() -> None:
    """ASCII receipts use text mode; Vietnamese ones default to raster, or a configured code page."""
    assert choose_text_mode(english_receipt(), PrinterProfile()) == "ascii"
    assert choose_text_mode(vietnamese_receipt(), PrinterProfile()) == "raster"
    assert choose_text_mode(vietnamese_receipt(), PrinterProfile(codepage="cp1258")) == "codepage"
    assert choose_text_mode(vietnamese_receipt(), PrinterProfile(codepage="cp437")) == "raster"
    assert choose_text_mode(english_receipt(), PrinterProfile(text_mode="raster")) == "raster"


def test_english_receipt_bytes() -> None:
    """A text-mode receipt starts with ESC @, carries its text and the QR command, ends with a cut."""
    data = render_receipt(english_receipt(), PrinterProfile(paper_width_mm=58))
    assert data.startswith(b"\x1b@")
    for text in (
        b"City Library",
        b"1. Moby Dick",
        b"Due: 05/12/2026",
        b"On hold: see staff",
        b"Thank you!",
    ):
        assert text in data
    assert b"\x1d(k" in data
    assert b"https://lib.example/r/1" in data
    assert data.endswith(b"\x1dV\x00")


def test_vietnamese_receipt_goes_as_images_by_default() -> None:
    """By default Vietnamese text is sent as raster images (GS v 0), not as code-page bytes."""
    data = render_receipt(vietnamese_receipt(), PrinterProfile(paper_width_mm=58))
    assert data.count(b"\x1dv0") == 2  # the body and the footer
    assert b"Ph" not in data
    assert "Dế".encode() not in data
    header = data.index(b"\x1dv0")
    width_bytes = data[header + 4] | data[header + 5] << 8
    assert width_bytes * 8 == 384


def test_vietnamese_receipt_in_cp1258_selects_the_code_page() -> None:
    """With a CP1258 printer the text goes in text mode after ESC t 52."""
    data = render_receipt(vietnamese_receipt(), PrinterProfile(codepage="cp1258"))
    assert b"\x1bt\x34" in data
    assert encode_for_codepage("Dế Mèn phiêu lưu ký", "cp1258") in data
    assert b"\x1dv0" not in data


def test_logo_is_printed_and_a_missing_logo_is_skipped(tmp_path: Path) -> None:
    """A configured logo becomes a raster image; a logo file that is gone does not stop the receipt."""
    logo = tmp_path / "logo.png"
    Image.new("RGB", (800, 200), (0, 0, 0)).save(logo)
    with_logo = render_receipt(english_receipt(), PrinterProfile(logo=logo))
    assert b"\x1dv0" in with_logo
    without = render_receipt(english_receipt(), PrinterProfile(logo=tmp_path / "gone.png"))
    assert b"\x1dv0" not in without
    assert b"City Library" in without


@pytest.mark.parametrize(
    ("request_n", "value", "expected"),
    [
        (1, 0x12, {"online": True}),
        (1, 0x1A, {"online": False}),
        (2, 0x12, {"cover_open": False, "error": False}),
        (2, 0x16, {"cover_open": True, "error": False}),
        (2, 0x32, {"cover_open": False, "error": False, "paper": "out"}),
        (2, 0x52, {"cover_open": False, "error": True}),
        (4, 0x12, {"paper": "ok"}),
        (4, 0x1E, {"paper": "near_end"}),
        (4, 0x72, {"paper": "out"}),
    ],
)
def test_status_bytes(request_n: int, value: int, expected: dict[str, object]) -> None:
    """DLE EOT answers decode into the fields the ESC/POS reference gives them."""
    assert parse_status(request_n, value) == expected


@given(st.integers(0, 255), st.sampled_from([1, 2, 4]))
def test_any_status_byte_is_decoded_or_refused(value: int, request_n: int) -> None:
    """Every byte either decodes (fixed bits right) or raises StatusFormatError naming it."""
    if value & 0x93 == 0x12:
        assert isinstance(parse_status(request_n, value), dict)
    else:
        with pytest.raises(StatusFormatError, match=f"0x{value:02X}"):
            parse_status(request_n, value)


def test_status_problems_in_words() -> None:
    """The status says what keeps the printer from printing, paper first."""
    assert PrinterStatus(False, detail="refused").problem is PrinterProblemKind.OFFLINE
    out = PrinterStatus(True, True, online=False, cover_open=True, paper="out")
    assert out.problem is PrinterProblemKind.OUT_OF_PAPER
    assert out.describe() == "out of paper"
    assert (
        PrinterStatus(True, True, online=False, cover_open=True, paper="ok").describe()
        == "cover open"
    )
    assert (
        PrinterStatus(True, True, online=True, paper="near_end").describe() == "ready (paper low)"
    )
    assert PrinterStatus(True, False).problem is None
    assert "does not report" in PrinterStatus(True, False).describe()


@pytest.mark.parametrize(
    "url",
    [
        "lpt1",
        "tcp://",
        "tcp://host:port",
        "usb:04b8",
        "usb:zz:01",
        "usb:1:2?in_ep=x",
        "file:",
        "http://printer/",
    ],
)
def test_bad_printer_urls(url: str) -> None:
    """Malformed printer URLs are refused when the printer is created, naming the URL."""
    with pytest.raises(PrinterURLError, match=r"printer|port|USB|tcp|path"):
        open_printer(url)


def test_good_printer_urls_are_accepted() -> None:
    """Every documented URL form is accepted without opening anything."""
    for url in ("tcp://10.0.0.9:9100", "tcp://printer", "usb:04b8:0202", "usb:0416:5011?in_ep=0x81&out_ep=3", "file:/dev/usb/lp0",
                "serial:///dev/ttyUSB1?baud=19200&parity=N", "/dev/ttyUSB1", "socket://h:1"):  # fmt: skip
        assert open_printer(url).url == url


def test_importing_the_printer_driver_leaves_logging_alone() -> None:
    """python-escpos's import-time logging.basicConfig() is undone, so the app configures logging."""
    import subprocess
    import sys

    code = "import logging, hardware.printer; print(len(logging.getLogger().handlers))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "0"


def test_profile_checks_its_code_page() -> None:
    """An unknown encoding, or one without an ESC t number, is refused when the profile is made."""
    with pytest.raises(ValueError, match="not a known encoding"):
        PrinterProfile(codepage="tcvn-9")
    with pytest.raises(ValueError, match="codepage_number"):
        PrinterProfile(codepage="koi8_r")
    assert PrinterProfile(codepage="koi8_r", codepage_number=99).escpos_codepage_number() == 99
