"""verify (the ldd session): every ELF file of the repaired wheel against its tag's policy."""
from __future__ import annotations

import json

from geonox.errors import VerifyError
from geonox.steps import Pipeline
from geonox.steps.repair import file_sha256, repaired_wheel
from geonox.targets import PythonVersion


def verify_step(pipe: Pipeline, arch: str, py: PythonVersion | None, *, session: str) -> None:
    from geonox.verify import WheelReport, format_table

    wheel = repaired_wheel(pipe, arch, py)
    reports = pipe.work_dir / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    out = reports / f"{wheel.name}.verify.json"
    digest = file_sha256(wheel)
    if out.is_file():
        previous = json.loads(out.read_text())
        if previous.get("wheel_sha256") == digest and not previous.get("violations"):
            # abi3: every Python shares one wheel; checking it again would say the same.
            pipe.log(f"{session}: {wheel.name} already passed every check (report: {out})")
            return
    log = pipe.logs_dir(arch) / f"ldd-{pipe.build_id(py)}.log"
    data = pipe.executor(arch).verify(wheel, py=pipe.build_python(py), log=log)
    report = WheelReport.from_dict(data)
    out.write_text(json.dumps(dict(data, wheel_sha256=digest), indent=2) + "\n")
    pipe.log(format_table([report]))
    if not report.ok:
        raise VerifyError(f"{wheel.name} breaks {len(report.violations)} rule(s) of "
                          f"{report.tag_policy}: "
                          + "; ".join(f"{v.rule} in {v.file}: {v.detail}"
                                      for v in report.violations)
                          + f". Full report: {out}")
    pipe.log(f"{session}: {wheel.name} passes every check (report: {out})")
