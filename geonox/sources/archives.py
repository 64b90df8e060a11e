"""Safe extraction of source archives: every member checked by us (on every Python), plus
tarfile's ``data`` filter where the running Python has it."""

from __future__ import annotations

import os
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from geonox.errors import SourceError

# tarfile's "data" filter (3.12+, backported to 3.8.17/3.9.17/3.10.12/3.11.4). Tests
# switch this off to prove that our own member check is enough on its own.
_USE_DATA_FILTER = hasattr(tarfile, "data_filter")
_TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tbz", ".tar.xz", ".txz", ".tar")


def extract(archive: Path, dest: Path) -> Path:
    """Extract ``archive`` (.tar.gz/.tgz/.tar.bz2/.tar.xz/.zip) into ``dest`` atomically.

    ``dest`` must not exist.  Members with absolute paths or ``..`` components, links
    that point outside the tree, and device/fifo files are refused (SourceError naming
    the member) and nothing is left behind.  Returns the single top-level directory if
    the archive has exactly one, else ``dest``.
    """
    archive, dest = Path(archive), Path(dest)
    if dest.exists() or dest.is_symlink():
        raise SourceError(
            f"cannot extract {archive.name} into {dest}: it already exists; remove it first."
        )
    if not archive.is_file():
        raise SourceError(f"cannot extract {archive}: no such file.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".extracting", dir=dest.parent))
    try:
        name = archive.name.lower()
        if name.endswith(".zip"):
            _extract_zip(archive, tmp)
        elif name.endswith(_TAR_SUFFIXES) or tarfile.is_tarfile(archive):
            _extract_tar(archive, tmp)
        elif zipfile.is_zipfile(archive):
            _extract_zip(archive, tmp)
        else:
            raise SourceError(
                f"cannot extract {archive.name}: not a tar or zip archive "
                f"(supported: .tar.gz .tgz .tar.bz2 .tar.xz .zip)."
            )
        os.chmod(tmp, 0o777 & ~_umask())
        try:
            os.rename(tmp, dest)
        except OSError as e:
            raise SourceError(
                f"cannot move the extracted {archive.name} to {dest}: {e.strerror or e}."
            ) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    top = list(dest.iterdir())
    if len(top) == 1 and top[0].is_dir() and not top[0].is_symlink():
        return top[0]
    return dest


def _umask() -> int:
    try:  # Linux >= 4.7: read it without changing it (os.umask is process-wide)
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _refuse(archive: Path, member: str, why: str) -> SourceError:
    return SourceError(
        f"refusing to extract {archive.name}: member {member!r} {why}; "
        f"nothing was extracted. The archive is malformed or malicious: "
        f"check where it came from."
    )


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def _check_name(archive: Path, name: str) -> None:
    if not name or "\x00" in name:
        raise _refuse(archive, name, "has an empty or invalid name")
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise _refuse(archive, name, "has an absolute path")
    if ".." in re.split(r"[/\\]", name):
        raise _refuse(archive, name, "has a '..' path component")


def _check_tar_member(archive: Path, m: tarfile.TarInfo, root: str) -> None:
    """Our own check, on every Python: the data filter may be missing (3.9-3.11)."""
    _check_name(archive, m.name)
    parent = os.path.realpath(os.path.join(root, os.path.dirname(m.name)))
    if not _within(parent, root):
        raise _refuse(archive, m.name, "would be written through a link outside the tree")
    if m.isreg() or m.isdir():
        return
    if m.issym() or m.islnk():
        kind = "symlink" if m.issym() else "hardlink"
        link = m.linkname
        if not link:
            raise _refuse(archive, m.name, f"is a {kind} with an empty target")
        if link.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", link):
            raise _refuse(archive, m.name, f"is a {kind} to an absolute path ({link})")
        base = os.path.dirname(m.name) if m.issym() else ""
        target = os.path.realpath(os.path.join(root, base, link))
        if not _within(target, root):
            raise _refuse(archive, m.name, f"is a {kind} pointing outside the tree ({link})")
        return
    kinds = {
        tarfile.CHRTYPE: "character device",
        tarfile.BLKTYPE: "block device",
        tarfile.FIFOTYPE: "fifo",
    }
    raise _refuse(archive, m.name, f"is a {kinds.get(m.type, 'special file')}")


def _extract_tar(archive: Path, tmp: Path) -> None:
    root = os.path.realpath(tmp)
    uid, gid = os.getuid(), os.getgid()
    try:
        tar = tarfile.open(archive, "r:*")  # noqa: SIM115  (closed below; its error is ours)
    except (tarfile.TarError, OSError, EOFError) as e:
        raise SourceError(
            f"cannot read {archive.name}: {short_error(e)}. The file is damaged; "
            f"delete it from the cache and fetch again."
        ) from None
    with tar:
        tar.errorlevel = 1

        def checked() -> Iterator[tarfile.TarInfo]:
            # Lazily, so each check sees the links extracted before it (realpath).
            for m in tar:
                _check_tar_member(archive, m, root)
                if not _USE_DATA_FILTER:
                    # What the data filter would do: no owners, no special mode bits.
                    m.uid, m.gid, m.uname, m.gname = uid, gid, "", ""
                    if m.isreg():
                        m.mode = (m.mode & 0o755) | 0o600
                    elif m.isdir():
                        m.mode = (m.mode & 0o755) | 0o700
                yield m

        try:
            if _USE_DATA_FILTER:
                tar.extractall(tmp, members=checked(), filter="data")
            else:
                tar.extractall(tmp, members=checked())
        except SourceError:
            raise
        except Exception as e:  # tarfile.FilterError and friends, damaged archives
            member = getattr(e, "tarinfo", None)
            if member is not None:
                raise _refuse(archive, member.name, f"was refused ({short_error(e)})") from None
            raise SourceError(
                f"cannot extract {archive.name}: {short_error(e)}. The file may be "
                f"damaged; delete it from the cache and fetch again."
            ) from None


def _extract_zip(archive: Path, tmp: Path) -> None:
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as e:
        raise SourceError(
            f"cannot read {archive.name}: {short_error(e)}. The file is damaged; "
            f"delete it from the cache and fetch again."
        ) from None
    with zf:
        infos = zf.infolist()
        for info in infos:  # all checks first: zip has a central directory
            _check_name(archive, info.filename)
            mode = info.external_attr >> 16
            if stat.S_IFMT(mode) in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK):
                raise _refuse(archive, info.filename, "is a device, fifo or socket")
        root = os.path.realpath(tmp)
        for info in infos:
            out = zf.extract(info, tmp)
            if not _within(os.path.realpath(out), root):  # belt and braces
                raise _refuse(archive, info.filename, "escapes the tree")
            mode = (info.external_attr >> 16) & 0o777
            if mode and not info.is_dir():
                os.chmod(out, (mode & 0o755) | 0o600)


def short_error(exc: BaseException, limit: int = 120) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
