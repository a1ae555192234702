"""Tests of the daemon: the whole gateway as it runs, with real signals."""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w

from gateway.config import Config
from gateway.demo import Sandbox, create_sandbox
from gateway.route import receipt_name
from tests.support.messages import (
    DaemonProcess,
    await_path,
    delivery_path,
    drop,
    open_signed,
    partner_home,
    read_receipt,
    report_for,
    running_daemon,
    seal,
    stop_partner_agents,
    tune_config,
)
from tests.support.pgp import GpgLab

NOORD = "uitzender-noord"
ZUID = "flexwerk-zuid"


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[tuple[Sandbox, Config]]:
    """A fresh demo sandbox tuned for tests (SFTP off, small plaintext cap)."""
    made = create_sandbox(tmp_path / "demo")
    config = tune_config(made.config_path)
    yield made, config
    stop_partner_agents(made.folder, config)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[GpgLab]:
    """Plain gpg for making keys and hostile messages; its agents stopped after."""
    made = GpgLab(tmp_path / "lab")
    yield made
    made.close()


@pytest.fixture
def daemon(sandbox: tuple[Sandbox, Config], tmp_path: Path) -> Iterator[DaemonProcess]:
    """``loonbrug run`` on the sandbox, started and awaited."""
    made, _ = sandbox
    process = DaemonProcess(made.config_path, tmp_path / "daemon.log")
    process.await_log("daemon.started")
    yield process
    process.stop()


def test_done_when_plain_gpg_upload_gets_receipt_and_deliveries(
    sandbox: tuple[Sandbox, Config], daemon: DaemonProcess
) -> None:
    """A report sealed with plain gpg comes out as a receipt and one file each."""
    made, config = sandbox
    report = report_for(config, NOORD, seed=1, records=20)

    drop(config, NOORD, "week.xml.gpg", seal(made.folder, config, NOORD, report))

    receipt = read_receipt(made.folder, config, NOORD, "week.xml.gpg")
    assert receipt.outcome == "accepted"
    assert receipt.signer == config.gateway.key_fingerprint
    for code in receipt.accepted:
        municipality = config.municipality_by_code(code)
        assert municipality is not None
        path = delivery_path(config, receipt.message_id or "", code)
        opened = open_signed(partner_home(made.folder, municipality.id), path)
        assert opened.signer == config.gateway.key_fingerprint
    assert sorted(receipt.accepted) == sorted(config.municipality_codes)


def test_uploads_waiting_at_start_are_processed(
    sandbox: tuple[Sandbox, Config], tmp_path: Path
) -> None:
    """Files that arrived while the daemon was down are found by its first scan."""
    made, config = sandbox
    report = report_for(config, ZUID, seed=2)
    waiting = drop(
        config, ZUID, "waiting.xml.gpg", seal(made.folder, config, ZUID, report)
    )
    an_hour_ago = time.time() - 3600
    os.utime(waiting, (an_hour_ago, an_hour_ago))

    process = DaemonProcess(made.config_path, tmp_path / "daemon.log")
    try:
        receipt = read_receipt(made.folder, config, ZUID, "waiting.xml.gpg")
    finally:
        process.stop()

    assert receipt.outcome == "accepted"


def test_second_instance_exits_with_status_2(
    sandbox: tuple[Sandbox, Config], daemon: DaemonProcess
) -> None:
    """Only one daemon may run on a state folder; a second says so and exits 2."""
    made, _ = sandbox

    second = subprocess.run(
        [sys.executable, "-m", "gateway", "run", "-c", str(made.config_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert second.returncode == 2
    assert "another loonbrug daemon is running" in second.stderr


def test_failed_start_reports_and_releases_the_lock(
    sandbox: tuple[Sandbox, Config],
) -> None:
    """A port already taken stops the start with status 2 and frees the lock."""
    made, _ = sandbox
    data = tomllib.loads(made.config_path.read_text(encoding="utf-8"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        data["sftp"] = {"enabled": True, "port": taken.getsockname()[1]}
        made.config_path.write_text(tomli_w.dumps(data), encoding="utf-8")

        failed = subprocess.run(
            [sys.executable, "-m", "gateway", "run", "-c", str(made.config_path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert failed.returncode == 2
    assert failed.stderr.splitlines()[-1].startswith("loonbrug: ")
    with (made.folder / "state" / "loonbrug.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_sigterm_stops_cleanly(daemon: DaemonProcess) -> None:
    """SIGTERM lets the daemon finish and exit 0, logging that it stopped."""
    daemon.signal(signal.SIGTERM)

    assert daemon.await_exit() == 0
    assert '"daemon.stopped"' in daemon.log_text()


def _add_intermediary(made: Sandbox, config: Config, lab: GpgLab, account: str) -> str:
    """Give a new intermediary a key and a table in the configuration file."""
    home = partner_home(made.folder, account)
    home.mkdir(mode=0o700, parents=True)
    fingerprint = lab.new_key(home, f"{account} payroll")
    lab.copy_public(home, fingerprint, config.gateway.gnupg_home)
    lab.copy_public(config.gateway.gnupg_home, config.gateway.key_fingerprint, home)
    data = tomllib.loads(made.config_path.read_text(encoding="utf-8"))
    data["intermediary"].append(
        {
            "id": account,
            "name": "Uitzendbureau Oost B.V.",
            "kvk": "12345678",
            "loonheffingennummer": "123456782L01",
            "signing_keys": [fingerprint],
            "municipalities": ["GM0599"],
        }
    )
    made.config_path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return fingerprint


def test_sighup_adds_an_intermediary_without_restart(
    sandbox: tuple[Sandbox, Config], daemon: DaemonProcess, lab: GpgLab
) -> None:
    """After SIGHUP a new intermediary's inbox exists and its upload is routed."""
    made, config = sandbox
    _add_intermediary(made, config, lab, "uitzend-oost")

    daemon.signal(signal.SIGHUP)
    daemon.await_log("config.reloaded")

    fresh = tune_config(made.config_path)
    report = report_for(fresh, "uitzend-oost", seed=3)
    drop(
        fresh,
        "uitzend-oost",
        "oost.xml.gpg",
        seal(made.folder, fresh, "uitzend-oost", report),
    )
    receipt = read_receipt(made.folder, fresh, "uitzend-oost", "oost.xml.gpg")
    assert receipt.outcome == "accepted", receipt.xml
    assert receipt.accepted == {"GM0599": 12}


def test_bad_configuration_on_sighup_keeps_the_old_one(
    sandbox: tuple[Sandbox, Config], daemon: DaemonProcess
) -> None:
    """A broken file is refused with a log line; the daemon carries on."""
    made, config = sandbox
    good = made.config_path.read_text(encoding="utf-8")
    made.config_path.write_text(good + "\n[gateway]\nworkers = 'many'\n", "utf-8")

    daemon.signal(signal.SIGHUP)
    daemon.await_log("config.reload_refused")

    made.config_path.write_text(good, "utf-8")
    report = report_for(config, ZUID, seed=4)
    drop(config, ZUID, "after.xml.gpg", seal(made.folder, config, ZUID, report))
    assert (
        read_receipt(made.folder, config, ZUID, "after.xml.gpg").outcome == "accepted"
    )


# Why each message must be refused, by the name GpgLab.hostile_cases gives it,
# with the finding code its receipt must carry.
OPENPGP_CASES = {
    # Anyone can encrypt to the gateway's public key; only a signature says who.
    "unsigned": "PGP-UNSIGNED",
    # A key the gateway has never seen cannot vouch for any intermediary.
    "unknown key": "PGP-UNKNOWN-KEY",
    # A second signature would let a stranger ride along with a pinned one.
    "pinned and foreign signature": "PGP-MULTIPLE-SIGNATURES",
    # An expired key must not sign this week's wages.
    "expired key": "PGP-KEY-EXPIRED",
    # A revoked key may be in an attacker's hands.
    "revoked key": "PGP-KEY-REVOKED",
    # Not for us: the gateway cannot (and must not try to) read it.
    "encrypted to another recipient": "PGP-NOT-FOR-US",
    # A shared passphrase authenticates no one.
    "symmetric only": "PGP-SYMMETRIC",
    # Wages in the clear on the wire: refused even though the signature is good.
    "signed, not encrypted": "PGP-NOT-ENCRYPTED",
    # An interrupted transfer must not be half-processed.
    "truncated": "PGP-MALFORMED",
    # Not OpenPGP at all.
    "garbage": "PGP-MALFORMED",
    # An empty file is no message.
    "empty": "PGP-MALFORMED",
    # 1000:1 compression must trip the plaintext cap, not fill the disk.
    "compression bomb": "PGP-OUTPUT-LIMIT",
}


def _own_cases(made: Sandbox, config: Config) -> dict[str, tuple[str, bytes, str]]:
    """Hostile uploads made from the sandbox's partners: (account, data, code)."""
    noord_report = report_for(config, NOORD, seed=40)
    zuid_report = report_for(config, ZUID, seed=41)
    replayed = seal(made.folder, config, ZUID, report_for(config, ZUID, seed=42))
    return {
        # Flexwerk Zuid's own valid key, but uploaded through Noord's account.
        "signed by another intermediary's key": (
            NOORD,
            seal(made.folder, config, ZUID, zuid_report),
            "PGP-SIGNER-NOT-PINNED",
        ),
        # Zuid signs a report whose header claims to come from Noord.
        "header sender not the uploader": (
            ZUID,
            seal(made.folder, config, ZUID, noord_report),
            "SENDER-MISMATCH",
        ),
        # Zuid may not send to Groningen (GM0014).
        "unauthorised municipality": (
            ZUID,
            seal(
                made.folder,
                config,
                ZUID,
                report_for(config, ZUID, seed=43, municipalities=["GM0599", "GM0014"]),
            ),
            "MUNICIPALITY-NOT-AUTHORISED",
        ),
        # Replayed: the exact bytes of an upload accepted just before.
        "replayed upload": (ZUID, replayed, "DUPLICATE-UPLOAD"),
    }


def test_hostile_uploads_get_specific_rejections_and_daemon_keeps_running(
    sandbox: tuple[Sandbox, Config], lab: GpgLab
) -> None:
    """Every hostile upload gets a rejection receipt with its own code."""
    made, config = sandbox
    cases = lab.hostile_cases(
        gateway_home=config.gateway.gnupg_home,
        gateway_fingerprint=config.gateway.key_fingerprint,
        sender_home=partner_home(made.folder, NOORD),
        sender_fingerprint=config.intermediaries[NOORD].signing_keys[0],
        plaintext=report_for(config, NOORD, seed=39),
    )
    assert {c.name: c.code for c in cases} == OPENPGP_CASES
    uploads = {c.name: (NOORD, c.message, c.code) for c in cases}
    own = _own_cases(made, config)
    uploads.update(own)

    with running_daemon(config):
        _, original, _ = own["replayed upload"]
        drop(config, ZUID, "original.xml.gpg", original)
        await_path(
            config.gateway.spool / "receipts" / ZUID / receipt_name("original.xml.gpg")
        )
        for n, (account, data, _) in enumerate(uploads.values()):
            drop(config, account, f"hostile-{n}.gpg", data)
        found = {
            name: read_receipt(made.folder, config, account, f"hostile-{n}.gpg")
            for n, (name, (account, _, _)) in enumerate(uploads.items())
        }
        after = report_for(config, NOORD, seed=44)
        drop(config, NOORD, "after.xml.gpg", seal(made.folder, config, NOORD, after))
        assert read_receipt(made.folder, config, NOORD, "after.xml.gpg").outcome == (
            "accepted"
        )

    for name, (_, _, code) in uploads.items():
        assert found[name].outcome == "rejected", name
        assert code in found[name].codes, (name, found[name].codes)
