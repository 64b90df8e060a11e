"""The container test infrastructure works: engine, binfmt qemu-aarch64, local registry
and the stand-in manylinux images (tests/standin.py).  Real engine, no mocks.

Locally a missing engine skips; under CI=true it fails (conftest.skip_or_fail).
"""

from __future__ import annotations

import json
import os
import urllib.request

import pytest
import standin
from conftest import run, skip_or_fail

HOST_CA = "/etc/ssl/certs/ca-certificates.crt"
ARCHS = ["x86_64", "aarch64"]


@pytest.fixture(scope="session")
def infra() -> None:
    try:
        standin.ensure_infra()
    except RuntimeError as e:
        skip_or_fail(f"container test infrastructure unavailable: {e}")


@pytest.fixture(scope="session", params=ARCHS)
def image(request, infra) -> tuple[str, str]:
    arch = request.param
    return arch, standin.standin_image(arch)


def docker_run(arch: str, ref: str, *cmd: str, opts=(), timeout=900):
    return run(
        [standin.DOCKER, "run", "--rm", "--platform", standin.platform(arch), *opts, ref, *cmd],
        cwd=None,
        env=None,
        timeout=timeout,
    )


def test_reference_is_a_tag_in_the_local_registry(image):
    arch, ref = image
    assert ref == standin.image_ref(arch)
    assert ref.startswith(f"{standin.REGISTRY}/geonox-standin/manylinux_2_31_{arch}:bullseye-")
    assert "@" not in ref
    assert standin.registry_has(ref)
    # the registry API gives the digest, the way pinning code resolves it
    name, tag = ref.split("/", 1)[1].rsplit(":", 1)
    req = urllib.request.Request(
        f"http://{standin.REGISTRY}/v2/{name}/manifests/{tag}",
        method="HEAD",
        headers={
            "Accept": "application/vnd.docker.distribution.manifest.v2+json, "
            "application/vnd.oci.image.manifest.v1+json"
        },
    )
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=10) as r:
        assert r.headers["Docker-Content-Digest"].startswith("sha256:")


def test_image_arch_metadata(image):
    arch, ref = image
    out = run([standin.DOCKER, "image", "inspect", ref], cwd=None, env=None)
    assert out.returncode == 0, out.stdout
    info = json.loads(out.stdout)[0]
    assert (info["Os"], info["Architecture"]) == ("linux", standin.OCI_ARCH[arch])


def test_python_machine_and_version(image):
    arch, ref = image
    out = docker_run(
        arch,
        ref,
        standin.PYTHON,
        "-c",
        "import platform,sys; print(platform.machine(), sys.version_info[:2])",
    )
    assert out.returncode == 0, out.stdout
    assert out.stdout.strip().splitlines()[-1] == f"{arch} (3, 9)"


def test_every_python_of_the_layout_runs_and_makes_venvs(image):
    """Each /opt/python/<tag> the stand-in lays out (x86_64: cp39 and a cp311 built from
    source in the image) runs, is the version its tag says, and makes a venv with pip."""
    arch, ref = image
    tags = standin.python_tags(arch)
    script = "set -e; ls /opt/python; " + "; ".join(
        f"/opt/python/{t}/bin/python -m venv /tmp/{t} && /tmp/{t}/bin/python -m pip --version >/dev/null"
        f" && /tmp/{t}/bin/python -c 'import sys, ssl; print(\"{t}\", sys.version_info[:2])'"
        for t in tags
    )
    out = docker_run(arch, ref, "sh", "-c", script)
    assert out.returncode == 0, out.stdout
    lines = out.stdout.strip().splitlines()
    assert sorted(lines[: len(tags)]) == sorted(tags), lines
    for tag in tags:
        minor = int(tag[3 : tag.index("-")])
        assert f"{tag} (3, {minor})" in lines, lines


def test_glibc_and_toolchain(image):
    arch, ref = image
    out = docker_run(
        arch,
        ref,
        "sh",
        "-c",
        "ldd --version | head -n 1; uname -m; "
        "for t in gcc g++ make cmake pkg-config patch file; do command -v $t; done; "
        "gcc -dumpmachine",
    )
    assert out.returncode == 0, out.stdout
    lines = out.stdout.strip().splitlines()
    assert lines[0].endswith(" 2.31"), lines[0]
    assert lines[1] == arch
    assert [os.path.basename(p) for p in lines[2:9]] == [
        "gcc",
        "g++",
        "make",
        "cmake",
        "pkg-config",
        "patch",
        "file",
    ]
    assert lines[9] == f"{arch}-linux-gnu"


def test_compiles_and_runs_cxx(image):
    arch, ref = image
    script = (
        "set -e; cd /tmp; printf '#include <iostream>\\nint main(){std::cout<<\"ok\";}\\n' > a.cc;"
        " g++ -O2 -fPIC a.cc -o a; ./a; file a"
    )
    out = docker_run(arch, ref, "sh", "-c", script)
    assert out.returncode == 0, out.stdout
    assert out.stdout.startswith("ok")
    assert ("x86-64" if arch == "x86_64" else "ARM aarch64") in out.stdout


def test_venv_and_pip_install_from_pypi(image):
    """A container reaches PyPI when the host's CA bundle is mounted (PIP_CERT)."""
    arch, ref = image
    script = (
        f"set -e; {standin.PYTHON} -m venv /tmp/v; "
        "/tmp/v/bin/python -m pip install -q --disable-pip-version-check "
        "--cert /etc/geonox-ca.pem pyelftools; "
        "/tmp/v/bin/python -c 'import elftools, sys; print(\"elftools\", sys.prefix)'"
    )
    out = docker_run(arch, ref, "sh", "-c", script, opts=["-v", f"{HOST_CA}:/etc/geonox-ca.pem:ro"])
    assert out.returncode == 0, out.stdout
    assert out.stdout.strip().splitlines()[-1] == "elftools /tmp/v"


def test_standin_image_is_idempotent(image):
    arch, ref = image
    # the second call finds the tag in the registry and builds nothing
    assert standin.standin_image(arch) == ref


def test_ci_setup_is_idempotent(infra):
    if os.geteuid() != 0:
        skip_or_fail("scripts/ci_setup.sh needs root")
    out = run(["bash", standin.SETUP_SCRIPT], cwd=standin.REPO, env=None, timeout=300)
    assert out.returncode == 0, out.stdout
    assert "starting" not in out.stdout and "installing" not in out.stdout, out.stdout
    assert standin.missing_infra() == []
