"""Control socket of the simulated reader: JSON lines over TCP on the loopback interface.

Tests and the demo move tags and flip fault switches while the driver polls. One JSON object
per line in, one per line out; every answer has ``"ok"``. Operations::

    {"op": "place", "tag": {...}}            also "tags": [{...}, ...]; see TagSpec
    {"op": "remove", "uid": "E004..."}       also "uids": [...]
    {"op": "clear"}
    {"op": "list"}                           -> {"ok": true, "tags": [{uid, memory, afi, ...}]}
    {"op": "get", "uid": "E004..."}          -> {"ok": true, "tag": {...}}
    {"op": "fault", "name": "corrupt_crc", "value": 0.2}   or "faults": {"name": value, ...}
    {"op": "faults"}                         -> {"ok": true, "faults": {...}}
    {"op": "counters"}                       -> {"ok": true, "counters": {...}}
    {"op": "unplug"} / {"op": "replug"}      (replug answers the new "endpoint")

A malformed message gets ``{"ok": false, "error": "..."}`` naming the problem; the connection
and the server stay up. Several clients may be connected at once. A line longer than
``max_line`` bytes closes that client after an error answer (it is not a control client).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import socket
import threading
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from simulators.reader.faults import Faults
from simulators.reader.server import FeigSimulator
from simulators.reader.specs import SpecError, TagSpec, describe_validation_error, parse_hex
from simulators.reader.tags import RFField

__all__ = ["ControlServer", "handle_message"]

log = logging.getLogger(__name__)


class _Op(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Place(_Op):
    op: Literal["place"]
    tag: TagSpec | None = None
    tags: list[TagSpec] | None = None

    @model_validator(mode="after")
    def _some(self) -> _Place:
        if (self.tag is None) == (self.tags is None):
            raise ValueError("place needs exactly one of 'tag' or 'tags'")
        return self


class _Remove(_Op):
    op: Literal["remove"]
    uid: str | None = None
    uids: list[str] | None = None

    @model_validator(mode="after")
    def _some(self) -> _Remove:
        if (self.uid is None) == (self.uids is None):
            raise ValueError("remove needs exactly one of 'uid' or 'uids'")
        return self


class _Get(_Op):
    op: Literal["get"]
    uid: str


class _Fault(_Op):
    op: Literal["fault"]
    name: str | None = None
    value: Any = None
    faults: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _some(self) -> _Fault:
        if (self.name is None) == (self.faults is None):
            raise ValueError("fault needs 'name' and 'value', or 'faults'")
        if self.name is not None and self.value is None:
            raise ValueError("fault needs a 'value' for its 'name'")
        return self


class _Simple(_Op):
    op: Literal["clear", "list", "faults", "counters", "unplug", "replug"]


_Message = Annotated[_Place | _Remove | _Get | _Fault | _Simple, Field(discriminator="op")]


class _Envelope(BaseModel):
    message: _Message


def _uid(text: str) -> bytes:
    raw = parse_hex(text, "uid")
    if len(raw) != 8:
        raise SpecError(f"uid must be 8 bytes (16 hex digits), got {len(raw)} bytes")
    return raw


def handle_message(
    line: str | bytes, field: RFField, faults: Faults, sim: FeigSimulator | None = None
) -> dict[str, Any]:
    """Carry out one control message and return the answer (never raises for bad input)."""
    try:
        data = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return {"ok": False, "error": f"malformed JSON: {exc}"}
    if not isinstance(data, dict):
        return {"ok": False, "error": f"a message is a JSON object, got {type(data).__name__}"}
    if "op" not in data:
        return {"ok": False, "error": "message has no 'op'"}
    try:
        message = _Envelope.model_validate({"message": data}).message
    except ValidationError as exc:
        text = describe_validation_error(exc).replace("message.", "", 1)
        if text.startswith("message:"):
            text = text[len("message:") :].strip()
        return {"ok": False, "error": f"{data.get('op')!r}: {text}"}
    try:
        return _carry_out(message, _Context(field, faults, sim))
    except (SpecError, ValueError, RuntimeError, OSError, TimeoutError) as exc:
        return {"ok": False, "error": f"{data['op']}: {exc}"}


class _Context:
    """What an operation acts on."""

    def __init__(self, field: RFField, faults: Faults, sim: FeigSimulator | None) -> None:
        self.field = field
        self.faults = faults
        self.sim = sim

    def simulator(self) -> FeigSimulator:
        """The attached simulator (RuntimeError when there is none)."""
        if self.sim is None:
            raise RuntimeError("no simulator is attached to this control socket")
        return self.sim


def _place(message: _Place, ctx: _Context) -> dict[str, Any]:
    specs = message.tags if message.tags is not None else [message.tag]
    tags = [spec.build() for spec in specs if spec is not None]
    ctx.field.place(*tags)
    return {"ok": True, "uids": [t.uid.hex().upper() for t in tags]}


def _remove(message: _Remove, ctx: _Context) -> dict[str, Any]:
    texts = message.uids if message.uids is not None else [message.uid or ""]
    ctx.field.remove(*(_uid(text) for text in texts))
    return {"ok": True}


def _get(message: _Get, ctx: _Context) -> dict[str, Any]:
    tag = ctx.field.get(_uid(message.uid))
    if tag is None:
        return {"ok": False, "error": f"get: no tag {message.uid} in the field"}
    return {"ok": True, "tag": tag.describe()}


def _fault(message: _Fault, ctx: _Context) -> dict[str, Any]:
    if message.faults is not None:
        changes = dict(message.faults)
    else:
        changes = {str(message.name): message.value}
    plug = changes.pop("unplugged", None)
    # Check every switch before changing any, so a bad message changes nothing.
    Faults().update(**changes, **({} if plug is None else {"unplugged": plug}))
    ctx.faults.update(**changes)
    if plug is not None:
        if ctx.sim is None:
            ctx.faults.update(unplugged=plug)
        elif plug:
            ctx.sim.unplug()
        else:
            ctx.sim.replug()
    return {"ok": True, "faults": ctx.faults.as_dict()}


def _simple(message: _Simple, ctx: _Context) -> dict[str, Any]:
    op = message.op
    if op == "clear":
        ctx.field.clear()
        return {"ok": True}
    if op == "list":
        return {"ok": True, "tags": [t.describe() for t in ctx.field.tags()]}
    if op == "faults":
        return {"ok": True, "faults": ctx.faults.as_dict()}
    sim = ctx.simulator()
    if op == "counters":
        return {"ok": True, "counters": sim.counters()}
    if op == "unplug":
        sim.unplug()
        return {"ok": True}
    return {"ok": True, "endpoint": sim.replug()}


def _carry_out(
    message: _Place | _Remove | _Get | _Fault | _Simple, ctx: _Context
) -> dict[str, Any]:
    if isinstance(message, _Place):
        return _place(message, ctx)
    if isinstance(message, _Remove):
        return _remove(message, ctx)
    if isinstance(message, _Get):
        return _get(message, ctx)
    if isinstance(message, _Fault):
        return _fault(message, ctx)
    return _simple(message, ctx)


@dataclass
class _Client:
    sock: socket.socket
    buffer: bytearray = field(default_factory=bytearray)


class ControlServer:
    """Serve :func:`handle_message` on 127.0.0.1 from a background thread."""

    def __init__(
        self,
        field: RFField,
        faults: Faults,
        sim: FeigSimulator | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_line: int = 1 << 20,
    ) -> None:
        self.field = field
        self.faults = faults
        self.sim = sim
        self.host = host
        self.max_line = max_line
        self._requested_port = port
        self._listener: socket.socket | None = None
        self._clients: dict[int, _Client] = {}
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._wake_r, self._wake_w = os.pipe()
        self.port = 0

    def start(self) -> int:
        """Listen and serve in a thread; return the bound port."""
        if self._listener is not None:
            raise RuntimeError("control server already started")
        listener = socket.create_server((self.host, self._requested_port), backlog=8)
        listener.setblocking(False)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="feig-sim-control", daemon=True)
        self._thread.start()
        return self.port

    def stop(self) -> None:
        """Stop serving and close every socket; safe to call twice."""
        self._stopping = True
        if self._thread is not None:
            os.write(self._wake_w, b"x")
            self._thread.join(timeout=10)
            self._thread = None
        self._close_all()
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._wake_r = self._wake_w = -1

    def __enter__(self) -> ControlServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _close_all(self) -> None:
        for client in list(self._clients.values()):
            client.sock.close()
        self._clients.clear()
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _serve(self) -> None:
        try:
            while not self._stopping:
                try:
                    self._serve_once()
                except Exception:
                    log.exception("control socket: error while serving; continuing")
        finally:
            self._close_all()

    def _serve_once(self) -> None:
        listener = self._listener
        assert listener is not None
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        poller.register(listener.fileno(), select.POLLIN)
        for fd in self._clients:
            poller.register(fd, select.POLLIN)
        for fd, _mask in poller.poll(1000):
            if fd == self._wake_r:
                os.read(self._wake_r, 512)
            elif fd == listener.fileno():
                with contextlib.suppress(BlockingIOError):
                    sock, _ = listener.accept()
                    sock.setblocking(True)
                    sock.settimeout(5.0)
                    self._clients[sock.fileno()] = _Client(sock)
            elif fd in self._clients:
                self._on_client(self._clients[fd])

    def _drop(self, client: _Client) -> None:
        self._clients.pop(client.sock.fileno(), None)
        client.sock.close()

    def _on_client(self, client: _Client) -> None:
        try:
            chunk = client.sock.recv(65536)
        except OSError:
            chunk = b""
        if not chunk:
            self._drop(client)
            return
        client.buffer += chunk
        while b"\n" in client.buffer:
            line, _, rest = client.buffer.partition(b"\n")
            client.buffer = bytearray(rest)
            if line.strip():
                self._answer(client, handle_message(bytes(line), self.field, self.faults, self.sim))
        if len(client.buffer) > self.max_line:
            error = f"line longer than {self.max_line} bytes; closing"
            self._answer(client, {"ok": False, "error": error})
            self._drop(client)

    def _answer(self, client: _Client, answer: dict[str, Any]) -> None:
        try:
            client.sock.sendall(json.dumps(answer).encode() + b"\n")
        except OSError:
            self._drop(client)
