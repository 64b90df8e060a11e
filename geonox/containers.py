"""Container engines: docker or podman, one container of a pinned image per executor scope.

:class:`Engine` owns the engine client and its health check.  :class:`ContainerExecutor`
starts its container on first use, runs every command in it with ``exec`` and an argument
list, and removes it when its ``with`` ends (or at once when a command is interrupted, so
nothing keeps compiling inside).  What the container is for -- which image, which mounts,
which tools -- is the backend's business (:mod:`geonox.backends`, :mod:`geonox.tools`).

Paths: in ``bind`` mode the given directories are bind-mounted at the same paths they have
here, so every path a step computes means the same inside (and CMake package files in a
cached prefix stay valid).  In ``copy`` mode (a remote engine, ``DOCKER_HOST=tcp://…``)
nothing is mounted: steps declare their inputs and outputs (:meth:`sync_in`,
:meth:`sync_out`) and they are copied with ``docker cp``, at the same paths.

Environment: commands see the image's environment, the step's own variables, and only
the host variables listed in ``env_allow``.  A listed variable whose value is an existing
host file (``PIP_CERT=/etc/ssl/certs/ca.pem``) is mounted read-only at the same path.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Literal

from geonox.command import Command
from geonox.config import ContainerMode
from geonox.errors import BuildError, UserError
from geonox.executors import Executor, command_failed, log_tail, run_child, run_logged
from geonox.images import PinnedImage
from geonox.targets import OCI_ARCH, PythonVersion, host_arch

EngineKind = Literal["docker", "podman"]
# ELF e_machine of each arch as binfmt_misc magic bytes 18-19 (little endian).
_BINFMT_MACHINE = {"aarch64": "b700", "x86_64": "3e00"}


class Engine:
    """A container engine client: docker or podman.  It offers calls of the client only."""

    def __init__(self, kind: EngineKind, exe: str) -> None:
        self.kind = kind
        self.exe = exe

    @staticmethod
    def none_answers(backend: str, why: str) -> UserError:
        return UserError(
            f'backend = "{backend}" needs a container engine: {why}. '
            "Start one (`sudo systemctl start docker`, `dockerd &` as root, or "
            '`podman system service &`), or set backend = "host" (or "zig").'
        )

    @classmethod
    def look(cls, backend: str, exes: Mapping[str, str] | None = None) -> tuple[Engine | None, str]:
        """The first engine of ``backend`` ("docker", "podman" or "auto") that answers, else
        None and why none did (:meth:`none_answers` makes that the error saying how to get
        one).  ``exes`` names the clients to use (from ``GEONOX_DOCKER`` / ``GEONOX_PODMAN``);
        default: the one on PATH."""
        kinds = ("docker", "podman") if backend == "auto" else (backend,)
        problems = []
        for kind in kinds:
            named = (exes or {}).get(kind)
            exe = shutil.which(named) if named else shutil.which(kind)
            if not exe:
                problems.append(
                    f"'{kind}' is not installed" + (f" (no program at {named})" if named else "")
                )
                continue
            engine = cls(kind, exe)  # type: ignore[arg-type]
            ok, detail = engine.answers()
            if ok:
                return engine, ""
            problems.append(f"'{kind}' is installed but its engine does not answer ({detail})")
        return None, "; ".join(problems)

    def answers(self) -> tuple[bool, str]:
        try:
            proc = subprocess.run(
                [self.exe, "info", "--format", "{{json .}}"],
                text=True,
                capture_output=True,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, str(exc)
        if proc.returncode != 0:
            return False, " ".join(proc.stderr.split())[:200] or f"exit {proc.returncode}"
        return True, ""

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = run_child(
            [self.exe, *args], text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        if check and proc.returncode != 0:
            raise UserError(
                f"`{self.kind} {shlex.join(args)}` failed: {(proc.stderr or '').strip()[:800]}"
            )
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
    entries = (
        [p for p in root.glob("*") if p.name not in ("register", "status")] if root.is_dir() else []
    )
    for entry in entries:
        try:
            text = entry.read_text()
        except OSError:
            continue
        magic = next((ln.split()[1] for ln in text.splitlines() if ln.startswith("magic ")), "")
        flags = next(
            (ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("flags:")), ""
        )
        if text.startswith("enabled") and magic[36:40] == _BINFMT_MACHINE.get(arch, "?"):
            if "F" not in flags:
                raise UserError(
                    f"{entry} runs {arch} binaries but without the F (fix-binary) flag, so "
                    f"containers cannot use it. Re-register QEMU with it: `apt-get install "
                    f"qemu-user-static binfmt-support` (Debian registers with F), or "
                    f"`docker run --privileged --rm tonistiigi/binfmt --install {OCI_ARCH[arch]}`."
                )
            return
    mounted = (
        ""
        if root.joinpath("status").exists()
        else "mount it (`mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc`), then "
    )
    raise UserError(
        f"building {arch} in a container on this {host_arch()} machine needs QEMU registered "
        f"with binfmt_misc, and none is: {mounted}install it (`apt-get install "
        f"qemu-user-static binfmt-support`, or `docker run --privileged --rm "
        f'tonistiigi/binfmt --install {OCI_ARCH[arch]}`). Or use backend = "zig" for {arch}.'
    )


class ContainerExecutor(Executor):
    """Runs commands in one container of a pinned image, for as long as its ``with`` lasts."""

    local = False

    def __init__(
        self,
        engine: Engine,
        image: PinnedImage,
        arch: str,
        *,
        mounts: Sequence[Path] = (),
        env_allow: Sequence[str] = (),
        mode: ContainerMode = "auto",
        libc: str = "glibc",
    ) -> None:
        self.engine = engine
        self.image = image
        self.arch = arch
        self.libc = libc  # the image's: a musllinux image runs musl
        self.mode = ("copy" if engine.remote else "bind") if mode == "auto" else mode
        self.shares_host_paths = self.mode == "bind"
        self._mounts = [Path(m).resolve() for m in mounts]
        self._env_allow = tuple(env_allow)
        self._container: str | None = None
        self._path: str | None = None
        self._checked_pythons: set[str] = set()

    # ------------------------------------------------------------ lifecycle

    def _host_env(self) -> dict[str, str]:
        return {k: os.environ[k] for k in self._env_allow if k in os.environ}

    def _host_files(self) -> list[Path]:
        return [
            Path(v) for v in self._host_env().values() if os.path.isabs(v) and os.path.isfile(v)
        ]

    def _ensure_image(self) -> None:
        ref, oci = self.image.run_ref, OCI_ARCH[self.arch]
        if self.engine("image", "inspect", ref, check=False).returncode != 0:
            pulled = self.engine("pull", "--platform", f"linux/{oci}", ref, check=False)
            if pulled.returncode != 0:
                raise UserError(
                    f"could not pull {ref} for {self.arch}: {pulled.stderr.strip()[:400]}. "
                    f"If the digest in {self.image.image!r}'s lock entry was changed by hand "
                    f"or the registry no longer has it, run `python -m geonox pin` again."
                )
        info = json.loads(self.engine("image", "inspect", ref).stdout)[0]
        if self.image.digest:
            digests = [d.split("@", 1)[1] for d in info.get("RepoDigests", []) if "@" in d]
            if self.image.digest not in digests and info.get("Id") != self.image.digest:
                raise UserError(
                    f"image {ref} does not carry the pinned digest {self.image.digest} (it has "
                    f"{', '.join(digests) or 'none'}): refusing to build with it. Re-pin with "
                    f"`python -m geonox pin` if the change is intended."
                )
        if info.get("Architecture") != oci:
            raise UserError(
                f"image {ref} is linux/{info.get('Architecture')}, not linux/{oci}: "
                f"set images.{self.arch} to an {self.arch} image."
            )

    def start(self) -> str:
        """Pull and check the pinned image and start the container (once)."""
        if self._container:
            return self._container
        check_binfmt(self.arch)
        self._ensure_image()
        name = f"geonox-{self.arch}-{uuid.uuid4().hex[:10]}"
        args = [
            "run",
            "-d",
            "--name",
            name,
            "--platform",
            f"linux/{OCI_ARCH[self.arch]}",
            "--label",
            "geonox=1",
            "--label",
            f"geonox.pid={os.getpid()}",
            "--entrypoint",
            "",
        ]
        if self.mode == "bind":
            for m in sorted(set(self._mounts)):
                args += ["-v", f"{m}:{m}"]
            for f in self._host_files():
                args += ["-v", f"{f}:{f}:ro"]
        self._container = name  # set first: an interrupted `run -d` is still removed
        try:
            self.engine(*args, self.image.run_ref, "sleep", "infinity")
        except BaseException:
            self.close()
            raise
        if self.mode == "copy":
            for f in self._host_files():
                self.sync_in(f)
        self._path = self._exec(["printenv", "PATH"]).strip()
        return name

    def close(self) -> None:
        if self._container:
            name, self._container = self._container, None
            self.engine("rm", "-f", name, check=False)

    # ------------------------------------------------------------ running

    def _exec_argv(self, argv: Sequence[str], env: Mapping[str, str], cwd: str | None) -> list[str]:
        out = [self.engine.exe, "exec", "-w", cwd or "/"]
        for key, value in {**self._host_env(), **env}.items():
            out += ["-e", f"{key}={value}"]
        return [*out, self.start(), *argv]

    def run(self, cmd: Command, *, log: Path) -> None:
        try:
            rc = run_logged(
                self._exec_argv(cmd.argv, cmd.env, cmd.cwd),
                log,
                header=f"[{self.engine.kind} {self.image.run_ref}] {cmd.display()}",
            )
        except BaseException:
            # Killing the exec client does not stop the command inside: remove the container.
            self.close()
            raise
        if rc != 0:
            raise command_failed(
                cmd,
                log,
                f"exit status {rc} in {self.engine.kind} container of {self.image.run_ref}",
            )

    def _exec(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
        try:
            proc = run_child(
                self._exec_argv(argv, env or {}, None),
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except BaseException:
            self.close()
            raise
        if proc.returncode != 0:
            raise UserError(
                f"`{shlex.join(argv)}` failed in the container of "
                f"{self.image.run_ref}: {(proc.stdout + proc.stderr).strip()[-400:]}"
            )
        return str(proc.stdout)

    def capture(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> str:
        return self._exec(argv, env)

    def succeeds(self, argv: Sequence[str]) -> bool:
        """Whether a probe command exits 0 inside."""
        proc = run_child(
            self._exec_argv(argv, {}, None), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        return proc.returncode == 0

    def default_path(self) -> str:
        self.start()
        return self._path or "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    def python(self, py: PythonVersion) -> str:
        exe = py.manylinux_exe
        if exe not in self._checked_pythons:
            if not self.succeeds(["test", "-x", exe]):
                have = self._exec(["sh", "-c", "ls /opt/python 2>/dev/null || true"]).split()
                raise UserError(
                    f"image {self.image.image} has no {exe} (CPython {py.version}); it has: "
                    f"{', '.join(have) or 'no /opt/python at all'}. Remove {py.version} from "
                    f"[tool.geonox] python or choose a manylinux image that ships it."
                )
            self._checked_pythons.add(exe)
        return exe

    def identity(self) -> str:
        return f"{self.engine.kind}:{self.image.digest or self.image.run_ref}:{self.arch}"

    def build_libc(self) -> str:
        return self.libc

    def where(self) -> str:
        return f"{self.engine.kind} {self.image.run_ref} ({self.arch})"

    @contextlib.contextmanager
    def scratch_dir(self) -> Iterator[str]:
        path = self._exec(["mktemp", "-d", "/tmp/geonox-test-XXXXXX"]).strip()
        try:
            yield path
        finally:
            if self._container:
                self._exec(["rm", "-rf", path])

    # ------------------------------------------------------------ files

    def _mounted(self, path: Path) -> bool:
        return self.mode == "bind" and any(path == m or m in path.parents for m in self._mounts)

    def sync_in(self, path: Path) -> None:
        """Make a host file or directory available at the same path inside."""
        if self._mounted(path):
            return
        name = self.start()
        target = path if path.is_dir() else path.parent
        self._exec(["mkdir", "-p", str(target)])
        src = f"{path}/." if path.is_dir() else str(path)
        self.engine("cp", src, f"{name}:{path}")

    def sync_out(self, path: Path) -> None:
        """Make a directory the container wrote available here, owned by the invoking user."""
        name = self.start()
        if self._mounted(path):
            self._exec(["chown", "-R", f"{os.getuid()}:{os.getgid()}", str(path)])
            return
        path.mkdir(parents=True, exist_ok=True)
        self.engine("cp", f"{name}:{path}/.", str(path))


def build_image(
    engine: Engine, base: PinnedImage, arch: str, dockerfile: Path, *, policy: str, log: Path
) -> PinnedImage:
    """Build ``dockerfile`` on top of the pinned ``base`` (passed as ``--build-arg BASE``)
    for ``arch``, once per content: the tag hashes the Dockerfile, the base digest and the
    arch.  The result is pinned by its image ID."""
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
            argv = [
                engine.exe,
                "build",
                "--platform",
                f"linux/{OCI_ARCH[arch]}",
                "--build-arg",
                f"BASE={base.run_ref}",
                "-t",
                tag,
                ctx,
            ]
            rc = run_logged(argv, log, header=shlex.join(argv))
            if rc != 0:
                raise BuildError(
                    f"building the {arch} build image from {dockerfile} on "
                    f"{base.run_ref} failed (exit {rc}); log: {log}\n"
                    f"{log_tail(log).rstrip()}"
                )
    image_id = engine("image", "inspect", "--format", "{{.Id}}", tag).stdout.strip()
    return PinnedImage(arch, f"{base.image} + {dockerfile.name}", tag, image_id)
