"""The printer simulator on its own: ESC/POS bytes built here by hand, interpreted and rendered."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.printer import EscPosInterpreter, PrintedPage, PrinterSimulator, PrinterState

ROOT = Path(__file__).resolve().parent.parent
ESC, GS, DLE = b"\x1b", b"\x1d", b"\x10"
CUT = GS + b"V\x00"
WAIT = 10.0


def interpret(
    data: bytes, *, width: int = 384, state: PrinterState | None = None
) -> tuple[list[PrintedPage], bytes]:
    pages: list[PrintedPage] = []
    answers = bytearray()
    interpreter = EscPosInterpreter(
        width, on_page=pages.append, respond=answers.extend, state=lambda: state or PrinterState()
    )
    interpreter.feed(data)
    interpreter.finish()
    return pages, bytes(answers)


def dark_rows(page: PrintedPage) -> list[int]:
    gray = page.image.convert("L")
    return [
        y for y in range(gray.height) if gray.crop((0, y, gray.width, y + 1)).getextrema()[0] < 128
    ]


def test_text_lines_and_cut() -> None:
    """Text lines end up in the transcript in order, and a cut finishes the page."""
    pages, _ = interpret(ESC + b"@Hello\nWorld\n" + CUT + b"Next\n")
    assert [p.cut for p in pages] == [True, False]
    assert pages[0].transcript == ["Hello", "World", "[cut]"]
    assert pages[1].transcript == ["Next"]
    assert dark_rows(pages[0]), "nothing was drawn"


def test_code_page_cp1258_with_combining_marks() -> None:
    """ESC t 52 selects CP1258; a base letter plus combining tone mark reads as one letter."""
    text = "D\xea\xec M\xe8n".encode("latin-1")  # D ê ◌́ M è n in CP1258 byte values
    pages, _ = interpret(ESC + b"t\x34" + text + b"\n")
    assert pages[0].transcript == ["Dế Mèn"]


def test_unknown_code_page_is_noted_not_fatal() -> None:
    """A code page the simulator does not know prints '?' and says so in the transcript."""
    pages, _ = interpret(ESC + b"t\x1e" + b"\xe0\n")
    assert "code page 30 unknown" in pages[0].text
    assert pages[0].transcript[-1] == "?"


def test_raster_image_is_drawn_where_its_bits_are() -> None:
    """A GS v 0 image of one black 8-dot row band appears as dark rows of that height."""
    width_bytes, height = 2, 10
    bitmap = b"\xff\x00" * height  # left 8 dots black, right 8 white
    pages, _ = interpret(GS + b"v0\x00" + bytes([width_bytes, 0, height, 0]) + bitmap)
    page = pages[0]
    assert page.transcript == ["[image 16x10]"]
    rows = dark_rows(page)
    assert len(rows) == height
    gray = page.image.convert("L")
    assert gray.getpixel((3, rows[0])) == 0
    assert gray.getpixel((12, rows[0])) == 255


def test_column_image_and_graphics_commands() -> None:
    """ESC * (24-dot columns) and GS ( L store-and-print both put dots on paper."""
    columns = 4
    column_data = b"\xff\x00\x00" * columns  # top 8 of 24 dots black
    pages, _ = interpret(ESC + b"*\x21" + bytes([columns, 0]) + column_data + b"\n")
    assert len(dark_rows(pages[0])) == 8
    width, height = 8, 3
    body = b"0p0\x01\x011" + bytes([width, 0, height, 0]) + b"\xff" * height
    store = GS + b"(L" + len(body).to_bytes(2, "little") + body
    show = GS + b"(L\x02\x0002"
    pages, _ = interpret(store + show)
    assert pages[0].transcript == ["[image 8x3]"]
    assert len(dark_rows(pages[0])) == 3


def test_qr_code_is_rendered_with_its_payload() -> None:
    """GS ( k model/size/level/store/print renders a QR symbol and records its payload."""
    payload = b"https://lib.example/r/9"

    def fn(code: int, data: bytes) -> bytes:
        body = b"1" + bytes([code]) + data
        return GS + b"(k" + len(body).to_bytes(2, "little") + body

    data = fn(65, b"2\x00") + fn(67, b"\x04") + fn(69, b"1") + fn(80, b"0" + payload) + fn(81, b"0")
    pages, _ = interpret(ESC + b"a\x01" + data)
    assert pages[0].qr_payloads == [payload.decode()]
    assert dark_rows(pages[0])


@pytest.mark.parametrize(
    ("state", "n", "answer"),
    [
        (PrinterState(), 1, 0x12),
        (PrinterState(paper_out=True), 1, 0x1A),
        (PrinterState(cover_open=True), 2, 0x16),
        (PrinterState(paper_out=True), 2, 0x32),
        (PrinterState(error=True), 2, 0x52),
        (PrinterState(paper_near_end=True), 4, 0x1E),
        (PrinterState(paper_out=True), 4, 0x72),
        (PrinterState(), 4, 0x12),
    ],
)
def test_dle_eot_answers(state: PrinterState, n: int, answer: int) -> None:
    """Real-time status requests are answered from the printer's switches, bit by bit."""
    _, answers = interpret(DLE + b"\x04" + bytes([n]), state=state)
    assert answers == bytes([answer])


def test_nothing_printed_without_paper() -> None:
    """With the paper out, text is not printed and the transcript says why."""
    pages, _ = interpret(b"Hello\n" + CUT, state=PrinterState(paper_out=True))
    assert pages[0].transcript == ["[not printed: out of paper]"]


def test_unknown_commands_are_skipped_and_noted() -> None:
    """An unknown ESC command is noted and the text after it still prints."""
    pages, _ = interpret(ESC + b"\x01" + b"after\n")
    assert pages[0].transcript == ["[unknown command ESC 0x01]", "after"]


def test_commands_split_across_feeds_wait_for_their_bytes() -> None:
    """A raster image arriving in pieces is drawn once, when all its bytes are there."""
    pages: list[PrintedPage] = []
    interpreter = EscPosInterpreter(384, on_page=pages.append)
    command = GS + b"v0\x00" + bytes([1, 0, 4, 0]) + b"\xff" * 4
    for byte in command:
        interpreter.feed(bytes([byte]))
    interpreter.feed(CUT)
    assert pages[0].transcript == ["[image 8x4]", "[cut]"]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_any_byte_stream_is_survived(data: bytes) -> None:
    """Any bytes at all are interpreted without an exception (a printer never crashes)."""
    pages, _ = interpret(data)
    for page in pages:
        assert page.image.width == 384


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.sampled_from([ESC, GS, DLE, b"\x1c", b"(", b"k", b"v0", b"\x00", b"\xff", b"A\n"]),
        max_size=60,
    )
)
def test_command_shaped_garbage_is_survived(parts: list[bytes]) -> None:
    """Streams of command prefixes and odd lengths never raise either."""
    interpret(b"".join(parts))


def test_tcp_printer_answers_status_and_saves_receipts(tmp_path: Path) -> None:
    """Over TCP the simulator answers DLE EOT at once and writes receipt PNG and text files."""
    with PrinterSimulator(tmp_path, width=384, paper_near_end=True) as sim:
        port = sim.start_tcp()
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as conn:
            conn.sendall(DLE + b"\x04\x04")
            assert conn.recv(1) == b"\x1e"
            conn.sendall(b"Receipt one\n" + CUT)
            pages = sim.wait_for_pages(1, WAIT)
        assert pages[0].png == tmp_path / "receipt-0001.png"
        assert pages[0].png.exists()
        assert (tmp_path / "receipt-0001.txt").read_text(encoding="utf-8") == "Receipt one\n[cut]\n"


def test_cli_renders_a_file(tmp_path: Path) -> None:
    """``python -m simulators.printer --file`` renders a byte file and prints the PNG paths."""
    job = tmp_path / "job.bin"
    job.write_bytes(b"one\n" + CUT + b"two\n" + CUT)
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "simulators.printer", "--file", str(job), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(out / "receipt-0001.png"), str(out / "receipt-0002.png")]
    assert (out / "receipt-0002.txt").read_text(encoding="utf-8") == "two\n[cut]\n"


def test_cli_reports_a_missing_file(tmp_path: Path) -> None:
    """A job file that does not exist is a clear error, exit status 2."""
    done = subprocess.run(
        [sys.executable, "-m", "simulators.printer", "--file", str(tmp_path / "none.bin"), "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "none.bin" in done.stderr


def test_cli_serves_tcp_until_its_input_ends(tmp_path: Path) -> None:
    """``--tcp 0`` prints the URL, renders what arrives, and exits 0 when stdin closes."""
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulators.printer", "--tcp", "0", "--out", str(out), "--width", "384"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdin is not None
    url = proc.stdout.readline().strip()
    assert url.startswith("tcp://127.0.0.1:")
    host, port = url.removeprefix("tcp://").split(":")
    with socket.create_connection((host, int(port)), timeout=WAIT) as conn:
        conn.sendall(DLE + b"\x04\x01")
        assert conn.recv(1) == b"\x12"
        conn.sendall(b"via the command line\n" + CUT)
    proc.stdin.close()
    assert proc.wait(timeout=WAIT) == 0
    proc.stdout.close()
    assert proc.stderr is not None
    proc.stderr.close()
    assert (out / "receipt-0001.txt").read_text(encoding="utf-8") == "via the command line\n[cut]\n"
