"""Pure helpers for image metadata: ICC descriptions, EXIF dates, colour, placeholder.

No libvips: the executor hands in bytes and small pixel buffers.
"""

from __future__ import annotations

import math
import struct

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
