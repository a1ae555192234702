"""``loonbrug send`` and ``loonbrug fetch`` against the SFTP service of a sandbox.

Most tests play the gateway's part (reading the upload, writing a signed
receipt, placing a signed outbox file) with the sandbox's real keys; the last
runs both commands through the real daemon.
"""

from __future__ import annotations

import dataclasses
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway import cli
from gateway.audit import MemoryAudit
from gateway.config import Config, load
from gateway.daemon import Daemon
from gateway.demo import Sandbox, create_sandbox
from gateway.pgp import OpenPgp, gpg_home, stop_agent
from gateway.route.receipt import ReceiptFacts, receipt_xml
from gateway.sample import SampleSender, generate_report
from gateway.sftp.partner import PartnerConfig, load_partner
from gateway.sftp.service import SftpService
from tests.support.sftp import free_port, wait_for

NOORD = "uitzender-noord"


@dataclass
class Gateway:
    """A sandbox with its SFTP service running."""

    sandbox: Sandbox
    config: Config
    service: SftpService
    audit: MemoryAudit

    def partner_file(self, account: str) -> Path:
        """The partner.toml of *account*."""
        return self.sandbox.partner_folder(account) / "partner.toml"

    def pgp(self) -> OpenPgp:
        """The gateway's own OpenPGP home."""
        return OpenPgp(self.config.gateway.gnupg_home)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """One sandbox (real OpenPGP and SSH keys) and its running SFTP service."""
    folder = tmp_path_factory.mktemp("partners") / "sandbox"
    sandbox = create_sandbox(folder, port=free_port())
    config = load(sandbox.config_path)
    audit = MemoryAudit()
    service = SftpService(config, audit)
    service.start()
    try:
        yield Gateway(sandbox, config, service, audit)
    finally:
        service.stop()


def _answer_uploads(gateway: Gateway, outcome: str, stop: threading.Event) -> None:
    """Play the daemon: verify each upload's signer and write a signed receipt."""
    inbox = gateway.config.gateway.spool / "inbox" / NOORD
    receipts = gateway.config.gateway.spool / "receipts" / NOORD
    expected = gateway.config.intermediaries[NOORD].signing_keys
    with gateway.pgp() as pgp:
        while not stop.is_set():
            for upload in [p for p in inbox.iterdir() if not p.name.startswith(".")]:
                _, verified = pgp.decrypt_verify_bytes(
                    upload.read_bytes(), max_output=10_000_000
                )
                assert verified.signer_fingerprint in expected
                facts = ReceiptFacts(
                    outcome=outcome,
                    upload_name=upload.name,
                    upload_sha256="0" * 64,
                    upload_size=upload.stat().st_size,
                    received_at="2026-01-05T10:00:00Z",
                    accepted={"GM0599": 3} if outcome == "accepted" else {},
                )
                signed = pgp.sign(
                    receipt_xml(facts), signer=gateway.config.gateway.key_fingerprint
                )
                (receipts / f"{upload.name}.receipt.asc").write_bytes(signed)
                upload.unlink()
            stop.wait(0.1)


@pytest.mark.parametrize(("outcome", "status"), [("accepted", 0), ("rejected", 1)])
def test_send_waits_for_the_receipt(
    gateway: Gateway,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    outcome: str,
    status: int,
) -> None:
    """send uploads, waits for the verified receipt, and exits 0 only if accepted."""
    report = tmp_path / "week.xml"
    report.write_text("<WageReport/>")
    stop = threading.Event()
    player = threading.Thread(target=_answer_uploads, args=(gateway, outcome, stop))
    player.start()
    try:
        result = cli.main(
            ["send", "--partner", str(gateway.partner_file(NOORD)), str(report)]
        )
    finally:
        stop.set()
        player.join()

    assert result == status
    printed = capsys.readouterr().out
    assert f"receipt: {outcome}" in printed
    receipts = gateway.config.gateway.spool / "receipts" / NOORD
    assert list(receipts.iterdir()) == []


def test_send_without_waiting(gateway: Gateway, tmp_path: Path) -> None:
    """send --no-wait leaves one complete encrypted upload in the inbox."""
    report = tmp_path / "week.xml"
    report.write_text("<WageReport/>")
    inbox = gateway.config.gateway.spool / "inbox" / NOORD

    result = cli.main(
        [
            "send",
            "--no-wait",
            "--partner",
            str(gateway.partner_file(NOORD)),
            str(report),
        ]
    )

    assert result == 0
    [upload] = [p for p in inbox.iterdir() if not p.name.startswith(".")]
    assert upload.name.endswith("-week.xml.gpg")
    assert b"<WageReport/>" not in upload.read_bytes()
    upload.unlink()


def _place_delivery(gateway: Gateway, name: str, signer_home: Path | None) -> None:
    """An outbox file for Rotterdam, signed by the gateway or by *signer_home*."""
    rotterdam = gateway.config.municipalities["rotterdam"].encryption_key
    outbox = gateway.config.gateway.spool / "outbox" / "rotterdam"
    with gateway.pgp() as pgp:
        signer = gateway.config.gateway.key_fingerprint
        if signer_home is None:
            data = pgp.encrypt_sign_bytes(
                b"<MunicipalityReport/>", recipient=rotterdam, signer=signer
            )
        else:
            public = pgp.export_public(rotterdam)
            with OpenPgp(signer_home) as forger:
                forger.import_keys(public)
                own = load_partner(gateway.partner_file(NOORD)).fingerprint
                data = forger.encrypt_sign_bytes(
                    b"<MunicipalityReport/>", recipient=rotterdam, signer=own
                )
    (outbox / name).write_bytes(data)


def test_fetch_writes_verified_files_then_removes_them(
    gateway: Gateway, tmp_path: Path
) -> None:
    """fetch writes the decrypted report and only then removes it from the outbox."""
    name = "8c1e.GM0599.xml.gpg"
    _place_delivery(gateway, name, None)
    target = tmp_path / "fetched"

    result = cli.main(
        ["fetch", "--partner", str(gateway.partner_file("rotterdam")), str(target)]
    )

    assert result == 0
    assert (target / "8c1e.GM0599.xml").read_bytes() == b"<MunicipalityReport/>"
    assert sorted(p.name for p in target.iterdir()) == ["8c1e.GM0599.xml"]
    assert list((gateway.config.gateway.spool / "outbox" / "rotterdam").iterdir()) == []
    assert wait_for(
        lambda: (
            [e["event"] for e in gateway.audit.events if "delivery" in str(e)]
            == ["delivery.downloaded", "delivery.removed"]
        )
    )


def test_fetch_leaves_a_file_not_signed_by_the_gateway(
    gateway: Gateway, tmp_path: Path
) -> None:
    """A delivery signed by anyone but the gateway is not written and stays put."""
    name = "forged.GM0599.xml.gpg"
    _place_delivery(gateway, name, gateway.sandbox.partner_gnupg(NOORD))
    target = tmp_path / "fetched"

    result = cli.main(
        ["fetch", "--partner", str(gateway.partner_file("rotterdam")), str(target)]
    )

    assert result == 1
    assert list(target.iterdir()) == []
    outbox = gateway.config.gateway.spool / "outbox" / "rotterdam"
    assert [p.name for p in outbox.iterdir()] == [name]
    (outbox / name).unlink()


def test_partner_file_round_trips(gateway: Gateway) -> None:
    """The partner.toml the sandbox wrote loads with absolute paths."""
    partner = load_partner(gateway.partner_file(NOORD))

    assert partner.port == gateway.service.port
    assert partner.ssh_key.is_file()
    assert partner.gateway_fingerprint == gateway.config.gateway.key_fingerprint
    assert dataclasses.replace(partner) == partner


@pytest.mark.slow
def test_send_and_fetch_through_the_daemon(tmp_path: Path) -> None:
    """send gets an accepted receipt from the real daemon; fetch gets the reports."""
    sandbox = create_sandbox(tmp_path / "sandbox", port=free_port())
    config = load(sandbox.config_path)
    intermediary = config.intermediaries[NOORD]
    report = tmp_path / "week.xml"
    report.write_bytes(
        generate_report(
            records=9,
            seed=5,
            sender=SampleSender.from_intermediary(intermediary),
            municipalities=sorted(intermediary.municipalities),
        )
    )
    partners = sandbox.folder / "partners"
    daemon = Daemon(config)
    daemon.start()
    try:
        sent = cli.main(
            ["send", "--partner", str(partners / NOORD / "partner.toml"), str(report)]
        )
        fetched = [
            cli.main(
                [
                    "fetch",
                    "--partner",
                    str(partners / account / "partner.toml"),
                    str(tmp_path / "fetched" / account),
                ]
            )
            for account in sandbox.municipalities
        ]
    finally:
        daemon.stop()
        stop_agent(config.gateway.gnupg_home)

    assert sent == 0
    assert fetched == [0, 0, 0]
    reports = list((tmp_path / "fetched").glob("*/*.xml"))
    assert sum(p.read_text().count("<Record") for p in reports) >= 9


def _stock_sftp(partner: PartnerConfig, commands: list[str], cwd: Path) -> str:
    """Run the stock sftp client with the partner's own key and pinned host key."""
    batch = cwd / "batch"
    batch.write_text("\n".join(commands) + "\n")
    result = subprocess.run(
        [
            "sftp",
            "-b",
            str(batch),
            "-F",
            "/dev/null",
            "-i",
            str(partner.ssh_key),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            f"UserKnownHostsFile={partner.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-P",
            str(partner.port),
            f"{partner.account}@{partner.host}",
        ],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=True,
    )
    return result.stdout


def _gpg(home: Path, *arguments: str, cwd: Path) -> str:
    """Run the gpg command line in a partner's home."""
    result = subprocess.run(
        ["gpg", "--batch", "--homedir", str(gpg_home(home)), *arguments],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=True,
    )
    return result.stdout + result.stderr


@pytest.mark.slow
def test_stock_tools_against_the_running_daemon(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """gpg and the stock sftp client alone: upload, receipt, delivery.

    The periodic rescan is put out of reach, so the upload must reach the
    daemon through the watcher's event for the finished upload.
    """
    sandbox = create_sandbox(tmp_path / "sandbox", port=free_port())
    text = sandbox.config_path.read_text()
    sandbox.config_path.write_text(
        text.replace("[gateway]\n", "[gateway]\nrescan_seconds = 3600\n", 1)
    )
    config = load(sandbox.config_path)
    assert config.gateway.rescan_seconds == 3600
    noord = load_partner(sandbox.partner_folder(NOORD) / "partner.toml")
    rotterdam = load_partner(sandbox.partner_folder("rotterdam") / "partner.toml")
    for home in (config.gateway.gnupg_home, noord.gnupg_home, rotterdam.gnupg_home):
        request.addfinalizer(lambda home=home: stop_agent(home))
    report = tmp_path / "week.xml"
    report.write_bytes(
        generate_report(
            records=6,
            seed=3,
            sender=SampleSender.from_intermediary(config.intermediaries[NOORD]),
            municipalities=["GM0599"],
        )
    )
    _gpg(
        noord.gnupg_home,
        "--trust-model",
        "always",
        "--local-user",
        noord.fingerprint,
        "--recipient",
        noord.gateway_fingerprint,
        "--sign",
        "--encrypt",
        "-o",
        "week.xml.gpg",
        "week.xml",
        cwd=tmp_path,
    )
    receipts = config.gateway.spool / "receipts" / NOORD
    daemon = Daemon(config)
    daemon.start()
    try:
        _stock_sftp(noord, ["put week.xml.gpg /inbox/"], tmp_path)
        assert wait_for(lambda: any(receipts.iterdir()), timeout=20)
        _stock_sftp(noord, ["get /receipts/week.xml.gpg.receipt.asc"], tmp_path)
        listing = _stock_sftp(rotterdam, ["ls /outbox", "get /outbox/*"], tmp_path)
    finally:
        daemon.stop()

    receipt = _gpg(
        noord.gnupg_home, "--decrypt", "week.xml.gpg.receipt.asc", cwd=tmp_path
    )
    assert "<Outcome>accepted</Outcome>" in receipt
    assert "Good signature" in receipt
    [delivery] = [line.split("/")[-1].strip() for line in listing.splitlines()[1:2]]
    report_xml = _gpg(rotterdam.gnupg_home, "--decrypt", delivery, cwd=tmp_path)
    assert "MunicipalityReport" in report_xml
