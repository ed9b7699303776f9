"""The group-commit writer on its own, driven through a scripted ``execute``.

The storage is replaced by a recording function here because these tests are about who
waits for whom: batching, lingering, timeouts and the wake-up chain. The real SQLite
writer is covered in test_outbox_sqlite.py.
"""

from __future__ import annotations

import functools
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from edge_agent.outbox import GroupCommitPolicy, OutboxClosed, OutboxStorageError
from edge_agent.outbox.groupcommit import GroupCommitWriter, Job, _pass_wake


class Note(Job):
    """A job that carries a label and gets its batch number back."""

    __slots__ = ("batch", "label")

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label
        self.batch = -1


class Recorder:
    """An ``execute`` that records batches and can be held inside a chosen batch."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.entered = threading.Event()  # set when the held batch starts
        self.release = threading.Event()
        self.hold_batch: int | None = None
        self.fail_with: BaseException | None = None

    def __call__(self, jobs: list[Note], wake_previous: Callable[[], None]) -> None:
        number = len(self.batches)
        self.batches.append([j.label for j in jobs])
        if number == self.hold_batch:
            self.entered.set()
            assert self.release.wait(10), "the test never released the held batch"
        if self.fail_with is not None:
            raise self.fail_with
        for job in jobs:
            job.batch = number
        wake_previous()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def make_writer(recorder: Recorder) -> Iterator[Callable[..., GroupCommitWriter[Note]]]:
    made: list[GroupCommitWriter[Note]] = []

    def make(**policy: Any) -> GroupCommitWriter[Note]:
        writer: GroupCommitWriter[Note] = GroupCommitWriter(
            recorder, GroupCommitPolicy(**policy), name="test-writer", on_exit=lambda: None
        )
        made.append(writer)
        return writer

    yield make
    for writer in made:
        writer.close(10)


def submit(writer: GroupCommitWriter[Note], job: Note) -> None:
    """What a store does for one write: announce, prepare, submit."""
    writer.enter()
    writer.submit(job)


def in_thread(target: Callable[[], object]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def test_a_lone_caller_never_waits_for_the_window(
    make_writer: Callable[..., GroupCommitWriter[Note]], recorder: Recorder
) -> None:
    """With nobody else inside, each write commits at once (a window wait would time out)."""
    writer = make_writer(window_s=1.0, commit_timeout_s=0.5)
    for i in range(20):
        job = Note(f"j{i}")
        submit(writer, job)
        assert job.batch == i
    assert recorder.batches == [[f"j{i}"] for i in range(20)]


def test_announced_callers_share_one_batch(
    make_writer: Callable[..., GroupCommitWriter[Note]], recorder: Recorder
) -> None:
    """Callers already preparing when the writer picks a job up land in the same commit."""
    writer = make_writer(window_s=1.0)
    jobs = [Note(f"j{i}") for i in range(5)]
    for _ in jobs:
        writer.enter()  # five callers are inside, checking their arguments
    threads = [in_thread(functools.partial(writer.submit, job)) for job in jobs]
    for thread, errors in threads:
        thread.join()
        assert errors == []
    assert len(recorder.batches) == 1
    assert sorted(recorder.batches[0]) == sorted(j.label for j in jobs)


def test_a_caller_that_withdraws_stops_the_linger(
    make_writer: Callable[..., GroupCommitWriter[Note]], recorder: Recorder
) -> None:
    """A caller leaving without a job nudges the writer, which commits without it."""
    writer = make_writer(window_s=1.0, commit_timeout_s=0.5)
    lingering = threading.Event()
    writer._on_linger = lingering.set
    writer.enter()  # this caller will give up (its arguments were bad)
    job = Note("only")
    thread, errors = in_thread(lambda: submit(writer, job))
    assert lingering.wait(5), "the writer did not wait for the announced caller"
    writer.leave()
    thread.join()
    assert errors == []  # without the nudge it would have waited 1 s and timed out at 0.5 s
    assert recorder.batches == [["only"]]


def test_a_write_not_started_in_time_is_cancelled(
    make_writer: Callable[..., GroupCommitWriter[Note]], recorder: Recorder
) -> None:
    """A caller whose job never reached the storage hears 'nothing was written', truly."""
    writer = make_writer(commit_timeout_s=0.3)
    recorder.hold_batch = 0
    first = Note("first")
    thread, errors = in_thread(lambda: submit(writer, first))
    assert recorder.entered.wait(5)
    with pytest.raises(OutboxStorageError, match="cancelled, nothing was written"):
        submit(writer, Note("second"))
    thread.join()  # the first caller gives up too, while its batch is still held
    recorder.release.set()
    assert len(errors) == 1
    assert "may or may not be stored" in str(errors[0])
    third = Note("third")
    submit(writer, third)
    assert recorder.batches == [["first"], ["third"]]


def test_the_wake_up_chain_skips_callers_that_left() -> None:
    """A caller that stopped waiting is skipped and the next one is woken."""
    jobs = [Note(str(i)) for i in range(3)]
    jobs[0]._next, jobs[1]._next = jobs[1], jobs[2]
    jobs[0]._gone = jobs[1]._gone = True
    _pass_wake(jobs[0])
    assert jobs[2]._wake.acquire(blocking=False)
    assert not jobs[1]._wake.acquire(blocking=False)
    assert not jobs[0]._wake.acquire(blocking=False)


def test_every_caller_of_a_batch_is_woken(
    make_writer: Callable[..., GroupCommitWriter[Note]], recorder: Recorder
) -> None:
    """All callers of one commit return, however long the chain of wake-ups."""
    writer = make_writer(window_s=1.0)
    jobs = [Note(f"j{i}") for i in range(30)]
    for _ in jobs:
        writer.enter()
    threads = [in_thread(functools.partial(writer.submit, job)) for job in jobs]
    for thread, errors in threads:
        thread.join()
        assert errors == []
    assert {j.batch for j in jobs} == {0}


def test_a_failing_batch_fails_its_callers_and_the_writer_goes_on(
    make_writer: Callable[..., GroupCommitWriter[Note]], recorder: Recorder
) -> None:
    """An exception from execute becomes each caller's OutboxStorageError; later writes work."""
    writer = make_writer()
    recorder.fail_with = RuntimeError("disk on fire")
    with pytest.raises(OutboxStorageError, match="disk on fire"):
        submit(writer, Note("a"))
    recorder.fail_with = None
    job = Note("b")
    submit(writer, job)
    assert job.batch == 1
    assert writer.alive


def test_a_dead_writer_fails_current_and_later_callers(
    make_writer: Callable[..., GroupCommitWriter[Note]], recorder: Recorder
) -> None:
    """If execute ends the thread, its caller and every later one get an error, not a hang."""
    writer = make_writer()
    recorder.fail_with = SystemExit(3)
    with pytest.raises(OutboxStorageError, match="may or may not be stored"):
        submit(writer, Note("a"))
    with pytest.raises(OutboxStorageError, match="writer stopped"):
        submit(writer, Note("b"))
    assert not writer.alive


class SignallingQueue(queue.SimpleQueue):  # type: ignore[type-arg]
    """A queue that says when something was put in it."""

    def __init__(self) -> None:
        super().__init__()
        self.put_happened = threading.Event()

    def put(self, item: object, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        self.put_happened.set()


def test_close_finishes_queued_jobs_then_refuses(
    make_writer: Callable[..., GroupCommitWriter[Note]], recorder: Recorder
) -> None:
    """Jobs queued before close() are committed; a job after it raises OutboxClosed."""
    writer = make_writer()
    recorder.hold_batch = 0
    first = Note("first")
    thread1, errors1 = in_thread(lambda: submit(writer, first))
    assert recorder.entered.wait(5)
    # The writer is held inside batch 0 with an empty queue; watch the next put.
    watched = SignallingQueue()
    writer._queue = watched
    second = Note("second")
    thread2, errors2 = in_thread(lambda: submit(writer, second))
    assert watched.put_happened.wait(5)
    closer, close_errors = in_thread(functools.partial(writer.close, 10))
    recorder.release.set()
    for thread in (thread1, thread2, closer):
        thread.join()
    assert errors1 == errors2 == close_errors == []
    assert (first.batch, second.batch) == (0, 1)
    with pytest.raises(OutboxClosed):
        submit(writer, Note("late"))


def test_policy_rejects_nonsense() -> None:
    """A negative window, an empty batch or a zero timeout is refused."""
    with pytest.raises(ValueError, match="window_s"):
        GroupCommitPolicy(window_s=-1)
    with pytest.raises(ValueError, match="max_batch"):
        GroupCommitPolicy(max_batch=0)
    with pytest.raises(ValueError, match="commit_timeout_s"):
        GroupCommitPolicy(commit_timeout_s=0)
