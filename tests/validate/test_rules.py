"""Tests of the domain rules: a passing and a failing case for each."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from lxml import etree

from gateway.sample import INJECTIONS
from gateway.validate import ValidationContext, validate_file
from tests.support.reports import (
    FULL_CONTEXT,
    TODAY,
    W,
    edited,
    first_plain_record,
    sample_bytes,
    set_text,
    write,
)

# Injections that change the header's sender also make it differ from the
# uploading intermediary, so they are checked without a sender context.
WITHOUT_SENDER = {"PAYROLL-TAX-NUMBER-ELEVEN-TEST", "PAYROLL-TAX-NUMBER-SUBNUMBER"}


def context_for(code: str) -> ValidationContext:
    """The full upload context, minus the sender where the rule needs that."""
    if code in WITHOUT_SENDER:
        return dataclasses.replace(FULL_CONTEXT, sender=None)
    return FULL_CONTEXT


def test_clean_sample_passes_every_rule(tmp_path: Path) -> None:
    """A sample from the configured sender passes with the full context."""
    result = validate_file(write(tmp_path, sample_bytes(200)), FULL_CONTEXT)

    assert result.findings == []
    assert result.valid


@pytest.mark.parametrize("code", sorted(INJECTIONS))
@pytest.mark.parametrize("streaming", [False, True], ids=["tree", "stream"])
def test_each_injection_is_reported_with_its_code(
    tmp_path: Path, code: str, streaming: bool
) -> None:
    """Breaking one rule yields exactly that rule's code, on both paths."""
    data = sample_bytes(20, inject=code)

    result = validate_file(
        write(tmp_path, data), context_for(code), streaming=streaming
    )

    assert not result.valid
    assert result.codes == [code]


@pytest.mark.parametrize("kind", ["week", "four-weeks", "month"])
def test_each_period_kind_passes(tmp_path: Path, kind: str) -> None:
    """Samples of every period kind are consistent with their kind."""
    data = sample_bytes(10, period_kind=kind)

    assert validate_file(write(tmp_path, data), FULL_CONTEXT).valid


@pytest.mark.parametrize(
    ("kind", "start", "end", "valid"),
    [
        ("week", "2026-03-09", "2026-03-15", True),  # Monday to Sunday
        ("week", "2026-03-11", "2026-03-17", True),  # any seven days
        ("week", "2026-03-09", "2026-03-16", False),  # eight days
        ("four-weeks", "2026-02-16", "2026-03-15", True),  # 28 days
        ("four-weeks", "2026-02-17", "2026-03-15", False),  # 27 days
        ("month", "2026-02-01", "2026-02-28", True),  # February 2026
        ("month", "2026-02-01", "2026-03-01", False),  # a day too long
        ("month", "2026-02-02", "2026-03-01", False),  # 28 days, not a month
    ],
)
def test_period_kind_rule(
    tmp_path: Path, kind: str, start: str, end: str, valid: bool
) -> None:
    """The header's period must match its kind exactly."""

    def change(root: etree._Element) -> None:
        set_text("w:Header/w:PeriodKind", kind)(root)
        set_text("w:Header/w:PeriodStart", start)(root)
        set_text("w:Header/w:PeriodEnd", end)(root)

    data = edited(sample_bytes(5), change)
    context = dataclasses.replace(FULL_CONTEXT, known_municipalities=None)
    result = validate_file(write(tmp_path, data), context)

    codes = set(result.codes) - {"EMPLOYMENT-OUTSIDE-PERIOD", "HOURS-IMPLAUSIBLE"}
    assert (codes == set()) is valid, result.codes
    if not valid:
        assert codes == {"PERIOD-KIND-MISMATCH"}


def test_creation_time_far_ahead_is_reported(tmp_path: Path) -> None:
    """A creation time more than a day ahead of today is implausible."""
    data = edited(
        sample_bytes(3), set_text("w:Header/w:CreatedAt", "2026-03-21T08:00:00Z")
    )

    result = validate_file(write(tmp_path, data), FULL_CONTEXT)

    assert result.codes == ["DATE-IN-FUTURE"]


def test_creation_time_within_a_day_is_accepted(tmp_path: Path) -> None:
    """Clocks and zones may put the creation time a little ahead."""
    data = edited(
        sample_bytes(3), set_text("w:Header/w:CreatedAt", "2026-03-19T08:00:00+01:00")
    )

    assert validate_file(write(tmp_path, data), FULL_CONTEXT).valid


def test_corrections_may_be_negative(tmp_path: Path) -> None:
    """A correction carries differences, so negative amounts are fine there."""
    data = sample_bytes(200)
    root = etree.fromstring(data)
    corrections = root.xpath("w:Record[w:Corrects]", namespaces=W)
    assert corrections, "the seed should produce at least one correction"
    assert corrections[0].findtext(f"{{{W['w']}}}NetPaid").startswith("-")

    assert validate_file(write(tmp_path, data), FULL_CONTEXT).valid


def test_net_equal_to_ceiling_is_accepted(tmp_path: Path) -> None:
    """Net paid may equal gross plus holiday allowance plus additions."""

    def change(root: etree._Element) -> None:
        record = first_plain_record(root)
        for name, text in (
            ("GrossWage", "500.00"),
            ("HolidayAllowancePaid", "40.00"),
            ("OtherNetAdditions", "10.00"),
            ("WageTaxWithheld", "0.00"),
            ("OtherNetDeductions", "0.00"),
            ("NetPaid", "550.00"),
        ):
            record.find(f"{{{W['w']}}}{name}").text = text

    data = edited(sample_bytes(3), change)

    assert validate_file(write(tmp_path, data), FULL_CONTEXT).valid


def test_unknown_municipality_without_sender(tmp_path: Path) -> None:
    """Known municipalities are checked even when the sender is not known."""
    data = sample_bytes(5, inject="MUNICIPALITY-UNKNOWN")
    context = dataclasses.replace(FULL_CONTEXT, sender=None)

    assert validate_file(write(tmp_path, data), context).codes == [
        "MUNICIPALITY-UNKNOWN"
    ]


def test_rules_needing_context_are_skipped_without_it(tmp_path: Path) -> None:
    """Without context, municipality and sender rules do not apply."""
    for code in (
        "MUNICIPALITY-UNKNOWN",
        "MUNICIPALITY-NOT-AUTHORISED",
        "SENDER-MISMATCH",
    ):
        data = sample_bytes(5, inject=code)
        context = ValidationContext(today=TODAY)

        assert validate_file(write(tmp_path, data), context).valid, code


def test_employment_ended_before_period_is_outside(tmp_path: Path) -> None:
    """An employment that ended before the period began does not overlap it."""

    def change(root: etree._Element) -> None:
        record = first_plain_record(root)
        end = record.find(f"{{{W['w']}}}EmploymentEnd")
        if end is None:
            end = etree.Element(f"{{{W['w']}}}EmploymentEnd")
            record.find(f"{{{W['w']}}}PaymentDate").addprevious(end)
        record.find(f"{{{W['w']}}}EmploymentStart").text = "2025-01-01"
        end.text = "2026-03-01"

    data = edited(sample_bytes(3), change)

    result = validate_file(write(tmp_path, data), FULL_CONTEXT)

    assert result.codes == ["EMPLOYMENT-OUTSIDE-PERIOD"]


def test_result_counts_records_per_municipality(tmp_path: Path) -> None:
    """The result names the message and counts its records per municipality."""
    result = validate_file(write(tmp_path, sample_bytes(30)), FULL_CONTEXT)

    assert result.record_count == 30
    assert sum(result.records_per_municipality.values()) == 30
    assert set(result.records_per_municipality) <= {"GM0599", "GM0344", "GM0014"}
    assert result.message_id is not None and len(result.message_id) == 36
