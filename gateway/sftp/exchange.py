"""The partner's side of an exchange: send a report, wait for its receipt, fetch.

What ``loonbrug send`` and ``loonbrug fetch`` (and the demo) do over a pinned
SFTP connection, with OpenPGP in the partner's own GnuPG home:

- send: sign with the partner's key and encrypt to the gateway, upload under a
  ``.filepart`` name and rename it (so the gateway never sees a partial
  upload), then poll ``/receipts`` until the receipt arrives, verify that the
  gateway signed it, and remove it from the server;
- fetch: download each outbox file, decrypt it, verify that the gateway signed
  it, write it into the target folder with fsync, and only then remove it from
  the outbox. A file that fails stays in the outbox.
"""

from __future__ import annotations

import os
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import paramiko
from lxml import etree

from gateway.errors import CryptoError, SftpError
from gateway.pgp import OpenPgp
from gateway.sftp.client import connect, load_private_key
from gateway.sftp.partner import PartnerConfig
from gateway.spool import fsync_dir, is_temporary_name

RECEIPT_NS = "urn:loonbrug:receipt:v1"
MAX_FETCH_BYTES = 1024 * 1024 * 1024
_POLL_SECONDS = 0.5
_SAFE_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
)


@dataclass(frozen=True)
class ReceiptFinding:
    """One finding as the receipt states it."""

    code: str
    severity: str
    message: str
    line: str = ""
    record_id: str = ""


@dataclass(frozen=True)
class Receipt:
    """A verified receipt."""

    outcome: str
    accepted: dict[str, int] = field(default_factory=dict)
    findings: tuple[ReceiptFinding, ...] = ()

    @property
    def is_accepted(self) -> bool:
        """True if the gateway accepted the upload."""
        return self.outcome == "accepted"


@dataclass(frozen=True)
class Sent:
    """One report sent, and its receipt if it was awaited."""

    source: Path
    upload_name: str
    receipt: Receipt | None = None


@dataclass(frozen=True)
class Fetched:
    """One outbox file: written to *target*, or left on the server with *problem*."""

    name: str
    target: Path | None
    size: int
    problem: str = ""


@contextmanager
def session(partner: PartnerConfig) -> Iterator[paramiko.SFTPClient]:
    """An SFTP session as the partner, with the gateway's host key pinned."""
    key = load_private_key(partner.ssh_key)
    with connect(
        partner.host, partner.port, partner.account, key, partner.host_key
    ) as sftp:
        yield sftp


def upload_name(source: Path, now: datetime | None = None) -> str:
    """A name for the upload that no earlier send of the same file used."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{stamp}-{source.name}.gpg"


def send_reports(
    partner: PartnerConfig, sources: list[Path], *, wait: bool, timeout: float
) -> list[Sent]:
    """Send every report in *sources*; with *wait*, collect each receipt."""
    with OpenPgp(partner.gnupg_home) as pgp, session(partner) as sftp:
        names = [(s, _upload(sftp, pgp, partner, s)) for s in sources]
        if not wait:
            return [Sent(source, name) for source, name in names]
        deadline = time.monotonic() + timeout
        return [
            Sent(source, name, await_receipt(sftp, pgp, partner, name, deadline))
            for source, name in names
        ]


def _upload(
    sftp: paramiko.SFTPClient, pgp: OpenPgp, partner: PartnerConfig, source: Path
) -> str:
    name = upload_name(source)
    with tempfile.TemporaryDirectory(prefix="loonbrug-send-") as work:
        encrypted = Path(work) / "message.gpg"
        pgp.sign_encrypt(
            source,
            encrypted,
            recipient=partner.gateway_fingerprint,
            signer=partner.fingerprint,
        )
        partial = f"/inbox/{name}.filepart"
        # confirm=False: the inbox is write-only, a stat afterwards finds nothing.
        sftp.put(str(encrypted), partial, confirm=False)
        sftp.posix_rename(partial, f"/inbox/{name}")
    return name


def await_receipt(
    sftp: paramiko.SFTPClient,
    pgp: OpenPgp,
    partner: PartnerConfig,
    name: str,
    deadline: float,
) -> Receipt:
    """Poll for the receipt of upload *name*, verify it and remove it."""
    path = f"/receipts/{name}.receipt.asc"
    while True:
        try:
            sftp.stat(path)
            break
        except FileNotFoundError:
            if time.monotonic() > deadline:
                raise SftpError(f"no receipt for {name} before the deadline") from None
            time.sleep(_POLL_SECONDS)
    with sftp.open(path, "rb") as handle:
        signed = handle.read()
    receipt = read_receipt(pgp, partner, signed)
    sftp.remove(path)
    return receipt


def read_receipt(pgp: OpenPgp, partner: PartnerConfig, signed: bytes) -> Receipt:
    """The receipt in *signed*, after checking the gateway signed it."""
    content, signer = pgp.verify(signed)
    if signer != partner.gateway_fingerprint:
        raise CryptoError(f"the receipt is signed by {signer}, not by the gateway")
    root = etree.fromstring(content, _SAFE_PARSER)
    accepted = {
        str(m.get("code")): int(m.get("records", "0"))
        for m in root.iter(f"{{{RECEIPT_NS}}}Municipality")
    }
    findings = tuple(
        ReceiptFinding(
            code=str(f.get("code", "")),
            severity=str(f.get("severity", "")),
            message=(f.text or "").strip(),
            line=str(f.get("line", "")),
            record_id=str(f.get("recordId", "")),
        )
        for f in root.iter(f"{{{RECEIPT_NS}}}Finding")
    )
    outcome = root.findtext(f"{{{RECEIPT_NS}}}Outcome") or "unknown"
    return Receipt(outcome.strip(), accepted, findings)


def fetch_deliveries(partner: PartnerConfig, folder: Path) -> list[Fetched]:
    """Fetch every outbox file into *folder*; remove each only once it is safe."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    fetched = []
    with OpenPgp(partner.gnupg_home) as pgp, session(partner) as sftp:
        for entry in sftp.listdir_attr("/outbox"):
            name = entry.filename
            if is_temporary_name(name) or not stat.S_ISREG(entry.st_mode or 0):
                continue
            fetched.append(_fetch_one(sftp, pgp, partner, name, folder))
    return fetched


def _fetch_one(
    sftp: paramiko.SFTPClient,
    pgp: OpenPgp,
    partner: PartnerConfig,
    name: str,
    folder: Path,
) -> Fetched:
    plain_name = name.removesuffix(".gpg")
    download = folder / f".{name}.download"
    partial = folder / f".{plain_name}.part"
    try:
        sftp.get(f"/outbox/{name}", str(download))
        verified = pgp.decrypt_verify(download, partial, max_output=MAX_FETCH_BYTES)
        if verified.signer_fingerprint != partner.gateway_fingerprint:
            partial.unlink(missing_ok=True)
            return Fetched(name, None, 0, "not signed by the gateway")
        _make_durable(partial, folder / plain_name)
    except CryptoError as exc:
        return Fetched(name, None, 0, f"{getattr(exc, 'code', '')} {exc}".strip())
    finally:
        download.unlink(missing_ok=True)
    sftp.remove(f"/outbox/{name}")
    return Fetched(name, folder / plain_name, verified.plaintext_size)


def _make_durable(partial: Path, target: Path) -> None:
    fd = os.open(partial, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    partial.replace(target)
    fsync_dir(target.parent)
