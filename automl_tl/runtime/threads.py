"""How many CPUs this process may really use: its CPU affinity and its container's CPU quota, not the
machine's core count (``os.cpu_count()`` reports every core of the host, even inside a container
limited to two)."""

from __future__ import annotations

import math
import os
from pathlib import Path

__all__ = ["cgroup_cpu_limit", "usable_cpus"]

CGROUP_ROOT = Path("/sys/fs/cgroup")
SELF_CGROUP = Path("/proc/self/cgroup")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _quota(text: str | None) -> float | None:
    """CPUs that ``quota period`` allows (cgroup v2 ``cpu.max``; v1 joins its two files the same way);
    None for no limit (``max`` or v1's ``-1``) or text that is not a quota."""
    parts = (text or "").split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    try:
        quota, period = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _with_ancestors(mount: Path, path: str) -> list[Path]:
    """``mount/path`` and every folder above it up to ``mount``: a parent's quota limits its children.
    Inside a container the path may name the host's hierarchy, which the container does not see; the
    folders that are missing are skipped, and the mount itself (the container's own group) stays."""
    folders = [mount]
    current = mount
    for part in Path(path).parts:
        if part == "/":
            continue
        current = current / part
        folders.append(current)
    return [folder for folder in folders if folder.is_dir()]


def cgroup_cpu_limit(root: Path = CGROUP_ROOT, self_cgroup: Path = SELF_CGROUP) -> float | None:
    """The tightest CPU quota of this process's control groups (v2 ``cpu.max``, v1
    ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``), in CPUs; None where none is set or none can be read."""
    limits: list[float] = []
    for line in (_read(self_cgroup) or "").splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":  # the unified (v2) hierarchy
            for folder in _with_ancestors(root, path):
                limits.append(_quota(_read(folder / "cpu.max")) or math.inf)
        elif "cpu" in controllers.split(","):
            for mount in dict.fromkeys((root / controllers, root / "cpu", root / "cpu,cpuacct")):
                for folder in _with_ancestors(mount, path):
                    quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
                    limits.append(_quota(f"{quota} {period}") or math.inf)
    tightest = min(limits, default=math.inf)
    return None if math.isinf(tightest) else tightest


def _affinity() -> int | None:
    try:
        return len(os.sched_getaffinity(0)) or None
    except (AttributeError, OSError):  # not Linux
        return None


def usable_cpus() -> int:
    """CPUs this process may use: the fewest of its affinity mask, its control groups' CPU quota
    (rounded up: a quota of 1.5 CPUs keeps two threads busy) and the machine's count; at least 1."""
    counts = [count for count in (_affinity(), os.cpu_count()) if count]
    limit = cgroup_cpu_limit()
    if limit is not None:
        counts.append(math.ceil(limit))
    return max(1, min(counts, default=1))
