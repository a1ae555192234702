"""Test helpers for the pipeline: sealed uploads, receipts and deliveries.

Uploads are made, and receipts and deliveries opened, with the plain ``gpg``
binary in the partners' own GnuPG homes of a demo sandbox, as an intermediary
or a municipality would; the gateway's own OpenPGP code is never used to check
itself. A test daemon runs with the SFTP service off and a small plaintext cap.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
from lxml import etree

from gateway import config as config_module
from gateway.config import Config
from gateway.daemon import Daemon
from gateway.pgp import gpg_home, stop_agent
from gateway.route import outbox_name, receipt_name
from gateway.sample import SampleSender, generate_report

RECEIPT_NS = "{urn:loonbrug:receipt:v1}"
TEST_MAX_PLAINTEXT = 8 * 1024 * 1024
DEADLINE = 60.0


def tune_config(config_path: Path, **gateway: Any) -> Config:
    """Switch SFTP off, cap plaintext at 8 MiB, rescan every second."""
    data = tomllib.loads(config_path.read_text(encoding="utf-8"))
    data.setdefault("sftp", {})["enabled"] = False
    settings = data.setdefault("gateway", {})
    settings.update(
        {"max_plaintext_bytes": TEST_MAX_PLAINTEXT, "rescan_seconds": 1, **gateway}
    )
    config_path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return config_module.load(config_path)


def gpg(
    home: Path, *args: str, data: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    """Run plain gpg in *home* (status lines on stderr); never raises."""
    command = [
        "gpg",
        "--homedir",
        str(gpg_home(home)),
        "--batch",
        "--no-tty",
        "--trust-model",
        "always",
        "--status-fd",
        "2",
        *args,
    ]
    return subprocess.run(
        command, input=data, capture_output=True, timeout=120, check=False
    )


def partner_home(folder: Path, account: str) -> Path:
    """The GnuPG home of a partner in a sandbox."""
    return folder / "partners" / account / "gnupg"


def seal(folder: Path, config: Config, account: str, plaintext: bytes) -> bytes:
    """*plaintext* signed by the intermediary and encrypted to the gateway."""
    signer = config.intermediaries[account].signing_keys[0]
    done = gpg(
        partner_home(folder, account),
        "--local-user",
        signer,
        "--sign",
        "--encrypt",
        "--recipient",
        config.gateway.key_fingerprint,
        "--output",
        "-",
        data=plaintext,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def report_for(
    config: Config, account: str, *, seed: int, records: int = 12, **options: Any
) -> bytes:
    """A valid sample report from *account* over the municipalities it may use."""
    intermediary = config.intermediaries[account]
    options.setdefault("municipalities", sorted(intermediary.municipalities))
    return generate_report(
        records=records,
        seed=seed,
        sender=SampleSender.from_intermediary(intermediary),
        **options,
    )


def drop(config: Config, account: str, name: str, data: bytes) -> Path:
    """Publish an upload in the inbox: hidden name first, then a rename."""
    inbox = config.gateway.spool / "inbox" / account
    hidden = inbox / f".{name}.part"
    hidden.write_bytes(data)
    target = inbox / name
    os.rename(hidden, target)
    return target


def await_path(path: Path, timeout: float = DEADLINE) -> Path:
    """Wait until *path* exists (polling with a deadline)."""
    return await_condition(path.exists, timeout, f"{path.name} never appeared") and path


def await_condition(
    condition: Callable[[], bool], timeout: float = DEADLINE, what: str = ""
) -> bool:
    """Poll *condition* until it holds; fail the test after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: {what}")
        time.sleep(0.05)
    return True


@dataclass(frozen=True)
class Opened:
    """A signed file opened with plain gpg: its content and its signer."""

    content: bytes
    signer: str
    signatures: int


def open_signed(home: Path, path: Path) -> Opened:
    """Decrypt and/or verify *path* in *home*; the primary key that signed it."""
    done = gpg(home, "--decrypt", "--output", "-", str(path))
    assert done.returncode == 0, done.stderr.decode()
    statuses = [
        line.split()[1:]
        for line in done.stderr.decode().splitlines()
        if "[GNUPG:]" in line
    ]
    valid = [fields for fields in statuses if fields[0] == "VALIDSIG"]
    assert valid, "no valid signature"
    return Opened(done.stdout, valid[-1][-1], len(valid))


@dataclass(frozen=True)
class Receipt:
    """A receipt as the intermediary reads it."""

    outcome: str
    codes: list[str]
    accepted: dict[str, int]
    message_id: str | None
    signer: str
    xml: bytes


def read_receipt(
    folder: Path, config: Config, account: str, upload_name: str
) -> Receipt:
    """Wait for the receipt of *upload_name* and open it in the sender's home."""
    path = config.gateway.spool / "receipts" / account / receipt_name(upload_name)
    await_path(path)
    opened = open_signed(partner_home(folder, account), path)
    root = etree.fromstring(opened.content)
    return Receipt(
        outcome=root.findtext(f"{RECEIPT_NS}Outcome") or "",
        codes=[f.get("code", "") for f in root.iter(f"{RECEIPT_NS}Finding")],
        accepted={
            m.get("code", ""): int(m.get("records", "0"))
            for m in root.iter(f"{RECEIPT_NS}Municipality")
        },
        message_id=root.findtext(f"{RECEIPT_NS}MessageId"),
        signer=opened.signer,
        xml=opened.content,
    )


def delivery_path(config: Config, message_id: str, code: str) -> Path:
    """Where the municipality with *code* finds its part of a message."""
    municipality = config.municipality_by_code(code)
    assert municipality is not None
    return (
        config.gateway.spool
        / "outbox"
        / municipality.id
        / outbox_name(message_id, code)
    )


@contextmanager
def running_daemon(config: Config) -> Iterator[Daemon]:
    """A daemon running in this process, stopped (and agents too) afterwards."""
    daemon = Daemon(config)
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop(30)


def stop_partner_agents(folder: Path, config: Config) -> None:
    """Stop the gpg-agents of every partner home and the gateway's."""
    for account in [*config.intermediaries, *config.municipalities]:
        stop_agent(partner_home(folder, account))
    stop_agent(config.gateway.gnupg_home)


class DaemonProcess:
    """``python -m gateway run`` as a child process, its log in a file."""

    def __init__(self, config_path: Path, log: Path, **environment: str) -> None:
        self.log = log
        env = {**os.environ, **environment}
        with log.open("ab") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway", "run", "-c", str(config_path)],
                stdout=sink,
                stderr=sink,
                env=env,
            )

    def log_text(self) -> str:
        """Everything the daemon logged so far."""
        return self.log.read_text(encoding="utf-8", errors="replace")

    def await_log(self, event: str, count: int = 1) -> None:
        """Wait until the log holds *event* at least *count* times."""
        await_condition(
            lambda: (
                self.log_text().count(f'"{event}"') >= count
                or self.process.poll() is not None
            ),
            what=f"log event {event}",
        )
        assert self.log_text().count(f'"{event}"') >= count, self.log_text()

    def await_exit(self, timeout: float = DEADLINE) -> int:
        """Wait for the process to end; its exit status."""
        return self.process.wait(timeout)

    def signal(self, signum: int) -> None:
        """Send *signum* to the daemon."""
        self.process.send_signal(signum)

    def stop(self) -> int:
        """SIGTERM, then wait; SIGKILL if it will not go."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            return self.process.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()
