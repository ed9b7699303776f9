"""Tag decoding speed: ISO 28560-3, ISO 28560-2 and decode_tag, beside a raw baseline.

A few thousand realistic, varied tags (barcodes, ISILs, set information, Vietnamese titles,
SLIX and SLIX2 memory sizes, locked layouts; for decode_tag also blank and damaged tags) are
encoded once, then each decoder runs over all of them. The baseline in the same run is
``bytes.hex()`` plus ``int.from_bytes`` over the same buffers: the cheapest thing anyone could
do with the bytes. Figures are the best of several repetitions, single-threaded.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence

from hardware.tags import (
    DataModel,
    ItemData,
    SetInfo,
    decode_28560_2,
    decode_28560_3,
    decode_tag,
    encode_28560_2,
    encode_28560_3,
)

TARGETS = {"decode_28560_3": 100_000, "decode_28560_2": 30_000}

OWNERS = ["VN-HaNL", "VN-HCMGSL", "VN-DNaTV", "DE-Heu1", "US-InU-Mu", "DK-710100", None]
SHELVES = ["895.922 NG-D", "QA268.L55", "Kho mở 3", "VH-TN 12", "823 ROW", None, None]
TITLES = [
    "Truyện Kiều",
    "Dế Mèn phiêu lưu ký",
    "Số đỏ",
    "Tắt đèn",
    "Nỗi buồn chiến tranh",
    "Cho tôi xin một vé đi tuổi thơ",
    "Harry Potter và Hòn đá Phù thủy",
    "Lược sử thời gian",
]
USAGES = [0x10, 0x10, 0x10, 0x13, 0x15, 0x20, None]


def _pii(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.6:
        return str(rng.randrange(10**7, 10**13))
    if kind < 0.8:
        return f"{rng.randrange(10**9):010d}"  # leading zeros: numeric compaction
    return f"VN{rng.randrange(10**8):08d}"


def _set_info(rng: random.Random) -> SetInfo | None:
    if rng.random() < 0.85:
        return None
    parts = rng.randrange(2, 13)
    return SetInfo(parts, rng.randrange(1, parts + 1))


def tags_28560_2(rng: random.Random, count: int) -> list[bytes]:
    out = []
    for _ in range(count):
        item = ItemData(
            primary_item_id=_pii(rng),
            owner_institution=rng.choice(OWNERS),
            set_info=_set_info(rng),
            type_of_usage=rng.choice(USAGES),
            shelf_location=rng.choice(SHELVES),
            title=rng.choice(TITLES) if rng.random() < 0.5 else None,
        )
        locked = frozenset({1, 3}) if rng.random() < 0.5 else frozenset()
        size = len(encode_28560_2(item, locked_oids=locked))
        memory_size = 112 if size <= 112 else 320  # SLIX, else SLIX2
        out.append(encode_28560_2(item, locked_oids=locked, memory_size=memory_size))
    return out


def tags_28560_3(rng: random.Random, count: int) -> list[bytes]:
    out = []
    for _ in range(count):
        item = ItemData(
            primary_item_id=_pii(rng),
            owner_institution=rng.choice([o for o in OWNERS if o is None or len(o) <= 12]),
            set_info=_set_info(rng) or SetInfo(1, 1),
            type_of_usage=rng.choice([0x10, 0x10, 0x20, 0x80, 0x90]),
        )
        extension = bytes(rng.randrange(1, 256) for _ in range(8)) if rng.random() < 0.2 else b""
        out.append(encode_28560_3(item, extension=extension, memory_size=112))
    return out


def mixed(rng: random.Random, two: list[bytes], three: list[bytes]) -> list[tuple[int, bytes]]:
    """(dsfid, memory) pairs: -2 and -3 tags, blank tags and damaged ones."""
    out: list[tuple[int, bytes]] = []
    for i in range(len(two)):
        kind = rng.random()
        if kind < 0.45:
            out.append((0x06, two[i]))
        elif kind < 0.9:
            out.append((0x00, three[i]))
        elif kind < 0.95:
            out.append((0x00, bytes(112)))
        else:
            damaged = bytearray(rng.choice((two[i], three[i])))
            damaged[rng.randrange(24)] ^= 0xFF
            out.append((rng.choice((0x00, 0x06)), bytes(damaged)))
    return out


def _best(loop: Callable[[], None], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        loop()
        best = min(best, time.perf_counter() - started)
    return best


def _baseline(buffers: Sequence[bytes]) -> Callable[[], None]:
    def loop() -> None:
        for buffer in buffers:
            buffer.hex()
            int.from_bytes(buffer, "big")

    return loop


def _measure(
    name: str, loop: Callable[[], None], buffers: Sequence[bytes], repeats: int
) -> dict[str, object]:
    count = len(buffers)
    tags_per_s = count / _best(loop, repeats)
    baseline_per_s = count / _best(_baseline(buffers), repeats)
    report: dict[str, object] = {
        "tags_per_s": round(tags_per_s),
        "baseline_ops_per_s": round(baseline_per_s),
        "ratio": round(tags_per_s / baseline_per_s, 4),
    }
    if name in TARGETS:
        report["target_tags_per_s"] = TARGETS[name]
        report["meets_target"] = tags_per_s >= TARGETS[name]
    return report


def run(quick: bool) -> dict[str, object]:
    """Measure the decoders; ``quick`` uses fewer tags and repetitions (a smoke check)."""
    rng = random.Random(28560)
    count, repeats = (500, 3) if quick else (4000, 7)
    two = tags_28560_2(rng, count)
    three = tags_28560_3(rng, count)
    field = mixed(rng, two, three)
    uid = bytes.fromhex("E004010000000001")

    def loop_3() -> None:
        for memory in three:
            decode_28560_3(memory)

    def loop_2() -> None:
        for memory in two:
            decode_28560_2(memory)

    def loop_tag() -> None:
        for dsfid, memory in field:
            decode_tag(uid, memory, dsfid=dsfid, afi=0x07, eas=True)

    models: dict[str, int] = {}
    for dsfid, memory in field:
        model = decode_tag(uid, memory, dsfid=dsfid, afi=0x07, eas=True).model
        models[model] = models.get(model, 0) + 1
    return {
        "tags": count,
        "repeats": repeats,
        "decode_28560_3": _measure("decode_28560_3", loop_3, three, repeats),
        "decode_28560_2": _measure("decode_28560_2", loop_2, two, repeats),
        "decode_tag": _measure("decode_tag", loop_tag, [m for _, m in field], repeats),
        "decode_tag_mix": {str(DataModel(k)): v for k, v in sorted(models.items())},
    }
