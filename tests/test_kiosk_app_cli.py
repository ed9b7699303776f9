"""``libedge kiosk``: the command is registered, and bad configurations stop it with a clear error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.cli import COMMANDS, load_command, main
from simulators.reader import FeigSimulator, RFField
from tests.support.broker import free_port
from tests.support.procs import read_until

ROOT = Path(__file__).resolve().parent.parent


def test_kiosk_command_is_registered() -> None:
    """The dispatcher table names kiosk.cli, and it has HELP, configure and run."""
    assert COMMANDS["kiosk"] == "kiosk.cli"
    command = load_command(COMMANDS["kiosk"])
    assert "kiosk" in command.HELP


def test_missing_config_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A configuration file that does not exist ends the command with status 2 and its path."""
    missing = tmp_path / "nope.toml"
    assert main(["kiosk", "run", "--config", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err


def test_config_without_pad_reader_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A configuration without devices.item_reader is refused before any window opens."""
    config = tmp_path / "site.toml"
    config.write_text('[site]\nlibrary_id = "lib"\ndevice_id = "kiosk-1"\n', encoding="utf-8")
    assert main(["kiosk", "run", "--config", str(config)]) == 2
    assert "devices.item_reader" in capsys.readouterr().err


def test_garbled_config_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Files that are not TOML, or not even text, end the command with status 2 and say so."""
    config = tmp_path / "site.toml"
    config.write_bytes(b"[[[ not toml")
    assert main(["kiosk", "run", "--config", str(config)]) == 2
    assert "TOML" in capsys.readouterr().err
    config.write_bytes(b"\xff\xfe garbage")
    assert main(["kiosk", "run", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert str(config) in err
    assert "UTF-8" in err


def test_run_needs_an_action(capsys: pytest.CaptureFixture[str]) -> None:
    """``libedge kiosk`` without ``run`` is a usage error."""
    with pytest.raises(SystemExit) as exit_info:
        main(["kiosk"])
    assert exit_info.value.code == 2
    assert "ACTION" in capsys.readouterr().err


def test_kiosk_run_opens_the_devices_and_shows_the_attract_screen(tmp_path: Path) -> None:
    """``libedge kiosk run`` over a simulated pad (no agent running) draws the attract screen."""
    field = RFField()
    sim = FeigSimulator(field, air_time=False)
    pad = sim.start_pty()
    try:
        port = free_port()  # where no agent listens
        config = tmp_path / "site.toml"
        config.write_text(
            f'[site]\nlibrary_id = "lib"\ndevice_id = "kiosk-1"\nlibrary_name = "Thư viện"\n'
            f'[devices]\nitem_reader = "{pad}"\n'
            f'[agent]\ndatabase = "{tmp_path / "agent.sqlite"}"\napi_port = {port}\n',
            encoding="utf-8",
        )
        shots = tmp_path / "shots"
        env = dict(os.environ, SDL_VIDEODRIVER="offscreen", KIVY_NO_ARGS="1")
        env["KIVY_HOME"] = str(tmp_path / "kivy-home")
        # The console log is what is checked (conftest turns it off for in-process Kivy).
        env.pop("KIVY_NO_CONSOLELOG", None)
        env["PYTHONPATH"] = str(ROOT)
        command = [sys.executable, "-m", "edge_agent.cli", "kiosk", "run", "--config", str(config)]
        proc = subprocess.Popen(
            [*command, "--windowed", "--screenshots", str(shots)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            missing = _wait_for_line(proc, "kiosk-attract-vi.png", timeout=60)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            assert proc.stderr is not None
            proc.stderr.close()
        assert missing is None, f"the app never saved its attract screen: {missing}"
        assert (shots / "kiosk-attract-vi.png").stat().st_size > 1000
    finally:
        sim.stop()


def _wait_for_line(proc: subprocess.Popen[bytes], needle: str, timeout: float) -> str | None:
    """Read stderr until it contains ``needle``: None, or what was read when it did not."""
    found, seen = read_until(proc, needle, timeout)
    return None if found else seen[-4096:]
