"""Checks of a configuration against the world: key ring, key files, SSH keys.

:func:`gateway.config.load` checks the file on its own (shape, values, ids,
references). :func:`check` adds what needs the gateway's GnuPG home and the
files the configuration points at, and returns every problem with its place,
so an operator can fix them all in one go. Keys that expire within
:data:`EXPIRY_WARNING` are warnings; anything that would make the daemon refuse
or fail an upload is an error.

Read-only: a missing GnuPG home is reported, never created.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from gateway.config import Config, Intermediary, Municipality, load
from gateway.errors import ConfigError
from gateway.pgp import OpenPgp
from gateway.pseudonym import Pseudonymiser
from gateway.sftp.accounts import authorised_keys

EXPIRY_WARNING = timedelta(days=30)

_P = TypeVar("_P", Intermediary, Municipality)


class Severity(StrEnum):
    """How bad a configuration problem is."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the configuration, and where."""

    severity: Severity
    place: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.place}: {self.message}"


@dataclass(frozen=True)
class _Need:
    """What a key must be able to do where the configuration names it."""

    sign: bool = False
    encrypt: bool = False
    secret: bool = False


def check(path: Path, *, now: datetime | None = None) -> list[Problem]:
    """Every problem of the configuration file at *path*.

    Raises :class:`ConfigError` only when the file cannot be read or parsed
    as TOML at all.
    """
    try:
        config = load(path)
    except ConfigError as exc:
        if not exc.problems:
            raise
        return [_from_loader(problem) for problem in exc.problems]
    return check_config(config, now=now or datetime.now(UTC))


def check_config(config: Config, *, now: datetime) -> list[Problem]:
    """Problems of a loaded configuration that the loader cannot see."""
    problems = list(_check_files(config))
    problems += _check_ssh_keys(config)
    problems += _check_shared_signing_keys(config)
    home = config.gateway.gnupg_home
    if not home.is_dir():
        problems.append(
            _error("gateway.gnupg_home", f"{home} does not exist (see keys init)")
        )
        return problems
    with OpenPgp(home) as pgp:
        problems += _check_keys(config, pgp, now)
    return problems


def _from_loader(problem: str) -> Problem:
    place, _, message = problem.partition(": ")
    return _error(place, message)


def _error(place: str, message: str) -> Problem:
    return Problem(Severity.ERROR, place, message)


def _warning(place: str, message: str) -> Problem:
    return Problem(Severity.WARNING, place, message)


def _check_files(config: Config) -> Iterator[Problem]:
    key_file = config.audit.pseudonym_key
    if not key_file.exists():
        yield _error(
            "audit.pseudonym_key", f"{key_file} does not exist (see keys init)"
        )
        return
    try:
        Pseudonymiser.load(key_file)
    except ConfigError:
        yield _error("audit.pseudonym_key", f"{key_file} is not a pseudonym key file")


def _check_ssh_keys(config: Config) -> Iterator[Problem]:
    base = config.path.parent
    partners: list[tuple[str, Intermediary | Municipality]] = [
        *_places("intermediary", config.intermediaries.values()),
        *_places("municipality", config.municipalities.values()),
    ]
    for place, partner in partners:
        if not partner.ssh_keys and config.sftp.enabled:
            yield _warning(
                f"{place}.ssh_keys", "no SSH key: this partner cannot log in"
            )
        for n, entry in enumerate(partner.ssh_keys, start=1):
            try:
                authorised_keys((entry,), base)
            except ConfigError:
                yield _error(
                    f"{place}.ssh_keys[{n}]",
                    "not an OpenSSH public key, nor a readable file of them",
                )


def _places(kind: str, partners: Iterable[_P]) -> list[tuple[str, _P]]:
    """Each partner with its place in the file (the loader keeps file order)."""
    return [(f"{kind}[{n}]", p) for n, p in enumerate(partners, start=1)]


def _check_shared_signing_keys(config: Config) -> Iterator[Problem]:
    """A signing key pinned for two intermediaries lets one pose as the other."""
    first: dict[str, str] = {}
    for place, intermediary in _places("intermediary", config.intermediaries.values()):
        for n, key in enumerate(intermediary.signing_keys, start=1):
            where = f"{place}.signing_keys[{n}]"
            if key in first and not first[key].startswith(f"{place}."):
                yield _error(where, f"key {key} is also pinned at {first[key]}")
            first.setdefault(key, where)


def _check_keys(config: Config, pgp: OpenPgp, now: datetime) -> Iterator[Problem]:
    fingerprint = config.gateway.key_fingerprint
    if not fingerprint:
        yield _error("gateway.key_fingerprint", "is not set (see keys init)")
    else:
        yield from _check_key(
            pgp,
            fingerprint,
            "gateway.key_fingerprint",
            _Need(sign=True, encrypt=True, secret=True),
            now,
        )
    for place, intermediary in _places("intermediary", config.intermediaries.values()):
        for n, key in enumerate(intermediary.signing_keys, start=1):
            where = f"{place}.signing_keys[{n}]"
            yield from _check_key(pgp, key, where, _Need(sign=True), now)
    for place, municipality in _places("municipality", config.municipalities.values()):
        where = f"{place}.encryption_key"
        key = municipality.encryption_key
        yield from _check_key(pgp, key, where, _Need(encrypt=True), now)


def _check_key(
    pgp: OpenPgp, fingerprint: str, place: str, need: _Need, now: datetime
) -> Iterator[Problem]:
    """Problems of one key named in the configuration."""
    info = pgp.key_info(fingerprint)
    if info is None:
        yield _error(place, f"key {fingerprint} is not in the gateway's key ring")
        return
    if info.fingerprint != fingerprint:
        yield _error(place, f"names a subkey; use the primary key {info.fingerprint}")
    if info.revoked:
        yield _error(place, f"key {fingerprint} is revoked")
        return
    if info.expired:
        yield _error(place, f"key {fingerprint} has expired")
        return
    if need.secret and not info.has_secret:
        yield _error(place, f"the secret key of {fingerprint} is not in gnupg_home")
    if need.sign and not info.can_sign:
        yield _error(place, f"key {fingerprint} has no usable signing key")
    if need.encrypt and not info.can_encrypt:
        yield _error(place, f"key {fingerprint} has no usable encryption key")
    if info.expires is not None and info.expires - now < EXPIRY_WARNING:
        days = max((info.expires - now).days, 0)
        yield _warning(
            place,
            f"key {fingerprint} expires on {info.expires:%Y-%m-%d} (in {days} days)",
        )
