"""Reading a schema-valid Record's values quickly.

The record rules run once per record, possibly a million times per file, and
asking lxml for every child's tag costs more than the rules themselves. A record
that passed the schema has a fixed sequence of children with three optional
ones, so its values can be taken in order and named by position: only the tags
at the optional places are looked at. This relies on the hardened parsers
dropping comments and processing instructions, so that every child is an
element. Never use this on a record that failed the schema.
"""

from __future__ import annotations

from typing import cast

from lxml import etree

from gateway.validate.schemas import WAGE_REPORT_NS

_NS = "{" + WAGE_REPORT_NS + "}"
_PREFIX = _NS + "SurnamePrefix"
_END = _NS + "EmploymentEnd"
_CORRECTS = _NS + "Corrects"

_HEAD = ("RecordId", "MunicipalityCode", "Bsn", "BirthDate")
_PAYMENT = ("PaymentDate", "HoursPaid", "GrossWage", "TaxableWage")
_TAIL = (
    "SocialInsuranceWage",
    "WageTaxWithheld",
    "HolidayAllowancePaid",
    "OtherNetAdditions",
    "OtherNetDeductions",
    "NetPaid",
)
REQUIRED_COUNT = len(_HEAD) + 3 + len(_PAYMENT) + len(_TAIL)


def _layout(prefix: bool, end: bool, corrects: bool) -> tuple[str, ...]:
    return (
        _HEAD
        + (("SurnamePrefix",) if prefix else ())
        + ("Surname", "Initials", "EmploymentStart")
        + (("EmploymentEnd",) if end else ())
        + _PAYMENT
        + _TAIL
        + (("Corrects",) if corrects else ())
    )


_LAYOUTS = {
    (prefix, end, corrects): _layout(prefix, end, corrects)
    for prefix in (False, True)
    for end in (False, True)
    for corrects in (False, True)
}


def record_texts(record: etree._Element) -> dict[str, str]:
    """The texts of a schema-valid record's children, by local name.

    ``Corrects``, when present, maps to an empty string; its children are read
    from the element itself.
    """
    texts = [child.text for child in record]
    prefix = record[4].tag == _PREFIX
    corrects = texts[-1] is None or record[-1].tag == _CORRECTS
    end = len(texts) - REQUIRED_COUNT - prefix - corrects == 1
    if corrects:
        texts[-1] = ""
    names = _LAYOUTS[prefix, end, corrects]
    # The schema gave every child but Corrects a non-empty text.
    return dict(zip(names, cast("list[str]", texts), strict=True))
