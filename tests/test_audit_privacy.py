"""Tests of the personal-data scanner the suite runs over its own output."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.sample import TEST_BSNS
from tests.support.privacy import (
    find_in_sections,
    find_in_text,
    find_in_tree,
    sample_surnames,
)

SURNAME = sorted(sample_surnames())[0]


@pytest.mark.parametrize(
    "text",
    [
        f'"bsn":"{TEST_BSNS[0]}"',  # a BSN in a JSON string
        f"record {TEST_BSNS[1]} rejected",  # a BSN in a sentence
        f"size={TEST_BSNS[2]}",  # a BSN after an equals sign
        f"{SURNAME}, J.",  # a sample surname
    ],
)
def test_personal_data_is_found(text: str) -> None:
    """BSNs standing alone and sample surnames are reported."""
    assert list(find_in_text(text, "x"))


@pytest.mark.parametrize(
    "text",
    [
        "hash a999990019b and 9999900190",  # digits glued to hex or longer runs
        "sha256 999990019abcdef0123456789",  # a hex digest starting with digits
        "k1:999990019ffee",  # a pseudonym
        "loonheffingennummer 999990019L01",  # a payroll tax number
        "size 123456789",  # nine digits that fail the eleven-test
        "2026-03-02T09:01:00.123456Z",  # a time stamp
        "-----BEGIN PGP MESSAGE-----\n999990019\n-----END PGP MESSAGE-----",  # armor
    ],
)
def test_lookalikes_are_not_flagged(text: str) -> None:
    """Digit runs inside hex, ids, timestamps and armor are no hit."""
    assert list(find_in_text(text, "x")) == []


def test_a_tree_scan_looks_at_logs_and_receipts_only(tmp_path: Path) -> None:
    """Audit, log and receipt files are scanned; encrypted data is not."""
    planted = {
        "audit/audit-2026-01-01.jsonl": TEST_BSNS[0],
        "daemon.log": TEST_BSNS[0],
        "spool/receipts/a/x.receipt.xml": TEST_BSNS[0],
        "spool/outbox/m/x.xml.gpg": TEST_BSNS[0],
    }
    for name, content in planted.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    try:
        places = sorted(hit.place for hit in find_in_tree(tmp_path))
    finally:
        for name in planted:
            (tmp_path / name).unlink()

    assert places == [
        "audit/audit-2026-01-01.jsonl",
        "daemon.log",
        "spool/receipts/a/x.receipt.xml",
    ]


def test_captured_stderr_and_logs_are_scanned_but_not_stdout() -> None:
    """The captured output of a test is scanned for its stderr and log parts."""
    sections = [
        ("Captured stdout call", TEST_BSNS[0]),
        ("Captured stderr call", TEST_BSNS[0]),
        ("Captured log call", SURNAME),
    ]

    hits = find_in_sections(sections, "t")

    assert [hit.place for hit in hits] == [
        "t (Captured stderr call)",
        "t (Captured log call)",
    ]


def test_a_hit_does_not_repeat_the_value() -> None:
    """A hit names the place and the kind of data, never the data itself."""
    (hit,) = find_in_text(f"x {TEST_BSNS[0]}", "file.log")

    assert TEST_BSNS[0] not in str(hit)
