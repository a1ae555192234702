"""Tests for gateway.demo and ``loonbrug demo init``: a complete, working sandbox."""

from __future__ import annotations

import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.checkconfig import check
from gateway.cli import main
from gateway.config import Config, load
from gateway.demo import Sandbox, create_sandbox
from gateway.errors import UsageError
from gateway.pgp import OpenPgp, gpg_home, stop_agent
from gateway.sftp.accounts import authorised_keys, parse_public_key


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    """One sandbox shared by the read-only tests of this module."""
    return create_sandbox(tmp_path_factory.mktemp("demo") / "sandbox", port=2345)


@pytest.fixture(scope="module")
def config(sandbox: Sandbox) -> Config:
    """The sandbox's configuration, loaded."""
    return load(sandbox.config_path)


@pytest.fixture
def gateway(sandbox: Sandbox, config: Config) -> Iterator[OpenPgp]:
    """The gateway's OpenPGP home in the sandbox."""
    with OpenPgp(config.gateway.gnupg_home) as pgp:
        yield pgp


def test_sandbox_has_the_promised_partners(sandbox: Sandbox, config: Config) -> None:
    """Two intermediaries, three municipalities, one with limited authorisation."""
    assert sandbox.intermediaries == ("uitzender-noord", "flexwerk-zuid")
    assert sandbox.municipalities == ("rotterdam", "utrecht", "groningen")
    assert config.intermediaries["uitzender-noord"].municipalities == {
        "GM0599",
        "GM0344",
        "GM0014",
    }
    assert config.intermediaries["flexwerk-zuid"].municipalities == {
        "GM0599",
        "GM0344",
    }
    assert {m.code for m in config.municipalities.values()} == {
        "GM0599",
        "GM0344",
        "GM0014",
    }
    assert config.sftp.port == 2345


def test_sandbox_passes_check_config(sandbox: Sandbox) -> None:
    """A fresh sandbox has no configuration problem at all."""
    assert check(sandbox.config_path) == []


def test_gateway_home_holds_its_secret_and_every_partner_key(
    config: Config, gateway: OpenPgp
) -> None:
    """The gateway can sign, decrypt, and knows every partner's public key."""
    own = gateway.key_info(config.gateway.key_fingerprint)
    partner_keys = [k for i in config.intermediaries.values() for k in i.signing_keys]
    partner_keys += [m.encryption_key for m in config.municipalities.values()]

    assert own is not None
    assert own.has_secret
    assert own.expires is not None
    for fingerprint in partner_keys:
        info = gateway.key_info(fingerprint)
        assert info is not None
        assert not info.has_secret


def test_partner_homes_hold_own_secret_and_gateway_key(
    sandbox: Sandbox, config: Config
) -> None:
    """Each partner's GnuPG home has its own secret key and the gateway's public key."""
    for account in (*sandbox.intermediaries, *sandbox.municipalities):
        settings = _partner_settings(sandbox, account)
        with OpenPgp(sandbox.partner_gnupg(account)) as pgp:
            own = pgp.key_info(settings["fingerprint"])
            gateway = pgp.key_info(config.gateway.key_fingerprint)

        assert own is not None
        assert own.has_secret
        assert gateway is not None
        assert not gateway.has_secret


def test_an_intermediary_report_reaches_the_gateway_and_back(
    sandbox: Sandbox, config: Config, gateway: OpenPgp
) -> None:
    """A partner-signed upload verifies at the gateway as the pinned key, and back."""
    pinned = config.intermediaries["uitzender-noord"].signing_keys[0]
    rotterdam = config.municipalities["rotterdam"].encryption_key
    with OpenPgp(sandbox.partner_gnupg("uitzender-noord")) as partner:
        upload = partner.encrypt_sign_bytes(
            b"<WageReport/>", recipient=config.gateway.key_fingerprint, signer=pinned
        )

    plain, verified = gateway.decrypt_verify_bytes(upload, max_output=1024)
    delivery = gateway.encrypt_sign_bytes(
        plain, recipient=rotterdam, signer=config.gateway.key_fingerprint
    )
    with OpenPgp(sandbox.partner_gnupg("rotterdam")) as municipality:
        received, signed_by = municipality.decrypt_verify_bytes(
            delivery, max_output=1024
        )

    assert verified.signer_fingerprint == pinned
    assert received == b"<WageReport/>"
    assert signed_by.signer_fingerprint == config.gateway.key_fingerprint


def test_plain_gpg_in_a_partner_home_can_send_to_the_gateway(
    sandbox: Sandbox, config: Config, gateway: OpenPgp
) -> None:
    """An intermediary's plain ``gpg --sign --encrypt`` works without extra options."""
    home = sandbox.partner_gnupg("flexwerk-zuid")
    command = ["gpg", "--homedir", str(gpg_home(home)), "--batch", "--sign"]
    command += ["--encrypt", "--recipient", config.gateway.key_fingerprint]
    try:
        done = subprocess.run(
            command, input=b"<WageReport/>", capture_output=True, check=False
        )
    finally:
        stop_agent(home)

    _, verified = gateway.decrypt_verify_bytes(done.stdout, max_output=1024)

    assert done.returncode == 0, done.stderr.decode()
    assert (
        verified.signer_fingerprint
        in config.intermediaries["flexwerk-zuid"].signing_keys
    )


def test_partner_ssh_keys_are_listed_and_private(
    sandbox: Sandbox, config: Config
) -> None:
    """Every partner's SSH key file is 0600 and its public half is in ssh_keys."""
    for account in (*sandbox.intermediaries, *sandbox.municipalities):
        partner = config.account(account)
        private = sandbox.partner_folder(account) / "id_ed25519"
        public = private.with_name("id_ed25519.pub").read_text("ascii")
        assert partner is not None
        assert private.stat().st_mode & 0o777 == 0o600
        assert parse_public_key(public) in authorised_keys(
            partner.ssh_keys, config.path.parent
        )


def test_partner_settings_describe_the_connection(
    sandbox: Sandbox, config: Config
) -> None:
    """partner.toml names host, port, account, key paths and both fingerprints."""
    for account in (*sandbox.intermediaries, *sandbox.municipalities):
        settings = _partner_settings(sandbox, account)
        folder = sandbox.partner_folder(account)

        assert settings["port"] == 2345
        assert settings["account"] == account
        assert settings["gateway_fingerprint"] == config.gateway.key_fingerprint
        assert (folder / settings["ssh_key"]).is_file()
        assert (folder / settings["gnupg_home"]).is_dir()
        assert settings["host_key"] in (folder / settings["known_hosts"]).read_text()


def test_spool_folders_exist_and_are_private(config: Config) -> None:
    """Every partner's spool folders exist with mode 0700."""
    spool = config.gateway.spool
    folders = [spool / "inbox" / a for a in config.intermediaries]
    folders += [spool / "outbox" / a for a in config.municipalities]

    for folder in folders:
        assert folder.stat().st_mode & 0o777 == 0o700


def test_no_agent_keeps_running_after_creation(
    sandbox: Sandbox, config: Config
) -> None:
    """Creating the sandbox leaves no gpg-agent socket behind in any home."""
    homes = [config.gateway.gnupg_home]
    homes += [sandbox.partner_gnupg(a) for a in sandbox.municipalities]
    homes += [sandbox.partner_gnupg(a) for a in sandbox.intermediaries]

    assert [h for h in homes if (gpg_home(h) / "S.gpg-agent").exists()] == []


def test_an_existing_sandbox_is_not_overwritten(sandbox: Sandbox) -> None:
    """create_sandbox refuses a folder that already holds a configuration."""
    with pytest.raises(UsageError):
        create_sandbox(sandbox.folder)


def test_demo_init_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``loonbrug demo init DIR --port N`` creates a loadable sandbox."""
    status = main(["demo", "init", str(tmp_path / "box"), "--port", "2400"])

    assert status == 0
    assert load(tmp_path / "box" / "loonbrug.toml").sftp.port == 2400
    assert "loonbrug run -c" in capsys.readouterr().out


def _partner_settings(sandbox: Sandbox, account: str) -> dict[str, Any]:
    path = sandbox.partner_folder(account) / "partner.toml"
    return tomllib.loads(path.read_text("utf-8"))
