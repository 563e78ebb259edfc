"""Pure helpers for image metadata: ICC descriptions, EXIF dates, colour, placeholder.

No libvips: the executor hands in bytes and small pixel buffers.
"""

from __future__ import annotations

import math
import struct
from typing import Any

# --- ICC ----------------------------------------------------------------------------------


def icc_description(profile: bytes) -> str | None:
    """The profile's 'desc' tag (ICC v2 'desc' or v4 'mluc'), or None when absent or broken."""
    try:
        (count,) = struct.unpack_from(">I", profile, 128)
        for i in range(min(count, 256)):
            sig, offset, size = struct.unpack_from(">4sII", profile, 132 + 12 * i)
            if sig != b"desc":
                continue
            tag = profile[offset : offset + size]
            kind = tag[:4]
            if kind == b"desc":
                (n,) = struct.unpack_from(">I", tag, 8)
                text = tag[12 : 12 + n].split(b"\x00", 1)[0].decode("latin-1")
                return text.strip() or None
            if kind == b"mluc":
                records, _rec_size = struct.unpack_from(">II", tag, 8)
                if records < 1:
                    return None
                length, start = struct.unpack_from(">II", tag, 16 + 4)
                text = tag[start : start + length].decode("utf-16-be", errors="replace")
                return text.strip("\x00 ").strip() or None
            return None
    except (struct.error, UnicodeDecodeError):
        return None
    return None


# --- EXIF ---------------------------------------------------------------------------------


def exif_datetime(value: str | None) -> str | None:
    """'2019:06:01 12:30:00 (…)' as libvips reports it -> '2019-06-01T12:30:00'."""
    if not value:
        return None
    raw = value.split(" (", 1)[0].strip()
    parts = raw.replace("-", ":").replace("T", " ").split(" ")
    if len(parts) != 2:
        return None
    date, time = parts
    d = date.split(":")
    t = time.split(":")
    if len(d) != 3 or len(t) < 2 or not all(x.isdigit() for x in d + t[:3]):
        return None
    if d[0] == "0000":
        return None  # cameras write zeros when the clock was never set
    seconds = t[2] if len(t) > 2 else "00"
    return f"{d[0]}-{d[1]}-{d[2]}T{t[0]}:{t[1]}:{seconds}"


# --- colour and placeholder ------------------------------------------------------------------


def dominant_color(rgb: bytes) -> str:
    """Most populous colour of packed 8-bit RGB pixels, as '#rrggbb'.

    Pixels fall into 4096 bins (4 bits a channel); the fullest bin's mean is the answer, so a
    photo's large flat area wins over its average (which is usually a muddy grey).
    """
    counts: dict[int, list[int]] = {}
    for i in range(0, len(rgb) - 2, 3):
        r, g, b = rgb[i], rgb[i + 1], rgb[i + 2]
        key = (r >> 4) << 8 | (g >> 4) << 4 | (b >> 4)
        acc = counts.get(key)
        if acc is None:
            counts[key] = [1, r, g, b]
        else:
            acc[0] += 1
            acc[1] += r
            acc[2] += g
            acc[3] += b
    if not counts:
        return "#ffffff"
    n, r, g, b = max(counts.values(), key=lambda a: a[0])
    return f"#{round(r / n):02x}{round(g / n):02x}{round(b / n):02x}"


_B83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"


def _b83(value: int, length: int) -> str:
    return "".join(_B83[(value // 83 ** (length - i - 1)) % 83] for i in range(length))


def _srgb_to_linear(v: int) -> float:
    x = v / 255.0
    return x / 12.92 if x <= 0.04045 else ((x + 0.055) / 1.055) ** 2.4


# sRGB byte -> linear light, looked up instead of computed per pixel.
_LINEAR = tuple(_srgb_to_linear(v) for v in range(256))


def _to_srgb(v: float) -> int:
    x = max(0.0, min(1.0, v))
    s = x * 12.92 if x <= 0.0031308 else 1.055 * x ** (1 / 2.4) - 0.055
    return round(s * 255)


def _sign_pow(v: float, exp: float) -> float:
    return math.copysign(abs(v) ** exp, v)


def blurhash(rgb: bytes, width: int, height: int, x_comp: int = 4, y_comp: int = 3) -> str:
    """BlurHash (https://blurha.sh) of packed 8-bit RGB pixels; keep the input small (<=32px).

    The DCT is done separably (rows, then columns), so a 32x32 input costs ~10k operations.
    """
    lin = [_LINEAR[v] for v in rgb]
    cos_x = [[math.cos(math.pi * i * x / width) for x in range(width)] for i in range(x_comp)]
    cos_y = [[math.cos(math.pi * j * y / height) for y in range(height)] for j in range(y_comp)]
    # rows[y][i] = per channel sum over x of cos_x[i][x] * pixel(x, y)
    rows: list[list[tuple[float, float, float]]] = []
    for y in range(height):
        base = y * width * 3
        row = []
        for i in range(x_comp):
            cx = cos_x[i]
            r = g = b = 0.0
            for x in range(width):
                c = cx[x]
                p = base + 3 * x
                r += c * lin[p]
                g += c * lin[p + 1]
                b += c * lin[p + 2]
            row.append((r, g, b))
        rows.append(row)
    factors: list[tuple[float, float, float]] = []
    for j in range(y_comp):
        for i in range(x_comp):
            norm = (1 if i == 0 and j == 0 else 2) / (width * height)
            r = g = b = 0.0
            for y in range(height):
                c = cos_y[j][y]
                rr, gg, bb = rows[y][i]
                r += c * rr
                g += c * gg
                b += c * bb
            factors.append((r * norm, g * norm, b * norm))

    dc, ac = factors[0], factors[1:]
    out = _b83((x_comp - 1) + (y_comp - 1) * 9, 1)
    if ac:
        actual_max = max(abs(v) for f in ac for v in f)
        quant_max = max(0, min(82, math.floor(actual_max * 166 - 0.5)))
        max_value = (quant_max + 1) / 166
        out += _b83(quant_max, 1)
    else:
        max_value = 1.0
        out += _b83(0, 1)
    out += _b83((_to_srgb(dc[0]) << 16) + (_to_srgb(dc[1]) << 8) + _to_srgb(dc[2]), 4)
    for f in ac:
        q = [max(0, min(18, math.floor(_sign_pow(v / max_value, 0.5) * 9 + 9.5))) for v in f]
        out += _b83(q[0] * 19 * 19 + q[1] * 19 + q[2], 2)
    return out


# --- nclx colour (HEIF's coded colour description, instead of an ICC profile) ---------------

# ITU-T H.273 colour_primaries codes whose primaries and white are sRGB's (BT.709), or unset.
_SRGB_PRIMARIES = {1, 2}
_SRGB_XY = ((0.64, 0.33), (0.30, 0.60), (0.15, 0.06), (0.3127, 0.3290))
_D65 = (0.3127, 0.3290)
# ITU-T H.273 colour primaries code points: (red, green, blue, white) chromaticities.
PRIMARIES_XY = {
    1: _SRGB_XY,  # BT.709
    5: ((0.64, 0.33), (0.29, 0.60), (0.15, 0.06), _D65),  # BT.601 625
    6: ((0.630, 0.340), (0.310, 0.595), (0.155, 0.070), _D65),  # BT.601 525
    9: ((0.708, 0.292), (0.170, 0.797), (0.131, 0.046), _D65),  # BT.2020
    11: ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060), (0.314, 0.351)),  # DCI P3
    12: ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060), _D65),  # Display P3
}
# Bradford cone response, for adapting a non-D65 white (DCI P3) to sRGB's D65.
_BRADFORD = ((0.8951, 0.2664, -0.1614), (-0.7502, 1.7135, 0.0367), (0.0389, -0.0685, 1.0296))

Matrix = tuple[tuple[float, float, float], tuple[float, float, float], tuple[float, float, float]]


def _mul(a: Matrix, b: Matrix) -> Matrix:
    rows = [tuple(sum(a[i][k] * b[k][j] for k in range(3)) for j in range(3)) for i in range(3)]
    return (rows[0], rows[1], rows[2])  # type: ignore[return-value]


def _inv(m: Matrix) -> Matrix:
    (a, b, c), (d, e, f), (g, h, i) = m
    det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)
    adj = (
        (e * i - f * h, c * h - b * i, b * f - c * e),
        (f * g - d * i, a * i - c * g, c * d - a * f),
        (d * h - e * g, b * g - a * h, a * e - b * d),
    )
    rows = [tuple(v / det for v in row) for row in adj]
    return (rows[0], rows[1], rows[2])  # type: ignore[return-value]


def _xyz(x: float, y: float) -> tuple[float, float, float]:
    return (x / y, 1.0, (1 - x - y) / y)


def _rgb_to_xyz(xy: tuple[tuple[float, float], ...]) -> Matrix:
    """RGB -> XYZ for primaries r, g, b and white w, as (x, y) chromaticities."""
    r, g, b = (_xyz(*p) for p in xy[:3])
    white = _xyz(*xy[3])
    m: Matrix = ((r[0], g[0], b[0]), (r[1], g[1], b[1]), (r[2], g[2], b[2]))
    s = [sum(_inv(m)[i][k] * white[k] for k in range(3)) for i in range(3)]
    rows = [tuple(m[i][j] * s[j] for j in range(3)) for i in range(3)]
    return (rows[0], rows[1], rows[2])  # type: ignore[return-value]


def _diag(v: tuple[float, ...]) -> Matrix:
    return ((v[0], 0.0, 0.0), (0.0, v[1], 0.0), (0.0, 0.0, v[2]))


def nclx_to_srgb_matrix(nclx: dict[str, Any] | None) -> Matrix | None:
    """Linear-light RGB matrix from an nclx profile's primaries to sRGB's, or None when the
    primaries are sRGB's already (or unset). Display P3, BT.2020 and DCI P3 all come here.

    The transfer curve is taken to be sRGB's (exact for Display P3, close for BT.709/2020 SDR).
    """
    if not nclx or nclx.get("color_primaries", 2) in _SRGB_PRIMARIES:
        return None
    if "color_primary_red_x" not in nclx and nclx.get("color_primaries") in PRIMARIES_XY:
        # Only the code point (read from the box): its chromaticities from ITU-T H.273.
        table = PRIMARIES_XY[nclx["color_primaries"]]
        nclx = {
            f"color_primary_{c}_{axis}": table[i][j]
            for i, c in enumerate(("red", "green", "blue", "white"))
            for j, axis in enumerate(("x", "y"))
        }
    try:
        xy = tuple(
            (float(nclx[f"color_primary_{c}_x"]), float(nclx[f"color_primary_{c}_y"]))
            for c in ("red", "green", "blue", "white")
        )
    except (KeyError, TypeError, ValueError):
        return None
    if any(y <= 0 for _, y in xy):
        return None
    src = _rgb_to_xyz(xy)
    dst = _rgb_to_xyz(_SRGB_XY)
    if max(abs(a - b) for a, b in zip(xy[3], _SRGB_XY[3], strict=True)) > 1e-3:
        # Bradford: scale the cone responses of the source white to those of D65.
        ws, wd = _xyz(*xy[3]), _xyz(*_SRGB_XY[3])
        cs = [sum(_BRADFORD[i][k] * ws[k] for k in range(3)) for i in range(3)]
        cd = [sum(_BRADFORD[i][k] * wd[k] for k in range(3)) for i in range(3)]
        adapt = _mul(
            _inv(_BRADFORD),
            _mul(_diag(tuple(d / s for d, s in zip(cd, cs, strict=True))), _BRADFORD),
        )
        src = _mul(adapt, src)
    return _mul(_inv(dst), src)
