"""ldd: every ELF file of the repaired wheel checked against its tag's policy
(:mod:`geonox.verify`), where the wheel can run, so ``ldd -r`` sees that system."""

from __future__ import annotations

import json
from pathlib import Path

from geonox.cache import Artifact, file_sha256
from geonox.config import Config
from geonox.errors import VerifyError
from geonox.project import Run
from geonox.steps.base import Needed, PythonKey, PythonStep, say_where
from geonox.steps.repair import REPAIR, repaired_wheel
from geonox.tools import verify_report
from geonox.verify import WheelReport, format_table


class LddStep(PythonStep):
    name = "ldd"

    def requires(self, config: Config, key: PythonKey) -> list[Needed]:
        return [(REPAIR, key)]

    def doc(self, config: Config, key: PythonKey) -> str:
        return (
            f"Check every ELF file of the repaired {key.target.platform_tag} wheel (policy, "
            "symbols, exports, ldd -r)."
        )

    def run(self, run: Run, key: PythonKey) -> None:
        project = run.project
        wheel = repaired_wheel(project, key)
        digest = file_sha256(wheel)
        path = project.workdir.report(wheel.name)
        strict = run.config.verify_strict

        def passed(p: Path) -> bool:
            previous = json.loads(p.read_text())
            return previous.get("wheel_sha256") == digest and WheelReport.from_dict(
                previous
            ).passes(strict)

        report_file = Artifact(path, path.with_name(path.name + ".lock"), check=passed)
        if report_file.complete():
            # abi3: every Python shares one wheel; checking it again would say the same.
            report_file.touch()
            run.log(f"{wheel.name} already passed every check (report: {path})")
            self._facts(run, wheel, path)
            return
        with run.backend(key.target) as backend:
            say_where(run, backend, "repair")
            log = project.workdir.log(key.target.label, f"ldd-{project.build_id(key.python)}")

            def check(place: Path) -> None:
                data = verify_report(
                    backend.executor,
                    project.cache,
                    wheel,
                    project.build_python(key.python),
                    log=log,
                )
                place.write_text(json.dumps(dict(data, wheel_sha256=digest), indent=2) + "\n")

            report_file.ensure(check)
        report = self._facts(run, wheel, path)
        run.out(format_table([report]))
        if not report.passes(strict):
            failing = report.violations if strict else report.errors
            raise VerifyError(
                f"{wheel.name} breaks {len(failing)} rule(s) of "
                f"{report.tag_policy}{' (verify-strict: warnings count)' if strict else ''}: "
                + "; ".join(f"{v.rule} in {v.file}: {v.detail}" for v in failing)
                + f". Full report: {path}"
            )
        warned = f", {len(report.warnings)} warning(s) shown above" if report.warnings else ""
        run.log(f"{wheel.name} passes every check{warned} (report: {path})")

    @staticmethod
    def _facts(run: Run, wheel: Path, path: Path) -> WheelReport:
        """The report on ``wheel`` (at ``path``), its verdict put in the summary's facts."""
        report = WheelReport.from_dict(json.loads(path.read_text()))
        run.facts.update(wheel=wheel.name, errors=len(report.errors), warnings=len(report.warnings))
        return report


LDD = LddStep()
