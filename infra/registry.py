"""Read back what a push put in a registry: the manifest and the image's config.

Docker Registry HTTP API v2, which ECR speaks too (HTTP Basic with the user and password of
ECR's authorisation token). A deploy reads the pushed image's architecture before it points
a stack at it: an amd64 image behind an arm64 function fails only when Lambda starts it.
The same reader lets the image tests check a push to a local registry.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

# A single image (what `docker push` of one platform sends) and the lists/indexes that name
# one image per platform (buildx pushes those).
_SINGLE = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
)
_LISTS = (
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
)
# Lambda's names for an architecture -> the OCI/Docker ones in manifests and image configs.
OCI_ARCHITECTURES = {"arm64": "arm64", "x86_64": "amd64"}
# Docker talks plain HTTP to registries on the loopback interface and HTTPS to all others.
_LOOPBACK = ("localhost", "127.0.0.1", "[::1]")


class RegistryError(Exception):
    """The registry refused or does not have what was asked; the message says which."""


@dataclass(frozen=True)
class ImageReference:
    registry: str  # host[:port]
    repository: str
    tag: str

    @classmethod
    def parse(cls, uri: str) -> ImageReference:
        registry, slash, rest = uri.partition("/")
        repository, colon, tag = rest.rpartition(":")
        if not slash or not colon or not repository or "/" in tag:
            raise RegistryError(f"{uri!r} is not registry/repository:tag")
        return cls(registry, repository, tag)

    @property
    def base_url(self) -> str:
        if self.registry.startswith("["):
            host = self.registry[: self.registry.find("]") + 1]
        else:
            host = self.registry.split(":", 1)[0]
        scheme = "http" if host in _LOOPBACK else "https"
        return f"{scheme}://{self.registry}/v2/{self.repository}"


@dataclass(frozen=True)
class PushedImage:
    uri: str
    digest: str  # of the manifest: what the registry names this image by
    media_type: str
    os: str
    architecture: str  # OCI name: amd64, arm64
    labels: dict[str, str]
    size: int  # bytes stored in the registry: config plus compressed layers
    layers: int
    # The tag names a multi-platform list (an OCI index), not one image: Lambda refuses
    # those, whatever platform the list holds.
    index: bool = False


class RegistryClient:
    """Reads manifests and configs; ``username``/``password`` when the registry wants them."""

    def __init__(
        self, username: str | None = None, password: str | None = None, timeout_s: float = 30
    ) -> None:
        self._auth = None
        if username is not None and password is not None:
            token = base64.b64encode(f"{username}:{password}".encode()).decode()
            self._auth = f"Basic {token}"
        self._timeout = timeout_s

    def _get(self, url: str, accept: tuple[str, ...] = ()) -> tuple[bytes, dict[str, str]]:
        request = urllib.request.Request(url)
        if accept:
            request.add_header("Accept", ", ".join(accept))
        if self._auth:
            request.add_header("Authorization", self._auth)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                return response.read(), dict(response.headers)
        except urllib.error.HTTPError as e:
            raise RegistryError(f"GET {url}: HTTP {e.code} {e.reason}") from e
        except (urllib.error.URLError, OSError) as e:
            raise RegistryError(f"GET {url}: {e}") from e

    def _json(self, url: str, accept: tuple[str, ...] = ()) -> tuple[dict[str, Any], str]:
        body, headers = self._get(url, accept)
        digest = {k.lower(): v for k, v in headers.items()}.get("docker-content-digest", "")
        data: dict[str, Any] = json.loads(body)
        return data, digest

    def image(self, uri: str, architecture: str | None = None) -> PushedImage:
        """The image ``uri`` names. A multi-platform list resolves to ``architecture`` (OCI
        name), which must then be in it."""
        ref = ImageReference.parse(uri)
        manifest, digest = self._json(f"{ref.base_url}/manifests/{ref.tag}", _SINGLE + _LISTS)
        media_type = str(manifest.get("mediaType", ""))
        index = media_type in _LISTS or "manifests" in manifest
        if index:
            platforms = [
                m
                for m in manifest.get("manifests", [])
                if m.get("platform", {}).get("os") != "unknown"  # attestations, not images
            ]
            chosen = [
                m for m in platforms if m.get("platform", {}).get("architecture") == architecture
            ]
            if not chosen:
                found = sorted(m.get("platform", {}).get("architecture", "?") for m in platforms)
                raise RegistryError(f"{uri} has no {architecture} image (it has {found})")
            digest = str(chosen[0]["digest"])
            manifest, _ = self._json(f"{ref.base_url}/manifests/{digest}", _SINGLE)
            media_type = str(manifest.get("mediaType", ""))
        config_ref = manifest["config"]
        config, _ = self._json(f"{ref.base_url}/blobs/{config_ref['digest']}")
        layers = manifest.get("layers", [])
        return PushedImage(
            uri=uri,
            digest=digest,
            media_type=media_type,
            os=str(config.get("os", "")),
            architecture=str(config.get("architecture", "")),
            labels=dict((config.get("config") or {}).get("Labels") or {}),
            size=int(config_ref.get("size", 0)) + sum(int(la.get("size", 0)) for la in layers),
            layers=len(layers),
            index=index,
        )
