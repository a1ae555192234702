"""Crash safety: kill the daemon anywhere, restart it, and nothing is lost or doubled.

The invariants checked after every crash and restart: every upload is either
delivered exactly once to each municipality it concerns (one file each, under
its deterministic name, none under another) or rejected with a receipt; the
work folder is empty; the ledger has finished every upload and agrees with the
files in the outboxes.
"""

from __future__ import annotations

import random
import re
import signal
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gateway.config import Config
from gateway.demo import create_sandbox
from gateway.ledger import Ledger, Outcome, State
from gateway.pipeline import CRASH_ENV, CRASH_POINTS, CRASH_STATUS
from gateway.route import outbox_name, receipt_name
from tests.support.messages import (
    DaemonProcess,
    await_condition,
    drop,
    read_receipt,
    report_for,
    seal,
    stop_partner_agents,
    tune_config,
)

NOORD = "uitzender-noord"
ZUID = "flexwerk-zuid"
OUTBOX_NAME = re.compile(r"^[0-9a-f-]{36}\.GM[0-9]{4}\.xml\.gpg$")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Config]]:
    """One sandbox for the module; each case uses its own uploads."""
    sandbox = create_sandbox(tmp_path_factory.mktemp("crash") / "demo")
    config = tune_config(sandbox.config_path)
    yield sandbox.folder, config
    stop_partner_agents(sandbox.folder, config)


def check_invariants(config: Config) -> None:
    """Every upload finished once; outboxes hold exactly the ledger's deliveries."""
    spool = config.gateway.spool
    assert list((spool / "work").iterdir()) == []
    ledger = Ledger(config.ledger_path)
    try:
        uploads = ledger.uploads()
        deliveries = ledger.deliveries()
    finally:
        ledger.close()
    assert {u.state for u in uploads} <= {State.DONE, State.VANISHED}
    expected: set[tuple[str, str]] = set()
    for upload in uploads:
        if upload.state == State.VANISHED:
            continue
        receipt = spool / "receipts" / upload.account / receipt_name(upload.file_name)
        assert receipt.exists(), upload
        kept = "archive" if upload.outcome == Outcome.ACCEPTED else "rejected"
        stored = (
            spool / kept / upload.account / f"{upload.upload_id}.{upload.file_name}"
        )
        assert stored.exists(), upload
    for delivery in deliveries:
        expected.add((delivery.account, delivery.file_name))
    found = {
        (folder.name, path.name)
        for folder in (spool / "outbox").iterdir()
        for path in folder.iterdir()
    }
    assert found == expected
    assert all(OUTBOX_NAME.match(name) for _, name in found)


def _check_delivered_once(
    folder: Path, config: Config, account: str, name: str
) -> None:
    receipt = read_receipt(folder, config, account, name)
    assert receipt.outcome == "accepted", receipt.xml
    for code in receipt.accepted:
        municipality = config.municipality_by_code(code)
        assert municipality is not None
        outbox = config.gateway.spool / "outbox" / municipality.id
        mine = [p for p in outbox.iterdir() if (receipt.message_id or "") in p.name]
        assert [p.name for p in mine] == [outbox_name(receipt.message_id or "", code)]


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_crash_at_point_then_restart_delivers_once(
    world: tuple[Path, Config], tmp_path: Path, point: str
) -> None:
    """A daemon that dies at a named point finishes the upload after a restart."""
    folder, config = world
    name = f"crash-{point}.xml.gpg"
    report = report_for(config, NOORD, seed=100 + CRASH_POINTS.index(point))
    sealed = seal(folder, config, NOORD, report)
    dying = DaemonProcess(config.path, tmp_path / "dying.log", **{CRASH_ENV: point})
    dying.await_log("daemon.started")

    drop(config, NOORD, name, sealed)

    assert dying.await_exit() == CRASH_STATUS
    restarted = DaemonProcess(config.path, tmp_path / "restarted.log")
    try:
        _check_delivered_once(folder, config, NOORD, name)
        await_condition(
            lambda: not list((config.gateway.spool / "work").iterdir()),
            what="work folder emptied",
        )
    finally:
        assert restarted.stop() == 0
    check_invariants(config)


def _sealed_load(folder: Path, config: Config, count: int) -> list[tuple[str, bytes]]:
    """*count* uploads from both intermediaries, each with its own message id."""

    def make(n: int) -> tuple[str, bytes]:
        account = (NOORD, ZUID)[n % 2]
        report = report_for(
            config,
            account,
            seed=n % 5,
            records=8,
            message_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:test:load:{n}")),
        )
        return account, seal(folder, config, account, report)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(make, range(count)))


@pytest.mark.slow
def test_random_kills_under_load_lose_and_double_nothing(
    world: tuple[Path, Config], tmp_path: Path
) -> None:
    """SIGKILL at random moments while 200 uploads flow; all end exactly once."""
    folder, config = world
    uploads = _sealed_load(folder, config, 200)
    rng = random.Random(20260302)
    names = [f"load-{n:03d}.xml.gpg" for n in range(len(uploads))]
    pending = list(zip(names, uploads, strict=True))

    for round_number in range(6):
        daemon = DaemonProcess(config.path, tmp_path / f"round-{round_number}.log")
        daemon.await_log("daemon.started")
        for name, (account, data) in pending[:40]:
            drop(config, account, name, data)
        del pending[:40]
        # The point of this test is a kill at an unpredictable moment.
        with pytest.raises(TimeoutError):
            _wait_for_exit(daemon, rng.uniform(0.2, 1.5))
        daemon.signal(signal.SIGKILL)
        daemon.await_exit()

    final = DaemonProcess(config.path, tmp_path / "final.log")
    try:
        receipts = config.gateway.spool / "receipts"
        await_condition(
            lambda: all(
                (receipts / account / receipt_name(name)).exists()
                for name, (account, _) in zip(names, uploads, strict=True)
            ),
            timeout=120,
            what="every receipt",
        )
        await_condition(
            lambda: not list((config.gateway.spool / "work").iterdir()),
            what="work folder emptied",
        )
    finally:
        assert final.stop() == 0
    check_invariants(config)
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(
            pool.map(
                lambda item: read_receipt(folder, config, item[1][0], item[0]).outcome,
                zip(names, uploads, strict=True),
            )
        )
    assert outcomes == ["accepted"] * len(uploads)


def _wait_for_exit(daemon: DaemonProcess, seconds: float) -> None:
    """Raise TimeoutError unless the daemon ends within *seconds*."""
    try:
        daemon.process.wait(seconds)
    except subprocess.TimeoutExpired as exc:
        raise TimeoutError from exc
