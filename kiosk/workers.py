"""Where the controller's slow work runs, and how its results come back to the UI thread.

The controller's state belongs to one thread (Kivy's main thread in the app, the test's
thread in tests). Reader and network work must not block that thread, so the controller
hands each piece of work to a :class:`Worker`; the work reports back through a ``post``
function that the UI layer supplies and that runs a callable *on the UI thread* (Kivy:
``Clock.schedule_once``). Two workers exist:

- :class:`InlineWorker` runs the work at once, on the caller's thread: with
  :func:`post_inline` the whole controller becomes synchronous, which is what most unit tests
  and the hypothesis state machine want.
- :class:`ThreadWorker` runs the work on one background thread, in submission order (one
  thread, so the reader is never used by two jobs at once). With a :class:`PostQueue` a test
  waits for results with :meth:`PostQueue.run_until`, on a queue with a timeout: no sleeps.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["InlineWorker", "Post", "PostQueue", "ThreadWorker", "Worker", "post_inline"]

log = logging.getLogger(__name__)

#: Runs a callable on the UI thread (soon, in order).
Post = Callable[[Callable[[], None]], None]

Job = Callable[[], None]


class Worker(Protocol):
    """Runs jobs off the UI thread, one at a time, in the order they were submitted."""

    def submit(self, job: Job) -> None:
        """Queue one job; its exceptions are logged, never raised to the submitter."""
        ...

    def close(self) -> None:
        """Finish the queued jobs and release the worker's thread, if it has one."""
        ...


def _run_logged(job: Job) -> None:
    try:
        job()
    except Exception:
        # A bug in a job must not end the kiosk; the controller's own jobs catch what they
        # expect and post an outcome, so whatever lands here is unexpected.
        log.exception("kiosk job failed")


def post_inline(fn: Callable[[], None]) -> None:
    """Run ``fn`` at once: the UI thread is the caller's thread (synchronous tests)."""
    fn()


class InlineWorker:
    """Runs each job at once on the submitting thread."""

    def __init__(self) -> None:
        self._depth = 0
        self._backlog: list[Job] = []

    def submit(self, job: Job) -> None:
        """Run the job now; a job submitted from inside another runs right after it."""
        # Running nested submissions after the current job, not inside it, keeps the order
        # the same as ThreadWorker's (and the stack shallow).
        self._backlog.append(job)
        if self._depth:
            return
        self._depth += 1
        try:
            while self._backlog:
                _run_logged(self._backlog.pop(0))
        finally:
            self._depth -= 1

    def close(self) -> None:
        """Nothing to release."""


class ThreadWorker:
    """Runs jobs on one background thread, in submission order."""

    _STOP: Job = staticmethod(lambda: None)

    def __init__(self, name: str = "kiosk-worker") -> None:
        self._jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._closed = False
        self._idle = threading.Condition()
        self._pending = 0
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        """Queue a job; after :meth:`close` the job is dropped with a warning."""
        if self._closed:
            log.warning("kiosk worker is closed; a job was dropped")
            return
        with self._idle:
            self._pending += 1
        self._jobs.put(job)

    def wait_idle(self, timeout: float) -> bool:
        """Block until every submitted job has finished, or ``timeout`` passes."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Let queued jobs finish, then stop the thread; idempotent."""
        if not self._closed:
            self._closed = True
            self._jobs.put(self._STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("kiosk worker did not stop within %.0f s", timeout)

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is self._STOP:
                return
            _run_logged(job)
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()


class PostQueue:
    """A ``post`` for tests and headless use: callables wait here until the owner runs them."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()

    def __call__(self, fn: Callable[[], None]) -> None:
        """Queue ``fn`` to run on the owner's thread."""
        self._queue.put(fn)

    def run_pending(self) -> int:
        """Run whatever is queued now; return how many callables ran."""
        ran = 0
        while True:
            try:
                fn = self._queue.get_nowait()
            except queue.Empty:
                return ran
            fn()
            ran += 1

    def run_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Run posted callables as they arrive until ``predicate()`` holds or time is up."""
        deadline = time.monotonic() + timeout
        self.run_pending()
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                fn = self._queue.get(timeout=remaining)
            except queue.Empty:
                return predicate()
            fn()
        return True
