"""``libedge kiosk run`` and signals: SIGTERM and SIGINT stop it, SIGHUP reloads its file.

The real command runs offscreen as a subprocess over the simulated pad reader and the
simulated barcode scanner (no agent runs: the kiosk shows itself offline). Once it has drawn
its attract screen it gets the signal. On a stop it must close the kiosk ("kiosk stopped",
logged by KioskRuntime.close after the devices, worker, journal and agent client are closed)
and exit with status 0. On SIGHUP it must close the kiosk the same way and come back, in the
same process, on the file as it is now; or, if the file cannot be used, say why and go on.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.cli import restart_argv
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


def wait_ready(proc: subprocess.Popen[bytes]) -> None:
    """Wait until the kiosk has drawn its attract screen."""
    ready, log = read_until(proc, READY_LINE, START_S)
    assert ready, f"the kiosk never drew its attract screen:\n{log[-4000:]}"


def stop(
    proc: subprocess.Popen[bytes], signum: signal.Signals = signal.SIGTERM
) -> tuple[bool, str, int]:
    """Send ``signum``; (whether "kiosk stopped" was logged, the log, the exit status)."""
    proc.send_signal(signum)
    stopped, rest = read_until(proc, "kiosk stopped", STOP_S)
    return stopped, rest, proc.wait(timeout=STOP_S)


def finish(proc: subprocess.Popen[bytes]) -> None:
    """Kill the kiosk if a failed test left it running, and close its stderr."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    assert proc.stderr is not None
    proc.stderr.close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_the_kiosk_cleanly(site: Path, tmp_path: Path, signum: signal.Signals) -> None:
    """Once the attract screen is drawn, the signal closes the kiosk and the command returns 0."""
    proc = start_kiosk(site, tmp_path)
    try:
        wait_ready(proc)
        stopped, rest, status = stop(proc, signum)
    finally:
        finish(proc)
    assert stopped, f"no 'kiosk stopped' after {signum.name}:\n{rest[-4000:]}"
    assert f"{signum.name} received, stopping" in rest
    assert status == 0, rest[-4000:]


def test_sighup_restarts_the_kiosk_on_the_changed_file(site: Path, tmp_path: Path) -> None:
    """The kiosk closes cleanly and comes back in the same process, in the new language."""
    proc = start_kiosk(site, tmp_path)
    try:
        wait_ready(proc)
        with site.open("a", encoding="utf-8") as file:
            file.write('[kiosk]\ndefault_language = "en"\n')
        proc.send_signal(signal.SIGHUP)
        back, log = read_until(proc, "kiosk-attract-en.png", START_S)
        assert back, f"no English attract screen after SIGHUP:\n{log[-4000:]}"
        assert proc.poll() is None  # the same process: it executed itself again
        # Checked, then closed as for a stop, then started again.
        order = [
            log.find("restarting the kiosk on the new configuration"),
            log.find("kiosk stopped"),
            log.find("kiosk-attract-en.png"),
        ]
        assert 0 <= order[0] < order[1] < order[2], log[-4000:]
        stopped, rest, status = stop(proc)
    finally:
        finish(proc)
    assert stopped, rest[-4000:]
    assert status == 0, rest[-4000:]


def test_sighup_with_a_broken_file_names_it_and_goes_on(site: Path, tmp_path: Path) -> None:
    """A file that cannot be loaded is named in the log; the kiosk keeps running."""
    proc = start_kiosk(site, tmp_path)
    try:
        wait_ready(proc)
        good = site.read_text(encoding="utf-8")
        site.write_text(good + "[kiosk]\ninactivity_timeout_s = 1\n", encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        refused, log = read_until(proc, "configuration reload refused", START_S)
        assert refused, f"no refusal logged:\n{log[-4000:]}"
        assert "inactivity_timeout_s" in log
        assert proc.poll() is None
        stopped, rest, status = stop(proc)
    finally:
        finish(proc)
    assert stopped, rest[-4000:]
    assert "restarting the kiosk" not in log + rest
    assert status == 0, rest[-4000:]


def test_the_restart_command_line_repeats_the_arguments(tmp_path: Path) -> None:
    """The kiosk starts again with its own interpreter, file, window and screenshot choice."""
    args = argparse.Namespace(
        config=Path("site.toml"), windowed=True, screenshots=Path("shots"), action="run"
    )
    argv = restart_argv(args)
    assert argv[:5] == [sys.executable, "-m", "edge_agent.cli", "kiosk", "run"]
    assert argv[5:] == [
        "--config",
        str(Path("site.toml").absolute()),
        "--windowed",
        "--screenshots",
        str(Path("shots").absolute()),
    ]
    bare = argparse.Namespace(config=tmp_path / "a.toml", windowed=False, screenshots=None)
    assert restart_argv(bare)[5:] == ["--config", str(tmp_path / "a.toml")]
