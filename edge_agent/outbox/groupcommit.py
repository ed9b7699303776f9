"""Group commit: one writer thread turns many callers' writes into few synchronous commits.

A durable commit costs one fsync (milliseconds on an SD card) whatever it holds, so the
outbox's throughput is commits per second times events per commit. Callers hand a
:class:`Job` to :meth:`GroupCommitWriter.submit` and block until *their* job's transaction
has committed (or failed); the writer thread takes every job waiting, runs them through
the store's ``execute(jobs, wake_previous)`` callback in one transaction, and only then
releases each caller. So an event is never acknowledged before its commit, and the callers
that queue up during one fsync share the next one.

Under the GIL, callers waking up compete with the writer for the interpreter between its
statements. So the callers of one batch are woken by ``wake_previous()``, which the store
calls just before the *next* batch's COMMIT: they then prepare their next writes while the
writer waits for the disk (and, when there is no next batch, they are woken at once). The
writer wakes only the first of them; each woken caller wakes the next, so the writer makes
one futex call instead of one per caller, and the callers queue for the GIL one by one.

Waiting for more work (the *window*) is only worth it when more work is about to arrive.
Callers bracket the preparation of a job (argument checks, UUID) with :meth:`enter` and
:meth:`submit`, so the writer knows how many jobs are being prepared right now. After
taking every queued job it lingers, up to ``window_s`` and ``max_batch``, only while some
are; a caller that gives up before submitting calls :meth:`leave` and nudges it. A lone
caller (a kiosk appending one loan) therefore never waits for the window. Callers that were
just released by a commit are *not* waited for: they arrive while the next commit's fsync
runs and share the one after it, which keeps the disk busy instead of idle while they
prepare (a pipeline of two groups).

No caller waits forever: ``commit_timeout_s`` bounds the wait. A job the writer had not
started yet is cancelled (so the error can say "not written"); one it had started gets an
error saying the outcome is unknown. If the writer thread itself dies, every waiting and
later caller gets :class:`OutboxStorageError` naming the cause. :meth:`close` lets the
writer finish every job submitted before it, then stops the thread.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from edge_agent.outbox.errors import InvalidArgument, OutboxClosed, OutboxStorageError

__all__ = ["GroupCommitPolicy", "GroupCommitWriter", "Job"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GroupCommitPolicy:
    """How writes are grouped into commits and how long a caller may wait for its own."""

    window_s: float = 0.002  # longest a batch waits for callers already inside the outbox
    max_batch: int = 256  # most jobs in one transaction
    commit_timeout_s: float = 30.0  # longest a caller waits for its commit before an error

    def __post_init__(self) -> None:
        if not 0 <= self.window_s <= 1:
            raise InvalidArgument(f"window_s must be within 0..1 s, not {self.window_s!r}")
        if self.max_batch < 1:
            raise InvalidArgument(f"max_batch must be >= 1, not {self.max_batch!r}")
        if not self.commit_timeout_s > 0:
            raise InvalidArgument(f"commit_timeout_s must be > 0, not {self.commit_timeout_s!r}")


class Job:
    """One caller's write, handed to the writer thread.

    Subclasses carry the arguments and the results; the store's ``execute`` sets the results
    or :attr:`error` on every job of a batch, and the writer releases the caller afterwards.
    """

    __slots__ = ("_cancelled", "_claimed", "_gone", "_next", "_wake", "error")

    def __init__(self) -> None:
        # A bare lock is the cheapest one-shot signal in CPython: held now, released once
        # the job's outcome is final.
        self._wake = threading.Lock()
        self._wake.acquire()
        self._claimed = False  # the writer took it into a batch (under the writer's lock)
        self._cancelled = False  # its caller gave up before that (under the writer's lock)
        self._gone = False  # its caller stopped waiting; the wake-up chain skips it
        self._next: Job | None = None  # the next caller to wake, once this one runs
        self.error: BaseException | None = None


def _pass_wake(job: Job | None) -> None:
    """Wake ``job``'s caller, or the first later one in its chain still waiting."""
    while job is not None and job._gone:
        job = job._next
    if job is not None:
        job._wake.release()


J = TypeVar("J", bound=Job)


class _Signal:
    """A queue item that is not a job."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


_STOP: Final = _Signal("stop")  # close(): finish what is queued, then exit
_NUDGE: Final = _Signal("nudge")  # a caller left: re-check whether lingering still pays


class GroupCommitWriter(Generic[J]):
    """A writer thread that runs submitted jobs in shared transactions (see module doc)."""

    def __init__(
        self,
        execute: Callable[[list[J], Callable[[], None]], None],
        policy: GroupCommitPolicy,
        *,
        name: str,
        on_exit: Callable[[], None],
    ) -> None:
        self._execute = execute
        self._policy = policy
        self._on_exit = on_exit
        self._queue: queue.SimpleQueue[J | _Signal] = queue.SimpleQueue()
        # Guards the counters below and the claim/cancel decision of each job.
        self._lock = threading.Lock()
        self._active = 0
        self._lingering = False
        self._closed = False
        self._failure: BaseException | None = None
        self._done: list[J] = []  # committed, callers not yet woken (writer thread only)
        #: Called on the writer thread each time it starts to linger (an observation point
        #: for tests; must not block).
        self._on_linger: Callable[[], None] | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ caller side

    def enter(self) -> None:
        """Announce a job being prepared; follow with :meth:`submit` or :meth:`leave`."""
        with self._lock:
            self._active += 1

    def leave(self) -> None:
        """Withdraw an announcement from :meth:`enter` without submitting (a bad argument)."""
        with self._lock:
            self._active -= 1
            nudge = self._lingering
        if nudge:
            self._queue.put(_NUDGE)

    def submit(self, job: J) -> None:
        """Queue ``job`` (ending its :meth:`enter`) and block until its transaction committed.

        Raises the job's own error, or ``OutboxClosed`` / ``OutboxStorageError`` when the
        writer cannot take it.
        """
        with self._lock:
            self._active -= 1
            # Checked under the lock that close() takes, so no job lands behind _STOP.
            if self._failure is not None:
                raise OutboxStorageError(
                    f"the outbox writer stopped ({self._failure!r}); nothing was written"
                )
            if self._closed:
                raise OutboxClosed("the outbox is closed; nothing was written")
            self._queue.put(job)
        timeout = self._policy.commit_timeout_s
        if job._wake.acquire(timeout=timeout) or self._woken_late(job):
            # Pass the wake-up on down the chain first: the next caller's commit is done too.
            _pass_wake(job._next)
            if job.error is not None:
                raise job.error
            return
        with self._lock:
            if not job._claimed:
                job._cancelled = True
                raise OutboxStorageError(
                    f"the outbox writer did not start this write within {timeout:g} s "
                    "(disk stalled or database locked); it was cancelled, nothing was written"
                )
        raise OutboxStorageError(
            f"no commit within {timeout:g} s (disk stalled?); the write may or may not "
            "be stored: retry with the same event_id, which is idempotent"
        )

    @staticmethod
    def _woken_late(job: Job) -> bool:
        """After a timeout: leave the wake-up chain; True if the wake-up came meanwhile.

        ``_gone`` is set before looking, so a wake-up passed on concurrently either reaches
        this job (and the lock is free now) or skips it; the chain is never broken.
        """
        job._gone = True
        return job._wake.acquire(blocking=False)

    # ------------------------------------------------------------------ lifecycle

    @property
    def alive(self) -> bool:
        """True while the writer thread runs."""
        return self._thread.is_alive()

    def close(self, timeout: float | None = None) -> bool:
        """Refuse new jobs, let the writer finish the queued ones, and wait for it to stop.

        Returns False if the thread was still running after ``timeout`` seconds (a stalled
        disk); it will then exit, and release the storage, as soon as its batch returns.
        """
        with self._lock:
            if not self._closed:
                self._closed = True
                self._queue.put(_STOP)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # ------------------------------------------------------------------ writer side

    def _run(self) -> None:
        try:
            stop = False
            while not stop:
                try:
                    first = self._queue.get_nowait()
                except queue.Empty:
                    self._release_done()  # nothing else to do: answer before sleeping
                    first = self._queue.get()
                if first is _STOP:
                    break
                if isinstance(first, _Signal):
                    continue
                batch: list[J] = [first]
                stop = self._gather(batch)
                self._run_batch(batch)
        except BaseException as exc:
            # A bug, or a callback ending the thread: say so once, loudly, and make every
            # waiting and later caller fail with this cause instead of hanging. Not
            # re-raised: the thread has nobody to hand it to but the excepthook.
            log.exception("outbox writer thread failed; the outbox refuses writes from now on")
            with self._lock:
                self._failure = exc
        finally:
            self._release_done()
            self._fail_leftovers()
            try:
                self._on_exit()
            except Exception:
                log.exception("outbox writer could not release its storage")

    def _release_done(self) -> None:
        """Wake the callers whose jobs are final (committed or failed); idempotent.

        Only the first caller is woken here; each woken caller wakes the next
        (:func:`_pass_wake`). The futex calls then leave the writer's path to the next
        commit, and the callers take the GIL one after another instead of all at once.
        """
        done, self._done = self._done, []
        if done:
            for job, after in itertools.pairwise(done):
                job._next = after
            _pass_wake(done[0])

    def _gather(self, batch: list[J]) -> bool:
        """Add queued jobs to ``batch``, lingering while more are coming; True on _STOP."""
        max_batch = self._policy.max_batch
        deadline: float | None = None
        try:
            while len(batch) < max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    with self._lock:
                        self._lingering = self._active > 0
                    if not self._lingering:
                        return False
                    self._release_done()  # never keep answered callers waiting on a linger
                    if self._on_linger is not None:
                        self._on_linger()
                    now = time.monotonic()
                    if deadline is None:
                        deadline = now + self._policy.window_s
                    if now >= deadline:
                        return False
                    try:
                        item = self._queue.get(timeout=deadline - now)
                    except queue.Empty:
                        return False
                if item is _STOP:
                    return True
                if isinstance(item, _Signal):
                    continue
                batch.append(item)
            return False
        finally:
            if self._lingering:
                with self._lock:
                    self._lingering = False

    def _run_batch(self, batch: list[J]) -> None:
        with self._lock:
            live = [job for job in batch if not job._cancelled]
            for job in live:
                job._claimed = True
        if not live:
            return
        try:
            self._execute(live, self._release_done)
        except Exception as exc:
            # execute() rolls back before raising, so nothing of this batch was stored.
            log.exception("outbox batch of %d writes failed", len(live))
            for job in live:
                error = OutboxStorageError(f"the outbox failed to write ({exc!r}); not written")
                error.__cause__ = exc
                job.error = error
        except BaseException as exc:
            # The thread is going down (SystemExit from a callback, …): answer these callers
            # honestly on the way out — _run releases them — and let it propagate.
            for job in live:
                if job.error is None:
                    job.error = OutboxStorageError(
                        f"the outbox writer stopped during this write ({exc!r}); "
                        "it may or may not be stored"
                    )
            self._release_done()
            self._done = live
            raise
        # The callers of this batch are woken just before the *next* commit's fsync (or
        # when the writer runs out of work), so that they prepare their next writes while
        # the disk works instead of competing with the writer for the GIL between its
        # statements. They are never woken before their own commit.
        self._release_done()  # whatever execute() did not release yet (a failure path)
        self._done = live

    def _fail_leftovers(self) -> None:
        """Release every job still queued when the thread ends (only after a failure)."""
        with self._lock:
            self._closed = True
            failure = self._failure
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Signal):
                continue
            if failure is None:
                item.error = OutboxClosed("the outbox closed before this write; not written")
            else:
                item.error = OutboxStorageError(
                    f"the outbox writer stopped ({failure!r}); not written"
                )
            item._wake.release()
