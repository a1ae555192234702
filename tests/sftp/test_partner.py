"""The partner configuration file: written by one function, read by another."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.sftp.partner import load_partner, write_partner_config


def test_written_configuration_loads_back(tmp_path: Path) -> None:
    """What write_partner_config writes, load_partner reads with absolute paths."""
    path = tmp_path / "partner.toml"

    partner = write_partner_config(
        path,
        host="gateway.example.nl",
        port=2222,
        account="rotterdam",
        ssh_key="id_ed25519",
        host_key="SHA256:abc",
        gnupg_home="gnupg",
        fingerprint="a" * 40,
        gateway_fingerprint="B" * 40,
    )

    assert partner.ssh_key == tmp_path / "id_ed25519"
    assert partner.fingerprint == "A" * 40
    assert partner.known_hosts is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('host = "h"', "port is required"),  # most keys missing
        (
            'host = "h"\nport = "22"\naccount = "a"\nssh_key = "k"\nhost_key = "x"\n'
            f'gnupg_home = "g"\nfingerprint = "{"A" * 40}"\n'
            f'gateway_fingerprint = "{"B" * 40}"',
            "port must be a whole number",
        ),  # a port given as text
        ('colour = "blue"', "colour: unknown key"),  # a misspelt key
        ('fingerprint = "ABC"', "fingerprint is not a full 40-digit"),  # short id
    ],
)
def test_bad_configuration_is_refused(tmp_path: Path, text: str, problem: str) -> None:
    """Each problem is named in the error."""
    path = tmp_path / "partner.toml"
    path.write_text(text)

    with pytest.raises(ConfigError, match=problem):
        load_partner(path)
