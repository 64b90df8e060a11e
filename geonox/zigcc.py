"""The runtime of geonox's zig wrapper executables (cc, c++, ar, ranlib, strip).

Every compiler call of a zig build runs one of them, so this module imports nothing but
the standard library (the wrappers run Python with ``-S``): a few milliseconds a call
instead of the tenths of a second importing geonox's own dependencies would cost.
:func:`translate` handles zig's traps; see :mod:`geonox.zig`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

_X86_LEVELS = {
    "x86-64": "x86_64",
    "x86-64-v2": "x86_64_v2",
    "x86-64-v3": "x86_64_v3",
    "x86-64-v4": "x86_64_v4",
}


def _mcpu(arch: str, march: str) -> str:
    if arch == "aarch64":
        # armv8-a -> generic; armv8.2-a -> generic+v8_2a
        if march in ("armv8-a", "armv8"):
            return "generic"
        if march.startswith("armv8.") and march.endswith("-a"):
            return "generic+v8_" + march[len("armv8.") : -2] + "a"
        return march.replace("-", "_")
    return _X86_LEVELS.get(march, march.replace("-", "_"))


def translate(tool: str, target: str, args: list[str]) -> list[str]:
    """zig argv (after the zig binary) for a compiler-driver call of ``cc``/``c++``."""
    arch = target.split("-", 1)[0]
    out: list[str] = []
    skip = 0
    for i, arg in enumerate(args):
        if skip:
            skip -= 1
            continue
        if arg in ("-target", "--target"):
            skip = 1
            continue
        if arg == "-Xlinker" and i + 1 < len(args) and args[i + 1].startswith("--exclude-libs"):
            # Clang spelling of CMake's LINKER: flags: -Xlinker --exclude-libs -Xlinker ALL
            separate = args[i + 1] == "--exclude-libs" and args[i + 2 : i + 3] == ["-Xlinker"]
            skip = 3 if separate else 1
            continue
        if arg.startswith(("--target=", "-target=")):
            continue
        if arg.startswith("-march="):
            out.append(f"-mcpu={_mcpu(arch, arg[len('-march=') :])}")
            continue
        if arg.startswith("-mtune="):
            continue
        if arg.startswith("-Wp,"):
            parts = [p for p in arg[4:].split(",") if p]
            out.extend(parts)
            continue
        if arg.startswith("-Wl,"):
            parts = arg[4:].split(",")
            kept: list[str] = []
            j = 0
            while j < len(parts):
                if parts[j] == "--exclude-libs":
                    j += 2
                    continue
                if parts[j].startswith("--exclude-libs="):
                    j += 1
                    continue
                kept.append(parts[j])
                j += 1
            if kept:
                out.append("-Wl," + ",".join(kept))
            continue
        out.append(arg)
    return [tool, *out, "-fno-sanitize=all", "-target", target]


def _sh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def sh_wrapper(tool: str, target: str, zig: str) -> str:
    """A POSIX sh ``cc``/``c++``/``ar``/``ranlib`` that does what :func:`translate` does and
    execs zig: no Python start per compiler call (≈1 ms of dash instead of ≈60 ms).  The
    tests hold it to :func:`translate` argument list by argument list."""
    z = _sh_quote(zig)
    if tool in ("ar", "ranlib"):
        return f'#!/bin/sh\nexec {z} {tool} "$@"\n'
    arch = target.split("-", 1)[0]
    if arch == "aarch64":
        mcpu = """        armv8-a|armv8) a=generic ;;
        armv8.*-a) a=${a#armv8.}; a=generic+v8_${a%-a}a ;;
        *) a=$(printf %s "$a" | tr - _) ;;"""
    else:
        known = "\n".join(f"        {k}) a={v} ;;" for k, v in _X86_LEVELS.items())
        mcpu = known + '\n        *) a=$(printf %s "$a" | tr - _) ;;'
    return f"""#!/bin/sh
# geonox zig {tool} for {target} (generated; see geonox.zigcc.translate)
n=$#
while [ "$n" -gt 0 ]; do
  a=$1; shift; n=$((n - 1))
  case $a in
    -target|--target) [ "$n" -gt 0 ] && {{ shift; n=$((n - 1)); }}; continue ;;
    --target=*|-target=*|-mtune=*) continue ;;
    -Xlinker)
      if [ "$n" -gt 0 ]; then
        case $1 in
          --exclude-libs)
            if [ "$n" -ge 2 ] && [ "$2" = "-Xlinker" ]; then
              k=3; [ "$n" -lt 3 ] && k=$n
            else
              k=1
            fi
            while [ "$k" -gt 0 ]; do shift; n=$((n - 1)); k=$((k - 1)); done
            continue ;;
          --exclude-libs*) shift; n=$((n - 1)); continue ;;
        esac
      fi ;;
    -march=*)
      a=${{a#-march=}}
      case $a in
{mcpu}
      esac
      set -- "$@" "-mcpu=$a"; continue ;;
    -Wp,*)
      rest=${{a#-Wp,}}
      while [ -n "$rest" ]; do
        part=${{rest%%,*}}
        [ -n "$part" ] && set -- "$@" "$part"
        case $rest in *,*) rest=${{rest#*,}} ;; *) rest= ;; esac
      done
      continue ;;
    -Wl,*)
      rest=${{a#-Wl,}},; kept=; drop=0
      while [ -n "$rest" ]; do
        part=${{rest%%,*}}; rest=${{rest#*,}}
        if [ "$drop" = 1 ]; then drop=0; continue; fi
        case $part in
          --exclude-libs) drop=1; continue ;;
          --exclude-libs=*) continue ;;
        esac
        kept=$kept,$part
      done
      [ -n "$kept" ] && set -- "$@" "-Wl$kept"
      continue ;;
  esac
  set -- "$@" "$a"
done
exec {z} {tool} "$@" -fno-sanitize=all -target {_sh_quote(target)}
"""


def wrapper_main(tool: str, target: str, argv: list[str], zig: str | None = None) -> int:
    """Entry point of the generated wrapper executables (``zig``: the binary's path;
    wrappers written before it was passed look it up in the ziglang package)."""
    if zig is None:
        import ziglang

        zig = os.path.join(os.path.dirname(ziglang.__file__), "zig")
    if tool in ("cc", "c++"):
        cmd = [zig, *translate(tool, target, argv)]
    elif tool in ("ar", "ranlib"):
        cmd = [zig, tool, *argv]
    elif tool == "strip":
        # The host's binutils strip cannot read aarch64; llvm-strip reads every arch.
        # zig 0.17's objcopy answers "unimplemented" for shared objects: then the file is
        # left as it is (stripping only saves space) and we say so.
        llvm = shutil.which("llvm-strip")
        files = [a for a in argv if not a.startswith("-")]
        for f in files:
            if llvm and subprocess.call([llvm, "--strip-all", f]) == 0:
                continue
            tmp = f"{f}.geonox-strip"
            if subprocess.call(
                [zig, "objcopy", "--strip-all", f, tmp], stderr=subprocess.DEVNULL
            ) == 0 and os.path.getsize(tmp):
                os.replace(tmp, f)
                continue
            if os.path.exists(tmp):
                os.unlink(tmp)
            print(
                f"geonox: {f} left unstripped (no llvm-strip on PATH; zig objcopy cannot strip it)",
                file=sys.stderr,
            )
        return 0
    else:
        raise SystemExit(f"geonox zig wrapper: unknown tool {tool}")
    os.execv(zig, cmd)
