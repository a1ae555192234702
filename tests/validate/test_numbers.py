"""Tests of the BSN and loonheffingennummer eleven-tests."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.sample import TEST_BSNS
from gateway.validate.numbers import (
    is_valid_bsn,
    is_valid_payroll_tax_number,
    passes_eleven_test,
    payroll_tax_subnumber_valid,
)

WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2, -1)


def reference_eleven_test(digits: str) -> bool:
    """The rule as the BRP states it, written as plainly as possible."""
    return sum(int(d) * w for d, w in zip(digits, WEIGHTS, strict=True)) % 11 == 0


nine_digits = st.text(alphabet="0123456789", min_size=9, max_size=9)


def test_known_valid_bsn_passes() -> None:
    """A BSN of the RvIG's test persons passes."""
    assert is_valid_bsn("999993653")


def test_changed_digit_fails() -> None:
    """Changing one digit of a valid BSN makes it fail."""
    assert not is_valid_bsn("999993654")


def test_all_zeros_is_rejected() -> None:
    """000000000 passes the arithmetic but is not a BSN."""
    assert passes_eleven_test("000000000")
    assert not is_valid_bsn("000000000")


def test_wrong_length_and_non_digits_fail() -> None:
    """Only nine ASCII digits can pass."""
    fullwidth = "".join(chr(0xFF10 + int(d)) for d in "999993653")
    for text in ("99999365", "9999936530", "99999365a", fullwidth, ""):
        assert not is_valid_bsn(text), text


@given(nine_digits)
def test_matches_the_plain_definition(digits: str) -> None:
    """The fast implementation agrees with the definition for any nine digits."""
    assert passes_eleven_test(digits) == reference_eleven_test(digits)


@given(nine_digits, st.integers(0, 8), st.integers(1, 9))
def test_any_single_digit_change_breaks_a_valid_number(
    digits: str, position: int, delta: int
) -> None:
    """Every weight is non-zero modulo 11, so one changed digit is always caught."""
    if not passes_eleven_test(digits):
        return
    changed = str((int(digits[position]) + delta) % 10)
    assert not passes_eleven_test(digits[:position] + changed + digits[position + 1 :])


def test_sample_bsns_are_the_test_block() -> None:
    """The sample draws from 999 990 000 to 999 999 999, only valid numbers."""
    assert len(TEST_BSNS) == 909
    assert all(b.startswith("99999") and is_valid_bsn(b) for b in TEST_BSNS)


def test_payroll_tax_number() -> None:
    """The fiscal part passes the eleven-test; subnumber 00 is refused."""
    assert is_valid_payroll_tax_number("123456782L01")
    assert not is_valid_payroll_tax_number("123456783L01")
    assert payroll_tax_subnumber_valid("123456782L01")
    assert not payroll_tax_subnumber_valid("123456782L00")
