"""Tests for gateway.pgp: the OpenPGP adapter, against the real gpg binary."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import (
    CryptoError,
    DecryptError,
    KeyProblemError,
    OutputLimitError,
    SignatureError,
)
from gateway.pgp import COMPRESS_FROM_BYTES, OpenPgp, _Runner, gpg_home
from tests.support.pgp import GpgLab, HostileCase

REPORT = b"<WageReport>" + b"<Record>x</Record>" * 2000 + b"</WageReport>\n"
MAX_OUTPUT = 1024 * 1024


@dataclass
class World:
    """A gateway and one sender, each knowing the other's public key."""

    lab: GpgLab
    gateway: OpenPgp
    gateway_fingerprint: str
    sender_home: Path
    sender: str
    folder: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A module-wide gateway home and sender home with real keys."""
    folder = tmp_path_factory.mktemp("pgp")
    lab = GpgLab(folder / "lab")
    gateway = OpenPgp(folder / "gateway")
    gateway_fingerprint = gateway.generate_key("Gateway <gateway@loonbrug.test>")
    sender_home = lab.home("sender")
    sender = lab.new_key(sender_home, "Uitzender Noord")
    lab.copy_public(gateway.home, gateway_fingerprint, sender_home)
    lab.copy_public(sender_home, sender, gateway.home)
    yield World(lab, gateway, gateway_fingerprint, sender_home, sender, folder)
    gateway.close()
    lab.close()


@pytest.fixture(scope="module")
def hostile(world: World) -> dict[str, HostileCase]:
    """Every hostile message of the shared helper, by name."""
    cases = world.lab.hostile_cases(
        gateway_home=world.gateway.home,
        gateway_fingerprint=world.gateway_fingerprint,
        sender_home=world.sender_home,
        sender_fingerprint=world.sender,
        plaintext=REPORT,
    )
    return {case.name: case for case in cases}


def _accepted(world: World) -> bytes:
    return world.lab.message(
        world.sender_home,
        REPORT,
        recipient=world.gateway_fingerprint,
        signers=[world.sender],
    )


def test_decrypt_verify_accepts_a_good_message(world: World, tmp_path: Path) -> None:
    """A message signed by a known key and encrypted to the gateway decrypts."""
    source = tmp_path / "upload.gpg"
    source.write_bytes(_accepted(world))
    target = tmp_path / "report.xml"

    verified = world.gateway.decrypt_verify(source, target, max_output=MAX_OUTPUT)

    assert target.read_bytes() == REPORT
    assert target.stat().st_mode & 0o777 == 0o600
    assert verified.signer_fingerprint == world.sender
    assert verified.plaintext_size == len(REPORT)


def test_decrypt_verify_ignores_the_embedded_file_name(
    world: World, tmp_path: Path
) -> None:
    """The file name inside the OpenPGP data never decides where output goes."""
    source = tmp_path / "upload.gpg"
    source.write_bytes(
        world.lab.message(
            world.sender_home,
            REPORT,
            recipient=world.gateway_fingerprint,
            signers=[world.sender],
            extra=["--set-filename", "../../escaped.xml"],
        )
    )

    world.gateway.decrypt_verify(source, tmp_path / "out.xml", max_output=MAX_OUTPUT)

    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.xml", "upload.gpg"]


def test_decrypt_verify_reports_the_primary_key_of_a_signing_subkey(
    world: World, tmp_path: Path
) -> None:
    """A signature by a signing subkey yields the primary key's fingerprint."""
    home = world.lab.home("subkey-signer")
    primary = world.lab.new_key(home, "Subkey Signer")
    world.lab.gpg(home, "--quick-add-key", primary, "ed25519", "sign", "1y")
    world.lab.copy_public(world.gateway.home, world.gateway_fingerprint, home)
    world.lab.copy_public(home, primary, world.gateway.home)
    message = world.lab.message(
        home, REPORT, recipient=world.gateway_fingerprint, signers=[primary]
    )

    _, verified = world.gateway.decrypt_verify_bytes(message, max_output=MAX_OUTPUT)

    assert verified.signer_fingerprint == primary
    assert verified.signing_subkey != primary


HOSTILE = [
    # no signature at all, only encryption to the gateway
    ("unsigned", SignatureError),
    # signed by a key the gateway has never seen (nothing is fetched)
    ("unknown key", KeyProblemError),
    # the sender's signature plus a second one by a stranger
    ("pinned and foreign signature", SignatureError),
    # signed in 2024 by a key that expired a day later
    ("expired key", KeyProblemError),
    # signed by a key whose revocation certificate the gateway imported
    ("revoked key", KeyProblemError),
    # properly signed, but encrypted to somebody else's key
    ("encrypted to another recipient", DecryptError),
    # encrypted with a passphrase, no public-key recipient at all
    ("symmetric only", DecryptError),
    # signed but sent in the clear
    ("signed, not encrypted", DecryptError),
    # a good message cut in half
    ("truncated", DecryptError),
    # bytes that are not OpenPGP at all
    ("garbage", DecryptError),
    # an empty upload
    ("empty", DecryptError),
    # 50 MB of zeros squeezed 1000:1, far above the 1 MiB cap
    ("compression bomb", OutputLimitError),
]


@pytest.mark.parametrize(("name", "error"), HOSTILE, ids=[n for n, _ in HOSTILE])
def test_decrypt_verify_rejects_hostile_messages(
    world: World,
    hostile: dict[str, HostileCase],
    tmp_path: Path,
    name: str,
    error: type[CryptoError],
) -> None:
    """Each hostile message raises its own error class and code, leaving no output."""
    case = hostile[name]
    source = tmp_path / "upload.gpg"
    source.write_bytes(case.message)
    target = tmp_path / "report.xml"

    with pytest.raises(error) as raised:
        world.gateway.decrypt_verify(source, target, max_output=MAX_OUTPUT)

    assert raised.value.code == case.code
    assert not target.exists()


def test_hostile_table_covers_every_helper_case(
    hostile: dict[str, HostileCase],
) -> None:
    """The table above names every case the shared helper builds."""
    assert sorted(hostile) == sorted(name for name, _ in HOSTILE)


def test_output_cap_applies_to_in_memory_decryption(world: World) -> None:
    """decrypt_verify_bytes refuses plaintext larger than its cap."""
    with pytest.raises(OutputLimitError) as raised:
        world.gateway.decrypt_verify_bytes(_accepted(world), max_output=100)

    assert raised.value.code == "PGP-OUTPUT-LIMIT"


def test_a_stuck_gpg_is_killed_at_the_deadline(world: World, tmp_path: Path) -> None:
    """A gpg process that outlives the timeout is killed and reported."""
    hasty = OpenPgp(world.gateway.home, timeout=0.001)
    source = tmp_path / "upload.gpg"
    source.write_bytes(_accepted(world))

    with pytest.raises(CryptoError) as raised:
        hasty.decrypt_verify(source, tmp_path / "out.xml", max_output=MAX_OUTPUT)

    assert raised.value.code == "PGP-TIMEOUT"


def test_sign_encrypt_round_trip(world: World, tmp_path: Path) -> None:
    """A file the gateway signs and encrypts decrypts and verifies for the partner."""
    source = tmp_path / "outbound.xml"
    source.write_bytes(REPORT)
    target = tmp_path / "outbound.xml.gpg"

    world.gateway.sign_encrypt(
        source, target, recipient=world.sender, signer=world.gateway_fingerprint
    )

    assert target.stat().st_mode & 0o777 == 0o600
    plain = world.lab.gpg(world.sender_home, "--decrypt", data=target.read_bytes())
    assert plain == REPORT


@pytest.mark.parametrize(
    ("size", "compressed"),
    [
        (4 * 1024, False),  # a weekly report for one municipality: not worth it
        (COMPRESS_FROM_BYTES, True),  # from the threshold on, gpg compresses
    ],
)
def test_only_larger_documents_are_compressed(
    world: World, tmp_path: Path, size: int, compressed: bool
) -> None:
    """Small documents go out uncompressed, large ones compressed; both decrypt."""
    source = tmp_path / "outbound.xml"
    source.write_bytes((b"<Record>R0000001</Record>\n" * size)[:size])
    target = tmp_path / "outbound.xml.gpg"

    world.gateway.sign_encrypt(
        source, target, recipient=world.sender, signer=world.gateway_fingerprint
    )

    packets = world.lab.gpg(world.sender_home, "--list-packets", str(target))
    assert (b"compressed packet" in packets) is compressed
    plain = world.lab.gpg(world.sender_home, "--decrypt", data=target.read_bytes())
    assert plain == source.read_bytes()


def test_sign_encrypt_refuses_an_unknown_recipient(
    world: World, tmp_path: Path
) -> None:
    """Encrypting to a key the ring lacks raises a key problem and writes nothing."""
    source = tmp_path / "outbound.xml"
    source.write_bytes(REPORT)
    target = tmp_path / "outbound.xml.gpg"

    with pytest.raises(KeyProblemError) as raised:
        world.gateway.sign_encrypt(
            source, target, recipient="0" * 40, signer=world.gateway_fingerprint
        )

    assert raised.value.code == "PGP-RECIPIENT-UNUSABLE"
    assert not target.exists()


def test_encrypt_sign_bytes_round_trip(world: World) -> None:
    """Bytes encrypted and signed by one side decrypt and verify on the other."""
    partner = OpenPgp(world.sender_home)
    try:
        message = partner.encrypt_sign_bytes(
            REPORT, recipient=world.gateway_fingerprint, signer=world.sender
        )
    finally:
        partner.close()

    plain, verified = world.gateway.decrypt_verify_bytes(message, max_output=MAX_OUTPUT)

    assert plain == REPORT
    assert verified.signer_fingerprint == world.sender


def test_sign_and_verify_round_trip(world: World) -> None:
    """An armored inline signature verifies and returns content and signer."""
    signed = world.gateway.sign(b"<Receipt/>", signer=world.gateway_fingerprint)

    content, signer = world.gateway.verify(signed)

    assert signed.startswith(b"-----BEGIN PGP MESSAGE-----")
    assert content == b"<Receipt/>"
    assert signer == world.gateway_fingerprint


@pytest.mark.parametrize(
    "operation",
    [
        # an inline signature, as on receipts and audit checkpoints
        lambda pgp, signer, recipient: pgp.sign(b"<Receipt/>", signer=signer),
        # a signed and encrypted message, as in the outbox
        lambda pgp, signer, recipient: pgp.encrypt_sign_bytes(
            b"<Report/>", recipient=recipient, signer=signer
        ),
    ],
    ids=["sign", "encrypt-sign"],
)
def test_signing_with_a_key_without_secret_fails_instead_of_substituting(
    world: World, operation: Any
) -> None:
    """A signer whose secret key is absent is an error, never another key."""
    with pytest.raises(KeyProblemError):
        operation(world.gateway, world.sender, world.gateway_fingerprint)


def test_verify_rejects_altered_content(world: World) -> None:
    """A signed message whose content was changed fails as a bad signature."""
    # Uncompressed, so that the content can be altered in place.
    signed = world.lab.gpg(
        world.gateway.home,
        "--compress-algo",
        "none",
        "--local-user",
        world.gateway_fingerprint,
        "--sign",
        data=b"<Receipt>accepted</Receipt>",
    )
    altered = signed.replace(b"accepted", b"rejected")

    with pytest.raises(SignatureError) as raised:
        world.gateway.verify(altered)

    assert raised.value.code == "PGP-BAD-SIGNATURE"


def test_verify_rejects_unsigned_data(world: World) -> None:
    """Data that is not a signed message is refused."""
    with pytest.raises(CryptoError):
        world.gateway.verify(b"just text")


def test_key_info_describes_usable_keys(world: World) -> None:
    """key_info reports capabilities, expiry and whether the secret is present."""
    own = world.gateway.key_info(world.gateway_fingerprint)
    partner = world.gateway.key_info(world.sender)

    assert own is not None
    assert partner is not None
    assert own.has_secret
    assert not partner.has_secret
    assert own.can_sign
    assert own.can_encrypt
    assert own.expires is None
    assert partner.expires is not None
    assert not (partner.expired or partner.revoked)
    assert partner.uids == ("Uitzender Noord",)


def test_key_info_sees_expired_and_revoked_keys(
    world: World, hostile: dict[str, HostileCase]
) -> None:
    """Keys the hostile helper made expired or revoked show up as such."""
    listing = world.lab.gpg(world.gateway.home, "--with-colons", "--list-keys")
    fingerprints = {
        line.split(":")[9]
        for line in listing.decode().splitlines()
        if line[:4] == "fpr:"
    }
    infos = [world.gateway.key_info(f) for f in sorted(fingerprints)]

    assert any(i is not None and i.expired and not i.can_sign for i in infos)
    assert any(i is not None and i.revoked and not i.can_sign for i in infos)


def test_key_info_of_an_absent_key_is_none(world: World) -> None:
    """A fingerprint the ring does not hold gives None."""
    assert world.gateway.key_info("0" * 40) is None


def test_import_and_export_round_trip(world: World, tmp_path: Path) -> None:
    """An exported public key imports elsewhere under the same fingerprint."""
    with OpenPgp(tmp_path / "elsewhere") as elsewhere:
        imported = elsewhere.import_keys(world.gateway.export_public(world.sender))

    assert imported == [world.sender]


def test_import_of_garbage_raises(world: World) -> None:
    """Data without keys is refused with a key problem."""
    with pytest.raises(KeyProblemError) as raised:
        world.gateway.import_keys(b"not a key")

    assert raised.value.code == "PGP-NO-KEYS"


def test_export_of_an_absent_key_raises(world: World) -> None:
    """Exporting a key the ring does not hold is a key problem."""
    with pytest.raises(KeyProblemError):
        world.gateway.export_public("0" * 40)


@pytest.mark.parametrize(
    "uid",
    [
        # a newline would start a new line of gpg's key parameters
        "Name\nKey-Type: rsa",
        # nothing but blanks
        "   ",
    ],
)
def test_generate_key_refuses_odd_user_ids(world: World, uid: str) -> None:
    """User ids that could smuggle key parameters are refused."""
    with pytest.raises(CryptoError):
        world.gateway.generate_key(uid)


def test_long_home_paths_work_and_close_stops_the_agent(tmp_path: Path) -> None:
    """A home deeper than a socket path allows still works; close stops its agent."""
    home = tmp_path / ("deep-" * 20) / "gnupg"
    assert len(str(home)) > 108

    pgp = OpenPgp(home)
    fingerprint = pgp.generate_key("Deep <deep@loonbrug.test>")
    signed = pgp.sign(b"data", signer=fingerprint)
    socket = gpg_home(home) / "S.gpg-agent"
    assert socket.exists()
    pgp.close()

    assert _eventually(lambda: not socket.exists())
    assert pgp.verify(signed)[1] == fingerprint
    pgp.close()


def _eventually(condition: object, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.02)
    return False


def test_no_agent_outlives_a_closed_home(tmp_path: Path) -> None:
    """After close, gpgconf finds no running agent for the home."""
    pgp = OpenPgp(tmp_path / "home")
    pgp.sign(b"x", signer=pgp.generate_key("Agent Check"))
    pgp.close()

    done = subprocess.run(
        ["gpg-connect-agent", "--homedir", str(pgp.gpg_home), "--no-autostart", "/bye"],
        capture_output=True,
        check=False,
    )

    assert done.returncode != 0 or b"no gpg-agent running" in done.stderr


def test_runner_status_channel_holds_only_status_lines(
    world: World, tmp_path: Path
) -> None:
    """gpg run directly reports its verdict on stderr as status lines only."""
    source = tmp_path / "upload.gpg"
    source.write_bytes(_accepted(world))
    runner = _Runner(world.gateway.gpg_home, _gpg_env(world.gateway.home), 60.0)

    result = runner.run(["--output", "-", "--decrypt", "--", str(source)])

    assert result.returncode == 0
    assert not result.timed_out
    assert result.output == REPORT
    keywords = [keyword for keyword, _ in result.statuses.lines]
    assert {"DECRYPTION_OKAY", "GOODSIG", "VALIDSIG"} <= set(keywords)
    assert result.statuses.first("VALIDSIG")[9] == world.sender


def test_runner_reports_a_deadline_it_enforced(world: World) -> None:
    """A gpg fed on stdin that outlives the deadline is killed and marked."""
    runner = _Runner(world.gateway.gpg_home, _gpg_env(world.gateway.home), 0.001)

    result = runner.run(["--output", "-", "--decrypt"], data=_accepted(world))

    assert result.timed_out


def test_decrypt_verify_takes_a_source_named_like_an_option(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source whose name starts with a dash is read as a file, not an option."""
    source = tmp_path / "--list-keys"
    source.write_bytes(_accepted(world))
    target = tmp_path / "out.xml"
    monkeypatch.chdir(tmp_path)

    world.gateway.decrypt_verify(Path(source.name), target, max_output=MAX_OUTPUT)

    assert target.read_bytes() == REPORT


def test_file_operations_leave_no_descriptor_open(world: World, tmp_path: Path) -> None:
    """The output file opened for gpg is closed again, on success and failure."""
    source = tmp_path / "upload.gpg"
    source.write_bytes(_accepted(world))
    garbage = tmp_path / "garbage.gpg"
    garbage.write_bytes(b"not OpenPGP at all")
    before = len(os.listdir("/proc/self/fd"))

    for _ in range(3):
        world.gateway.decrypt_verify(source, tmp_path / "o.xml", max_output=MAX_OUTPUT)
        with pytest.raises(DecryptError):
            world.gateway.decrypt_verify(
                garbage, tmp_path / "g.xml", max_output=MAX_OUTPUT
            )

    assert len(os.listdir("/proc/self/fd")) == before
    assert not (tmp_path / "g.xml").exists()


def _gpg_env(home: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LC_ALL": "C",
        "HOME": str(home),
    }
