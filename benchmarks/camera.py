"""Camera photos for the bytes benchmarks: ten real photos from Debian's
``plasma-workspace-wallpapers`` package, fetched when first asked for.

The shared corpus and the public test suites hold few camera photos larger than the 2048 px
rendition, and most of them were already compressed hard (HEIC, AVIF) or are synthetic; a
user's upload is usually a camera or phone photo larger than 2048 px. These ten are 2560x1600
JPEGs of photos (landscape, water, leaves, cups, forest, sky, dusk), so the 2048 px rendition
is a real downscale, as for an upload.

Source: Debian ``plasma-workspace-wallpapers`` 4:5.27.5 (KDE Visual Design Group); each
wallpaper's metadata.json names its author and licence, LGPL-3.0 for all ten (Debian's
copyright file says GPL-2+ for the package). They are benchmark inputs only: fetched into
benchmarks/.cache, never committed or copied into an image.

    python -m benchmarks.camera   # fetch them and print where they are
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

CACHE = Path(__file__).resolve().parent / ".cache" / "camera"
PACKAGE = "plasma-workspace-wallpapers"
# wallpaper -> its author (metadata.json); every one LGPL-3.0
PHOTOS: dict[str, str] = {
    "BytheWater": "Maciej Wiklo",
    "ColdRipple": "Risto Saukonpää",
    "ColorfulCups": "Dmitri Popov",
    "EveningGlow": "Ian Hex",
    "FallenLeaf": "Martin Klapetek",
    "OneStandsOut": "Risto Saukonpää",
    "Path": "Risto Saukonpää",
    "Kite": "Risto Saukonpää",
    "DarkestHour": "Risto Saukonpää",
    "summer_1am": "Risto Saukonpää",
}
SIZE = "2560x1600"  # the largest JPEG each wallpaper ships


def camera_photos() -> list[Path]:
    """The ten photos, as ``kde-<name>.jpg`` (unique names: the score cache keys on them),
    fetched with ``apt-get download`` the first time."""
    wanted = [CACHE / f"kde-{name}.jpg" for name in PHOTOS]
    if all(p.is_file() for p in wanted):
        return wanted
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        raise SystemExit(f"the camera photos need apt-get and dpkg-deb (Debian's {PACKAGE})")
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="camera-") as tmp:
        work = Path(tmp)
        done = subprocess.run(
            ["apt-get", "download", PACKAGE], cwd=work, capture_output=True, text=True
        )
        debs = list(work.glob("*.deb"))
        if done.returncode or not debs:
            raise SystemExit(f"apt-get download {PACKAGE} failed: {done.stderr.strip()[-300:]}")
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(work / "x")], check=True)
        root = work / "x" / "usr" / "share" / "wallpapers"
        for name, target in zip(PHOTOS, wanted, strict=True):
            shutil.copyfile(root / name / "contents" / "images" / f"{SIZE}.jpg", target)
    return wanted


if __name__ == "__main__":
    for path in camera_photos():
        print(path)
