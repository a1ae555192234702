"""Tests of the sample report generator."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway.sample import (
    DEFAULT_MUNICIPALITIES,
    INJECTIONS,
    TEST_BSNS,
    SampleSender,
    generate_report,
    period_before,
    write_report,
)
from gateway.validate import ValidationContext, validate_file
from tests.support.reports import TODAY, W

SENDER = SampleSender("Uitzendgroep Test B.V.", "81547320", "815473291L01")


def test_same_seed_same_bytes() -> None:
    """A seed reproduces the report byte for byte."""
    assert generate_report(records=40, seed=5, today=TODAY) == generate_report(
        records=40, seed=5, today=TODAY
    )


def test_other_seed_other_report() -> None:
    """Different seeds give different reports."""
    assert generate_report(records=5, seed=1, today=TODAY) != generate_report(
        records=5, seed=2, today=TODAY
    )


def test_streaming_writer_matches() -> None:
    """write_report writes what generate_report returns, in chunks."""
    buffer = io.BytesIO()

    write_report(buffer, records=1200, seed=3, today=TODAY)

    assert buffer.getvalue() == generate_report(records=1200, seed=3, today=TODAY)


def test_content_is_realistic_and_fictional() -> None:
    """Records spread over the municipalities, with test BSNs and names."""
    root = etree.fromstring(generate_report(records=300, seed=9, today=TODAY))

    codes = set(root.xpath("w:Record/w:MunicipalityCode/text()", namespaces=W))
    bsns = set(root.xpath("w:Record/w:Bsn/text()", namespaces=W))
    ids = root.xpath("w:Record/w:RecordId/text()", namespaces=W)
    assert codes == set(DEFAULT_MUNICIPALITIES)
    assert bsns <= set(TEST_BSNS)
    assert len(ids) == len(set(ids)) == 300
    assert root.xpath("w:Record/w:Corrects", namespaces=W)


def test_sender_message_id_and_municipalities() -> None:
    """Sender, message id and municipalities can be chosen."""
    data = generate_report(
        records=20,
        seed=1,
        sender=SENDER,
        municipalities=["GM0014"],
        message_id="0f8fad5b-d9cb-469f-a165-70867728950e",
        today=TODAY,
    )
    root = etree.fromstring(data)

    assert root.xpath("string(w:Header/w:MessageId)", namespaces=W).startswith("0f8f")
    assert (
        root.xpath("string(w:Header/w:Sender/w:KvkNumber)", namespaces=W) == "81547320"
    )
    assert set(root.xpath("w:Record/w:MunicipalityCode/text()", namespaces=W)) == {
        "GM0014"
    }


@pytest.mark.parametrize(
    ("kind", "start", "end"),
    [
        ("week", dt.date(2026, 3, 9), dt.date(2026, 3, 15)),
        ("four-weeks", dt.date(2026, 2, 16), dt.date(2026, 3, 15)),
        ("month", dt.date(2026, 2, 1), dt.date(2026, 2, 28)),
    ],
)
def test_period_before(kind: str, start: dt.date, end: dt.date) -> None:
    """The period is the last one of its kind that ended before today."""
    assert period_before(TODAY, kind) == (start, end)


def test_bad_arguments() -> None:
    """Unknown injections, kinds and too few records are refused."""
    for options in (
        {"inject": "NOPE"},
        {"period_kind": "year"},
        {"records": 0},
        {"records": 1, "inject": "RECORD-ID-DUPLICATE"},
    ):
        arguments: dict[str, object] = {"records": 3, "seed": 1, **options}
        with pytest.raises(ValueError):
            generate_report(**arguments)  # type: ignore[arg-type]


def test_injection_names_are_finding_codes() -> None:
    """Every injection is named after the code its finding carries."""
    findings_doc = Path(__file__).parents[1] / "docs" / "findings.md"
    text = findings_doc.read_text(encoding="utf-8")

    for code in INJECTIONS:
        assert f"`{code}`" in text, code


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=st.integers(1, 40),
    seed=st.integers(0, 2**32),
    kind=st.sampled_from(["week", "four-weeks", "month"]),
    today=st.dates(dt.date(2001, 1, 1), dt.date(2099, 12, 31)),
)
def test_every_sample_validates(
    tmp_path_factory: pytest.TempPathFactory,
    records: int,
    seed: int,
    kind: str,
    today: dt.date,
) -> None:
    """Whatever the seed, size, period kind and day, a sample is valid."""
    path = tmp_path_factory.mktemp("sample") / "r.xml"
    path.write_bytes(
        generate_report(records=records, seed=seed, period_kind=kind, today=today)
    )
    context = ValidationContext(
        known_municipalities=frozenset(DEFAULT_MUNICIPALITIES), today=today
    )

    result = validate_file(path, context)

    assert result.valid, [f.describe("r.xml") for f in result.findings]
    assert result.record_count == records
