"""``loonbrug demo``: run the gateway in a sandbox and play every partner's part.

The run creates the sandbox if the folder holds none, starts the daemon with its
SFTP server on 127.0.0.1, sends a correct report as ``uitzender-noord`` and one
with an error as ``flexwerk-zuid`` (with ``loonbrug send``'s own code: signed,
encrypted, uploaded over SFTP, receipt awaited and verified), then fetches as
every municipality (``loonbrug fetch``'s code: downloaded, decrypted, signature
checked). It prints what happened in a few lines, without personal data: only
account names, municipality codes, counts and finding codes. Then it keeps the
gateway running and prints the commands to try it by hand, until Ctrl-C; with
``once`` it stops instead and reports whether every expected outcome happened.
"""

from __future__ import annotations

import logging
import signal
import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from lxml import etree

from gateway import logs
from gateway.config import Config, Municipality, load
from gateway.daemon import Daemon
from gateway.demo import CONFIG_NAME, create_sandbox
from gateway.errors import LoonbrugError
from gateway.pgp import gpg_home, stop_agent
from gateway.sample import SampleSender, generate_report
from gateway.sftp.exchange import Fetched, Receipt, fetch_deliveries, send_reports
from gateway.sftp.partner import PartnerConfig, load_partner

GOOD_SENDER = "uitzender-noord"
FAULTY_SENDER = "flexwerk-zuid"
INJECTED_RULE = "BSN-ELEVEN-TEST"
RECEIPT_TIMEOUT = 120.0
_WAGE_NS = "urn:loonbrug:wage-report:v1"
_SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)


@dataclass(frozen=True)
class Outcome:
    """One expected outcome of the run, and the line that tells it."""

    ok: bool
    line: str


def run_demo(folder: Path, *, once: bool) -> int:
    """Run the demo in *folder*; 0 if every expected outcome happened."""
    folder = folder.absolute()
    if not (folder / CONFIG_NAME).exists():
        print(f"creating a sandbox in {folder}")
        create_sandbox(folder)
    config = load(folder / CONFIG_NAME)
    logs.configure(level=logging.WARNING)
    daemon = Daemon(config)
    daemon.start()
    try:
        print(f"gateway running, SFTP on {config.sftp.listen}:{config.sftp.port}")
        outcomes = play(folder, config)
        for outcome in outcomes:
            print(("  ok    " if outcome.ok else "  WRONG ") + outcome.line)
        succeeded = all(outcome.ok for outcome in outcomes)
        if not once:
            print(instructions(folder, config))
            _wait_for_interrupt(daemon)
    finally:
        daemon.stop()
        stop_agent(config.gateway.gnupg_home)
    return 0 if succeeded else 1


def play(folder: Path, config: Config) -> list[Outcome]:
    """Send both reports, fetch as every municipality, and judge the results."""
    # The partners' plaintext (the reports before sending, the fetched reports)
    # lives only in a private temporary folder outside the sandbox, removed at
    # the end: the sandbox itself then holds personal data only encrypted, as a
    # real gateway's folders do.
    with tempfile.TemporaryDirectory(prefix="loonbrug-demo-") as scratch:
        reports = Path(scratch) / "reports"
        reports.mkdir(mode=0o700)
        good = _send(folder, config, GOOD_SENDER, reports, inject=None)
        faulty = _send(folder, config, FAULTY_SENDER, reports, inject=INJECTED_RULE)
        accepted = good.accepted if isinstance(good, Receipt) else {}
        return [
            _judge_good(good),
            _judge_faulty(faulty),
            *(
                _fetch(folder, m, accepted, Path(scratch) / "fetched")
                for m in config.municipalities.values()
            ),
        ]


def _fetch(
    folder: Path, municipality: Municipality, accepted: dict[str, int], into: Path
) -> Outcome:
    partner = _partner(folder, municipality.id)
    try:
        fetched = fetch_deliveries(partner, into / municipality.id)
    except LoonbrugError as exc:
        return Outcome(False, f"{municipality.id}: fetch failed: {exc}")
    expected = accepted.get(municipality.code, 0)
    return _judge_fetch(municipality.id, municipality.code, expected, fetched)


def _partner(folder: Path, account: str) -> PartnerConfig:
    return load_partner(folder / "partners" / account / "partner.toml")


def _send(
    folder: Path, config: Config, account: str, reports: Path, *, inject: str | None
) -> Receipt | str:
    intermediary = config.intermediaries[account]
    source = reports / f"{account}-week.xml"
    source.write_bytes(
        generate_report(
            records=12,
            seed=len(account),
            sender=SampleSender.from_intermediary(intermediary),
            municipalities=sorted(intermediary.municipalities),
            inject=inject,
            # A fresh message id per run: the gateway refuses a replayed message.
            message_id=str(uuid.uuid4()),
        )
    )
    try:
        [sent] = send_reports(
            _partner(folder, account), [source], wait=True, timeout=RECEIPT_TIMEOUT
        )
    except LoonbrugError as exc:
        return str(exc)
    return sent.receipt if sent.receipt is not None else "no receipt"


def _judge_good(result: Receipt | str) -> Outcome:
    if isinstance(result, str):
        return Outcome(False, f"{GOOD_SENDER} sent a correct report: {result}")
    counts = ", ".join(f"{c}: {n}" for c, n in sorted(result.accepted.items()))
    line = (
        f"{GOOD_SENDER} sent a correct report of 12 records: receipt says "
        f"{result.outcome} ({counts or 'nothing routed'})"
    )
    return Outcome(result.is_accepted and sum(result.accepted.values()) == 12, line)


def _judge_faulty(result: Receipt | str) -> Outcome:
    if isinstance(result, str):
        return Outcome(False, f"{FAULTY_SENDER} sent a faulty report: {result}")
    codes = [f"{f.code} (line {f.line})" if f.line else f.code for f in result.findings]
    line = (
        f"{FAULTY_SENDER} sent a report with one wrong BSN: receipt says "
        f"{result.outcome}, findings: {', '.join(codes) or 'none'}"
    )
    found = any(f.code == INJECTED_RULE for f in result.findings)
    return Outcome(result.outcome == "rejected" and found, line)


def _judge_fetch(
    account: str, code: str, expected: int, fetched: Iterable[Fetched]
) -> Outcome:
    fetched = list(fetched)
    problems = [f.problem for f in fetched if f.problem]
    records = sum(_record_count(f.target) for f in fetched if f.target)
    files = len(fetched) - len(problems)
    line = (
        f"{account} ({code}) fetched {files} report(s) with {records} record(s), "
        "decrypted and signed by the gateway"
    )
    if problems:
        line += f"; problems: {'; '.join(problems)}"
    wanted_files = 1 if expected else 0
    return Outcome(not problems and files == wanted_files and records == expected, line)


def _record_count(path: Path) -> int:
    try:
        root = etree.parse(str(path), _SAFE_PARSER).getroot()
    except (OSError, etree.XMLSyntaxError):
        return -1
    return sum(1 for _ in root.iter(f"{{{_WAGE_NS}}}Record"))


def instructions(folder: Path, config: Config) -> str:
    """How to try the running gateway by hand, with this sandbox's paths."""
    noord, rotterdam = _partner(folder, GOOD_SENDER), _partner(folder, "rotterdam")
    gateway = noord.gateway_fingerprint
    return f"""
The gateway keeps running. Try it by hand in another terminal:

  # as intermediary {GOOD_SENDER}: write a report, sign it, encrypt it to the gateway
  loonbrug sample --config {config.path} --intermediary {GOOD_SENDER} -o week.xml
  gpg --homedir {gpg_home(noord.gnupg_home)} --trust-model always \\
      --local-user {noord.fingerprint} --recipient {gateway} \\
      --sign --encrypt -o week.xml.gpg week.xml
  {_sftp_command(noord)}
    sftp> put week.xml.gpg /inbox/
    sftp> ls /receipts
    sftp> get /receipts/week.xml.gpg.receipt.asc
  gpg --homedir {gpg_home(noord.gnupg_home)} --decrypt week.xml.gpg.receipt.asc

  # as municipality rotterdam: fetch, decrypt, check the gateway's signature
  {_sftp_command(rotterdam)}
    sftp> get /outbox/*
    sftp> rm /outbox/<file>
  gpg --homedir {gpg_home(rotterdam.gnupg_home)} --decrypt <file>.xml.gpg

  # or the same with the partner commands
  loonbrug send --partner {noord.path} week.xml
  loonbrug fetch --partner {rotterdam.path} fetched/

Press Ctrl-C to stop the gateway."""


def _sftp_command(partner: PartnerConfig) -> str:
    known_hosts = partner.known_hosts or partner.path.parent / "known_hosts"
    return (
        f"sftp -i {partner.ssh_key} -o IdentitiesOnly=yes "
        f"-o UserKnownHostsFile={known_hosts} -P {partner.port} "
        f"{partner.account}@{partner.host}"
    )


def _wait_for_interrupt(daemon: Daemon) -> None:
    # SIGTERM too, so that "kill" stops the gateway as cleanly as Ctrl-C does.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        daemon.wait()
    except KeyboardInterrupt:
        print("\nstopping the gateway")
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
