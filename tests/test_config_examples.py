"""The Raspberry Pi example configurations load, keep their secrets out, and pass the checks
``libedge kiosk run`` and ``libedge gate run`` make before they open any device.

The secrets come from the environment file the systemd units read
(``deploy/systemd/libedge.env``), exactly as on a device; any ``LIBEDGE_…`` variable of the
machine running the tests is removed first so that it cannot hide a missing key.
"""

from __future__ import annotations

import importlib.util
import os
import tomllib
from pathlib import Path
from typing import Any

import pytest

from edge_agent.cli import main as libedge_main
from edge_agent.client import AgentClient
from edge_agent.config import LibedgeSettings, load_config
from edge_agent.link.broker import BrokerAddress
from gate.agent import HttpAgent, open_agent
from gate.options import GateOptions
from hardware.nfc_card import NfcCardReader, open_card_reader
from hardware.outputs import OutputError, open_alarm
from hardware.people_counter import PeopleCounterError, open_people_counter
from hardware.ports import LineSettings, parse_line_settings
from hardware.printer import PrinterProfile, open_printer
from hardware.scanner import EvdevScanner, ScannerUnavailableError, open_scanner
from kiosk.config import KioskConfig

ROOT = Path(__file__).resolve().parent.parent
KIOSK = ROOT / "config" / "pi-kiosk.toml"
GATE = ROOT / "config" / "pi-gate.toml"
ENV_FILE = ROOT / "deploy" / "systemd" / "libedge.env"

#: Settings whose values are secrets: set through the environment, never in an example file.
SECRETS = {
    ("agent", "api_token"): "LIBEDGE_AGENT__API_TOKEN",
    ("agent", "broker", "password"): "LIBEDGE_AGENT__BROKER__PASSWORD",
    ("kiosk", "staff_pin"): "LIBEDGE_KIOSK__STAFF_PIN",
}


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a systemd EnvironmentFile of plain ``KEY=VALUE`` lines (comments skipped)."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path}:{number}: not KEY=VALUE: {raw!r}"
        assert key.isidentifier(), f"{path}:{number}: no spaces around '=': {raw!r}"
        values[key] = value
    return values


@pytest.fixture
def device_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment a libedge unit gets: only the variables of libedge.env."""
    for name in list(os.environ):
        if name.startswith("LIBEDGE_"):
            monkeypatch.delenv(name)
    values = read_env_file(ENV_FILE)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def _secret(settings: LibedgeSettings, path: tuple[str, ...]) -> str:
    value: Any = settings
    for part in path:
        value = getattr(value, part)
    return str(value.get_secret_value())


def test_env_file_sets_exactly_the_secrets() -> None:
    """libedge.env names every secret setting, and nothing else."""
    assert set(read_env_file(ENV_FILE)) == set(SECRETS.values())


@pytest.mark.parametrize("example", [KIOSK, GATE], ids=lambda p: p.stem)
def test_example_holds_no_secret_and_says_where_they_come_from(example: Path) -> None:
    """No secret is set in the file; its header names the variables that carry them."""
    data = tomllib.loads(example.read_text(encoding="utf-8"))
    for path, variable in SECRETS.items():
        table: Any = data
        for part in path[:-1]:
            table = table.get(part, {})
        assert path[-1] not in table, f"{example.name} sets the secret {'.'.join(path)}"
        if path[0] != "kiosk" or example == KIOSK:
            assert variable in example.read_text(encoding="utf-8"), f"{variable} not mentioned"


@pytest.mark.parametrize("example", [KIOSK, GATE], ids=lambda p: p.stem)
def test_example_loads_with_the_env_secrets(example: Path, device_env: dict[str, str]) -> None:
    """The real loader accepts the file; the secrets are the environment's, TLS is on."""
    settings = load_config(example)
    for path, variable in SECRETS.items():
        if path[-1] == "password":
            assert settings.agent.broker.password is not None
        assert _secret(settings, path) == device_env[variable]
    broker = settings.agent.broker
    assert BrokerAddress.parse(broker.url).tls, "the example's broker must be mqtts://"
    assert broker.ca_file is not None
    assert broker.ca_file.is_absolute()
    assert (broker.cert_file is None) == (broker.key_file is None)
    # Absolute paths: the services run with ProtectSystem=strict and a state directory.
    assert settings.agent.database.is_absolute()
    assert settings.agent.api_socket is not None
    assert settings.agent.api_socket.is_absolute()


@pytest.mark.parametrize("example", [KIOSK, GATE], ids=lambda p: p.stem)
def test_config_show_accepts_example(
    example: Path, device_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """``libedge config show`` prints the example with every secret masked."""
    assert libedge_main(["config", "show", "--config", str(example)]) == 0
    out = capsys.readouterr().out
    assert "**********" in out
    for value in device_env.values():
        assert value not in out


def test_kiosk_example_passes_the_kiosk_checks(device_env: dict[str, str]) -> None:
    """What ``libedge kiosk run`` checks before opening devices, and every device URL parses."""
    settings = load_config(KIOSK)
    assert settings.site.device_kind == "kiosk"
    devices = settings.devices
    # kiosk.cli.run refuses a configuration without a pad reader; open_kiosk then builds this.
    assert devices.item_reader is not None
    config = KioskConfig.from_settings(settings)
    assert config.staff_pin.get_secret_value() == device_env["LIBEDGE_KIOSK__STAFF_PIN"]
    port, line = parse_line_settings(devices.item_reader, LineSettings())
    assert port.startswith("/dev/serial/by-id/")
    assert (line.baudrate, line.parity) == (38400, "E")
    # The kiosk reaches its agent through [agent] (here the unix socket), with the token.
    client = AgentClient.from_settings(settings)
    try:
        assert client.url == f"unix:{settings.agent.api_socket}"
    finally:
        client.close()
    # Printer, card reader and scanner: created from their URLs, nothing opened or started.
    assert devices.printer is not None
    printer = open_printer(devices.printer, PrinterProfile(paper_width_mm=devices.printer_width_mm))
    assert printer.url == devices.printer
    assert devices.card_reader is not None
    assert isinstance(open_card_reader(devices.card_reader), NfcCardReader)
    assert devices.scanner is not None
    assert devices.scanner.startswith("evdev:/dev/input/")
    if importlib.util.find_spec("evdev") is None:
        # The URL passed its checks; only the optional package is missing on this machine.
        with pytest.raises(ScannerUnavailableError, match="'evdev'"):
            open_scanner(devices.scanner)
    else:
        assert isinstance(open_scanner(devices.scanner), EvdevScanner)


def test_gate_example_passes_the_gate_checks(
    device_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``libedge gate run`` checks before opening devices, and every device URL parses."""
    settings = load_config(GATE)
    assert settings.site.device_kind == "gate"
    options = GateOptions.from_settings(settings)
    assert [r.name for r in options.readers] == ["left", "right"]
    assert options.groups == ((0, 1),)
    assert options.agent_token == device_env["LIBEDGE_AGENT__API_TOKEN"]
    for reader in options.readers:
        port, line = parse_line_settings(reader.url, LineSettings())
        assert port.startswith("/dev/serial/by-id/")
        assert (line.baudrate, line.parity) == (38400, "E")
    # The gate hands its events to the agent of the same file, through its socket.
    assert options.agent_url == f"unix:{settings.agent.api_socket}"
    agent = open_agent(options.agent_url, device_id=options.device_id, token=options.agent_token)
    try:
        assert isinstance(agent, HttpAgent)
    finally:
        agent.close()
    assert options.data_dir.is_absolute()
    assert options.alarm_output == "gpio:17,27"
    assert options.people_counter == "gpio:5,6"
    if importlib.util.find_spec("gpiozero") is None:
        # The pin lists were parsed (a malformed one fails before this point); only the
        # optional gpiozero package is missing on this machine.
        with pytest.raises(OutputError, match="gpiozero"):
            open_alarm(options.alarm_output)
        with pytest.raises(PeopleCounterError, match="gpiozero"):
            open_people_counter(options.people_counter, print, print)
        return
    # With gpiozero installed, its mock pins stand in for the Pi's: nothing real is switched.
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    monkeypatch.setattr(Device, "pin_factory", MockFactory())
    open_alarm(options.alarm_output).close()
    open_people_counter(options.people_counter, print, print).close()


def test_gate_examples_shared_bus_lines_pass_the_gate_checks(
    device_env: dict[str, str], tmp_path: Path
) -> None:
    """The commented 'both readers on one RS-485 bus' lines of pi-gate.toml work as written."""
    text = GATE.read_text(encoding="utf-8")
    lines = text.splitlines()
    start = lines.index(
        "# Or both readers on one RS-485 bus (one adapter), each set to a bus address of its own; the"
    )
    snippet = [
        line.removeprefix("#   ").removeprefix("# ") for line in lines[start + 2 : start + 5]
    ]
    begin = text.index("gate_readers = [\n")  # the active one-port-each list
    active = text[begin : text.index("]\n", begin) + 2]
    variant = tmp_path / "pi-gate-bus.toml"
    variant.write_text(text.replace(active, "\n".join(snippet) + "\n"), encoding="utf-8")
    options = GateOptions.from_settings(load_config(variant))
    assert len({r.url for r in options.readers}) == 1
    assert [r.address for r in options.readers] == [1, 2]
    assert options.groups == ((0, 1),)
