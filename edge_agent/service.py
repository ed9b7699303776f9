"""The long-running edge agent: the outbox, the offline caches, the MQTT link and the local API.

:class:`AgentService` opens the outbox (the truth: an event the API acknowledged is in it)
and the caches in ``agent.database``, starts the link, and serves the local API with
uvicorn on a thread of its own, on loopback TCP or a unix socket. Stopping goes in the
order that loses nothing: first the API (no new events), then the link (it publishes
"offline", commits what the last PUBACKs and receipts said, and disconnects cleanly so the
Last Will is not sent), then the stores. A SIGKILL skips all that and still loses nothing
committed: the next start re-sends every unconfirmed event.

``libedge agent run`` (:mod:`edge_agent.commands.agent_cmd`) calls :meth:`run_until_signalled`,
which turns SIGTERM and SIGINT into that clean stop.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import stat
import threading
from pathlib import Path
from types import FrameType

import uvicorn

from edge_agent.api.app import ApiContext, create_app
from edge_agent.caches import CacheStore
from edge_agent.config import LibedgeSettings
from edge_agent.link import AgentLink
from edge_agent.link.options import software_version
from edge_agent.outbox import Outbox, OutboxLimits, SqliteOutbox

__all__ = ["AgentService", "ServiceError"]

log = logging.getLogger(__name__)


class ServiceError(RuntimeError):
    """The agent cannot start (the API address is taken, the database cannot be opened)."""


def _bind(settings: LibedgeSettings) -> socket.socket:
    """The API's listening socket, bound now so that its address is known before serving."""
    agent = settings.agent
    if agent.api_socket is not None:
        path = Path(agent.api_socket)
        with contextlib.suppress(FileNotFoundError):
            # A socket file left behind by a killed agent would make bind() fail; anything
            # that is not a socket is left alone and reported.
            if stat.S_ISSOCK(path.stat().st_mode):
                path.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(path))
            sock.listen(128)
        except OSError as exc:
            sock.close()
            raise ServiceError(f"agent.api_socket {path}: cannot listen: {exc.strerror}") from exc
        return sock
    try:
        sock = socket.create_server((agent.api_host, agent.api_port), backlog=128)
    except OSError as exc:
        raise ServiceError(
            f"agent.api_host/api_port {agent.api_host}:{agent.api_port}: cannot listen: "
            f"{exc.strerror}"
        ) from exc
    # Accepted sockets inherit this on Linux: each answer is one small write, and with Nagle
    # on it waited for the client's delayed ACK (~44 ms per request, measured).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class AgentService:
    """Everything ``libedge agent run`` runs, startable and stoppable in-process (tests)."""

    def __init__(self, settings: LibedgeSettings, *, outbox: Outbox | None = None) -> None:
        self.settings = settings
        self._given_outbox = outbox
        self.outbox: Outbox | None = None
        self.caches: CacheStore | None = None
        self.link: AgentLink | None = None
        self.context: ApiContext | None = None
        self._server: uvicorn.Server | None = None
        self._server_thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self.stopped = threading.Event()
        self.api_url = ""

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Open the stores, start the link, and serve the API; raise ServiceError if it cannot."""
        agent = self.settings.agent
        opened: list[object] = []
        try:
            if self._given_outbox is not None:
                self.outbox = self._given_outbox
            else:
                self.outbox = SqliteOutbox(
                    agent.database, limits=OutboxLimits(max_rows=agent.outbox_max_events)
                )
                opened.append(self.outbox)
            self.caches = CacheStore(agent.database)
            opened.append(self.caches)
            self.link = AgentLink.from_settings(self.settings, self.outbox, self.caches)
            self._sock = _bind(self.settings)
        except Exception:
            for thing in reversed(opened):
                thing.close()  # type: ignore[attr-defined]
            self.outbox = self.caches = self.link = None
            raise
        self.link.start()
        ctx = self.context = ApiContext(
            device_id=self.settings.site.device_id,
            token=agent.api_token.get_secret_value(),
            outbox=self.outbox,
            caches=self.caches,
            link=self.link,
            version=software_version(),
            max_events=agent.outbox_max_events,
        )
        self.link.device_details = ctx.device_details.reported
        config = uvicorn.Config(
            create_app(ctx),
            log_config=None,  # keep libedge's logging (and its secret scrubber)
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)
        sock = self._sock
        if sock.family == socket.AF_UNIX:
            self.api_url = f"unix:{sock.getsockname()}"
        else:
            host, port = sock.getsockname()[:2]
            self.api_url = f"http://{host}:{port}"
        self._server_thread = threading.Thread(target=self._serve, name="agent-api", daemon=True)
        self._server_thread.start()
        log.info(
            "edge agent %s/%s started: API on %s, broker %s, outbox %s",
            self.settings.site.library_id,
            self.settings.site.device_id,
            self.api_url,
            self.link.status().broker,
            agent.database,
        )

    def _serve(self) -> None:
        server, sock = self._server, self._sock
        try:
            if server is not None and sock is not None:
                server.run(sockets=[sock])
        except Exception:
            log.exception("the local API stopped with an error")
        finally:
            # If the API dies on its own the agent stops too: a supervisor restarts it.
            self.stopped.set()

    def stop(self) -> None:
        """API first, then the link (offline status, flush), then the stores; idempotent."""
        if self._server is not None:
            self._server.should_exit = True
        if self._server_thread is not None:
            self._server_thread.join(10)
            self._server_thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            if self.settings.agent.api_socket is not None:
                with contextlib.suppress(OSError):
                    os.unlink(self.settings.agent.api_socket)
        if self.link is not None:
            self.link.stop()
            self.link = None
        if self.caches is not None:
            self.caches.close()
            self.caches = None
        if self.outbox is not None and self._given_outbox is None:
            self.outbox.close()
        self.outbox = None
        self.stopped.set()
        log.info("edge agent stopped")

    def run_until_signalled(self) -> int:
        """Start, wait for SIGTERM/SIGINT (or the API dying), stop cleanly; the exit status."""

        def on_signal(signum: int, frame: FrameType | None) -> None:
            log.info("received %s: stopping", signal.Signals(signum).name)
            self.stopped.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            # A timed wait keeps the main thread returning to the interpreter, where the
            # signal handler above runs.
            while not self.stopped.wait(0.5):
                pass
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0

    def __enter__(self) -> AgentService:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
