"""libvips' error text turned into a message about one upload: pure, no libvips.

libvips keeps one error buffer for the whole process. With images in threads (`imgpipe
process --jobs 2`, the processor overlapping images), a failure's buffer can also hold lines
another image wrote (its file name, or a decoder warning that never became an exception).
So a message keeps only the lines that are this upload's: lines naming its own file (with the
name removed), or lines from its own loader's error domains (processor/core/formats.py), and
drops every line naming any other file. Repeats go, and the result is cut at a word.
"""

from __future__ import annotations

import re

MAX_DETAIL = 240
# Absolute paths as libvips prints them (temp files, the CLI's inputs), quoted or not.
_PATH = re.compile(r"\"?(?:/[^\s\"':]+)+\"?")
# Source/connection chatter that says nothing about the image ("bad seek to 1024").
_NOISE = re.compile(r"^(?:bad seek to \d+|unable to call \S+|read error)$", re.IGNORECASE)


def _domain(line: str) -> str:
    head, sep, _ = line.partition(": ")
    return head if sep and " " not in head else ""


def clip(text: str, limit: int = MAX_DETAIL) -> str:
    """At most ``limit`` characters, cut at a word boundary, never inside a word."""
    if len(text) <= limit:
        return text
    cut = text[: limit + 1].rsplit(" ", 1)[0].rstrip(" ,;:")
    return f"{cut} …"


def vips_detail(buffer: str, own_path: str, domains: tuple[str, ...]) -> str:
    """The useful, path-free detail of ``buffer`` about the upload at ``own_path``."""
    kept: list[str] = []
    seen: set[str] = set()
    for raw in buffer.splitlines():
        line = " ".join(raw.split())
        if not line:
            continue
        mine = bool(own_path) and own_path in line
        line = line.replace(f'"{own_path}"', "").replace(own_path, "") if mine else line
        if _PATH.search(line):
            continue  # names some other file: another image's line
        domain = _domain(line)
        if not mine and domain not in domains:
            continue
        # "heif: Error while loading plugin: X" -> "Error while loading plugin: X"
        text = line[len(domain) + 2 :] if domain else line
        text = text.strip(" :").rstrip(".")
        if text.startswith(": "):
            text = text[2:]
        if not text or _NOISE.match(text) or text.lower() in seen:
            continue
        seen.add(text.lower())
        kept.append(text)
    return clip("; ".join(kept))
