"""The reconnecting device thread on its own: a scripted fake device and the real thread.

Each test scripts what the successive attempts to open the device do (fail, or open a device
whose serving is lost, raises, or runs until stopped) and reads the thread's reports from a
queue. Backoffs are hundredths of a second, so the thread's own waits are short; the tests
wait on the queue and on events, never on the clock.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator

import pytest

from hardware.device_thread import Lost, ReconnectingThread, Trouble

WAIT = 10.0
LOGGER = "tests.fake_device"

Report = tuple[Trouble, str, float]


class FakeDevice:
    """An open device: how serving it goes, and whether it was closed."""

    def __init__(self, serve: Callable[[FakeThread], Lost | None], close_fails: bool) -> None:
        self.serve = serve
        self.close_fails = close_fails
        self.closed = threading.Event()

    def close(self) -> None:
        self.closed.set()
        if self.close_fails:
            raise OSError("close failed")


class FakeThread(ReconnectingThread):
    """Opens the scripted devices in turn; once the script is spent, every open fails."""

    noun = "fake device"

    def __init__(
        self,
        script: list[Exception | Callable[[FakeThread], Lost | None]],
        *,
        initial: float = 0.01,
        maximum: float = 0.04,
        close_fails: bool = False,
    ) -> None:
        super().__init__(
            "fake:0",
            thread_name="fake-device fake:0",
            log=logging.getLogger(LOGGER),
            backoff_initial=initial,
            backoff_max=maximum,
        )
        self.script = list(script)
        self.close_fails = close_fails
        self.devices: list[FakeDevice] = []
        self.reports: queue.Queue[Report] = queue.Queue()
        self.serving = threading.Event()
        self.stopped_in_time: bool | None = None

    def stop(self, timeout: float = WAIT) -> None:
        self.stopped_in_time = self._stop_and_join(timeout)

    def _open(self) -> FakeDevice:
        step = self.script.pop(0) if self.script else OSError("no such device")
        if isinstance(step, Exception):
            raise step
        device = FakeDevice(step, self.close_fails)
        self.devices.append(device)
        return device

    def _serve(self, device: FakeDevice) -> Lost | None:
        return device.serve(self)

    def _open_failure(self, exc: Exception) -> str:
        return f"cannot open: {exc}"

    def _report(self, trouble: Trouble, detail: str, retry_in: float) -> None:
        self.reports.put((trouble, detail, retry_in))

    def next_reports(self, count: int) -> list[Report]:
        """The next ``count`` reports, each waited for."""
        reports = []
        for _ in range(count):
            try:
                reports.append(self.reports.get(timeout=WAIT))
            except queue.Empty:
                pytest.fail(f"only {len(reports)} of {count} reports arrived: {reports}")
        return reports


class FreshOnOpenThread(FakeThread):
    """The scanners' policy: an open device restarts the backoff; only failed opens grow it."""

    fresh_start_on_open = True


def lost(worked: bool) -> Callable[[FakeThread], Lost | None]:
    return lambda thread: Lost(f"lost (worked={worked})", worked)


def boom(thread: FakeThread) -> Lost | None:
    raise RuntimeError("boom")


def until_stopped(thread: FakeThread) -> Lost | None:
    thread.serving.set()
    thread._stop.wait()
    return None


@pytest.fixture
def started() -> Iterator[Callable[[FakeThread], FakeThread]]:
    threads: list[FakeThread] = []

    def start(thread: FakeThread) -> FakeThread:
        thread.start()
        threads.append(thread)
        return thread

    yield start
    for thread in threads:
        thread.stop()
        assert thread.stopped_in_time


def retries(reports: list[Report]) -> list[tuple[Trouble, float]]:
    return [(trouble, retry_in) for trouble, _, retry_in in reports]


def test_backoff_doubles_up_to_its_maximum(
    started: Callable[[FakeThread], FakeThread],
) -> None:
    thread = started(FakeThread([], initial=0.01, maximum=0.04))
    reports = thread.next_reports(5)
    assert [retry_in for _, _, retry_in in reports] == [0.01, 0.02, 0.04, 0.04, 0.04]
    assert {(trouble, detail) for trouble, detail, _ in reports} == {
        (Trouble.UNAVAILABLE, "cannot open: no such device")
    }


@pytest.mark.parametrize("thread_class", [FakeThread, FreshOnOpenThread])
def test_a_device_that_worked_restarts_the_backoff(
    started: Callable[[FakeThread], FakeThread], thread_class: type[FakeThread]
) -> None:
    script: list[Exception | Callable[[FakeThread], Lost | None]]
    script = [OSError("absent"), OSError("absent"), lost(worked=True)]
    thread = started(thread_class(script, initial=0.01, maximum=0.08))
    lost_report = thread.next_reports(4)[2]
    assert lost_report == (Trouble.LOST, "lost (worked=True)", 0.01)


def test_a_device_that_never_worked_keeps_backing_off(
    started: Callable[[FakeThread], FakeThread],
) -> None:
    """Opening is not enough: a device lost before it worked counts as another failure."""
    script: list[Exception | Callable[[FakeThread], Lost | None]]
    script = [OSError("absent"), lost(worked=False), lost(worked=True)]
    thread = started(FakeThread(script, initial=0.01, maximum=0.08))
    assert retries(thread.next_reports(5)) == [
        (Trouble.UNAVAILABLE, 0.01),
        (Trouble.LOST, 0.02),
        (Trouble.LOST, 0.01),  # it worked: afresh
        (Trouble.UNAVAILABLE, 0.02),  # the wait after the loss grew it
        (Trouble.UNAVAILABLE, 0.04),
    ]


def test_fresh_start_on_open_grows_the_backoff_only_on_failed_opens(
    started: Callable[[FakeThread], FakeThread],
) -> None:
    script: list[Exception | Callable[[FakeThread], Lost | None]]
    script = [OSError("absent"), OSError("absent"), lost(worked=False), boom]
    thread = started(FreshOnOpenThread(script, initial=0.01, maximum=0.08))
    assert retries(thread.next_reports(6)) == [
        (Trouble.UNAVAILABLE, 0.01),
        (Trouble.UNAVAILABLE, 0.02),
        (Trouble.LOST, 0.01),  # it opened: afresh
        (Trouble.INTERNAL_ERROR, 0.01),  # opened again; the loss did not grow it
        (Trouble.UNAVAILABLE, 0.01),
        (Trouble.UNAVAILABLE, 0.02),
    ]


def test_stop_during_a_wait_returns_at_once(
    started: Callable[[FakeThread], FakeThread],
) -> None:
    thread = started(FakeThread([], initial=60.0, maximum=60.0))
    assert retries(thread.next_reports(1)) == [(Trouble.UNAVAILABLE, 60.0)]
    thread.stop()
    assert thread.stopped_in_time, "stop waited out the 60 s backoff"
    assert not thread.running
    assert thread.reports.empty()


def test_stop_while_serving_closes_the_device_and_reports_nothing(
    started: Callable[[FakeThread], FakeThread],
) -> None:
    thread = started(FakeThread([until_stopped]))
    assert thread.serving.wait(WAIT)
    assert thread.running
    thread.stop()
    assert thread.stopped_in_time
    assert thread.devices[0].closed.is_set()
    assert thread.reports.empty()


def test_an_exception_in_serve_is_logged_reported_and_the_loop_goes_on(
    started: Callable[[FakeThread], FakeThread], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger=LOGGER)
    thread = started(FakeThread([boom, until_stopped], initial=0.01, maximum=0.04))
    assert thread.next_reports(1) == [
        (Trouble.INTERNAL_ERROR, "the fake device loop failed: RuntimeError: boom", 0.01)
    ]
    assert thread.serving.wait(WAIT), "the thread did not open the device again"
    assert thread.devices[0].closed.is_set()
    failures = [r for r in caplog.records if r.name == LOGGER]
    assert [r.getMessage() for r in failures] == ["fake device fake:0 failed"]
    assert failures[0].exc_info is not None


def test_a_device_that_fails_to_close_is_still_retried(
    started: Callable[[FakeThread], FakeThread],
) -> None:
    thread = started(FakeThread([lost(worked=True), until_stopped], close_fails=True))
    assert retries(thread.next_reports(1)) == [(Trouble.LOST, 0.01)]
    assert thread.serving.wait(WAIT)


def test_a_thread_starts_once_with_its_name() -> None:
    with FakeThread([until_stopped]) as thread:
        assert thread.serving.wait(WAIT)
        assert "fake-device fake:0" in {t.name for t in threading.enumerate()}
        with pytest.raises(RuntimeError, match="fake device already started"):
            thread.start()
    assert thread.stopped_in_time
    assert not thread.running
