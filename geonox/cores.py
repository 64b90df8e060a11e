"""How many cores a build may use: the CPUs this process may run on (its affinity mask),
capped by the cgroup's CPU quota (a CI runner or container given ``--cpus 2`` on a 64-core
host must compile with ``-j2``, not ``-j64``: the kernel throttles the rest, and 64 C++
compiles in flight swap).  ``os.cpu_count()`` answers neither question.

Standard library only, so it also runs as a script where geonox is not installed (the
test runs it inside a container started with ``--cpus``)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def _affinity() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _own_group(controller: str) -> list[str]:
    """This process's group path for ``controller`` ("" for cgroup v2), from
    /proc/self/cgroup, as parts."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        _, names, path = line.split(":", 2)
        if (names == "" and controller == "") or controller in names.split(","):
            return [p for p in path.split("/") if p]
    return []


def _smallest(groups: list[Path], read: Callable[[Path], float | None]) -> float | None:
    """The smallest quota of this group and every group above it (the tightest wins);
    inside a container the namespaced root is the container's own group."""
    limits = [q for q in map(read, groups) if q is not None]
    return min(limits) if limits else None


def _read_v2(group: Path) -> float | None:
    try:  # "max 100000" or "200000 100000"
        quota, period = (group / "cpu.max").read_text().split()[:2]
        return float(quota) / float(period) if quota != "max" and float(period) > 0 else None
    except (OSError, ValueError):
        return None


def _read_v1(group: Path) -> float | None:
    try:
        quota = int((group / "cpu.cfs_quota_us").read_text())
        period = int((group / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def _chain(base: Path, parts: list[str]) -> list[Path]:
    return [base.joinpath(*parts[:depth]) for depth in range(len(parts), -1, -1)]


def cgroup_quota(cgroup: Path = CGROUP) -> float | None:
    """The CPU quota of this process's cgroup in CPUs (1.5 = one and a half), or None."""
    if (cgroup / "cgroup.controllers").exists():  # v2 (unified)
        return _smallest(_chain(cgroup, _own_group("")), _read_v2)
    return _smallest(_chain(cgroup / "cpu", _own_group("cpu")), _read_v1)


def usable_cores(cgroup: Path = CGROUP) -> int:
    """Cores a parallel build should use: the affinity mask, capped by the cgroup quota
    (rounded up: a quota of 1.5 CPUs keeps two compiles busy)."""
    cores = _affinity()
    quota = cgroup_quota(cgroup)
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


if __name__ == "__main__":
    print(usable_cores())
