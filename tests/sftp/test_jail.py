"""Path cleaning and the rights each open needs, without a server."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.sftp.accounts import Folder, Right
from gateway.sftp.jail import DeniedError, View, clean, rights_for_open
from gateway.sftp.protocol import OpenFlag


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", "/"),  # the empty path is the working folder
        (b".", "/"),  # so is "."
        (b"inbox/a.gpg", "/inbox/a.gpg"),  # relative paths start at "/"
        (b"//inbox///a.gpg", "/inbox/a.gpg"),  # repeated slashes fold
        (b"/inbox/./a.gpg", "/inbox/a.gpg"),  # "." vanishes
        (b"/../../..", "/"),  # ".." stops at "/"
        (b"/inbox/../../etc", "/etc"),  # and never reaches the real root
        (b"/inbox/a/..", "/inbox"),  # ".." last
    ],
)
def test_clean_folds_paths_inside_the_root(raw: bytes, expected: str) -> None:
    """Cleaning gives one canonical virtual path that cannot climb above /."""
    assert clean(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"/inbox/a\x00b", "NUL byte in path"),  # C would cut the name here
        (b"/inbox/a\nb", "control character in path"),  # log and listing forgery
        (b"/inbox/a\x7fb", "control character in path"),  # DEL
        (b"/inbox/\xc0\xaf", "path is not valid UTF-8"),  # overlong "/" encoding
        (b"/" + b"a" * 1100, "path too long"),  # bounded work per request
    ],
)
def test_clean_refuses_hostile_bytes(raw: bytes, reason: str) -> None:
    """Bytes that could confuse C, logs or decoders are refused with a reason."""
    with pytest.raises(DeniedError, match=reason) as caught:
        clean(raw)

    assert caught.value.path.isprintable()


def test_view_compares_folders_as_names_not_prefixes(tmp_path: Path) -> None:
    """A folder whose name starts with a view folder's name is not in the view."""
    view = View({"inbox": Folder("inbox", tmp_path, Right.WRITE)})

    with pytest.raises(DeniedError, match="outside"):
        view.resolve(b"/inboxx/a.gpg")
    assert view.resolve(b"/inbox/a.gpg").real == tmp_path / "a.gpg"


@pytest.mark.parametrize(
    ("flags", "rights"),
    [
        (OpenFlag.READ, Right.READ),  # a plain download
        (OpenFlag.WRITE | OpenFlag.CREATE | OpenFlag.TRUNCATE, Right.WRITE),  # put
        (OpenFlag.READ | OpenFlag.WRITE, Right.READ | Right.WRITE),  # both
        (OpenFlag.TRUNCATE, Right.WRITE),  # truncation alone is a write
        (OpenFlag(0), Right.READ),  # no flags at all reads
    ],
)
def test_open_rights_come_from_the_flags(flags: OpenFlag, rights: Right) -> None:
    """The right an OPEN needs is derived from its flags."""
    assert rights_for_open(flags) == rights
