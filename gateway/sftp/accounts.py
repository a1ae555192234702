"""SFTP accounts: who may log in with which key, and which folders each sees.

Every partner in the configuration is an account named by its id. An
intermediary sees ``/inbox`` (upload only) and ``/receipts`` (read and remove);
a municipality sees ``/outbox`` (read and remove). Nothing else exists for them.

An entry of ``ssh_keys`` is either an OpenSSH public key line
(``ssh-ed25519 AAAA... comment``) or the path of a file holding such lines,
relative to the configuration file.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Flag, auto
from pathlib import Path

import paramiko

from gateway.config import Config, PartnerKind
from gateway.errors import ConfigError
from gateway.spool import Spool

# Key types accepted for logging in; ssh-rsa with SHA-1 signatures is refused by
# the transport, but an RSA key may still sign with rsa-sha2-256/512.
KEY_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
)


class Right(Flag):
    """What an account may do in one of its folders."""

    NONE = 0
    LIST = auto()
    READ = auto()
    WRITE = auto()
    DELETE = auto()


@dataclass(frozen=True)
class Folder:
    """One folder of an account's view: its virtual name and the real one."""

    name: str
    real: Path
    rights: Right
    # Downloads and removals from an outbox are deliveries: audited and entered
    # in the ledger.
    delivers: bool = False


@dataclass(frozen=True)
class Account:
    """One partner account of the SFTP service."""

    id: str
    kind: PartnerKind
    keys: frozenset[bytes]
    folders: Mapping[str, Folder]

    def accepts(self, key: paramiko.PKey) -> bool:
        """True if *key* is one of the account's authorised keys."""
        return key.asbytes() in self.keys


def load_accounts(config: Config) -> dict[str, Account]:
    """Every account in *config* with its keys and folders."""
    spool = Spool(config.gateway.spool)
    base = config.path.parent
    accounts = [
        _intermediary_account(i.id, i.ssh_keys, spool, base)
        for i in config.intermediaries.values()
    ] + [
        _municipality_account(m.id, m.ssh_keys, spool, base)
        for m in config.municipalities.values()
    ]
    return {account.id: account for account in accounts}


def _intermediary_account(
    account: str, ssh_keys: tuple[str, ...], spool: Spool, base: Path
) -> Account:
    receipts = Right.LIST | Right.READ | Right.DELETE
    return Account(
        id=account,
        kind=PartnerKind.INTERMEDIARY,
        keys=authorised_keys(ssh_keys, base),
        folders=_view(
            Folder("inbox", spool.inbox(account), Right.WRITE),
            Folder("receipts", spool.receipts(account), receipts),
        ),
    )


def _municipality_account(
    account: str, ssh_keys: tuple[str, ...], spool: Spool, base: Path
) -> Account:
    outbox = Right.LIST | Right.READ | Right.DELETE
    return Account(
        id=account,
        kind=PartnerKind.MUNICIPALITY,
        keys=authorised_keys(ssh_keys, base),
        folders=_view(Folder("outbox", spool.outbox(account), outbox, delivers=True)),
    )


def _view(*folders: Folder) -> dict[str, Folder]:
    return {folder.name: folder for folder in folders}


def authorised_keys(entries: tuple[str, ...], base: Path) -> frozenset[bytes]:
    """The key blobs of every ``ssh_keys`` entry."""
    blobs: set[bytes] = set()
    for entry in entries:
        lines = [entry] if _is_key_line(entry) else _key_file_lines(base / entry)
        blobs.update(parse_public_key(line) for line in lines)
    return frozenset(blobs)


def _is_key_line(entry: str) -> bool:
    return entry.strip().split(" ", 1)[0] in KEY_TYPES


def _key_file_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read SSH public key") from exc
    return [
        line for line in text.splitlines() if line.strip() and not line.startswith("#")
    ]


def parse_public_key(line: str) -> bytes:
    """The key blob of an OpenSSH public key line, checked by paramiko."""
    fields = line.split()
    if len(fields) < 2 or fields[0] not in KEY_TYPES:
        raise ConfigError("ssh_keys: not an OpenSSH public key line")
    try:
        blob = base64.b64decode(fields[1], validate=True)
        key = paramiko.PKey.from_type_string(fields[0], blob)
    except (binascii.Error, paramiko.SSHException, ValueError) as exc:
        raise ConfigError(f"ssh_keys: unreadable {fields[0]} key") from exc
    return key.asbytes()
