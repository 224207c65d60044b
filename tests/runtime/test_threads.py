"""usable_cpus: the CPUs this process may use, from its affinity and its control groups' CPU quota."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from automl_tl.runtime import threads
from automl_tl.runtime.threads import cgroup_cpu_limit, usable_cpus


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def cgroups(tmp_path, monkeypatch):
    """A fake /sys/fs/cgroup and /proc/self/cgroup, read by usable_cpus; affinity 8 CPUs of a 64-core host."""
    root, own = tmp_path / "cgroup", tmp_path / "self_cgroup"
    root.mkdir()
    monkeypatch.setattr(threads, "CGROUP_ROOT", root)
    monkeypatch.setattr(threads, "SELF_CGROUP", own)
    monkeypatch.setattr(threads.cgroup_cpu_limit, "__defaults__", (root, own))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    return root, own


def test_affinity_limits_what_cpu_count_reports(cgroups):
    root, own = cgroups
    write(own, "0::/\n")
    assert usable_cpus() == 8, "os.cpu_count() would say 64"


def test_a_cgroup_v2_quota_is_rounded_up(cgroups):
    root, own = cgroups
    write(own, "0::/\n")
    write(root / "cpu.max", "150000 100000\n")
    assert cgroup_cpu_limit() == pytest.approx(1.5)
    assert usable_cpus() == 2


def test_a_parent_groups_quota_limits_its_children(cgroups):
    root, own = cgroups
    write(own, "0::/system.slice/job.scope\n")
    write(root / "system.slice" / "cpu.max", "300000 100000\n")
    write(root / "system.slice" / "job.scope" / "cpu.max", "max 100000\n")
    assert usable_cpus() == 3


def test_no_quota_leaves_the_affinity(cgroups):
    root, own = cgroups
    write(own, "0::/\n")
    write(root / "cpu.max", "max 100000\n")
    assert cgroup_cpu_limit() is None and usable_cpus() == 8


def test_a_cgroup_v1_cfs_quota_counts_and_minus_one_means_none(cgroups):
    root, own = cgroups
    write(own, "4:memory:/x\n2:cpu,cpuacct:/docker/abc\n0::/\n")
    write(root / "cpu,cpuacct" / "cpu.cfs_quota_us", "200000\n")
    write(root / "cpu,cpuacct" / "cpu.cfs_period_us", "100000\n")
    assert usable_cpus() == 2, "the container's own group: the host path /docker/abc is not visible inside it"
    write(root / "cpu,cpuacct" / "cpu.cfs_quota_us", "-1\n")
    assert usable_cpus() == 8


def test_unreadable_or_odd_files_fall_back_safely(cgroups, monkeypatch):
    root, own = cgroups
    assert usable_cpus() == 8, "no /proc/self/cgroup"
    write(own, "0::/\n")
    write(root / "cpu.max", "lots\n")
    assert usable_cpus() == 8
    monkeypatch.delattr(os, "sched_getaffinity")
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert usable_cpus() == 1


def test_decoding_and_the_image_size_budget_count_the_usable_cpus(cgroups, monkeypatch):
    from automl_tl.data import image_store, resolution

    root, own = cgroups
    write(own, "0::/\n")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert image_store.decode_workers() == 3
    # a first pass over 1000 images within 60% of 60 s: 224 px on 64 cores, not on 3
    assert resolution.choose_image_size(224, 224, 1000, timeout=60.0).image_size == 192
    assert resolution.choose_image_size(224, 224, 1000, timeout=60.0, cores=64).image_size == 224


def test_the_torch_adapter_sets_its_threads_from_usable_cpus(monkeypatch):
    torch = pytest.importorskip("torch")
    from automl_tl_torch.adapter import configure_cpu_threads

    before = torch.get_num_threads()
    monkeypatch.delenv("AUTOML_TL_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    try:
        configure_cpu_threads()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
