"""``libedge hw diagnose``: every configured device checked against the simulators."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge_agent.cli import main
from simulators.card import SimulatedCard
from simulators.printer import PrinterSimulator
from simulators.reader import FeigSimulator, RFField
from simulators.reader.model import ReaderModel
from simulators.scanner import SimulatedScanner
from tests.support.broker import free_port

ROOT = Path(__file__).resolve().parent.parent
LIBEDGE = ROOT / ".venv" / "bin" / "libedge"


@dataclass
class Rig:
    """One simulator of each device the diagnosis can ask."""

    reader: str
    card: SimulatedCard
    scanner: SimulatedScanner
    printer: PrinterSimulator


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    with (
        FeigSimulator(RFField([]), air_time=False) as reader,
        SimulatedCard(bytes.fromhex("04A1B2C3D4E5F6"), card_number="1") as card,
        SimulatedScanner() as scanner,
        PrinterSimulator(tmp_path / "receipts") as printer,
    ):
        reader_port = reader.start_tcp(port=0)
        printer.start_tcp()
        yield Rig(f"socket://127.0.0.1:{reader_port}", card, scanner, printer)


def write_config(path: Path, devices: dict[str, object]) -> Path:
    lines = ["[devices]"]
    for key, value in devices.items():
        lines.append(f"{key} = {json.dumps(value)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def diagnose_json(
    capsys: pytest.CaptureFixture[str], config: Path
) -> tuple[int, dict[str, dict[str, object]]]:
    code = main(["hw", "diagnose", "--config", str(config), "--json"])
    out = capsys.readouterr().out
    return code, {entry["role"]: entry for entry in json.loads(out)}


def test_all_devices_answer(rig: Rig, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With every simulator running, each device is OK with what it said about itself."""
    config = write_config(
        tmp_path / "site.toml",
        {
            "item_reader": rig.reader,
            "card_reader": rig.card.url,
            "scanner": rig.scanner.url,
            "printer": rig.printer.url,
            "alarm_output": "sim:",
        },
    )
    code, results = diagnose_json(capsys, config)
    assert code == 0, results
    assert results["item_reader"]["ok"] is True
    assert "firmware" in str(results["item_reader"]["summary"])
    assert results["card_reader"]["ok"] is True
    assert "udp" in str(results["card_reader"]["summary"]).lower()
    assert results["scanner"]["ok"] is True
    assert results["printer"] == {
        "role": "printer",
        "url": rig.printer.url,
        "ok": True,
        "summary": "receipt printer ready",
    }
    assert results["alarm_output"]["ok"] is True
    assert results["people_counter"] == {
        "role": "people_counter",
        "url": None,
        "ok": None,
        "summary": "not configured",
    }
    assert rig.printer.status_requests >= 3  # the printer really was asked


def test_problems_are_named(rig: Rig, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Out of paper, a missing scanner, a silent reader and a dead counter are each named."""
    rig.printer.paper_out = True
    config = write_config(
        tmp_path / "site.toml",
        {
            "item_reader": f"socket://127.0.0.1:{free_port()}",
            "card_reader": "nfc:tty:LIBEDGE_NONE0:pn532",
            "scanner": "/dev/libedge-no-such-scanner",
            "printer": rig.printer.url,
            "gate_readers": [rig.reader],
            "people_counter": f"tcp://127.0.0.1:{free_port()}",
        },
    )
    code, results = diagnose_json(capsys, config)
    assert code == 1
    assert results["printer"]["ok"] is False
    assert results["printer"]["summary"] == "receipt printer out of paper"
    assert results["scanner"]["ok"] is False
    assert "/dev/libedge-no-such-scanner" in str(results["scanner"]["summary"])
    assert results["item_reader"]["ok"] is False
    assert results["card_reader"]["ok"] is False
    assert "LIBEDGE_NONE0" in str(results["card_reader"]["summary"])
    assert results["gate_reader[0]"]["ok"] is True
    assert results["people_counter"]["ok"] is False
    assert "nothing answers" in str(results["people_counter"]["summary"])


def test_table_output_and_exit_status(rig: Rig, tmp_path: Path) -> None:
    """The installed command prints one line per device with OK, PROBLEM or '-'."""
    rig.printer.cover_open = True
    config = write_config(
        tmp_path / "site.toml", {"printer": rig.printer.url, "scanner": rig.scanner.url}
    )
    done = subprocess.run(
        [str(LIBEDGE), "hw", "diagnose", "--config", str(config)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines()}
    assert "PROBLEM" in lines["printer"]
    assert "cover open" in lines["printer"]
    assert " OK " in lines["scanner"]
    assert lines["card_reader"].split()[1] == "-"


def test_bad_configuration_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A configuration with an unknown key is refused with the key named, exit status 2."""
    config = tmp_path / "site.toml"
    config.write_text('[devices]\nprinterr = "tcp://x:9100"\n', encoding="utf-8")
    assert main(["hw", "diagnose", "--config", str(config)]) == 2
    assert "printerr" in capsys.readouterr().err


def test_bad_device_urls_are_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Malformed device URLs are reported per device, not as a crash."""
    config = write_config(
        tmp_path / "site.toml",
        {
            "card_reader": "usb",
            "printer": "lpt1",
            "scanner": "evdev:event3",
            "alarm_output": "xyz:1",
        },
    )
    code, results = diagnose_json(capsys, config)
    assert code == 1
    for role in ("card_reader", "printer", "scanner", "alarm_output"):
        assert results[role]["ok"] is False, role
    assert "nfc:" in str(results["card_reader"]["summary"])


def test_gate_readers_on_one_bus_are_each_asked_at_their_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two readers sharing one port answer at their own addresses; a third address does not."""
    with FeigSimulator(RFField([]), address=1, air_time=False) as bus:
        bus.add_reader(ReaderModel(RFField([]), address=2))
        url = f"socket://127.0.0.1:{bus.start_tcp(port=0)}"
        config = write_config(
            tmp_path / "site.toml",
            {"gate_readers": [url, url, url], "gate_reader_addresses": [1, 2, 9]},
        )
        code, results = diagnose_json(capsys, config)
    assert code == 1
    assert results["gate_reader[0]"]["ok"] is True
    assert "at bus address 1" in str(results["gate_reader[0]"]["summary"])
    assert results["gate_reader[1]"]["ok"] is True
    assert "at bus address 2" in str(results["gate_reader[1]"]["summary"])
    assert results["gate_reader[2]"]["ok"] is False
    assert "no answer" in str(results["gate_reader[2]"]["summary"])
    assert bus.counters()["collisions"] == 0
