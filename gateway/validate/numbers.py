"""Check digits of Dutch identification numbers.

Both the BSN (burgerservicenummer) and the fiscal number inside a
loonheffingennummer carry an eleven-test: multiply the first eight digits by 9,
8, 7, 6, 5, 4, 3 and 2, the ninth by -1; the sum must be divisible by 11. This
is the variant the BRP and the Belastingdienst use for these numbers (not the
older bank-account variant, whose last weight is +1).
"""

from __future__ import annotations

import operator

# Every digit is read as its ASCII code, 48 more than its value; the weights sum
# to 43, so the codes overshoot the weighted sum by 43 * 48.
_CODE_OFFSET = 43 * ord("0")
_WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2, -1)


def passes_eleven_test(digits: str) -> bool:
    """Whether nine ASCII digits pass the eleven-test (with -1 as last weight)."""
    if len(digits) != 9 or not digits.isascii() or not digits.isdigit():
        return False
    total: int = sum(map(operator.mul, _WEIGHTS, digits.encode("ascii")))
    return (total - _CODE_OFFSET) % 11 == 0


def is_valid_bsn(bsn: str) -> bool:
    """Whether *bsn* is nine digits that pass the eleven-test and are not all zero.

    000000000 passes the arithmetic but is no one's number.
    """
    return passes_eleven_test(bsn) and bsn != "000000000"


def is_valid_payroll_tax_number(number: str) -> bool:
    """Whether a loonheffingennummer's fiscal part (its first 9 digits) is valid."""
    fiscal = number[:9]
    return passes_eleven_test(fiscal) and fiscal != "000000000"


def payroll_tax_subnumber_valid(number: str) -> bool:
    """Whether the subnumber after the ``L`` is not ``00`` (subnumbers start at 01)."""
    return number[10:] != "00"
