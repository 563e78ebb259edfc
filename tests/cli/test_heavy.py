"""Heavy inputs through the local stack, with a small function and a tight clock.

GIVEN the local stack with a 512 MB processor (the template's minimum), a 0.5 s budget per
image and a time reserve that leaves room for about one slow image per invocation
WHEN one batch brings a GIF memory bomb, a GIF too costly for this function, an image that
cannot finish in its budget and several good ones
THEN every good image ends done within one redelivery, the bombs are refused from their
headers with their codes, the slow one is failed with `timeout`, no execution environment
ever grew past its memory, and the dead-letter queue stays empty.

Inputs are generated here (flat pixels compress to almost nothing): nothing big is committed.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from cli.local.stack import LocalStack, StackOptions
from processor.core.keys import image_id

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.xdist_group("local_stack"),
    pytest.mark.timeout(180),
]

MEMORY_MB = 512
MiB = 1024 * 1024


def flat_gif(path: Path, side: int) -> Path:
    from PIL import Image

    Image.new("P", (side, side)).save(path)  # libvips' gifsave is far slower at this size
    return path


def slow_tiff(path: Path) -> Path:
    """2 MB of float TIFF that takes about 2 s of CPU to shrink, in little memory (2000 px
    wide, streamed): even on two idle fast cores that is twice its 0.5 s budget."""
    import pyvips

    image = (pyvips.Image.black(2000, 65000, bands=4) + 100).cast("float")
    image.copy(interpretation="scrgb").tiffsave(str(path), compression="deflate")
    return path


def good_jpeg(path: Path, n: int) -> Path:
    import pyvips

    (pyvips.Image.black(640, 480, bands=3) + 20 * n).cast("uchar").jpegsave(str(path))
    return path


def test_a_batch_of_heavy_inputs_never_fails_together(moto_endpoint: str, tmp_path: Path) -> None:
    from tests.cli.conftest import aws_client, queue_count, wait_final

    files = {
        "slow.tif": slow_tiff(tmp_path / "slow.tif"),
        **{f"good-{n}.jpg": good_jpeg(tmp_path / f"good-{n}.jpg", n) for n in range(4)},
        # 64 MP: decoded whole it would need about 400 MB above the runtime's 150 MB
        "bomb.gif": flat_gif(tmp_path / "bomb.gif", 8000),
        # 36 MP: inside the pixel limit, but about 250 MB of the 200 MB each image may use
        "costly.gif": flat_gif(tmp_path / "costly.gif", 6000),
    }
    stack = LocalStack(
        StackOptions(
            api_port=0,
            cdn_port=0,
            endpoint_url=moto_endpoint,
            stack_name=f"heavy-{uuid.uuid4().hex[:8]}",
            concurrency=1,
            function_memory_mb=MEMORY_MB,
            function_timeout_s=15,
            visibility_timeout_s=3,
            function_environment={
                "IMGPIPE_MEMORY_RESERVE_MB": "312",  # 200 MB per image
                # The slow image's work is several times this on any machine, and a good
                # 640x480 JPEG's a small fraction of it even on a loaded one.
                "IMGPIPE_IMAGE_TIME_BUDGET_S": "0.5",
                # 13.5 s + 0.5 s of the 15: an image starts only in the first second or so,
                # so what follows the slow one waits for the next invocation
                "IMGPIPE_TIME_RESERVE_S": "13.5",
                # should a loaded machine starve the slow one, its retry comes back at once
                "IMGPIPE_RETRY_DELAY_S": "1",
            },
        )
    )
    try:
        stack.start()
        assert stack.resources is not None and stack.spec is not None
        s3, sqs, dynamodb = (aws_client(name, moto_endpoint) for name in ("s3", "sqs", "dynamodb"))
        bucket = stack.resources.bucket
        # WHEN every file is uploaded at once (one batch, as the event source would gather)
        ids = {}
        for name, path in files.items():
            key = f"raw/{name}"
            s3.upload_file(str(path), bucket, key)
            ids[name] = image_id(bucket, key)
        records = wait_final(dynamodb, stack.resources.table, ids, timeout_s=90)
        invokers = stack.invokers
        peaks = [invoker.peak_rss_bytes for invoker in invokers]
        kills = sum(invoker.memory_kills for invoker in invokers)
        dead = queue_count(sqs, stack.resources.dlq_url)
        left = queue_count(sqs, stack.resources.queue_url)
        stats = stack.worker.stats if stack.worker else None
    finally:
        stack.stop()

    # THEN the good images are done
    for n in range(4):
        assert records[f"good-{n}.jpg"]["status"] == "done", records[f"good-{n}.jpg"]
    # ... the bombs refused from their headers, with a code and a reason
    bomb = records["bomb.gif"]
    assert (bomb["status"], bomb["error"]["code"]) == ("failed", "too_many_pixels")
    assert "GIF is decoded whole" in bomb["error"]["message"]
    costly = records["costly.gif"]
    assert (costly["status"], costly["error"]["code"]) == ("failed", "too_costly")
    assert costly["error"]["message"].endswith("this function allows 200 MB per image")
    # ... the slow one stopped at its budget
    slow = records["slow.tif"]
    assert (slow["status"], slow["error"]["code"]) == ("failed", "timeout")
    assert "time budget of 0.5 s" in slow["error"]["message"]
    # ... no environment grew past its memory, nothing was stopped for it
    assert kills == 0
    assert peaks and all(0 < peak <= MEMORY_MB * MiB for peak in peaks), peaks
    # ... nothing waits, nothing is dead, and no invocation failed as a whole
    assert dead == 0 and left == 0
    assert stats is not None and stats.batch_errors == 0
