"""A real SFTP service on an ephemeral port, and the stock OpenSSH client to use it.

The configuration is written as TOML and loaded like any other; partners get
fresh Ed25519 keys from ``ssh-keygen``. OpenPGP fingerprints are placeholders:
the SFTP service never looks at them.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gateway import config as config_module
from gateway.audit import MemoryAudit
from gateway.config import Config
from gateway.ledger import Ledger
from gateway.sftp.client import connect, load_private_key
from gateway.sftp.service import SftpService

INTERMEDIARIES = ("uitzender-noord", "flexwerk-zuid")
MUNICIPALITIES = (("rotterdam", "GM0599"), ("utrecht", "GM0344"))


def make_key(path: Path) -> str:
    """Create an Ed25519 key pair at *path* and return its public line."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", path],
        check=True,
    )
    return path.with_suffix(".pub").read_text().strip()


def write_config(
    folder: Path, max_upload_bytes: int = 4_000_000, **sftp: object
) -> Config:
    """A configuration with two intermediaries and two municipalities."""
    keys = folder / "keys"
    keys.mkdir(parents=True)
    lines = [
        "[gateway]",
        'spool = "spool"',
        'gnupg_home = "gnupg"',
        f'key_fingerprint = "{"A" * 40}"',
        'state_dir = "state"',
        f"max_upload_bytes = {max_upload_bytes}",
        "[sftp]",
        'listen = "127.0.0.1"',
        "port = 2222",
        *(f"{k} = {v}" for k, v in sftp.items()),
    ]
    for n, account in enumerate(INTERMEDIARIES):
        lines += [
            "[[intermediary]]",
            f'id = "{account}"',
            f'name = "Agency {n}"',
            f'kvk = "1234567{n}"',
            f'loonheffingennummer = "12345678{n}L01"',
            f'signing_keys = ["{str(n) * 40}"]',
            'municipalities = ["GM0599"]',
            f'ssh_keys = ["{make_key(keys / account)}"]',
        ]
    for account, code in MUNICIPALITIES:
        lines += [
            "[[municipality]]",
            f'id = "{account}"',
            f'code = "{code}"',
            f'name = "Gemeente {account}"',
            f'encryption_key = "{"B" * 40}"',
            f'ssh_keys = ["keys/{account}.pub"]',
        ]
        make_key(keys / account)
    path = folder / "loonbrug.toml"
    path.write_text("\n".join(lines) + "\n")
    loaded = config_module.load(path)
    # Port 0: the kernel picks a free port, so tests can run side by side.
    return dataclasses.replace(loaded, sftp=dataclasses.replace(loaded.sftp, port=0))


@dataclass
class RunningServer:
    """A started service with what a test needs to talk to it and check on it."""

    service: SftpService
    config: Config
    folder: Path
    audit: MemoryAudit
    ledger: Ledger
    known_hosts: Path = field(init=False)

    def __post_init__(self) -> None:
        key = self.service.host_key
        self.known_hosts = self.folder / "known_hosts"
        self.known_hosts.write_text(
            f"[127.0.0.1]:{self.service.port} {key.get_name()} {key.get_base64()}\n"
        )

    def stop(self) -> None:
        """Stop the service and close the ledger."""
        self.service.stop()
        self.ledger.close()

    @property
    def spool(self) -> Path:
        """The spool root."""
        return self.config.gateway.spool

    def key(self, account: str) -> Path:
        """The private key file of *account*."""
        return self.folder / "keys" / account

    def events(self, name: str) -> list[dict[str, object]]:
        """The audit events called *name*."""
        return [e for e in self.audit.events if e["event"] == name]

    def sftp(
        self,
        account: str,
        commands: list[str],
        *options: str,
        key: Path | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Run the stock ``sftp`` client in batch mode as *account*."""
        batch = self.folder / f"batch-{threading.get_ident()}"
        batch.write_text("\n".join(commands) + "\n")
        return subprocess.run(
            [
                "sftp",
                "-b",
                str(batch),
                *self.ssh_options(account, key),
                *options,
                "-P",
                str(self.service.port),
                f"{account}@127.0.0.1",
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.folder,
        )

    def ssh_options(self, account: str, key: Path | None = None) -> list[str]:
        """Options that make OpenSSH use only the given key and the pinned host key."""
        return [
            "-F",
            "/dev/null",
            "-i",
            str(key or self.key(account)),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityAgent=none",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "ConnectTimeout=20",
        ]


def start_server(
    folder: Path, max_upload_bytes: int = 4_000_000, **sftp: object
) -> RunningServer:
    """Write a configuration under *folder* and start the service on it."""
    config = write_config(folder, max_upload_bytes, **sftp)
    audit, ledger = MemoryAudit(), Ledger(config.ledger_path)
    service = SftpService(config, audit, ledger)
    service.start()
    return RunningServer(service, config, folder, audit, ledger)


@pytest.fixture
def sftp_server(tmp_path: Path) -> Iterator[RunningServer]:
    """A running SFTP service with room for 24 sessions per account."""
    server = start_server(tmp_path, max_sessions_per_account=24)
    try:
        yield server
    finally:
        server.stop()


def paramiko_session(server: RunningServer, account: str) -> Any:
    """A paramiko SFTP session as *account*, for requests ``sftp`` cannot send."""
    key = load_private_key(server.key(account))
    pin = f"{server.service.host_key.get_name()} {server.service.host_key.get_base64()}"
    return connect("127.0.0.1", server.service.port, account, key, pin)


def snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every entry under *root* with its mode, size and modification time."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            if name.startswith("batch-"):
                continue
            info = path.lstat()
            found[str(path.relative_to(root))] = (
                info.st_mode,
                info.st_size,
                info.st_mtime_ns,
            )
    return found


def free_port() -> int:
    """A loopback port that was free a moment ago, for a sandbox's listener."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Poll *condition* until it holds or *timeout* seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()
