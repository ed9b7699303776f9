"""Waiting for a line from a child process's stderr, with a deadline and no sleeps."""

from __future__ import annotations

import os
import selectors
import subprocess
import time

__all__ = ["read_until"]


def read_until(proc: subprocess.Popen[bytes], needle: str, timeout: float) -> tuple[bool, str]:
    """Read stderr until ``needle`` shows (True) or time runs out / stderr closes (False).

    Returns what was read, decoded, either way, so a failing test can show it.
    """
    assert proc.stderr is not None
    fd = proc.stderr.fileno()
    seen = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while (remaining := deadline - time.monotonic()) > 0:
            if not selector.select(remaining):
                break
            # Raw reads: a buffered reader could hold the line we wait for while select() blocks.
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            seen += chunk
            if needle.encode() in seen:
                return True, seen.decode(errors="replace")
    return False, seen.decode(errors="replace")
