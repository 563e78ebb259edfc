"""The public view of an image: what the API returns for it and what a completion event
carries in its ``detail``. One definition, built from the stored record (record.py), so the
API's schema and the events cannot differ. Pure: pydantic only, no web framework.

Every image carries what a page needs to show it without layout shift: intrinsic (oriented)
width and height, a `srcset` per format, a `src` fallback, the dominant colour and a BlurHash
placeholder, all with absolute URLs under the configured CDN base.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from processor.core.encoders import SERVED_FIRST
from processor.core.record import ImageRecord, RenditionInfo, Status
from processor.core.sizes import OnDemandConfig, Size, on_demand_formats, widths_for

# Formats a browser can show without a <source type> guard, best fallback first.
FALLBACK_FORMATS = ("jpeg", "png")
IMAGE_ID_PATTERN = r"^[a-z2-7]{26}$"

EXAMPLE_ID = "kz2y6v3k4qj7m2xq5w3ggz6d4e"
EXAMPLE_CDN = "https://d111111abcdef8.cloudfront.net"


class RenditionPublic(BaseModel):
    name: str = Field(description="rendition name in the config, e.g. thumb")
    format: str = Field(description="jpeg, png, webp or avif")
    content_type: str
    width: int = Field(description="pixels")
    height: int = Field(description="pixels")
    bytes: int
    url: str = Field(description="absolute URL on the CDN")
    animated: bool = Field(
        False, description="the file is an animation (an animated upload's WebP); false: a still"
    )
    on_demand: bool = Field(
        False, description="made on its first request (docs/sizes.md), not at upload"
    )
    score: float | None = Field(
        None,
        description="SSIMULACRA2 of the file's decoded pixels against the pixels it was encoded "
        "from: 100 identical, about 90 indistinguishable at 1:1, 70 high quality, 50 medium; "
        "null when not scored (scoring turned off in the config; an animated file; too little time "
        "or memory left in the image's budget)",
    )
    quality: int | None = Field(
        None,
        description="the encoder quality setting searched for this image (a rendition with "
        "auto quality); null: the configured or calibrated setting",
    )


class StillReasonPublic(BaseModel):
    code: str = Field(description="turned_off, too_many_pixels, too_long or too_costly")
    message: str


class ErrorPublic(BaseModel):
    code: str = Field(description="stable code, e.g. unsupported_format")
    message: str


class ImagePublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": EXAMPLE_ID,
                    "status": "done",
                    "source_key": "raw/3f1c0e8a9b7d4c2e8f6a5b4c3d2e1f00/cat.jpg",
                    "width": 4032,
                    "height": 3024,
                    "format": "jpeg",
                    "bytes": 3145728,
                    "frames": 1,
                    "animated": False,
                    "duration_ms": None,
                    "loop": None,
                    "still_reason": None,
                    "dominant_color": "#8a7f72",
                    "placeholder": "LEHV6nWB2yk8pyo0adR*.7kCMdnj",
                    "created_at": "2024-05-01T12:00:00Z",
                    "updated_at": "2024-05-01T12:00:02Z",
                    "error": None,
                    "tries": 1,
                    "renditions": [
                        {
                            "name": "thumb",
                            "format": "webp",
                            "content_type": "image/webp",
                            "width": 320,
                            "height": 240,
                            "bytes": 14200,
                            "url": f"{EXAMPLE_CDN}/thumbs/{EXAMPLE_ID}-1a2b3c4d5e.webp",
                            "animated": False,
                            "score": 78.4,
                        }
                    ],
                    "srcset": {
                        "webp": f"{EXAMPLE_CDN}/thumbs/{EXAMPLE_ID}-1a2b3c4d5e.webp 320w, "
                        f"{EXAMPLE_CDN}/optimized/{EXAMPLE_ID}-1a2b3c4d5e.webp 2048w",
                        "jpeg": f"{EXAMPLE_CDN}/thumbs/{EXAMPLE_ID}-1a2b3c4d5e.jpg 320w, "
                        f"{EXAMPLE_CDN}/optimized/{EXAMPLE_ID}-1a2b3c4d5e.jpg 2048w",
                    },
                    "src": f"{EXAMPLE_CDN}/optimized/{EXAMPLE_ID}-1a2b3c4d5e.jpg",
                }
            ]
        }
    )

    id: str
    status: Status
    source_key: str | None = Field(
        None,
        description="key of the uploaded original in the bucket (write authorisation only)",
    )
    uploader: str | None = Field(
        None,
        description="subject of the token that uploaded it; none for uploads with the key or "
        "straight to S3 (write authorisation only)",
    )
    width: int | None = Field(None, description="intrinsic width after EXIF orientation, pixels")
    height: int | None = Field(None, description="intrinsic height after EXIF orientation, pixels")
    format: str | None = Field(None, description="format of the original: jpeg, png, webp, ...")
    bytes: int | None = Field(None, description="size of the original")
    frames: int | None = Field(None, description="frames (or pages) of the original")
    animated: bool = Field(
        False, description="the original is an animation (GIF, WebP, APNG, AVIF sequence)"
    )
    duration_ms: int | None = Field(
        None, description="one loop of the animation, each delay as browsers play it"
    )
    loop: int | None = Field(None, description="plays of the animation, 0 = forever")
    still_reason: StillReasonPublic | None = Field(
        None, description="why an animated original got only still renditions"
    )
    dominant_color: str | None = Field(None, description="#rrggbb, for a background while loading")
    placeholder: str | None = Field(None, description="BlurHash of the image")
    created_at: str = Field(description="ISO 8601 UTC")
    updated_at: str = Field(description="ISO 8601 UTC")
    error: ErrorPublic | None = Field(
        None, description="why processing failed (status failed; write authorisation only)"
    )
    tries: int | None = Field(
        None,
        description="tries processing took: 1 for nearly every image, one more for a try "
        "starved of CPU or stopped with its invocation; while processing, the tries so far "
        "(null in listings and on images processed before tries were counted)",
    )
    renditions: list[RenditionPublic] = Field(default_factory=list)
    srcset: dict[str, str] = Field(
        default_factory=dict, description="per format: 'url 320w, url 2048w', for <source srcset>"
    )
    src: str | None = Field(None, description="largest JPEG/PNG rendition, for <img src>")
    srcset_on_demand: dict[str, str] = Field(
        default_factory=dict,
        description="per format: every allowed width up to the image's own, made on the "
        "first request of each (docs/sizes.md), for <source srcset>",
    )


def rendition_url(cdn_base_url: str, info: RenditionInfo) -> str:
    return f"{cdn_base_url}/{info.key}"


def srcsets(renditions: list[RenditionPublic]) -> dict[str, str]:
    """One srcset per format, narrowest first; one candidate per width (HTML forbids repeats).

    Formats in the order a ``<picture>`` should offer them (core/encoders.py SERVED_FIRST:
    AVIF, WebP, JPEG, PNG), except that formats whose renditions play come first: a browser
    takes the first source it reads, and an animation's AVIF is a still poster.

    Small originals are never upscaled, so two renditions can share a width: the first (the
    smaller file) wins.
    """
    by_format: dict[str, dict[int, str]] = {}
    for r in sorted(renditions, key=lambda r: (r.width, r.bytes)):
        by_format.setdefault(r.format, {}).setdefault(r.width, r.url)
    plays = {r.format for r in renditions if r.animated}

    def rank(fmt: str) -> tuple[bool, int]:
        known = fmt in SERVED_FIRST
        return fmt not in plays, SERVED_FIRST.index(fmt) if known else len(SERVED_FIRST)

    return {
        fmt: ", ".join(f"{url} {w}w" for w, url in by_format[fmt].items())
        for fmt in sorted(by_format, key=rank)
    }


def fallback_src(renditions: list[RenditionPublic]) -> str | None:
    """The widest rendition in a format every browser shows; any format if there is none."""
    for group in ([r for r in renditions if r.format in FALLBACK_FORMATS], renditions):
        if group:
            return max(group, key=lambda r: (r.width, -r.bytes)).url
    return None


def image_public(
    record: ImageRecord,
    cdn_base_url: str,
    *,
    private: bool = False,
    on_demand: OnDemandConfig | None = None,
) -> ImagePublic:
    """The record as a caller may see it: ``private`` (write authorisation) adds what
    reveals an upload, its key in the bucket and why it failed. ``on_demand``: the sizes
    that may be asked for, listed per format (None: none)."""
    facts = record.facts
    # A deleted image's files are gone: URLs to them would only 404.
    infos = [] if record.status is Status.deleted else record.renditions
    renditions = [
        RenditionPublic(
            name=i.name,
            format=i.format,
            content_type=i.content_type,
            width=i.width,
            height=i.height,
            bytes=i.bytes,
            url=rendition_url(cdn_base_url, i),
            animated=i.animated,
            on_demand=i.on_demand,
            score=i.score,
            quality=i.quality,
        )
        for i in infos
    ]
    return ImagePublic(
        id=record.id,
        status=record.status,
        source_key=(record.source_key or None) if private else None,
        uploader=record.uploader if private else None,
        width=facts.width if facts else None,
        height=facts.height if facts else None,
        format=facts.format if facts else None,
        bytes=facts.input_bytes if facts else None,
        frames=facts.frames if facts else None,
        animated=facts.animated if facts else False,
        duration_ms=facts.duration_ms if facts else None,
        loop=facts.loop if facts else None,
        still_reason=StillReasonPublic(**facts.still_reason.model_dump())
        if facts and facts.still_reason
        else None,
        dominant_color=facts.dominant_color if facts else None,
        placeholder=facts.placeholder if facts else None,
        created_at=record.created_at,
        updated_at=record.updated_at,
        error=ErrorPublic(code=record.error.code, message=record.error.message)
        if private and record.error and record.status is Status.failed
        else None,
        tries=record.tries,
        renditions=renditions,
        # Sizes made on demand are listed by srcset_on_demand, with the sizes not made yet.
        srcset=srcsets([r for r in renditions if not r.on_demand]),
        src=fallback_src([r for r in renditions if not r.on_demand]),
        srcset_on_demand=on_demand_srcsets(record, cdn_base_url, on_demand),
    )


def on_demand_srcsets(
    record: ImageRecord, cdn_base_url: str, config: OnDemandConfig | None
) -> dict[str, str]:
    """Per format, every allowed width worth asking for (processor/core/sizes.py), each
    described by the width it comes out at (never upscaled)."""
    facts, version = record.facts, record.content_version
    if config is None or record.status is not Status.done or facts is None or not version:
        return {}
    widths = widths_for(facts.width, config)
    out: dict[str, str] = {}
    # In the order a <picture> offers them, as ``srcsets``.
    for fmt in sorted(on_demand_formats(facts.has_alpha, config), key=SERVED_FIRST.index):
        candidates = []
        for w in widths:
            size = Size(record.id, version, w, None, "contain", fmt)
            candidates.append(f"{cdn_base_url}/{size.key} {min(w, facts.width)}w")
        out[fmt] = ", ".join(candidates)
    return out
