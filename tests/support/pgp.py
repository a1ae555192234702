"""OpenPGP test helpers: GnuPG homes, keys and crafted (often hostile) messages.

Messages are made with the plain ``gpg`` binary, not with :mod:`gateway.pgp`,
so the code under test never grades its own homework. :class:`GpgLab` remembers
every home it ran gpg in and stops their agents on :meth:`GpgLab.close`; use the
``gpg_lab`` fixture (import it into the test module) to get that for free.

Typical use against a demo sandbox::

    cases = gpg_lab.hostile_cases(
        gateway_home=sandbox.folder / "gnupg",
        gateway_fingerprint=config.gateway.key_fingerprint,
        sender_home=sandbox.folder / "partners" / "uitzender-noord" / "gnupg",
        sender_fingerprint=config.intermediaries["uitzender-noord"].signing_keys[0],
        plaintext=report_bytes,
    )

Each :class:`HostileCase` holds the message bytes and the ``code`` that
:meth:`gateway.pgp.OpenPgp.decrypt_verify` must raise for it. Building them
adds keys (an expired one, a revoked one) to the gateway's home. The
compression bomb expands to :data:`BOMB_SIZE` (50 MB) from about 50 KB, so the
plaintext cap under test must be below 50 MB for it to trip.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.pgp import gpg_home, stop_agent

BOMB_SIZE = 50 * 1024 * 1024
GARBAGE = b"This is not OpenPGP data at all.\n" * 64


@dataclass(frozen=True)
class HostileCase:
    """One message the gateway must refuse, and the code it must give."""

    name: str
    message: bytes
    code: str


class GpgLab:
    """Makes GnuPG homes, keys and messages in *folder*; stops agents on close."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self._touched: set[Path] = set()

    def close(self) -> None:
        """Stop the gpg-agent of every home this lab ran gpg in."""
        for home in sorted(self._touched):
            stop_agent(home)
        self._touched.clear()

    def home(self, name: str) -> Path:
        """A fresh, private GnuPG home called *name* inside the lab folder."""
        home = self.folder / name
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        return home

    def gpg(self, home: Path, *args: str, data: bytes = b"") -> bytes:
        """Run gpg in *home* with *args* and *data* on stdin; its stdout."""
        self._touched.add(home)
        command = [
            "gpg",
            "--homedir",
            str(gpg_home(home)),
            "--batch",
            "--no-tty",
            "--trust-model",
            "always",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            *args,
        ]
        done = subprocess.run(
            command, input=data, capture_output=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise AssertionError(f"gpg {args} failed: {done.stderr.decode()}")
        return done.stdout

    def new_key(
        self, home: Path, uid: str, *, expire: str = "2y", faked_time: str = ""
    ) -> str:
        """Create an ed25519/cv25519 key in *home*; its primary fingerprint.

        *faked_time* (``20240101T000000``) backdates the key, so that with a
        short *expire* it is already expired today.
        """
        parameters = (
            "Key-Type: eddsa\nKey-Curve: ed25519\nKey-Usage: sign\n"
            "Subkey-Type: ecdh\nSubkey-Curve: cv25519\nSubkey-Usage: encrypt\n"
            f"Name-Real: {uid}\nExpire-Date: {expire}\n%no-protection\n%commit\n"
        )
        self.gpg(home, *_faked(faked_time), "--gen-key", data=parameters.encode())
        listing = self.gpg(home, "--with-colons", "--list-keys", uid).decode()
        fingerprints = [
            line.split(":")[9] for line in listing.splitlines() if line[:4] == "fpr:"
        ]
        return fingerprints[0]

    def copy_public(self, source: Path, fingerprint: str, target: Path) -> None:
        """Make the public key *fingerprint* of *source* known in *target*."""
        self.gpg(target, "--import", data=self.gpg(source, "--export", fingerprint))

    def copy_secret(self, source: Path, fingerprint: str, target: Path) -> None:
        """Copy the secret key *fingerprint* of *source* into *target*."""
        exported = self.gpg(source, "--export-secret-keys", fingerprint)
        self.gpg(target, "--import", data=exported)

    def message(
        self,
        home: Path,
        plaintext: bytes,
        *,
        recipient: str,
        signers: Sequence[str] = (),
        faked_time: str = "",
        extra: Sequence[str] = (),
    ) -> bytes:
        """*plaintext* encrypted to *recipient*, signed by every one of *signers*."""
        signing = [arg for signer in signers for arg in ("--local-user", signer)]
        sign = ["--sign", *signing] if signers else []
        return self.gpg(
            home,
            *_faked(faked_time),
            *extra,
            *sign,
            "--encrypt",
            "--recipient",
            recipient,
            data=plaintext,
        )

    def symmetric(self, home: Path, plaintext: bytes) -> bytes:
        """*plaintext* encrypted with a passphrase only."""
        return self.gpg(
            home, "--passphrase", "shared secret", "--symmetric", data=plaintext
        )

    def signed_only(self, home: Path, plaintext: bytes, *, signer: str) -> bytes:
        """*plaintext* signed by *signer* but not encrypted."""
        return self.gpg(home, "--local-user", signer, "--sign", data=plaintext)

    def revocation(self, home: Path, fingerprint: str) -> bytes:
        """The revocation certificate gpg stored when it created *fingerprint*.

        gpg guards the stored certificate with a leading colon against being
        imported by accident; removing it makes it importable.
        """
        stored = home / "openpgp-revocs.d" / f"{fingerprint}.rev"
        return stored.read_bytes().replace(b":-----BEGIN", b"-----BEGIN")

    def compression_bomb(
        self, home: Path, *, recipient: str, signer: str, size: int = BOMB_SIZE
    ) -> bytes:
        """*size* zero bytes, signed, compressed about 1000:1 and encrypted."""
        zeros = self.folder / "zeros"
        with zeros.open("wb") as handle:
            handle.truncate(size)
        try:
            return self.gpg(
                home,
                "--compress-algo",
                "zlib",
                "--compress-level",
                "9",
                "--local-user",
                signer,
                "--sign",
                "--encrypt",
                "--recipient",
                recipient,
                "--output",
                "-",
                str(zeros),
            )
        finally:
            zeros.unlink()

    def hostile_cases(
        self,
        *,
        gateway_home: Path,
        gateway_fingerprint: str,
        sender_home: Path,
        sender_fingerprint: str,
        plaintext: bytes,
    ) -> list[HostileCase]:
        """Every OpenPGP-level hostile message, with the code it must get.

        *sender_home* must hold the sender's secret key and the gateway's
        public key, and the gateway must know the sender's public key (as in
        a demo sandbox). The gateway's home gains an expired and a revoked
        key; the folder gains homes for an unknown and another recipient.
        """
        gateway = (gateway_home, gateway_fingerprint)
        sender = (sender_home, sender_fingerprint)
        return [
            *self._signature_cases(gateway, sender, plaintext),
            *self._encryption_cases(gateway, sender, plaintext),
        ]

    def _signature_cases(
        self, gateway: tuple[Path, str], sender: tuple[Path, str], plaintext: bytes
    ) -> Iterator[HostileCase]:
        (gateway_home, recipient), (sender_home, signer) = gateway, sender
        stranger_home = self.home("stranger")
        stranger = self.new_key(stranger_home, "Stranger")
        self.copy_public(gateway_home, recipient, stranger_home)
        yield HostileCase(
            "unknown key",
            self.message(
                stranger_home, plaintext, recipient=recipient, signers=[stranger]
            ),
            "PGP-UNKNOWN-KEY",
        )
        yield HostileCase(
            "unsigned",
            self.message(sender_home, plaintext, recipient=recipient),
            "PGP-UNSIGNED",
        )
        both_home = self.home("both-signers")
        self.copy_secret(sender_home, signer, both_home)
        self.copy_secret(stranger_home, stranger, both_home)
        self.copy_public(gateway_home, recipient, both_home)
        yield HostileCase(
            "pinned and foreign signature",
            self.message(
                both_home, plaintext, recipient=recipient, signers=[signer, stranger]
            ),
            "PGP-MULTIPLE-SIGNATURES",
        )
        yield self._expired_case(gateway, plaintext)
        yield self._revoked_case(gateway, plaintext)

    def _expired_case(self, gateway: tuple[Path, str], plaintext: bytes) -> HostileCase:
        gateway_home, recipient = gateway
        home = self.home("expired")
        # Created and used in 2024 with one day of validity: expired ever since.
        # The gateway's key is younger than that moment, so gpg must be told to
        # use a key "from the future" for the encryption.
        expired = self.new_key(
            home, "Expired", expire="1d", faked_time="20240101T000000"
        )
        self.copy_public(gateway_home, recipient, home)
        self.copy_public(home, expired, gateway_home)
        message = self.message(
            home,
            plaintext,
            recipient=recipient,
            signers=[expired],
            faked_time="20240101T010000",
            extra=["--ignore-valid-from", "--ignore-time-conflict"],
        )
        return HostileCase("expired key", message, "PGP-KEY-EXPIRED")

    def _revoked_case(self, gateway: tuple[Path, str], plaintext: bytes) -> HostileCase:
        gateway_home, recipient = gateway
        home = self.home("revoked")
        revoked = self.new_key(home, "Revoked")
        self.copy_public(gateway_home, recipient, home)
        self.copy_public(home, revoked, gateway_home)
        self.gpg(gateway_home, "--import", data=self.revocation(home, revoked))
        message = self.message(home, plaintext, recipient=recipient, signers=[revoked])
        return HostileCase("revoked key", message, "PGP-KEY-REVOKED")

    def _encryption_cases(
        self, gateway: tuple[Path, str], sender: tuple[Path, str], plaintext: bytes
    ) -> Iterator[HostileCase]:
        (_, recipient), (sender_home, signer) = gateway, sender
        other_home = self.home("other-recipient")
        other = self.new_key(other_home, "Other recipient")
        self.copy_public(other_home, other, sender_home)
        yield HostileCase(
            "encrypted to another recipient",
            self.message(sender_home, plaintext, recipient=other, signers=[signer]),
            "PGP-NOT-FOR-US",
        )
        yield HostileCase(
            "symmetric only", self.symmetric(sender_home, plaintext), "PGP-SYMMETRIC"
        )
        yield HostileCase(
            "signed, not encrypted",
            self.signed_only(sender_home, plaintext, signer=signer),
            "PGP-NOT-ENCRYPTED",
        )
        good = self.message(
            sender_home, plaintext, recipient=recipient, signers=[signer]
        )
        yield HostileCase("truncated", good[: len(good) // 2], "PGP-MALFORMED")
        yield HostileCase("garbage", GARBAGE, "PGP-MALFORMED")
        yield HostileCase("empty", b"", "PGP-MALFORMED")
        yield HostileCase(
            "compression bomb",
            self.compression_bomb(sender_home, recipient=recipient, signer=signer),
            "PGP-OUTPUT-LIMIT",
        )


def stop_sandbox_agents(folder: Path) -> None:
    """Stop the gpg-agents of a demo sandbox's gateway and partner homes.

    For tests whose daemon cannot close its own homes (killed by SIGKILL, or
    run in a subprocess).
    """
    for home in [folder / "gnupg", *sorted(folder.glob("partners/*/gnupg"))]:
        stop_agent(home)


def _faked(faked_time: str) -> list[str]:
    # The trailing "!" freezes the clock, so signatures carry exactly that time.
    return ["--faked-system-time", f"{faked_time}!"] if faked_time else []


@pytest.fixture
def gpg_lab(tmp_path: Path) -> Iterator[GpgLab]:
    """A :class:`GpgLab` in a fresh folder, its agents stopped afterwards."""
    lab = GpgLab(tmp_path / "gpg-lab")
    yield lab
    lab.close()
