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


def test_contracts_catch_violations(tmp_path: Path) -> None:
    """The same contracts, run over a copy that breaks each of them, report every break."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    roots = config["root_packages"]
    for package in roots:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    # An upward import breaks the layers contract.
    (tmp_path / "hardware" / "up.py").write_text("import edge_agent\n")
    expected = ["hardware.up -> edge_agent"]
    # Each forbidden contract gets an import of its first forbidden module from its first source.
    for index, contract in enumerate(config["contracts"]):
        if contract["type"] != "forbidden":
            continue
        for module in contract["forbidden_modules"]:  # import-linter refuses absent modules
            if module.split(".")[0] in roots and "." in module:
                (tmp_path / Path(*module.split("."))).with_suffix(".py").write_text("")
        source, target = contract["source_modules"][0], contract["forbidden_modules"][0]
        (tmp_path / source / f"bad{index}.py").write_text(f"import {target}\n")
        expected.append(f"{source}.bad{index} -> {target}")
    lines = [
        "[importlinter]",
        "root_packages =\n    " + "\n    ".join(roots),
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
    for line in expected:
        assert line in proc.stdout, line
    assert f"{len(config['contracts'])} broken" in proc.stdout
