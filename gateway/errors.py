"""The exceptions Loonbrug raises, in one tree.

Errors from paramiko, python-gnupg, lxml and sqlite3 are translated into these at
the adapter that calls the library (``raise ... from exc``), so the core never has
to know which library failed. No message in this tree may carry personal data:
no BSN, name or amount, and no fragment of a report.

::

    LoonbrugError
    ├── ConfigError            configuration file missing, unreadable or invalid
    ├── UsageError             a command line that cannot be carried out
    ├── SpoolError             a spool folder or file cannot be used
    ├── LedgerError            the SQLite ledger failed or is inconsistent
    ├── DaemonError            the daemon cannot start (another one is running)
    ├── CryptoError            an OpenPGP operation failed
    │   ├── KeyProblemError    a key is missing, expired, revoked or not pinned
    │   ├── DecryptError       the message cannot be decrypted
    │   ├── SignatureError     the signature is missing, bad, or not the sender's
    │   └── OutputLimitError   decrypted output exceeded its cap
    ├── ValidationError        a document could not be validated at all
    ├── AuditError             the audit log cannot be written or read
    │   └── ChainError         the audit chain does not verify
    └── SftpError              the SFTP service cannot start or serve
"""

from __future__ import annotations


class LoonbrugError(Exception):
    """Base of every error the gateway raises on purpose."""


class ConfigError(LoonbrugError):
    """The configuration is missing, unreadable or invalid.

    ``problems`` lists each problem as ``"<place>: <what is wrong>"`` when the
    file could be read, so that ``check-config`` can report them one by one.
    """

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems


class UsageError(LoonbrugError):
    """A command line that cannot be carried out as given."""


class SpoolError(LoonbrugError):
    """A spool folder or file cannot be used."""


class LedgerError(LoonbrugError):
    """The ledger database failed or holds an inconsistent state."""


class DaemonError(LoonbrugError):
    """The daemon cannot start, for example because another instance runs."""


class CryptoError(LoonbrugError):
    """An OpenPGP operation failed.

    ``code`` names the reason in a stable, PII-free way (``PGP-UNSIGNED``,
    ``PGP-KEY-EXPIRED``); receipts and audit events carry it.
    """

    def __init__(self, message: str, code: str = "PGP-ERROR") -> None:
        super().__init__(message)
        self.code = code


class KeyProblemError(CryptoError):
    """A key is missing, expired, revoked or not pinned for its owner."""


class DecryptError(CryptoError):
    """The message could not be decrypted."""


class SignatureError(CryptoError):
    """The signature is missing, invalid, or not made by the expected party."""


class OutputLimitError(CryptoError):
    """Decrypted output exceeded its configured cap (a compression bomb)."""


class ValidationError(LoonbrugError):
    """A document could not be validated at all (as opposed to having findings)."""


class AuditError(LoonbrugError):
    """The audit log cannot be written or read."""


class ChainError(AuditError):
    """The audit log's hash chain does not verify."""


class SftpError(LoonbrugError):
    """The SFTP service cannot start or serve."""
