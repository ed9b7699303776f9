"""``libedge kiosk run`` stops cleanly on SIGTERM (systemd's stop) and SIGINT (Ctrl-C).

The real command runs offscreen as a subprocess over the simulated pad reader and the
simulated barcode scanner (no agent runs: the kiosk shows itself offline). Once it has drawn
its attract screen it gets the signal; it must close the kiosk ("kiosk stopped", logged by
KioskRuntime.close after the devices, worker, journal and agent client are closed) and exit
with status 0.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators.reader import FeigSimulator, RFField
from simulators.scanner import SimulatedScanner
from tests.support.procs import read_until

ROOT = Path(__file__).resolve().parent.parent
READY_LINE = "kiosk-attract-vi.png"  # "Kiosk: screenshot saved to …/kiosk-attract-vi.png"
START_S = 60.0  # Kivy's cold start on a busy machine
STOP_S = 30.0


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Path]:
    """A configuration file naming a simulated pad and scanner, and no agent listening."""
    sim = FeigSimulator(RFField(), air_time=False)
    pad = sim.start_pty()
    try:
        with SimulatedScanner() as scanner, socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))  # a free port where no agent listens
            port = probe.getsockname()[1]
            config = tmp_path / "site.toml"
            config.write_text(
                f'[site]\nlibrary_id = "lib"\ndevice_id = "kiosk-1"\n'
                f'[devices]\nitem_reader = "{pad}"\nscanner = "{scanner.url}"\n'
                f'[agent]\ndatabase = "{tmp_path / "agent.sqlite"}"\napi_port = {port}\n',
                encoding="utf-8",
            )
            yield config
    finally:
        sim.stop()


def start_kiosk(config: Path, tmp_path: Path) -> subprocess.Popen[bytes]:
    """``libedge kiosk run`` offscreen, its console log on stderr."""
    env = dict(os.environ, SDL_VIDEODRIVER="offscreen", KIVY_NO_ARGS="1")
    env["KIVY_HOME"] = str(tmp_path / "kivy-home")
    env.pop("KIVY_NO_CONSOLELOG", None)  # the console log is what is checked
    env["PYTHONPATH"] = str(ROOT)
    command = [sys.executable, "-m", "edge_agent.cli", "kiosk", "run", "--config", str(config)]
    return subprocess.Popen(
        [*command, "--windowed", "--screenshots", str(tmp_path / "shots")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_the_kiosk_cleanly(site: Path, tmp_path: Path, signum: signal.Signals) -> None:
    """Once the attract screen is drawn, the signal closes the kiosk and the command returns 0."""
    proc = start_kiosk(site, tmp_path)
    try:
        ready, log = read_until(proc, READY_LINE, START_S)
        assert ready, f"the kiosk never drew its attract screen:\n{log[-4000:]}"
        proc.send_signal(signum)
        stopped, rest = read_until(proc, "kiosk stopped", STOP_S)
        status = proc.wait(timeout=STOP_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()
    assert stopped, f"no 'kiosk stopped' after {signum.name}:\n{rest[-4000:]}"
    assert f"{signum.name} received, stopping" in rest
    assert status == 0, rest[-4000:]
