"""`imgpipe upload` helpers and `imgpipe local` argument handling (the flows are in test_e2e)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from cli.commands.upload import ByteProgress, _check, content_type, iter_files
from cli.main import build_parser
from processor.core.errors import Refused
from tests.conftest import BAD, GOOD

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Landscape_1.jpg", "image/jpeg"),
        ("with-alpha.png", "image/png"),
        ("4.webp", "image/webp"),
        ("animated-loop-3.gif", "image/gif"),
        ("G31D.TIF", "image/tiff"),
        ("pitm.avif", "image/avif"),
    ],
)
def test_content_type_comes_from_the_bytes(name: str, expected: str) -> None:
    assert content_type(GOOD / name) == expected


def test_content_type_of_a_misnamed_file_is_its_real_one(tmp_path: Path) -> None:
    misnamed = tmp_path / "photo.png"
    misnamed.write_bytes((GOOD / "Landscape_1.jpg").read_bytes())
    assert content_type(misnamed) == "image/jpeg"


def test_unknown_formats_fall_back_to_the_name() -> None:
    assert content_type(BAD / "check.svg") == "image/svg+xml"


def test_folders_are_walked_and_hidden_files_skipped(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    for name in ("b.jpg", "sub/a.png", ".DS_Store"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.relative_to(tmp_path).as_posix() for p in iter_files([str(tmp_path)])] == [
        "b.jpg",
        "sub/a.png",
    ]


def test_progress_is_silent_off_a_terminal() -> None:
    stream = io.StringIO()
    progress = ByteProgress(100, 1, stream=stream)
    progress.advance(60, file_done=True)
    progress.close()
    assert stream.getvalue() == ""
    assert (progress.sent, progress.finished) == (60, 1)


class _Response:
    def __init__(self, status: int, body: str, content_type: str) -> None:
        self.status_code, self.text = status, body
        self.headers = {"content-type": content_type}

    def json(self) -> dict[str, object]:
        import json

        return dict(json.loads(self.text))


def test_api_problems_become_refusals_with_their_code() -> None:
    problem = '{"code": "upload_too_large", "detail": "too big", "status": 413}'
    with pytest.raises(Refused) as raised:
        _check(_Response(413, problem, "application/problem+json"), "upload")
    assert raised.value.code == "upload_too_large"
    assert "too big" in raised.value.message
    s3 = "<Error><Code>EntityTooLarge</Code><Message>no</Message></Error>"
    with pytest.raises(Refused) as raised:
        _check(_Response(400, s3, "application/xml"), "S3 POST")
    assert raised.value.code == "EntityTooLarge"


def test_local_command_defaults() -> None:
    args = build_parser().parse_args(["local"])
    assert (args.host, args.api_port, args.aws_port) == ("127.0.0.1", 8000, 4566)
    assert args.endpoint_url is None and not args.real_aws
    with pytest.raises(SystemExit):
        build_parser().parse_args(["local", "--endpoint-url", "http://x", "--real-aws"])


def test_an_empty_file_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    import json
    import subprocess

    from tests.cli.conftest import IMGPIPE

    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    # Port 9 (discard) is never asked: the file is refused before any request.
    run = subprocess.run(
        [str(IMGPIPE), "upload", "--api", "http://127.0.0.1:9", str(empty)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 1, run.stderr
    (line,) = [json.loads(x) for x in run.stdout.splitlines()]
    assert line["status"] == "refused"
    assert line["error"] == {
        "code": "empty_file",
        "message": "empty.jpg is empty (0 bytes): nothing to upload",
    }
