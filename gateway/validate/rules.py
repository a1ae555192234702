"""Domain rules: what the wage-report schema cannot express.

The rules run on a Header or Record that passed the schema, so every value has
its schema form: dates are ``YYYY-MM-DD`` (and compare correctly as text) and
amounts ``-?digits.dd`` without leading zeros (compared as texts when none is
negative, else as integer cents).

Consistency rules on amounts apply to ordinary records only: a correction (a
record with ``Corrects``) carries differences against an earlier record, as
corrections in the loonaangifte do, and differences may be negative and need
not add up.

Messages name fields and rules, never values: no BSN, name, date or amount.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from lxml import etree

from gateway.validate.context import SenderContext, ValidationContext
from gateway.validate.fields import (
    ADDITIONS,
    BIRTH_DATE,
    BSN,
    CORRECTS,
    DEDUCTIONS,
    EMPLOYMENT_END,
    EMPLOYMENT_START,
    GROSS,
    HOLIDAY,
    HOURS,
    MUNICIPALITY,
    NET,
    PAYMENT_DATE,
    RECORD_ID,
    SLOT_NAMES,
    SOCIAL_INSURANCE,
    TAX,
    TAXABLE,
    XML_SPACE,
)
from gateway.validate.findings import Finding, Severity
from gateway.validate.hardening import source_line
from gateway.validate.numbers import (
    is_valid_bsn,
    is_valid_payroll_tax_number,
    payroll_tax_subnumber_valid,
)
from gateway.validate.schemas import WAGE_REPORT_NS

_NS = "{" + WAGE_REPORT_NS + "}"

# Dates further ahead than this are implausible: a payroll is run for a period
# that has ended or is about to end, and paid within weeks.
FUTURE_DAYS = 31
# A creation time may run ahead of the gateway's clock by at most a day (zones,
# skewed clocks); more means a wrong clock or a wrong field.
CREATED_AHEAD = dt.timedelta(days=1)
# Dutch law allows light work from 13 (Arbeidstijdenbesluit); past 100, a birth
# date in a payroll is a typing error.
MIN_AGE, MAX_AGE = 13, 100
PERIOD_DAYS = {"week": 7, "four-weeks": 28}

_PAYROLL_TAX_NUMBER = re.compile(r"[0-9]{9}L[0-9]{2}")


def _tag(name: str) -> str:
    return _NS + name


@dataclass(frozen=True)
class Period:
    """The pay period a report covers."""

    kind: str
    start: dt.date
    end: dt.date

    @property
    def days(self) -> int:
        """Number of calendar days, both ends included."""
        return (self.end - self.start).days + 1


@dataclass
class HeaderFacts:
    """What the record rules need from the header."""

    message_id: str | None = None
    period: Period | None = None


def _date(text: str | None) -> dt.date | None:
    # The schema allowed white space around the date (see fields.XML_SPACE).
    try:
        return dt.date.fromisoformat((text or "").strip(XML_SPACE))
    except ValueError:
        return None


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year without it
        return day.replace(year=day.year - years, day=28)


@dataclass
class _HeaderScope:
    """The header's elements by tag, and the findings about them."""

    elements: dict[str, etree._Element]
    path: str
    findings: list[Finding] = field(default_factory=list)

    def text(self, name: str) -> str | None:
        """The text of the header element called *name*, if present."""
        element = self.elements.get(_tag(name))
        return None if element is None else element.text

    def error(self, code: str, message: str, name: str) -> None:
        """Add an error about the element *name* (a path below the scope)."""
        element = self.elements.get(_tag(name.rpartition("/")[2]))
        line = None if element is None else source_line(element)
        self.findings.append(
            Finding(
                code,
                Severity.ERROR,
                message,
                line=line,
                path=f"{self.path}/{name}",
            )
        )


class RuleBook:
    """Applies the domain rules to a Header and then to each Record."""

    def __init__(self, context: ValidationContext) -> None:
        self.context = context
        self.today = context.today or dt.date.today()
        self.latest_date = self.today + dt.timedelta(days=FUTURE_DAYS)
        self.header = HeaderFacts()
        self.record_ids: set[str] = set()
        self.known = context.known_municipalities
        sender = context.sender
        self.authorised = None if sender is None else sender.authorised_municipalities
        self._record_bounds()

    # Header ------------------------------------------------------------------

    def check_header(self, header: etree._Element, path: str) -> list[Finding]:
        """Findings for the header; remembers the message id and period."""
        scope = _HeaderScope(
            {e.tag: e for e in header.iter() if isinstance(e.tag, str)}, path
        )
        self.header.message_id = scope.text("MessageId")
        self._payroll_tax_number(scope)
        if self.context.sender is not None:
            self._same_sender(scope, self.context.sender)
        self._created_at(scope)
        self.header.period = self._period(scope)
        self._record_bounds()
        return scope.findings

    def _payroll_tax_number(self, scope: _HeaderScope) -> None:
        number = scope.text("PayrollTaxNumber") or ""
        if not _PAYROLL_TAX_NUMBER.fullmatch(number):
            return
        if not is_valid_payroll_tax_number(number):
            scope.error(
                "PAYROLL-TAX-NUMBER-ELEVEN-TEST",
                "the loonheffingennummer's 9 digits fail the eleven-test",
                "Sender/PayrollTaxNumber",
            )
        if not payroll_tax_subnumber_valid(number):
            scope.error(
                "PAYROLL-TAX-NUMBER-SUBNUMBER",
                "the loonheffingennummer's subnumber is 00; subnumbers start at 01",
                "Sender/PayrollTaxNumber",
            )

    def _same_sender(self, scope: _HeaderScope, sender: SenderContext) -> None:
        if scope.text("KvkNumber") != sender.kvk:
            scope.error(
                "SENDER-MISMATCH",
                "the KvK number in the header is not the uploading intermediary's",
                "Sender/KvkNumber",
            )
        if scope.text("PayrollTaxNumber") != sender.payroll_tax_number:
            scope.error(
                "SENDER-MISMATCH",
                "the loonheffingennummer in the header is not the uploading "
                "intermediary's",
                "Sender/PayrollTaxNumber",
            )

    def _created_at(self, scope: _HeaderScope) -> None:
        try:
            text = (scope.text("CreatedAt") or "").strip(XML_SPACE)
            created = dt.datetime.fromisoformat(text)
        except ValueError:
            return
        if created.tzinfo is None:
            return
        now = dt.datetime.combine(self.today, dt.time.max, dt.UTC)
        if created - now > CREATED_AHEAD:
            scope.error(
                "DATE-IN-FUTURE",
                "the creation time lies more than a day in the future",
                "CreatedAt",
            )

    def _period(self, scope: _HeaderScope) -> Period | None:
        start, end = _date(scope.text("PeriodStart")), _date(scope.text("PeriodEnd"))
        kind = scope.text("PeriodKind") or ""
        if start is None or end is None:
            return None
        for name, day in (("PeriodStart", start), ("PeriodEnd", end)):
            if day > self.latest_date:
                scope.error(
                    "DATE-IN-FUTURE",
                    f"the period lies more than {FUTURE_DAYS} days in the future",
                    name,
                )
        if end < start:
            scope.error(
                "PERIOD-END-BEFORE-START",
                "the period ends before it starts",
                "PeriodEnd",
            )
            return None
        period = Period(kind, start, end)
        if not _fits_kind(period):
            scope.error(
                "PERIOD-KIND-MISMATCH",
                f"the period does not match its kind {kind!r} ({_kind_rule(kind)})",
                "PeriodEnd",
            )
        return period

    # Records -----------------------------------------------------------------
    #
    # The record rules run once per record, so they are written for speed: they
    # work on the record's values (one list indexed by slot, built by the caller),
    # compare dates as ISO strings (the schema guarantees YYYY-MM-DD) and amounts
    # as texts or integer cents, and only look up elements again to place a
    # finding.

    def _record_bounds(self) -> None:
        period = self.header.period
        reference = period.end if period else self.today
        self.latest_text = self.latest_date.isoformat()
        self.born_after = _years_before(reference, MAX_AGE).isoformat()
        self.born_before = _years_before(reference, MIN_AGE).isoformat()
        self.period_texts = (
            (period.start.isoformat(), period.end.isoformat()) if period else None
        )
        self.max_hours = period.days * 24 * 100 if period else None
        self.max_hours_text = (
            None if self.max_hours is None else _amount_text(self.max_hours)
        )

    def check_record(
        self, record: etree._Element, values: Sequence[str], number: int
    ) -> list[Finding]:
        """Findings for the *number*-th record, which passed the schema.

        *values* holds the record's values by slot (see :mod:`.fields`).
        """
        problems = self.record_problems(values)
        return self.placed(record, values, number, problems) if problems else []

    def record_problems(self, values: Sequence[str]) -> list[Problem]:
        """What the rules find in a record's values, not yet placed in the file.

        For a caller that has the values without the record's element; it looks
        the element up, for :meth:`placed`, only when something is found.
        """
        problems: list[Problem] = []
        self._identity(values, problems)
        self._record_dates(values, problems)
        if values[CORRECTS]:
            self._correction(values, problems)
        else:
            self._amounts(values, problems)
        return problems

    @staticmethod
    def placed(
        record: etree._Element,
        values: Sequence[str],
        number: int,
        problems: list[Problem],
    ) -> list[Finding]:
        """The *problems* of the *number*-th record as findings on its elements."""
        path = f"/WageReport/Record[{number}]"
        return [_place(record, path, values[RECORD_ID], p) for p in problems]

    def _identity(self, values: Sequence[str], problems: list[Problem]) -> None:
        record_id = values[RECORD_ID]
        if record_id in self.record_ids:
            problems.append(_DUPLICATE)
        self.record_ids.add(record_id)
        if not is_valid_bsn(values[BSN]):
            problems.append(_BSN_PROBLEM)
        code = values[MUNICIPALITY]
        if self.known is not None and code not in self.known:
            problems.append(_unknown_municipality(code))
        elif self.authorised is not None and code not in self.authorised:
            problems.append(_unauthorised_municipality(code))

    def _record_dates(self, values: Sequence[str], problems: list[Problem]) -> None:
        if not self.born_after <= values[BIRTH_DATE] <= self.born_before:
            problems.append(_BIRTH_PROBLEM)
        if values[PAYMENT_DATE] > self.latest_text:
            problems.append(_PAYMENT_PROBLEM)
        start, end = values[EMPLOYMENT_START], values[EMPLOYMENT_END]
        if end and end < start:
            problems.append(_EMPLOYMENT_ORDER)
        elif self.period_texts is not None:
            first, last = self.period_texts
            if start > last or (end and end < first):
                problems.append(_EMPLOYMENT_OUTSIDE)

    def _amounts(self, values: Sequence[str], problems: list[Problem]) -> None:
        amounts = values[HOURS : NET + 1]
        # The schema leaves an amount only digits, a point, a minus sign and the
        # white space XSD collapses before its pattern. With digits and points
        # alone, every amount is non-negative and in schema form: they compare as
        # texts (see _more), and only a net above the gross needs the sum.
        if not "".join(amounts).replace(".", "").isdigit():
            self._amounts_in_cents(values, problems)
            return
        hours, gross, taxable, _social, tax, holiday, additions, _deductions, net = (
            amounts
        )
        if _more(tax, taxable):
            problems.append(_TAX_PROBLEM)
        if _more(net, gross) and _cents(net) > (
            _cents(gross) + _cents(holiday) + _cents(additions)
        ):
            problems.append(_NET_PROBLEM)
        if self.max_hours_text is not None and _more(hours, self.max_hours_text):
            problems.append(_HOURS_PROBLEM)

    def _amounts_in_cents(self, values: Sequence[str], problems: list[Problem]) -> None:
        # The schema guarantees the form -?digits.dd, so cents are the digits;
        # the amounts sit side by side in the slots, so one split reads them all.
        amounts = " ".join(values[HOURS : NET + 1])
        hours, gross, taxable, _social, tax, holiday, additions, _deductions, net = map(
            int, amounts.replace(".", "").split()
        )
        if "-" in amounts:
            self._negative_amounts(values, problems)
        if tax > taxable:
            problems.append(_TAX_PROBLEM)
        if net > gross + holiday + additions:
            problems.append(_NET_PROBLEM)
        if self.max_hours is not None and hours > self.max_hours:
            problems.append(_HOURS_PROBLEM)

    @staticmethod
    def _negative_amounts(values: Sequence[str], problems: list[Problem]) -> None:
        # "-0.00" counts as negative in the two amounts no other rule compares,
        # and elsewhere only beside a value below zero.
        compared = [int(values[slot].replace(".", "")) for slot in _COMPARED]
        if min(compared) < 0 or "-" in values[SOCIAL_INSURANCE] + values[DEDUCTIONS]:
            problems.extend(
                _negative(SLOT_NAMES[slot])
                for slot in _AMOUNT_SLOTS
                if values[slot][0] == "-"
            )

    def _correction(self, values: Sequence[str], problems: list[Problem]) -> None:
        earlier = values[CORRECTS]
        own = self.header.message_id
        if own is not None and earlier.lower() == own.lower():
            problems.append(_SELF_REFERENCE)


def _more(amount: str, other: str) -> bool:
    """Whether *amount* is more than *other*, both non-negative in schema form.

    That form (``(0|[1-9][0-9]*)\\.[0-9]{2}``) has no leading zeros and always
    two decimals: a longer text is a larger amount, and texts of one length
    compare as their amounts do.
    """
    return len(amount) > len(other) or (len(amount) == len(other) and amount > other)


def _cents(amount: str) -> int:
    return int(amount.replace(".", ""))


def _amount_text(cents: int) -> str:
    """A non-negative number of cents (or hundredths) as an amount in schema form."""
    return f"{cents // 100}.{cents % 100:02d}"


# The amounts the consistency rules compare, in the order _amounts unpacks them.
_COMPARED = (HOURS, GROSS, TAXABLE, TAX, HOLIDAY, ADDITIONS, NET)
# Every amount, in the schema's order (the order of AMOUNT-NEGATIVE findings).
_AMOUNT_SLOTS = range(HOURS, NET + 1)

# A problem found in a record: finding code, message, name of the child it is on.
Problem = tuple[str, str, str]

_DUPLICATE = (
    "RECORD-ID-DUPLICATE",
    "this record id is already used earlier in the message",
    "RecordId",
)
_BSN_PROBLEM = ("BSN-ELEVEN-TEST", "the BSN fails the eleven-test", "Bsn")
_BIRTH_PROBLEM = (
    "BIRTH-DATE-IMPLAUSIBLE",
    f"the worker's age at the end of the period is not between {MIN_AGE} and {MAX_AGE}",
    "BirthDate",
)
_PAYMENT_PROBLEM = (
    "DATE-IN-FUTURE",
    f"the payment date lies more than {FUTURE_DAYS} days in the future",
    "PaymentDate",
)
_EMPLOYMENT_ORDER = (
    "EMPLOYMENT-END-BEFORE-START",
    "the employment ends before it starts",
    "EmploymentEnd",
)
_EMPLOYMENT_OUTSIDE = (
    "EMPLOYMENT-OUTSIDE-PERIOD",
    "the employment does not overlap the report's period",
    "EmploymentStart",
)
_TAX_PROBLEM = (
    "AMOUNT-TAX-ABOVE-TAXABLE",
    "the wage tax withheld is more than the taxable wage",
    "WageTaxWithheld",
)
_NET_PROBLEM = (
    "AMOUNT-NET-ABOVE-GROSS",
    "the net amount paid is more than gross wage plus holiday allowance plus "
    "other net additions",
    "NetPaid",
)
_HOURS_PROBLEM = (
    "HOURS-IMPLAUSIBLE",
    "more hours are paid than the period has",
    "HoursPaid",
)
_SELF_REFERENCE = (
    "CORRECTION-SELF-REFERENCE",
    "a correction must refer to a record of an earlier message",
    "Corrects",
)


def _unknown_municipality(code: str) -> Problem:
    return (
        "MUNICIPALITY-UNKNOWN",
        f"municipality {code} is not connected to the gateway",
        "MunicipalityCode",
    )


def _unauthorised_municipality(code: str) -> Problem:
    return (
        "MUNICIPALITY-NOT-AUTHORISED",
        f"the intermediary is not authorised to report to municipality {code}",
        "MunicipalityCode",
    )


def _negative(name: str) -> Problem:
    return (
        "AMOUNT-NEGATIVE",
        f"{name} is negative; only a correction may be negative",
        name,
    )


def _place(
    record: etree._Element, path: str, record_id: str | None, problem: Problem
) -> Finding:
    code, message, name = problem
    element = record.find(_tag(name))
    return Finding(
        code,
        Severity.ERROR,
        message,
        line=None if element is None else source_line(element),
        path=f"{path}/{name}",
        record_id=record_id,
    )


def _fits_kind(period: Period) -> bool:
    if period.kind == "month":
        last = calendar.monthrange(period.start.year, period.start.month)[1]
        return period.start.day == 1 and period.end == period.start.replace(day=last)
    return period.days == PERIOD_DAYS.get(period.kind, period.days)


def _kind_rule(kind: str) -> str:
    if kind == "month":
        return "a calendar month, from its first to its last day"
    return f"{PERIOD_DAYS.get(kind, 0)} days"
