"""Tests of the receipt document."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from gateway.route import outbox_name, receipt_name
from gateway.route.receipt import ReceiptFacts, receipt_xml
from gateway.validate.findings import Finding, Severity

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
R = "{urn:loonbrug:receipt:v1}"
BASE = {
    "upload_name": "week10.xml.gpg",
    "upload_sha256": "ab" * 32,
    "upload_size": 4096,
    "received_at": "2026-03-02T09:30:00+00:00",
}


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    """The receipt schema."""
    return etree.XMLSchema(etree.parse(str(SCHEMAS / "receipt-v1.xsd")))


def test_accepted_receipt_lists_records_per_municipality(
    schema: etree.XMLSchema,
) -> None:
    """An accepted receipt counts the records delivered to each municipality."""
    facts = ReceiptFacts(
        outcome="accepted",
        message_id="0b8f5a3e-58a4-4c3e-9d43-1d1b4f2b6a10",
        accepted={"GM0599": 12, "GM0344": 3},
        **BASE,
    )

    root = etree.fromstring(receipt_xml(facts))

    assert schema.validate(root), schema.error_log
    counts = {m.get("code"): m.get("records") for m in root.iter(f"{R}Municipality")}
    assert counts == {"GM0599": "12", "GM0344": "3"}


def test_rejected_receipt_lists_every_finding_with_its_place(
    schema: etree.XMLSchema,
) -> None:
    """Each finding keeps its code, severity, line, column, path and record id."""
    findings = [
        Finding("BSN-ELEVEN-TEST", Severity.ERROR, "fails", 40, 5, "/W/R[2]/Bsn", "R2"),
        Finding("PGP-UNSIGNED", Severity.ERROR, "The message is not signed."),
    ]
    facts = ReceiptFacts(outcome="rejected", findings=findings, truncated=True, **BASE)

    root = etree.fromstring(receipt_xml(facts))

    assert schema.validate(root), schema.error_log
    first, second = root.iter(f"{R}Finding")
    assert dict(first.attrib) == {
        "code": "BSN-ELEVEN-TEST",
        "severity": "error",
        "line": "40",
        "column": "5",
        "path": "/W/R[2]/Bsn",
        "recordId": "R2",
    }
    assert second.text == "The message is not signed."
    assert root.find(f"{R}Findings").get("truncated") == "true"
    assert root.find(f"{R}MessageId") is None


def test_control_characters_in_the_upload_name_are_replaced(
    schema: etree.XMLSchema,
) -> None:
    """A name XML cannot carry still gives a valid receipt."""
    facts = ReceiptFacts(outcome="rejected", **{**BASE, "upload_name": "a\x01b.gpg"})

    root = etree.fromstring(receipt_xml(facts))

    assert schema.validate(root)
    assert root.findtext(f"{R}Upload/{R}Name") == "a?b.gpg"


def test_names_are_deterministic() -> None:
    """Outbox and receipt names depend only on message, code and upload name."""
    assert outbox_name("0B8F5A3E-58A4-4C3E-9D43-1D1B4F2B6A10", "GM0599") == (
        "0b8f5a3e-58a4-4c3e-9d43-1d1b4f2b6a10.GM0599.xml.gpg"
    )
    assert receipt_name("week10.xml.gpg") == "week10.xml.gpg.receipt.asc"


def test_overlong_upload_name_gets_a_short_unique_receipt_name() -> None:
    """A receipt name never exceeds what the file system can store."""
    long_a, long_b = "a" * 250 + ".gpg", "a" * 250 + ".pgp"

    name_a, name_b = receipt_name(long_a), receipt_name(long_b)

    assert len(name_a.encode()) <= 255
    assert name_a != name_b
    assert name_a.endswith(".receipt.asc")
