"""The gateway's configuration: one TOML file.

The file names the spool, the gateway's own OpenPGP key, and every partner:
intermediaries (who upload) and municipalities (who download). Onboarding a
partner is a new table in this file plus its keys; no code changes.

Relative paths are resolved against the folder that holds the configuration file,
so a sandbox can be moved as a whole. :func:`load` checks the shape of the file
and collects every problem with its place (``intermediary[2].kvk``) before it
raises; checks that need the key ring live in :mod:`gateway.checkconfig`.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from gateway.errors import ConfigError

ACCOUNT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
MUNICIPALITY_CODE = re.compile(r"^GM[0-9]{4}$")
KVK_NUMBER = re.compile(r"^[0-9]{8}$")
PAYROLL_TAX_NUMBER = re.compile(r"^[0-9]{9}L[0-9]{2}$")
FINGERPRINT = re.compile(r"^[0-9A-F]{40}$")


class PartnerKind(StrEnum):
    """The two kinds of partner account."""

    INTERMEDIARY = "intermediary"
    MUNICIPALITY = "municipality"


@dataclass(frozen=True)
class Intermediary:
    """A staffing agency that uploads wage reports."""

    id: str
    name: str
    kvk: str
    payroll_tax_number: str
    signing_keys: tuple[str, ...]
    municipalities: frozenset[str]
    ssh_keys: tuple[str, ...] = ()

    kind = PartnerKind.INTERMEDIARY


@dataclass(frozen=True)
class Municipality:
    """A municipality that receives its residents' records."""

    id: str
    code: str
    name: str
    encryption_key: str
    ssh_keys: tuple[str, ...] = ()

    kind = PartnerKind.MUNICIPALITY


@dataclass(frozen=True)
class Retention:
    """How long each kind of spool file is kept, in days (0 keeps forever)."""

    archive_days: int = 90
    rejected_days: int = 30
    receipts_days: int = 30
    delivered_days: int = 7
    pickup_warning_hours: int = 24
    abandoned_upload_days: int = 7


# Below this, key exchanges would crowd out the transfers they protect.
MIN_REKEY_LIMIT = 64 * 1024


@dataclass(frozen=True)
class SftpSettings:
    """The embedded SFTP service."""

    enabled: bool = True
    listen: str = "127.0.0.1"
    port: int = 2222
    host_key: Path = Path("state/ssh_host_ed25519_key")
    max_auth_failures: int = 5
    ban_seconds: int = 600
    max_sessions_per_account: int = 8
    handshake_timeout_seconds: int = 30
    idle_timeout_seconds: int = 900
    rekey_limit_bytes: int = 1024 * 1024 * 1024


@dataclass(frozen=True)
class AuditSettings:
    """Where the audit trail lives and how it is sealed."""

    dir: Path = Path("audit")
    pseudonym_key: Path = Path("keys/pseudonym.key")
    checkpoint_interval_seconds: int = 300
    checkpoint_copy_dir: Path | None = None


@dataclass(frozen=True)
class GatewaySettings:
    """Settings of the gateway itself."""

    spool: Path
    gnupg_home: Path
    key_fingerprint: str
    state_dir: Path
    workers: int = 4
    max_upload_bytes: int = 200 * 1024 * 1024
    max_plaintext_bytes: int = 1024 * 1024 * 1024
    gpg_timeout_seconds: int = 600
    rescan_seconds: int = 30


@dataclass(frozen=True)
class Config:
    """The whole configuration, with every path made absolute."""

    path: Path
    gateway: GatewaySettings
    retention: Retention
    sftp: SftpSettings
    audit: AuditSettings
    intermediaries: Mapping[str, Intermediary] = field(default_factory=dict)
    municipalities: Mapping[str, Municipality] = field(default_factory=dict)

    @property
    def ledger_path(self) -> Path:
        """The SQLite ledger file."""
        return self.gateway.state_dir / "ledger.sqlite3"

    @property
    def municipality_codes(self) -> frozenset[str]:
        """Every municipality code the gateway knows."""
        return frozenset(m.code for m in self.municipalities.values())

    def municipality_by_code(self, code: str) -> Municipality | None:
        """The municipality with this code, if the gateway knows it."""
        for municipality in self.municipalities.values():
            if municipality.code == code:
                return municipality
        return None

    def account(self, account_id: str) -> Intermediary | Municipality | None:
        """The partner with this account id, of either kind."""
        return self.intermediaries.get(account_id) or self.municipalities.get(
            account_id
        )


class _Reader:
    """Reads typed values out of TOML tables and collects what is wrong."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.problems: list[str] = []

    def problem(self, place: str, message: str) -> None:
        self.problems.append(f"{place}: {message}")

    def table(self, data: Mapping[str, Any], key: str, place: str) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            self.problem(place, "must be a table")
            return {}
        return value

    def unknown_keys(
        self, data: Mapping[str, Any], allowed: set[str], place: str
    ) -> None:
        for key in sorted(set(data) - allowed):
            self.problem(f"{place}.{key}" if place else key, "unknown key")

    def text(
        self, data: Mapping[str, Any], key: str, place: str, default: str | None = None
    ) -> str:
        value = data.get(key, default)
        if value is None:
            self.problem(f"{place}.{key}", "is required")
            return ""
        if not isinstance(value, str):
            self.problem(f"{place}.{key}", "must be a string")
            return ""
        return value

    def number(
        self, data: Mapping[str, Any], key: str, place: str, default: int
    ) -> int:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.problem(f"{place}.{key}", "must be a whole number, 0 or more")
            return default
        return value

    def flag(
        self, data: Mapping[str, Any], key: str, place: str, default: bool
    ) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            self.problem(f"{place}.{key}", "must be true or false")
            return default
        return value

    def texts(self, data: Mapping[str, Any], key: str, place: str) -> tuple[str, ...]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem(f"{place}.{key}", "must be a list of strings")
            return ()
        return tuple(value)

    def path(
        self, data: Mapping[str, Any], key: str, place: str, default: str | None = None
    ) -> Path:
        raw = self.text(data, key, place, default)
        return (self.base / raw).resolve() if raw else self.base

    def matching(
        self, value: str, pattern: re.Pattern[str], place: str, what: str
    ) -> str:
        if value and not pattern.match(value):
            self.problem(place, f"is not {what}")
        return value


_GATEWAY_KEYS = {
    "spool",
    "gnupg_home",
    "key_fingerprint",
    "state_dir",
    "workers",
    "max_upload_bytes",
    "max_plaintext_bytes",
    "gpg_timeout_seconds",
    "rescan_seconds",
}
_INTERMEDIARY_KEYS = {
    "id",
    "name",
    "kvk",
    "loonheffingennummer",
    "signing_keys",
    "municipalities",
    "ssh_keys",
}
_MUNICIPALITY_KEYS = {"id", "code", "name", "encryption_key", "ssh_keys"}
_TOP_KEYS = {"gateway", "retention", "sftp", "audit", "intermediary", "municipality"}


def _gateway(reader: _Reader, data: Mapping[str, Any]) -> GatewaySettings:
    table = reader.table(data, "gateway", "gateway")
    reader.unknown_keys(table, _GATEWAY_KEYS, "gateway")
    fingerprint = reader.text(table, "key_fingerprint", "gateway", "").upper()
    reader.matching(
        fingerprint, FINGERPRINT, "gateway.key_fingerprint", "a full fingerprint"
    )
    workers = reader.number(table, "workers", "gateway", 4)
    if workers < 1:
        reader.problem("gateway.workers", "must be at least 1")
    return GatewaySettings(
        spool=reader.path(table, "spool", "gateway", "spool"),
        gnupg_home=reader.path(table, "gnupg_home", "gateway", "gnupg"),
        key_fingerprint=fingerprint,
        state_dir=reader.path(table, "state_dir", "gateway", "state"),
        workers=max(workers, 1),
        max_upload_bytes=reader.number(
            table, "max_upload_bytes", "gateway", GatewaySettings.max_upload_bytes
        ),
        max_plaintext_bytes=reader.number(
            table,
            "max_plaintext_bytes",
            "gateway",
            GatewaySettings.max_plaintext_bytes,
        ),
        gpg_timeout_seconds=reader.number(
            table, "gpg_timeout_seconds", "gateway", GatewaySettings.gpg_timeout_seconds
        ),
        rescan_seconds=reader.number(
            table, "rescan_seconds", "gateway", GatewaySettings.rescan_seconds
        ),
    )


def _numbers(
    reader: _Reader, table: Mapping[str, Any], place: str, defaults: object
) -> dict[str, int]:
    names = [
        n
        for n, v in vars(type(defaults)).items()
        if isinstance(v, int) and not isinstance(v, bool)
    ]
    return {n: reader.number(table, n, place, getattr(defaults, n)) for n in names}


def _retention(reader: _Reader, data: Mapping[str, Any]) -> Retention:
    table = reader.table(data, "retention", "retention")
    reader.unknown_keys(
        table, set(vars(Retention)["__dataclass_fields__"]), "retention"
    )
    return Retention(**_numbers(reader, table, "retention", Retention()))


def _sftp(reader: _Reader, data: Mapping[str, Any]) -> SftpSettings:
    table = reader.table(data, "sftp", "sftp")
    reader.unknown_keys(table, set(vars(SftpSettings)["__dataclass_fields__"]), "sftp")
    numbers = _numbers(reader, table, "sftp", SftpSettings())
    port = numbers["port"]
    if not 0 < port < 65536:
        reader.problem("sftp.port", "must be between 1 and 65535")
    if numbers["rekey_limit_bytes"] < MIN_REKEY_LIMIT:
        reader.problem("sftp.rekey_limit_bytes", f"must be {MIN_REKEY_LIMIT} or more")
    return SftpSettings(
        enabled=reader.flag(table, "enabled", "sftp", True),
        listen=reader.text(table, "listen", "sftp", SftpSettings.listen),
        host_key=reader.path(table, "host_key", "sftp", str(SftpSettings.host_key)),
        **numbers,
    )


def _audit(reader: _Reader, data: Mapping[str, Any]) -> AuditSettings:
    table = reader.table(data, "audit", "audit")
    reader.unknown_keys(
        table, set(vars(AuditSettings)["__dataclass_fields__"]), "audit"
    )
    copy_dir = reader.text(table, "checkpoint_copy_dir", "audit", "")
    return AuditSettings(
        dir=reader.path(table, "dir", "audit", "audit"),
        pseudonym_key=reader.path(
            table, "pseudonym_key", "audit", str(AuditSettings.pseudonym_key)
        ),
        checkpoint_interval_seconds=reader.number(
            table, "checkpoint_interval_seconds", "audit", 300
        ),
        checkpoint_copy_dir=(reader.base / copy_dir).resolve() if copy_dir else None,
    )


def _partner_tables(
    reader: _Reader, data: Mapping[str, Any], key: str
) -> list[tuple[str, dict[str, Any]]]:
    tables = data.get(key, [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        reader.problem(key, f"must be written as [[{key}]] tables")
        return []
    return [(f"{key}[{n}]", t) for n, t in enumerate(tables, start=1)]


def _account_id(reader: _Reader, table: Mapping[str, Any], place: str) -> str:
    account = reader.text(table, "id", place)
    return reader.matching(
        account,
        ACCOUNT_ID,
        f"{place}.id",
        "an account id (lower-case letters, digits and '-', 2 to 63 long)",
    )


def _fingerprints(
    reader: _Reader, table: Mapping[str, Any], key: str, place: str
) -> tuple[str, ...]:
    values = tuple(v.replace(" ", "").upper() for v in reader.texts(table, key, place))
    for n, value in enumerate(values, start=1):
        reader.matching(
            value, FINGERPRINT, f"{place}.{key}[{n}]", "a full 40-digit fingerprint"
        )
    return values


def _intermediary(
    reader: _Reader, table: Mapping[str, Any], place: str
) -> Intermediary:
    reader.unknown_keys(table, _INTERMEDIARY_KEYS, place)
    kvk = reader.text(table, "kvk", place)
    tax_number = reader.text(table, "loonheffingennummer", place)
    signing_keys = _fingerprints(reader, table, "signing_keys", place)
    if not signing_keys:
        reader.problem(f"{place}.signing_keys", "needs at least one fingerprint")
    municipalities = reader.texts(table, "municipalities", place)
    for n, code in enumerate(municipalities, start=1):
        reader.matching(
            code,
            MUNICIPALITY_CODE,
            f"{place}.municipalities[{n}]",
            "a municipality code (GM and 4 digits)",
        )
    return Intermediary(
        id=_account_id(reader, table, place),
        name=reader.text(table, "name", place),
        kvk=reader.matching(
            kvk, KVK_NUMBER, f"{place}.kvk", "a KvK number of 8 digits"
        ),
        payroll_tax_number=reader.matching(
            tax_number,
            PAYROLL_TAX_NUMBER,
            f"{place}.loonheffingennummer",
            "a loonheffingennummer (9 digits, L, 2 digits)",
        ),
        signing_keys=signing_keys,
        municipalities=frozenset(municipalities),
        ssh_keys=reader.texts(table, "ssh_keys", place),
    )


def _municipality(
    reader: _Reader, table: Mapping[str, Any], place: str
) -> Municipality:
    reader.unknown_keys(table, _MUNICIPALITY_KEYS, place)
    code = reader.text(table, "code", place)
    fingerprint = reader.text(table, "encryption_key", place).replace(" ", "").upper()
    return Municipality(
        id=_account_id(reader, table, place),
        code=reader.matching(
            code,
            MUNICIPALITY_CODE,
            f"{place}.code",
            "a municipality code (GM and 4 digits)",
        ),
        name=reader.text(table, "name", place),
        encryption_key=reader.matching(
            fingerprint,
            FINGERPRINT,
            f"{place}.encryption_key",
            "a full 40-digit fingerprint",
        ),
        ssh_keys=reader.texts(table, "ssh_keys", place),
    )


def _check_references(
    reader: _Reader,
    intermediaries: list[tuple[str, Intermediary]],
    municipalities: list[tuple[str, Municipality]],
) -> None:
    seen: dict[str, str] = {}
    partners: list[tuple[str, Intermediary | Municipality]] = [
        *intermediaries,
        *municipalities,
    ]
    for place, partner in partners:
        if partner.id in seen:
            reader.problem(
                f"{place}.id", f"duplicate account id, also used at {seen[partner.id]}"
            )
        seen.setdefault(partner.id, place)
    codes: dict[str, str] = {}
    for place, municipality in municipalities:
        if municipality.code in codes:
            reader.problem(
                f"{place}.code",
                f"duplicate municipality code, also used at {codes[municipality.code]}",
            )
        codes.setdefault(municipality.code, place)
    for place, intermediary in intermediaries:
        for code in sorted(intermediary.municipalities - set(codes)):
            reader.problem(
                f"{place}.municipalities", f"unknown municipality code {code}"
            )


def parse(data: Mapping[str, Any], path: Path) -> Config:
    """Build a :class:`Config` from parsed TOML, raising on any problem."""
    reader = _Reader(path.parent.resolve())
    reader.unknown_keys(data, _TOP_KEYS, "")
    gateway = _gateway(reader, data)
    intermediaries = [
        (place, _intermediary(reader, table, place))
        for place, table in _partner_tables(reader, data, "intermediary")
    ]
    municipalities = [
        (place, _municipality(reader, table, place))
        for place, table in _partner_tables(reader, data, "municipality")
    ]
    _check_references(reader, intermediaries, municipalities)
    config = Config(
        path=path.resolve(),
        gateway=gateway,
        retention=_retention(reader, data),
        sftp=_sftp(reader, data),
        audit=_audit(reader, data),
        intermediaries={p.id: p for _, p in intermediaries},
        municipalities={p.id: p for _, p in municipalities},
    )
    if reader.problems:
        raise ConfigError(
            f"{path}: {len(reader.problems)} problem(s)\n  "
            + "\n  ".join(reader.problems),
            tuple(reader.problems),
        )
    return config


def load(path: Path) -> Config:
    """Read and check the configuration file at *path*."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such configuration file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.__class__.__name__})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return parse(data, path)
