"""The simulated receipt printer as a device: a TCP port like a network printer's 9100, or a file.

:class:`PrinterSimulator` accepts one connection at a time (as a printer does), interprets what
arrives, answers status requests from its switches (``paper_out``, ``paper_near_end``,
``cover_open``, ``error``; all off by default, changeable while it runs), and writes each
receipt to ``OUT/receipt-NNNN.png`` with ``receipt-NNNN.txt`` beside it when given an output
directory. Tests wait for receipts with :meth:`PrinterSimulator.wait_for_pages`.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
from pathlib import Path

from simulators.printer.interpreter import EscPosInterpreter, PrinterState
from simulators.printer.paper import PrintedPage

__all__ = ["PrinterSimulator"]


class PrinterSimulator:
    """A thermal receipt printer in software."""

    def __init__(
        self,
        out_dir: Path | None = None,
        *,
        width: int = 576,
        paper_out: bool = False,
        paper_near_end: bool = False,
        cover_open: bool = False,
        error: bool = False,
        answer_status: bool = True,
    ) -> None:
        self.out_dir = out_dir
        self.width = width
        self.paper_out = paper_out
        self.paper_near_end = paper_near_end
        self.cover_open = cover_open
        self.error = error
        #: False makes the printer ignore status requests, like one without a back channel.
        self.answer_status = answer_status
        self.pages: list[PrintedPage] = []
        self.bytes_received = 0
        self.status_requests = 0
        self._changed = threading.Condition()
        self._server: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = os.pipe()
        self._closed = False

    # ------------------------------------------------------------------ state
    def state(self) -> PrinterState:
        """The switches as the interpreter reports them."""
        return PrinterState(self.paper_out, self.paper_near_end, self.cover_open, self.error)

    def _page_done(self, page: PrintedPage) -> None:
        with self._changed:
            index = len(self.pages) + 1
            if self.out_dir is not None:
                self.out_dir.mkdir(parents=True, exist_ok=True)
                page.png = self.out_dir / f"receipt-{index:04d}.png"
                page.text_file = self.out_dir / f"receipt-{index:04d}.txt"
                page.image.save(page.png)
                page.text_file.write_text(page.text + "\n", encoding="utf-8")
            self.pages.append(page)
            self._changed.notify_all()

    def wait_for_pages(self, count: int, timeout: float) -> list[PrintedPage]:
        """Wait until ``count`` receipts have come out; raise TimeoutError otherwise."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.pages) >= count, timeout):
                raise TimeoutError(
                    f"{len(self.pages)} of {count} receipts printed after {timeout} s"
                )
            return list(self.pages)

    def wait_for_status_requests(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` status requests have arrived; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self.status_requests >= count, timeout)

    def _interpreter(self, respond: socket.socket | None) -> EscPosInterpreter:
        def answer(data: bytes) -> None:
            with self._changed:
                self.status_requests += 1
                self._changed.notify_all()
            if respond is not None and self.answer_status:
                with contextlib.suppress(OSError):
                    respond.sendall(data)

        return EscPosInterpreter(
            self.width, on_page=self._page_done, respond=answer, state=self.state
        )

    # ------------------------------------------------------------------ inputs
    def feed_file(self, path: Path) -> list[PrintedPage]:
        """Interpret a file of ESC/POS bytes (e.g. what a ``file:`` printer wrote)."""
        before = len(self.pages)
        interpreter = self._interpreter(None)
        with path.open("rb") as handle:
            while chunk := handle.read(65536):
                self.bytes_received += len(chunk)
                interpreter.feed(chunk)
        interpreter.finish()
        return self.pages[before:]

    def start_tcp(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen like a network printer; returns the port (any free one when 0)."""
        server = socket.create_server((host, port))
        self._server = server
        self._thread = threading.Thread(target=self._serve, name="sim-printer", daemon=True)
        self._thread.start()
        return int(server.getsockname()[1])

    @property
    def url(self) -> str:
        """The printer URL of the TCP listener: ``tcp://127.0.0.1:PORT``."""
        if self._server is None:
            raise RuntimeError("the printer simulator is not listening")
        host, port = self._server.getsockname()[:2]
        return f"tcp://{host}:{port}"

    def _serve(self) -> None:
        # Work already waiting (a connection, data) is finished before a close is obeyed, so a
        # job sent just before the simulator is told to stop is still printed.
        assert self._server is not None
        while True:
            ready, _, _ = select.select([self._server.fileno(), self._wake_r], [], [])
            if self._server.fileno() not in ready:
                return
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with conn:
                self._serve_connection(conn)

    def _serve_connection(self, conn: socket.socket) -> None:
        interpreter = self._interpreter(conn)
        while True:
            ready, _, _ = select.select([conn.fileno(), self._wake_r], [], [])
            if conn.fileno() not in ready:
                break
            try:
                data = conn.recv(65536)
            except OSError:
                break
            if not data:
                break
            self.bytes_received += len(data)
            interpreter.feed(data)
        interpreter.finish()

    def close(self) -> None:
        """Stop listening and release the port."""
        if self._closed:
            return
        self._closed = True
        os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._server is not None:
            self._server.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def __enter__(self) -> PrinterSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
