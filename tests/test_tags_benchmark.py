"""The rfid_decode benchmark runs and reports every figure beside its baseline (no timing checks)."""

from __future__ import annotations

import random

from benchmarks import rfid_decode
from hardware.tags import DataModel, decode_28560_2, decode_28560_3


def test_benchmark_tags_are_valid_and_varied() -> None:
    """The benchmark's generated -2 and -3 tags decode, and they vary in content."""
    rng = random.Random(1)
    two = rfid_decode.tags_28560_2(rng, 60)
    three = rfid_decode.tags_28560_3(rng, 60)
    items_2 = [decode_28560_2(memory) for memory in two]
    items_3 = [decode_28560_3(memory) for memory in three]
    assert len({item.primary_item_id for item in items_2}) > 50
    assert any(item.title for item in items_2)
    assert {len(memory) for memory in two} >= {112}
    assert {len(memory) for memory in three} == {112}
    assert len({item.owner_institution for item in items_3}) > 3


def test_quick_run_reports_figures_and_baselines() -> None:
    """A quick run reports tags/s, baseline ops/s and their ratio for each decoder."""
    report = rfid_decode.run(quick=True)
    assert report["tags"] == 500
    for name in ("decode_28560_3", "decode_28560_2", "decode_tag"):
        figures = report[name]
        assert isinstance(figures, dict)
        tags, baseline, ratio = (
            figures["tags_per_s"],
            figures["baseline_ops_per_s"],
            figures["ratio"],
        )
        assert isinstance(tags, int)
        assert isinstance(baseline, int)
        assert tags > 0
        assert baseline > 0
        assert abs(ratio - tags / baseline) < 0.01
    figures_2 = report["decode_28560_2"]
    assert isinstance(figures_2, dict)
    assert figures_2["target_tags_per_s"] == 30_000
    mix = report["decode_tag_mix"]
    assert isinstance(mix, dict)
    assert sum(mix.values()) == 500
    assert set(mix) == {str(model) for model in DataModel}
