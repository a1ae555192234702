"""The guided demo run, end to end with the real daemon, SFTP and gpg."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.demo import create_sandbox
from gateway.demorun import run_demo
from tests.support.sftp import free_port


@pytest.mark.slow
def test_demo_once_reaches_every_expected_outcome(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """demo --once sends, receives both receipts, fetches, stops and exits 0."""
    folder = tmp_path / "demo"
    create_sandbox(folder, port=free_port())

    status = run_demo(folder, once=True)

    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "WRONG" not in printed
    assert "receipt says accepted" in printed
    assert "receipt says rejected" in printed
    # No BSN (nine digits) or other personal data in what the demo prints.
    assert not re.search(r"(?<![0-9A-F])[0-9]{9}(?![0-9A-F])", printed)
    for municipality in ("rotterdam", "utrecht", "groningen"):
        assert re.search(rf"ok +{municipality} .* fetched 1 report", printed)
    # The partners' plaintext never stays in the sandbox: only encrypted files
    # and the gateway's own state are left there.
    plaintext = [p for p in folder.rglob("*.xml") if p.is_file()]
    assert plaintext == []
