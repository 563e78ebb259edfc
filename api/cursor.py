"""Opaque, tamper-proof pagination cursors.

A cursor carries the store's own position (all strings): for DynamoDB, one boundary sort key and
the index shards already at their end, which is every shard's position in a merged listing
(processor/aws/dynamo.py), so a page costs one Query per live shard. Its size does not grow
with the data: under 200 characters at the most shards. It is signed with HMAC-SHA256 over the
position *and* the listing it belongs to (e.g. the status filter), so a forged cursor, or one
from another listing or another deployment, is refused instead of being handed to the store.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json

from processor.core.errors import InvalidCursor

# 128 bits of HMAC-SHA256: forging one is out of reach, and cursors stay short in URLs.
MAC_BYTES = 16
MAX_TOKEN_CHARS = 2048
MAX_FIELDS = 8


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorSigner:
    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("a cursor key needs at least 16 bytes")
        self._key = key

    def _mac(self, context: str, payload: bytes) -> bytes:
        message = context.encode() + b"\x00" + payload
        return hmac.new(self._key, message, hashlib.sha256).digest()[:MAC_BYTES]

    def encode(self, position: dict[str, str], *, context: str) -> str:
        payload = json.dumps(position, sort_keys=True, separators=(",", ":")).encode()
        return f"{_b64e(payload)}.{_b64e(self._mac(context, payload))}"

    def decode(self, token: str, *, context: str) -> dict[str, str]:
        """The position inside ``token``; InvalidCursor for anything this API did not sign."""
        if len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
            raise InvalidCursor("malformed cursor")
        body, mac = token.split(".")
        try:
            payload, given = _b64d(body), _b64d(mac)
        except (binascii.Error, ValueError) as e:
            raise InvalidCursor("malformed cursor") from e
        # Constant-time compare: the MAC must not be guessable byte by byte from timings.
        if not hmac.compare_digest(given, self._mac(context, payload)):
            raise InvalidCursor("cursor signature does not match this listing")
        try:
            position = json.loads(payload)
        except ValueError as e:  # only reachable with a leaked key; still never a crash
            raise InvalidCursor("malformed cursor") from e
        if (
            not isinstance(position, dict)
            or not 0 < len(position) <= MAX_FIELDS
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in position.items())
        ):
            raise InvalidCursor("malformed cursor")
        return position
