"""Tests for ``loonbrug keys``: init, import, export and pseudonym rotation."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.commands.keys import set_key_fingerprint
from gateway.config import load
from gateway.pgp import OpenPgp, stop_agent
from gateway.pseudonym import Pseudonymiser

FINGERPRINT = "0123456789ABCDEF0123456789ABCDEF01234567"
MINIMAL = """\
# The gateway's settings.
[gateway]
spool = "spool"  # where files move
gnupg_home = "gnupg"
state_dir = "state"

[sftp]
port = 2222
"""


@pytest.mark.parametrize(
    ("before", "after"),
    [
        # no [gateway] table yet: one is added on top
        ('[sftp]\nport = 1\n', f'[gateway]\nkey_fingerprint = "{FINGERPRINT}"\n\n'
         '[sftp]\nport = 1\n'),
        # a [gateway] table without the key: the line goes first in it
        ('[gateway]\nspool = "s"\n', f'[gateway]\nkey_fingerprint = "{FINGERPRINT}"\n'
         'spool = "s"\n'),
        # an old fingerprint is replaced in place
        ('[gateway]\nkey_fingerprint = "OLD"\nspool = "s"\n',
         f'[gateway]\nkey_fingerprint = "{FINGERPRINT}"\nspool = "s"\n'),
        # a like-named line in another table is left alone
        ('[gateway]\nspool = "s"\n[other]\nkey_fingerprint = "X"\n',
         f'[gateway]\nkey_fingerprint = "{FINGERPRINT}"\nspool = "s"\n'
         '[other]\nkey_fingerprint = "X"\n'),
    ],
)  # fmt: skip
def test_set_key_fingerprint(before: str, after: str) -> None:
    """The fingerprint lands in the [gateway] table and nothing else changes."""
    assert set_key_fingerprint(before, FINGERPRINT) == after


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "loonbrug.toml"
    path.write_text(MINIMAL, "utf-8")
    return path


def test_keys_init_records_the_new_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """keys init -c creates the key, writes its fingerprint and a pseudonym key."""
    path = _config(tmp_path)

    status = main(["keys", "init", "-c", str(path), "--expire", "1y"])

    fingerprint = capsys.readouterr().out.strip()
    config = load(path)
    assert status == 0
    assert config.gateway.key_fingerprint == fingerprint
    assert "# where files move" in path.read_text("utf-8")
    assert Pseudonymiser.load(config.audit.pseudonym_key).keys[0].key_id == "k1"
    with OpenPgp(config.gateway.gnupg_home) as pgp:
        info = pgp.key_info(fingerprint)
    assert info is not None
    assert info.has_secret
    assert info.can_sign
    assert info.can_encrypt


def test_keys_init_keeps_a_usable_key_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second keys init refuses to replace a usable key; --force replaces it."""
    path = _config(tmp_path)
    main(["keys", "init", "-c", str(path)])
    first = capsys.readouterr().out.strip()

    refused = main(["keys", "init", "-c", str(path)])
    forced = main(["keys", "init", "-c", str(path), "--force"])

    second = capsys.readouterr().out.strip()
    assert refused == 2
    assert forced == 0
    assert second != first
    assert load(path).gateway.key_fingerprint == second
    OpenPgp(tmp_path / "gnupg").close()


def test_keys_init_with_home_only_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """keys init --home makes a key in that home and prints its fingerprint."""
    status = main(["keys", "init", "--home", str(tmp_path / "home")])

    fingerprint = capsys.readouterr().out.strip()
    assert status == 0
    with OpenPgp(tmp_path / "home") as pgp:
        assert pgp.key_info(fingerprint) is not None


def test_keys_import_prints_the_fingerprint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Importing a partner's exported key prints the partner's fingerprint."""
    with OpenPgp(tmp_path / "partner") as partner:
        fingerprint = partner.generate_key("Gemeente Test")
        (tmp_path / "partner.asc").write_bytes(partner.export_public(fingerprint))
    path = _config(tmp_path)

    status = main(["keys", "import", "-c", str(path), str(tmp_path / "partner.asc")])

    assert status == 0
    assert capsys.readouterr().out.strip() == fingerprint
    with OpenPgp(tmp_path / "gnupg") as gateway:
        assert gateway.key_info(fingerprint) is not None


def test_keys_import_refuses_a_secret_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file holding a partner's secret key is refused and nothing is imported."""
    with OpenPgp(tmp_path / "partner") as partner:
        fingerprint = partner.generate_key("Uitzender Test")
    home = str(tmp_path / "partner")
    batch = ["--batch", "--pinentry-mode", "loopback", "--passphrase", ""]
    exported = subprocess.run(
        [
            "gpg",
            "--homedir",
            home,
            *batch,
            "--armor",
            "--export-secret-keys",
            fingerprint,
        ],
        check=True,
        capture_output=True,
    ).stdout
    stop_agent(tmp_path / "partner")  # the export started one
    (tmp_path / "secret.asc").write_bytes(exported)
    path = _config(tmp_path)

    status = main(["keys", "import", "-c", str(path), str(tmp_path / "secret.asc")])

    assert status == 2
    assert "secret key" in capsys.readouterr().err
    with OpenPgp(tmp_path / "gnupg") as gateway:
        assert gateway.key_info(fingerprint) is None


def test_keys_import_refuses_a_file_without_keys(tmp_path: Path) -> None:
    """A file that holds no key is an error (exit 2)."""
    (tmp_path / "junk.asc").write_text("no key here")

    status = main(
        ["keys", "import", "--home", str(tmp_path / "h"), str(tmp_path / "junk.asc")]
    )

    assert status == 2
    OpenPgp(tmp_path / "h").close()


def test_keys_export_prints_the_gateway_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """keys export -c prints the armored public key of the configured key."""
    path = _config(tmp_path)
    main(["keys", "init", "-c", str(path)])
    capsys.readouterr()

    status = main(["keys", "export", "-c", str(path)])

    assert status == 0
    assert capsys.readouterr().out.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    OpenPgp(tmp_path / "gnupg").close()


def test_rotate_pseudonym_adds_a_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """rotate-pseudonym appends a key, which becomes the one in use."""
    path = _config(tmp_path)

    main(["keys", "rotate-pseudonym", "-c", str(path)])
    status = main(["keys", "rotate-pseudonym", "-c", str(path)])

    keys = Pseudonymiser.load(load(path).audit.pseudonym_key).keys
    assert status == 0
    assert [k.key_id for k in keys] == ["k1", "k2"]
    assert "k2" in capsys.readouterr().out
