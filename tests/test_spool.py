"""Tests for the spool layout and its atomic writes."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from gateway.spool import Spool, atomic_writer, is_temporary_name, write_atomically


def test_prepare_creates_private_folders(tmp_path: Path) -> None:
    """Every spool folder, parents included, is created with mode 0700."""
    spool = Spool(tmp_path / "spool")

    spool.prepare(["noord"], ["rotterdam"])

    folders = [spool.root, spool.inbox("noord").parent, spool.outbox("rotterdam")]
    folders += [spool.inbox("noord"), spool.rejected("noord"), spool.work()]
    for folder in folders:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_atomic_write_leaves_a_private_complete_file(tmp_path: Path) -> None:
    """The target appears whole, mode 0600, with no temporary file beside it."""
    target = tmp_path / "out.bin"

    write_atomically(target, b"payload")

    assert target.read_bytes() == b"payload"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_failed_atomic_write_keeps_the_old_file(tmp_path: Path) -> None:
    """An error while writing leaves the previous content and no debris."""
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    with pytest.raises(RuntimeError), atomic_writer(target) as handle:
        handle.write(b"half")
        raise RuntimeError

    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


@pytest.mark.parametrize(
    ("name", "temporary"),
    [
        ("report.xml.gpg", False),
        (".report.xml.gpg.upload", True),  # hidden upload name of our SFTP server
        ("report.xml.gpg.filepart", True),  # WinSCP
        ("report.xml.gpg.part", True),  # FileZilla and many scripts
        ("report.tmp", True),
    ],
)
def test_temporary_names(name: str, temporary: bool) -> None:
    """Names of uploads still in progress are recognised."""
    assert is_temporary_name(name) is temporary
