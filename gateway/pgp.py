"""OpenPGP for the gateway: the real ``gpg`` binary.

Every operation is one ``gpg`` process (about 7 ms here) in the gateway's own
GnuPG home, so the gateway never shares a key ring with the account it runs
under. The message operations on the pipeline's hot path (decrypt, verify,
sign, sign-and-encrypt) start ``gpg`` directly (:class:`_Runner`): files are
named on its command line and its output goes straight into a file the
gateway opened, so no byte passes through Python and no helper thread is
started; python-gnupg's three threads and pipe copies per call cost about a
tenth of the daemon's time per upload. Key management (generate, import,
export, list) stays with python-gnupg, whose parser of gpg's colon listings
is worth keeping. What this module relies on and guards against:

- Verdicts come from gpg's machine-readable status lines (``--status-fd``),
  read here line by line. python-gnupg's result attributes (``valid``,
  ``fingerprint``, ``key_status``) describe only the *last* signature seen and
  its ``sig_info`` only holds good signatures (those with a ``SIG_ID``), so
  they cannot tell "one good signature" from "one good and one unknown". Human
  log output goes to ``/dev/null`` so that nothing a sender controls (a user
  id, an embedded file name) can ever appear on the status channel.
- ``--max-output`` stops a compression bomb inside gpg, but gpg reports the
  trip only in its log, with ``DECRYPTION_OKAY`` still on the status channel.
  The limit given to gpg is therefore a little above the caller's cap, and the
  caller's cap is checked on the bytes actually written: a trip always leaves
  more than the cap behind.
- Keys are never fetched or imported while decrypting or verifying
  (no dirmngr, no keyserver, no auto-key-retrieve/import), the embedded file
  name is ignored (output always goes where the caller says), and passphrase
  prompts fail at once instead of waiting for a pinentry.
- The trust model is ``always``: the web of trust has no say in who may send
  what. Recipients are named by full fingerprint from the configuration, and
  the caller pins every signer by primary-key fingerprint, which is a
  stronger check than any ownertrust computation.
- A gpg process that runs longer than ``timeout`` is killed. python-gnupg
  has no timeout of its own, so :class:`_TimedGpg` hooks into the one place
  where it waits for the process; :class:`_Runner` waits with a deadline.
- gpg-agent listens on Unix sockets inside the home; a socket path must fit
  in ``sun_path`` (108 bytes). A home whose path is too long is reached
  through a short symbolic link in the temporary folder instead.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gnupg

from gateway.errors import (
    CryptoError,
    DecryptError,
    KeyProblemError,
    OutputLimitError,
    SignatureError,
)

# The longest socket gpg-agent creates in a home is "S.gpg-agent.browser";
# sun_path holds 107 characters plus the terminating NUL (unix(7)), but gpg
# 2.2 already refuses a socket path of exactly 107 characters (measured).
_SOCKET_SUFFIX = len("/S.gpg-agent.browser")
_SUN_PATH_MAX = 106

# gpg stops writing before the chunk that would cross --max-output, so the limit
# handed to gpg sits this far above the caller's cap: a trip always leaves more
# than the cap on disk, which is what is checked.
_OUTPUT_HEADROOM = 1024 * 1024

_OPTIONS = [
    "--no-options",
    "--logger-file",
    "/dev/null",
    "--trust-model",
    "always",
    "--no-auto-key-retrieve",
    "--no-auto-key-import",
    "--auto-key-locate",
    "local",
    "--disable-dirmngr",
    "--pinentry-mode",
    "error",
    "--no-symkey-cache",
    "--with-secret",
    # Every gpg run otherwise locks the home's random_seed file, and waiting
    # gpg processes back off in sleeps: four at once ran ten times slower than
    # one after the other (measured). The kernel's getrandom() seeds instead.
    "--no-random-seed-file",
    # The trust model above never asks the trust database, so its periodic
    # check is work for nothing on every run.
    "--no-auto-check-trustdb",
]

# Compressing a document of a few kilobytes costs gpg about half a millisecond,
# a tenth of its run, for a few kilobytes less on disk (measured); from this size
# on, the saving on disk and on the wire is worth it, and gpg compresses as usual.
COMPRESS_FROM_BYTES = 256 * 1024

# Output always goes where the gateway says (standard output, which is a file
# it opened or a pipe), never to a name derived from the input or the data.
_OUTPUT_TO_STDOUT = ["--output", "-"]

_FINGERPRINT = re.compile(r"^[0-9A-F]{40}$")
_STATUS_PREFIX = "[GNUPG:] "


@dataclass(frozen=True)
class Verified:
    """The outcome of a successful decrypt-and-verify.

    ``signer_fingerprint`` is the signer's primary key (what the configuration
    pins), ``signing_subkey`` the key that actually made the signature (the
    same when the primary key signs), ``plaintext_size`` the bytes written.
    """

    signer_fingerprint: str
    signing_subkey: str
    plaintext_size: int


@dataclass(frozen=True)
class KeyInfo:
    """What the key ring knows about one key.

    ``expires`` is the earliest expiry of the primary key and its usable
    subkeys (None: never); ``can_sign`` and ``can_encrypt`` say whether the
    key as a whole can still do so (expired or revoked parts do not count);
    ``has_secret`` whether secret key material for it is in this home.
    """

    fingerprint: str
    uids: tuple[str, ...]
    expires: datetime | None
    expired: bool
    revoked: bool
    can_sign: bool
    can_encrypt: bool
    has_secret: bool = False


class _TimedGpg(gnupg.GPG):  # type: ignore[misc]
    """python-gnupg with a deadline on every gpg process it runs."""

    def __init__(self, *, timeout: float, **kwargs: Any) -> None:
        # python-gnupg runs "gpg --list-config" while it starts; that one check
        # gets a fixed minute, whatever the limit for the real work.
        self.timeout = 60.0
        super().__init__(**kwargs)
        self.timeout = timeout

    def _collect_output(
        self, process: Any, result: Any, writer: Any = None, stdin: Any = None
    ) -> Any:
        result.timed_out = False

        def expire() -> None:
            result.timed_out = True
            process.kill()

        timer = threading.Timer(self.timeout, expire)
        timer.daemon = True
        timer.start()
        try:
            return super()._collect_output(process, result, writer, stdin)
        finally:
            timer.cancel()


class _Statuses:
    """gpg's status lines of one run, in order."""

    def __init__(self, stderr: str) -> None:
        self.lines: list[tuple[str, list[str]]] = []
        for line in stderr.splitlines():
            if line.startswith(_STATUS_PREFIX):
                keyword, _, rest = line[len(_STATUS_PREFIX) :].partition(" ")
                self.lines.append((keyword, rest.split()))

    def has(self, keyword: str) -> bool:
        return any(k == keyword for k, _ in self.lines)

    def count(self, *keywords: str) -> int:
        return sum(1 for k, _ in self.lines if k in keywords)

    def first(self, keyword: str) -> list[str]:
        return next((args for k, args in self.lines if k == keyword), [])


@dataclass(frozen=True)
class _Run:
    """What one gpg process left behind."""

    returncode: int
    statuses: _Statuses
    output: bytes
    timed_out: bool


class _Runner:
    """Starts ``gpg`` in one GnuPG home with its status lines on standard error.

    Standard error carries nothing else: human log output goes to
    ``/dev/null`` (``--logger-file``). Standard output is either captured (small
    messages) or an open file of the caller's, which gpg then fills itself.
    """

    def __init__(self, homedir: Path, env: dict[str, str], timeout: float) -> None:
        # The full path spares one failed exec per PATH folder on every run.
        binary = shutil.which("gpg", path=env["PATH"])
        if binary is None:
            raise CryptoError("gpg is not installed", "PGP-IO")
        self._command = [
            binary,
            "--homedir",
            str(homedir),
            "--batch",
            "--no-tty",
            "--status-fd",
            "2",
            *_OPTIONS,
        ]
        self._env = env
        self.timeout = timeout

    def run(
        self, args: list[str], *, data: bytes | None = None, output: int | None = None
    ) -> _Run:
        """Run gpg with *args*, *data* on its input, its output into fd *output*."""
        try:
            process = subprocess.Popen(
                [*self._command, *args],
                stdin=subprocess.DEVNULL if data is None else subprocess.PIPE,
                stdout=subprocess.PIPE if output is None else output,
                stderr=subprocess.PIPE,
                env=self._env,
            )
        except OSError as exc:
            raise CryptoError("gpg could not run", "PGP-IO") from exc
        with process:
            stdout, stderr, timed_out = self._wait(process, data)
        statuses = _Statuses(stderr.decode("utf-8", "replace"))
        return _Run(process.returncode, statuses, stdout or b"", timed_out)

    def _wait(
        self, process: subprocess.Popen[bytes], data: bytes | None
    ) -> tuple[bytes, bytes, bool]:
        """(stdout, stderr, timed out) of *process*, killed past the deadline."""
        try:
            stdout, stderr = process.communicate(data, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
            return stdout, stderr, True
        except BaseException:
            process.kill()
            raise
        return stdout, stderr, False


_SIGNATURE_VERDICTS = (
    "GOODSIG",
    "BADSIG",
    "ERRSIG",
    "EXPSIG",
    "EXPKEYSIG",
    "REVKEYSIG",
)


def _check_decryption(statuses: _Statuses) -> None:
    """Raise unless the data was encrypted to us and decrypted intact."""
    if statuses.has("DECRYPTION_OKAY") and not statuses.has("DECRYPTION_FAILED"):
        return
    if not statuses.has("ENC_TO") and statuses.has("NEED_PASSPHRASE_SYM"):
        raise DecryptError(
            "message is encrypted with a passphrase only", "PGP-SYMMETRIC"
        )
    recipients = statuses.count("ENC_TO")
    if recipients and statuses.count("NO_SECKEY") >= recipients:
        raise DecryptError(
            "message is not encrypted to the gateway's key", "PGP-NOT-FOR-US"
        )
    if not statuses.has("BEGIN_DECRYPTION") and statuses.has("PLAINTEXT"):
        raise DecryptError("message is not encrypted", "PGP-NOT-ENCRYPTED")
    raise DecryptError("message is not valid OpenPGP data", "PGP-MALFORMED")


def _check_signature(statuses: _Statuses) -> tuple[str, str]:
    """The (primary, subkey) fingerprints of the one valid signature, or raise."""
    seen = max(statuses.count("NEWSIG"), statuses.count(*_SIGNATURE_VERDICTS))
    if seen == 0:
        raise SignatureError("message is not signed", "PGP-UNSIGNED")
    if seen > 1:
        raise SignatureError(
            f"message carries {seen} signatures, exactly one is accepted",
            "PGP-MULTIPLE-SIGNATURES",
        )
    _raise_for_verdict(statuses)
    valid = statuses.first("VALIDSIG")
    if len(valid) < 10 or not _FINGERPRINT.match(valid[9]):
        raise SignatureError("signature could not be verified", "PGP-BAD-SIGNATURE")
    return valid[9], valid[0]


def _raise_for_verdict(statuses: _Statuses) -> None:
    if statuses.has("EXPKEYSIG"):
        raise KeyProblemError("signing key has expired", "PGP-KEY-EXPIRED")
    if statuses.has("REVKEYSIG"):
        raise KeyProblemError("signing key is revoked", "PGP-KEY-REVOKED")
    if statuses.has("EXPSIG"):
        raise SignatureError("signature has expired", "PGP-SIGNATURE-EXPIRED")
    if statuses.has("ERRSIG") and statuses.has("NO_PUBKEY"):
        raise KeyProblemError("signing key is not known", "PGP-UNKNOWN-KEY")
    if not statuses.has("GOODSIG"):
        raise SignatureError("signature is not valid", "PGP-BAD-SIGNATURE")


def _judge(result: _Run, *, encrypted: bool) -> Verified:
    """Turn one gpg run into a :class:`Verified`, or raise the precise reason."""
    _raise_if_timed_out(result)
    statuses = result.statuses
    if encrypted:
        _check_decryption(statuses)
    elif not statuses.has("PLAINTEXT"):
        raise SignatureError("data is not a signed message", "PGP-MALFORMED")
    primary, subkey = _check_signature(statuses)
    if result.returncode != 0:
        raise DecryptError("gpg reported an error", "PGP-MALFORMED")
    return Verified(primary, subkey, 0)


def _open_private(path: Path) -> int:
    """Create (or empty) *path* with mode 0600; its fd, for gpg to write into."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise CryptoError(f"{path}: cannot be created", "PGP-IO") from exc
    try:
        os.fchmod(fd, 0o600)
    except OSError as exc:
        os.close(fd)
        raise CryptoError(f"{path}: cannot be made private", "PGP-IO") from exc
    return fd


def gpg_home(home: Path) -> Path:
    """The path to hand gpg for *home*: itself, or a short link to it.

    gpg-agent's sockets live in the home and a socket path must fit in
    ``sun_path``; tools that run gpg on a gateway home directly use this too.
    """
    home = Path(home).absolute()
    if len(str(home)) + _SOCKET_SUFFIX <= _SUN_PATH_MAX:
        return home
    try:
        links = _link_folder()
        link = links / hashlib.sha256(str(home).encode()).hexdigest()[:16]
        if not (link.is_symlink() and Path(os.readlink(link)) == home):
            _prune_dangling(links)
            spare = link.with_name(
                f".{link.name}.{os.getpid()}.{threading.get_ident()}"
            )
            spare.unlink(missing_ok=True)
            spare.symlink_to(home)
            spare.replace(link)
    except OSError as exc:
        raise CryptoError(f"no short path for the GnuPG home {home}") from exc
    if len(str(link)) + _SOCKET_SUFFIX > _SUN_PATH_MAX:
        raise CryptoError("no short path for the GnuPG home; set TMPDIR shorter")
    return link


def _link_folder() -> Path:
    """A folder for short links, private to this user, in the temporary folder."""
    links = Path(tempfile.gettempdir()) / f"loonbrug-gnupg-{os.getuid()}"
    links.mkdir(mode=0o700, exist_ok=True)
    info = links.lstat()
    if info.st_uid != os.getuid() or info.st_mode & 0o077 or links.is_symlink():
        raise CryptoError(f"{links}: not a private folder of this user")
    return links


def _prune_dangling(links: Path) -> None:
    """Remove links whose home is gone (test folders, deleted sandboxes)."""
    for link in links.iterdir():
        if link.is_symlink() and not link.exists():
            link.unlink(missing_ok=True)


def stop_agent(home: Path) -> None:
    """Stop the gpg-agent of *home*, if one runs; never raises."""
    try:
        subprocess.run(
            ["gpgconf", "--homedir", str(gpg_home(home)), "--kill", "gpg-agent"],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired, CryptoError):
        return


def _timestamp(value: str) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if value else None


class OpenPgp:
    """The gateway's OpenPGP operations, one gpg process each."""

    def __init__(self, home: Path, *, timeout: float = 600.0) -> None:
        self.home = Path(home).absolute()
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._homedir = gpg_home(self.home)
        self._env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LC_ALL": "C",
            "HOME": str(self.home),
        }
        try:
            self._gpg = _TimedGpg(
                timeout=timeout,
                gnupghome=str(self._homedir),
                options=_OPTIONS,
                env=self._env,
            )
        except (OSError, ValueError) as exc:
            raise CryptoError(f"gpg cannot be run in {self.home}") from exc
        self._gpg.buffer_size = 64 * 1024
        self._runner = _Runner(self._homedir, self._env, timeout)

    @property
    def gpg_home(self) -> Path:
        """The path gpg is given for this home (see :func:`gpg_home`)."""
        return self._homedir

    def _run(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        """Call one python-gnupg operation, its own failures made ours."""
        try:
            return getattr(self._gpg, operation)(*args, **kwargs)
        except (OSError, ValueError) as exc:
            raise CryptoError(f"gpg {operation} could not run", "PGP-IO") from exc

    def __enter__(self) -> OpenPgp:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the gpg-agent serving this home (gpg starts it on demand)."""
        stop_agent(self._homedir)

    def decrypt_verify(
        self, source: Path, target: Path, *, max_output: int
    ) -> Verified:
        """Decrypt *source* into *target* (0600) and verify its one signature.

        On any failure *target* is removed and the specific error raised.
        """
        fd = _open_private(target)
        try:
            try:
                result = self._runner.run(
                    [*_decrypt_args(max_output), "--", str(source)], output=fd
                )
                size = os.fstat(fd).st_size
            finally:
                os.close(fd)
            _raise_if_timed_out(result)
            _raise_if_too_large(size, max_output)
            verified = _judge(result, encrypted=True)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return Verified(verified.signer_fingerprint, verified.signing_subkey, size)

    def decrypt_verify_bytes(
        self, data: bytes, *, max_output: int
    ) -> tuple[bytes, Verified]:
        """Like :meth:`decrypt_verify`, in memory, for small messages."""
        result = self._runner.run(_decrypt_args(max_output), data=data)
        _raise_if_timed_out(result)
        plaintext = result.output
        _raise_if_too_large(len(plaintext), max_output)
        verified = _judge(result, encrypted=True)
        return plaintext, Verified(
            verified.signer_fingerprint, verified.signing_subkey, len(plaintext)
        )

    def verify(self, data: bytes) -> tuple[bytes, str]:
        """The content and signer of an inline-signed message (armored or not)."""
        result = self._runner.run([*_OUTPUT_TO_STDOUT, "--decrypt"], data=data)
        verified = _judge(result, encrypted=False)
        return result.output, verified.signer_fingerprint

    def sign_encrypt(
        self, source: Path, target: Path, *, recipient: str, signer: str
    ) -> None:
        """Sign *source* by *signer* and encrypt it to *recipient* into *target*."""
        try:
            size = source.stat().st_size
        except OSError as exc:
            raise CryptoError(f"{source.name} cannot be read", "PGP-IO") from exc
        fd = _open_private(target)
        try:
            try:
                result = self._runner.run(
                    [*_sign_encrypt_args(recipient, signer, size), "--", str(source)],
                    output=fd,
                )
            finally:
                os.close(fd)
            _check_produced(result, signed=True, encrypted=True)
        except BaseException:
            target.unlink(missing_ok=True)
            raise

    def encrypt_sign_bytes(self, data: bytes, *, recipient: str, signer: str) -> bytes:
        """*data* signed by *signer* and encrypted to *recipient* (binary)."""
        arguments = _sign_encrypt_args(recipient, signer, len(data))
        result = self._runner.run(arguments, data=data)
        _check_produced(result, signed=True, encrypted=True)
        return result.output

    def sign(self, data: bytes, *, signer: str, armor: bool = True) -> bytes:
        """*data* as an inline-signed message (``gpg --decrypt`` shows it)."""
        armored = ["--armor"] if armor else []
        arguments = [*_signer_args(signer), *_compression_args(len(data)), *armored]
        result = self._runner.run([*arguments, *_OUTPUT_TO_STDOUT, "--sign"], data=data)
        _check_produced(result, signed=True, encrypted=False)
        return result.output

    def generate_key(self, uid: str, *, expire: str = "0") -> str:
        """Create an ed25519/cv25519 key without passphrase; its fingerprint."""
        if any(ord(c) < 32 for c in uid) or not uid.strip():
            raise CryptoError("a user id must be one printable line")
        if not re.fullmatch(r"0|[0-9]+[dwmy]?|[0-9]{4}-[0-9]{2}-[0-9]{2}", expire):
            raise CryptoError(f"unsupported expiry {expire!r}")
        result = self._run("gen_key", _key_parameters(uid, expire))
        _raise_if_timed_out(result)
        fingerprint = str(result.fingerprint or "")
        if result.returncode != 0 or not _FINGERPRINT.match(fingerprint):
            raise CryptoError("key generation failed", "PGP-KEYGEN-FAILED")
        return fingerprint

    def import_keys(self, data: bytes) -> list[str]:
        """Import public keys (or revocations); the fingerprints of imported keys.

        Data that holds a secret key is refused whole: a partner's secret key
        in the gateway's key ring would let the gateway sign as that partner,
        and a second secret key of the gateway's own belongs to ``keys init``.
        """
        self._refuse_secret_keys(data)
        result = self._run("import_keys", data)
        _raise_if_timed_out(result)
        if result.returncode != 0 and not result.fingerprints:
            raise KeyProblemError("no usable OpenPGP key in the data", "PGP-NO-KEYS")
        return list(dict.fromkeys(str(f) for f in result.fingerprints))

    def _refuse_secret_keys(self, data: bytes) -> None:
        # A dry-run import lists what the data holds without touching the ring.
        scanned = self._run("scan_keys_mem", data)
        _raise_if_timed_out(scanned)
        if any(key.get("type") == "sec" for key in scanned):
            raise KeyProblemError(
                "the data holds a secret key; import only public keys",
                "PGP-SECRET-KEY",
            )

    def export_public(self, fingerprint: str) -> bytes:
        """The armored public key *fingerprint*."""
        exported = self._run("export_keys", fingerprint, armor=True)
        if not exported:
            raise KeyProblemError(
                f"key {fingerprint} is not in the key ring", "PGP-UNKNOWN-KEY"
            )
        return str(exported).encode("ascii")

    def key_info(self, fingerprint: str) -> KeyInfo | None:
        """What the key ring holds for *fingerprint*, or None if absent."""
        listed = self._run("list_keys", keys=[fingerprint])
        _raise_if_timed_out(listed)
        return _key_info(listed[0]) if len(listed) == 1 else None


def _signer_args(signer: str) -> list[str]:
    """Arguments that make gpg sign with *signer* or fail.

    ``--default-key`` would only be a preference: with that key absent gpg
    signs with the first secret key it has. ``--local-user`` is binding, so a
    missing key is an error instead.
    """
    return ["--local-user", signer]


def _compression_args(size: int) -> list[str]:
    return [] if size >= COMPRESS_FROM_BYTES else ["--compress-algo", "none"]


def _sign_encrypt_args(recipient: str, signer: str, size: int) -> list[str]:
    return [
        *_signer_args(signer),
        *_compression_args(size),
        "--recipient",
        recipient,
        *_OUTPUT_TO_STDOUT,
        "--sign",
        "--encrypt",
    ]


def _decrypt_args(max_output: int) -> list[str]:
    limit = max_output + _OUTPUT_HEADROOM
    return ["--max-output", str(limit), *_OUTPUT_TO_STDOUT, "--decrypt"]


def _raise_if_timed_out(result: Any) -> None:
    if getattr(result, "timed_out", False):
        raise CryptoError("gpg did not finish in time", "PGP-TIMEOUT")


def _raise_if_too_large(size: int, max_output: int) -> None:
    if size > max_output:
        raise OutputLimitError(
            f"decrypted output exceeds the cap of {max_output} bytes",
            "PGP-OUTPUT-LIMIT",
        )


def _check_produced(result: _Run, *, signed: bool, encrypted: bool) -> None:
    """Raise unless gpg made the signature and encryption it was asked for."""
    _raise_if_timed_out(result)
    statuses = result.statuses
    if statuses.has("INV_RECP"):
        raise KeyProblemError(
            "recipient key is missing, expired, revoked or cannot encrypt",
            "PGP-RECIPIENT-UNUSABLE",
        )
    if statuses.has("INV_SGNR"):
        raise KeyProblemError(
            "signing key is missing, expired, revoked or has no secret key",
            "PGP-SIGNER-UNUSABLE",
        )
    complete = (not signed or statuses.has("SIG_CREATED")) and (
        not encrypted or statuses.has("END_ENCRYPTION")
    )
    if result.returncode != 0 or not complete:
        raise CryptoError("gpg could not sign or encrypt", "PGP-FAILED")


def _key_parameters(uid: str, expire: str) -> str:
    """A gpg batch key-generation parameter block for *uid*."""
    match = re.fullmatch(r"(.*?)\s*<([^<>]+)>", uid)
    names = [f"Name-Real: {match[1]}", f"Name-Email: {match[2]}"] if match else []
    if match and not match[1]:
        names = [f"Name-Email: {match[2]}"]
    return "\n".join(
        [
            "Key-Type: eddsa",
            "Key-Curve: ed25519",
            "Key-Usage: sign",
            "Subkey-Type: ecdh",
            "Subkey-Curve: cv25519",
            "Subkey-Usage: encrypt",
            *(names or [f"Name-Real: {uid}"]),
            f"Expire-Date: {expire}",
            "%no-protection",
            "%commit",
            "",
        ]
    )


def _utf8(text: str) -> str:
    """Undo python-gnupg's Latin-1 reading of gpg's UTF-8 output.

    python-gnupg reads gpg's output as Latin-1, which never fails on odd bytes
    (a strict UTF-8 reader would stop on them and lose the status lines).
    """
    return text.encode("latin-1", "replace").decode("utf-8", "replace")


def _key_info(key: dict[str, Any]) -> KeyInfo:
    """Build a :class:`KeyInfo` from one python-gnupg key listing."""
    capabilities = str(key.get("cap", ""))
    validity = str(key.get("trust", ""))
    subkeys = list(key.get("subkey_info", {}).values())
    usable_until = [
        _timestamp(str(sub.get("expires", "")))
        for sub in subkeys
        if str(sub.get("trust", "")) not in ("e", "r")
    ]
    expiries = [
        e for e in [_timestamp(str(key.get("expires", ""))), *usable_until] if e
    ]
    return KeyInfo(
        fingerprint=str(key["fingerprint"]),
        uids=tuple(_utf8(str(u)) for u in key.get("uids", [])),
        expires=min(expiries) if expiries else None,
        expired=validity == "e",
        revoked=validity == "r",
        can_sign="S" in capabilities,
        can_encrypt="E" in capabilities,
        # "+" marks secret material in this home; a primary key kept offline
        # (a stub) still leaves the subkeys the gateway signs and decrypts with.
        has_secret="+" in {str(k.get("token", "")) for k in (key, *subkeys)},
    )
