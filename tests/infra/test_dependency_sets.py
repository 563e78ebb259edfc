"""Every handler the Dockerfiles or the template name imports and is callable.

No Docker engine here, so the images are checked by what they are made of: a subprocess that
can import only what an image holds (the packages pyproject pins minus the Dockerfile's
--exclude, their dependencies, the copied project folders, the standard library) loads the
handler with the function's template environment and answers one real event.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

from infra import template as tpl
from tests.infra.conftest import DOCKERFILES, FAKE_REFS, ROOT
from tests.infra.images import canonical, dockerfile_cmd, image_contents

pytestmark = pytest.mark.integration


# ------------------------------------------------------------------ what an image holds ------


def blocked_modules(name: str) -> list[str]:
    """Top-level modules this venv has but the image does not."""
    dists, folders = image_contents(name)
    project = {"processor", "api", "infra", "benchmarks", "tests"}
    blocked = project - folders
    for module, owners in metadata.packages_distributions().items():
        # The project's own folders are decided by COPY above, not by the editable install.
        if module not in project and not any(canonical(o) in dists for o in owners):
            blocked.add(module)
    return sorted(blocked)


# Only what the image holds can be imported (argv[1]: the blocked top-level modules).
_IMAGE_ONLY = """
import importlib, importlib.abc, json, sys

BLOCKED = set(json.loads(sys.argv[1]))

class NotInImage(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"{fullname} is not in the image", name=fullname)
        return None

sys.meta_path.insert(0, NotInImage())
"""


def run_in_image(
    code: str, blocked: list[str], tag: str, *args: str, env: dict[str, str] | None = None
) -> Any:
    """Run ``code`` with only the image's modules importable; the JSON it prints after
    ``tag``."""
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(blocked), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (line,) = [x for x in done.stdout.splitlines() if x.startswith(f"{tag} ")]
    return json.loads(line.removeprefix(f"{tag} "))


_PROBE = (
    _IMAGE_ONLY
    + """
class Context:
    function_name = "imgpipe-probe"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:imgpipe-probe"
    memory_limit_in_mb = 512
    aws_request_id = "probe-request"
    log_group_name = "/aws/lambda/imgpipe-probe"
    log_stream_name = "probe"
    def get_remaining_time_in_millis(self):
        return 60_000

module_name, _, attribute = sys.argv[2].rpartition(".")
handler = getattr(importlib.import_module(module_name), attribute)
response = handler(json.loads(sys.argv[3]), Context())
print("RESPONSE " + json.dumps(response))
"""
)


def function_env(function: str, function_name: str) -> dict[str, str]:
    """A function's environment as the template gives it, with fake credentials."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "POWERTOOLS_TRACE_DISABLED": "true",
        **tpl.function_env(function, FAKE_REFS),
    }


def probe_event(name: str) -> dict[str, Any]:
    events = ROOT / "tests" / "events"
    if name == "api":
        return dict(json.loads((events / "apigw_get_healthz.json").read_text()))
    # An S3 test event on the queue: the processor builds everything and has nothing to do.
    batch = json.loads((events / "sqs_s3_batch.json").read_text())
    test_events = [r for r in batch["Records"] if "s3:TestEvent" in r["body"]]
    return {"Records": test_events[:1]}


# ------------------------------------------------------------------ licences ----------------


_HEIC_PROBE = (
    _IMAGE_ONLY
    + """
from processor.core.config import EngineConfig
from processor.imaging.engine import Engine

result = Engine(EngineConfig()).process(sys.argv[2], image_id="probe")
print("FACTS " + result.facts.model_dump_json())
"""
)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_image_dependency_set_runs_the_handler(name: str) -> None:
    handler = dockerfile_cmd(name)
    blocked = blocked_modules(name)
    # Sanity of the simulation itself: the slim images really leave these out.
    assert ("pyvips" in blocked) == (name == "api")
    assert ("fastapi" in blocked) == (name == "processor")
    assert "pytest" in blocked and "moto" in blocked
    env = function_env(name, f"imgpipe-{name}")
    response = run_in_image(
        _PROBE, blocked, "RESPONSE", handler, json.dumps(probe_event(name)), env=env
    )
    if name == "api":
        assert response["statusCode"] == 200, response
    else:
        assert response == {"batchItemFailures": []}


@pytest.mark.slow
def test_the_processor_image_dependency_set_runs_the_on_demand_handler() -> None:
    """The sizes function runs the processor's image with another handler: it imports only
    what that image holds, builds its engine, and refuses a size outside the set from there."""
    event = json.loads((ROOT / "tests" / "events" / "function_url_get_size.json").read_text())
    event["rawPath"] = f"/sizes/{'a' * 26}-0123456789-641w.jpg"
    env = function_env("OnDemandFunction", "imgpipe-sizes")
    handler = tpl.handlers()["OnDemandFunction"]
    response = run_in_image(
        _PROBE, blocked_modules("processor"), "RESPONSE", handler, json.dumps(event), env=env
    )
    assert response["statusCode"] == 400, response
    assert json.loads(response["body"])["code"] == "size_not_allowed"


@pytest.mark.slow
def test_the_processor_image_dependency_set_runs_the_flusher() -> None:
    """The flusher runs the processor's image with another handler: it imports only what
    that image holds, reads its settings, and drops an unreadable message without a call."""
    event = {
        "Records": [{"messageId": "m1", "body": "not an invalidation", "eventSource": "aws:sqs"}]
    }
    env = function_env("FlushFunction", "imgpipe-flush")
    handler = tpl.handlers()["FlushFunction"]
    response = run_in_image(
        _PROBE, blocked_modules("processor"), "RESPONSE", handler, json.dumps(event), env=env
    )
    assert response == {"batchItemFailures": []}


def test_the_processor_image_dependency_set_decodes_heic(tmp_path: Path) -> None:
    """What the processor image holds (and nothing else) turns a HEVC HEIC into renditions."""
    from tests.processor.imaging import heic_samples as hs

    heic = hs.save(hs.pattern(96, 64), tmp_path / "phone.heic", exif=hs.exif_bytes(6))
    blocked = blocked_modules("processor")
    assert "pillow_heif" in blocked and "pi_heif" not in blocked
    facts = run_in_image(_HEIC_PROBE, blocked, "FACTS", str(heic))
    assert (facts["format"], facts["width"], facts["height"]) == ("heic", 64, 96)


def test_the_processor_image_decodes_heic_with_decoders_only() -> None:
    processor, _ = image_contents("processor")
    api, _ = image_contents("api")
    assert "pi-heif" in processor and "pi-heif" not in api
    runtime = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [p for p in runtime if canonical(Requirement(p).name) == "pillow-heif"]
    # pi-heif's wheel bundles libheif and libde265 only: no x265 (or any encoder) library.
    libraries = [str(f) for f in metadata.files("pi-heif") or [] if ".so" in f.name]
    names = {Path(f).name.split("-")[0].split(".")[0] for f in libraries}
    assert {"libheif", "libde265"} <= names
    assert not [n for n in names if "x265" in n or "kvazaar" in n or "aom" in n]
    import pi_heif

    assert set(pi_heif.libheif_info()["encoders"]) <= {"mask"}  # libheif's built-in, not HEVC
