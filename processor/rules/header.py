"""What a loader reads from an image's header alone: the facts every decision starts from.

Pure data: the plan (plan.py) and the cost model (cost.py) read it, the engine fills it in.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Header:
    """What a loader reads from the header alone (stored orientation, not yet applied)."""

    format: str
    width: int  # as stored, before EXIF orientation
    height: int
    input_bytes: int
    orientation: int = 1
    has_alpha: bool = False
    frames: int = 1
    has_icc: bool = False
    icc_description: str | None = None
    interpretation: str = "srgb"
    bands: int = 3  # including alpha
    sample_bytes: int = 1  # per band sample as decoded: 1 (8-bit), 2 (16-bit), 4 (float)
    interlaced: bool = False  # progressive JPEG, Adam7 PNG: decoded whole (processor/rules/cost.py)
    # The frames play as an animation (GIF, WebP, APNG, AVIF sequence with more than one
    # frame); a multi-page TIFF or a HEIF burst has frames that do not.
    animation: bool = False
    # Each frame's delay as the file stores it, in ms; empty where the header does not say.
    delays_ms: tuple[int, ...] = ()
    loop: int = 0  # plays of the whole animation, 0 = forever (GIF's "repeats" plus one)
    # Samples that are signed or floating point (libvips' "char", "short", "int", "float",
    # "double"): moved to the display range before any resize (processor/imaging/pixels.py).
    signed_or_float: bool = False

    @property
    def icc_is_srgb(self) -> bool:
        """The embedded profile is a variant of sRGB: the pixels are already what we output."""
        return (
            self.interpretation == "srgb"
            and self.icc_description is not None
            and self.icc_description.lower().startswith("srgb")
        )

    @property
    def oriented_size(self) -> tuple[int, int]:
        # Orientations 5..8 are rotated by 90 or 270 degrees: width and height swap.
        if self.orientation in (5, 6, 7, 8):
            return self.height, self.width
        return self.width, self.height
