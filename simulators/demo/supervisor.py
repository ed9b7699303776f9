"""Child processes of ``libedge demo``: started in their own sessions, output prefixed, stopped.

Each child gets its own process group (``start_new_session``), so a Ctrl-C in the terminal
reaches only the demo, which then stops the children in order: SIGTERM to the group, a
bounded wait, SIGKILL to what is left. Their output (stdout and stderr together) is copied
line by line to the demo's stdout behind a ``[name]`` prefix, and handed to a callback.

A demo killed without warning (SIGKILL, OOM) cannot stop its children, so on Linux each child
asks the kernel for SIGTERM when its parent dies (``PR_SET_PDEATHSIG``) before it execs the
real command: see :func:`orphan_guard`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TextIO

__all__ = ["Child", "Supervisor", "orphan_guard"]

LineHandler = Callable[[str, str], None]

#: Run by a fresh interpreter in front of each child: ask for SIGTERM (15) when the parent
#: dies (prctl option 1, PR_SET_PDEATHSIG), give up if the parent is already gone (it died
#: before the request took effect), then become the real command (same pid; the request
#: survives exec). Not ``preexec_fn``: that runs Python between fork and exec, which may
#: deadlock in a process with threads, and the demo has many.
_GUARD = (
    "import ctypes, os, sys\n"
    "if ctypes.CDLL(None, use_errno=True).prctl(1, 15, 0, 0, 0) != 0:\n"
    "    sys.exit('prctl(PR_SET_PDEATHSIG) failed: errno %d' % ctypes.get_errno())\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit(143)\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


def orphan_guard(argv: Sequence[str]) -> list[str]:
    """``argv`` behind a guard that makes Linux SIGTERM the child when this process dies.

    The kernel tracks the *thread* that started the child: call this (and start the child)
    from a thread that lives as long as the process, such as the main thread. Elsewhere than
    on Linux ``argv`` is returned unchanged (those children rely on being stopped in order).
    """
    if not sys.platform.startswith("linux"):
        return list(argv)
    # -I -S: the guard needs only the standard library, and starts in a few milliseconds.
    return [sys.executable, "-I", "-S", "-c", _GUARD, str(os.getpid()), *argv]


class Child:
    """One supervised process."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        on_line: LineHandler,
        out: TextIO,
        lock: threading.Lock,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self._on_line, self._out, self._lock = on_line, out, lock
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
            orphan_guard(self.argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.expected_exit = False
        self._pump = threading.Thread(target=self._copy, name=f"out-{name}", daemon=True)
        self._pump.start()

    def _copy(self) -> None:
        stream = self.proc.stdout
        assert stream is not None  # stdout=PIPE above
        with stream:
            for raw in stream:
                line = raw.rstrip("\n")
                with self._lock:
                    print(f"[{self.name}] {line}", file=self._out, flush=True)
                self._on_line(self.name, line)

    @property
    def pid(self) -> int:
        """The child's process id (also its process group id)."""
        return self.proc.pid

    def alive(self) -> bool:
        """Whether the child still runs."""
        return self.proc.poll() is None

    def terminate(self) -> None:
        """Ask the child's group to stop (SIGTERM), once: asking again changes nothing."""
        if self.expected_exit:
            # A second SIGTERM would only risk landing while the child exits, once Python
            # has put back the default action: a clean stop would then read as a kill.
            return
        self.expected_exit = True
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM the child's group, wait, SIGKILL what is left; return its exit status."""
        self.terminate()
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        # Anything it left in its group (there should be nothing) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._pump.join(10)
        return int(self.proc.returncode)


class Supervisor:
    """Starts children, reports one that dies early, and stops them all in reverse order."""

    def __init__(self, on_line: LineHandler, out: TextIO | None = None) -> None:
        self.children: list[Child] = []
        self._on_line = on_line
        self._out = out or sys.stdout
        self._lock = threading.Lock()

    def say(self, text: str) -> None:
        """Print one line of the demo's own, prefixed ``[demo]``."""
        with self._lock:
            print(f"[demo] {text}", file=self._out, flush=True)

    def start(self, name: str, argv: Sequence[str]) -> Child:
        """Start a child."""
        child = Child(name, argv, self._on_line, self._out, self._lock)
        self.children.append(child)
        self.say(f"started {name} (pid {child.pid})")
        return child

    def failed(self) -> list[Child]:
        """Children that exited without being told to."""
        return [c for c in self.children if not c.alive() and not c.expected_exit]

    def stop_all(self, timeout: float = 30.0) -> dict[str, int]:
        """Stop every child (all asked at once, so they wind down together); return statuses."""
        statuses: dict[str, int] = {}
        for child in self.children:
            child.terminate()
        for child in reversed(self.children):
            statuses[child.name] = child.stop(timeout)
            self.say(f"stopped {child.name}: exit status {statuses[child.name]}")
        return statuses
