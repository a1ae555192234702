"""Tests of keyed pseudonyms: stable, keyed, rotatable, and the key file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.pseudonym import Pseudonymiser, add_key
from tests.support.audit import BSN_A, BSN_B


def test_a_pseudonym_is_stable_and_keyed(tmp_path: Path) -> None:
    """The same BSN gives the same pseudonym under a key, another under another."""
    one, two = tmp_path / "one.key", tmp_path / "two.key"
    add_key(one)
    add_key(two)

    first = Pseudonymiser.load(one)

    assert first.pseudonym(BSN_A) == Pseudonymiser.load(one).pseudonym(BSN_A)
    assert first.pseudonym(BSN_A) != first.pseudonym(BSN_B)
    assert first.pseudonym(BSN_A) != Pseudonymiser.load(two).pseudonym(BSN_A)
    assert re.fullmatch(r"k1:[0-9a-f]{64}", first.pseudonym(BSN_A))


def test_rotation_keeps_old_pseudonyms_answerable(tmp_path: Path) -> None:
    """After rotation new pseudonyms use k2 and the k1 one is still computed."""
    path = tmp_path / "pseudonym.key"
    add_key(path)
    before = Pseudonymiser.load(path).pseudonym(BSN_A)

    assert add_key(path) == "k2"
    after = Pseudonymiser.load(path)

    assert after.pseudonym(BSN_A).startswith("k2:")
    assert after.all_pseudonyms(BSN_A) == [before, after.pseudonym(BSN_A)]


def test_the_key_file_is_private(tmp_path: Path) -> None:
    """The key file is created 0600 in a 0700 folder."""
    path = tmp_path / "keys" / "pseudonym.key"

    add_key(path)

    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize(
    "content",
    [
        "",  # no key at all
        "k1 not-hex\n",  # a key that is not hexadecimal
        "\xff\xfe",  # not ASCII
    ],
)
def test_a_bad_key_file_is_a_config_error(tmp_path: Path, content: str) -> None:
    """An empty, malformed or unreadable key file raises ConfigError."""
    path = tmp_path / "pseudonym.key"
    path.write_text(content, encoding="latin-1")

    with pytest.raises(ConfigError):
        Pseudonymiser.load(path)


def test_a_missing_key_file_is_a_config_error(tmp_path: Path) -> None:
    """A key file that is not there raises ConfigError naming the path only."""
    with pytest.raises(ConfigError, match="cannot be read"):
        Pseudonymiser.load(tmp_path / "none.key")
