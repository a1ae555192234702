"""Tests for systemd/loonbrug.service: a dedicated user and strict sandboxing."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parent.parent / "systemd" / "loonbrug.service"
MAX_EXPOSURE = 2.0


def _settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text("utf-8").splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed, so the exposure cannot be measured",
)
def test_exposure_is_at_most_two() -> None:
    """systemd-analyze rates the unit's exposure at 2.0 or lower."""
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", done.stdout)
    assert match is not None, done.stdout + done.stderr
    assert float(match[1]) <= MAX_EXPOSURE


def test_runs_as_a_dedicated_user_without_privileges() -> None:
    """The daemon runs as its own user, with no capabilities and no way to gain any."""
    settings = _settings()

    assert settings["User"] == ["loonbrug"]
    assert settings["CapabilityBoundingSet"] == [""]
    assert settings["NoNewPrivileges"] == ["yes"]
    assert settings["ProtectSystem"] == ["strict"]
    assert settings["UMask"] == ["0077"]


def test_keeps_what_the_daemon_needs() -> None:
    """Writable state, TCP and Unix sockets, and reload by SIGHUP stay available."""
    settings = _settings()

    assert settings["StateDirectory"] == ["loonbrug"]
    assert set(settings["RestrictAddressFamilies"][0].split()) == {
        "AF_UNIX",
        "AF_INET",
        "AF_INET6",
    }
    assert "PrivateNetwork" not in settings
    assert settings["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert any(" run -c " in command for command in settings["ExecStart"])
