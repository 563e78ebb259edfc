"""Which commit the images are built from: the default image tag and the revision label."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from infra.deploy.plan import REPO_ROOT
from infra.errors import DeployError

# What the images are built from (the .dockerignore allow-list and the Dockerfiles).
IMAGE_PATHS = ("pyproject.toml", ".dockerignore", "docker", "processor", "api")


def git_tag(
    repo: Path = REPO_ROOT,
    now: Callable[[], datetime] | None = None,
    paths: Sequence[str] = IMAGE_PATHS,
) -> str:
    """The commit's short hash, naming what the images hold.

    Changed or untracked files under ``paths`` would go into the image without being in the
    commit, so the tag gets a time suffix then: ECR tags are immutable, and the same tag must
    never name two different images.
    """

    def git(*args: str) -> str:
        try:
            done = subprocess.run(
                ["git", *args], cwd=repo, capture_output=True, text=True, check=True
            )
        except (FileNotFoundError, subprocess.CalledProcessError) as e:
            raise DeployError(f"cannot read the git commit ({e}); pass --tag") from e
        return done.stdout.strip()

    sha = git("rev-parse", "--short=12", "HEAD")
    if git("status", "--porcelain", "--untracked-files=all", "--", *paths):
        stamp = (now or (lambda: datetime.now(UTC)))().strftime("%Y%m%d%H%M%S")
        return f"{sha}-dirty-{stamp}"
    return sha
