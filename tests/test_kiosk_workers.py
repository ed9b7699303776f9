"""The controller's workers: jobs run in order off the UI thread, results come back through post."""

from __future__ import annotations

import threading

from kiosk.workers import InlineWorker, PostQueue, ThreadWorker


def test_inline_worker_runs_nested_jobs_after_the_current_one() -> None:
    """A job submitted from a job runs after it, as on the thread worker, not inside it."""
    worker, order = InlineWorker(), []

    def outer() -> None:
        order.append("outer start")
        worker.submit(lambda: order.append("inner"))
        order.append("outer end")

    worker.submit(outer)
    assert order == ["outer start", "outer end", "inner"]


def test_thread_worker_runs_jobs_in_order_on_its_own_thread() -> None:
    """Jobs run one at a time on one thread, in submission order; results come via post."""
    worker, post = ThreadWorker(), PostQueue()
    seen: list[tuple[int, str]] = []
    results: list[int] = []
    try:
        for n in range(20):
            worker.submit(lambda n=n: seen.append((n, threading.current_thread().name)))
            worker.submit(lambda n=n: post(lambda: results.append(n)))
        assert post.run_until(lambda: len(results) == 20, 10)
        assert [n for n, _ in seen] == list(range(20))
        assert {name for _, name in seen} == {"kiosk-worker"}
        assert results == list(range(20))
    finally:
        worker.close()


def test_a_failing_job_does_not_stop_the_worker() -> None:
    """An exception in one job is logged; the next job still runs."""
    worker, done = ThreadWorker(), threading.Event()

    def broken() -> None:
        raise RuntimeError("boom")

    try:
        worker.submit(broken)
        worker.submit(done.set)
        assert done.wait(10)
        assert worker.wait_idle(10)
    finally:
        worker.close()
    worker.submit(lambda: None)  # after close: dropped with a warning, no thread left


def test_post_queue_gives_up_when_time_is_up() -> None:
    """run_until returns False when the condition never comes true within the timeout."""
    post = PostQueue()
    post(lambda: None)
    assert post.run_until(lambda: False, 0.05) is False
    assert post.run_pending() == 0
