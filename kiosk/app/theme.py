"""Colours, type sizes and the font: the normal look and the large-text / high-contrast look.

Kept free of Kivy so that it can be tested without a window. The font must cover Vietnamese
(precomposed letters with two diacritics such as "ễ", "ự"): DejaVu Sans does; it is used when
it is installed and Kivy's bundled Roboto otherwise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["CONTRAST", "NORMAL", "Theme", "font_paths"]

Rgba = tuple[float, float, float, float]

DEJAVU = Path("/usr/share/fonts/truetype/dejavu")


@dataclass(frozen=True, slots=True)
class Theme:
    """One look of the kiosk."""

    name: str
    background: Rgba
    text: Rgba
    muted: Rgba
    button: Rgba
    button_text: Rgba
    button_disabled: Rgba
    banner: Rgba
    banner_text: Rgba
    done: Rgba
    refused: Rgba
    #: Multiplies every type size (large text).
    scale: float

    def colors(self) -> dict[str, Rgba]:
        """The colours by name (what the kv rules read)."""
        return {k: v for k, v in asdict(self).items() if isinstance(v, tuple)}


NORMAL = Theme(
    name="normal",
    background=(0.97, 0.96, 0.92, 1),
    text=(0.10, 0.12, 0.16, 1),
    muted=(0.30, 0.33, 0.38, 1),
    button=(0.05, 0.36, 0.62, 1),
    button_text=(1, 1, 1, 1),
    button_disabled=(0.70, 0.72, 0.75, 1),
    banner=(0.80, 0.35, 0.05, 1),
    banner_text=(1, 1, 1, 1),
    done=(0.05, 0.45, 0.20, 1),
    refused=(0.70, 0.10, 0.10, 1),
    scale=1.0,
)

CONTRAST = Theme(
    name="contrast",
    background=(0, 0, 0, 1),
    text=(1, 1, 1, 1),
    muted=(1, 1, 0.6, 1),
    button=(1, 0.85, 0, 1),
    button_text=(0, 0, 0, 1),
    button_disabled=(0.35, 0.35, 0.35, 1),
    banner=(1, 1, 1, 1),
    banner_text=(0, 0, 0, 1),
    done=(0.4, 1, 0.4, 1),
    refused=(1, 0.5, 0.5, 1),
    scale=1.35,
)


def font_paths() -> tuple[str, str] | None:
    """DejaVu Sans (regular, bold) when installed, else None (Kivy's Roboto stays)."""
    regular, bold = DEJAVU / "DejaVuSans.ttf", DEJAVU / "DejaVuSans-Bold.ttf"
    if regular.is_file() and bold.is_file():
        return str(regular), str(bold)
    return None
