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

:func:`trusted_rows` serves the lenient schema (see :mod:`.patterns`): it
reads the records of a document or batch that passed the schema without
patterns, in one pass, and answers a record's values only when every one
matches its pattern as well.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterator
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
_PLAIN: _Layout = (False, False, False)


def record_values(record: etree._Element) -> list[str]:
    """The values of a schema-valid record, one slot per element (see above).

    Dates and amounts come without the white space around them that the schema
    allowed (see :data:`XML_SPACE`).
    """
    layout, texts = _layout_and_texts(record)
    values = _slots(record, layout, texts)
    for slot in _COLLAPSED_SLOTS:
        values[slot] = values[slot].strip(XML_SPACE)
    return values


# XSD collapses white space before it checks an xs:date or xs:decimal (XML
# Schema 1.1 part 2, section 4.3.6: whiteSpace is fixed to "collapse" for every
# type but string), so " -1.00" is a valid amount whose value is -1.00. The
# rules compare values, so they must see it without the space. The strings
# (names, ids, codes) keep their text: their patterns admit no white space.
XML_SPACE = " \t\r\n"
_COLLAPSED_SLOTS = (
    BIRTH_DATE,
    EMPLOYMENT_START,
    EMPLOYMENT_END,
    PAYMENT_DATE,
    *range(HOURS, NET + 1),
)


Row = tuple[etree._Element, list[str] | None]


def trusted_rows(container: etree._Element, first: int = 0) -> Iterator[Row]:
    """Each Record among *container*'s children from index *first*, with its values.

    For a container (the document's root, or a batch of records) that passed
    the lenient schema, so that every child from *first* on is a Record. The
    values are None for a record with a value its pattern refuses; the caller
    then falls back to the published schema.

    The texts of the whole container are read in one pass, which costs less
    than visiting each record's children: :meth:`~lxml.etree._Element.iter`
    yields every element in document order, so a record's values are the
    texts right after its own, one per child (the schema gave its children no
    children, ``Corrects`` aside).
    """
    texts = [element.text for element in container.iter()]
    checks = _layout_checks()
    # Past the container's own text and the subtrees before the first record.
    before = itertools.islice(container, first)
    position = 1 + sum(len(list(child.iter())) for child in before)
    for record in itertools.islice(container, first, None):
        size = len(record)
        start = position + 1
        position = start + size
        layout = _PLAIN if size == REQUIRED_COUNT else _layout(record, size)
        values = texts[start:position]
        if layout[2]:
            corrects = record[-1]
            position += len(list(corrects.iterdescendants()))
            if not values_match(corrects):
                yield record, None
                continue
            values[-1] = corrects[0].text  # the slot holds the corrected message
        yield record, _checked(values, *checks[layout])


def _checked(
    values: list[str | None], absent: tuple[int, ...], pattern: re.Pattern[str]
) -> list[str] | None:
    for slot in absent:
        values.insert(slot, "")
    try:
        joined = SEPARATOR.join(cast("list[str]", values))
    except TypeError:  # an empty element: no pattern accepts it
        return None
    return cast("list[str]", values) if pattern.fullmatch(joined) else None


_Check = tuple[tuple[int, ...], re.Pattern[str]]


@functools.cache
def _layout_checks() -> dict[_Layout, _Check]:
    """For each layout, the slots it lacks and one pattern for all its slots joined.

    The lacking slots are in ascending order, so that inserting an empty value
    at each in turn puts every value in its slot; the pattern demands them empty.
    """
    checks: dict[_Layout, _Check] = {}
    for layout in itertools.product((False, True), repeat=3):
        present = dict(zip(_OPTIONAL, layout, strict=True))
        absent = tuple(slot for slot, there in present.items() if not there)
        names = ["" if slot in absent else name for slot, name in enumerate(SLOT_NAMES)]
        names[CORRECTS] = "MessageId" if present[CORRECTS] else ""
        checks[cast("_Layout", layout)] = (absent, sequence_pattern(tuple(names)))
    return checks


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


def _layout(record: etree._Element, size: int) -> _Layout:
    """The layout of a record with *size* children, more than the required ones."""
    # Every element before the prefix is required, so its slot is its place.
    prefix = record[PREFIX].tag == _PREFIX
    corrects = record[-1].tag == _CORRECTS
    end = size - REQUIRED_COUNT - prefix - corrects == 1
    return prefix, end, corrects


def _layout_and_texts(record: etree._Element) -> tuple[_Layout, list[str | None]]:
    texts = [child.text for child in record]
    if len(texts) == REQUIRED_COUNT:
        return _PLAIN, texts  # no optional element: no tag to look at
    layout = _layout(record, len(texts))
    if layout[2]:
        texts[-1] = ""  # a container: its values are its children's
    return layout, texts


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
