"""Plugins come only from what the user installed or named: never from the working directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from automl_tl.distributed.workers import worker_command


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """A folder a user might cd into, holding a distribution's metadata whose plugin leaves a trace when run."""
    folder = tmp_path / "downloaded"
    info = folder / "evil-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: evil\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[automl_tl]\nevil = evil_plugin\n")
    trace = tmp_path / "evil-ran"
    (folder / "evil_plugin.py").write_text(f"open({str(trace)!r}, 'w').write('ran')\n")
    return folder


def plugin_names(output: str) -> set[str]:
    return {row["name"] for row in json.loads(output)}


def test_python_m_never_loads_a_plugin_from_the_working_directory(planted):
    done = subprocess.run([sys.executable, "-m", "automl_tl", "plugins", "--json"], cwd=planted,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "evil" not in plugin_names(done.stdout) and "torch" in plugin_names(done.stdout)
    assert not (planted.parent / "evil-ran").exists()


def test_workers_start_without_the_working_directory_on_the_path(planted):
    command = worker_command("study", "data", [])
    prefix = command[: command.index("worker")]
    done = subprocess.run([*prefix, "plugins", "--json"], cwd=planted, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "evil" not in plugin_names(done.stdout)
    assert not (planted.parent / "evil-ran").exists()


def test_the_library_skips_entry_points_in_the_working_directory(planted, monkeypatch):
    from automl_tl.plugin.manager import installed_entry_points, load_plugins

    monkeypatch.chdir(planted)
    monkeypatch.syspath_prepend(str(planted))  # what `python -c` or an embedding program does
    assert "evil" not in {entry_point.name for entry_point in installed_entry_points()}
    plugins = load_plugins()
    assert "evil" not in plugins.sources and "torch" in plugins.sources
    assert not (planted.parent / "evil-ran").exists()
