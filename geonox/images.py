"""Build images: which image serves an arch, resolving a tag to a digest through the
registry HTTP API, and the lock file that pins them.

The lock file (``geonox-images.lock`` beside pyproject.toml, committed) keeps, per arch,
the image reference as configured (with its tag) and the digest the registry reported
for that arch.  Builds run the image by digest and refuse an unpinned one unless
``allow-unpinned = true``.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from geonox.cache import write_atomic
from geonox.errors import UserError
from geonox.registry import Registry, RegistryError
from geonox.targets import OCI_ARCH, Target

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

LOCK_NAME = "geonox-images.lock"
DEFAULT_IMAGES = {
    "manylinux_2_28": "quay.io/pypa/manylinux_2_28_{arch}:latest",
    "manylinux_2_17": "quay.io/pypa/manylinux2014_{arch}:latest",
    "musllinux_1_2": "quay.io/pypa/musllinux_1_2_{arch}:latest",
}
# geonox/dockerfiles/<name>.Dockerfile: dnf/yum geospatial build deps on the pinned image.
DEFAULT_DOCKERFILES = {"manylinux_2_28": "manylinux_2_28", "manylinux_2_17": "manylinux2014"}
INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class ImageRef:
    """``registry/repository[:tag][@digest]``, split the way the registry API needs it."""

    registry: str  # "quay.io", "127.0.0.1:5000", "registry-1.docker.io"
    repository: str  # "pypa/manylinux_2_28_x86_64"
    tag: str | None
    digest: str | None

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        rest, _, after = text.partition("@")
        digest = after if "@" in text else None
        if digest is not None and not DIGEST_RE.fullmatch(digest):
            raise UserError(
                f"image reference {text!r} has a malformed digest (want sha256:<64 hex>)."
            )
        first, _, remainder = rest.partition("/")
        if remainder and ("." in first or ":" in first or first == "localhost"):
            registry, path = first, remainder
        else:
            registry, path = "docker.io", rest
        name, _, tag = path.rpartition(":") if ":" in path.rsplit("/", 1)[-1] else (path, "", "")
        if not name or not re.fullmatch(r"[a-z0-9]+(?:[._/-][a-z0-9]+)*", name):
            raise UserError(
                f"{text!r} is not an image reference like "
                f"quay.io/pypa/manylinux_2_28_x86_64:latest."
            )
        if registry == "docker.io":
            registry = "registry-1.docker.io"
            if "/" not in name:
                name = f"library/{name}"
        return cls(registry, name, tag or None, digest)

    @property
    def name(self) -> str:
        """The reference without tag or digest, as docker spells it."""
        if self.registry == "registry-1.docker.io":
            return self.repository.removeprefix("library/")
        return f"{self.registry}/{self.repository}"

    def with_digest(self, digest: str) -> str:
        return f"{self.name}@{digest}"

    def __str__(self) -> str:
        return (
            self.name
            + (f":{self.tag}" if self.tag else "")
            + (f"@{self.digest}" if self.digest else "")
        )


def image_for(images: Mapping[str, str], target: Target) -> str:
    """The image that serves ``target``: as configured (keyed by its label, ``x86_64`` or
    ``x86_64-musl``), else the policy's manylinux or musllinux image from pypa."""
    if images.get(target.label):
        return images[target.label]
    template = DEFAULT_IMAGES.get(target.policy)
    if template is None:
        raise UserError(
            f"no default {target.family} image for policy {target.policy}; set "
            f'images = {{ "{target.label}" = "…" }} in [tool.geonox].'
        )
    return template.format(arch=target.arch)


def default_dockerfile(policy: str) -> Path:
    """geonox's build-image Dockerfile for a policy (shipped in the package)."""
    name = DEFAULT_DOCKERFILES.get(policy)
    if name is None:
        raise UserError(
            f"geonox ships no build-image Dockerfile for {policy} (it has "
            f'{" and ".join(DEFAULT_DOCKERFILES.values())}); set dockerfile = "…".'
        )
    return Path(__file__).parent / "dockerfiles" / f"{name}.Dockerfile"


# ------------------------------------------------------------------ registry API


def resolve_digest(reference: str, arch: str) -> str:
    """The digest of ``reference``'s image for ``arch``: the manifest's own digest, or for a
    multi-arch index the digest of its linux/<arch> manifest.  Asked through
    :class:`geonox.registry.Registry` (docker's credentials, the token flow, loopback over
    plain HTTP), so an image in a private registry pins with the login the cache uses."""
    ref = ImageRef.parse(reference)
    reference_part = ref.digest or ref.tag or "latest"
    oci = OCI_ARCH[arch]
    try:
        with Registry(ref.registry) as registry:
            resp = registry.request(
                "GET",
                ref.repository,
                f"manifests/{reference_part}",
                ok=(200, 404),
                headers={"Accept": ", ".join(INDEX_TYPES + MANIFEST_TYPES)},
            )
            if resp.status_code == 404:
                raise UserError(
                    f"{ref.registry} has no manifest {reference_part!r} for {ref.repository} "
                    f"(HTTP 404). Check the image name and tag."
                )
            body = resp.json()
            media = body.get("mediaType") or resp.headers.get("Content-Type", "").split(";")[0]
            if media in INDEX_TYPES or "manifests" in body:
                for entry in body.get("manifests", []):
                    platform = entry.get("platform", {})
                    if platform.get("os") == "linux" and platform.get("architecture") == oci:
                        return str(entry["digest"])
                found = sorted(
                    {m.get("platform", {}).get("architecture", "?") for m in body["manifests"]}
                )
                raise UserError(
                    f"{reference} is a multi-arch index without linux/{oci} "
                    f"(it has: {', '.join(found)}); choose an image for {arch}."
                )
            digest = resp.headers.get("Docker-Content-Digest") or (
                "sha256:" + hashlib.sha256(resp.content).hexdigest()
            )
            config = body.get("config", {}).get("digest")
            if config:  # a single-arch manifest: make sure it is the arch we want
                blob = registry.request("GET", ref.repository, f"blobs/{config}", ok=(200, 404))
                image_arch = blob.json().get("architecture") if blob.status_code == 200 else None
                if image_arch and image_arch != oci:
                    raise UserError(
                        f"{reference} is a linux/{image_arch} image, not linux/{oci}: "
                        f"choose the {arch} image."
                    )
            return digest
    except RegistryError as exc:
        raise UserError(
            f"could not resolve {reference} for {arch}: {exc}. Check the network, the image "
            f"name and the login (docker login {ref.registry}), or pin the image by digest "
            f'by hand (images = {{ {arch} = "…@sha256:…" }}).'
        ) from None
    except ValueError:  # a body that is not JSON
        raise UserError(
            f"{ref.registry} answered for {reference} with something that is not an image "
            "manifest; check the image name."
        ) from None


# ------------------------------------------------------------------ lock file


@dataclass(frozen=True)
class LockEntry:
    arch: str  # the target's label: x86_64, x86_64-musl
    image: str  # as configured, tag included
    digest: str


class ImageLock:
    """``geonox-images.lock``: per arch, the configured image and its pinned digest."""

    def __init__(self, path: Path, entries: dict[str, LockEntry] | None = None) -> None:
        self.path = path
        self.entries = dict(entries or {})

    @classmethod
    def load(cls, project: Path) -> ImageLock:
        path = project / LOCK_NAME
        if not path.is_file():
            return cls(path)
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise UserError(
                f"{path} is not valid TOML ({exc}); run `python -m geonox pin` to write it again."
            ) from None
        entries = {}
        for arch, table in data.get("images", {}).items():
            digest = table.get("digest", "")
            if not DIGEST_RE.fullmatch(digest):
                raise UserError(
                    f"{path}: images.{arch}.digest = {digest!r} is not a sha256 "
                    f"digest; run `python -m geonox pin`."
                )
            entries[arch] = LockEntry(arch, table.get("image", ""), digest)
        return cls(path, entries)

    def save(self) -> None:
        lines = [
            "# Written by `python -m geonox pin` (or `nox -s pin-images`); commit this file.",
            "# Each image is run by the digest below; the tag is kept for humans and for",
            "# `pin` to resolve again.",
            "",
        ]
        for arch in sorted(self.entries):
            e = self.entries[arch]
            lines += [
                f"[images.{arch}]",
                f"image = {json.dumps(e.image)}",
                f"digest = {json.dumps(e.digest)}",
                "",
            ]
        write_atomic(self.path, "\n".join(lines))


@dataclass(frozen=True)
class PinnedImage:
    arch: str
    image: str  # as configured
    run_ref: str  # what the engine runs: name@digest (or the tag when unpinned)
    digest: str | None


def pinned_image(image: str, target: Target, lock: ImageLock, allow_unpinned: bool) -> PinnedImage:
    """The reference a build may run for ``target``, or a UserError saying how to pin it
    (the lock file keys images by the target's label)."""
    arch, label = target.arch, target.label
    ref = ImageRef.parse(image)
    if ref.digest:  # pinned as written in the config
        return PinnedImage(arch, image, ref.with_digest(ref.digest), ref.digest)
    entry = lock.entries.get(label)
    if entry and entry.image == image:
        return PinnedImage(arch, image, ref.with_digest(entry.digest), entry.digest)
    if allow_unpinned:
        return PinnedImage(arch, image, str(ref), None)
    why = (
        f"{lock.path.name} pins {entry.image!r} for {label}, but the config now says {image!r}"
        if entry
        else f"{image} has no digest in {lock.path}"
    )
    raise UserError(
        f"refusing to build with an unpinned image: {why}. Run `python -m geonox pin` "
        f"(or `nox -s pin-images`) and commit {lock.path.name}, or set "
        f"allow-unpinned = true in [tool.geonox] to accept whatever the tag points to."
    )


def pin_images(
    project: Path,
    targets: Sequence[Target],
    images: Mapping[str, str],
    log: Callable[[str], None] = print,
) -> ImageLock:
    """Resolve every target's configured image to its digest and write the lock file."""
    lock = ImageLock.load(project)
    for target in targets:
        label = target.label
        image = image_for(images, target)
        ref = ImageRef.parse(image)
        if ref.digest:
            log(f"{label}: {image} is pinned in the config itself; nothing to resolve")
            continue
        digest = resolve_digest(image, target.arch)
        old = lock.entries.get(label)
        lock.entries[label] = LockEntry(label, image, digest)
        change = (
            ""
            if old is None
            else (
                " (unchanged)"
                if old.digest == digest and old.image == image
                else f" (was {old.digest})"
            )
        )
        log(f"{label}: {image} -> {digest}{change}")
    lock.save()
    log(f"wrote {lock.path}")
    return lock
