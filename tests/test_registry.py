"""The one registry client (geonox.registry) that image pinning and the remote cache share:
which addresses are spoken to over plain HTTP, where credentials come from, and pinning
an image in a registry with a login (Debian's docker-registry with an htpasswd file, as the
remote cache's tests run it), on IPv4 and IPv6 loopback."""

from __future__ import annotations

import base64
import json
import os
import socket

import pytest
from registry_server import Registry, push_image

from geonox import registry
from geonox.errors import UserError
from geonox.images import ImageRef, resolve_digest
from geonox.remote import RemoteSpec


@pytest.mark.parametrize(
    "address, scheme",
    [
        ("127.0.0.1:5000", "http"),
        ("127.1.2.3", "http"),
        ("localhost:5000", "http"),
        ("[::1]:5000", "http"),
        ("[::1]", "http"),
        ("ghcr.io", "https"),
        ("quay.io:443", "https"),
        ("127.example.com:5000", "https"),
        ("[2001:db8::1]:5000", "https"),
        ("10.0.0.1:5000", "https"),
    ],
)
def test_plain_http_is_for_loopback_only_ipv4_and_ipv6(address, scheme):
    assert registry.scheme_for(address) == scheme
    # the cache and image pinning decide alike (images split on ':' before: [::1] was https)
    assert RemoteSpec.parse(f"oci://{address}/team/cache").scheme == scheme
    ref = ImageRef.parse(f"{address}/pypa/manylinux_2_28_x86_64:latest")
    assert (ref.registry, ref.repository, ref.tag) == (
        address,
        "pypa/manylinux_2_28_x86_64",
        "latest",
    )


HELPER = """#!/bin/sh
[ "$1" = get ] || exit 1
read server
printf '{"ServerURL":"%s","Username":"%s","Secret":"s3cret"}' "$server" "$(basename "$0")"
"""


def test_credentials_as_docker_finds_them(tmp_path, monkeypatch):
    """credHelpers for that registry, else credsStore, each through the helper protocol,
    else the auths entry docker login wrote; nothing for another registry."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("docker-credential-one", "docker-credential-default"):
        (bin_dir / name).write_text(HELPER)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))

    def config(data: dict) -> None:
        (tmp_path / "config.json").write_text(json.dumps(data))

    login = base64.b64encode(b"ci:sesame").decode()
    config({"auths": {"reg.example:5000": {"auth": login}}})
    assert registry.docker_credentials("reg.example:5000") == ("ci", "sesame")
    assert registry.docker_credentials("other.example") is None
    config({"auths": {"reg.example:5000": {"auth": login}}, "credsStore": "default"})
    assert registry.docker_credentials("reg.example:5000") == (
        "docker-credential-default",
        "s3cret",
    )
    config({"credsStore": "default", "credHelpers": {"reg.example:5000": "one"}})
    assert registry.docker_credentials("reg.example:5000") == ("docker-credential-one", "s3cret")
    assert registry.docker_credentials("elsewhere") == ("docker-credential-default", "s3cret")
    config(
        {
            "credHelpers": {"reg.example:5000": "missing"},
            "auths": {"reg.example:5000": {"auth": login}},
        }
    )
    assert registry.docker_credentials("reg.example:5000") == ("ci", "sesame")  # helper absent


@pytest.fixture
def login_registry(tmp_path):
    import bcrypt

    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("ci:" + bcrypt.hashpw(b"sesame", bcrypt.gensalt(rounds=4)).decode() + "\n")
    reg = Registry(tmp_path / "auth-registry", htpasswd=htpasswd)
    yield reg
    reg.stop()


@pytest.mark.slow  # Debian's docker-registry (installed by scripts/ci_setup.sh, as root)
def test_pinning_an_image_in_a_registry_with_a_login_uses_dockers_credentials(
    login_registry, tmp_path, monkeypatch
):
    """An image in a private registry pins with the credentials the cache uses (docker's);
    without them the error names the registry and the login to run."""
    digest = push_image(login_registry.address, "team/builder", "1.0", "amd64", ("ci", "sesame"))
    image = f"{login_registry.address}/team/builder:1.0"
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "none"))
    with pytest.raises(UserError) as err:
        resolve_digest(image, "x86_64")
    assert f"docker login {login_registry.address}" in str(err.value), err.value
    docker = tmp_path / "docker"
    docker.mkdir()
    login = base64.b64encode(b"ci:sesame").decode()
    (docker / "config.json").write_text(
        json.dumps({"auths": {login_registry.address: {"auth": login}}})
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(docker))
    assert resolve_digest(image, "x86_64") == digest
    # and the image's arch is checked through the same client (a linux/amd64 image)
    with pytest.raises(UserError, match="is a linux/amd64 image, not linux/arm64"):
        resolve_digest(image, "aarch64")


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.slow  # Debian's docker-registry
def test_an_ipv6_loopback_registry_is_spoken_to_over_plain_http(tmp_path):
    if not _ipv6_loopback():
        pytest.skip("no IPv6 loopback on this machine")  # CI's machines have ::1
    reg = Registry(tmp_path / "v6", host="::1")
    try:
        assert reg.address.startswith("[::1]:")
        digest = push_image(reg.address, "pypa/manylinux_2_28_aarch64", "latest", "arm64")
        assert (
            resolve_digest(f"{reg.address}/pypa/manylinux_2_28_aarch64:latest", "aarch64") == digest
        )
    finally:
        reg.stop()


def test_registry_errors_name_the_registry(tmp_path):
    """A registry that is not there: one sentence naming it, raised without a retry loop
    (a refused connection costs nothing)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with (
        registry.Registry(f"127.0.0.1:{port}", timeout=5) as reg,
        pytest.raises(registry.RegistryError, match=rf"127\.0\.0\.1:{port} did not answer"),
    ):
        reg.request("GET", "x/y", "manifests/latest")
