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

Held out: fourteen more camera photos the calibration never sees
(``holdout_photos``), every photograph larger than the 2048 px box in Debian's
``lomiri-wallpapers-16.04`` and ``lomiri-wallpapers-20.04`` 20.04.0-2 (the Ubuntu wallpaper
contest's; 2572x1740 to 6028x3391, so the 2048 px rendition is a 1.25x-2.9x downscale), to
check that a setting calibrated on one set of photos meets the target on others. Their
authors and licences (CC0-1.0, CC-BY-4.0, CC-BY-SA-3.0/4.0, from Debian's copyright file) are
in HOLDOUT; the packages' drawings and the one photo smaller than the box are left out.

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


# Held-out photo -> (its package, author, licence), from the package's copyright file.
HOLDOUT: dict[str, tuple[str, str, str]] = {
    "Bridge_by_Sander_Klootwijk": ("16.04", "Sander Klootwijk", "CC-BY-SA-4.0"),
    "Dragonfly_by_Bolly": ("16.04", "Bolly", "CC-BY-SA-4.0"),
    "Picture_0B_by_freespace": ("16.04", "Trevor Freespace", "CC-BY-4.0"),
    "Wine_by_Jakkub_Mede": ("16.04", "Jakub Mede", "CC-BY-4.0"),
    "aitzgorri_by_Aitzol_Berasategi": ("16.04", "Aitzol Berasategi", "CC-BY-4.0"),
    "analogpattern_by_Peter_Nerlich": ("16.04", "Peter Nerlich", "CC-BY-SA-4.0"),
    "free_by_Peter_Nerlich": ("16.04", "Peter Nerlich", "CC-BY-SA-4.0"),
    "friends_by_Aitzol_Berasategi": ("16.04", "Aitzol Berasategi", "CC-BY-4.0"),
    "greentock_by_Peter_Nerlich": ("16.04", "Peter Nerlich", "CC-BY-SA-4.0"),
    "life_by_Aitzol_Berasategi": ("16.04", "Aitzol Berasategi", "CC-BY-4.0"),
    "picosdeeuropa_by_Aitzol_Berasategi": ("16.04", "Aitzol Berasategi", "CC-BY-4.0"),
    "seeding_by_Clements_Engelhardt": ("16.04", "Clemens Engelhardt", "CC0-1.0"),
    "sunset_by_Aitzol_Berasategi": ("16.04", "Aitzol Berasategi", "CC-BY-4.0"),
    "Kleiber_by_Lukas_Baubkus": ("20.04", "Lukas Baubkus", "CC-BY-SA-3.0"),
}


def _extract(package: str, work: Path) -> Path:
    """``package``'s files under ``work``/x, fetched with ``apt-get download``."""
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        raise SystemExit(f"the camera photos need apt-get and dpkg-deb (Debian's {package})")
    done = subprocess.run(
        ["apt-get", "download", package], cwd=work, capture_output=True, text=True
    )
    debs = list(work.glob(f"{package}_*.deb"))
    if done.returncode or not debs:
        raise SystemExit(f"apt-get download {package} failed: {done.stderr.strip()[-300:]}")
    subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(work / "x")], check=True)
    return work / "x"


def camera_photos() -> list[Path]:
    """The ten photos, as ``kde-<name>.jpg`` (unique names: the score cache keys on them),
    fetched with ``apt-get download`` the first time."""
    wanted = [CACHE / f"kde-{name}.jpg" for name in PHOTOS]
    if all(p.is_file() for p in wanted):
        return wanted
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="camera-") as tmp:
        root = _extract(PACKAGE, Path(tmp)) / "usr" / "share" / "wallpapers"
        for name, target in zip(PHOTOS, wanted, strict=True):
            shutil.copyfile(root / name / "contents" / "images" / f"{SIZE}.jpg", target)
    return wanted


def holdout_photos() -> list[Path]:
    """The fourteen held-out photos, as ``ub-<name>.jpg``, fetched the first time."""
    wanted = {name: CACHE / f"ub-{name.split('_by_')[0]}.jpg" for name in HOLDOUT}
    if all(p.is_file() for p in wanted.values()):
        return list(wanted.values())
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="holdout-") as tmp:
        for release in sorted({r for r, _a, _l in HOLDOUT.values()}):
            root = _extract(f"lomiri-wallpapers-{release}", Path(tmp)) / "usr/share/backgrounds"
            for name, (r, _a, _l) in HOLDOUT.items():
                if r == release:
                    shutil.copyfile(root / f"{name}.jpg", wanted[name])
    return list(wanted.values())


if __name__ == "__main__":
    for path in camera_photos() + holdout_photos():
        print(path)
