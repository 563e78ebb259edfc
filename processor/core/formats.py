"""The one list of image formats: what is sniffed, accepted, decoded and said.

Everything that names a format derives from ``FORMATS`` here: sniffing (sniff.py), the
outputs' content types and extensions (through the encoder table, encoders.py), the engine's
allowed libvips loaders, the API's accepted upload content types, the upload CLI's
Content-Type, the gallery's file picker and hint, and every error message that lists what is
accepted. Pure data: no libvips here (the API imports this and never loads libvips);
tests/processor/imaging/test_formats.py checks the ``decodes`` claims against the build.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ImageFormat:
    name: str  # the record's `format` and the key of every table below
    label: str  # what a person reads
    extensions: tuple[str, ...]  # file name endings, the first is the one written
    content_types: tuple[str, ...]  # the first is the canonical one
    # Signatures, any one of which identifies the format; a signature is (offset, bytes)
    # pairs that must all match. ISO-BMFF formats (HEIF) are told by `brands` instead.
    magic: tuple[tuple[tuple[int, bytes], ...], ...] = ()
    brands: frozenset[bytes] = frozenset()
    # The libvips loader class allowed to read this format (header, and pixels unless
    # `decoder` says otherwise); every other libvips loader stays blocked.
    loader: str | None = None
    # Who decodes the pixels in this build; None: this build cannot decode the format.
    decoder: str | None = "libvips"
    # The compression, for "<label> with <codec> compression is not supported by this build".
    codec: str | None = None
    # libvips error domains of this format's loader: only these lines (or lines naming this
    # very upload's file) may go into a message about it.
    error_domains: tuple[str, ...] = ()

    @property
    def decodes(self) -> bool:
        return self.decoder is not None


# ISO-BMFF brands (ftyp major or compatible) of HEVC-coded HEIF still images and sequences.
HEVC_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs"})
AV1_BRANDS = frozenset({b"avif", b"avis"})
# Brands that say "HEIF" without naming the codec: the primary item's own codec decides.
GENERIC_HEIF_BRANDS = frozenset({b"mif1", b"msf1", b"mif2", b"miaf"})

FORMATS: tuple[ImageFormat, ...] = (
    ImageFormat(
        name="jpeg",
        label="JPEG",
        extensions=("jpg", "jpeg", "jpe", "jfif"),
        content_types=("image/jpeg",),
        magic=(((0, b"\xff\xd8\xff"),),),
        loader="VipsForeignLoadJpeg",
        error_domains=("VipsJpeg", "jpegload", "VipsForeignLoadJpeg"),
    ),
    ImageFormat(
        name="png",
        label="PNG",
        extensions=("png",),
        content_types=("image/png",),
        magic=(((0, b"\x89PNG\r\n\x1a\n"),),),
        loader="VipsForeignLoadPng",
        error_domains=("vipspng", "pngload", "spng", "VipsForeignLoadPng"),
    ),
    ImageFormat(
        name="webp",
        label="WebP",
        extensions=("webp",),
        content_types=("image/webp",),
        magic=(((0, b"RIFF"), (8, b"WEBP")),),
        loader="VipsForeignLoadWebp",
        error_domains=("webp", "webpload", "VipsForeignLoadWebp"),
    ),
    ImageFormat(
        name="gif",
        label="GIF",
        extensions=("gif",),
        content_types=("image/gif",),
        magic=(((0, b"GIF87a"),), ((0, b"GIF89a"),)),
        loader="VipsForeignLoadNsgif",
        error_domains=("gifload", "nsgif", "VipsForeignLoadNsgif"),
    ),
    ImageFormat(
        name="tiff",
        label="TIFF",
        extensions=("tif", "tiff"),
        content_types=("image/tiff",),
        magic=(
            ((0, b"II*\x00"),),
            ((0, b"MM\x00*"),),
            ((0, b"II+\x00"),),  # BigTIFF
            ((0, b"MM\x00+"),),
        ),
        loader="VipsForeignLoadTiff",
        error_domains=("tiff2vips", "tiffload", "tiff", "VipsForeignLoadTiff"),
    ),
    ImageFormat(
        # HEVC-coded HEIF: what phones save. libvips (pyvips-binary) reads its header but has
        # no HEVC decoder, so the pixels come from pi-heif (libheif + libde265, decoders only).
        name="heic",
        label="HEIC",
        extensions=("heic", "heif", "hif"),
        # Not image/heic-sequence: an image sequence's frames are not read, and one without
        # a still image is refused; the upload schema offers only what can be processed.
        content_types=("image/heic", "image/heif"),
        brands=HEVC_BRANDS | GENERIC_HEIF_BRANDS,
        loader="VipsForeignLoadHeif",
        decoder="pi-heif",
        codec="HEVC",
        error_domains=("heif", "heifload", "VipsForeignLoadHeif", "libheif"),
    ),
    ImageFormat(
        name="avif",
        label="AVIF",
        extensions=("avif",),
        content_types=("image/avif",),
        brands=AV1_BRANDS,
        loader="VipsForeignLoadHeif",
        codec="AV1",
        error_domains=("heif", "heifload", "VipsForeignLoadHeif"),
    ),
)

BY_NAME = {f.name: f for f in FORMATS}
# What this build accepts as an upload: every format it can decode, in the order above.
ACCEPTED = tuple(f for f in FORMATS if f.decodes)
ACCEPTED_NAMES = tuple(f.name for f in ACCEPTED)
ACCEPTED_CONTENT_TYPES = tuple(t for f in ACCEPTED for t in f.content_types)
ACCEPTED_EXTENSIONS = tuple(e for f in ACCEPTED for e in f.extensions)
LOADERS = {f.name: f.loader for f in ACCEPTED if f.loader}

# Formats that are recognised only to be named in a refusal (never accepted).
REFUSED_MAGIC: tuple[tuple[str, tuple[bytes, ...]], ...] = (
    ("PDF", (b"%PDF",)),
    ("JPEG 2000", (b"\x00\x00\x00\x0cjP  ", b"\xff\x4f\xff\x51")),
    ("JPEG XL", (b"\xff\x0a", b"\x00\x00\x00\x0cJXL ")),
    ("libvips' own format", (b"\x08\xf2\xa6\xb6", b"\xb6\xa6\xf2\x08")),
    ("BMP", (b"BM",)),
)


def and_list(labels: list[str] | tuple[str, ...]) -> str:
    """'A, B and C'."""
    if len(labels) <= 1:
        return "".join(labels)
    return f"{', '.join(labels[:-1])} and {labels[-1]}"


def accepted_labels() -> str:
    """'JPEG, PNG, WebP, GIF, TIFF, HEIC and AVIF': what messages and pages say is accepted."""
    return and_list([f.label for f in ACCEPTED])


def not_decodable(fmt: ImageFormat, codec: str | None = None) -> str:
    """The refusal for a format (or a codec inside it) this build recognises but cannot decode."""
    what = codec or fmt.codec
    name = f"{fmt.label} with {what} compression" if what else fmt.label
    return f"{name} is not supported by this build; send {accepted_labels()}"


def not_decodable_feature(fmt: ImageFormat, feature: str) -> str:
    """The refusal for a file of an accepted format whose codec or sample layout this build
    cannot decode, named (a valid file: never called damaged)."""
    return f"{fmt.label} with {feature} is not supported by this build; send {accepted_labels()}"


def content_type_for(name: str) -> str:
    return BY_NAME[name].content_types[0]


def gallery_manifest() -> dict[str, object]:
    """What the gallery page needs: the picker's accept list, the hint, extension -> type.

    The picker lists extensions too: browsers that do not know image/heic still offer .heic.
    """
    return {
        "accept": ",".join(ACCEPTED_CONTENT_TYPES + tuple(f".{e}" for e in ACCEPTED_EXTENSIONS)),
        "content_types": list(ACCEPTED_CONTENT_TYPES),
        "labels": accepted_labels(),
        "types": {e: f.content_types[0] for f in ACCEPTED for e in f.extensions},
    }
