"""Pure pieces of the API: cursors, srcsets, file names, part plans, settings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.cursor import CursorSigner
from api.routes.images import keys_to_delete
from api.routes.uploads import check_key, new_key, plan_parts
from api.schemas import RenditionPublic, fallback_src, safe_filename, srcsets
from api.settings import GiB, MiB, load_settings
from processor.core.errors import ConfigError, InvalidCursor
from tests.api.conftest import make_record, make_settings

pytestmark = pytest.mark.unit

KEY = b"k" * 32


# --- cursor ----------------------------------------------------------------------------------


def test_cursor_round_trip() -> None:
    signer = CursorSigner(KEY)
    position = {"id": "abc", "sort_key": "2024-05-01T12:00:00Z#abc", "list_pk": "image"}
    token = signer.encode(position, context="c")
    assert signer.decode(token, context="c") == position
    assert "abc" not in token or "." in token  # base64url, one dot
    assert all(ch.isalnum() or ch in "-_." for ch in token)


def test_cursor_is_bound_to_context_and_key() -> None:
    token = CursorSigner(KEY).encode({"id": "a"}, context="images:newest:live")
    with pytest.raises(InvalidCursor):
        CursorSigner(KEY).decode(token, context="images:newest:done")
    with pytest.raises(InvalidCursor):
        CursorSigner(b"z" * 32).decode(token, context="images:newest:live")


def test_every_flipped_character_is_detected() -> None:
    signer = CursorSigner(KEY)
    token = signer.encode({"id": "a", "sort_key": "x#a"}, context="c")
    for i, ch in enumerate(token):
        if ch == ".":
            continue
        flipped = token[:i] + ("A" if ch != "A" else "B") + token[i + 1 :]
        try:
            decoded = signer.decode(flipped, context="c")
        except InvalidCursor:
            continue
        # base64 padding bits can change without changing the bytes: same position, fine
        assert decoded == {"id": "a", "sort_key": "x#a"}


@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes(text: str) -> None:
    signer = CursorSigner(KEY)
    with pytest.raises(InvalidCursor):
        signer.decode(text, context="c")


def test_signed_non_position_payloads_are_refused() -> None:
    # Even a correctly signed payload must be a small dict of strings.
    import base64
    import hashlib
    import hmac

    for payload in (b"[1,2]", b'{"a":1}', b"{}", b"not json"):
        mac = hmac.new(KEY, b"c\x00" + payload, hashlib.sha256).digest()[:16]
        token = (
            base64.urlsafe_b64encode(payload).decode().rstrip("=")
            + "."
            + base64.urlsafe_b64encode(mac).decode().rstrip("=")
        )
        with pytest.raises(InvalidCursor):
            CursorSigner(KEY).decode(token, context="c")


# --- srcset and src --------------------------------------------------------------------------


def rendition(fmt: str, width: int, size: int = 100) -> RenditionPublic:
    return RenditionPublic(
        name=f"r{width}",
        format=fmt,
        content_type=f"image/{fmt}",
        width=width,
        height=width,
        bytes=size,
        url=f"https://cdn/{fmt}/{width}/{size}",
    )


def test_srcset_per_format_narrowest_first() -> None:
    rs = [rendition("webp", 2048), rendition("jpeg", 320), rendition("webp", 320)]
    assert srcsets(rs) == {
        "webp": "https://cdn/webp/320/100 320w, https://cdn/webp/2048/100 2048w",
        "jpeg": "https://cdn/jpeg/320/100 320w",
    }


def test_srcset_offers_avif_then_webp_then_jpeg_or_png_as_a_picture_should() -> None:
    # A browser takes the first <source> it reads: the fewest bytes at the same quality first.
    rs = [rendition(f, w) for f in ("jpeg", "png", "webp", "avif") for w in (320, 2048)]
    assert list(srcsets(rs)) == ["avif", "webp", "jpeg", "png"]
    assert list(srcsets(list(reversed(rs)))) == ["avif", "webp", "jpeg", "png"]


def test_an_animations_playing_format_comes_before_its_still_avif() -> None:
    playing = rendition("webp", 320).model_copy(update={"animated": True})
    rs = [rendition("avif", 320), playing, rendition("jpeg", 320)]
    assert list(srcsets(rs)) == ["webp", "avif", "jpeg"]


def test_srcset_never_repeats_a_width() -> None:
    # A 300 px original is not upscaled: thumb and optimized come out the same width.
    rs = [rendition("jpeg", 300, 900), rendition("jpeg", 300, 500)]
    assert srcsets(rs) == {"jpeg": "https://cdn/jpeg/300/500 300w"}


def test_src_prefers_widest_jpeg_or_png() -> None:
    rs = [rendition("webp", 4000), rendition("png", 2048), rendition("jpeg", 320)]
    assert fallback_src(rs) == "https://cdn/png/2048/100"
    assert fallback_src([rendition("avif", 320)]) == "https://cdn/avif/320/100"
    assert fallback_src([]) is None


# --- keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cat.jpg", "cat.jpg"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\Photo 01.JPG", "Photo-01.JPG"),
        ("Été à Paris.heic", "Ete-a-Paris.heic"),
        (".hidden.png", "hidden.png"),
        ("???", "upload"),
        ("猫.png", "upload.png"),
        ("file.", "file"),
        ("a" * 300 + ".webp", "a" * 95 + ".webp"),
        ("x\x00y\n.gif", "x-y.gif"),
    ],
)
def test_safe_filename(name: str, expected: str) -> None:
    assert safe_filename(name) == expected


@given(st.text(min_size=1, max_size=400))
def test_every_new_key_is_a_valid_upload_key(name: str) -> None:
    settings = make_settings()
    key = new_key(settings.raw_prefix, name)
    assert check_key(settings, key) == key
    assert key.startswith("raw/") and ".." not in key.split("/")


@pytest.mark.parametrize(
    "key",
    [
        "public/thumbs/x.jpg",
        "raw/../public/x.jpg",
        "raw/0123/cat.jpg",
        "raw/" + "0" * 32 + "/../../x",
        "raw/" + "0" * 32 + "/a/b.jpg",
        "raw/" + "0" * 32 + "/",
    ],
)
def test_foreign_keys_are_refused(key: str) -> None:
    from api.problems import BadRequest

    with pytest.raises(BadRequest):
        check_key(make_settings(), key)


def test_keys_to_delete_covers_renditions_and_their_folders() -> None:
    rec = make_record(7)
    keys, prefixes = keys_to_delete(rec, "public/")
    assert keys[0] == rec.source_key and len(keys) == 1 + len(rec.renditions)
    assert prefixes == [f"public/optimized/{rec.id}", f"public/thumbs/{rec.id}"]


# --- multipart plan --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "preferred", "part", "count"),
    [
        (1, 16 * MiB, 16 * MiB, 1),
        (16 * MiB, 16 * MiB, 16 * MiB, 1),
        (16 * MiB + 1, 16 * MiB, 16 * MiB, 2),
        (3 * GiB, 16 * MiB, 16 * MiB, 192),
        # 500 GiB at 16 MiB would be 32,000 parts: parts grow to stay within 10,000
        (500 * GiB, 16 * MiB, 52 * MiB, 9847),
    ],
)
def test_plan_parts(size: int, preferred: int, part: int, count: int) -> None:
    assert plan_parts(size, preferred) == (part, count)
    assert count <= 10_000 and part * count >= size > part * (count - 1)


# --- settings --------------------------------------------------------------------------------


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMGPIPE_BUCKET", "bkt")
    monkeypatch.setenv("IMGPIPE_TABLE", "tbl")
    monkeypatch.setenv("IMGPIPE_CDN_BASE_URL", "https://cdn.example/")
    monkeypatch.setenv("IMGPIPE_CORS_ORIGINS", "https://a.example, https://b.example/")
    monkeypatch.setenv("IMGPIPE_READS_PUBLIC", "false")
    s = load_settings()
    assert s.cdn_base_url == "https://cdn.example"
    assert s.cors_origins == ["https://a.example", "https://b.example"]
    assert s.reads_public is False and s.max_upload_bytes == 200 * MiB
    monkeypatch.setenv("IMGPIPE_CORS_ORIGINS", '["https://c.example"]')
    assert load_settings().cors_origins == ["https://c.example"]


def test_settings_errors_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMGPIPE_BUCKET", "bkt")
    monkeypatch.setenv("IMGPIPE_TABLE", "tbl")
    monkeypatch.delenv("IMGPIPE_CDN_BASE_URL", raising=False)
    monkeypatch.setenv("IMGPIPE_MULTIPART_PART_BYTES", "1024")
    with pytest.raises(ConfigError) as e:
        load_settings()
    assert "IMGPIPE_CDN_BASE_URL" in e.value.message
    assert "IMGPIPE_MULTIPART_PART_BYTES" in e.value.message


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="IMGPIPE_API_KEY"):
        make_settings(api_key="short")
    with pytest.raises(ValueError, match="IMGPIPE_CURSOR_SECRET"):
        make_settings(cursor_secret="short")


# --- animations ------------------------------------------------------------------------------


def test_an_animated_image_says_so_and_which_renditions_play() -> None:
    from api.schemas import image_public
    from processor.core.record import StillReason

    record = make_record(1, width=480, height=270)
    assert record.facts is not None
    animated = record.model_copy(
        update={
            "facts": record.facts.model_copy(
                update={"frames": 60, "animated": True, "duration_ms": 2400, "loop": 0}
            ),
            "renditions": [
                r.model_copy(update={"animated": r.format == "webp"}) for r in record.renditions
            ],
        }
    )
    public = image_public(animated, "https://cdn.example")
    assert (public.frames, public.animated, public.duration_ms, public.loop) == (60, True, 2400, 0)
    assert {(r.format, r.animated) for r in public.renditions} == {("jpeg", False), ("webp", True)}
    assert public.src is not None and public.src.endswith(".jpg")  # the still fallback
    assert public.still_reason is None
    still = animated.model_copy(
        update={
            "facts": animated.facts.model_copy(  # type: ignore[union-attr]
                update={"still_reason": StillReason(code="too_long", message="one loop ...")}
            )
        }
    )
    reason = image_public(still, "https://cdn.example").still_reason
    assert reason is not None and reason.code == "too_long"
    # a still image says nothing of motion
    plain = image_public(record, "https://cdn.example")
    assert (plain.frames, plain.animated, plain.duration_ms, plain.loop) == (1, False, None, None)
