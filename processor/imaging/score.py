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

Everything is libvips operations on float images, both images of the pair held side by side
in one 6-band image, computed one scale at a time; the only Python loop is the 108-term sum.
The blur is one separable convolution with the impulse response of the reference's recursive
Gaussian. The reference runs that filter in float32 as a recursion whose poles sit on the unit
circle, and its rounding noise grows along long flat rows: there it reads lower than this port
(docs/engine.md, Scores).

A large rendition may be sampled: its two finest scales (about 94% of the work) measured on
a share of their tiles, each tile cut from the lazy whole-image pipeline so that its values
are the whole image's (``choose``, ``_sampled``; the step's ``Scoring.sample_above`` and
``sample_share``). Maps and blurred planes whose weights are all zero are never computed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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
    ref, ref_alpha = _unit(reference)
    dist, dist_alpha = _unit(distorted)
    if ref_alpha is None:
        # As the reference: only the original's alpha decides; a distorted alpha is blended
        # onto the middle grey it uses for an opaque original.
        return _score(_blend(ref, ref_alpha, 0.5), _blend(dist, dist_alpha, 0.5), share)
    return min(
        _score(_blend(ref, ref_alpha, bg), _blend(dist, dist_alpha, bg), share)
        for bg in ALPHA_BACKGROUNDS
    )


def _unit(image: pyvips.Image) -> tuple[pyvips.Image, pyvips.Image | None]:
    """Colour (three bands, still sRGB-encoded: 8-bit as it is, else 0..1) and alpha (0..1,
    or None)."""
    peak = 65535.0 if image.format == "ushort" else 255.0
    alpha = None
    if image.hasalpha():
        alpha = image.extract_band(image.bands - 1).cast("float") / peak
        image = image.extract_band(0, n=image.bands - 1)
    if image.bands == 1:
        image = image.bandjoin([image, image])
    if image.format != "uchar" or alpha is not None:
        image = image.cast("float") / peak
    return image, alpha


def _blend(colour: pyvips.Image, alpha: pyvips.Image | None, bg: float) -> pyvips.Image:
    # The reference blends the encoded (not linear) values.
    if alpha is None:
        return colour
    if colour.format == "uchar":
        colour = colour / 255.0
    return colour * alpha + (1.0 - alpha) * bg


def _linear(srgb: pyvips.Image) -> pyvips.Image:
    """The sRGB transfer function, undone: through a 256-entry table for 8-bit values (a pow
    per pixel costs more than the rest of a scale's colour conversion)."""
    if srgb.format == "uchar":
        return srgb.maplut(_eotf(pyvips.Image.identity() / 255.0))
    return _eotf(srgb)


def _eotf(v: pyvips.Image) -> pyvips.Image:
    return (v <= 0.04045).ifthenelse(v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def _block(matrix: list[list[float]]) -> list[list[float]]:
    """The 3x3 matrix applied to both images of a pair held as one 6-band image."""
    zero = [0.0, 0.0, 0.0]
    return [row + zero for row in matrix] + [zero + row for row in matrix]


_M6 = _block(_M)
_POSITIVE_XYB6 = _block(_POSITIVE_XYB)


def _xyb(linear: pyvips.Image) -> pyvips.Image:
    """Linear RGB to positive XYB, for both images at once (6 bands)."""
    mixed = linear.recomb(_M6) + _BIAS
    mixed = (mixed < 0).ifthenelse(0.0, mixed)
    return (mixed ** (1 / 3)).recomb(_POSITIVE_XYB6) + _POSITIVE_OFFSET * 2


def _half(linear: pyvips.Image) -> pyvips.Image:
    """2x2 box average; an odd last row or column repeats its edge, as the reference."""
    width, height = linear.width + linear.width % 2, linear.height + linear.height % 2
    if (width, height) != (linear.width, linear.height):
        linear = linear.embed(0, 0, width, height, extend="copy")
    return linear.shrink(2, 2)


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


_KERNEL = _kernel(SIGMA)
_PAD = len(_KERNEL) // 2


def _blur(image: pyvips.Image) -> pyvips.Image:
    # The reference's recursive Gaussian reads zeros outside the image; libvips' convolution
    # repeats the edge, so the image is framed in zeros first.
    framed = image.embed(
        _PAD, _PAD, image.width + 2 * _PAD, image.height + 2 * _PAD, extend="black"
    )
    mask = pyvips.Image.new_from_list([_KERNEL], scale=1.0)
    blurred = framed.convsep(mask, precision="float")
    return blurred.crop(_PAD, _PAD, image.width, image.height)


def _positive(image: pyvips.Image) -> pyvips.Image:
    return (image > 0).ifthenelse(image, 0.0)


Needs = tuple[tuple[int, ...], ...]


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


def _maps(xyb: pyvips.Image, needs: Needs) -> pyvips.Image:
    """One scale's weighed maps, from both images' XYB (6 bands), as bands in the order of
    ``needs``: SSIM for its channels, then artifact, then detail lost."""
    ssim_c, art_c, detail_c = needs
    edge_c = sorted(set(art_c) | set(detail_c))
    img1, img2 = xyb.extract_band(0, n=3), xyb.extract_band(3, n=3)
    planes = [xyb]  # mu1 (3), mu2 (3), then s11, s22, s12 of the SSIM channels
    if ssim_c:
        one, two = _bands(img1, ssim_c), _bands(img2, ssim_c)
        planes += [one * one, two * two, one * two]
    blurred = _blur(planes[0].bandjoin(planes[1:]) if len(planes) > 1 else planes[0])
    mu1, mu2 = blurred.extract_band(0, n=3), blurred.extract_band(3, n=3)
    maps = []
    if ssim_c:
        k = len(ssim_c)
        s11, s22, s12 = (blurred.extract_band(6 + k * i, n=k) for i in range(3))
        m1, m2 = _bands(mu1, ssim_c), _bands(mu2, ssim_c)
        num_m = 1.0 - (m1 - m2) * (m1 - m2)
        num_s = 2.0 * (s12 - m1 * m2) + C2
        denom_s = (s11 - m1 * m1) + (s22 - m2 * m2) + C2
        maps.append(_positive(1.0 - num_m * num_s / denom_s))
    if edge_c:
        e1, e2 = _bands(img1 - mu1, edge_c), _bands(img2 - mu2, edge_c)
        d1 = (1.0 + e2.abs()) / (1.0 + e1.abs()) - 1.0
        if art_c:
            maps.append(_bands(_positive(d1), [edge_c.index(c) for c in art_c]))
        if detail_c:
            maps.append(_bands(_positive(-1.0 * d1), [edge_c.index(c) for c in detail_c]))
    return maps[0].bandjoin(maps[1:]) if len(maps) > 1 else maps[0]


def _bands(image: pyvips.Image, bands: tuple[int, ...] | list[int]) -> pyvips.Image:
    """The listed bands, in order (the image itself when that is all of them)."""
    if list(bands) == list(range(image.bands)):
        return image
    if len(bands) == 1:
        return image.extract_band(bands[0])
    if list(bands) == list(range(bands[0], bands[0] + len(bands))):
        return image.extract_band(bands[0], n=len(bands))
    return image.extract_band(bands[0]).bandjoin([image.extract_band(b) for b in bands[1:]])


# Images of map values, each with how many pixels each of its pixels stands for.
Parts = list[tuple[pyvips.Image, float]]


def _norms(parts: Parts, pixels: int, needs: Needs) -> list[float]:
    """One scale's 18 norms from its maps (``parts``, standing for ``pixels`` in all): per
    channel, [ssim mean, ssim 4-norm, artifact mean, artifact 4-norm, detail-lost mean,
    detail-lost 4-norm], in the reference's order; 0 for a map not computed (its weights
    are 0)."""
    bands = sum(len(c) for c in needs)
    totals = [0.0] * (2 * bands)
    for maps, weight in parts:
        squares = maps * maps  # multiplications: libvips' pow is far slower
        stats = maps.bandjoin(squares * squares).stats()  # row 1 + band, column 2: the sum
        sums = [row[2] for row in stats.crop(0, 1, stats.width, 2 * bands).tolist()]
        totals = [t + weight * v for t, v in zip(totals, sums, strict=True)]
    means = [t / pixels for t in totals]
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


def _proxy(linear: pyvips.Image, tile: int, across: int, down: int) -> list[float]:
    """Per tile of the grid, the mean fourth power of the pair's difference in linear RGB."""
    diff = linear.extract_band(0, n=3) - linear.extract_band(3, n=3)
    squared = diff * diff
    energy = (squared * squared).bandmean()
    means = energy.crop(0, 0, across * tile, down * tile).shrink(tile, tile)
    return [v for row in means.tolist() for v in row]


def _sampled(maps: pyvips.Image, linear: pyvips.Image, share: float, tile: int) -> Parts:
    """The parts of the scale's maps to measure: the chosen tiles (``choose``), joined into
    one image per weight, and the strips past the grid's last whole tile, whole. ``maps`` is
    the lazy pipeline of the whole scale: libvips computes each tile from its real
    neighbours (the blur's margin included, zeros past the image's edge as for the whole),
    so every measured value is the whole image's, and only the sampling error remains.
    (Cutting the tiles with their margins into one mosaic first and running one pipeline on
    it gives the same values for about 8% less CPU, but held about 100 MB more at 2048 px.)"""
    across, down = maps.width // tile, maps.height // tile
    sample = choose(_proxy(linear, tile, across, down), share)
    parts: Parts = []
    for indices, weight in ((sample.certain, 1.0), (sample.drawn, sample.weight)):
        if indices:
            tiles = [maps.crop(i % across * tile, i // across * tile, tile, tile) for i in indices]
            side = math.ceil(math.sqrt(len(tiles)))
            parts.append((pyvips.Image.arrayjoin(tiles, across=side), weight))
    if maps.width > across * tile:
        right = maps.width - across * tile
        parts.append((maps.crop(across * tile, 0, right, down * tile), 1.0))
    if maps.height > down * tile:
        parts.append((maps.crop(0, down * tile, maps.width, maps.height - down * tile), 1.0))
    return parts


def scale_count(width: int, height: int) -> int:
    """How many scales the reference measures an image of this size at."""
    if width < MIN_SIDE or height < MIN_SIDE:
        return 0
    scales = 1  # the size is checked before each halving, as the reference does
    while scales < SCALES and width >= MIN_SIDE and height >= MIN_SIDE:
        scales += 1
        width, height = (width + 1) // 2, (height + 1) // 2
    return scales


def _score(ref_srgb: pyvips.Image, dist_srgb: pyvips.Image, share: float = 1.0) -> float:
    # Both images side by side in the bands, so each step is one operation for the pair.
    if ref_srgb.format != dist_srgb.format:  # one blended onto a grey: both 0..1 floats
        ref_srgb, dist_srgb = (
            i.cast("float") / 255.0 if i.format == "uchar" else i for i in (ref_srgb, dist_srgb)
        )
    linear = _linear(ref_srgb.bandjoin(dist_srgb))
    scales = scale_count(linear.width, linear.height)
    per_scale: list[list[float]] = []
    for scale in range(scales):
        if scale == 1:
            # Held once: every coarser scale is halved from it, instead of each re-reading
            # the full-size pixels (a quarter of the full size's floats).
            linear = _half(linear).copy_memory()
        elif scale:
            # The reference checks the size before halving, so its last scale may be smaller.
            linear = _half(linear)
        needs = _needs(scale, scales)
        maps = _maps(_xyb(linear), needs)
        tile = TILE >> scale
        parts: Parts = [(maps, 1.0)]
        if scale < SAMPLED_SCALES and share < 1.0 and min(linear.width, linear.height) >= 4 * tile:
            parts = _sampled(maps, linear, share, tile)
        per_scale.append(_norms(parts, linear.width * linear.height, needs))
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
