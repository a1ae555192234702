"""Tests of the domain rules: a passing and a failing case for each."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from gateway.sample import INJECTIONS
from gateway.validate import ValidationContext, validate_file
from gateway.validate.rules import _amount_text, _more
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


@pytest.mark.parametrize("streaming", [False, True], ids=["tree", "stream"])
def test_amounts_with_white_space_compare_by_value(
    tmp_path: Path, streaming: bool
) -> None:
    """White space the schema collapses around an amount does not change its value."""

    def change(root: etree._Element) -> None:
        record = first_plain_record(root)
        record.find(f"{{{W['w']}}}TaxableWage").text = " 7.00 "
        record.find(f"{{{W['w']}}}WageTaxWithheld").text = "17.80"

    data = edited(sample_bytes(3), change)

    result = validate_file(write(tmp_path, data), FULL_CONTEXT, streaming=streaming)

    assert result.codes == ["AMOUNT-TAX-ABOVE-TAXABLE"]


CENTS = st.integers(min_value=0, max_value=10**11 - 1)


@given(CENTS, CENTS)
def test_amount_texts_compare_as_their_amounts(first: int, second: int) -> None:
    """Non-negative amounts in schema form compare as texts as they do as numbers."""
    assert _more(_amount_text(first), _amount_text(second)) is (first > second)


@given(CENTS)
def test_amount_text_is_in_schema_form(cents: int) -> None:
    """Cents written as an amount read back as the same cents, without padding."""
    text = _amount_text(cents)

    assert int(text.replace(".", "")) == cents
    assert re.fullmatch(r"(0|[1-9][0-9]*)\.[0-9]{2}", text)


def _spaced(name: str, text: str) -> Callable[[etree._Element], None]:
    """A change that gives the first plain record's *name* the value *text*."""

    def change(root: etree._Element) -> None:
        first_plain_record(root).find(f"{{{W['w']}}}{name}").text = text

    return change


@pytest.mark.parametrize("streaming", [False, True], ids=["tree", "stream"])
@pytest.mark.parametrize(
    ("change", "code"),
    [
        # A negative amount hidden behind a space is still negative.
        (_spaced("OtherNetDeductions", " -1.00"), "AMOUNT-NEGATIVE"),
        # A payment date far ahead stays far ahead with a space before it.
        (_spaced("PaymentDate", "\n2099-01-01 "), "DATE-IN-FUTURE"),
        # A birth date behind a tab is still checked for plausibility.
        (_spaced("BirthDate", "\t1890-01-01"), "BIRTH-DATE-IMPLAUSIBLE"),
        # The period's dates are read through the space the schema collapses.
        (set_text("w:Header/w:PeriodEnd", " 2026-01-01 "), "PERIOD-END-BEFORE-START"),
        # So is the creation time.
        (
            set_text("w:Header/w:CreatedAt", " 2099-03-21T08:00:00Z"),
            "DATE-IN-FUTURE",
        ),
    ],
    ids=["amount", "payment-date", "birth-date", "period", "created-at"],
)
def test_white_space_the_schema_collapses_hides_no_value(
    tmp_path: Path,
    change: Callable[[etree._Element], None],
    code: str,
    streaming: bool,
) -> None:
    """Dates and amounts with white space around them are judged by their value."""
    data = edited(sample_bytes(3), change)

    result = validate_file(write(tmp_path, data), FULL_CONTEXT, streaming=streaming)

    assert code in result.codes


@pytest.mark.parametrize("streaming", [False, True], ids=["tree", "stream"])
def test_white_space_around_a_plausible_date_is_no_finding(
    tmp_path: Path, streaming: bool
) -> None:
    """A birth date the schema accepts with spaces around it is judged by its value."""
    data = edited(sample_bytes(3), _spaced("BirthDate", " 1990-05-17\n"))

    result = validate_file(write(tmp_path, data), FULL_CONTEXT, streaming=streaming)

    assert result.codes == []
