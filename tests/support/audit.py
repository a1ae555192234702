"""Test helpers for the audit trail: keys, a configuration, documented events.

The gateway key and a stranger's key are made once per session with the real
gpg binary. Events are emitted exactly as the daemon and the SFTP service
document them, so the auditor tools can be tested without running either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import tomli_w

from gateway import config as config_module
from gateway.audit import AuditLog
from gateway.config import Config
from gateway.pgp import OpenPgp, stop_agent
from gateway.pseudonym import Pseudonymiser, add_key

# BSNs of the RvIG's fictitious-person block (999 99x xxx) that pass the
# eleven-test; never issued to anyone.
BSN_A = "999990019"
BSN_B = "999990020"
BSN_C = "999990032"
UNUSED_FINGERPRINT = "A" * 40


@dataclass(frozen=True)
class Keys:
    """A GnuPG home with the gateway key and a stranger's key."""

    home: Path
    gateway: str
    stranger: str


@pytest.fixture(scope="session")
def audit_keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keys]:
    """Gateway and stranger signing keys in one session-wide GnuPG home."""
    home = tmp_path_factory.mktemp("audit-gnupg")
    with OpenPgp(home) as pgp:
        gateway = pgp.generate_key("Loonbrug test gateway <gateway@example.test>")
        stranger = pgp.generate_key("Stranger <stranger@example.test>")
    yield Keys(home, gateway, stranger)
    stop_agent(home)


@pytest.fixture
def pgp(audit_keys: Keys) -> Iterator[OpenPgp]:
    """The OpenPGP adapter on the session's key home."""
    with OpenPgp(audit_keys.home) as adapter:
        yield adapter


def write_config(folder: Path, keys: Keys, *, copy_dir: bool = True) -> Config:
    """A complete configuration for a gateway in *folder*, with a pseudonym key."""
    data = {
        "gateway": {
            "spool": "spool",
            "gnupg_home": str(keys.home),
            "key_fingerprint": keys.gateway,
            "state_dir": "state",
        },
        "audit": {
            "dir": "audit",
            "pseudonym_key": "keys/pseudonym.key",
            "checkpoint_interval_seconds": 0,
            **({"checkpoint_copy_dir": "offsite"} if copy_dir else {}),
        },
        "intermediary": [
            _intermediary("uitzender-noord", ["GM0599", "GM0344", "GM0014"]),
            _intermediary("flexwerk-zuid", ["GM0599"]),
        ],
        "municipality": [
            _municipality("rotterdam", "GM0599"),
            _municipality("utrecht", "GM0344"),
            _municipality("groningen", "GM0014"),
        ],
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "loonbrug.toml"
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    add_key(folder / "keys" / "pseudonym.key")
    return config_module.load(path)


def _intermediary(account: str, codes: list[str]) -> dict[str, object]:
    return {
        "id": account,
        "name": account.replace("-", " ").title(),
        "kvk": "12345678",
        "loonheffingennummer": "123456782L01",
        "signing_keys": [UNUSED_FINGERPRINT],
        "municipalities": codes,
    }


def _municipality(account: str, code: str) -> dict[str, object]:
    return {
        "id": account,
        "code": code,
        "name": account.title(),
        "encryption_key": UNUSED_FINGERPRINT,
    }


class Clock:
    """A settable clock for the trail: each reading advances it a little."""

    def __init__(self, start: datetime, step: timedelta = timedelta(seconds=1)):
        self.now = start
        self.step = step

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now


START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def open_log(config: Config, pgp: OpenPgp, clock: Callable[[], datetime]) -> AuditLog:
    """The configured trail with checkpoints, on a test clock."""
    return AuditLog(
        config.audit.dir,
        signer=pgp,
        key_fingerprint=config.gateway.key_fingerprint,
        checkpoint_copy_dir=config.audit.checkpoint_copy_dir,
        clock=clock,
    )


@dataclass(frozen=True)
class Sent:
    """What :func:`emit_exchange` emitted, for assertions."""

    upload_id: str
    message_id: str
    outbox_files: dict[str, str]


def emit_exchange(
    log: AuditLog,
    config: Config,
    *,
    upload_id: str,
    intermediary: str,
    routed: dict[str, list[str]],
    downloaded: tuple[str, ...] = (),
) -> Sent:
    """Emit the events of one accepted upload, as the daemon documents them.

    *routed* maps a municipality account to the BSNs of its records; the BSNs
    are pseudonymised here, as the daemon does, before they reach the trail.
    """
    keys = Pseudonymiser.load(config.audit.pseudonym_key)
    message_id = f"00000000-0000-4000-8000-{upload_id[-12:].rjust(12, '0')}"
    file = f"{upload_id}.xml.gpg"
    log.emit(
        "upload.completed", connection_id="c1", account=intermediary, file=file, size=10
    )
    log.emit(
        "upload.claimed",
        upload_id=upload_id,
        account=intermediary,
        file=file,
        size=10,
        sha256="ab" * 32,
    )
    log.emit(
        "message.decrypted",
        upload_id=upload_id,
        account=intermediary,
        signer_fingerprint=UNUSED_FINGERPRINT,
        plaintext_size=99,
    )
    count = sum(len(b) for b in routed.values())
    log.emit(
        "message.validated",
        upload_id=upload_id,
        message_id=message_id,
        account=intermediary,
        record_count=count,
        outcome="accepted",
        finding_codes=[],
    )
    outbox: dict[str, str] = {}
    for account, bsns in routed.items():
        code = config.municipalities[account].code
        subjects = [keys.pseudonym(b) for b in bsns]
        log.emit(
            "records.routed",
            upload_id=upload_id,
            message_id=message_id,
            account=intermediary,
            municipality=code,
            subjects=subjects,
        )
        name = f"{message_id}.{code}.xml.gpg"
        outbox[account] = name
        log.emit(
            "delivery.written",
            upload_id=upload_id,
            message_id=message_id,
            account=intermediary,
            municipality=account,
            file=name,
            size=100,
            sha256="cd" * 32,
            record_count=len(bsns),
        )
    log.emit(
        "receipt.written",
        upload_id=upload_id,
        account=intermediary,
        outcome="accepted",
        file=f"{file}.receipt.asc",
    )
    log.emit("message.archived", upload_id=upload_id, account=intermediary, file=file)
    for account in downloaded:
        log.emit(
            "delivery.downloaded",
            connection_id="c2",
            account=account,
            file=outbox[account],
            size=100,
        )
    return Sent(upload_id, message_id, outbox)


def emit_rejection(
    log: AuditLog, *, upload_id: str, intermediary: str, codes: list[str]
) -> None:
    """Emit the events of one rejected upload."""
    file = f"{upload_id}.xml.gpg"
    log.emit(
        "upload.claimed",
        upload_id=upload_id,
        account=intermediary,
        file=file,
        size=10,
        sha256="ef" * 32,
    )
    log.emit(
        "message.rejected",
        upload_id=upload_id,
        account=intermediary,
        message_id="",
        finding_codes=codes,
    )
    log.emit(
        "receipt.written",
        upload_id=upload_id,
        account=intermediary,
        outcome="rejected",
        file=f"{file}.receipt.asc",
    )
