"""What is inside both images: sizes against written-down budgets, and what must not be.

The budgets are docs/images.md's table: the image, and what it adds over its base (the part
this project controls: on the real Lambda base the totals grow by that base's own size, the
additions stay). No compiler, build tree or pip cache is left, nothing that looks like a
secret, a non-root user, bytecode compiled at build time; and the handler's import time
inside the image is measured (reported, not asserted: the machine is shared).
"""

from __future__ import annotations

import json
import re

import pytest

from tests.containers import MARKS
from tests.containers.conftest import Built
from tests.containers.engine import DockerEngine
from tests.containers.lambda_container import LAMBDA_USER
from tests.containers.report import Report

pytestmark = [pytest.mark.image, *MARKS]

MB = 1_000_000
# docs/images.md, "Size budgets": (whole image on the stand-in base, added over the base).
BUDGETS_MB = {"processor": (395, 160), "api": (330, 75)}
# The function's own code per image, each of which must ship compiled.
PACKAGES = {"processor": ("processor",), "api": ("api", "processor")}
COMPILERS = ("gcc", "cc", "c++", "g++", "clang", "make", "ld")
SECRET_TEXT = re.compile(
    rb"AKIA[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY-----|aws_secret_access_key\s*="
)
SECRET_NAME = re.compile(r"(?i)secret|password|token|access_key|api_key|credential")


def run_in(engine: DockerEngine, image: str, *command: str, user: str = LAMBDA_USER) -> str:
    """``command`` in a throwaway container of ``image``, as Lambda would run it."""
    done = engine.run(
        "run", "--rm", "--network", "host", "--read-only", "--tmpfs", "/tmp",
        "--user", user, "--entrypoint", command[0], image, *command[1:],
    )  # fmt: skip
    return done.stdout.decode()


@pytest.mark.parametrize("name", ["processor", "api"])
def test_image_sizes_keep_to_their_budgets(
    name: str, images: dict[str, Built], engine: DockerEngine, report: Report
) -> None:
    image = images[name]
    base = engine.inspect(image.base.ref)["Size"]
    added = image.size - base
    report.add(f"{name}.over_base_mb", added / MB)
    whole_budget, added_budget = BUDGETS_MB[name]
    assert image.size <= whole_budget * MB, f"{name}: {image.size / MB:.0f} MB"
    assert added <= added_budget * MB, f"{name} adds {added / MB:.0f} MB to its base"


@pytest.mark.parametrize("name", ["processor", "api"])
def test_images_hold_no_compilers_build_leftovers_caches_or_secrets(
    name: str, images: dict[str, Built], engine: DockerEngine
) -> None:
    image = images[name].ref
    script = (
        "for tool in " + " ".join(COMPILERS) + '; do command -v "$tool" || true; done; '
        "ls -d /build /deps /root/.cache /var/task/requirements.txt /var/task/tests "
        "/var/task/.env /var/task/.git /root/.aws /root/.docker 2>/dev/null || true; "
        # Wheels or sdists pip left behind, and cache folders (dateutil's bundled zoneinfo
        # tarball is data it reads, not a leftover).
        "find /var/task /root /tmp -xdev \\( -name '*.whl' -o -name 'pip-*build*' "
        "-o -path '*/.cache/pip' \\) -print 2>/dev/null || true"
    )
    assert run_in(engine, image, "sh", "-c", script, user="0:0").split() == []
    # Text that looks like a key in what the build context put there: the project's code
    # and the task root's own files. (boto3's bundled docs hold AWS's published example
    # keys; the dependencies come from PyPI by pin, not from this repository.)
    found = run_in(
        engine, image, "sh", "-c",
        "grep -IlE 'AKIA[0-9A-Z]{16}|BEGIN [A-Z ]*PRIVATE KEY' -r /var/task/processor "
        "/var/task/api 2>/dev/null; grep -IlsE 'AKIA[0-9A-Z]{16}|PRIVATE KEY' /var/task/* "
        "2>/dev/null; true",
    )  # fmt: skip
    assert found.split() == []
    config = engine.inspect(image)["Config"]
    for variable in config.get("Env") or []:
        assert not SECRET_NAME.search(variable.split("=", 1)[0]), variable
    for key in config.get("Labels") or {}:
        assert not SECRET_NAME.search(key), key
    history = engine.text("history", "--no-trunc", "--format", "{{.CreatedBy}}", image)
    assert not SECRET_TEXT.search(history.encode())


@pytest.mark.parametrize("name", ["processor", "api"])
def test_images_run_as_a_non_root_user_with_compiled_code(
    name: str, images: dict[str, Built], engine: DockerEngine
) -> None:
    image = images[name].ref
    user = engine.inspect(image)["Config"]["User"]
    assert user and user.split(":")[0] not in ("0", "root")
    # As the image says (no --user), it is not root either.
    done = engine.run(
        "run", "--rm", "--network", "host", "--entrypoint", "id", image, "-u"
    )  # fmt: skip
    assert done.stdout.decode().strip() not in ("", "0")
    # Every module of the function's own code has its compileall bytecode beside it.
    check = (
        "import importlib.util, pathlib, sys\n"
        "missing = []\n"
        "for package in sys.argv[1:]:\n"
        "    for source in pathlib.Path('/var/task', package).rglob('*.py'):\n"
        "        if not pathlib.Path(importlib.util.cache_from_source(str(source))).is_file():\n"
        "            missing.append(str(source))\n"
        "print(len(list(pathlib.Path('/var/task').rglob('*.pyc'))), *missing)\n"
    )
    out = run_in(engine, image, "python", "-c", check, *PACKAGES[name]).split()
    assert int(out[0]) > 0 and out[1:] == []


@pytest.mark.parametrize(
    ("name", "handler"),
    [("processor", "processor.entrypoints.handler"), ("api", "api.handler")],
)
def test_handler_import_time_inside_the_image(
    name: str, handler: str, images: dict[str, Built], engine: DockerEngine, report: Report
) -> None:
    image = images[name].ref
    # The image's CMD names the handler Lambda calls: it must be the module measured here.
    (cmd,) = engine.inspect(image)["Config"]["Cmd"]
    assert cmd.rpartition(".")[0] == handler
    entry = cmd.rpartition(".")[2]
    probe = (
        "import json, time\n"
        "t = time.perf_counter()\n"
        f"import {handler} as h\n"
        "took = time.perf_counter() - t\n"
        f"print(json.dumps({{'s': took, 'callable': callable(getattr(h, {entry!r}))}}))\n"
    )
    result = json.loads(run_in(engine, image, "python", "-c", probe).strip().splitlines()[-1])
    assert result["callable"]
    report.add(f"{name}.handler_import_s", result["s"])


_LICENCES = """
import importlib.metadata, json, pathlib
found = []
for dist in importlib.metadata.distributions(path=["/var/task"]):
    meta = dist.metadata
    texts = [meta.get("License-Expression") or "", (meta.get("License") or "")[:200]]
    texts += [c for c in meta.get_all("Classifier") or [] if c.startswith("License")]
    for text in texts:
        lesser = any(w in text for w in ("LGPL", "Lesser", "Library"))
        if not lesser and ("GPL" in text or "General Public License" in text):
            found.append(f"{meta['Name']}: {text}")
# GPL codecs that image wheels could bundle (x265 is HEVC's encoder: pi-heif ships none).
found += [str(p) for p in pathlib.Path("/var/task").rglob("libx265*")]
print(json.dumps(found))
"""


@pytest.mark.parametrize("name", ["processor", "api"])
def test_images_ship_no_gpl_component(
    name: str, images: dict[str, Built], engine: DockerEngine
) -> None:
    # The project is MIT and its images are what users ship: LGPL libraries (libvips,
    # libheif) may be linked, nothing under the GPL may be in them.
    output = run_in(engine, images[name].ref, "python", "-c", _LICENCES)
    assert json.loads(output.strip().splitlines()[-1]) == []
