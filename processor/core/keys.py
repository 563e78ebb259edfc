"""Names: image ids, their index shards and rendition keys. Pure functions, shared by every side."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import quote, unquote

from processor.core.encoders import ENCODERS

# Rendition formats -> file extension and Content-Type, from the encoder table.
EXTENSIONS = {name: e.extension for name, e in ENCODERS.items()}
CONTENT_TYPES = {name: e.content_type for name, e in ENCODERS.items()}


ID_LENGTH = 26  # characters of an image id


def image_id(bucket: str, key: str) -> str:
    """Stable, URL-safe id for one source object: the same key always maps to one record.

    26 lowercase base32 characters (128 bits of sha256): safe in URLs, S3 keys and file names
    on case-insensitive file systems.
    """
    digest = hashlib.sha256(f"{bucket}\x00{key}".encode()).digest()[:16]
    return base64.b32encode(digest).decode("ascii").rstrip("=").lower()


# S3 user metadata that names an upload's uploader (the subject of the JWT that asked for its
# URL): the API writes it into the presigned POST's policy or the multipart upload, the
# processor copies it onto the record at first sight. Percent-encoded, since S3 sends user
# metadata as HTTP headers (ASCII only) and a token's subject may be any string.
UPLOADER_METADATA = "uploader"


def encode_uploader(subject: str) -> str:
    return quote(subject, safe="")


def decode_uploader(value: str | None) -> str | None:
    return unquote(value) if value else None


# Partition-key values per image index (IMGPIPE_LIST_SHARDS, the template's ListShards).
# Raising it is safe (items written before stay in the low shards, which are still read);
# lowering it hides the items in the dropped shards until they are rewritten.
DEFAULT_SHARDS = 32
MAX_SHARDS = 64


def shard_of(image_id: str, shards: int) -> int:
    """The index shard of an image: stable across processes and releases (not hash())."""
    digest = hashlib.sha256(image_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards


def content_version(sha256_hex: str, config_version: str) -> str:
    """Changes whenever the source bytes or the rendition config change: CDN-safe keys."""
    return hashlib.sha256(f"{sha256_hex}:{config_version}".encode()).hexdigest()[:10]


def rendition_key(folder: str, image_id: str, fmt: str, version: str | None = None) -> str:
    """``thumbs/<id>.jpg``, or ``thumbs/<id>-<version>.jpg`` when versioned (S3 pipeline)."""
    suffix = f"-{version}" if version else ""
    return f"{rendition_prefix(folder, image_id)}{suffix}.{EXTENSIONS[fmt]}"


def rendition_prefix(folder: str, image_id: str) -> str:
    """The start of every rendition key of one image in one folder, every content version
    included: ids have a fixed length, so no other image's keys start with it."""
    return f"{folder}/{image_id}"


def rendition_folder(key: str) -> str | None:
    """The folder of a rendition key (``thumbs`` for ``thumbs/<id>-<version>.jpg``)."""
    folder, slash, _ = key.rpartition("/")
    return folder if slash else None
