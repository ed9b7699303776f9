"""The staff dashboard's web app (FastAPI) and a server that runs it beside the simulator.

Routes: ``/`` (the page), ``/static/…`` (its script and style, no build step and no CDN),
``/api/snapshot`` (everything at once, JSON) and ``/api/stream`` (server-sent events: a
``snapshot`` event whenever what the page shows has changed). The stream polls the database
rather than hooking the simulator's threads, so it also shows what other central instances
sharing the database stored.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator
from importlib.resources import files
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from .views import DashboardSource, snapshot

__all__ = ["DashboardError", "DashboardServer", "create_app"]

log = logging.getLogger(__name__)

_STATIC = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}


class DashboardError(RuntimeError):
    """The dashboard could not be served (port taken, server did not start)."""


def _asset(name: str) -> str:
    return files(__package__).joinpath("static", name).read_text(encoding="utf-8")


def create_app(
    source: DashboardSource, *, poll_s: float = 0.5, stopping: threading.Event | None = None
) -> FastAPI:
    """Build the dashboard app over a simulator; ``stopping`` ends open streams on shutdown."""
    app = FastAPI(title="libedge central: staff dashboard", docs_url=None, redoc_url=None)
    stop = stopping or threading.Event()

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return HTMLResponse(_asset("index.html"))

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in _STATIC:
            return Response(f"no static file {name!r}", status_code=404, media_type="text/plain")
        return Response(_asset(name), media_type=_STATIC[name])

    @app.get("/api/snapshot")
    def api_snapshot() -> JSONResponse:
        return JSONResponse(snapshot(source))

    async def stream(request: Request) -> AsyncIterator[str]:
        last = ""
        # Browsers reconnect on their own after a drop; tell them not to wait long.
        yield "retry: 1000\n\n"
        while not stop.is_set() and not await request.is_disconnected():
            try:
                data: dict[str, Any] = await run_in_threadpool(snapshot, source)
            except Exception as exc:  # the simulator stopping, a locked database, …
                log.warning("dashboard snapshot failed: %s", exc)
                yield f"event: trouble\ndata: {json.dumps(str(exc))}\n\n"
            else:
                text = json.dumps(data, separators=(",", ":"))
                if text != last:
                    last = text
                    yield f"event: snapshot\ndata: {text}\n\n"
                else:
                    # A comment keeps proxies from closing an idle stream.
                    yield ": idle\n\n"
            # Polling the database: it is shared with other instances, so no in-process
            # notification would see everything.
            await asyncio.sleep(poll_s)

    @app.get("/api/stream")
    def api_stream(request: Request) -> StreamingResponse:
        return StreamingResponse(
            stream(request),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return app


class DashboardServer:
    """Uvicorn serving :func:`create_app` on a thread of its own, next to the simulator."""

    def __init__(
        self,
        source: DashboardSource,
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        poll_s: float = 0.5,
    ) -> None:
        self._stopping = threading.Event()
        self.app = create_app(source, poll_s=poll_s, stopping=self._stopping)
        config = uvicorn.Config(
            self.app,
            host=host,
            port=port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None
        self.host = host

    @property
    def port(self) -> int:
        """The port served on (the real one when 0 was asked for)."""
        servers = getattr(self._server, "servers", [])
        for server in servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return int(self._server.config.port)

    @property
    def url(self) -> str:
        """The page's address."""
        return f"http://{self.host}:{self.port}/"

    def start(self, timeout: float = 10.0) -> DashboardServer:
        """Serve in a thread; return once listening, or raise DashboardError."""
        self._stopping.clear()
        self._thread = threading.Thread(target=self._server.run, name="dashboard", daemon=True)
        self._thread.start()
        done = threading.Event()

        def check() -> bool:
            return bool(self._server.started) or not self._thread or not self._thread.is_alive()

        # uvicorn offers no start callback: poll its flag, bounded by the timeout.
        deadline = timeout
        while not check() and deadline > 0:
            done.wait(0.02)
            deadline -= 0.02
        if not self._server.started:
            self.stop()
            raise DashboardError(
                f"dashboard did not start on {self.host}:{self._server.config.port}"
            )
        log.info("staff dashboard on %s", self.url)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """End the open streams, stop the server, join its thread."""
        self._stopping.set()
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> DashboardServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
