"""Tests for loading and checking the configuration file."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import config
from gateway.errors import ConfigError

GATEWAY_KEY = "A" * 40
PARTNER_KEY = "B" * 40

VALID = f"""
[gateway]
spool = "spool"
gnupg_home = "gnupg"
key_fingerprint = "{GATEWAY_KEY}"
workers = 3

[retention]
archive_days = 60

[[intermediary]]
id = "uitzender-noord"
name = "Uitzender Noord B.V."
kvk = "12345678"
loonheffingennummer = "123456782L01"
signing_keys = ["{PARTNER_KEY}"]
municipalities = ["GM0599"]

[[municipality]]
id = "rotterdam"
code = "GM0599"
name = "Rotterdam"
encryption_key = "{PARTNER_KEY}"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "loonbrug.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_file_loads_with_paths_resolved_next_to_it(tmp_path: Path) -> None:
    """Relative paths are resolved against the configuration file's folder."""
    loaded = config.load(write(tmp_path, VALID))

    assert loaded.gateway.spool == tmp_path / "spool"
    assert loaded.gateway.workers == 3
    assert loaded.retention.archive_days == 60
    assert loaded.retention.rejected_days == config.Retention().rejected_days
    assert loaded.intermediaries["uitzender-noord"].municipalities == {"GM0599"}
    assert loaded.municipality_by_code("GM0599") is loaded.municipalities["rotterdam"]
    assert loaded.municipality_codes == {"GM0599"}


@pytest.mark.parametrize(
    ("change", "place"),
    [
        # a typo in a key must not be ignored silently
        (("workers = 3", "wrokers = 3"), "gateway.wrokers: unknown key"),
        # KvK numbers have exactly eight digits
        (('kvk = "12345678"', 'kvk = "1234567"'), "intermediary[1].kvk"),
        # the loonheffingennummer is 9 digits, L, 2 digits
        (('"123456782L01"', '"123456782X01"'), "intermediary[1].loonheffingennummer"),
        # an authorisation for a municipality the gateway does not know
        (('municipalities = ["GM0599"]', 'municipalities = ["GM0344"]'), "GM0344"),
        # fingerprints are pinned in full, never as short key ids
        ((f'signing_keys = ["{PARTNER_KEY}"]', 'signing_keys = ["BBBBBBBB"]'), "40"),
        # account ids name spool folders, so they cannot carry path characters
        (('id = "rotterdam"', 'id = "../rotterdam"'), "municipality[1].id"),
        # two partners with one account id would share folders
        (('id = "rotterdam"', 'id = "uitzender-noord"'), "duplicate account id"),
        # a port must fit in 16 bits
        (("[retention]", "[sftp]\nport = 70000\n[retention]"), "sftp.port"),
        # new keys every few packets would starve the transfers
        (
            ("[retention]", "[sftp]\nrekey_limit_bytes = 1000\n[retention]"),
            "sftp.rekey_limit_bytes: must be 65536 or more",
        ),
    ],
)
def test_each_problem_is_named_with_its_place(
    tmp_path: Path, change: tuple[str, str], place: str
) -> None:
    """A broken setting is reported with the place where it stands."""
    text = VALID.replace(*change)
    assert text != VALID

    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, text))

    assert place in str(caught.value)


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    """Several problems are listed together, not only the first one."""
    text = VALID.replace('kvk = "12345678"', 'kvk = "1"').replace(
        'code = "GM0599"', 'code = "0599"'
    )

    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, text))

    assert "intermediary[1].kvk" in str(caught.value)
    assert "municipality[1].code" in str(caught.value)


def test_missing_and_malformed_files_are_config_errors(tmp_path: Path) -> None:
    """A missing file and broken TOML both give a ConfigError naming the file."""
    with pytest.raises(ConfigError, match="no such configuration file"):
        config.load(tmp_path / "absent.toml")

    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(write(tmp_path, "[gateway\n"))
