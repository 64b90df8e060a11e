"""geonox.verify against real wheels built from tests/verify_fixtures/*.c.

A session fixture compiles small extension modules with the host gcc/g++ (and zig for
aarch64), zips them into minimal wheels that claim the tags each case needs, and the
tests run the checker on them.  No mocks: every violation comes from a real binary.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from geonox.elf import read_elf
from geonox.errors import UserError
from geonox.policy import resolve_policy, version_allowed
from geonox.verify import (
    RULES,
    WheelReport,
    format_table,
    run_verify_command,
    verify_wheel,
)

FIXTURES = Path(__file__).parent / "verify_fixtures"
REPO = Path(__file__).resolve().parent.parent
PY_INCLUDE = sysconfig.get_paths()["include"]
PKG = "geodemo"


# --------------------------------------------------------------------------- builders


def run(argv, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        raise AssertionError(f"{argv} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def gcc_ext(out: Path, modname: str, *flags: str, source: str = "ext.c", cc: str = "gcc") -> Path:
    run(
        [
            cc,
            "-shared",
            "-fPIC",
            "-O2",
            f"-DMODNAME={modname}",
            f"-I{PY_INCLUDE}",
            FIXTURES / source,
            "-o",
            out,
            *flags,
        ]
    )
    return out


def zig_cc(*args) -> list:
    return [sys.executable, "-m", "ziglang", "cc", "-target", "aarch64-linux-gnu", *args]


def make_wheel(dest: Path, dist: str, platform: str, files: dict[str, Path | bytes]) -> Path:
    """A minimal valid wheel: the files plus dist-info WHEEL, METADATA and RECORD."""
    dest.mkdir(parents=True, exist_ok=True)
    version = "0.1"
    dist_info = f"{dist}-{version}.dist-info"
    tags = "".join(f"Tag: cp39-abi3-{p}\n" for p in platform.split("."))
    contents: dict[str, bytes] = {
        name: (src.read_bytes() if isinstance(src, Path) else src) for name, src in files.items()
    }
    contents.setdefault(f"{PKG}/__init__.py", b"")
    contents[f"{dist_info}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: geonox-tests\nRoot-Is-Purelib: false\n{tags}"
    ).encode()
    contents[f"{dist_info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n".encode()
    )
    record = []
    for name, data in contents.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    contents[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = dest / f"{dist}-{version}-cp39-abi3-{platform}.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in contents.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = 0o755 << 16 if name.endswith(".so") else 0o644 << 16
            zf.writestr(info, data)
    return path


@dataclass
class Wheels:
    clean: Path
    clean_2014: Path  # legacy alias tag
    glibc_new: Path  # arc4random, tagged manylinux_2_17 + manylinux2014
    glibc_new_ok_tag: Path  # the same binary tagged manylinux_2_36
    blacklisted: Path  # __cxa_thread_atexit_impl, tagged manylinux_2_17
    foo_missing: Path  # NEEDS libfoo.so.1, tagged manylinux_2_17, libfoo not shipped
    foo_linux: Path  # the same, tagged linux_x86_64 (auditwheel repair's input)
    foo_repaired: Path  # auditwheel repair output: libfoo grafted, $ORIGIN rpath
    leak: Path  # built without -fvisibility=hidden
    cxx: Path  # GLIBCXX_3.4.29, tagged manylinux_2_28
    arm_in_x86: Path  # aarch64 ELF in an x86_64 wheel (also under a name without .so)
    arm_ok: Path  # the same aarch64 ELF in a manylinux_2_17_aarch64 wheel
    rpath: Path  # absolute DT_RPATH and DT_RUNPATH entries
    runpath_libc: Path  # an absolute DT_RUNPATH in a module that needs only libc
    unversioned: Path  # unversioned libc references (linked against a stub libc)
    unversioned_new: Path  # ... one of them to arc4random, which glibc 2.17 lacks
    unversioned_new_ok_tag: Path  # the same, tagged manylinux_2_36 (whose glibc has it)
    api_leak: Path  # a module exporting sqlite3_* / GEOS* names (a library's API)
    pure_with_elf: Path  # py3-none-any wheel carrying an ELF file


@pytest.fixture(scope="session")
def wheels(tmp_path_factory) -> Wheels:
    build = tmp_path_factory.mktemp("build")
    out = tmp_path_factory.mktemp("wheels")
    so = f"{PKG}/_geodemo.abi3.so"
    hidden = "-fvisibility=hidden"

    clean_so = gcc_ext(build / "clean.so", "_geodemo", hidden)
    glibc_so = gcc_ext(build / "glibc.so", "_geodemo", hidden, "-DUSE_ARC4RANDOM")
    leak_so = gcc_ext(build / "leak.so", "_geodemo")  # no -fvisibility=hidden
    blacklisted_so = gcc_ext(build / "blacklisted.so", "_geodemo", hidden, "-DUSE_BLACKLISTED")

    foo_dir = build / "foo"
    foo_dir.mkdir()
    libfoo = foo_dir / "libfoo.so.1"
    run(
        [
            "gcc",
            "-shared",
            "-fPIC",
            "-O2",
            "-Wl,-soname,libfoo.so.1",
            FIXTURES / "foo.c",
            "-o",
            libfoo,
        ]
    )
    foo_so = gcc_ext(build / "foo.so", "_geodemo", hidden, "-DUSE_FOO", str(libfoo))

    cxx_so = build / "cxx.so"
    run(
        [
            "g++",
            "-std=c++17",
            "-shared",
            "-fPIC",
            "-O2",
            hidden,
            f"-I{PY_INCLUDE}",
            FIXTURES / "cxx.cpp",
            "-o",
            cxx_so,
        ]
    )

    # aarch64 via zig, linked against an aarch64 stub libc.so.6 that defines GLIBC_2.17
    # (-nostdlib keeps zig from building glibc/compiler-rt, so a cold cache stays fast).
    arm_dir = build / "arm"
    arm_dir.mkdir()
    arm_libc = arm_dir / "libc.so.6"
    run(
        zig_cc(
            "-shared",
            "-fPIC",
            "-nostdlib",
            "-Wl,-soname,libc.so.6",
            f"-Wl,--version-script,{FIXTURES / 'libc_stub.map'}",
            FIXTURES / "libc_stub.c",
            "-o",
            arm_libc,
        )
    )
    arm_so = arm_dir / "_geodemo.so"
    run(
        zig_cc(
            "-shared",
            "-fPIC",
            "-nostdlib",
            "-O2",
            hidden,
            "-DMODNAME=_geodemo",
            FIXTURES / "plain.c",
            arm_libc,
            "-o",
            arm_so,
        )
    )

    rpath_so = gcc_ext(
        build / "rpath.so",
        "_rpath",
        hidden,
        "-Wl,--disable-new-dtags,-rpath,/usr/local/lib:$ORIGIN/../geodemo.libs",
    )
    runpath_so = gcc_ext(
        build / "runpath.so",
        "_runpath",
        hidden,
        "-Wl,--enable-new-dtags,-rpath,${ORIGIN}:/opt/geo/lib",
        "-Wl,--no-as-needed",
        "-lz",  # a whitelisted system library: the loader looks for it in /opt/geo/lib first
    )
    # the same DT_RUNPATH in a module that needs only libc (pyproj 3.8.0's musllinux
    # _compat): nothing is ever looked up there
    runpath_libc_so = gcc_ext(
        build / "runpath_libc.so",
        "_runpath_libc",
        hidden,
        "-Wl,--enable-new-dtags,-rpath,/opt/geo/lib",
    )

    # x86_64 stub libc without symbol versions: references to it are unversioned.
    stub_dir = build / "stub"
    stub_dir.mkdir()
    stub_libc = stub_dir / "libc.so.6"
    run(
        [
            "gcc",
            "-shared",
            "-fPIC",
            "-nostdlib",
            "-Wl,-soname,libc.so.6",
            FIXTURES / "libc_stub.c",
            "-o",
            stub_libc,
        ]
    )
    unversioned_so = build / "unversioned.so"
    run(
        [
            "gcc",
            "-shared",
            "-fPIC",
            "-O2",
            "-nostdlib",
            hidden,
            "-DMODNAME=_geodemo",
            FIXTURES / "plain.c",
            stub_libc,
            "-o",
            unversioned_so,
        ]
    )
    unversioned_new_so = build / "unversioned_new.so"
    run(
        [
            "gcc",
            "-shared",
            "-fPIC",
            "-O2",
            "-nostdlib",
            hidden,
            "-DMODNAME=_geodemo",
            "-DUSE_ARC4RANDOM",
            FIXTURES / "plain.c",
            stub_libc,
            "-o",
            unversioned_new_so,
        ]
    )
    api_so = gcc_ext(build / "api.so", "_geodemo", "-DEXPORT_API")  # no -fvisibility=hidden

    foo_linux = make_wheel(out / "linux", "geodemo_foo", "linux_x86_64", {so: foo_so})
    repaired_dir = out / "repaired"
    env = dict(os.environ, LD_LIBRARY_PATH=str(foo_dir))
    run(
        [
            sys.executable,
            "-m",
            "auditwheel",
            "repair",
            "--plat",
            "manylinux_2_17_x86_64",
            "-w",
            repaired_dir,
            foo_linux,
        ],
        env=env,
    )
    (foo_repaired,) = repaired_dir.glob("*.whl")

    return Wheels(
        clean=make_wheel(out / "clean", "geodemo_clean", "manylinux_2_17_x86_64", {so: clean_so}),
        clean_2014=make_wheel(
            out / "clean2014", "geodemo_clean", "manylinux2014_x86_64", {so: clean_so}
        ),
        glibc_new=make_wheel(
            out / "glibc",
            "geodemo_glibc",
            "manylinux_2_17_x86_64.manylinux2014_x86_64",
            {so: glibc_so},
        ),
        glibc_new_ok_tag=make_wheel(
            out / "glibc236", "geodemo_glibc", "manylinux_2_36_x86_64", {so: glibc_so}
        ),
        blacklisted=make_wheel(
            out / "blacklisted", "geodemo_bl", "manylinux_2_17_x86_64", {so: blacklisted_so}
        ),
        foo_missing=make_wheel(out / "foo", "geodemo_foo", "manylinux_2_17_x86_64", {so: foo_so}),
        foo_linux=foo_linux,
        foo_repaired=foo_repaired,
        leak=make_wheel(out / "leak", "geodemo_leak", "manylinux_2_17_x86_64", {so: leak_so}),
        cxx=make_wheel(
            out / "cxx", "geodemo_cxx", "manylinux_2_28_x86_64", {f"{PKG}/_cxx.abi3.so": cxx_so}
        ),
        arm_in_x86=make_wheel(
            out / "arm_bad",
            "geodemo_arm",
            "manylinux_2_17_x86_64",
            {so: arm_so, f"{PKG}/data/blob": arm_so},
        ),
        arm_ok=make_wheel(out / "arm_ok", "geodemo_arm", "manylinux_2_17_aarch64", {so: arm_so}),
        rpath=make_wheel(
            out / "rpath",
            "geodemo_rpath",
            "manylinux_2_17_x86_64",
            {f"{PKG}/_rpath.abi3.so": rpath_so, f"{PKG}/_runpath.abi3.so": runpath_so},
        ),
        runpath_libc=make_wheel(
            out / "runpath_libc",
            "geodemo_rpl",
            "manylinux_2_17_x86_64",
            {f"{PKG}/_runpath_libc.abi3.so": runpath_libc_so},
        ),
        unversioned=make_wheel(
            out / "unversioned", "geodemo_uv", "manylinux_2_17_x86_64", {so: unversioned_so}
        ),
        unversioned_new=make_wheel(
            out / "uvnew", "geodemo_uv", "manylinux_2_17_x86_64", {so: unversioned_new_so}
        ),
        unversioned_new_ok_tag=make_wheel(
            out / "uvnew236", "geodemo_uv", "manylinux_2_36_x86_64", {so: unversioned_new_so}
        ),
        api_leak=make_wheel(out / "api", "geodemo_api", "manylinux_2_17_x86_64", {so: api_so}),
        pure_with_elf=make_wheel(out / "pure", "geodemo_pure", "any", {so: clean_so}),
    )


# --------------------------------------------------------------------------- helpers


def rules_for(report: WheelReport, file: str) -> set:
    return {v.rule for v in report.violations if v.file == file}


def details(report: WheelReport, rule: str, file: str | None = None) -> str:
    return "\n".join(
        v.detail for v in report.violations if v.rule == rule and (file is None or v.file == file)
    )


SO = f"{PKG}/_geodemo.abi3.so"


def assert_command_fails_with(wheel: Path, rule: str, file: str, capsys) -> WheelReport:
    """The wheel fails verify with an *error* of ``rule`` in ``file``."""
    assert run_verify_command([str(wheel)], as_json=False) == 1
    printed = capsys.readouterr().out
    assert rule in printed and file in printed
    report = verify_wheel(wheel)
    assert rule in {v.rule for v in report.errors if v.file == file}, report.violations
    return report


def assert_only_warns(wheel: Path, rule: str, file: str, capsys) -> WheelReport:
    """The wheel passes verify, with a *warning* of ``rule`` in ``file``; --strict fails it."""
    assert run_verify_command([str(wheel)], as_json=False) == 0
    printed = capsys.readouterr().out
    assert f"warning  {rule}" in printed and file in printed and "0 errors" in printed
    assert run_verify_command([str(wheel)], as_json=False, strict=True) == 1
    capsys.readouterr()
    report = verify_wheel(wheel)
    assert report.ok and not report.errors
    assert rule in {v.rule for v in report.warnings if v.file == file}, report.violations
    return report


# --------------------------------------------------------------------------- cases


def test_clean_extension_passes(wheels, capsys):
    assert run_verify_command([str(wheels.clean)], as_json=False) == 0
    printed = capsys.readouterr().out
    assert "OK" in printed and SO in printed and "manylinux_2_17_x86_64" in printed

    report = verify_wheel(wheels.clean)
    assert report.ok and report.violations == []
    assert (report.tag_policy, report.arch) == ("manylinux_2_17", "x86_64")
    (f,) = report.files
    assert f.path == SO and f.machine == "x86_64" and f.kind == "extension"
    assert f.max_versions["GLIBC"] == "2.14"  # memcpy
    assert f.exported == ["PyInit__geodemo"]
    assert f.ldd_checked  # ldd ran (same arch as the host) and found nothing


def test_legacy_alias_tag_resolves(wheels):
    report = verify_wheel(wheels.clean_2014)
    assert report.ok and report.tag_policy == "manylinux_2_17"


def test_glibc_symbol_newer_than_tag(wheels, capsys):
    report = assert_command_fails_with(wheels.glibc_new, "glibc-version", SO, capsys)
    # several platform tags: checked against the lowest one claimed
    assert report.tag_policy == "manylinux_2_17"
    text = details(report, "glibc-version", SO)
    assert "GLIBC_2.36" in text and "arc4random" in text and "2.17" in text
    assert report.files[0].max_versions["GLIBC"] == "2.36"
    # the same binary is fine where the tag promises glibc 2.36
    assert verify_wheel(wheels.glibc_new_ok_tag).ok


def test_policy_blacklisted_symbol(wheels, capsys):
    # auditwheel's manylinux_2_17 policy blacklists __cxa_thread_atexit_impl by name (on
    # x86_64 its GLIBC_2.18 version is also too new: two separate findings).
    report = assert_command_fails_with(wheels.blacklisted, "glibc-version", SO, capsys)
    found = [v.detail for v in report.violations if v.rule == "glibc-version"]
    assert len(found) == 2, found
    assert any("GLIBC_2.18" in d for d in found)
    assert any("__cxa_thread_atexit_impl" in d and "blacklist" in d for d in found)


def test_needed_library_outside_policy(wheels, capsys):
    report = assert_command_fails_with(wheels.foo_missing, "needed-library", SO, capsys)
    assert "libfoo.so.1" in details(report, "needed-library", SO)
    # linux_x86_64 has no whitelist, but the library is still missing at run time
    linux = verify_wheel(wheels.foo_linux)
    assert linux.tag_policy == "linux"
    assert rules_for(linux, SO) == {"ldd"}


def test_needed_library_shipped_in_wheel_is_fine(wheels):
    report = verify_wheel(wheels.foo_repaired, run_ldd=True)
    assert report.ok, report.violations
    ext = next(f for f in report.files if f.path == SO)
    (grafted,) = [n for n in ext.needed if n.startswith("libfoo")]
    assert grafted != "libfoo.so.1"  # auditwheel's hashed name, matched against the wheel
    assert any(p.startswith("$ORIGIN") for p in ext.rpath)
    assert ext.ldd_checked
    lib = next(f for f in report.files if f.path != SO)
    assert lib.kind == "shared-library" and "foo_answer" in lib.exported  # exports allowed there


def test_exported_symbols(wheels, capsys):
    # harmless under RTLD_LOCAL loading (every real Cython wheel exports
    # __pyx_module_is_main_*): a warning, an error only with --strict
    report = assert_only_warns(wheels.leak, "exported-symbols", SO, capsys)
    assert rules_for(report, SO) == {"exported-symbols"}
    text = details(report, "exported-symbols", SO)
    assert "geodemo_helper_a" in text and "geodemo_table" in text and "exports 3 symbols" in text
    assert "PyInit__geodemo:" in text


def test_auditwheel_show_misses_leaked_exports(wheels):
    proc = subprocess.run(
        [sys.executable, "-m", "auditwheel", "show", str(wheels.leak)],
        capture_output=True,
        text=True,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "manylinux_2_17_x86_64" in out  # auditwheel is satisfied with the tag ...
    assert "geodemo_helper" not in out  # ... and says nothing about the exports
    assert verify_wheel(wheels.leak).warnings  # geonox does (a warning: see above)


def test_exported_library_api_is_an_error(wheels, capsys):
    report = assert_command_fails_with(wheels.api_leak, "exported-library-api", SO, capsys)
    text = details(report, "exported-library-api", SO)
    assert "sqlite3's API (sqlite3_open_v2" in text and "geos_c's API (GEOSversion" in text
    assert "geodemo_helper" not in text  # its own helper is only a warning
    assert "geodemo_helper" in details(report, "exported-symbols", SO)
    assert {v.severity for v in report.violations if v.rule == "exported-symbols"} == {"warning"}


def test_cxx_runtime_newer_than_tag(wheels, capsys):
    so = f"{PKG}/_cxx.abi3.so"
    report = assert_command_fails_with(wheels.cxx, "cxx-runtime-version", so, capsys)
    text = details(report, "cxx-runtime-version", so)
    assert "GLIBCXX_3.4.29" in text and "3.4.24" in text and "manylinux_2_28_x86_64" in text
    assert rules_for(report, so) == {"cxx-runtime-version"}
    # weak std:: template instantiations leak despite -fvisibility=hidden and are tolerated
    exported = report.files[0].exported
    assert any(name.startswith("_ZNSt6vector") for name in exported), exported
    assert report.files[0].max_versions["GLIBCXX"] == "3.4.29"


def test_wrong_architecture(wheels, capsys):
    report = assert_command_fails_with(wheels.arm_in_x86, "architecture", SO, capsys)
    # found by magic bytes, not by the file name
    assert "architecture" in rules_for(report, f"{PKG}/data/blob")
    assert "aarch64" in details(report, "architecture", SO)
    assert all(not f.ldd_checked for f in report.files)  # cannot run aarch64 here


def test_aarch64_wheel_with_aarch64_tag_passes(wheels):
    report = verify_wheel(wheels.arm_ok)
    assert report.ok, report.violations
    (f,) = report.files
    assert f.machine == "aarch64" and f.max_versions == {"GLIBC": "2.17"} and not f.ldd_checked


def test_absolute_rpath(wheels, capsys):
    report = assert_command_fails_with(wheels.rpath, "rpath", f"{PKG}/_rpath.abi3.so", capsys)
    rpath = details(report, "rpath", f"{PKG}/_rpath.abi3.so")
    runpath = details(report, "rpath", f"{PKG}/_runpath.abi3.so")
    # only the absolute entries are named; the $ORIGIN ones next to them are accepted
    assert rpath.startswith("has DT_RPATH /usr/local/lib (inherited);"), rpath
    assert runpath.startswith(
        "has DT_RUNPATH /opt/geo/lib (searched for libz.so.1 there first);"
    ), runpath
    paths = {f.path: f.rpath for f in report.files}
    assert paths[f"{PKG}/_rpath.abi3.so"] == ["/usr/local/lib", "$ORIGIN/../geodemo.libs"]
    assert paths[f"{PKG}/_runpath.abi3.so"] == ["${ORIGIN}", "/opt/geo/lib"]


def test_an_absolute_runpath_nothing_is_looked_up_in_is_a_warning(wheels, capsys):
    report = assert_only_warns(wheels.runpath_libc, "rpath", f"{PKG}/_runpath_libc.abi3.so", capsys)
    detail = details(report, "rpath")
    assert detail.startswith("has DT_RUNPATH /opt/geo/lib, a path of the build machine;"), detail


def test_ldd_reports_missing_library(wheels, capsys):
    report = assert_command_fails_with(wheels.foo_missing, "ldd", SO, capsys)
    assert "libfoo.so.1" in details(report, "ldd", SO)
    # the extension's Python C-API references are undefined too, but expected
    assert "PyLong_FromLong" not in details(report, "ldd") and "PyUnicode_AsUTF8" not in details(
        report, "ldd"
    )
    no_ldd = verify_wheel(wheels.foo_missing, run_ldd=False)
    assert "ldd" not in rules_for(no_ldd, SO) and not no_ldd.files[0].ldd_checked


def test_unversioned_libc_import(wheels, capsys, tmp_path):
    # printf and puts exist in glibc 2.17: the module loads everywhere its tag admits (warning)
    report = assert_only_warns(wheels.unversioned, "unversioned-libc", SO, capsys)
    text = details(report, "unversioned-libc", SO)
    assert "printf" in text and "puts" in text and "libc.so.6" in text and "glibc 2.17 has" in text
    # arc4random appeared in glibc 2.36: under manylinux_2_17 the module cannot load (error)
    new = assert_command_fails_with(wheels.unversioned_new, "unversioned-libc", SO, capsys)
    (error,) = [v.detail for v in new.errors if v.rule == "unversioned-libc"]
    assert "arc4random" in error and "printf" not in error and "has no such symbol" in error
    ok_tag = verify_wheel(wheels.unversioned_new_ok_tag)
    assert ok_tag.ok and "arc4random" in details(ok_tag, "unversioned-libc", SO)
    # The binary really has unversioned references (the data the rule works on):
    with zipfile.ZipFile(wheels.unversioned) as zf:
        data = zf.read(SO)
    tmp = tmp_path / "unversioned.so"
    tmp.write_bytes(data)
    info = read_elf(tmp)
    assert {s.name: s.version for s in info.undefined if s.name in ("printf", "puts")} == {
        "printf": None,
        "puts": None,
    }


def test_pure_wheel_with_elf_file(wheels):
    report = verify_wheel(wheels.pure_with_elf)
    assert report.tag_policy == "any" and rules_for(report, SO) == {"architecture"}


def test_json_output(wheels, capsys):
    assert run_verify_command([str(wheels.clean), str(wheels.leak)], as_json=True) == 0
    assert (
        run_verify_command([str(wheels.clean), str(wheels.leak), str(wheels.rpath)], as_json=True)
        == 1
    )
    data = json.loads(capsys.readouterr().out.split("\n]\n", 1)[1])
    assert [d["wheel"] for d in data] == [wheels.clean.name, wheels.leak.name, wheels.rpath.name]
    assert data[0]["ok"] is True and data[0]["violations"] == []
    assert data[1]["ok"] is True and (data[1]["errors"], data[1]["warnings"]) == (0, 1)
    assert data[2]["ok"] is False and data[2]["errors"] == 2
    (violation,) = data[1]["violations"]
    assert violation["rule"] == "exported-symbols" and violation["file"] == SO
    assert violation["severity"] == "warning"
    assert "geodemo_helper_a" in violation["detail"]
    assert data[1]["files"][0]["exported"][0:1] and data[1]["tag_policy"] == "manylinux_2_17"


def test_table_lists_every_file_and_violation(wheels):
    reports = [verify_wheel(wheels.clean), verify_wheel(wheels.rpath)]
    table = format_table(reports)
    assert "FILE" in table and "GLIBCXX" in table
    assert f"{PKG}/_rpath.abi3.so" in table and f"{PKG}/_runpath.abi3.so" in table
    assert "OK" in table and "2 errors, 0 warnings" in table
    assert [
        line.split()[1] for line in table.splitlines() if line.startswith("  error    rpath ")
    ] == ["rpath", "rpath"]


def test_missing_or_invalid_wheel_is_a_user_error(tmp_path, wheels):
    with pytest.raises(UserError, match="does not exist"):
        run_verify_command([str(tmp_path / "nope-1.0-py3-none-any.whl")], as_json=False)
    not_zip = tmp_path / "geodemo-0.1-cp39-abi3-manylinux_2_17_x86_64.whl"
    not_zip.write_text("hello")
    with pytest.raises(UserError, match="not a zip"):
        run_verify_command([str(not_zip)], as_json=False)
    other = tmp_path / "README.txt"
    other.write_text("hello")
    with pytest.raises(UserError, match="not a wheel"):
        run_verify_command([str(wheels.clean), str(other)], as_json=False)
    bad_name = tmp_path / "geodemo.whl"
    shutil.copy(wheels.clean, bad_name)
    with pytest.raises(UserError, match="not a wheel file name"):
        verify_wheel(bad_name)


def test_policy_resolution_and_versions():
    assert resolve_policy("manylinux1_x86_64").name == "manylinux_2_5"
    assert resolve_policy("manylinux2014_aarch64").name == "manylinux_2_17"
    # a policy newer than auditwheel knows: the glibc limit comes from the tag
    future = resolve_policy("manylinux_2_99_x86_64")
    assert version_allowed("2.99", future.symbol_versions["GLIBC"])
    assert not version_allowed("2.100", future.symbol_versions["GLIBC"])
    with pytest.raises(UserError, match="not a manylinux"):
        resolve_policy("win_amd64")
    assert version_allowed("2.14", {"2.2.5", "2.17"}) and not version_allowed("2.18", {"2.17"})
    assert not version_allowed("PRIVATE", {"2.17"}) and version_allowed(
        "ABI_DT_RELR", {"ABI_DT_RELR"}
    )
    assert version_allowed("LDBL_3.4.7", {"3.4.30", "LDBL_3.4.10"}) and not version_allowed(
        "LDBL_3.4.11", {"3.4.30", "LDBL_3.4.10"}
    )
    assert set(RULES) == {
        "architecture",
        "needed-library",
        "glibc-version",
        "cxx-runtime-version",
        "unversioned-libc",
        "rpath",
        "musl-relr",
        "exported-library-api",
        "exported-symbols",
        "duplicate-library",
        "undeclared-bundle",
        "record",
        "ldd",
    }


def test_cli_subprocess(wheels):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    ok = subprocess.run(
        [sys.executable, "-m", "geonox", "verify", str(wheels.clean)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "OK" in ok.stdout
    warned = subprocess.run(
        [sys.executable, "-m", "geonox", "verify", str(wheels.leak)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert warned.returncode == 0 and "1 warning" in warned.stdout, warned.stdout + warned.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "geonox", "verify", "--strict", "--json", str(wheels.leak)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert json.loads(bad.stdout)[0]["violations"][0]["rule"] == "exported-symbols"
