"""HDR (PQ or HLG transfer) to SDR sRGB: what a browser without HDR shows of the same frame.

The operator, in linear light (docs/formats.md, "HDR"):

1. the code values through the transfer's EOTF: PQ (SMPTE ST 2084) to absolute nits; HLG
   (BT.2100) through its inverse OETF and the BT.2100 OOTF for a 1000-nit display (system
   gamma 1.2, applied per channel);
2. nits to SDR units: BT.2408's HDR reference white, 203 nits, is 1.0 (the curve below
   puts it at about 190 of 255, half-way in linear light);
3. the source primaries (BT.2020, Display P3) to sRGB's, a 3x3 matrix
   (processor/rules/metadata.py), negatives clipped;
4. extended Reinhard on the largest channel (hue kept): ``m * (1 + m / w^2) / (1 + m)`` with
   ``w`` the content's peak in SDR units (1000 nits, the HDR10 mastering peak libavif and
   Apple assume when the file does not say), so the peak lands exactly on white;
5. the sRGB transfer, 8 bits.
"""

from __future__ import annotations

import math
from typing import Any

import pyvips

PQ, HLG = 16, 18
TRANSFERS = frozenset({PQ, HLG})
REFERENCE_WHITE_NITS = 203.0
PEAK_NITS = 1000.0

# SMPTE ST 2084 constants.
_M1, _M2 = 2610 / 16384, 2523 / 4096 * 128
_C1, _C2, _C3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
# BT.2100 HLG constants.
_A = 0.17883277
_B = 1 - 4 * _A
_C = 0.5 - _A * math.log(4 * _A)  # 0.55991073


def is_hdr(nclx: dict[str, Any] | None) -> bool:
    return nclx is not None and nclx.get("transfer_characteristics") in TRANSFERS


def _pq_nits(v: pyvips.Image) -> pyvips.Image:
    p = v ** (1 / _M2)
    num = (p - _C1).maxpair(0)
    den = _C2 - _C3 * p
    return (num / den) ** (1 / _M1) * 10000


def _hlg_nits(v: pyvips.Image) -> pyvips.Image:
    low = (v * v) / 3
    high = (((v - _C) / _A).exp() + _B) / 12
    scene = (v <= 0.5).ifthenelse(low, high)
    return scene**1.2 * PEAK_NITS


def to_sdr(image: pyvips.Image, nclx: dict[str, Any], matrix: Any) -> pyvips.Image:
    """A 16-bit (or 8-bit) HDR RGB(A) image to 8-bit sRGB, by the operator above."""
    alpha = image.extract_band(image.bands - 1) if image.bands in (2, 4) else None
    colour = image.extract_band(0, n=image.bands - 1) if alpha is not None else image
    if colour.bands == 1:
        colour = colour.bandjoin([colour, colour])
    top = 65535.0 if colour.format == "ushort" else 255.0
    v = colour.cast("float") / top
    nits = _pq_nits(v) if nclx.get("transfer_characteristics") == PQ else _hlg_nits(v)
    x = nits / REFERENCE_WHITE_NITS
    if matrix is not None:
        x = x.recomb([list(row) for row in matrix])
    x = x.maxpair(0)
    white = PEAK_NITS / REFERENCE_WHITE_NITS
    m = x[0].maxpair(x[1]).maxpair(x[2])
    mapped = m * (1 + m / (white * white)) / (1 + m)
    scale = (m > 1e-6).ifthenelse(mapped / m.maxpair(1e-6), 0)
    sdr = (x * scale).minpair(1).copy(interpretation="scrgb").colourspace("srgb")
    if sdr.format != "uchar":
        sdr = sdr.cast("uchar")
    if alpha is not None:
        a = (alpha / 257).cast("uchar") if alpha.format == "ushort" else alpha.cast("uchar")
        sdr = sdr.bandjoin(a)
    return sdr
