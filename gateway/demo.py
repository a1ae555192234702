"""A complete sandbox: a configuration, real keys and every partner's side.

``loonbrug demo init DIR`` calls :func:`create_sandbox`; tests use it to get a
real configuration with real OpenPGP and SSH keys. The sandbox holds::

    DIR/loonbrug.toml                the gateway's configuration
    DIR/gnupg/                       the gateway's GnuPG home (its own secret key,
                                     every partner's public key)
    DIR/keys/pseudonym.key           the audit log's pseudonym key
    DIR/state/ssh_host_ed25519_key   the SFTP host key (partners pin it)
    DIR/spool/...                    inboxes, receipts, outboxes
    DIR/partners/<account>/          one folder per partner: its own GnuPG home
        gnupg/, id_ed25519(.pub),    (own secret key, the gateway's public key,
                                     trusted in gpg.conf, so plain gpg works),
        known_hosts, partner.toml    its SSH key, the pinned host key, and how to
                                     connect

Intermediaries: ``uitzender-noord`` may report on every municipality,
``flexwerk-zuid`` only on Rotterdam and Utrecht. Municipalities: ``rotterdam``
(GM0599), ``utrecht`` (GM0344), ``groningen`` (GM0014). The KvK and
loonheffingennummer values are made up (the latter passes the eleven-test).
Keys carry no passphrase: a sandbox is for trying things out, not for real data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway import pseudonym
from gateway.config import Intermediary, Municipality, load
from gateway.errors import UsageError
from gateway.pgp import OpenPgp
from gateway.sftp.partner import write_partner_config
from gateway.spool import Spool, make_private_dir

KEY_EXPIRY = "2y"
CONFIG_NAME = "loonbrug.toml"
HOST_KEY = Path("state/ssh_host_ed25519_key")

_INTERMEDIARIES = (
    Intermediary(
        id="uitzender-noord",
        name="Uitzendbureau Noord B.V.",
        kvk="81547320",
        payroll_tax_number="815473291L01",
        signing_keys=(),
        municipalities=frozenset({"GM0599", "GM0344", "GM0014"}),
    ),
    Intermediary(
        id="flexwerk-zuid",
        name="Flexwerk Zuid B.V.",
        kvk="64203715",
        payroll_tax_number="642037188L02",
        signing_keys=(),
        municipalities=frozenset({"GM0599", "GM0344"}),
    ),
)
_MUNICIPALITIES = (
    Municipality(id="rotterdam", code="GM0599", name="Rotterdam", encryption_key=""),
    Municipality(id="utrecht", code="GM0344", name="Utrecht", encryption_key=""),
    Municipality(id="groningen", code="GM0014", name="Groningen", encryption_key=""),
)


@dataclass(frozen=True)
class Sandbox:
    """A sandbox made by :func:`create_sandbox`."""

    folder: Path
    config_path: Path
    intermediaries: tuple[str, ...]
    municipalities: tuple[str, ...]

    def partner_folder(self, account: str) -> Path:
        """The folder that holds one partner's keys and settings."""
        return self.folder / "partners" / account

    def partner_gnupg(self, account: str) -> Path:
        """The GnuPG home of one partner."""
        return self.partner_folder(account) / "gnupg"


@dataclass(frozen=True)
class _Partner:
    """The keys made for one partner."""

    account: str
    fingerprint: str
    openpgp_public: bytes
    ssh_public: str


def create_sandbox(folder: Path, *, port: int = 2222) -> Sandbox:
    """Create a complete, working sandbox in *folder* (empty or absent)."""
    folder = folder.absolute()
    if (folder / CONFIG_NAME).exists():
        raise UsageError(f"{folder} already holds a sandbox")
    for private in (folder, folder / "partners", folder / "spool"):
        make_private_dir(private)
    accounts = [p.id for p in (*_INTERMEDIARIES, *_MUNICIPALITIES)]

    with OpenPgp(folder / "gnupg") as gateway:
        gateway_key = gateway.generate_key(
            "Loonbrug gateway (demo) <gateway@loonbrug.invalid>", expire=KEY_EXPIRY
        )
        gateway_public = gateway.export_public(gateway_key)
        partners = [
            _make_partner(folder, a, gateway_public, gateway_key) for a in accounts
        ]
        gateway.import_keys(b"".join(p.openpgp_public for p in partners))

    host_public = _write_ssh_key(folder / HOST_KEY, "loonbrug-demo")
    pseudonym.add_key(folder / "keys" / "pseudonym.key")
    config_path = folder / CONFIG_NAME
    config_path.write_text(_config_text(gateway_key, partners, port), "utf-8")
    for partner in partners:
        _write_partner_settings(folder, partner, gateway_key, port, host_public)
    config = load(config_path)
    Spool(config.gateway.spool).prepare(config.intermediaries, config.municipalities)
    return Sandbox(
        folder=folder,
        config_path=config_path,
        intermediaries=tuple(p.id for p in _INTERMEDIARIES),
        municipalities=tuple(p.id for p in _MUNICIPALITIES),
    )


def _make_partner(
    folder: Path, account: str, gateway_public: bytes, gateway_key: str
) -> _Partner:
    """One partner's GnuPG home and SSH key."""
    partner_folder = folder / "partners" / account
    make_private_dir(partner_folder)
    home = partner_folder / "gnupg"
    with OpenPgp(home) as pgp:
        fingerprint = pgp.generate_key(
            f"{account} (demo) <{account}@partners.loonbrug.invalid>",
            expire=KEY_EXPIRY,
        )
        pgp.import_keys(gateway_public)
        public = pgp.export_public(fingerprint)
    # Plain gpg in this home refuses to encrypt to a key nobody vouched for;
    # the partner vouches for the gateway's key here, as it would after
    # checking the fingerprint over a second channel.
    (home / "gpg.conf").write_text(
        f"# The Loonbrug gateway's key, checked by fingerprint.\n"
        f"trusted-key {gateway_key}\n",
        "ascii",
    )
    ssh_public = _write_ssh_key(partner_folder / "id_ed25519", account)
    return _Partner(account, fingerprint, public, ssh_public)


def _write_ssh_key(path: Path, comment: str) -> str:
    """Write an Ed25519 key pair as OpenSSH files; the public key line."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    line = f"{public.decode('ascii')} {comment}"
    make_private_dir(path.parent)
    _write_private(path, private)
    _write_private(path.with_name(path.name + ".pub"), f"{line}\n".encode())
    return line


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _config_text(gateway_key: str, partners: list[_Partner], port: int) -> str:
    """The sandbox's loonbrug.toml."""
    by_account = {p.account: p for p in partners}
    document: dict[str, Any] = {
        "gateway": {
            "spool": "spool",
            "gnupg_home": "gnupg",
            "key_fingerprint": gateway_key,
            "state_dir": "state",
            "workers": 2,
            "max_upload_bytes": 200 * 1024 * 1024,
            "max_plaintext_bytes": 1024 * 1024 * 1024,
        },
        "sftp": {"listen": "127.0.0.1", "port": port, "host_key": str(HOST_KEY)},
        "audit": {"dir": "audit", "pseudonym_key": "keys/pseudonym.key"},
        "intermediary": [
            _intermediary_table(i, by_account[i.id]) for i in _INTERMEDIARIES
        ],
        "municipality": [
            _municipality_table(m, by_account[m.id]) for m in _MUNICIPALITIES
        ],
    }
    header = (
        "# Loonbrug demo sandbox, made by `loonbrug demo init`.\n"
        "# Paths are relative to this file. Keys have no passphrase: demo only.\n\n"
    )
    return header + tomli_w.dumps(document)


def _intermediary_table(
    intermediary: Intermediary, partner: _Partner
) -> dict[str, Any]:
    return {
        "id": intermediary.id,
        "name": intermediary.name,
        "kvk": intermediary.kvk,
        "loonheffingennummer": intermediary.payroll_tax_number,
        "signing_keys": [partner.fingerprint],
        "municipalities": sorted(intermediary.municipalities),
        "ssh_keys": [partner.ssh_public],
    }


def _municipality_table(
    municipality: Municipality, partner: _Partner
) -> dict[str, Any]:
    return {
        "id": municipality.id,
        "code": municipality.code,
        "name": municipality.name,
        "encryption_key": partner.fingerprint,
        "ssh_keys": [partner.ssh_public],
    }


def _write_partner_settings(
    folder: Path, partner: _Partner, gateway_key: str, port: int, host_public: str
) -> None:
    """partners/<account>/partner.toml and known_hosts: how to reach the gateway."""
    partner_folder = folder / "partners" / partner.account
    host_line = f"[127.0.0.1]:{port} {' '.join(host_public.split()[:2])}\n"
    (partner_folder / "known_hosts").write_text(host_line, "ascii")
    write_partner_config(
        partner_folder / "partner.toml",
        host="127.0.0.1",
        port=port,
        account=partner.account,
        ssh_key="id_ed25519",
        known_hosts="known_hosts",
        host_key=" ".join(host_public.split()[:2]),
        gnupg_home="gnupg",
        fingerprint=partner.fingerprint,
        gateway_fingerprint=gateway_key,
    )
