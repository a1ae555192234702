"""End to end: the real daemon's trail verifies, answers and hides every BSN."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.audit_tools import chain
from gateway.cli import main
from gateway.config import Config
from gateway.demo import Sandbox, create_sandbox
from gateway.route import receipt_name
from tests.support.messages import (
    await_path,
    drop,
    report_for,
    running_daemon,
    seal,
    stop_partner_agents,
    tune_config,
)

NOORD = "uitzender-noord"
BSN_ELEMENT = re.compile(rb"<(?:\w+:)?Bsn>([0-9]{9})</")


@pytest.fixture(scope="module")
def processed(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Sandbox, Config, bytes]]:
    """A sandbox whose daemon received, routed and receipted one report."""
    made = create_sandbox(tmp_path_factory.mktemp("audit-e2e") / "demo")
    config = tune_config(made.config_path)
    report = report_for(config, NOORD, seed=7, records=15)
    with running_daemon(config):
        drop(config, NOORD, "week.xml.gpg", seal(made.folder, config, NOORD, report))
        await_path(
            config.gateway.spool / "receipts" / NOORD / receipt_name("week.xml.gpg")
        )
    yield made, config, report
    stop_partner_agents(made.folder, config)


@pytest.fixture(scope="module")
def rejected(processed: tuple[Sandbox, Config, bytes]) -> bytes:
    """The same sandbox's daemon run again, rejecting a report with a wrong BSN."""
    made, config, _ = processed
    report = report_for(config, NOORD, seed=8, records=6, inject="BSN-ELEVEN-TEST")
    with running_daemon(config):
        drop(config, NOORD, "wrong.xml.gpg", seal(made.folder, config, NOORD, report))
        await_path(
            config.gateway.spool / "receipts" / NOORD / receipt_name("wrong.xml.gpg")
        )
    return report


def test_the_daemons_trail_verifies(
    processed: tuple[Sandbox, Config, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    """After a run and a clean stop, verify exits 0 with a final checkpoint."""
    _, config, _ = processed

    status = main(["audit", "verify", "-c", str(config.path)])

    out = capsys.readouterr().out
    assert status == 0, out
    assert "audit trail intact" in out


def test_query_by_bsn_lists_the_exchange(
    processed: tuple[Sandbox, Config, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    """A BSN from the sent report finds its exchange: sender and municipality."""
    _, config, report = processed
    bsn = BSN_ELEMENT.findall(report)[0].decode()

    status = main(["audit", "query", "-c", str(config.path), "--bsn", bsn])

    out = capsys.readouterr().out
    assert status == 0
    assert NOORD in out
    assert any(m in out for m in config.municipalities)


def test_query_by_bsn_finds_a_rejected_report(
    processed: tuple[Sandbox, Config, bytes],
    rejected: bytes,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A person in a rejected report learns it came in and reached no one."""
    _, config, _ = processed
    bsn = BSN_ELEMENT.findall(rejected)[-1].decode()

    status = main(["audit", "query", "-c", str(config.path), "--bsn", bsn, "--json"])

    rows = json.loads(capsys.readouterr().out)
    assert status == 0
    assert [(r["intermediary"], r["outcome"], r["municipality"]) for r in rows] == [
        (NOORD, "rejected", "")
    ]
    assert rows[0]["upload_file"] == "wrong.xml.gpg"


def test_no_bsn_of_the_report_is_anywhere_in_the_sandbox(
    processed: tuple[Sandbox, Config, bytes], rejected: bytes
) -> None:
    """No file of the sandbox, ledger and trail included, holds a BSN in clear."""
    made, _, report = processed
    bsns = set(BSN_ELEMENT.findall(report)) | set(BSN_ELEMENT.findall(rejected))

    found = [
        str(path.relative_to(made.folder))
        for path in made.folder.rglob("*")
        if path.is_file()
        and not path.is_symlink()
        and any(bsn in path.read_bytes() for bsn in bsns)
    ]

    assert found == []


def test_tampering_with_the_daemons_trail_is_caught(
    processed: tuple[Sandbox, Config, bytes],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A middle line with one character changed makes verify exit 1 naming it."""
    _, config, _ = processed
    path = chain.trail_files(config.audit.dir)[-1]
    original = path.read_bytes()
    lines = original.splitlines(keepends=True)
    middle = len(lines) // 2
    lines[middle] = lines[middle].replace(b'"seq":', b'"seq":1', 1)
    path.write_bytes(b"".join(lines))
    try:
        status = main(["audit", "verify", "-c", str(config.path)])
    finally:
        path.write_bytes(original)

    out = capsys.readouterr().out
    assert status == 1
    assert f"{path.name} line {middle + 1}:" in out
