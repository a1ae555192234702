"""Reading a schema-valid Record's values quickly, and checking their patterns.

The record rules run once per record, possibly a million times per file, and
asking lxml for every child's tag costs more than the rules themselves. A record
that passed the schema has a fixed sequence of children with three optional
ones, so its values can be taken in order and named by position: only the tags
at the optional places are looked at. This relies on the hardened parsers
dropping comments and processing instructions, so that every child is an
element. Never use :func:`record_values` on a record that failed the schema.

The values come back as a list with one slot per element of the schema's
sequence (the slot numbers below), so the rules index it instead of building
a mapping per record. An absent optional element leaves an empty string; the
``Corrects`` slot holds the corrected record's message id.

:func:`trusted_values` serves the lenient schema (see :mod:`.patterns`): it
reads a record that passed the schema without patterns and answers its values
only when every one matches its pattern as well.
"""

from __future__ import annotations

from typing import cast

from lxml import etree

from gateway.validate.patterns import (
    SEPARATOR,
    field_patterns,
    sequence_pattern,
    value_pattern,
)
from gateway.validate.schemas import WAGE_REPORT_NS

_NS = "{" + WAGE_REPORT_NS + "}"
_PREFIX = _NS + "SurnamePrefix"
_CORRECTS = _NS + "Corrects"

SLOT_NAMES = (
    "RecordId",
    "MunicipalityCode",
    "Bsn",
    "BirthDate",
    "SurnamePrefix",
    "Surname",
    "Initials",
    "EmploymentStart",
    "EmploymentEnd",
    "PaymentDate",
    "HoursPaid",
    "GrossWage",
    "TaxableWage",
    "SocialInsuranceWage",
    "WageTaxWithheld",
    "HolidayAllowancePaid",
    "OtherNetAdditions",
    "OtherNetDeductions",
    "NetPaid",
    "Corrects",
)
(
    RECORD_ID,
    MUNICIPALITY,
    BSN,
    BIRTH_DATE,
    PREFIX,
    SURNAME,
    INITIALS,
    EMPLOYMENT_START,
    EMPLOYMENT_END,
    PAYMENT_DATE,
    HOURS,
    GROSS,
    TAXABLE,
    SOCIAL_INSURANCE,
    TAX,
    HOLIDAY,
    ADDITIONS,
    DEDUCTIONS,
    NET,
    CORRECTS,
) = range(len(SLOT_NAMES))
_OPTIONAL = (PREFIX, EMPLOYMENT_END, CORRECTS)
REQUIRED_COUNT = len(SLOT_NAMES) - len(_OPTIONAL)

# A layout says which optional elements a record has: (prefix, end, corrects).
_Layout = tuple[bool, bool, bool]


def _names(layout: _Layout) -> tuple[str, ...]:
    absent = {
        slot for slot, present in zip(_OPTIONAL, layout, strict=True) if not present
    }
    return tuple(n for slot, n in enumerate(SLOT_NAMES) if slot not in absent)


_LAYOUTS = {
    (prefix, end, corrects): _names((prefix, end, corrects))
    for prefix in (False, True)
    for end in (False, True)
    for corrects in (False, True)
}


def record_values(record: etree._Element) -> list[str]:
    """The values of a schema-valid record, one slot per element (see above)."""
    layout, texts = _layout_and_texts(record)
    return _slots(record, layout, texts)


def trusted_values(record: etree._Element) -> list[str] | None:
    """Like :func:`record_values` for a record that passed the lenient schema.

    None unless every value (``Corrects``' too) matches its pattern; the caller
    then falls back to the published schema.
    """
    layout, texts = _layout_and_texts(record)
    try:
        joined = SEPARATOR.join(cast("list[str]", texts))
    except TypeError:  # an empty element: no pattern accepts it
        return None
    if sequence_pattern(_LAYOUTS[layout]).fullmatch(joined) is None:
        return None
    if layout[2] and not values_match(record[-1]):
        return None
    return _slots(record, layout, texts)


def values_match(container: etree._Element) -> bool:
    """Whether every element without children below *container* matches its pattern.

    For a Header or ``Corrects`` that passed the lenient schema, so that every
    element below it is one the schema declares.
    """
    patterns = field_patterns()
    for element in container.iter():
        if len(element):
            continue
        name = str(element.tag).rpartition("}")[2]
        text = element.text or ""
        if name not in patterns or not value_pattern(name).fullmatch(text):
            return False
    return True


_PLAIN: _Layout = (False, False, False)


def _layout_and_texts(record: etree._Element) -> tuple[_Layout, list[str | None]]:
    texts = [child.text for child in record]
    if len(texts) == REQUIRED_COUNT:
        return _PLAIN, texts  # no optional element: no tag to look at
    prefix = record[4].tag == _PREFIX
    corrects = texts[-1] is None or record[-1].tag == _CORRECTS
    end = len(texts) - REQUIRED_COUNT - prefix - corrects == 1
    if corrects:
        texts[-1] = ""  # a container: its values are its children's
    return (prefix, end, corrects), texts


def _slots(
    record: etree._Element, layout: _Layout, texts: list[str | None]
) -> list[str]:
    prefix, end, corrects = layout
    if not prefix:
        texts.insert(PREFIX, "")
    if not end:
        texts.insert(EMPLOYMENT_END, "")
    if corrects:
        texts[CORRECTS] = record[-1][0].text
    else:
        texts.append("")
    # The schema gave every element a non-empty text.
    return cast("list[str]", texts)
