"""``libedge sim reader``: the command started as a real process, and its dispatch in-process."""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import simulators.cli
from tests.test_sim_reader_wire import (
    INVENTORY_REQUEST,
    NO_TAG_REPLY,
    ONE_TAG_REPLY,
    Wire,
    reply,
    request,
)

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = """
tags:
  captured: {uid: "E0 16 80 FF 08 00 50 24", dsfid: 0}
field: [captured]
"""


class SimulatorProcess:
    """``python -m simulators.reader ARGS`` with its output lines collected by a thread."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "simulators.reader", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def read_line(self, timeout: float = 15.0) -> str:
        """The next line the process printed, or fail after ``timeout`` seconds."""
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"the simulator printed nothing; exit status {self.proc.poll()}")

    def finish(self, timeout: float = 15.0) -> int:
        """Wait for the process to end; return its exit status (stderr kept in ``stderr``)."""
        self.proc.wait(timeout=timeout)
        self._reader.join(timeout=timeout)
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read()
        return self.proc.returncode

    def close(self) -> None:
        """Kill the process if it still runs and close its pipes."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self._reader.join(timeout=10)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


@contextmanager
def simulator_process(*args: str) -> Iterator[SimulatorProcess]:
    """Start the simulator command; make sure it is gone afterwards."""
    sim = SimulatorProcess(*args)
    try:
        yield sim
    finally:
        sim.close()


def control(port: int, **message: object) -> dict[str, object]:
    """Send one control message and return the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(json.dumps(message).encode() + b"\n")
        answer: dict[str, object] = json.loads(sock.makefile("rb").readline())
        return answer


def test_pty_control_and_scenario_then_sigterm(tmp_path: Path) -> None:
    """The process prints its pty and control port, serves both, and exits 0 on SIGTERM."""
    scenario = tmp_path / "one.yaml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    with simulator_process("--pty", "--control", "0", "--scenario", str(scenario)) as proc:
        pty_line, control_line = proc.read_line(), proc.read_line()
        assert pty_line.startswith("pty: /dev/")
        assert control_line.startswith("control: ")
        path, port = pty_line.split(": ", 1)[1], int(control_line.split(": ", 1)[1])
        wire = Wire.pty(path)
        try:
            assert wire.exchange(INVENTORY_REQUEST) == ONE_TAG_REPLY
            assert control(port, op="clear") == {"ok": True}
            assert wire.exchange(INVENTORY_REQUEST) == NO_TAG_REPLY
            assert control(port, op="unplug") == {"ok": True}
            answer = control(port, op="replug")
            assert proc.read_line() == f"pty: {answer['endpoint']}"
        finally:
            wire.close()
        proc.proc.send_signal(signal.SIGTERM)
        assert proc.finish() == 0
        assert not os.path.exists(str(answer["endpoint"]))


def test_tcp_with_address_then_sigint() -> None:
    """--tcp 0 --address 3 prints the port, answers from address 3 and exits 0 on SIGINT."""
    with simulator_process("--tcp", "0", "--address", "3") as proc:
        line = proc.read_line()
        assert line.startswith("tcp: ")
        wire = Wire.tcp(int(line.split(": ", 1)[1]))
        try:
            assert wire.exchange(request(0x52, b"\x00")) == reply(0x52, 0x00, address=3)
        finally:
            wire.close()
        proc.proc.send_signal(signal.SIGINT)
        assert proc.finish() == 0


def test_bad_scenario_exits_2_naming_the_file(tmp_path: Path) -> None:
    """A malformed scenario stops the command at once with exit status 2 and a clear message."""
    scenario = tmp_path / "broken.yaml"
    scenario.write_text("field: [nobody]\n", encoding="utf-8")
    with simulator_process("--scenario", str(scenario)) as proc:
        assert proc.finish() == 2
        assert "broken.yaml" in proc.stderr
        assert "unknown tag 'nobody'" in proc.stderr


def test_sim_dispatch_knows_the_reader(capsys: pytest.CaptureFixture[str]) -> None:
    """``libedge sim reader --help`` is dispatched through the SIMULATORS table."""
    assert simulators.cli.SIMULATORS["reader"] == "simulators.reader.cli"
    with pytest.raises(SystemExit) as exited:
        simulators.cli.run(argparse.Namespace(argv=["reader", "--help"]))
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "libedge sim reader" in out
    assert "--scenario" in out
    assert "--air-time" in out
