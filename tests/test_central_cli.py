"""``libedge sim central``: as a real process that stops cleanly on SIGTERM, and its command mode."""

from __future__ import annotations

import json
import logging
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from pydantic import SecretStr

from edge_agent.cli import load_command, main
from edge_agent.contract import Command, PatronLookup, RefusalReason, ReloadConfig, decode
from edge_agent.contract.topics import command_topic
from simulators.cli import SIMULATORS
from tests.support.broker import MosquittoBroker, free_port
from tests.test_central_common import (
    SECRET_PIN,
    WRONG_PIN,
    FakeDevice,
    envelope,
    unique_library,
    write_seed,
)


@pytest.fixture(scope="module")
def broker(module_broker: MosquittoBroker) -> MosquittoBroker:
    """This module's own broker: other modules' retained messages cannot reach central here."""
    return module_broker


LIBEDGE = Path(sys.executable).with_name("libedge")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The command installs its log handler on the root logger, as a process should; undo it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def lines_of(stream: IO[str]) -> queue.Queue[str]:
    """A queue fed with the stream's lines by a reader thread (so reads can time out)."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


@pytest.mark.broker
def test_cli_serves_as_a_process_and_stops_cleanly_on_sigterm(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    """The process says ready, stores an event, answers, and exits 0 on SIGTERM without a PIN leak."""
    lib = unique_library()
    db = tmp_path / "var" / "central.sqlite"
    stderr_path = tmp_path / "stderr.log"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [
                str(LIBEDGE),
                "sim",
                "central",
                "--broker",
                broker.url,
                "--db",
                str(db),
                "--seed",
                str(write_seed(tmp_path, lib)),
                "--instance",
                "cli-test",
                "--log-level",
                "debug",
            ],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            assert process.stdout is not None
            stdout = lines_of(process.stdout)
            ready = stdout.get(timeout=30)
            assert ready.startswith("ready: central cli-test serving library " + lib), ready
            device = FakeDevice(broker.url, lib)
            try:
                device.send(envelope(1, library_id=lib))
                assert device.receipts_until({1})[0].confirmed == [1]
                wrong, _ = device.request(PatronLookup(patron_id="P-PIN", pin=SecretStr(WRONG_PIN)))
                right, _ = device.request(
                    PatronLookup(patron_id="P-PIN", pin=SecretStr(SECRET_PIN))
                )
            finally:
                device.close()
            assert wrong.reason is RefusalReason.WRONG_PIN
            assert right.outcome == "ok"
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
            assert stdout.get(timeout=10).startswith("stopped: central cli-test")
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)
            if process.stdout is not None:
                process.stdout.close()
    log = stderr_path.read_text()
    assert "request patron_lookup" in log
    assert "Traceback" not in log
    assert SECRET_PIN not in log
    assert WRONG_PIN not in log
    assert db.exists()


@pytest.mark.broker
def test_cli_sends_one_command_and_exits(
    broker: MosquittoBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    """--command publishes a validated Command to the device's command topic and exits 0."""
    lib = unique_library()
    device = FakeDevice(broker.url, lib, device_id="kiosk-7")
    try:
        status = main(
            [
                "sim",
                "central",
                "--broker",
                broker.url,
                "--library",
                lib,
                "--command",
                "kiosk-7",
                json.dumps({"command": "reload_config"}),
            ]
        )
        assert status == 0
        received = decode(Command, device.next_on(command_topic(lib, "kiosk-7")).payload)
    finally:
        device.close()
    assert isinstance(received.body, ReloadConfig)
    printed = decode(Command, capsys.readouterr().out.strip())
    assert printed == received


def test_cli_refuses_a_bad_command_body(capsys: pytest.CaptureFixture[str]) -> None:
    """A command body outside the contract is refused before anything is sent."""
    status = main(
        [
            "sim",
            "central",
            "--broker",
            f"mqtt://127.0.0.1:{free_port()}",
            "--command",
            "kiosk-1",
            '{"command": "self_destruct"}',
        ]
    )
    assert status == 2
    assert "bad command" in capsys.readouterr().err


def test_cli_reports_an_unreachable_broker(capsys: pytest.CaptureFixture[str]) -> None:
    """With nothing listening, the command mode fails with a message naming the broker."""
    url = f"mqtt://127.0.0.1:{free_port()}"
    status = main(
        ["sim", "central", "--broker", url, "--command", "kiosk-1", '{"command": "in_service"}']
    )
    assert status == 1
    assert url in capsys.readouterr().err


def test_cli_reports_a_bad_seed_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A broken seed file stops the serving mode with one line naming the file."""
    seed = tmp_path / "broken.json"
    seed.write_text("{")
    status = main(["sim", "central", "--seed", str(seed), "--db", str(tmp_path / "c.sqlite")])
    assert status == 1
    err = capsys.readouterr().err
    assert "broken.json" in err
    assert "Traceback" not in err


def test_cli_is_registered_as_a_simulator() -> None:
    """``libedge sim central`` resolves to this package's command module."""
    command = load_command(SIMULATORS["central"])
    assert "central library system" in command.HELP
