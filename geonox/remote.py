"""A remote store of dependency artifacts: an OCI registry (GHCR, Docker Hub, Harbor, any
distribution-spec registry), spoken to through its HTTP API with requests.

Each artifact (one dependency build, ``deps/<name>-<version>-<arch>-<key>``) is one OCI
artifact tagged ``<name>-<version>-<arch>-<key>``: a config blob holding the artifact's
manifest (its key, recipe commands, source sha256, toolchain identity, image digest: what
the key was made from) and one gzipped tar layer of its files.  A pull checks the config
against the artifact geonox wants (the same key, made from the same manifest) and every
blob against its digest before anything lands in the cache, unpacks into the artifact's
own place under its lock, and rewrites the cache path the pusher had in its text files
(CMake package files, ``.pc`` files, ``geos-config``) to the puller's: a pulled artifact
works at whatever path the puller's cache is.

A registry on a loopback address is spoken to over plain HTTP, as docker does for
127.0.0.0/8; ``oci+http://`` forces it elsewhere.  Credentials are docker's, found as the
docker client finds them in ``$DOCKER_CONFIG/config.json``: the registry's credential
helper (``credHelpers``), else the default one (``credsStore``), each asked through the
helper protocol (``docker-credential-<name> get``), else the ``auths`` entry ``docker
login`` wrote; used for the registry's token flow or basic auth.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from geonox.errors import ConfigError

if TYPE_CHECKING:
    from geonox.config import Config
    from geonox.steps.deps import DepBuild

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
ARTIFACT_TYPE = "application/vnd.geonox.dep.v1"
CONFIG_TYPE = "application/vnd.geonox.dep.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
#: What the config blob's format is; a puller refuses another.
FORMAT = 1
_LOOPBACK = re.compile(r"^(localhost|127(\.\d+){3}|\[::1\])(:\d+)?$")


class RemoteError(Exception):
    """A remote store that could not be used for one artifact: a warning, then a local build."""


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
        scheme = {"oci+http": "http", "oci+https": "https"}.get(kind) or (
            "http" if _LOOPBACK.match(registry) else "https"
        )
        return cls(url=text, scheme=scheme, registry=registry, repository=repository)


def tag_of(build: DepBuild) -> str:
    return build.path.name  # <name>-<version>-<arch>-<key>: a valid OCI tag


def _docker_auth(registry: str) -> str | None:
    """``user:password`` for ``registry`` from docker's client config, if it has them."""
    config_path = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError):
        return None
    helper = (config.get("credHelpers") or {}).get(registry) or config.get("credsStore")
    if helper:
        found = _helper_auth(str(helper), registry)
        if found:
            return found
    for name, entry in (config.get("auths") or {}).items():
        host = re.sub(r"^https?://", "", name).split("/")[0]
        if host == registry and isinstance(entry, dict) and entry.get("auth"):
            try:
                return base64.b64decode(entry["auth"]).decode()
            except ValueError:
                return None
    return None


def _helper_auth(helper: str, registry: str) -> str | None:
    """What ``docker-credential-<helper> get`` knows for ``registry`` (None when it knows
    nothing, is missing, or holds an identity token, which basic auth cannot use)."""
    try:
        done = subprocess.run(
            [f"docker-credential-{helper}", "get"],
            input=registry,
            text=True,
            capture_output=True,
            timeout=30,
        )
        answer = json.loads(done.stdout) if done.returncode == 0 else {}
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None
    user, secret = answer.get("Username"), answer.get("Secret")
    if not user or not secret or user == "<token>":
        return None
    return f"{user}:{secret}"


class _NotInRemote(Exception):
    pass


class RemoteCache:
    def __init__(self, spec: RemoteSpec, *, push: bool, timeout: float = 60.0) -> None:
        self.spec = spec
        self.push_enabled = push
        self.timeout = timeout
        self._session = requests.Session()
        self._auth: dict[str, str] = {}  # scope -> Authorization header value

    @classmethod
    def of(cls, config: Config, *, push: bool | None = None) -> RemoteCache | None:
        """The project's remote store (None when none is configured); ``push`` overrides
        ``cache-push``."""
        if config.cache_remote is None:
            return None
        return cls(
            config.cache_remote,
            push=config.cache_push if push is None else push,
            timeout=config.env.timeout or 60.0,
        )

    def __str__(self) -> str:
        return f"{self.spec.registry}/{self.spec.repository}"

    # ---------------------------------------------------------------- HTTP

    def _url(self, path: str) -> str:
        return f"{self.spec.scheme}://{self.spec.registry}/v2/{self.spec.repository}/{path}"

    def _request(
        self, method: str, url: str, *, scope: str, ok: tuple[int, ...], **kwargs: Any
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))

        def send() -> requests.Response:
            if scope in self._auth:
                headers["Authorization"] = self._auth[scope]
            try:
                return self._session.request(
                    method, url, headers=headers, timeout=self.timeout, **kwargs
                )
            except requests.RequestException as exc:
                raise RemoteError(
                    f"{self.spec.registry} did not answer ({type(exc).__name__})"
                ) from None

        resp = send()
        if resp.status_code == 401:  # once more, with the credentials it asks for
            self._authenticate(resp.headers.get("WWW-Authenticate", ""), scope)
            if hasattr(kwargs.get("data"), "seek"):
                kwargs["data"].seek(0)
            resp = send()
            if resp.status_code == 401:
                raise RemoteError(
                    f"{self.spec.registry} refused the credentials for {scope} "
                    "(docker login to it, or check the token's rights)"
                )
        if resp.status_code not in ok:
            raise RemoteError(
                f"{self.spec.registry} answered HTTP {resp.status_code} to "
                f"{method} {url.split('/v2/', 1)[-1].split('?')[0]}"
            )
        return resp

    def _authenticate(self, challenge: str, scope: str) -> None:
        creds = _docker_auth(self.spec.registry)
        if challenge.lower().startswith("basic"):
            if not creds:
                raise RemoteError(
                    f"{self.spec.registry} wants a login (docker login {self.spec.registry})"
                )
            self._auth[scope] = "Basic " + base64.b64encode(creds.encode()).decode()
            return
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        realm = params.pop("realm", None)
        if not realm:
            raise RemoteError(
                f"{self.spec.registry} asked for authentication without a token realm"
            )
        params["scope"] = f"repository:{self.spec.repository}:{scope}"
        auth = tuple(creds.split(":", 1)) if creds and ":" in creds else None
        try:
            resp = self._session.get(realm, params=params, auth=auth, timeout=self.timeout)
        except requests.RequestException as exc:
            raise RemoteError(f"{realm} did not answer ({type(exc).__name__})") from None
        token = resp.json().get("token") or resp.json().get("access_token") if resp.ok else None
        if not token:
            raise RemoteError(
                f"{realm} gave no token for {params['scope']} (HTTP {resp.status_code})"
            )
        self._auth[scope] = f"Bearer {token}"

    def _blob(self, digest: str, dest: io.BufferedIOBase | None = None) -> bytes | None:
        """A blob, its sha256 checked (into ``dest`` as it streams when given)."""
        resp = self._request(
            "GET", self._url(f"blobs/{digest}"), scope="pull", ok=(200,), stream=True
        )
        sha = hashlib.sha256()
        chunks = []
        for chunk in resp.iter_content(1 << 20):
            sha.update(chunk)
            if dest is None:
                chunks.append(chunk)
            else:
                dest.write(chunk)
        got = "sha256:" + sha.hexdigest()
        if got != digest:
            raise RemoteError(
                f"blob {digest[:19]}… arrived as {got[:19]}… (digest mismatch): refused"
            )
        return b"".join(chunks) if dest is None else None

    def _upload(self, data: bytes | Path, digest: str, size: int) -> None:
        exists = self._request(
            "HEAD", self._url(f"blobs/{digest}"), scope="pull,push", ok=(200, 404)
        )
        if exists.status_code == 200:
            return
        start = self._request("POST", self._url("blobs/uploads/"), scope="pull,push", ok=(202,))
        location = start.headers.get("Location", "")
        if location.startswith("/"):
            location = f"{self.spec.scheme}://{self.spec.registry}{location}"
        sep = "&" if "?" in location else "?"
        body = data.open("rb") if isinstance(data, Path) else io.BytesIO(data)
        with body:
            self._request(
                "PUT",
                f"{location}{sep}digest={digest}",
                scope="pull,push",
                ok=(201,),
                data=body,
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            )

    # ---------------------------------------------------------------- artifacts

    def pull(self, build: DepBuild, place: Path, cache_root: Path) -> dict[str, Any] | None:
        """Fill ``place`` with the artifact ``build`` from the registry and return its marker's
        JSON; None when the registry does not hold it.  Raises RemoteError when it holds
        something that is not that artifact, or could not be read (nothing is left in
        ``place``'s parent then but what the caller removes)."""
        tag = tag_of(build)
        resp = self._request(
            "GET",
            self._url(f"manifests/{tag}"),
            scope="pull",
            ok=(200, 404),
            headers={"Accept": MANIFEST_TYPE},
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
            or config.get("key") != build.key
            or _comparable(config.get("artifact", {})) != _comparable(build.manifest)
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
        return dict(config["artifact"], pulled=f"{self}:{tag}")

    def pull_into_cache(self, build: DepBuild, cache_root: Path, on_wait=None) -> bool | None:
        """The artifact ``build`` pulled into its place in the cache, under its lock: True
        when pulled now, False when it was complete already, None when the registry does not
        hold it (nothing is left behind then, nor when RemoteError is raised)."""

        def fill(place: Path) -> dict[str, Any]:
            got = self.pull(build, place, cache_root)
            if got is None:
                raise _NotInRemote()
            return got

        try:
            return build.artifact.ensure(fill, in_place=True, on_wait=on_wait)
        except _NotInRemote:
            return None

    def push(self, build: DepBuild, cache_root: Path) -> str:
        """Upload the complete artifact ``build`` (tag, config, layer); returns its reference."""
        from geonox.cache import DEP_MARKER

        marker = json.loads((build.path / DEP_MARKER).read_text())
        config = json.dumps(
            {"format": FORMAT, "key": build.key, "artifact": marker, "cache_root": str(cache_root)},
            sort_keys=True,
        ).encode()
        with tempfile.NamedTemporaryFile(suffix=".tar.gz") as tmp:
            _pack(build.path, Path(tmp.name), skip={DEP_MARKER})
            layer = Path(tmp.name)
            layer_digest = "sha256:" + _sha256_file(layer)
            layer_size = layer.stat().st_size
            self._upload(layer, layer_digest, layer_size)
        config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        self._upload(config, config_digest, len(config))
        tag = tag_of(build)
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
                "annotations": {"dev.geonox.key": build.key},
            },
            sort_keys=True,
        ).encode()
        self._request(
            "PUT",
            self._url(f"manifests/{tag}"),
            scope="pull,push",
            ok=(201,),
            data=manifest,
            headers={"Content-Type": MANIFEST_TYPE},
        )
        return f"{self}:{tag}"


def _comparable(manifest: dict) -> dict:
    """An artifact manifest without what one build of it differs in from another."""
    return {k: v for k, v in manifest.items() if k not in ("key", "seconds", "pulled")}


def _sha256_file(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()


def _pack(root: Path, dest: Path, skip: set[str]) -> None:
    """``root``'s files as a gzipped tar, in name order, owner and times normalised."""
    import gzip

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
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 4 << 20:
            continue
        data = path.read_bytes()
        if (
            data[:4] == b"\x7fELF"
            or data[:8] == b"!<arch>\n"
            or b"\0" in data[:8192]
            or was not in data
        ):
            continue
        mode = path.stat().st_mode
        path.write_bytes(data.replace(was, now))
        os.chmod(path, mode)
        done.append(str(path.relative_to(root)))
    return done
