"""Algorithms, bans, session and time budgets of the SFTP service."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from gateway.sftp.client import connect, load_private_key
from gateway.sftp.service import load_or_create_host_key
from gateway.sftp.session import MAX_DENIALS
from tests.support.sftp import (
    RunningServer,
    make_key,
    paramiko_session,
    sftp_server,
    start_server,
    wait_for,
)

__all__ = ["sftp_server"]

NOORD = "uitzender-noord"


@pytest.mark.parametrize(
    "options",
    [
        # CBC ciphers are refused.
        pytest.param(["-o", "Ciphers=aes128-cbc,aes256-cbc"], id="cbc"),
        # Key exchange with SHA-1, or with the 1024-bit group.
        pytest.param(
            ["-o", "KexAlgorithms=diffie-hellman-group14-sha1"], id="kex-sha1"
        ),
        pytest.param(
            ["-o", "KexAlgorithms=diffie-hellman-group1-sha1"], id="kex-group1"
        ),
        pytest.param(
            ["-o", "KexAlgorithms=diffie-hellman-group-exchange-sha1"], id="gex-sha1"
        ),
        # SHA-1 and MD5 MACs (with a cipher that needs a MAC).
        pytest.param(
            ["-o", "Ciphers=aes128-ctr", "-o", "MACs=hmac-sha1"], id="mac-sha1"
        ),
        pytest.param(["-o", "Ciphers=aes128-ctr", "-o", "MACs=hmac-md5"], id="mac-md5"),
        # ssh-rsa (SHA-1) host key signatures.
        pytest.param(["-o", "HostKeyAlgorithms=ssh-rsa"], id="hostkey-ssh-rsa"),
    ],
)
def test_client_offering_only_weak_algorithms_is_refused(
    sftp_server: RunningServer, options: list[str]
) -> None:
    """A client limited to a weak algorithm cannot even reach authentication."""
    result = sftp_server.sftp(NOORD, ["ls /"], *options)

    assert result.returncode != 0
    assert sftp_server.events("session.opened") == []


def test_modern_defaults_connect_with_aead_or_etm(sftp_server: RunningServer) -> None:
    """The stock client's defaults negotiate an AEAD cipher or an ETM MAC."""
    result = sftp_server.sftp(NOORD, ["ls /"], "-v")

    assert result.returncode == 0, result.stderr
    negotiated = [line for line in result.stderr.splitlines() if "cipher:" in line]
    assert negotiated
    assert all("gcm" in line or "etm" in line for line in negotiated)


def test_strict_key_exchange_is_agreed(sftp_server: RunningServer) -> None:
    """A client that offers strict kex (the Terrapin fix) gets it."""
    with paramiko_session(sftp_server, NOORD) as sftp:
        transport = sftp.get_channel().get_transport()
        assert transport.agreed_on_strict_kex


def test_repeated_bad_keys_lead_to_a_ban(sftp_server: RunningServer) -> None:
    """After max_auth_failures failed logins even the right key is turned away."""
    stranger = sftp_server.folder / "stranger"
    make_key(stranger)

    for _ in range(sftp_server.config.sftp.max_auth_failures):
        assert sftp_server.sftp(NOORD, ["ls /"], key=stranger).returncode != 0
    result = sftp_server.sftp(NOORD, ["ls /"])

    assert result.returncode != 0
    assert len(sftp_server.events("auth.banned")) == 1
    assert sftp_server.events("session.opened") == []
    reasons = {e["reason"] for e in sftp_server.events("auth.failed")}
    assert reasons == {"key not authorised"}


def test_unknown_account_is_refused(sftp_server: RunningServer) -> None:
    """A key of a real partner does not open an account that does not exist."""
    result = sftp_server.sftp("root", ["ls /"], key=sftp_server.key(NOORD))

    assert result.returncode != 0
    assert {e["reason"] for e in sftp_server.events("auth.failed")} == {
        "unknown account"
    }


@pytest.fixture
def strict_server(tmp_path: Path) -> Iterator[RunningServer]:
    """A server allowing one session per account, one idle second, one second
    to shake hands."""
    server = start_server(
        tmp_path,
        max_sessions_per_account=1,
        idle_timeout_seconds=1,
        handshake_timeout_seconds=1,
    )
    try:
        yield server
    finally:
        server.stop()


def test_sessions_per_account_are_limited(strict_server: RunningServer) -> None:
    """A second session of the same account is refused while the first is open."""
    with paramiko_session(strict_server, "rotterdam") as first:
        first.listdir("/outbox")
        result = strict_server.sftp("rotterdam", ["ls /outbox"])
        assert result.returncode != 0

    reasons = [e["reason"] for e in strict_server.events("sftp.denied")]
    assert "session limit reached" in reasons


def test_closed_sessions_give_their_slot_back(strict_server: RunningServer) -> None:
    """Sessions one after another never pile up against the limit of one."""
    budgets = strict_server.service.budgets
    for _ in range(10):
        with paramiko_session(strict_server, "rotterdam") as sftp:
            sftp.listdir("/outbox")
            assert budgets.sessions("rotterdam") == 1
        assert wait_for(lambda: budgets.sessions("rotterdam") == 0)

    assert not [
        e for e in strict_server.events("sftp.denied") if e["operation"] == "session"
    ]
    closes = [e["reason"] for e in strict_server.events("session.closed")]
    assert closes == ["client closed"] * 10


def test_idle_session_is_closed(strict_server: RunningServer) -> None:
    """A session that sends nothing for idle_timeout_seconds is closed."""
    with paramiko_session(strict_server, "rotterdam") as sftp:
        sftp.listdir("/outbox")
        assert wait_for(
            lambda: (
                [e["reason"] for e in strict_server.events("session.closed")]
                == ["idle timeout"]
            )
        )


def test_silent_client_is_dropped_after_the_handshake_time(
    strict_server: RunningServer,
) -> None:
    """A client that connects and never speaks is disconnected."""
    with socket.create_connection(("127.0.0.1", strict_server.service.port)) as sock:
        sock.settimeout(20)
        while sock.recv(4096):
            pass  # read until the server hangs up (a timeout fails the test)

    assert strict_server.events("session.opened") == []


def test_wrong_host_key_pin_is_refused(sftp_server: RunningServer) -> None:
    """The partner client refuses a server whose host key is not the pinned one."""
    key = load_private_key(sftp_server.key(NOORD))
    wrong = "SHA256:" + "A" * 43

    with (
        pytest.raises(Exception, match="not the pinned one"),
        connect("127.0.0.1", sftp_server.service.port, NOORD, key, wrong),
    ):
        pass


def test_host_key_is_created_once_and_kept(tmp_path: Path) -> None:
    """The host key file is created 0600 on first start and reused afterwards."""
    path = tmp_path / "state" / "ssh_host_ed25519_key"

    first = load_or_create_host_key(path)
    second = load_or_create_host_key(path)

    assert path.stat().st_mode & 0o777 == 0o600
    assert first.asbytes() == second.asbytes()
    assert isinstance(first, paramiko.Ed25519Key)


def test_reload_takes_new_keys_for_new_connections(
    sftp_server: RunningServer,
) -> None:
    """After a reload a newly listed key logs in and a dropped one no longer does."""
    new_key = sftp_server.folder / "rotterdam-new"
    line = make_key(new_key)
    config = sftp_server.config
    rotterdam = dataclasses.replace(
        config.municipalities["rotterdam"], ssh_keys=(line,)
    )
    municipalities = {**config.municipalities, "rotterdam": rotterdam}

    sftp_server.service.reload(
        dataclasses.replace(config, municipalities=municipalities)
    )

    assert sftp_server.sftp("rotterdam", ["ls /"], key=new_key).returncode == 0
    assert sftp_server.sftp("rotterdam", ["ls /"]).returncode != 0


def test_a_probing_session_is_closed(sftp_server: RunningServer) -> None:
    """A session that keeps making refused requests is closed by the server."""
    dropped = (OSError, EOFError, paramiko.SSHException)
    with paramiko_session(sftp_server, NOORD) as sftp, pytest.raises(dropped):
        for n in range(MAX_DENIALS + 10):
            with contextlib.suppress(PermissionError):
                sftp.mkdir(f"/inbox/probe-{n}")

    assert wait_for(
        lambda: (
            [e["reason"] for e in sftp_server.events("session.closed")]
            == ["too many refused requests"]
        )
    )
