"""Step 9, score: how close each rendition's decoded pixels are to its reference (SSIMULACRA2).

``score`` is the step: it decodes a rendition's own bytes and compares them with the pixels
they were encoded from (resized, colour-converted, flattened onto white for a format without
alpha); ``ssimulacra2`` is the metric.

A port of the reference tool (libjxl's ``tools/ssimulacra2.cc``, version 2.1, BSD-3-Clause, by
Jon Sneyers, Cloudinary), checked against its binary on real photos and encodes
(tests/processor/imaging/test_score.py, ``python -m benchmarks.score_check``). Scores run from
100 (identical) down, and read about 90 for "cannot be told apart at 1:1", 70 for high
quality, 50 for medium (mozjpeg q40), 30 for low.

The algorithm, as the reference has it:

- both images to linear sRGB (an alpha image blended onto a dark and a bright grey; the score
  is the worse of the two), then to XYB, rescaled to about 0..1 and with B-Y for B;
- at six scales (1:1 to 1:32, halved by a 2x2 box in linear RGB, stopping below 8 pixels):
  means and variances by a Gaussian blur (sigma 1.5, zero outside the image), an SSIM map
  without SSIM's luminance denominator, and an edge map split into "artifact" (the distorted
  image has edges the original does not: ringing, blocking, banding) and "detail lost"
  (blurring);
- for each of the 6 x 3 x 3 maps its mean and its 4-norm, weighted by the reference's 108
  weights, through the reference's polynomial and power to the 100-based score.

The pixels are NumPy arrays (float32, as the reference computes), both images of the pair
side by side in six channels so that each step is one array operation for the pair, computed
one scale at a time and, within a scale, a strip of rows or a batch of tiles at a time, each
with its blur margin (its real neighbours, zeros past the image's edge as the reference reads
them), so the planes held stay small whatever the image's size. The blur is one separable
convolution with the impulse response of the reference's recursive Gaussian. The reference
runs that filter in float32 as a recursion whose poles sit on the unit circle, and its
rounding noise grows along long flat rows: there it reads lower than this port
(docs/engine.md, Scores). (The port was libvips operations first: the same scores within
0.02 on photos and 0.08 on flat 16-bit or transparent images, where the float32 rounding of
near-zero variances differs, at 3 to 10 times this CPU, most of it libvips' fixed cost of
building each scale's pipeline.)

A large rendition may be sampled: its two finest scales (about 94% of the work) measured on
a share of their tiles, each computed from its real neighbours so that its values are the
whole image's (``choose``, ``_sampled``; the step's ``Scoring.sample_above`` and
``sample_share``). Maps and blurred planes whose weights are all zero are never computed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyvips

from processor.core.config import Scoring
from processor.core.encoders import ENCODERS
from processor.imaging.budget import TimeBudget
from processor.imaging.describe import flatten
from processor.imaging.pixels import Held, Pixels

SCALES = 6
MIN_SIDE = 8  # the reference stops before a scale narrower or shorter than this
SIGMA = 1.5
C2 = 0.0009
ALPHA_BACKGROUNDS = (0.1, 0.9)  # the reference's dark and bright grey for transparent pixels
TILE = 32  # pixels a side of a sampled tile at full size (half that at half size)
SAMPLED_SCALES = 2  # the scales a share below 1 samples: full and half size
F32 = np.float32

# Opsin absorbance (libjxl lib/jxl/cms/opsin_params.h): linear RGB to LMS-like "mixed" values.
_M = [
    [0.30, 0.622, 0.078],
    [0.23, 0.692, 0.078],
    [0.24342268924547819, 0.20476744424496821, 1.0 - 0.24342268924547819 - 0.20476744424496821],
]
_BIAS = 0.0037930732552754493
_CBRT_BIAS = _BIAS ** (1 / 3)
# XYB made positive, as one matrix on the cube roots c = cbrt(mixed) - cbrt(bias):
#   X' = 14 * (c0 - c1) / 2 + 0.42,  Y' = (c0 + c1) / 2 + 0.01,  B' = c2 - Y + 0.55
# (the -cbrt(bias) cancels in X and B, and stays in Y).
_POSITIVE_XYB = [[7.0, -7.0, 0.0], [0.5, 0.5, 0.0], [-0.5, -0.5, 1.0]]
_POSITIVE_OFFSET = [0.42, 0.01 - _CBRT_BIAS, 0.55]

# fmt: off
WEIGHTS = (
    0.0, 0.0007376606707406586, 0.0, 0.0, 0.0007793481682867309, 0.0, 0.0,
    0.0004371155730107379, 0.0, 1.1041726426657346, 0.00066284834129271,
    0.00015231632783718752, 0.0, 0.0016406437456599754, 0.0, 1.8422455520539298,
    11.441172603757666, 0.0, 0.0007989109436015163, 0.000176816438078653, 0.0,
    1.8787594979546387, 10.94906990605142, 0.0, 0.0007289346991508072, 0.9677937080626833,
    0.0, 0.00014003424285435884, 0.9981766977854967, 0.00031949755934435053,
    0.0004550992113792063, 0.0, 0.0, 0.0013648766163243398, 0.0, 0.0, 0.0, 0.0, 0.0,
    7.466890328078848, 0.0, 17.445833984131262, 0.0006235601634041466, 0.0, 0.0,
    6.683678146179332, 0.00037724407979611296, 1.027889937768264, 225.20515300849274, 0.0,
    0.0, 19.213238186143016, 0.0011401524586618361, 0.001237755635509985,
    176.39317598450694, 0.0, 0.0, 24.43300999870476, 0.28520802612117757,
    0.0004485436923833408, 0.0, 0.0, 0.0, 34.77906344483772, 44.835625328877896, 0.0, 0.0,
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0008680556573291698, 0.0, 0.0, 0.0, 0.0, 0.0,
    0.0005313191874358747, 0.0, 0.00016533814161379112, 0.0, 0.0, 0.0, 0.0, 0.0,
    0.0004179171803251336, 0.0017290828234722833, 0.0, 0.0020827005846636437, 0.0, 0.0,
    8.826982764996862, 23.19243343998926, 0.0, 95.1080498811086, 0.9863978034400682,
    0.9834382792465353, 0.0012286405048278493, 171.2667255897307, 0.9807858872435379, 0.0,
    0.0, 0.0, 0.0005130064588990679, 0.0, 0.00010854057858411537,
)
# fmt: on
assert len(WEIGHTS) == SCALES * 3 * 2 * 3


class ScoreError(ValueError):
    """The two images cannot be compared (sizes differ, or smaller than 8x8)."""


def score(
    pixels: Pixels, fmt: str, data: bytes, scoring: Scoring, budget: TimeBudget
) -> float | None:
    """The score of one encoded rendition, rounded to 0.01; None for an animation (its frames
    are not scored; an animated upload's still renditions, its poster, are), when scoring is
    off, or when less than ``scoring.min_budget_left`` of the time budget is left."""
    if not isinstance(pixels, Held) or not scoring.enabled:
        return None
    if budget.share_left() < scoring.min_budget_left:
        return None
    reference = pixels.image if ENCODERS[fmt].alpha else flatten(pixels.image)
    decoded = pyvips.Image.new_from_buffer(data, "")
    if decoded.width != reference.width or decoded.height != reference.height:
        return None  # not comparable; the rendition itself is what it is
    reference = centre_crop(reference, scoring.max_pixels)
    decoded = centre_crop(decoded, scoring.max_pixels)
    if reference.width < MIN_SIDE or reference.height < MIN_SIDE:
        return None  # too small for the metric (a 4x300 strip): no score rather than a guess
    pixels_scored = reference.width * reference.height
    share = scoring.sample_share if pixels_scored > scoring.sample_above else 1.0
    return round(ssimulacra2(reference, decoded, share), 2)


def centre_crop(image: pyvips.Image, max_pixels: int) -> pyvips.Image:
    """The centred crop of about ``max_pixels`` with the image's aspect (at least 8 pixels a
    side where the image has them)."""
    if image.width * image.height <= max_pixels:
        return image
    shrink = math.sqrt(max_pixels / (image.width * image.height))
    width = min(image.width, max(MIN_SIDE, round(image.width * shrink)))
    height = min(image.height, max(MIN_SIDE, round(image.height * shrink)))
    return image.crop((image.width - width) // 2, (image.height - height) // 2, width, height)


def ssimulacra2(reference: pyvips.Image, distorted: pyvips.Image, share: float = 1.0) -> float:
    """The SSIMULACRA2 score of ``distorted`` against ``reference``: 8- or 16-bit sRGB or
    greyscale, with or without alpha, of the same size. A ``share`` below 1 measures the
    full and half-size scales on about that share of their pixels (``choose``), the coarser
    scales whole."""
    if (reference.width, reference.height) != (distorted.width, distorted.height):
        raise ScoreError(
            f"sizes differ: {reference.width}x{reference.height} against "
            f"{distorted.width}x{distorted.height}"
        )
    if reference.width < MIN_SIDE or reference.height < MIN_SIDE:
        raise ScoreError(f"smaller than {MIN_SIDE}x{MIN_SIDE} pixels")
    source, ref, dist = _held(reference, distorted)
    if not ref.alpha:
        # As the reference: only the original's alpha decides; a distorted alpha is blended
        # onto the middle grey it uses for an opaque original.
        return _score(source, _linear(ref, dist, 0.5), share)
    return min(_score(source, _linear(ref, dist, bg), share) for bg in ALPHA_BACKGROUNDS)


Array = npt.NDArray[Any]
Linear = Callable[[Array], Array]  # a slice of a scale's source pixels -> linear float32


@dataclass(frozen=True)
class _Layout:
    """Where one image of the pair sits in the held channels: three colour channels from
    ``first``, then its alpha if it has one; ``peak`` is its white."""

    first: int
    alpha: bool
    peak: float


def _held(reference: pyvips.Image, distorted: pyvips.Image) -> tuple[Array, _Layout, _Layout]:
    """Both images side by side in the channels (height x width x 6 to 8), as decoded, in one
    array that libvips writes once: each part is made linear only when it is read. Grey is
    read as three equal channels, as the reference reads it."""
    parts, layouts, first = [], [], 0
    for image in (reference, distorted):
        alpha = image.hasalpha()
        colour = image.extract_band(0, n=image.bands - 1) if alpha else image
        if colour.bands == 1:
            colour = colour.bandjoin([colour, colour])
        parts.append(colour.bandjoin(image.extract_band(image.bands - 1)) if alpha else colour)
        layouts.append(_Layout(first, alpha, 65535.0 if image.format == "ushort" else 255.0))
        first += 3 + alpha
    source = parts[0].bandjoin(parts[1]).numpy()
    return source, layouts[0], layouts[1]


def _linear(ref: _Layout, dist: _Layout, bg: float) -> Linear:
    """The function that makes any part of the held pair its linear RGB (6 channels, float32),
    each image blended onto ``bg`` by its alpha: the reference blends the encoded (not linear)
    values."""

    def linear(part: Array) -> Array:
        out = np.empty((*part.shape[:-1], 6), F32)
        for at, image in ((0, ref), (3, dist)):
            colour = part[..., image.first : image.first + 3]
            if colour.dtype == np.uint8 and not image.alpha:
                out[..., at : at + 3] = _LUT[colour]
                continue
            values = colour.astype(F32) / F32(image.peak)
            if image.alpha:
                alpha = part[..., image.first + 3 : image.first + 4].astype(F32) / F32(image.peak)
                values = values * alpha + (F32(1.0) - alpha) * F32(bg)
            out[..., at : at + 3] = _eotf(values)
        return out

    return linear


def _eotf(v: Array) -> Array:
    """The sRGB transfer function, undone."""
    v = np.asarray(v, dtype=F32)
    return np.where(v <= 0.04045, v / F32(12.92), ((v + F32(0.055)) / F32(1.055)) ** F32(2.4))


# 8-bit values are undone through a table: a pow per pixel costs more than a scale's XYB.
_LUT = _eotf(np.arange(256, dtype=F32) / F32(255.0)).astype(F32)


def _as_is(part: Array) -> Array:
    return part


_M_T = np.asarray(_M, dtype=F32).T
_POSITIVE_XYB_T = np.asarray(_POSITIVE_XYB, dtype=F32).T
_OFFSET = np.asarray(_POSITIVE_OFFSET, dtype=F32)


def _xyb(linear: Array) -> Array:
    """Linear RGB to positive XYB, for both images of the pair (the last axis, 6)."""
    out = np.empty(linear.shape, F32)
    for first in (0, 3):
        mixed = linear[..., first : first + 3] @ _M_T
        mixed += F32(_BIAS)
        np.maximum(mixed, 0.0, out=mixed)
        out[..., first : first + 3] = np.cbrt(mixed) @ _POSITIVE_XYB_T + _OFFSET
    return out


def _kernel(sigma: float) -> list[float]:
    """The impulse response of the reference's recursive Gaussian (libjxl
    ``CreateRecursiveGaussian``, Charalampidis 2016: three cosines over a support of N = 5
    pixels a side for sigma 1.5), so that one convolution gives what its filter gives."""
    n = round(3.2795 * sigma + 0.2546)
    omega = [math.pi * k / (2 * n) for k in (1, 3, 5)]
    p = [1 / math.tan(w / 2) * sign for w, sign in zip(omega, (1, -1, 1), strict=True)]
    r = [pk * pk / math.sin(w) * sign for pk, w, sign in zip(p, omega, (1, -1, 1), strict=True)]
    rho = [math.exp(-0.5 * sigma * sigma * w * w) / n for w in omega]
    d13, d35, d51 = p[0] * r[1] - r[0] * p[1], p[1] * r[2] - r[1] * p[2], p[2] * r[0] - r[2] * p[0]
    a = [p, r, [d35 / d13, d51 / d13, 1.0]]
    gamma = [1.0, n * n - sigma * sigma, d35 / d13 * rho[0] + d51 / d13 * rho[1] + rho[2]]
    beta = [_det(_column(a, i, gamma)) / _det(a) for i in range(3)]  # Cramer's rule
    return [
        sum(b * math.cos(w * x) for b, w in zip(beta, omega, strict=True)) for x in range(-n, n + 1)
    ]


def _column(m: list[list[float]], i: int, v: list[float]) -> list[list[float]]:
    return [[v[j] if k == i else m[j][k] for k in range(3)] for j in range(3)]


def _det(m: list[list[float]]) -> float:
    return (
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    )


_KERNEL = np.asarray(_kernel(SIGMA), dtype=F32)
_PAD = len(_KERNEL) // 2


def _blur(windows: Array) -> Array:
    """The blur of each window's inside (windows x rows x columns x planes, with a margin of
    the kernel's half-width on every side, which the result drops): a separable
    convolution, rows then columns."""
    rows = windows.shape[1] - 2 * _PAD
    down = _KERNEL[0] * windows[:, :rows]
    for i in range(1, len(_KERNEL)):
        down += _KERNEL[i] * windows[:, i : i + rows]
    columns = windows.shape[2] - 2 * _PAD
    out: Array = _KERNEL[0] * down[:, :, :columns]
    for i in range(1, len(_KERNEL)):
        out += _KERNEL[i] * down[:, :, i : i + columns]
    return out


Needs = tuple[tuple[int, ...], ...]


def _bands(needs: Needs) -> int:
    """How many weighed maps a scale computes."""
    return sum(len(channels) for channels in needs)


def _needs(scale: int, scales: int) -> Needs:
    """Per map (ssim, artifact, detail lost), the channels whose mean or 4-norm weighs at
    this scale: the others are not computed (an exact saving; at full size only Y's SSIM of
    the three is weighed, so six of the fifteen blurred planes go)."""
    return tuple(
        tuple(
            c
            for c in range(3)
            if any(WEIGHTS[(c * scales + scale) * 6 + n * 3 + kind] for n in range(2))
        )
        for kind in range(3)
    )


def _sums(
    source: Array, linear: Linear, tops: Array, lefts: Array, size: tuple[int, int], needs: Needs
) -> Array:
    """Per weighed map band (in the order of ``needs``: SSIM's channels, then artifact's,
    then detail lost's), the sum of its values and then the sum of their fourth powers, over
    the boxes of ``size`` (rows, columns) at (``tops``, ``lefts``) of the scale's pixels.
    Each box is computed with its real neighbours, and zeros past the image's edge as the
    reference's blur reads them, so a box's values are the whole image's."""
    height, width = source.shape[:2]
    rows, columns = size
    ys = tops[:, None] + np.arange(-_PAD, rows + _PAD)
    xs = lefts[:, None] + np.arange(-_PAD, columns + _PAD)
    inside = ((ys >= 0) & (ys < height))[:, :, None] & ((xs >= 0) & (xs < width))[:, None, :]
    windows = source[np.clip(ys, 0, height - 1)[:, :, None], np.clip(xs, 0, width - 1)[:, None, :]]
    xyb = _xyb(linear(windows))
    xyb *= inside[..., None]
    ssim_c, art_c, detail_c = needs
    edge_c = sorted(set(art_c) | set(detail_c))
    planes = [xyb]  # mu1 (3), mu2 (3), then s11, s22, s12 of the SSIM channels
    if ssim_c:
        one, two = xyb[..., list(ssim_c)], xyb[..., [3 + c for c in ssim_c]]
        planes += [one * one, two * two, one * two]
    blurred = _blur(np.concatenate(planes, axis=-1) if len(planes) > 1 else xyb)
    mu1, mu2 = blurred[..., 0:3], blurred[..., 3:6]
    maps = []
    if ssim_c:
        k = len(ssim_c)
        s11, s22, s12 = (blurred[..., 6 + k * i : 6 + k * (i + 1)] for i in range(3))
        m1, m2 = mu1[..., list(ssim_c)], mu2[..., list(ssim_c)]
        num_m = 1.0 - (m1 - m2) ** 2
        num_s = 2.0 * (s12 - m1 * m2) + F32(C2)
        denom_s = (s11 - m1 * m1) + (s22 - m2 * m2) + F32(C2)
        maps.append(np.maximum(1.0 - num_m * num_s / denom_s, 0.0))
    if edge_c:
        inner = xyb[:, _PAD : _PAD + rows, _PAD : _PAD + columns]
        e1 = np.abs(inner[..., edge_c] - mu1[..., edge_c])
        e2 = np.abs(inner[..., [3 + c for c in edge_c]] - mu2[..., edge_c])
        d1 = (1.0 + e2) / (1.0 + e1) - 1.0
        if art_c:
            maps.append(np.maximum(d1[..., [edge_c.index(c) for c in art_c]], 0.0))
        if detail_c:
            maps.append(np.maximum(-d1[..., [edge_c.index(c) for c in detail_c]], 0.0))
    values = (np.concatenate(maps, axis=-1) if len(maps) > 1 else maps[0]).reshape(
        -1, _bands(needs)
    )
    squares = values * values
    return np.concatenate(
        [values.sum(axis=0, dtype=np.float64), (squares * squares).sum(axis=0, dtype=np.float64)]
    )


STRIP = 128  # rows of a region computed at once: bounds the planes held (about 18 MB at 2048 px)
BATCH = 64  # tiles computed at once (their planes: about 7 MB at full size)


def _region(
    source: Array, linear: Linear, top: int, left: int, rows: int, columns: int, needs: Needs
) -> Array:
    """``_sums`` of one rectangle, in strips of rows."""
    total = np.zeros(2 * _bands(needs))
    for y in range(top, top + rows, STRIP):
        strip = (min(STRIP, top + rows - y), columns)
        total += _sums(source, linear, np.array([y]), np.array([left]), strip, needs)
    return total


def _tiles(
    source: Array, linear: Linear, indices: tuple[int, ...], across: int, tile: int, needs: Needs
) -> Array:
    total = np.zeros(2 * _bands(needs))
    for first in range(0, len(indices), BATCH):
        chosen = np.asarray(indices[first : first + BATCH])
        total += _sums(
            source, linear, chosen // across * tile, chosen % across * tile, (tile, tile), needs
        )
    return total


def _norms(totals: Array, pixels: int, needs: Needs) -> list[float]:
    """One scale's 18 norms from its maps' sums (standing for ``pixels`` in all): per
    channel, [ssim mean, ssim 4-norm, artifact mean, artifact 4-norm, detail-lost mean,
    detail-lost 4-norm], in the reference's order; 0 for a map not computed (its weights
    are 0)."""
    bands = _bands(needs)
    means = [float(t) / pixels for t in totals]
    out = [0.0] * 18
    band = 0
    for kind, channels in enumerate(needs):
        for c in channels:
            out[c * 6 + kind * 2] = means[band]
            out[c * 6 + kind * 2 + 1] = max(means[bands + band], 0.0) ** 0.25
            band += 1
    return out


@dataclass(frozen=True)
class Sample:
    """Which tiles of a scale's grid are measured: ``certain`` ones stand for themselves,
    each ``drawn`` one for ``weight`` tiles (itself and the unmeasured ones it was drawn
    from). Indices count the grid's tiles row by row."""

    certain: tuple[int, ...]
    drawn: tuple[int, ...]
    weight: float


def choose(proxy: list[float], share: float) -> Sample:
    """The tiles to measure, from each tile's ``proxy`` (how much the two images differ
    there): about ``share`` of them, half the ones that differ most (the 4-norms are made
    of a few large values: measured, not left to chance), half spread evenly over the rest,
    in reading order (every part of the image, in proportion to its area)."""
    count = len(proxy)
    wanted = min(count, max(2, round(share * count)))
    ranked = sorted(range(count), key=lambda i: (-proxy[i], i))
    certain = sorted(ranked[: wanted // 2])
    taken = set(certain)
    rest = [i for i in range(count) if i not in taken]
    drawn_count = min(len(rest), wanted - len(certain))
    if not drawn_count:
        return Sample(tuple(certain), (), 0.0)
    step = len(rest) / drawn_count
    drawn = tuple(rest[int((k + 0.5) * step)] for k in range(drawn_count))
    return Sample(tuple(certain), drawn, len(rest) / drawn_count)


CHUNK = 64  # rows of a scale's source made linear at once (even, and a multiple of TILE)


def _pass(
    source: Array, linear: Linear, tile: int | None, halve: bool
) -> tuple[list[float], Array | None]:
    """One read of a scale's pixels, a chunk of rows at a time: with ``tile``, per tile of
    the grid the mean fourth power of the pair's difference in linear RGB (``choose``'s
    proxy); with ``halve``, the next scale (a 2x2 box average in linear RGB; an odd last row
    or column repeats its edge, as the reference)."""
    height, width = source.shape[:2]
    across, down = (width // tile, height // tile) if tile else (0, 0)
    proxy = np.zeros((down, across))
    half = np.empty(((height + 1) // 2, (width + 1) // 2, 6), F32) if halve else None
    for y in range(0, height, CHUNK):
        part = linear(source[y : y + CHUNK])
        if tile and y < down * tile:
            grid = part[: down * tile - y, : across * tile]
            diff = grid[..., :3] - grid[..., 3:]
            diff *= diff
            diff *= diff
            energy = diff[..., 0] + diff[..., 1] + diff[..., 2]
            cells = np.add.reduceat(energy, np.arange(0, across * tile, tile), axis=1)
            sums = np.add.reduceat(cells, np.arange(0, energy.shape[0], tile), axis=0)
            proxy[y // tile : y // tile + sums.shape[0]] = sums / (3 * tile * tile)
        if half is not None:
            if part.shape[0] % 2:
                part = np.concatenate([part, part[-1:]])
            if part.shape[1] % 2:
                part = np.concatenate([part, part[:, -1:]], axis=1)
            box = part[0::2, 0::2] + part[1::2, 0::2]
            box += part[0::2, 1::2]
            box += part[1::2, 1::2]
            half[y // 2 : y // 2 + box.shape[0]] = box * F32(0.25)
    return proxy.ravel().tolist(), half


def _sampled(
    source: Array, linear: Linear, proxy: list[float], share: float, tile: int, needs: Needs
) -> Array:
    """A scale's sums from the chosen tiles (``choose``), the drawn ones weighed for the
    tiles they stand for, and the strips past the grid's last whole tile, whole."""
    height, width = source.shape[:2]
    across, down = width // tile, height // tile
    sample = choose(proxy, share)
    total = np.zeros(2 * _bands(needs))
    if sample.certain:
        total += _tiles(source, linear, sample.certain, across, tile, needs)
    if sample.drawn:
        total += sample.weight * _tiles(source, linear, sample.drawn, across, tile, needs)
    if width > across * tile:
        total += _region(
            source, linear, 0, across * tile, down * tile, width - across * tile, needs
        )
    if height > down * tile:
        total += _region(source, linear, down * tile, 0, height - down * tile, width, needs)
    return total


def scale_count(width: int, height: int) -> int:
    """How many scales the reference measures an image of this size at."""
    if width < MIN_SIDE or height < MIN_SIDE:
        return 0
    scales = 1  # the size is checked before each halving, as the reference does
    while scales < SCALES and width >= MIN_SIDE and height >= MIN_SIDE:
        scales += 1
        width, height = (width + 1) // 2, (height + 1) // 2
    return scales


def _score(source: Array, linear: Linear, share: float = 1.0) -> float:
    height, width = source.shape[:2]
    scales = scale_count(width, height)
    per_scale: list[list[float]] = []
    for scale in range(scales):
        height, width = source.shape[:2]
        tile = TILE >> scale
        sampled = scale < SAMPLED_SCALES and share < 1.0 and min(width, height) >= 4 * tile
        proxy, half = _pass(source, linear, tile if sampled else None, scale + 1 < scales)
        needs = _needs(scale, scales)
        if sampled:
            totals = _sampled(source, linear, proxy, share, tile, needs)
        else:
            totals = _region(source, linear, 0, 0, height, width, needs)
        per_scale.append(_norms(totals, width * height, needs))
        if half is not None:
            # (the reference checks the size before halving, so its last scale may be smaller)
            source, linear = half, _as_is
    return _final(per_scale)


def _final(per_scale: list[list[float]]) -> float:
    """The weighted sum in the reference's order (channel, scale, norm, map) and its curve.
    With fewer than six scales the reference walks the weights on regardless, and so does
    this."""
    total, i = 0.0, 0
    for c in range(3):
        for norms in per_scale:
            for n in range(2):
                for kind in range(3):
                    total += WEIGHTS[i] * abs(norms[c * 6 + kind * 2 + n])
                    i += 1
    total *= 0.9562382616834844
    total = (
        2.326765642916932 * total
        - 0.020884521182843837 * total**2
        + 6.248496625763138e-05 * total**3
    )
    if total <= 0:
        return 100.0
    return 100.0 - 10.0 * math.pow(total, 0.6276336467831387)
