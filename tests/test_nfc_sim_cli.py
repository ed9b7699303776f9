"""``libedge sim card`` as a real process, read by the real nfcpy reader."""

from __future__ import annotations

import select
import subprocess
import sys
from pathlib import Path

from hardware.nfc_card import CardReaderSettings, CardTap, open_card_reader

ROOT = Path(__file__).resolve().parent.parent
WAIT = 10.0


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "simulators.card", *args],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    assert proc.stdin is not None
    if not proc.stdin.closed:
        proc.stdin.close()
    code = proc.wait(timeout=WAIT)
    assert proc.stdout is not None
    assert proc.stderr is not None
    err = proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    return code, err


def test_card_process_is_read_and_quits_on_command() -> None:
    """The printed URL reaches the card; its number is read; 'quit' ends the process cleanly."""
    proc = start("--uid", "04C0FFEE123456", "--card-number", "21234000123455", "--ndef", "uri")
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], WAIT)
        assert ready, "the simulator printed no URL"
        url = proc.stdout.readline().strip()
        assert url.startswith("nfc:udp:127.0.0.1:")
        reader = open_card_reader(url, CardReaderSettings(targets=("106A",), poll_iterations=1))
        reader.start()
        try:
            event = reader.get_event(timeout=WAIT)
        finally:
            reader.stop()
        assert isinstance(event, CardTap)
        assert (event.uid, event.card_number) == ("04C0FFEE123456", "21234000123455")
        assert proc.stdin is not None
        proc.stdin.write("quit\n")
        proc.stdin.flush()
    finally:
        code, err = finish(proc)
    assert code == 0, err


def test_bad_uid_is_refused() -> None:
    """A UID of the wrong length for the card kind is an error that says what is expected."""
    code, err = finish(start("--uid", "0102", "--kind", "type2"))
    assert code == 2
    assert "7-byte UID" in err
