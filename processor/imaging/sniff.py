"""Step 2, sniff: the format from the first bytes, never from a name or a Content-Type."""

from __future__ import annotations

from processor.core.errors import EmptyImage, UnsupportedFormat
from processor.core.formats import BY_NAME, accepted_labels, not_decodable
from processor.core.sniff import describe_unknown, detect_format
from processor.imaging.spool import Spooled


def sniff(spooled: Spooled) -> str:
    if spooled.size == 0:
        raise EmptyImage("the upload is empty (0 bytes)")
    fmt = detect_format(spooled.head)
    if fmt is None:
        raise UnsupportedFormat(
            f"{describe_unknown(spooled.head)} is not an accepted upload format; "
            f"send {accepted_labels()}"
        )
    if not BY_NAME[fmt].decodes:
        raise UnsupportedFormat(not_decodable(BY_NAME[fmt]))
    return fmt
