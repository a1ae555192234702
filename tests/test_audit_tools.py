"""Tests of the auditor's tools: query, report, Logboek export, register."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.audit_tools import chain, logboek, page
from gateway.audit_tools.report import duration, percentile
from gateway.cli import main
from gateway.config import Config
from gateway.pgp import OpenPgp
from gateway.pseudonym import Pseudonymiser, add_key
from tests.support.audit import (
    BSN_A,
    BSN_B,
    BSN_C,
    START,
    Clock,
    Keys,
    Sent,
    audit_keys,
    emit_exchange,
    emit_rejection,
    open_log,
    pgp,
    write_config,
)

__all__ = ["audit_keys", "pgp"]


@pytest.fixture
def config(tmp_path: Path, audit_keys: Keys) -> Config:
    """A gateway configuration in a fresh folder."""
    return write_config(tmp_path / "gw", audit_keys)


@pytest.fixture
def sent(config: Config, pgp: OpenPgp) -> dict[str, Sent]:
    """A trail of three exchanges over two days, with the key rotated between.

    u1 (day 1, key k1): A to rotterdam, B to utrecht; rotterdam downloads.
    u2 (day 2, key k2): A and C to rotterdam, never downloaded.
    u3 (day 2): rejected with two findings.
    """
    clock = Clock(START, step=timedelta(minutes=1))
    log = open_log(config, pgp, clock)
    first = emit_exchange(
        log,
        config,
        upload_id="u1",
        intermediary="uitzender-noord",
        routed={"rotterdam": [BSN_A], "utrecht": [BSN_B]},
        downloaded=("rotterdam",),
    )
    add_key(config.audit.pseudonym_key)
    clock.now += timedelta(days=1)
    second = emit_exchange(
        log,
        config,
        upload_id="u2",
        intermediary="flexwerk-zuid",
        routed={"rotterdam": [BSN_A, BSN_C]},
    )
    log.emit(
        "delivery.overdue",
        account="rotterdam",
        file=second.outbox_files["rotterdam"],
        age_hours=30,
    )
    emit_rejection(
        log,
        upload_id="u3",
        intermediary="flexwerk-zuid",
        codes=["BSN-ELEVEN-TEST", "XML-DOCTYPE"],
    )
    log.emit(
        "retention.purged",
        kind="delivered",
        account="rotterdam",
        file=first.outbox_files["rotterdam"],
        age_days=7,
    )
    log.close()
    return {"u1": first, "u2": second}


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    status = main(["audit", *args])
    return status, capsys.readouterr().out


def test_the_trail_holds_pseudonyms_only(config: Config, sent: dict[str, Sent]) -> None:
    """No BSN is written to the trail; records are named by keyed pseudonyms."""
    text = "".join(p.read_text() for p in chain.trail_files(config.audit.dir))

    for bsn in (BSN_A, BSN_B, BSN_C):
        assert bsn not in text
    assert re.search(r'"k1:[0-9a-f]{64}"', text)
    assert re.search(r'"k2:[0-9a-f]{64}"', text)


def test_query_by_bsn_finds_exchanges_under_every_key(
    config: Config, sent: dict[str, Sent], capsys: pytest.CaptureFixture[str]
) -> None:
    """A BSN finds its exchanges made with the old key and with the new one."""
    status, out = _run(
        capsys, "query", "-c", str(config.path), "--bsn", BSN_A, "--json"
    )

    rows = json.loads(out)
    assert status == 0
    assert [(r["upload_id"], r["municipality"]) for r in rows] == [
        ("u1", "rotterdam"),
        ("u2", "rotterdam"),
    ]
    first = rows[0]
    assert first["intermediary"] == "uitzender-noord"
    assert first["message_id"] == sent["u1"].message_id
    assert first["received"] == "2026-03-02T09:01:00Z"
    assert first["downloaded"] and first["purged"]
    assert rows[1]["downloaded"] == ""


def test_query_reads_the_bsn_from_standard_input(
    config: Config, sent: dict[str, Sent]
) -> None:
    """--bsn - reads the number from stdin, keeping it out of the process list."""
    command = [sys.executable, "-m", "gateway", "audit", "query"]
    command += ["-c", str(config.path), "--bsn", "-", "--json"]

    done = subprocess.run(
        command, input=BSN_B + "\n", capture_output=True, text=True, check=False
    )

    assert done.returncode == 0, done.stderr
    assert [r["municipality"] for r in json.loads(done.stdout)] == ["utrecht"]


def test_query_by_bsn_shows_only_that_persons_municipalities(
    config: Config, sent: dict[str, Sent], capsys: pytest.CaptureFixture[str]
) -> None:
    """Exchanges of other people, and other municipalities' parts, stay out."""
    _, out = _run(capsys, "query", "-c", str(config.path), "--bsn", BSN_B, "--json")

    rows = json.loads(out)
    assert [(r["upload_id"], r["municipality"]) for r in rows] == [("u1", "utrecht")]


def test_query_by_message_account_and_period(
    config: Config, sent: dict[str, Sent], capsys: pytest.CaptureFixture[str]
) -> None:
    """--message-id, --account and --from/--to narrow the answer."""
    cfg = str(config.path)

    _, by_message = _run(
        capsys, "query", "-c", cfg, "--message-id", sent["u2"].message_id, "--json"
    )
    _, by_account = _run(capsys, "query", "-c", cfg, "--account", "utrecht", "--json")
    _, by_day = _run(capsys, "query", "-c", cfg, "--from", "2026-03-03", "--json")

    assert {r["upload_id"] for r in json.loads(by_message)} == {"u2"}
    assert [(r["upload_id"], r["municipality"]) for r in json.loads(by_account)] == [
        ("u1", "utrecht")
    ]
    assert {r["upload_id"] for r in json.loads(by_day)} == {"u2", "u3"}


def test_query_prints_a_table(
    config: Config, sent: dict[str, Sent], capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --json the answer is a readable table."""
    status, out = _run(capsys, "query", "-c", str(config.path), "--bsn", BSN_C)

    assert status == 0
    header, row = out.splitlines()
    assert header.split()[:3] == ["received", "from", "message"]
    assert "flexwerk-zuid" in row and "rotterdam" in row


@pytest.mark.parametrize(
    "value",
    [
        "99999001",  # eight digits
        "999990018",  # fails the eleven-test
        "99999001x",  # not all digits
    ],
)
def test_query_refuses_a_bad_bsn_without_echoing_it(
    config: Config, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A malformed --bsn is a usage error whose message does not repeat it."""
    status = main(["audit", "query", "-c", str(config.path), "--bsn", value])

    err = capsys.readouterr().err
    assert status == 2
    assert value not in err


def test_report_counts_per_partner(
    config: Config, sent: dict[str, Sent], capsys: pytest.CaptureFixture[str]
) -> None:
    """The JSON report counts files, findings, records, deliveries and delays."""
    status, out = _run(capsys, "report", "-c", str(config.path), "--format", "json")

    figures = json.loads(out)
    senders = {s["account"]: s for s in figures["intermediaries"]}
    receivers = {m["account"]: m for m in figures["municipalities"]}
    assert status == 0
    assert senders["flexwerk-zuid"]["received"] == 2
    assert senders["flexwerk-zuid"]["rejected_by_code"] == {
        "BSN-ELEVEN-TEST": 1,
        "XML-DOCTYPE": 1,
    }
    assert senders["uitzender-noord"]["records_routed"] == 2
    rotterdam = receivers["rotterdam"]
    assert (rotterdam["records_routed"], rotterdam["files_written"]) == (3, 2)
    assert (rotterdam["files_downloaded"], rotterdam["pickups_overdue"]) == (1, 1)
    assert rotterdam["seconds_to_pickup"]["median"] == 10 * 60


def test_report_period_counts_only_uploads_received_in_it(
    config: Config, sent: dict[str, Sent], capsys: pytest.CaptureFixture[str]
) -> None:
    """--from/--to select exchanges by when their upload was received."""
    _, out = _run(
        capsys,
        "report",
        "-c",
        str(config.path),
        "--format",
        "json",
        "--to",
        "2026-03-03",
    )

    senders = [s["account"] for s in json.loads(out)["intermediaries"]]
    assert senders == ["uitzender-noord"]


def test_report_as_text(
    config: Config, sent: dict[str, Sent], capsys: pytest.CaptureFixture[str]
) -> None:
    """The default text report has a table per kind of partner."""
    _, out = _run(capsys, "report", "-c", str(config.path))

    assert "Intermediaries" in out and "Municipalities" in out
    assert "BSN-ELEVEN-TEST 1" in out


def test_html_report_is_self_contained(
    config: Config, sent: dict[str, Sent], tmp_path: Path
) -> None:
    """The HTML page draws inline SVG charts and loads nothing from elsewhere."""
    target = tmp_path / "report.html"

    status = main(
        [
            "audit",
            "report",
            "-c",
            str(config.path),
            "--format",
            "html",
            "-o",
            str(target),
        ]
    )

    html = target.read_text(encoding="utf-8")
    assert status == 0
    assert html.count("<svg") >= 3
    assert "<script" not in html
    assert not re.search(r"(src|href)=|@import|url\(", html)
    assert "rotterdam" in html


def test_html_escapes_what_comes_from_the_trail() -> None:
    """A hostile account name in the trail cannot inject markup."""
    figures = {
        "from": None,
        "to": None,
        "intermediaries": [
            {
                "account": "<script>x</script>",
                "received": 1,
                "accepted": 1,
                "rejected": 0,
                "rejected_by_code": {},
                "records_routed": 0,
            }
        ],
        "municipalities": [],
    }

    html = page.as_html(figures)

    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_percentiles_and_durations() -> None:
    """Nearest-rank percentiles and human durations."""
    values = [float(v) for v in range(1, 101)]

    assert percentile(values, 0.95) == 95
    assert percentile([7.0], 0.95) == 7
    assert percentile([], 0.5) is None
    assert [duration(v) for v in (None, 42, 185, 7800)] == [
        "-",
        "42s",
        "3m 05s",
        "2h 10m",
    ]


def test_logboek_export_has_the_standard_fields(
    config: Config, sent: dict[str, Sent], capsys: pytest.CaptureFixture[str]
) -> None:
    """Every span has the Logboek fields; subjects appear as pseudonyms only."""
    status, out = _run(capsys, "export", "-c", str(config.path), "--format", "logboek")

    spans = [json.loads(line) for line in out.splitlines()]
    assert status == 0
    for span in spans:
        assert re.fullmatch(r"[0-9a-f]{32}", span["trace_id"])
        assert re.fullmatch(r"[0-9a-f]{16}", span["span_id"])
        assert span["end_time"] >= span["start_time"]
        assert (
            span["attributes"]["dpl.core.processing_activity_id"]
            == logboek.PROCESSING_ACTIVITY
        )
    subjects = [
        s["attributes"]["dpl.core.data_subject_id"]
        for s in spans
        if "dpl.core.data_subject_id" in s["attributes"]
    ]
    keys = Pseudonymiser.load(config.audit.pseudonym_key)
    assert keys.keys[0].apply(BSN_A) in subjects
    assert len(subjects) == 4
    assert BSN_A not in out
    roots = [s for s in spans if s["parent_span_id"] is None]
    assert {r["name"] for r in roots} == {"wage-report.exchange"}
    assert len(roots) == 3


def test_logboek_export_for_one_municipality_is_minimised(
    config: Config, sent: dict[str, Sent], capsys: pytest.CaptureFixture[str]
) -> None:
    """A municipality's export holds only its own residents and files."""
    _, out = _run(capsys, "export", "-c", str(config.path), "--municipality", "utrecht")

    spans = [json.loads(line) for line in out.splitlines()]
    keys = Pseudonymiser.load(config.audit.pseudonym_key)
    subjects = [s["attributes"].get("dpl.core.data_subject_id") for s in spans]
    assert keys.keys[0].apply(BSN_B) in subjects
    assert keys.keys[0].apply(BSN_A) not in subjects
    assert "rotterdam" not in out and "GM0599" not in out


def test_logboek_export_ids_are_stable(
    config: Config, sent: dict[str, Sent], capsys: pytest.CaptureFixture[str]
) -> None:
    """Exporting twice gives the same ids, so a re-import does not duplicate."""
    _, first = _run(capsys, "export", "-c", str(config.path))
    _, second = _run(capsys, "export", "-c", str(config.path))

    assert first == second


def test_register_is_built_from_the_configuration(
    config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    """The art. 30 register lists purpose, legal basis, partners and retention."""
    status, out = _run(capsys, "register", "-c", str(config.path), "--json")

    entries = json.loads(out)
    exchange = entries[0]
    assert status == 0
    assert any("Participatiewet art. 64" in basis for basis in exchange["legal_basis"])
    assert {r["code"] for r in exchange["recipients"]} == {"GM0599", "GM0344", "GM0014"}
    assert {s["account"] for s in exchange["sources"]} == {
        "uitzender-noord",
        "flexwerk-zuid",
    }
    assert exchange["retention"]["rejected uploads (encrypted)"] == "30 days"
    assert exchange["id"] == logboek.PROCESSING_ACTIVITY


def test_register_as_text(config: Config, capsys: pytest.CaptureFixture[str]) -> None:
    """The text register names each activity and its purpose."""
    _, out = _run(capsys, "register", "-c", str(config.path))

    assert "purpose:" in out and "legal basis:" in out and "Rotterdam" in out


def test_tools_tolerate_a_line_being_written(
    config: Config, sent: dict[str, Sent], capsys: pytest.CaptureFixture[str]
) -> None:
    """An unfinished last line (the daemon writing) is skipped, not fatal."""
    newest = chain.trail_files(config.audit.dir)[-1]
    with newest.open("ab") as handle:
        handle.write(b'{"event":"delivery.downl')

    status, out = _run(
        capsys, "query", "-c", str(config.path), "--bsn", BSN_A, "--json"
    )

    assert status == 0
    assert len(json.loads(out)) == 2
