"""Realistic, reproducible wage reports for tests, demos and benchmarks.

Everything in a sample is fictional. Names are drawn from common Dutch surnames
and initials, but combined at random. BSNs come from the block 999 990 000 to
999 999 999, which the RvIG (the agency that issues BSNs) uses for the fictitious
persons of its BRP test environment and never issues to residents; within that
block only the 909 numbers that pass the eleven-test are used, so in reports of
more than a few hundred records a BSN repeats, as it would for a worker with two
payslips.

The same seed, record count, sender, municipalities and day give the same bytes.
The pay period is the last one of its kind that ended before ``today``, so a
sample never lies in the future.

``inject`` breaks exactly one named rule (see :data:`INJECTIONS`); validation
then reports that rule's finding code.
"""

from __future__ import annotations

import datetime as dt
import io
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO
from xml.sax.saxutils import escape

from gateway.config import Intermediary
from gateway.validate.numbers import is_valid_bsn

NAMESPACE = "urn:loonbrug:wage-report:v1"
DEFAULT_MUNICIPALITIES = ("GM0599", "GM0344", "GM0014")

# Codes used by injections: GM9999 is not a municipality (CBS codes stop well
# below it); GM0363 (Amsterdam) is real but outside the demo's default set.
UNKNOWN_MUNICIPALITY = "GM9999"
OUTSIDE_MUNICIPALITY = "GM0363"

_TEST_BSN_FIRST = 999_990_000
_TEST_BSN_LAST = 999_999_999
_RECORDS_PER_WRITE = 500


@dataclass(frozen=True)
class SampleSender:
    """The intermediary named in a sample's header."""

    name: str
    kvk: str
    payroll_tax_number: str

    @classmethod
    def from_intermediary(cls, intermediary: Intermediary) -> SampleSender:
        """The sender as the configuration knows this intermediary."""
        return cls(
            name=intermediary.name,
            kvk=intermediary.kvk,
            payroll_tax_number=intermediary.payroll_tax_number,
        )


DEFAULT_SENDER = SampleSender(
    name="Uitzendbureau Voorbeeld B.V.",
    kvk="12345678",
    payroll_tax_number="123456782L01",
)


def _test_bsns() -> tuple[str, ...]:
    numbers = range(_TEST_BSN_FIRST, _TEST_BSN_LAST + 1)
    return tuple(str(n) for n in numbers if is_valid_bsn(str(n)))


TEST_BSNS = _test_bsns()

_SURNAMES = (
    ("", "Jansen"),
    ("de", "Vries"),
    ("van den", "Berg"),
    ("", "Bakker"),
    ("", "Visser"),
    ("", "Smit"),
    ("", "Meijer"),
    ("de", "Boer"),
    ("", "Mulder"),
    ("de", "Groot"),
    ("", "Bos"),
    ("", "Vos"),
    ("", "Peters"),
    ("", "Hendriks"),
    ("van", "Leeuwen"),
    ("", "Dekker"),
    ("", "Brouwer"),
    ("de", "Wit"),
    ("", "Dijkstra"),
    ("", "Smits"),
    ("de", "Graaf"),
    ("van der", "Meer"),
    ("van der", "Linden"),
    ("", "Kok"),
    ("", "Jacobs"),
    ("de", "Haan"),
    ("", "Vermeulen"),
    ("van den", "Heuvel"),
    ("van der", "Veen"),
    ("van den", "Broek"),
    ("de", "Bruijn"),
    ("de", "Jong"),
    ("van", "Dijk"),
    ("", "Janssen"),
    ("", "Verhoeven"),
    ("", "Postma"),
    ("", "Hoekstra"),
    ("", "Öztürk"),
    ("", "Yılmaz"),  # noqa: RUF001 - the Turkish dotless i is meant
    ("", "El Amrani"),
    ("", "Çelik"),
    ("", "Nowak"),
    ("", "Kowalski"),
    ("", "Wiśniewska"),
    ("", "Popescu"),
    ("", "Pereira"),
    ("", "Bouzid"),
    ("", "Sánchez"),
)
_INITIAL_LETTERS = "AABCDEEFGHIJJKLMMNOPRSSTWY"


@dataclass
class _Payslip:
    """One record's values before they are written."""

    record_id: str
    municipality: str
    bsn: str
    birth_date: dt.date
    prefix: str
    surname: str
    initials: str
    employment_start: dt.date
    employment_end: dt.date | None
    payment_date: dt.date
    hours: int  # hundredths of an hour
    amounts: dict[str, int]  # cents, by element name
    corrects: tuple[str, str] | None = None
    raw: dict[str, str] = field(default_factory=dict)  # texts written as given


@dataclass
class _Report:
    """A sample's header values and how its records are made."""

    message_id: str
    created_at: dt.datetime
    sender: SampleSender
    period_kind: str
    period_start: dt.date
    period_end: dt.date
    municipalities: tuple[str, ...]
    rng: random.Random
    outside_municipality: str
    work_start: dt.date  # the period the payslips cover, whatever the header says
    work_end: dt.date
    doctype: bool = False
    truncate: bool = False


def period_before(today: dt.date, kind: str) -> tuple[dt.date, dt.date]:
    """The last pay period of *kind* (week, four-weeks, month) ended before today."""
    if kind == "month":
        end = today.replace(day=1) - dt.timedelta(days=1)
        return end.replace(day=1), end
    end = today - dt.timedelta(days=today.weekday() + 1)  # the Sunday before
    days = 7 if kind == "week" else 28
    return end - dt.timedelta(days=days - 1), end


def _initials(rng: random.Random) -> str:
    count = rng.choice((1, 1, 2, 2, 2, 3))
    return "".join(f"{rng.choice(_INITIAL_LETTERS)}." for _ in range(count))


def _amounts(rng: random.Random, hours: int, days: int) -> dict[str, int]:
    rate = rng.randint(1440, 2850)  # cents per hour, from minimum wage upwards
    gross = hours * rate // 100
    holiday = gross * 8 // 100 if rng.random() < 0.4 else 0
    pension = gross * rng.choice((0, 0, 3, 5)) // 100
    taxable = gross + holiday - pension
    tax = taxable * rng.randint(0, 37) // 100
    additions = rng.choice((0, 0, 0, 950, 1840, 2500)) * days // 7
    deductions = rng.choice((0, 0, 0, 500, 1250)) * days // 7
    net = taxable - tax + additions - deductions
    if net < 0:
        deductions += net
        net = 0
    return {
        "GrossWage": gross,
        "TaxableWage": taxable,
        "SocialInsuranceWage": taxable - holiday // 2,
        "WageTaxWithheld": tax,
        "HolidayAllowancePaid": holiday,
        "OtherNetAdditions": additions,
        "OtherNetDeductions": deductions,
        "NetPaid": net,
    }


def _correction(rng: random.Random, payslip: _Payslip) -> None:
    """Turn a payslip into a correction: differences against an earlier record."""
    earlier = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    payslip.corrects = (earlier, f"R{rng.randint(1, 999_999):07d}")
    payslip.hours = -rng.randint(1, 8) * 100
    payslip.amounts = {name: -(value // 4) for name, value in payslip.amounts.items()}


def _payslip(report: _Report, number: int, *, may_correct: bool) -> _Payslip:
    rng = report.rng
    days = (report.work_end - report.work_start).days + 1
    hours = rng.randint(4 * 4, 40 * 4) * 25 * days // 7  # quarter hours
    start = report.work_start - dt.timedelta(days=rng.randint(0, 3 * 365))
    ends = rng.random() < 0.1
    prefix, surname = rng.choice(_SURNAMES)
    payslip = _Payslip(
        record_id=f"R{number:07d}",
        municipality=rng.choice(report.municipalities),
        bsn=rng.choice(TEST_BSNS),
        birth_date=report.work_end - dt.timedelta(days=rng.randint(18 * 365, 66 * 365)),
        prefix=prefix,
        surname=surname,
        initials=_initials(rng),
        employment_start=start,
        employment_end=report.work_end - dt.timedelta(days=rng.randint(0, 5))
        if ends
        else None,
        payment_date=report.work_end + dt.timedelta(days=rng.randint(1, 4)),
        hours=hours,
        amounts=_amounts(rng, hours, days),
    )
    if rng.random() < 0.03 and may_correct:
        _correction(rng, payslip)
    return payslip


def _decimal(hundredths: int) -> str:
    sign = "-" if hundredths < 0 else ""
    whole, part = divmod(abs(hundredths), 100)
    return f"{sign}{whole}.{part:02d}"


def _record_xml(p: _Payslip) -> str:
    lines = [
        "  <Record>",
        f"    <RecordId>{p.record_id}</RecordId>",
        f"    <MunicipalityCode>{p.municipality}</MunicipalityCode>",
        f"    <Bsn>{p.bsn}</Bsn>",
        f"    <BirthDate>{p.birth_date.isoformat()}</BirthDate>",
    ]
    if p.prefix:
        lines.append(f"    <SurnamePrefix>{escape(p.prefix)}</SurnamePrefix>")
    lines += [
        f"    <Surname>{escape(p.surname)}</Surname>",
        f"    <Initials>{p.initials}</Initials>",
        f"    <EmploymentStart>{p.employment_start.isoformat()}</EmploymentStart>",
    ]
    if p.employment_end is not None:
        lines.append(
            f"    <EmploymentEnd>{p.employment_end.isoformat()}</EmploymentEnd>"
        )
    lines += [
        f"    <PaymentDate>{p.payment_date.isoformat()}</PaymentDate>",
        f"    <HoursPaid>{_decimal(p.hours)}</HoursPaid>",
    ]
    lines += [
        f"    <{n}>{p.raw.get(n) or _decimal(v)}</{n}>" for n, v in p.amounts.items()
    ]
    if p.corrects is not None:
        lines += [
            "    <Corrects>",
            f"      <MessageId>{p.corrects[0]}</MessageId>",
            f"      <RecordId>{p.corrects[1]}</RecordId>",
            "    </Corrects>",
        ]
    lines.append("  </Record>\n")
    return "\n".join(lines)


def _header_xml(report: _Report) -> str:
    sender = report.sender
    prolog = '<?xml version="1.0" encoding="UTF-8"?>\n'
    if report.doctype:
        prolog += '<!DOCTYPE WageReport [<!ENTITY note "sample">]>\n'
    return (
        f"{prolog}"
        f'<WageReport xmlns="{NAMESPACE}">\n'
        "  <Header>\n"
        f"    <MessageId>{report.message_id}</MessageId>\n"
        f"    <CreatedAt>{report.created_at.isoformat()}</CreatedAt>\n"
        "    <Sender>\n"
        f"      <Name>{escape(sender.name)}</Name>\n"
        f"      <KvkNumber>{sender.kvk}</KvkNumber>\n"
        f"      <PayrollTaxNumber>{sender.payroll_tax_number}</PayrollTaxNumber>\n"
        "    </Sender>\n"
        f"    <PeriodKind>{report.period_kind}</PeriodKind>\n"
        f"    <PeriodStart>{report.period_start.isoformat()}</PeriodStart>\n"
        f"    <PeriodEnd>{report.period_end.isoformat()}</PeriodEnd>\n"
        "  </Header>\n"
    )


@dataclass(frozen=True)
class Injection:
    """A way to break exactly one rule, named by the finding code it causes."""

    code: str
    description: str
    header: Callable[[_Report], None] | None = None
    record: Callable[[_Report, _Payslip], None] | None = None


def _bump_digit(digits: str, position: int) -> str:
    changed = str((int(digits[position]) + 1) % 10)
    return digits[:position] + changed + digits[position + 1 :]


def _replace_sender(report: _Report, **changes: str) -> None:
    values = {
        "name": report.sender.name,
        "kvk": report.sender.kvk,
        "payroll_tax_number": report.sender.payroll_tax_number,
    }
    report.sender = SampleSender(**(values | changes))


def _swap_period(report: _Report) -> None:
    report.period_start, report.period_end = report.period_end, report.period_start


def _stretch_period(report: _Report) -> None:
    report.period_start -= dt.timedelta(days=1)


def _duplicate_id(report: _Report, payslip: _Payslip) -> None:
    number = int(payslip.record_id[1:])
    payslip.record_id = f"R{number - 1:07d}"


def _self_correction(report: _Report, payslip: _Payslip) -> None:
    _correction(report.rng, payslip)
    payslip.corrects = (report.message_id, "R0000001")


def _too_many_hours(report: _Report, payslip: _Payslip) -> None:
    days = (report.period_end - report.period_start).days + 1
    payslip.hours = days * 24 * 100 + 100


def _set(name: str, value: Callable[[dict[str, int]], int]) -> Callable[..., None]:
    def change(report: _Report, payslip: _Payslip) -> None:
        payslip.amounts[name] = value(payslip.amounts)

    return change


def _gross_without_cents(report: _Report, payslip: _Payslip) -> None:
    payslip.raw["GrossWage"] = f"{payslip.amounts['GrossWage'] // 100}.5"


def _future_payment(report: _Report, payslip: _Payslip) -> None:
    payslip.payment_date = report.period_end + dt.timedelta(days=400)


def _child_worker(report: _Report, payslip: _Payslip) -> None:
    payslip.birth_date = report.period_end - dt.timedelta(days=5 * 365)


def _ends_before_start(report: _Report, payslip: _Payslip) -> None:
    payslip.employment_end = payslip.employment_start - dt.timedelta(days=1)


def _starts_after_period(report: _Report, payslip: _Payslip) -> None:
    payslip.employment_start = report.period_end + dt.timedelta(days=1)
    payslip.employment_end = None


def _municipality(code: str) -> Callable[[_Report, _Payslip], None]:
    def change(report: _Report, payslip: _Payslip) -> None:
        payslip.municipality = code

    return change


def _with_doctype(report: _Report) -> None:
    report.doctype = True


def _truncated(report: _Report) -> None:
    report.truncate = True


_INJECTION_LIST = (
    Injection(
        "BSN-ELEVEN-TEST",
        "one record's BSN has a digit changed",
        record=lambda r, p: setattr(p, "bsn", _bump_digit(p.bsn, 8)),
    ),
    Injection(
        "PAYROLL-TAX-NUMBER-ELEVEN-TEST",
        "the header's loonheffingennummer has a digit changed",
        header=lambda r: _replace_sender(
            r, payroll_tax_number=_bump_digit(r.sender.payroll_tax_number, 3)
        ),
    ),
    Injection(
        "PAYROLL-TAX-NUMBER-SUBNUMBER",
        "the header's loonheffingennummer has subnumber L00",
        header=lambda r: _replace_sender(
            r, payroll_tax_number=r.sender.payroll_tax_number[:10] + "00"
        ),
    ),
    Injection(
        "SENDER-MISMATCH",
        "the header's KvK number is not the sender's (needs a sender context)",
        header=lambda r: _replace_sender(r, kvk=_bump_digit(r.sender.kvk, 7)),
    ),
    Injection(
        "PERIOD-END-BEFORE-START",
        "the header's period ends before it starts",
        header=_swap_period,
    ),
    Injection(
        "PERIOD-KIND-MISMATCH",
        "the header's period is one day longer than its kind",
        header=_stretch_period,
    ),
    Injection(
        "DATE-IN-FUTURE",
        "one record's payment date lies more than a year ahead",
        record=_future_payment,
    ),
    Injection(
        "BIRTH-DATE-IMPLAUSIBLE",
        "one record's worker is five years old",
        record=_child_worker,
    ),
    Injection(
        "EMPLOYMENT-END-BEFORE-START",
        "one record's employment ends the day before it starts",
        record=_ends_before_start,
    ),
    Injection(
        "EMPLOYMENT-OUTSIDE-PERIOD",
        "one record's employment starts after the report period",
        record=_starts_after_period,
    ),
    Injection(
        "RECORD-ID-DUPLICATE",
        "one record repeats the previous record's id (needs 2 records)",
        record=_duplicate_id,
    ),
    Injection(
        "AMOUNT-TAX-ABOVE-TAXABLE",
        "one record withholds more wage tax than its taxable wage",
        record=_set("WageTaxWithheld", lambda a: a["TaxableWage"] + 100),
    ),
    Injection(
        "AMOUNT-NET-ABOVE-GROSS",
        "one record pays more net than gross plus allowance plus additions",
        record=_set(
            "NetPaid",
            lambda a: (
                a["GrossWage"]
                + a["HolidayAllowancePaid"]
                + a["OtherNetAdditions"]
                + 100
            ),
        ),
    ),
    Injection(
        "AMOUNT-NEGATIVE",
        "one record that is not a correction has a negative amount",
        record=_set("OtherNetDeductions", lambda a: -500),
    ),
    Injection(
        "HOURS-IMPLAUSIBLE",
        "one record pays more hours than the period has",
        record=_too_many_hours,
    ),
    Injection(
        "CORRECTION-SELF-REFERENCE",
        "one record claims to correct a record of its own message",
        record=_self_correction,
    ),
    Injection(
        "MUNICIPALITY-UNKNOWN",
        f"one record names {UNKNOWN_MUNICIPALITY} (needs known municipalities)",
        record=_municipality(UNKNOWN_MUNICIPALITY),
    ),
    Injection(
        "MUNICIPALITY-NOT-AUTHORISED",
        "one record names a municipality outside the sender's (needs a sender)",
        record=lambda r, p: setattr(p, "municipality", r.outside_municipality),
    ),
    Injection(
        "SCHEMA-VALUE",
        "one record's gross wage has one decimal instead of two",
        record=_gross_without_cents,
    ),
    Injection(
        "XML-DOCTYPE",
        "the report carries a DOCTYPE with an internal entity",
        header=_with_doctype,
    ),
    Injection(
        "XML-MALFORMED",
        "the report stops before its closing tag",
        header=_truncated,
    ),
)
INJECTIONS: dict[str, Injection] = {i.code: i for i in _INJECTION_LIST}


def _new_report(
    *,
    seed: int,
    sender: SampleSender,
    municipalities: Sequence[str],
    message_id: str | None,
    today: dt.date,
    period_kind: str,
    outside_municipality: str,
) -> _Report:
    rng = random.Random(seed)  # noqa: S311 - reproducible on purpose, not secret
    start, end = period_before(today, period_kind)
    generated_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    created = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(5, 0), dt.UTC)
    return _Report(
        message_id=message_id or generated_id,
        created_at=created + dt.timedelta(seconds=rng.randint(0, 3 * 3600)),
        sender=sender,
        period_kind=period_kind,
        period_start=start,
        period_end=end,
        municipalities=tuple(municipalities),
        rng=rng,
        outside_municipality=outside_municipality,
        work_start=start,
        work_end=end,
    )


def write_report(
    out: BinaryIO,
    *,
    records: int,
    seed: int,
    sender: SampleSender | None = None,
    municipalities: Sequence[str] | None = None,
    message_id: str | None = None,
    inject: str | None = None,
    today: dt.date | None = None,
    period_kind: str = "week",
    outside_municipality: str = OUTSIDE_MUNICIPALITY,
) -> None:
    """Write a sample report to *out* in chunks, so any size fits in memory.

    Raises ValueError for an unknown injection, period kind, or a record count
    the injection cannot work with.
    """
    injection = _injection(inject, records)
    if period_kind not in ("week", "four-weeks", "month"):
        raise ValueError(f"unknown period kind {period_kind!r}")
    report = _new_report(
        seed=seed,
        sender=sender or DEFAULT_SENDER,
        municipalities=municipalities or DEFAULT_MUNICIPALITIES,
        message_id=message_id,
        today=today or dt.date.today(),
        period_kind=period_kind,
        outside_municipality=outside_municipality,
    )
    _write(out, report, records, injection)


def generate_report(
    *,
    records: int,
    seed: int,
    sender: SampleSender | None = None,
    municipalities: Sequence[str] | None = None,
    message_id: str | None = None,
    inject: str | None = None,
    today: dt.date | None = None,
    period_kind: str = "week",
    outside_municipality: str = OUTSIDE_MUNICIPALITY,
) -> bytes:
    """A sample report as bytes; see :func:`write_report` for the arguments."""
    buffer = io.BytesIO()
    write_report(
        buffer,
        records=records,
        seed=seed,
        sender=sender,
        municipalities=municipalities,
        message_id=message_id,
        inject=inject,
        today=today,
        period_kind=period_kind,
        outside_municipality=outside_municipality,
    )
    return buffer.getvalue()


def _injection(inject: str | None, records: int) -> Injection | None:
    if records < 1:
        raise ValueError("a report needs at least one record")
    if inject is None:
        return None
    injection = INJECTIONS.get(inject.upper())
    if injection is None:
        raise ValueError(f"unknown injection {inject!r}; see --list-injections")
    if injection.code == "RECORD-ID-DUPLICATE" and records < 2:
        raise ValueError(f"{injection.code} needs at least 2 records")
    return injection


def _write(
    out: BinaryIO, report: _Report, records: int, injection: Injection | None
) -> None:
    if injection is not None and injection.header is not None:
        injection.header(report)
    out.write(_header_xml(report).encode())
    target = records // 2 + 1
    chunk: list[str] = []
    for number in range(1, records + 1):
        injected = injection is not None and number == target
        payslip = _payslip(report, number, may_correct=not injected)
        if injection is not None and injection.record is not None and injected:
            injection.record(report, payslip)
        chunk.append(_record_xml(payslip))
        if len(chunk) >= _RECORDS_PER_WRITE:
            out.write("".join(chunk).encode())
            chunk.clear()
    out.write("".join(chunk).encode())
    if not report.truncate:
        out.write(b"</WageReport>\n")
