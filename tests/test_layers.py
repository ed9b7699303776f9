"""The layer contract in pyproject.toml holds, and would catch a violation if one were added."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def test_layer_contracts_are_kept() -> None:
    """import-linter reports every contract kept for the real packages."""
    proc = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_contracts_catch_an_upward_import(tmp_path: Path) -> None:
    """The same contracts, run over a copy where hardware imports edge_agent, report it broken."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    for package in config["root_packages"]:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "hardware" / "feig.py").write_text("")
    (tmp_path / "hardware" / "reader.py").write_text("")
    (tmp_path / "hardware" / "bad.py").write_text("import edge_agent\n")
    (tmp_path / "simulators" / "bad.py").write_text("import hardware.feig\n")
    lines = [
        "[importlinter]",
        "root_packages =\n    " + "\n    ".join(config["root_packages"]),
        f"include_external_packages = {config['include_external_packages']}",
    ]
    for index, contract in enumerate(config["contracts"]):
        lines.append(f"\n[importlinter:contract:{index}]")
        for key, value in contract.items():
            text = (
                ("\n    " + "\n    ".join(value) if value else "")
                if isinstance(value, list)
                else value
            )
            lines.append(f"{key} = {text}")
    (tmp_path / ".importlinter").write_text("\n".join(lines) + "\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    proc = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(tmp_path / ".importlinter")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "hardware.bad -> edge_agent" in proc.stdout
    assert "simulators.bad -> hardware.feig" in proc.stdout
