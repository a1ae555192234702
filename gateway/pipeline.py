"""The pipeline: one upload from the inbox to the outboxes and a receipt.

Steps, each recorded in the ledger before the next begins (decrypt is stamped
together with validate: a redo starts from the claim either way)::

    claim      ledger row, then atomic rename inbox/<account>/<name> ->
               work/<upload-id>/upload; hash; duplicate file check; size cap
    decrypt    gpg decrypt+verify into work/, plaintext capped; the signer's
               primary key must be pinned for the uploading intermediary
    validate   the validator, with the sender and its authorisations known
    reserve    the message id; the same id twice is a duplicate
    route      one document per municipality, encrypted to it and signed by
               the gateway into work/ (each flushed to disk and hashed in its
               own thread), then renamed into its outbox
    receipt    signed by the gateway into receipts/<account>/
    archive    the upload as received into archive/ (or rejected/); work/
               folder removed

Any finding of severity error, or any OpenPGP problem, rejects the upload
whole: nothing is routed and the receipt lists why. Every step can be redone
after a crash (:meth:`Pipeline.resume`): names are deterministic and files are
replaced by rename, and an outbox file already recorded in the ledger is never
written again, so a municipality that fetched it does not get it twice.

For tests only, the environment variable ``LOONBRUG_CRASH_AT`` names a point in
:data:`CRASH_POINTS` where the process dies at once with status 70.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gateway import logs
from gateway.audit import AuditSink
from gateway.config import Config, Intermediary
from gateway.errors import CryptoError
from gateway.ledger import Ledger, Outcome, State, Upload, Written, new_upload_id
from gateway.pgp import OpenPgp, Verified
from gateway.pseudonym import Pseudonymiser
from gateway.route import outbox_name, receipt_name
from gateway.route.receipt import ReceiptFacts, receipt_xml
from gateway.route.split import Provenance, split_report
from gateway.spool import (
    FILE_MODE,
    NO_ATTRIBUTES,
    Spool,
    fsync_dir,
    make_private_dir,
)
from gateway.validate import (
    SenderContext,
    ValidationContext,
    ValidationResult,
    validate_file,
)
from gateway.validate.findings import Finding, Severity
from gateway.validate.subjects import record_bsns

CRASH_ENV = "LOONBRUG_CRASH_AT"
CRASH_STATUS = 70
CRASH_POINTS = (
    "before-claim-rename",
    "after-claim",
    "after-decrypt",
    "after-validate",
    "after-encrypt",
    "after-outbox-write",
    "after-route",
    "after-receipt",
    "before-archive",
    "after-archive",
)

PSEUDONYMS_PER_EVENT = 1000
UPLOAD_FILE = "upload"
RECEIPT_FILE = "receipt.asc"
_CHUNK = 1024 * 1024

_log = logs.get("pipeline")
# The upload a receipt answers, kept on the receipt file itself (an extended
# attribute, which a hard link shares and SFTP never shows).
RECEIPT_OWNER = "user.loonbrug.upload-id"


def crash_point(name: str) -> None:
    """Die here, at once, when the test-only crash switch names this point."""
    if os.environ.get(CRASH_ENV) == name:
        os._exit(CRASH_STATUS)


class RejectionError(Exception):
    """Ends an upload's processing with a rejection receipt."""

    def __init__(
        self,
        findings: Sequence[Finding],
        *,
        message_id: str | None = None,
        truncated: bool = False,
    ) -> None:
        super().__init__(", ".join(f.code for f in findings))
        self.findings = list(findings)
        self.message_id = message_id
        self.truncated = truncated


def rejection(code: str, message: str) -> RejectionError:
    """A rejection with one error finding."""
    return RejectionError(
        [Finding(code=code, severity=Severity.ERROR, message=message)]
    )


@dataclass
class Job:
    """One claimed upload while it moves through the pipeline."""

    upload_id: str
    account: str
    file_name: str
    folder: Path
    received_at: datetime
    size: int = 0
    sha256: str = ""
    decrypted_at: datetime | None = None

    @property
    def upload(self) -> Path:
        """The upload as received, inside the work folder."""
        return self.folder / UPLOAD_FILE

    @property
    def report(self) -> Path:
        """The decrypted report, inside the work folder."""
        return self.folder / "report.xml"

    @property
    def stored_name(self) -> str:
        """The name under which the upload is archived or kept as rejected."""
        return f"{self.upload_id}.{self.file_name}"

    @property
    def received(self) -> str:
        """The time of the claim as an ISO 8601 timestamp."""
        return self.received_at.isoformat(timespec="seconds")


@dataclass(frozen=True)
class _Sealed:
    """One municipality's document, encrypted, signed and on disk in work/."""

    path: Path
    size: int
    sha256: str


@dataclass(frozen=True)
class Accepted:
    """What an accepted upload delivered, and its signed receipt in work/."""

    facts: ReceiptFacts
    receipt: Path


def sha256_of(path: Path) -> tuple[int, str]:
    """Size and SHA-256 of a regular file, never following a link."""
    digest = hashlib.sha256()
    size = 0
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def write_durably(path: Path, data: bytes) -> None:
    """Write a private file (0600) and flush it to disk before returning."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _flush_upload(path: Path) -> None:
    # From the claim on, the ledger promises the file. Loonbrug's SFTP server
    # flushed it before its client heard of success, but a site may run
    # OpenSSH's sftp-server on the spool, which never flushes.
    try:
        fsync_file(path)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise  # a link carries no data of its own; the claim goes on as before


def fsync_file(path: Path) -> None:
    """Flush a finished file's content to disk; a link is not followed."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Pipeline:
    """Takes uploads through every step; safe to call from several threads."""

    def __init__(
        self,
        config: Config,
        *,
        ledger: Ledger,
        pgp: OpenPgp,
        audit: AuditSink,
        pseudonymiser: Pseudonymiser,
    ) -> None:
        self.config = config
        self.ledger = ledger
        self.pgp = pgp
        self.audit = audit
        self.pseudonymiser = pseudonymiser
        self._encryptors = ThreadPoolExecutor(
            max_workers=2 * config.gateway.workers + 1,
            thread_name_prefix="encrypt",
        )
        # Apart from the encryptors, so that a flush never queues behind gpg.
        self._flushers = ThreadPoolExecutor(
            max_workers=2 * config.gateway.workers, thread_name_prefix="flush"
        )

    def close(self) -> None:
        """Let the encryption and flush threads go once their work is done."""
        self._encryptors.shutdown(wait=False)
        self._flushers.shutdown(wait=False)

    @property
    def spool(self) -> Spool:
        """The spool of the current configuration."""
        return Spool(self.config.gateway.spool)

    # Entry points

    def process(self, account: str, path: Path) -> str | None:
        """Claim and process one inbox file; its upload id, or None if not taken."""
        job = self.claim(account, path)
        if job is not None:
            self._run_guarded(job, self.config)
        return job.upload_id if job else None

    def resume(self, upload: Upload) -> None:
        """Redo or finish one unfinished upload from the step it reached."""
        job = Job(
            upload_id=upload.upload_id,
            account=upload.account,
            file_name=upload.file_name,
            folder=self.spool.work(upload.upload_id),
            received_at=upload.received_at,
        )
        _log.info("upload.resumed", upload_id=job.upload_id, state=str(upload.state))
        if upload.state == State.CLAIMING and not self._finish_claim(job):
            return
        if upload.state == State.RECEIPTED:
            self._archive(job, upload.outcome)
        elif job.upload.exists():
            self._run_guarded(job, self.config)
        else:
            # Only an outside hand removes a claimed upload before its receipt.
            _log.error("upload.lost", upload_id=job.upload_id, account=job.account)
            shutil.rmtree(job.folder, ignore_errors=True)
            self.ledger.set_state(job.upload_id, State.VANISHED)

    # Claim

    def claim(self, account: str, path: Path) -> Job | None:
        """Move an inbox file into its own work folder, ledger row first."""
        try:
            status = path.lstat()
        except FileNotFoundError:
            return None
        if not path.is_file() or path.is_symlink():
            _log.warning("upload.not_a_file", account=account, file=path.name)
            return None
        now = datetime.now(UTC).replace(microsecond=0)
        upload_id = new_upload_id(now)
        job = Job(
            upload_id=upload_id,
            account=account,
            file_name=path.name,
            folder=self.spool.work(upload_id),
            received_at=now,
            size=status.st_size,
        )
        self.ledger.begin_claim(job.upload_id, account, path.name, now)
        crash_point("before-claim-rename")
        return job if self._finish_claim(job) else None

    def _finish_claim(self, job: Job) -> bool:
        """Complete the rename into work/; False if the file has gone."""
        inbox_file = self.spool.inbox(job.account) / job.file_name
        make_private_dir(job.folder)
        if not job.upload.exists():
            try:
                _flush_upload(inbox_file)
                os.rename(inbox_file, job.upload)
            except FileNotFoundError:
                job.folder.rmdir()
                self.ledger.set_state(job.upload_id, State.VANISHED)
                return False
            self._fsync_folders([inbox_file.parent, job.folder])
        return True

    # The run, under a catch-all

    def _run_guarded(self, job: Job, config: Config) -> None:
        try:
            try:
                accepted = self._run(job, config)
            except RejectionError as rejected:
                self._reject(job, rejected)
            else:
                self._accept(job, accepted)
        except Exception as exc:  # one bad upload must never stop the others
            _log.error(
                "upload.internal_error",
                upload_id=job.upload_id,
                account=job.account,
                error=type(exc).__name__,
            )
            self._fail(job)

    def _run(self, job: Job, config: Config) -> Accepted:
        intermediary = config.intermediaries.get(job.account)
        self._hash(job)
        if intermediary is None:
            raise rejection("SENDER-UNKNOWN", "The account is not an intermediary.")
        self._check_size(job, config)
        verified = self._decrypt(job, config, intermediary)
        result = self._validate(job, config, intermediary)
        message_id = (result.message_id or "").lower()
        facts = ReceiptFacts(
            outcome=Outcome.ACCEPTED,
            upload_name=job.file_name,
            upload_sha256=job.sha256,
            upload_size=job.size,
            received_at=job.received,
            message_id=message_id,
            accepted=dict(result.records_per_municipality),
            findings=result.findings,
        )
        # Signed and written to work/ while the outbox documents are encrypted:
        # one gpg wait and one disk flush less. It is published only once
        # every document is delivered.
        receipt = self._encryptors.submit(self._prepare_receipt, job, facts)
        try:
            self._route(job, config, message_id, result, verified)
        except BaseException:
            _discard_receipt(receipt)
            raise
        return Accepted(facts, receipt.result())

    def _hash(self, job: Job) -> None:
        job.size, job.sha256 = sha256_of(job.upload)
        owner = self.ledger.claim_hash(job.upload_id, job.size, job.sha256)
        crash_point("after-claim")
        self.audit.emit(
            "upload.claimed",
            upload_id=job.upload_id,
            account=job.account,
            file=job.file_name,
            size=job.size,
            sha256=job.sha256,
        )
        if owner is not None:
            raise rejection(
                "DUPLICATE-UPLOAD",
                f"The same file was received before, as upload {owner}.",
            )

    def _check_size(self, job: Job, config: Config) -> None:
        limit = config.gateway.max_upload_bytes
        if job.size > limit:
            raise rejection(
                "UPLOAD-TOO-LARGE",
                f"The upload is {job.size} bytes; the limit is {limit} bytes.",
            )

    # Decrypt and verify

    def _decrypt(self, job: Job, config: Config, sender: Intermediary) -> Verified:
        try:
            verified = self.pgp.decrypt_verify(
                job.upload,
                job.report,
                max_output=config.gateway.max_plaintext_bytes,
            )
        except CryptoError as exc:
            raise rejection(exc.code, str(exc)) from exc
        crash_point("after-decrypt")
        if verified.signer_fingerprint not in sender.signing_keys:
            raise rejection(
                "PGP-SIGNER-NOT-PINNED",
                "The message is signed by key "
                f"{verified.signer_fingerprint}, which is not pinned for "
                "the uploading account.",
            )
        # Stamped in the ledger with the validation, one commit less.
        job.decrypted_at = datetime.now(UTC)
        self.audit.emit(
            "message.decrypted",
            upload_id=job.upload_id,
            account=job.account,
            signer_fingerprint=verified.signer_fingerprint,
            plaintext_size=verified.plaintext_size,
        )
        return verified

    # Validate

    def _validate(
        self, job: Job, config: Config, sender: Intermediary
    ) -> ValidationResult:
        context = ValidationContext(
            known_municipalities=config.municipality_codes,
            sender=SenderContext.from_intermediary(sender),
        )
        result = validate_file(job.report, context)
        message_id = (result.message_id or "").lower() or None
        owner = self.ledger.validated(
            job.upload_id,
            message_id,
            reserve=result.valid,
            decrypted_at=job.decrypted_at,
        )
        self.audit.emit(
            "message.validated",
            upload_id=job.upload_id,
            message_id=message_id or "",
            account=job.account,
            record_count=result.record_count,
            outcome="valid" if result.valid else "invalid",
            finding_codes=sorted({f.code for f in result.findings}),
        )
        crash_point("after-validate")
        if not result.valid or owner is not None:
            self._received_subjects(job, message_id or "")
        if not result.valid:
            raise RejectionError(
                result.findings, message_id=message_id, truncated=result.truncated
            )
        if owner is not None:
            raise _duplicate_message(job, owner, message_id or "")
        return result

    def _received_subjects(self, job: Job, message_id: str) -> None:
        """Record who a report about to be rejected concerns, by pseudonym.

        Nothing of it reaches a municipality, but the gateway received it and
        keeps it for a while: an access request must find it.
        """
        subjects = _SubjectBatcher(self, job, message_id, event="records.received")
        for bsn in record_bsns(job.report):
            subjects.add("", bsn)
        subjects.flush_all()

    # Route

    def _route(
        self,
        job: Job,
        config: Config,
        message_id: str,
        result: ValidationResult,
        verified: Verified,
    ) -> None:
        counts = dict(result.records_per_municipality)
        pending = self._not_yet_written(job, config, message_id, counts)
        documents = {}
        if pending:
            documents = self._split(job, message_id, verified, pending)
        encrypted = self._encrypt_all(job, config, message_id, documents)
        crash_point("after-encrypt")
        written = self._deliver_all(config, encrypted, counts)
        crash_point("after-outbox-write")
        self.ledger.record_routed(job.upload_id, written)
        for item in written:
            self._announce(job, message_id, item)
        crash_point("after-route")

    def _not_yet_written(
        self, job: Job, config: Config, message_id: str, counts: dict[str, int]
    ) -> dict[str, int]:
        """The municipalities still without their file (all but after a crash)."""
        done = self.ledger.written_files(job.upload_id)
        return {
            code: n
            for code, n in counts.items()
            if (self._municipality_id(config, code), outbox_name(message_id, code))
            not in done
        }

    def _announce(self, job: Job, message_id: str, item: Written) -> None:
        self.audit.emit(
            "delivery.written",
            upload_id=job.upload_id,
            message_id=message_id,
            account=job.account,
            municipality=item.municipality,
            file=item.file_name,
            size=item.size,
            sha256=item.sha256,
            record_count=item.record_count,
        )

    def _encrypt_all(
        self, job: Job, config: Config, message_id: str, documents: dict[str, Path]
    ) -> dict[str, _Sealed]:
        """Encrypt every document at once: each gpg run is mostly waiting."""
        futures = {
            code: self._encryptors.submit(
                self._encrypt, job, config, message_id, code, document
            )
            for code, document in documents.items()
        }
        return {code: future.result() for code, future in futures.items()}

    @staticmethod
    def _municipality_id(config: Config, code: str) -> str:
        municipality = config.municipality_by_code(code)
        if municipality is None:
            raise rejection(
                "MUNICIPALITY-UNKNOWN", f"Municipality {code} is not known."
            )
        return municipality.id

    def _split(
        self,
        job: Job,
        message_id: str,
        verified: Verified,
        counts: Mapping[str, int],
    ) -> dict[str, Path]:
        folder = job.folder / "split"
        make_private_dir(folder)
        provenance = Provenance(
            message_id=message_id,
            received_at=job.received,
            upload_sha256=job.sha256,
            signer_fingerprint=verified.signer_fingerprint,
        )
        subjects = _SubjectBatcher(self, job, message_id)
        documents = split_report(job.report, folder, provenance, counts, subjects.add)
        subjects.flush_all()
        return documents

    def _encrypt(
        self, job: Job, config: Config, message_id: str, code: str, document: Path
    ) -> _Sealed:
        folder = job.folder / "out"
        make_private_dir(folder)
        target = folder / outbox_name(message_id, code)
        target.unlink(missing_ok=True)
        municipality = config.municipality_by_code(code)
        assert municipality is not None  # checked before splitting
        self.pgp.sign_encrypt(
            document,
            target,
            recipient=municipality.encryption_key,
            signer=config.gateway.key_fingerprint,
        )
        document.unlink()
        target.chmod(FILE_MODE)
        fsync_file(target)
        size, digest = sha256_of(target)
        return _Sealed(target, size, digest)

    def _deliver_all(
        self, config: Config, encrypted: dict[str, _Sealed], counts: Mapping[str, int]
    ) -> list[Written]:
        """Rename every document into its outbox: all of them, or none."""
        written: list[Written] = []
        try:
            for code, sealed in sorted(encrypted.items()):
                written.append(
                    self._deliver(
                        config, code=code, sealed=sealed, record_count=counts[code]
                    )
                )
            self._fsync_outboxes(written)
        except BaseException:
            for item in written:
                (self.spool.outbox(item.account) / item.file_name).unlink(
                    missing_ok=True
                )
            raise
        return written

    def _deliver(
        self, config: Config, *, code: str, sealed: _Sealed, record_count: int
    ) -> Written:
        """Rename one encrypted document into its municipality's outbox."""
        account = self._municipality_id(config, code)
        outbox = self.spool.outbox(account)
        make_private_dir(outbox)
        os.replace(sealed.path, outbox / sealed.path.name)
        return Written(
            account=account,
            file_name=sealed.path.name,
            municipality=code,
            size=sealed.size,
            sha256=sealed.sha256,
            record_count=record_count,
        )

    def _fsync_outboxes(self, written: list[Written]) -> None:
        """Make every rename into an outbox durable."""
        self._fsync_folders({self.spool.outbox(item.account) for item in written})

    def _fsync_folders(self, folders: Collection[Path]) -> None:
        """Flush several folders to disk at once; return when all are done.

        Each flush waits for the file system's journal, and flushes that wait
        together share one journal commit instead of queueing one by one.
        """
        if not folders:
            return
        first, *others = folders
        flushes = [self._flushers.submit(fsync_dir, folder) for folder in others]
        fsync_dir(first)
        for flush in flushes:
            flush.result()

    # Outcomes

    def _accept(self, job: Job, accepted: Accepted) -> None:
        facts = accepted.facts
        codes = sorted({f.code for f in facts.findings})
        self._receipt(job, facts, codes, accepted.receipt)
        self._archive(job, Outcome.ACCEPTED)
        _log.info(
            "upload.accepted",
            upload_id=job.upload_id,
            account=job.account,
            message_id=facts.message_id,
            municipalities=sorted(facts.accepted),
        )

    def _reject(self, job: Job, rejected: RejectionError) -> None:
        codes = sorted({f.code for f in rejected.findings})
        self.audit.emit(
            "message.rejected",
            upload_id=job.upload_id,
            account=job.account,
            message_id=rejected.message_id or "",
            finding_codes=codes,
        )
        facts = ReceiptFacts(
            outcome=Outcome.REJECTED,
            upload_name=job.file_name,
            upload_sha256=job.sha256 or hashlib.sha256(b"").hexdigest(),
            upload_size=job.size,
            received_at=job.received,
            message_id=rejected.message_id,
            findings=rejected.findings,
            truncated=rejected.truncated,
        )
        self._receipt(job, facts, codes)
        self._archive(job, Outcome.REJECTED)
        _log.info(
            "upload.rejected",
            upload_id=job.upload_id,
            account=job.account,
            finding_codes=codes,
        )

    def _fail(self, job: Job) -> None:
        """Reject after an unexpected error, withdrawing anything delivered."""
        with contextlib.suppress(Exception):
            self._withdraw(job)
        with contextlib.suppress(Exception):
            self.ledger.release_hash(job.upload_id)
        if not job.sha256 and job.upload.exists():
            job.size, job.sha256 = sha256_of(job.upload)
        error = rejection(
            "INTERNAL-ERROR",
            "The gateway could not process this upload; it is kept for the "
            "operator. Please contact the gateway's operator before resending.",
        )
        try:
            self._reject(job, error)
        except Exception as exc:  # keep the daemon alive even if this fails too
            _log.error(
                "upload.reject_failed",
                upload_id=job.upload_id,
                account=job.account,
                error=type(exc).__name__,
            )
            # Without a receipt the upload still must not stay in work/.
            with contextlib.suppress(Exception):
                self._archive(job, Outcome.REJECTED)

    def _withdraw(self, job: Job) -> None:
        """Remove outbox files of a failed upload not yet downloaded."""
        for account, name in self.ledger.written_files(job.upload_id):
            if not self.ledger.was_downloaded(account, name):
                (self.spool.outbox(account) / name).unlink(missing_ok=True)
                self.ledger.withdraw(account, name)
                _log.warning(
                    "delivery.withdrawn", upload_id=job.upload_id, account=account
                )

    def _prepare_receipt(self, job: Job, facts: ReceiptFacts) -> Path:
        """Sign the receipt and put it on disk in work/, ready to be published."""
        signed = self.pgp.sign(
            receipt_xml(facts), signer=self.config.gateway.key_fingerprint
        )
        # The work folder is gone when archiving failed late; a rejection
        # receipt must still replace the accepted one.
        make_private_dir(job.folder)
        prepared = job.folder / RECEIPT_FILE
        # A crash between publishing and tidying up can leave this name linked
        # to the published receipt: write a new file, never into that one.
        prepared.unlink(missing_ok=True)
        write_durably(prepared, signed)
        _mark_receipt(prepared, job.upload_id)
        return prepared

    def _receipt(
        self,
        job: Job,
        facts: ReceiptFacts,
        codes: list[str],
        prepared: Path | None = None,
    ) -> None:
        prepared = prepared or self._prepare_receipt(job, facts)
        folder = self.spool.receipts(job.account)
        make_private_dir(folder)
        name = _publish_receipt(prepared, folder, job)
        fsync_dir(folder)
        crash_point("after-receipt")
        self.ledger.set_state(
            job.upload_id,
            State.RECEIPTED,
            outcome=Outcome(facts.outcome),
            finding_codes=codes,
        )
        self.audit.emit(
            "receipt.written",
            upload_id=job.upload_id,
            account=job.account,
            outcome=str(facts.outcome),
            file=name,
        )
        crash_point("before-archive")

    # Archive

    def _destination(self, job: Job, outcome: Outcome | None) -> Path:
        if outcome == Outcome.ACCEPTED:
            return self.spool.archive(job.account)
        return self.spool.rejected(job.account)

    def _archive(self, job: Job, outcome: Outcome | None) -> None:
        folder = self._destination(job, outcome)
        make_private_dir(folder)
        if job.upload.exists():
            os.replace(job.upload, folder / job.stored_name)
            fsync_dir(folder)
            self.audit.emit(
                "message.archived",
                upload_id=job.upload_id,
                account=job.account,
                file=job.stored_name,
            )
        crash_point("after-archive")
        shutil.rmtree(job.folder, ignore_errors=True)
        fsync_dir(job.folder.parent)
        self.ledger.set_state(job.upload_id, State.DONE)


def _discard_receipt(receipt: Future[Path]) -> None:
    """Withdraw a receipt prepared for an upload whose routing failed.

    Waits for it, so that it cannot land on the rejection receipt that is
    prepared next under the same name.
    """
    if receipt.cancel():
        return
    with contextlib.suppress(Exception):
        receipt.result().unlink(missing_ok=True)


def _duplicate_message(job: Job, owner: str, message_id: str) -> RejectionError:
    """The rejection for a message id an earlier upload (of *owner*) holds."""
    if owner == job.account:
        error = rejection(
            "DUPLICATE-MESSAGE", "A message with this message id was received before."
        )
    else:
        error = rejection(
            "MESSAGE-ID-CONFLICT",
            "This message id is already in use; give the message a new one.",
        )
    error.message_id = message_id
    return error


class _SubjectBatcher:
    """Emits audit events naming data subjects, at most 1000 pseudonyms each.

    ``records.routed`` events, one series per municipality code; or, for a
    report that is rejected, ``records.received`` events under the code "",
    which name no municipality.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        job: Job,
        message_id: str,
        *,
        event: str = "records.routed",
    ) -> None:
        self.pipeline = pipeline
        self.job = job
        self.message_id = message_id
        self.event = event
        self.pending: dict[str, list[str]] = {}

    def add(self, code: str, bsn: str) -> None:
        batch = self.pending.setdefault(code, [])
        batch.append(self.pipeline.pseudonymiser.pseudonym(bsn))
        if len(batch) >= PSEUDONYMS_PER_EVENT:
            self.flush(code)

    def flush(self, code: str) -> None:
        subjects = self.pending.pop(code, [])
        if subjects:
            place = {"municipality": code} if code else {}
            self.pipeline.audit.emit(
                self.event,
                upload_id=self.job.upload_id,
                message_id=self.message_id,
                account=self.job.account,
                **place,
                subjects=subjects,
            )

    def flush_all(self) -> None:
        for code in sorted(self.pending):
            self.flush(code)


def _mark_receipt(prepared: Path, upload_id: str) -> None:
    """Say on *prepared* which upload it answers, where the file system can."""
    try:
        os.setxattr(prepared, RECEIPT_OWNER, upload_id.encode("ascii"))
    except OSError as exc:
        if exc.errno not in NO_ATTRIBUTES:
            raise


def _receipt_owner(path: Path) -> str | None:
    """The upload the receipt at *path* answers; None if gone or not marked."""
    try:
        return os.getxattr(path, RECEIPT_OWNER, follow_symlinks=False).decode()
    except (OSError, UnicodeDecodeError):
        return None


def _publish_receipt(prepared: Path, folder: Path, job: Job) -> str:
    """Move the signed receipt from work/ into *folder*; the name it was given.

    The receipt is named after the upload. If that name holds the receipt of
    another upload of the same name, not fetched yet, the new one is named
    after the upload id as well rather than replacing it: the intermediary would
    otherwise never learn the earlier outcome. A redo after a crash finds its
    own mark and replaces its own receipt. The content is on disk already, so
    the link or rename publishes it whole.
    """
    name = receipt_name(job.file_name)
    try:
        os.link(prepared, folder / name)  # unlike a rename, never replaces
    except FileExistsError:
        if _receipt_owner(folder / name) not in (None, job.upload_id):
            name = receipt_name(f"{job.file_name}.{job.upload_id}")
        os.replace(prepared, folder / name)
        return name
    except OSError:  # no hard links here: publish as before, by rename
        os.replace(prepared, folder / name)
        return name
    prepared.unlink()
    return name
