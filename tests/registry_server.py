"""A real OCI registry for the tests: Debian's docker-registry (the distribution registry)
on a loopback address with storage of its own, optionally read-only or behind an htpasswd
login, so a test can tamper with a blob on its disk or ask for credentials."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import textwrap
import time
from pathlib import Path

import requests
from conftest import skip_or_fail

DOCKER_REGISTRY = "/usr/bin/docker-registry"


class Registry:
    def __init__(
        self,
        root: Path,
        readonly: bool = False,
        htpasswd: Path | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        if not Path(DOCKER_REGISTRY).is_file():
            skip_or_fail("Debian's docker-registry is not installed (bash scripts/ci_setup.sh)")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family) as s:
            s.bind((host, 0))
            self.port = s.getsockname()[1]
        self.host = f"[{host}]" if ":" in host else host
        self.address = f"{self.host}:{self.port}"
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        config = root / "config.yml"
        config.write_text(
            textwrap.dedent(f"""\
            version: 0.1
            log:
              level: warn
            storage:
              filesystem:
                rootdirectory: {root / "data"}
              maintenance:
                readonly:
                  enabled: {"true" if readonly else "false"}
            http:
              addr: "{self.address}"
            """)
        )
        if htpasswd:  # a login for everything (bcrypt entries), over plain HTTP on loopback
            with config.open("a") as f:
                f.write(f"auth:\n  htpasswd:\n    realm: geonox-test\n    path: {htpasswd}\n")
        self.log = open(root / "registry.log", "w")  # noqa: SIM115  (closed by stop())
        self.proc = subprocess.Popen(
            [DOCKER_REGISTRY, "serve", str(config)], stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"http://{self.address}/v2/", timeout=2).status_code in (
                    200,
                    401,
                ):
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError((root / "registry.log").read_text())
            time.sleep(0.2)

    def url(self, repository: str) -> str:
        return f"oci://{self.address}/{repository}"

    def blob(self, digest: str) -> Path:
        hexd = digest.split(":", 1)[1]
        return (
            self.root
            / "data"
            / "docker"
            / "registry"
            / "v2"
            / "blobs"
            / "sha256"
            / hexd[:2]
            / hexd
            / "data"
        )

    def manifest(self, repository: str, tag: str) -> dict:
        resp = requests.get(
            f"http://{self.address}/v2/{repository}/manifests/{tag}",
            timeout=10,
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        )
        resp.raise_for_status()
        return resp.json()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


def upload_blob(
    session: requests.Session, address: str, repository: str, data: bytes
) -> dict[str, object]:
    """``data`` uploaded as one blob of ``repository`` (monolithic); its descriptor part."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    start = session.post(f"http://{address}/v2/{repository}/blobs/uploads/", timeout=30)
    assert start.status_code == 202, start.text
    location = start.headers["Location"]
    if location.startswith("/"):
        location = f"http://{address}{location}"
    sep = "&" if "?" in location else "?"
    done = session.put(
        f"{location}{sep}digest={digest}",
        data=data,
        timeout=30,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert done.status_code == 201, done.text
    return {"digest": digest, "size": len(data)}


def push_image(
    address: str, repository: str, tag: str, architecture: str, auth: tuple[str, str] | None = None
) -> str:
    """A one-layer OCI image of ``architecture`` pushed by the registry API (no engine);
    returns its manifest's digest, as the registry reports it."""
    base = f"http://{address}/v2/{repository}"
    session = requests.Session()
    session.auth = auth

    def blob(data: bytes) -> dict:
        return upload_blob(session, address, repository, data)

    config = json.dumps(
        {"architecture": architecture, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **blob(config)},
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", **blob(b"\0" * 1024)}
            ],
        }
    ).encode()
    put = session.put(
        f"{base}/manifests/{tag}",
        data=manifest,
        timeout=30,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert put.status_code == 201, put.text
    return put.headers["Docker-Content-Digest"]
