"""Writes to a user-named path replace only a regular file of the tool's own: never a link, device, FIFO
or socket, and a file of the user's only with --overwrite."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from automl_tl.errors import UserError
from automl_tl.runtime import atomic_files, owned_files
from automl_tl.runtime.owned_files import check_file_target, output_path, write_file

MARK = b"<!-- ours -->"


def ours(head: bytes, tail: bytes) -> bool:
    return head.startswith(MARK)


def write(path: Path, data: bytes = MARK + b" new", overwrite: bool = False) -> Path:
    return write_file(path, data, "-o", ours, overwrite, "out.html")


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


@pytest.fixture
def unix_socket(tmp_path: Path):
    path = tmp_path / "sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    yield path
    server.close()


def kind(path: Path) -> int:
    return stat.S_IFMT(path.lstat().st_mode)


@pytest.mark.parametrize("special", ["fifo", "unix_socket"])
def test_a_fifo_or_socket_is_refused_and_stays_what_it_was(special, request, tmp_path):
    path: Path = request.getfixturevalue(special)
    before = kind(path)
    for overwrite in (False, True):
        with pytest.raises(UserError) as caught:
            write(path, overwrite=overwrite)
        message = str(caught.value)
        assert f"-o {path} is a" in message and "writes its output as a file" in message
        assert "nothing was written" in message
        assert kind(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary file left


def test_a_link_is_refused_whatever_it_points_to(fifo, tmp_path):
    own = tmp_path / "own.html"
    own.write_bytes(MARK + b" old")
    outside = tmp_path / "elsewhere" / "theirs.txt"
    outside.parent.mkdir()
    outside.write_text("theirs")
    for target in (fifo, own, outside, tmp_path / "missing"):
        link = tmp_path / f"link-to-{target.name}"
        link.symlink_to(target)
        with pytest.raises(UserError) as caught:
            write(link, overwrite=True)
        assert f"-o {link} is a symbolic link (to {target})" in str(caught.value)
        assert link.is_symlink() and os.readlink(link) == str(target)
    assert kind(fifo) == stat.S_IFIFO and own.read_bytes() == MARK + b" old" and outside.read_text() == "theirs"
    assert not (tmp_path / "missing").exists()


def test_the_real_dev_null_is_refused_and_stays_a_device(monkeypatch):
    null = Path("/dev/null")
    if not stat.S_ISCHR(null.lstat().st_mode):
        pytest.skip("/dev/null is not a character device here")

    def never(source, destination, *args, **kwargs):  # a safety net: this test runs as root in some places
        raise AssertionError(f"os.replace reached {destination}")

    monkeypatch.setattr(owned_files.os, "replace", never)
    for name in ("/dev/null", "/dev/full", "/dev/stdout"):
        path = output_path(name)
        if not os.path.lexists(path):
            continue
        before = kind(path)
        with pytest.raises(UserError) as caught:
            write(path, overwrite=True)
        assert str(path) in str(caught.value) and ("character device" in str(caught.value)
                                                   or "symbolic link" in str(caught.value))
        assert kind(path) == before
    assert stat.S_ISCHR(null.lstat().st_mode)


def test_a_file_of_the_users_needs_overwrite_and_one_of_ours_does_not(tmp_path):
    theirs = tmp_path / "notes.html"
    theirs.write_text("my notes")
    with pytest.raises(UserError) as caught:
        write(theirs)
    assert "--overwrite" in str(caught.value) and "automl-tl did not write it" in str(caught.value)
    assert theirs.read_text() == "my notes"
    assert write(theirs, overwrite=True) == theirs and theirs.read_bytes() == MARK + b" new"

    own = tmp_path / "own.html"
    own.write_bytes(MARK + b" old")
    write(own, MARK + b" newer")
    assert own.read_bytes() == MARK + b" newer"


def test_a_folder_is_refused_with_a_file_name_to_use(tmp_path):
    with pytest.raises(UserError) as caught:
        check_file_target(tmp_path, "-o", ours, True, "report.html")
    assert f"-o {tmp_path} is a folder" in str(caught.value) and str(tmp_path / "report.html") in str(caught.value)


def test_a_replaced_file_keeps_its_permissions_and_a_new_one_follows_the_umask(tmp_path):
    own = tmp_path / "own.html"
    own.write_bytes(MARK)
    own.chmod(0o600)
    write(own)
    assert stat.S_IMODE(own.stat().st_mode) == 0o600
    previous = os.umask(0o027)
    try:
        fresh = write(tmp_path / "fresh.html")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o640


def test_a_path_that_becomes_a_fifo_while_the_data_is_prepared_is_still_refused(tmp_path, monkeypatch):
    target = tmp_path / "late.html"
    real_mkstemp = atomic_files.tempfile.mkstemp

    def mkstemp_then_fifo(*args, **kwargs):
        made = real_mkstemp(*args, **kwargs)
        os.mkfifo(target)  # another program puts a FIFO there after the first check
        return made

    monkeypatch.setattr(atomic_files.tempfile, "mkstemp", mkstemp_then_fifo)
    with pytest.raises(UserError, match="named pipe"):
        write(target)
    assert kind(target) == stat.S_IFIFO and sorted(p.name for p in tmp_path.iterdir()) == ["late.html"]


def test_output_path_keeps_the_last_part_as_named(tmp_path, monkeypatch):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "dir-link").symlink_to(real)
    (tmp_path / "file-link").symlink_to(real / "x")
    monkeypatch.chdir(tmp_path)
    assert output_path("dir-link/out.html") == real / "out.html"  # the folders above are resolved
    assert output_path("file-link") == tmp_path / "file-link"  # the link itself is what gets checked
    assert output_path("real/..") == tmp_path
