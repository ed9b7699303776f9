"""Reader work beyond the inventory: probe a tag's security state, and read it to identify it.

Both cost air time, which the antenna then does not spend inventorying, so the gate asks for
as little as answers the question:

* :func:`probe_security` reads the AFI (Get System Information, which also proves the tag
  is still there) and, when the library uses it, the EAS bit; only for tags whose security
  the inventory did not already show;
* :func:`identify` reads the first ``blocks`` blocks (32 bytes by default: an ISO 28560-3
  basic block, or the first elements of an ISO 28560-2 tag, usually item id, type of usage
  and owner) and reads the rest of the memory only when the first part does not say who
  owns the item.

Reader errors propagate (:class:`~hardware.reader.ReaderError`); the caller decides what a
failure means for the pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from gate.decide import TagFacts
from hardware.reader import ItemReader, SystemInfo
from hardware.rfid_ops import DEFAULT_BLOCK_COUNT, DEFAULT_BLOCK_SIZE, read_memory
from hardware.tags import DataModel, SecurityConfig, SecurityState, decode_tag, security_state

__all__ = ["Probe", "complete_prefix", "identify", "probe_security"]


@dataclass(frozen=True, slots=True)
class Probe:
    """The security state read from one tag, and its memory layout for a later read."""

    security: SecurityState
    info: SystemInfo


def probe_security(reader: ItemReader, uid: bytes, config: SecurityConfig) -> Probe:
    """Read a tag's AFI (and EAS bit when used) and apply the library's security rules."""
    info = reader.system_info(uid)
    # System information came first, so an EAS "not armed" answer is from a tag that is there.
    eas = reader.eas_alarm(uid) if config.use_eas else None
    return Probe(security_state(info.afi, eas, config), info)


def complete_prefix(memory: bytes) -> int:
    """Return how many leading bytes hold whole ISO 28560-2 elements (0 if none).

    Only the element framing is walked (precursor, optional OID extension and offset bytes,
    length, data, padding) to find where a partial read can be cut; decoding is left to
    :func:`hardware.tags.decode_tag`.
    """
    pos, size = 0, len(memory)
    while pos < size:
        precursor = memory[pos]
        if precursor == 0:
            return pos  # end of the elements
        header = pos + 1 + (1 if precursor & 0x0F == 0x0F else 0)
        offset = 0
        if precursor & 0x80:
            if header >= size:
                break
            offset = memory[header]
            header += 1
        if header >= size:
            break
        end = header + 1 + memory[header] + offset
        if end > size:
            break
        pos = end
    return pos


def identify(
    reader: ItemReader,
    uid: bytes,
    dsfid: int,
    *,
    blocks: int = 8,
    layout: SystemInfo | None = None,
) -> TagFacts:
    """Read enough of a tag's memory to know its item, owner and type of usage."""
    block_size = layout.block_size if layout else DEFAULT_BLOCK_SIZE
    block_count = layout.block_count if layout else DEFAULT_BLOCK_COUNT
    if layout is not None:
        dsfid = layout.dsfid
    count = max(1, min(blocks, block_count, reader.max_blocks_per_read(block_size)))
    memory = reader.read_blocks(uid, 0, count).data
    whole = count >= block_count
    facts = _decode(uid, memory, dsfid, partial=not whole)
    if whole or (facts.decoded and _owner_settled(facts, len(memory))):
        return facts
    memory = read_memory(reader, uid, block_size, block_count)
    return _decode(uid, memory, dsfid, partial=False)


def _owner_settled(facts: TagFacts, read: int) -> bool:
    """Whether a partial read already tells who owns the item."""
    if facts.owner_institution is not None or facts.patron_card:
        return True
    # ISO 28560-3 keeps the owner inside its 32-byte basic block: absent means absent.
    return facts.model is DataModel.ISO28560_3 and read >= 32


def _decode(uid: bytes, memory: bytes, dsfid: int, *, partial: bool) -> TagFacts:
    tag = decode_tag(uid, memory, dsfid=dsfid, afi=None, eas=None)
    if tag.item is not None or not partial:
        return TagFacts.from_tag(tag)
    cut = complete_prefix(memory)
    if cut:
        prefix = decode_tag(uid, memory[:cut], dsfid=dsfid, afi=None, eas=None)
        if prefix.item is not None:
            return TagFacts.from_tag(prefix)
    return TagFacts.from_tag(tag)
