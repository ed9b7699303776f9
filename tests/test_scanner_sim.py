"""``libedge sim scanner`` as a real process: stdin lines and script lines become scans on a pty."""

from __future__ import annotations

import os
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.cli import load_command
from hardware.scanner import Scan, ScannerProblem, ScanProblemKind, open_scanner
from simulators.cli import SIMULATORS
from simulators.scanner import decode_escapes

ROOT = Path(__file__).resolve().parent.parent
WAIT = 10.0


@pytest.fixture
def sim_process(request: pytest.FixtureRequest) -> Iterator[subprocess.Popen[str]]:
    args: list[str] = getattr(request, "param", [])
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulators.scanner", *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    yield proc
    if proc.poll() is None:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=WAIT)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def first_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], WAIT)
    assert ready, "the simulator printed nothing"
    return proc.stdout.readline().strip()


def test_typed_lines_become_scans(sim_process: subprocess.Popen[str]) -> None:
    """Each line typed on stdin reaches the real driver as a scan; escapes make raw bytes."""
    path = first_line(sim_process)
    assert path.startswith("/dev/pts/")
    scanner = open_scanner(path)
    scanner.start()
    try:
        assert scanner.wait_ready(WAIT)
        assert sim_process.stdin is not None
        sim_process.stdin.write("21234000123455\n12\\x0734\n# a comment\nEND\n")
        sim_process.stdin.flush()
        events = [scanner.get_event(timeout=WAIT) for _ in range(3)]
    finally:
        scanner.stop()
    assert isinstance(events[0], Scan)
    assert events[0].text == "21234000123455"
    assert isinstance(events[1], ScannerProblem)
    assert events[1].kind is ScanProblemKind.GARBLED
    assert isinstance(events[2], Scan)
    assert events[2].text == "END"
    sim_process.stdin.close()
    assert sim_process.wait(timeout=WAIT) == 0


def test_script_lines_are_written_with_the_chosen_line_end(tmp_path: Path) -> None:
    """A script's lines (comments skipped, escapes decoded) are written to the pty with CR."""
    script = tmp_path / "scans.txt"
    script.write_text("# morning\nA1\nB\\x002\n", encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulators.scanner", "--script", str(script), "--delay", "0",
         "--interval", "0", "--terminator", "cr"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        path = first_line(proc)
        # Read the pty directly (no driver, no input flush): what the script wrote is queued.
        fd = os.open(path, os.O_RDONLY | os.O_NOCTTY)
        try:
            received = b""
            while received.count(b"\r") < 2:
                ready, _, _ = select.select([fd], [], [], WAIT)
                assert ready, f"only {received!r} arrived"
                received += os.read(fd, 100)
        finally:
            os.close(fd)
        assert received == b"A1\rB\x002\r"
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        assert proc.wait(timeout=WAIT) == 0
        for stream in (proc.stdout, proc.stderr):
            assert stream is not None
            stream.close()


def test_escape_decoding() -> None:
    """Typed escapes become the bytes they name; plain text stays as it is."""
    assert decode_escapes(r"12\x0734") == b"12\x0734"
    assert decode_escapes(r"a\rb") == b"a\rb"
    assert decode_escapes("plain") == b"plain"


def test_simulators_are_registered() -> None:
    """``libedge sim`` knows card, scanner and printer, and each module has the command contract."""
    for name in ("card", "scanner", "printer"):
        command = load_command(SIMULATORS[name])
        assert command.HELP
