"""HEVC HEIC through the engine: real files of each kind, checked against an independent decode.

The files are made at test time (tests/processor/imaging/heic_samples.py); the engine decodes
them with pi-heif, the expected pixels come from pillow-heif's own libheif/libde265 build and
Pillow.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pyvips
from PIL import Image, ImageOps

from processor.core.config import EngineConfig, RenditionSpec
from processor.core.errors import ImageRejected
from processor.imaging.engine import Engine, Output, Result
from tests.conftest import ROOT
from tests.processor.imaging import heic_samples as hs

pytestmark = pytest.mark.integration

# One lossless rendition at full size (no resize: the decode's own pixels) and a small thumb.
FULL = EngineConfig(
    renditions=(
        RenditionSpec(name="full", folder="full", width=16384, height=16384, formats=("png",)),
        RenditionSpec(name="thumb", folder="thumbs", width=32, height=32, formats=("jpeg",)),
    )
)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(FULL)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("heic")
    wide = hs.pattern(96, 64)
    return {
        "srgb": hs.save(wide, d / "srgb.heic", exif=hs.exif_bytes()),
        "p3_icc": hs.save(wide, d / "p3_icc.heic", icc_profile=hs.display_p3_icc()),
        "p3_nclx": hs.save_nclx(wide, d / "p3_nclx.heic", hs.NCLX_P3),
        "10bit": hs.save_10bit(96, 64, d / "10bit.heic"),
        "alpha": hs.save(hs.pattern(64, 48, alpha=True), d / "alpha.heic"),
        "burst": hs.save_burst(d / "burst.heic"),
    }


def full(result: Result) -> Output:
    return next(o for o in result.outputs if o.info.name == "full")


def pixels(data: bytes) -> np.ndarray:
    image = pyvips.Image.new_from_buffer(data, "")
    array = np.ndarray(
        buffer=image.write_to_memory(),
        dtype=np.uint8,
        shape=(image.height, image.width, image.bands),
    )
    return array.astype(np.int16)


def as_array(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(np.int16)


def assert_close(got: np.ndarray, want: np.ndarray, max_diff: int, mean_diff: float) -> None:
    assert got.shape == want.shape
    diff = np.abs(got - want)
    assert diff.max() <= max_diff, f"max difference {diff.max()}"
    assert diff.mean() <= mean_diff, f"mean difference {diff.mean():.2f}"


def test_srgb_heic_matches_an_independent_decode(engine: Engine, files: dict[str, Path]) -> None:
    r = engine.process(files["srgb"], image_id="srgb")
    assert (r.facts.format, r.facts.width, r.facts.height) == ("heic", 96, 64)
    assert_close(pixels(full(r).data), as_array(hs.independent_decode(files["srgb"])), 2, 0.5)


def test_exif_capture_time_is_kept_in_metadata_and_stripped_from_outputs(
    engine: Engine, files: dict[str, Path]
) -> None:
    r = engine.process(files["srgb"], image_id="srgb")
    assert r.facts.captured_at == "2024-05-01T12:30:45"
    for o in r.outputs:
        fields = set(pyvips.Image.new_from_buffer(o.data, "").get_fields())
        assert not {"exif-data", "xmp-data", "icc-profile-data"} & fields, o.info.name


@pytest.mark.parametrize("orientation", [2, 3, 5, 6, 7, 8])
def test_orientation_is_applied_once(engine: Engine, tmp_path: Path, orientation: int) -> None:
    """irot/imir say how to turn the stored pixels and the EXIF tag says the same, as phones
    write it: upright means turned once (what Pillow's exif_transpose does to the source)."""
    stored = hs.pattern(96, 64)
    path = hs.save(stored, tmp_path / f"o{orientation}.heic", exif=hs.exif_bytes(orientation))
    data = path.read_bytes()
    assert b"irot" in data or b"imir" in data  # the container carries the transform
    tagged = stored.copy()
    tagged.getexif()[0x0112] = orientation
    upright = ImageOps.exif_transpose(tagged)
    r = engine.process(path, image_id="o")
    assert (r.facts.width, r.facts.height, r.facts.orientation) == (*upright.size, 1)
    got = pixels(full(r).data)
    assert_close(got, as_array(upright), 40, 3.0)  # against the source itself: lossy coding
    assert_close(got, as_array(hs.independent_decode(path)), 2, 0.5)


@pytest.mark.parametrize(("kind", "max_diff"), [("p3_icc", 3), ("p3_nclx", 4)])
def test_display_p3_is_converted_to_srgb(
    engine: Engine, files: dict[str, Path], kind: str, max_diff: int
) -> None:
    """An ICC profile, or nclx with P3's primaries and curve: the same sRGB result as
    Pillow's ImageCms gives through the Display P3 profile."""
    r = engine.process(files[kind], image_id=kind)
    if kind == "p3_icc":
        assert r.facts.icc_description is not None and "P3" in r.facts.icc_description
    want = hs.independent_decode(files[kind], icc_to_srgb=hs.display_p3_icc())
    got = pixels(full(r).data)
    assert_close(got, as_array(want), max_diff, 1.0)
    # Not a no-op: the untouched P3 numbers differ from the sRGB ones.
    assert np.abs(as_array(hs.independent_decode(files[kind])) - got).max() > 20


def test_10bit_heic_decodes_to_8bit(engine: Engine, files: dict[str, Path]) -> None:
    r = engine.process(files["10bit"], image_id="10bit")
    assert (r.facts.width, r.facts.height) == (96, 64)
    assert_close(pixels(full(r).data), as_array(hs.independent_decode(files["10bit"])), 2, 0.5)
    assert pyvips.Image.new_from_buffer(full(r).data, "").format == "uchar"


def test_alpha_is_kept(engine: Engine, files: dict[str, Path]) -> None:
    r = engine.process(files["alpha"], image_id="alpha")
    assert r.facts.has_alpha
    got = pixels(full(r).data)
    assert got.shape[2] == 4
    want = as_array(hs.independent_decode(files["alpha"]))
    assert_close(got[..., 3], want[..., 3], 2, 0.5)
    opaque = want[..., 3] == 255
    assert_close(got[..., :3][opaque], want[..., :3][opaque], 2, 0.5)


def test_only_the_primary_image_is_decoded(engine: Engine, files: dict[str, Path]) -> None:
    r = engine.process(files["burst"], image_id="burst")
    assert (r.facts.width, r.facts.height) == (80, 40)
    got = pixels(full(r).data)
    assert got[..., 1].mean() > 150 and got[..., 0].mean() < 40  # green, not the red one


def test_a_heic_bomb_is_refused_from_its_header(
    engine: Engine, files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from processor.imaging import heic

    decoded: list[Path] = []
    real = heic.decode_primary

    def spy(path: Path) -> heic.HeicPixels:
        decoded.append(path)
        return real(path)

    monkeypatch.setattr(heic, "decode_primary", spy)
    path = hs.bomb(files["srgb"], tmp_path / "bomb.heic")
    with pytest.raises(ImageRejected) as e:
        engine.process(path, image_id="bomb")
    assert e.value.code == "too_many_pixels"
    assert "30000x30000" in e.value.message
    assert decoded == []  # refused before any pixel was decoded


def test_a_build_without_the_hevc_decoder_says_so(files: dict[str, Path]) -> None:
    """unsupported_format naming the codec, never corrupt_image, when pi-heif is missing."""
    code = """
import importlib.abc, json, sys
class NoPiHeif(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname.partition(".")[0] in ("pi_heif", "_pi_heif"):
            raise ModuleNotFoundError(fullname, name=fullname)
sys.meta_path.insert(0, NoPiHeif())
from processor.core.config import EngineConfig
from processor.core.errors import PipelineError
from processor.imaging.engine import Engine
try:
    Engine(EngineConfig()).process(sys.argv[1], image_id="x")
    print(json.dumps({"code": "done"}))
except PipelineError as e:
    print(json.dumps(e.to_dict()))
"""
    done = subprocess.run(
        [sys.executable, "-c", code, str(files["srgb"])],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=True,
    )
    error = json.loads(done.stdout.strip().splitlines()[-1])
    assert error["code"] == "unsupported_format"
    assert error["message"].startswith("HEIC with HEVC compression is not supported by this build")
    assert str(files["srgb"].parent) not in error["message"]
