"""Turn an outbox row into the bytes of its :class:`~edge_agent.contract.Envelope`.

This runs once per published event, so it writes the JSON directly instead of building a
pydantic model (which would parse the stored payload only to print it again, several times
slower). The payload was validated against the contract when it was appended through the
agent's API and is spliced in as stored; central validates the whole envelope and rejects
an invalid one with a receipt, which dead-letters it here. A test checks that the output
always parses as the ``Envelope`` the fields describe.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re

from edge_agent.contract import SCHEMA_VERSION
from edge_agent.outbox import OutboxEvent

__all__ = ["envelope_bytes", "iso_time"]

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def iso_time(unix: float) -> str:
    """Unix seconds as an ISO 8601 UTC time with microseconds (``...+00:00``)."""
    return dt.datetime.fromtimestamp(unix, dt.UTC).isoformat()


#: Strings that need no JSON escaping: ids as topics allow them, UUIDs, ISO times.
_PLAIN = re.compile(r"^[A-Za-z0-9._:+-]*$")


@functools.lru_cache(maxsize=256)
def _device_fields(library_id: str, device_id: str, device_kind: str) -> str | None:
    """The envelope's fields naming the device, as JSON, if no string needs escaping.

    They are the same for every event of a device: built once, not once per event.
    """
    if _PLAIN.match(library_id) and _PLAIN.match(device_id) and _PLAIN.match(device_kind):
        return (
            f'"library_id":"{library_id}","device_id":"{device_id}","device_kind":"{device_kind}",'
        )
    return None


def envelope_bytes(event: OutboxEvent, *, library_id: str, device_kind: str) -> bytes:
    """The envelope of ``event`` as UTF-8 JSON bytes, payload spliced in unchanged."""
    when = iso_time(event.event_time)
    device = _device_fields(library_id, event.device_id, device_kind)
    if device is not None and _PLAIN.match(event.event_id):
        # The common case, without the JSON encoder: every string is plain (checked above).
        trusted = "true" if event.clock_trusted else "false"
        return (
            f'{{"schema_version":{SCHEMA_VERSION},"event_id":"{event.event_id}",{device}'
            f'"seq":{int(event.seq)},"time":"{when}",'
            f'"clock_trusted":{trusted},"payload":{event.payload}}}'
        ).encode()
    head = _dumps(
        {
            "schema_version": SCHEMA_VERSION,
            "event_id": event.event_id,
            "library_id": library_id,
            "device_id": event.device_id,
            "device_kind": device_kind,
            "seq": event.seq,
            "time": when,
            "clock_trusted": event.clock_trusted,
        }
    )
    return f'{head[:-1]},"payload":{event.payload}}}'.encode()
