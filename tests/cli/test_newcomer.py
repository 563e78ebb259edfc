"""A new user's first hour against a started `imgpipe local`, with the tools they would use.

GIVEN one stack on free ports (started once for this module)
THEN the AWS CLI block the banner prints works as printed (a real `aws`, no other
credentials), and the shell blocks the README and the local-stack guide mark as tested run as
written (tests/cli/test_browser.py opens /docs in Chromium).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.cli.conftest import StackProcess
from tests.conftest import GOOD, ROOT

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.xdist_group("local_stack"),
    pytest.mark.timeout(240),
]

PHOTO = GOOD / "Landscape_9.jpg"
AWS_CLI = ROOT / ".venv" / "bin" / "aws"


def user_shell_env(home: Path) -> dict[str, str]:
    """A shell as a new user has it: no AWS settings at all, the project's venv tools on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "IMGPIPE_"))}
    env["HOME"] = str(home)  # no ~/.aws either
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def banner_aws_block(stack: StackProcess) -> list[str]:
    start = next(i for i, line in enumerate(stack.lines) if line.startswith("The AWS CLI"))
    end = stack.lines.index("ready", start)
    return [line.strip() for line in stack.lines[start + 1 : end]]


# --- /docs offline ---------------------------------------------------------------------------


# --- the AWS CLI block -----------------------------------------------------------------------


def test_the_banners_aws_cli_block_works_as_printed(stack: StackProcess, tmp_path: Path) -> None:
    block = banner_aws_block(stack)
    assert block[0].startswith("export AWS_ENDPOINT_URL=")
    assert f"aws s3 cp photo.jpg s3://{stack.bucket}/raw/" in block
    assert any(line.startswith("aws dynamodb scan --table-name ") for line in block)
    shutil.copyfile(PHOTO, tmp_path / "photo.jpg")  # the user's photo, in their folder
    env = user_shell_env(tmp_path)

    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", "\n".join(block)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert f"upload: ./photo.jpg to s3://{stack.bucket}/raw/photo.jpg" in run.stdout
    assert '"Items"' in run.stdout  # the scan answered (maybe before the processor wrote)

    # The pipeline picked the file up: the scan, as printed, ends up showing it done.
    deadline = time.monotonic() + 60
    scan = "\n".join([block[0], *(line for line in block if "dynamodb scan" in line)])
    while True:
        again = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", scan],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert again.returncode == 0, again.stderr
        if "raw/photo.jpg" in again.stdout and re.search(r'"S":\s*"done"', again.stdout):
            break
        assert time.monotonic() < deadline, again.stdout[-2000:]
        time.sleep(1)
    assert AWS_CLI.exists()


def test_a_new_uploads_id_says_it_is_not_processed_yet(stack: StackProcess) -> None:
    with httpx.Client(timeout=30) as client:
        form = client.post(
            f"{stack.api}/uploads",
            json={"filename": "late.jpg", "content_type": "image/jpeg"},
            headers={"x-api-key": stack.api_key},
        ).json()
        got = client.get(f"{stack.api}/images/{form['id']}")  # nothing uploaded yet
    assert got.status_code == 404
    assert "not processed yet" in got.json()["detail"]
    assert got.headers.get("retry-after") == "1"


# --- the documented commands -----------------------------------------------------------------

# A ```sh block right after this line is run by the test below, as written, in one shell per
# document, against a started stack (its ports put in for the documented 8000 and 4566).
TESTED_MARK = "<!-- tested: runs against a started stack -->"
DOCUMENTED = ["README.md", "docs/local.md"]
DEFAULT_PORTS = {"http://127.0.0.1:8000": "api", "http://127.0.0.1:4566": "aws"}
_DEFAULT_URL = re.compile("|".join(re.escape(url) for url in DEFAULT_PORTS))


def with_ports(text: str, stack: StackProcess) -> str:
    """The documented default URLs replaced by this stack's, in one pass: replacing them one
    after the other would also rewrite a free port that happens to start with 4566."""
    return _DEFAULT_URL.sub(lambda m: str(getattr(stack, DEFAULT_PORTS[m.group(0)])), text)


def marked_blocks(text: str, name: str) -> list[str]:
    lines = text.splitlines()
    blocks = []
    for n, line in enumerate(lines):
        if line.strip() != TESTED_MARK:
            continue
        assert lines[n + 1].strip() == "```sh", f"{name}:{n + 2}: a tested block is a ```sh fence"
        end = lines.index("```", n + 2)
        blocks.append("\n".join(lines[n + 2 : end]))
    return blocks


def test_tested_blocks_are_found_and_only_sh_fences_count() -> None:
    text = f"intro\n{TESTED_MARK}\n```sh\necho one\necho two\n```\n```sh\nmake run\n```\n"
    assert marked_blocks(text, "x.md") == ["echo one\necho two"]
    with pytest.raises(AssertionError, match="x.md:2"):
        marked_blocks(f"{TESTED_MARK}\n```python\nprint()\n```\n", "x.md")


@pytest.mark.parametrize("doc", DOCUMENTED)
def test_the_documented_commands_run_as_written(
    stack: StackProcess, doc: str, tmp_path: Path
) -> None:
    blocks = marked_blocks((ROOT / doc).read_text(encoding="utf-8"), doc)
    assert blocks, f"{doc} marks no shell block as tested"
    script = "\n".join(blocks)
    script = with_ports(script, stack)
    # The user's folder: the clone's root (its .venv) with their photo in it.
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    shutil.copyfile(PHOTO, tmp_path / "photo.jpg")
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path, env=user_shell_env(tmp_path), capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert run.returncode == 0, (
        f"{doc}:\n{script}\n--- stdout\n{run.stdout}\n--- stderr\n{run.stderr}"
    )


@pytest.mark.parametrize("doc", DOCUMENTED)
def test_the_documented_banner_is_the_real_one(stack: StackProcess, doc: str) -> None:
    text = (ROOT / doc).read_text(encoding="utf-8")
    start = text.index("```\nimgpipe local stack is running.") + 4
    shown = text[start : text.index("```", start)].splitlines()
    assert shown[-1] == "ready"
    for line in shown:
        if "..." in line or line.startswith("  worker"):  # elided, or this machine's count
            continue
        line = with_ports(line, stack)
        assert line in stack.lines, f"{doc} shows a banner line `imgpipe local` does not print"
