"""A remote store of dependency artifacts: an OCI registry (GHCR, Docker Hub, Harbor, any
distribution-spec registry), spoken to through :class:`geonox.registry.Registry`.

Each artifact (one dependency build, ``deps/<name>-<version>-<arch>-<key>``) is one OCI
artifact tagged ``<name>-<version>-<arch>-<key>``: a config blob holding the artifact's
manifest (its key, recipe commands, source sha256, toolchain identity, image digest: what
the key was made from) and one gzipped tar layer of its files.  A pull checks the config
against the artifact geonox wants (the same key, made from the same manifest) and every
blob against its digest before anything lands in the cache, unpacks into the artifact's
own place under its lock, and rewrites the cache path the pusher had in its text files
(CMake package files, ``.pc`` files, ``geos-config``) to the puller's: a pulled artifact
works at whatever path the puller's cache is.

This module knows artifacts only through :class:`StoredArtifact` (tag, key, manifest, its
place in the cache); which artifacts a prefix needs is :mod:`geonox.prefix`'s business.
Addresses, credentials and retries are the registry client's (loopback over plain HTTP,
``oci+http://`` to force it elsewhere; docker's credentials).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import requests

from geonox.cache import DEP_MARKER, FILES, Artifact, file_sha256, rewrite_bytes, text_bytes
from geonox.errors import ConfigError
from geonox.registry import Registry, RegistryError, scheme_for

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
ARTIFACT_TYPE = "application/vnd.geonox.dep.v1"
CONFIG_TYPE = "application/vnd.geonox.dep.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
#: What the config blob's format is; a puller refuses another.
FORMAT = 1


#: connect and read timeouts (seconds) of the cache's requests: a dead or silent registry
#: must cost a build seconds, not minutes (GEONOX_TIMEOUT sets the read timeout).  The read
#: timeout is the longest silence between two bytes, so a big blob is not cut by it.
CACHE_TIMEOUT = (5.0, 15.0)
#: answers to a push that mean no push will work in this run: a token that may pull but
#: not push (401/403), a registry that is full or refuses the size (413, 507)
PUSH_REFUSALS = {401: "its token may pull but not push", 403: "its token may pull but not push",
                 413: "it refuses an artifact this size", 507: "it is full"}  # fmt: skip


class RemoteError(Exception):
    """A remote store that could not be used for one artifact: a warning, then a local build."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RemoteSpec:
    url: str
    scheme: str  # http or https
    registry: str  # host[:port]
    repository: str

    @classmethod
    def parse(cls, text: str, key: str = "cache-remote") -> RemoteSpec:
        m = re.fullmatch(
            r"(oci|oci\+http|oci\+https)://([^/\s]+)/([a-z0-9]+(?:[._/-][a-z0-9]+)*)/?", text or ""
        )
        if not m:
            raise ConfigError(
                f"{key} = {text!r} is not an OCI repository URL: expected "
                "oci://<registry>/<repository> (e.g. oci://ghcr.io/org/geonox-cache; "
                "oci+http:// for a plain-HTTP registry).",
                key=key,
            )
        kind, registry, repository = m.groups()
        scheme = {"oci+http": "http", "oci+https": "https"}.get(kind) or scheme_for(registry)
        return cls(url=text, scheme=scheme, registry=registry, repository=repository)


@dataclass(frozen=True)
class StoredArtifact:
    """What the remote store needs of one dependency artifact."""

    tag: str  # <name>-<version>-<arch>-<key>: a valid OCI tag
    key: str
    manifest: Mapping[str, Any]  # what the key was made from
    artifact: Artifact  # its place in the local cache

    @property
    def path(self) -> Path:
        return self.artifact.path


class _NotInRemote(Exception):
    pass


class RemoteCache:
    def __init__(
        self,
        spec: RemoteSpec,
        *,
        push: bool,
        timeout: float | tuple[float, float] = CACHE_TIMEOUT,
    ) -> None:
        self.spec = spec
        self.push_enabled = push
        self._registry = Registry(spec.registry, scheme=spec.scheme, timeout=timeout)
        #: why the registry is not asked again in this run (it did not answer once: every
        #: later artifact would wait for the same timeout)
        self.unreachable: str | None = None
        #: why no push is tried again in this run (PUSH_REFUSALS)
        self.push_refused: str | None = None

    def __str__(self) -> str:
        return f"{self.spec.registry}/{self.spec.repository}"

    # ---------------------------------------------------------------- HTTP

    def _request(
        self,
        method: str,
        path: str,
        *,
        push: bool = False,
        ok: tuple[int, ...] = (200,),
        **kwargs: Any,
    ) -> requests.Response:
        if self.unreachable:
            raise RemoteError(f"{self.unreachable} earlier in this run")
        try:
            return self._registry.request(
                method,
                self.spec.repository,
                path,
                actions="pull,push" if push else "pull",
                ok=ok,
                **kwargs,
            )
        except RegistryError as exc:
            if exc.unreachable:
                self.unreachable = str(exc)
            if push and exc.status in PUSH_REFUSALS:
                self.push_refused = (
                    f"it refused a push (HTTP {exc.status}: {PUSH_REFUSALS[exc.status]})"
                )
            raise RemoteError(str(exc), status=exc.status) from None

    def _blob(self, digest: str, dest: IO[bytes] | None = None) -> bytes:
        """A blob, its sha256 checked (streamed into ``dest`` when given: then b"").  A
        connection cut in the middle is tried once more from the start."""
        for attempt in (1, 2):
            resp = self._request("GET", f"blobs/{digest}", stream=True)
            sha = hashlib.sha256()
            chunks = []
            if dest is not None:
                dest.seek(0)
                dest.truncate()
            try:
                for chunk in resp.iter_content(1 << 20):
                    sha.update(chunk)
                    if dest is None:
                        chunks.append(chunk)
                    else:
                        dest.write(chunk)
                break
            except requests.RequestException as exc:
                if attempt == 2:
                    raise RemoteError(
                        f"{self} cut blob {digest[:19]}… short twice ({type(exc).__name__})"
                    ) from None
            finally:
                resp.close()
        got = "sha256:" + sha.hexdigest()
        if got != digest:
            raise RemoteError(
                f"blob {digest[:19]}… arrived as {got[:19]}… (digest mismatch): refused"
            )
        return b"".join(chunks)

    def _upload(self, data: bytes | Path, digest: str, size: int) -> None:
        """A blob, unless the registry has it; an upload whose connection broke off is
        started once more."""
        exists = self._request("HEAD", f"blobs/{digest}", push=True, ok=(200, 404))
        if exists.status_code == 200:
            return
        for attempt in (1, 2):
            start = self._request("POST", "blobs/uploads/", push=True, ok=(202,))
            location = start.headers.get("Location", "")
            if location.startswith("/"):
                location = f"{self.spec.scheme}://{self.spec.registry}{location}"
            sep = "&" if "?" in location else "?"
            body = data.open("rb") if isinstance(data, Path) else io.BytesIO(data)
            try:
                with body:
                    self._request(
                        "PUT",
                        "",
                        push=True,
                        ok=(201,),
                        url=f"{location}{sep}digest={digest}",
                        data=body,
                        headers={
                            "Content-Type": "application/octet-stream",
                            "Content-Length": str(size),
                        },
                    )
                return
            except RemoteError as exc:
                if attempt == 2 or exc.status is not None or self.unreachable:
                    raise

    # ---------------------------------------------------------------- artifacts

    def pull(self, stored: StoredArtifact, place: Path, cache_root: Path) -> dict[str, Any] | None:
        """Fill ``place`` with ``stored`` from the registry and return its marker's JSON;
        None when the registry does not hold it.  Raises RemoteError when it holds
        something that is not that artifact, or could not be read (nothing is left in
        ``place``'s parent then but what the caller removes)."""
        tag = stored.tag
        resp = self._request(
            "GET", f"manifests/{tag}", ok=(200, 404), headers={"Accept": MANIFEST_TYPE}
        )
        if resp.status_code == 404:
            return None
        try:
            manifest = resp.json()
            config_desc, (layer,) = manifest["config"], manifest["layers"]
        except (ValueError, KeyError, TypeError):
            raise RemoteError(
                f"{tag} in {self} is not a geonox artifact (unexpected manifest)"
            ) from None
        if config_desc.get("mediaType") != CONFIG_TYPE or layer.get("mediaType") != LAYER_TYPE:
            raise RemoteError(
                f"{tag} in {self} is not a geonox artifact ({config_desc.get('mediaType')})"
            )
        config = json.loads(self._blob(config_desc["digest"]))
        if (
            config.get("format") != FORMAT
            or config.get("key") != stored.key
            or _comparable(config.get("artifact", {})) != _comparable(stored.manifest)
        ):
            raise RemoteError(
                f"{tag} in {self} was made from other inputs than this build's key "
                "says (a different recipe, source or toolchain): refused"
            )
        place.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=place.parent) as tmp:
            self._blob(layer["digest"], tmp)
            tmp.seek(0)
            place.mkdir(parents=True, exist_ok=True)
            with tarfile.open(fileobj=tmp, mode="r:gz") as tar:
                tar.extractall(place, filter="data")
        relocate(place, config["cache_root"], str(cache_root))
        made = {k: v for k, v in config["artifact"].items() if k != FILES}
        return dict(made, pulled=f"{self}:{tag}")

    def pull_into_cache(
        self,
        stored: StoredArtifact,
        cache_root: Path,
        on_wait: Callable[[str], None] | None = None,
    ) -> bool | None:
        """``stored`` pulled into its place in the cache, under its lock: True when pulled
        now, False when it was complete already, None when the registry does not hold it
        (nothing is left behind then, nor when RemoteError is raised)."""

        def fill(place: Path) -> dict[str, Any]:
            got = self.pull(stored, place, cache_root)
            if got is None:
                raise _NotInRemote()
            return got

        try:
            return stored.artifact.ensure(fill, in_place=True, on_wait=on_wait)
        except _NotInRemote:
            return None

    def push(self, stored: StoredArtifact, cache_root: Path) -> str:
        """Upload the complete artifact ``stored`` (tag, config, layer); returns its reference.
        After a refusal (:data:`PUSH_REFUSALS`) it is not tried again in this run."""
        if self.push_refused:
            raise RemoteError(self.push_refused)
        # what it was made from; its files' digests are this cache's (paths relocated on pull)
        marker = json.loads((stored.path / DEP_MARKER).read_text())
        marker.pop(FILES, None)
        config = json.dumps(
            {
                "format": FORMAT,
                "key": stored.key,
                "artifact": marker,
                "cache_root": str(cache_root),
            },
            sort_keys=True,
        ).encode()
        with tempfile.NamedTemporaryFile(suffix=".tar.gz") as tmp:
            _pack(stored.path, Path(tmp.name), skip={DEP_MARKER})
            layer = Path(tmp.name)
            layer_digest = "sha256:" + file_sha256(layer)
            layer_size = layer.stat().st_size
            self._upload(layer, layer_digest, layer_size)
        config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        self._upload(config, config_digest, len(config))
        tag = stored.tag
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST_TYPE,
                "artifactType": ARTIFACT_TYPE,
                "config": {"mediaType": CONFIG_TYPE, "digest": config_digest, "size": len(config)},
                "layers": [
                    {
                        "mediaType": LAYER_TYPE,
                        "digest": layer_digest,
                        "size": layer_size,
                        "annotations": {"org.opencontainers.image.title": f"{tag}.tar.gz"},
                    }
                ],
                "annotations": {"dev.geonox.key": stored.key},
            },
            sort_keys=True,
        ).encode()
        self._request(
            "PUT",
            f"manifests/{tag}",
            push=True,
            ok=(201,),
            data=manifest,
            headers={"Content-Type": MANIFEST_TYPE},
        )
        return f"{self}:{tag}"


def _comparable(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """An artifact manifest without what one build of it differs in from another."""
    return {k: v for k, v in manifest.items() if k not in ("key", "seconds", "pulled", FILES)}


def _pack(root: Path, dest: Path, skip: set[str]) -> None:
    """``root``'s files as a gzipped tar, in name order, owner and times normalised."""

    def normal(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = 0
        return info

    entries = sorted(p for p in root.rglob("*") if p.relative_to(root).parts[0] not in skip)
    with (
        open(dest, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in entries:
            tar.add(path, arcname=str(path.relative_to(root)), recursive=False, filter=normal)


def relocate(root: Path, old: str, new: str) -> list[str]:
    """Rewrite ``old`` (the pusher's cache path) to ``new`` in the text files under ``root``;
    returns what was rewritten.  Binary files are left: a path in one would be a bug of the
    recipe (the key never holds a cache path, and release builds embed none)."""
    if old == new:
        return []
    was, now = (old.rstrip("/") + "/").encode(), (new.rstrip("/") + "/").encode()
    done = []
    for path in sorted(root.rglob("*")):
        data = text_bytes(path)
        if data is None or was not in data:
            continue
        rewrite_bytes(path, data.replace(was, now))
        done.append(str(path.relative_to(root)))
    return done
