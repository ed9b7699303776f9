"""Resident memory of a process, read from /proc, and of a bare interpreter as the baseline."""

from __future__ import annotations

import subprocess
import sys

__all__ = ["bare_python_mb", "memory_mb"]


def memory_mb(pid: int) -> dict[str, float]:
    """``VmRSS`` (now) and ``VmHWM`` (peak) of process ``pid``, in MB, from /proc."""
    fields: dict[str, float] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = round(int(value.split()[0]) / 1024, 1)
    return fields


def bare_python_mb(imports: str = "") -> dict[str, float]:
    """The raw floor: :func:`memory_mb` of an interpreter that imported ``imports`` only.

    It says when its imports are done, and is measured then (not after a guessed pause).
    """
    head = f"import {imports}; " if imports else ""
    code = f"{head}import sys, time; print('up', flush=True); time.sleep(60)"
    bare = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert bare.stdout is not None
        bare.stdout.readline()
        return memory_mb(bare.pid)
    finally:
        bare.kill()
        bare.wait()
