"""Keyed pseudonyms for data subjects.

An audit event refers to a person only as ``HMAC-SHA256(key, BSN)``, so the log
can answer "which exchanges concerned this BSN" for someone who holds the key,
while the log alone reveals nothing. The key file sits apart from the log (see
``audit.pseudonym_key``); it holds one key per line as ``<key-id> <hex>``, the
last line being the key in use. Rotating adds a line: old pseudonyms stay
answerable because a query computes the pseudonym under every key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from gateway.errors import ConfigError

_KEY_BYTES = 32


@dataclass(frozen=True)
class PseudonymKey:
    """One HMAC key and the short id that prefixes its pseudonyms."""

    key_id: str
    secret: bytes

    def apply(self, identifier: str) -> str:
        """The pseudonym of *identifier* under this key."""
        digest = hmac.new(self.secret, identifier.encode("ascii"), hashlib.sha256)
        return f"{self.key_id}:{digest.hexdigest()}"


class Pseudonymiser:
    """Turns BSNs into keyed pseudonyms with the current key."""

    def __init__(self, keys: list[PseudonymKey]) -> None:
        if not keys:
            raise ConfigError("the pseudonym key file holds no key")
        self.keys = keys

    @classmethod
    def load(cls, path: Path) -> Pseudonymiser:
        """Read the key file at *path*."""
        try:
            lines = path.read_text(encoding="ascii").split()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: pseudonym key file cannot be read") from exc
        pairs = list(zip(lines[::2], lines[1::2], strict=False))
        try:
            keys = [PseudonymKey(kid, bytes.fromhex(hexkey)) for kid, hexkey in pairs]
        except ValueError as exc:
            raise ConfigError(f"{path}: pseudonym key file is malformed") from exc
        return cls(keys)

    def pseudonym(self, bsn: str) -> str:
        """The pseudonym of *bsn* under the current key."""
        return self.keys[-1].apply(bsn)

    def all_pseudonyms(self, bsn: str) -> list[str]:
        """The pseudonyms of *bsn* under every key, current and retired."""
        return [key.apply(bsn) for key in self.keys]


def add_key(path: Path) -> str:
    """Append a fresh key to the key file at *path* (creating it 0600).

    Returns the new key's id. The first key is ``k1``, then ``k2``, and so on.
    """
    existing = Pseudonymiser.load(path).keys if path.exists() else []
    key_id = f"k{len(existing) + 1}"
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="ascii") as handle:
        handle.write(f"{key_id} {secrets.token_hex(_KEY_BYTES)}\n")
    return key_id
