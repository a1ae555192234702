"""``loonbrug audit``: the auditor's tools, all read-only.

Each sub-command takes ``-c FILE``, the daemon's own configuration, which says
where the trail, the checkpoints, the gateway key and the pseudonym key are.
They read the trail while the daemon writes it: a line still being written at
the end is left out by the tools that answer questions, and waited for (one
second) by ``verify``.

``verify`` exits 0 when the trail is intact and 1 on any sign of tampering;
every command exits 2 on a usage or configuration error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway import config as config_module
from gateway.audit_tools import chain, logboek, page, query, report, verify
from gateway.audit_tools import register as processing_register
from gateway.cli import EXIT_NO, EXIT_OK
from gateway.errors import UsageError
from gateway.pseudonym import Pseudonymiser
from gateway.spool import write_atomically
from gateway.validate.numbers import is_valid_bsn


def register(subparsers: Any) -> None:
    """Add ``audit`` and its sub-commands."""
    parser = subparsers.add_parser("audit", help="verify and question the audit trail")
    commands = parser.add_subparsers(dest="audit_command", metavar="SUBCOMMAND")
    commands.required = True
    _verify_parser(commands)
    _query_parser(commands)
    _report_parser(commands)
    _export_parser(commands)
    _register_parser(commands)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c", "--config", type=Path, required=True, help="the daemon's configuration"
    )


def _period(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="start", type=_moment, help="date or time, UTC")
    parser.add_argument("--to", dest="end", type=_moment, help="date or time, UTC")


def _output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", type=Path, help="write here, not stdout")


def _moment(text: str) -> datetime:
    """A --from/--to value: a date (midnight UTC) or an ISO time (UTC if naive)."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date or time: {text!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _verify_parser(commands: Any) -> None:
    parser = commands.add_parser("verify", help="check the chain and checkpoints")
    _common(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=_verify)


def _query_parser(commands: Any) -> None:
    parser = commands.add_parser("query", help="exchanges of a person or message")
    _common(parser)
    parser.add_argument(
        "--bsn", help="the data subject's BSN, or - to read it from standard input"
    )
    parser.add_argument("--message-id", help="a wage report's message id")
    parser.add_argument("--account", help="an intermediary or municipality account")
    _period(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=_query)


def _report_parser(commands: Any) -> None:
    parser = commands.add_parser("report", help="figures per partner for a period")
    _common(parser)
    _period(parser)
    parser.add_argument(
        "--format", choices=("text", "json", "html"), default="text", dest="form"
    )
    _output(parser)
    parser.set_defaults(handler=_report)


def _export_parser(commands: Any) -> None:
    parser = commands.add_parser("export", help="Logboek Dataverwerkingen export")
    _common(parser)
    parser.add_argument("--format", choices=("logboek",), default="logboek")
    parser.add_argument("--municipality", help="only what reached this account")
    _output(parser)
    parser.set_defaults(handler=_export)


def _register_parser(commands: Any) -> None:
    parser = commands.add_parser("register", help="records of processing (art. 30)")
    _common(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=_register)


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
    else:
        write_atomically(output, text.encode("utf-8"))


def _verify(args: argparse.Namespace) -> int:
    from gateway.pgp import OpenPgp  # noqa: PLC0415 (gpg only for this command)

    config = config_module.load(args.config)
    timeout = config.gateway.gpg_timeout_seconds
    with OpenPgp(config.gateway.gnupg_home, timeout=timeout) as pgp:
        verdict = verify.verify(
            config.audit.dir,
            pgp,
            config.gateway.key_fingerprint,
            copy_dir=config.audit.checkpoint_copy_dir,
        )
    if args.json:
        print(json.dumps(verdict.to_dict(), indent=2))
    else:
        _print_verdict(verdict)
    return EXIT_OK if verdict.clean else EXIT_NO


def _print_verdict(verdict: verify.Verdict) -> None:
    print(
        f"{verdict.files} file(s), {verdict.lines} line(s), last seq "
        f"{verdict.last_seq}; {verdict.checkpoints} signed checkpoint(s), last "
        f"at seq {verdict.last_checkpoint}"
    )
    for note in verdict.notes:
        print(f"note: {note}")
    if verdict.clean:
        print("audit trail intact")
        return
    print(f"TAMPERED: {verdict.problems[0]}")
    for problem in verdict.problems[1:]:
        print(f"also: {problem}")


def _question(args: argparse.Namespace, key_file: Path) -> query.Question:
    pseudonyms = None
    if args.bsn is not None:
        # "-" keeps the BSN out of the process list and the shell's history.
        bsn = sys.stdin.readline().strip() if args.bsn == "-" else args.bsn
        if not is_valid_bsn(bsn):
            # The value itself is not echoed: it may be a real BSN mistyped.
            raise UsageError("--bsn must be 9 digits that pass the eleven-test")
        keys = Pseudonymiser.load(key_file)
        pseudonyms = frozenset(keys.all_pseudonyms(bsn))
    return query.Question(
        pseudonyms=pseudonyms,
        message_id=args.message_id,
        account=args.account,
        start=args.start,
        end=args.end,
    )


def _query(args: argparse.Namespace) -> int:
    config = config_module.load(args.config)
    question = _question(args, config.audit.pseudonym_key)
    rows = query.ask(chain.records(config.audit.dir), config, question)
    if args.json:
        print(json.dumps(rows, indent=2))
    elif rows:
        sys.stdout.write(query.as_table(rows))
    else:
        print("no exchange matches")
    return EXIT_OK


def _report(args: argparse.Namespace) -> int:
    config = config_module.load(args.config)
    figures = report.build(
        chain.records(config.audit.dir), config, args.start, args.end
    )
    if args.form == "json":
        text = json.dumps(figures, indent=2) + "\n"
    elif args.form == "html":
        text = page.as_html(figures)
    else:
        text = report.as_text(figures)
    _emit(text, args.output)
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    config = config_module.load(args.config)
    if args.municipality and args.municipality not in config.municipalities:
        raise UsageError(f"unknown municipality account {args.municipality!r}")
    spans = logboek.export(
        chain.records(config.audit.dir),
        query.municipality_resolver(config),
        args.municipality,
    )
    _emit(_json_lines(spans), args.output)
    return EXIT_OK


def _json_lines(items: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(item, sort_keys=True) + "\n" for item in items)


def _register(args: argparse.Namespace) -> int:
    config = config_module.load(args.config)
    entries = processing_register.build(config)
    if args.json:
        print(json.dumps(entries, indent=2))
    else:
        sys.stdout.write(processing_register.as_text(entries))
    return EXIT_OK
