"""Tests of the lenient-schema shortcut: patterns checked in Python, same findings."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway.validate import validate_file
from gateway.validate.fields import (
    CORRECTS,
    EMPLOYMENT_END,
    PREFIX,
    SLOT_NAMES,
    record_values,
    trusted_rows,
)
from gateway.validate.hardening import new_parser
from gateway.validate.patterns import (
    PatternError,
    field_patterns,
    translate,
    within_decimal,
)
from gateway.validate.schemas import (
    WAGE_REPORT_XSD,
    lenient_wage_report_schema,
    read_xsd,
    vocabulary,
)
from tests.support.reports import FULL_CONTEXT, sample_bytes, write

XS = "{http://www.w3.org/2001/XMLSchema}"
CONTAINERS = {"WageReport", "Header", "Sender", "Record", "Corrects"}

TRANSLATIONS = [
    # plain digits and repetition pass through
    ("[0-9]{9}", "[0-9]{9}"),
    # \d is any Unicode digit in XSD: only ASCII digits here
    (r"\d{4}", "[0-9]{4}"),
    # \p{Lu} becomes the ASCII and Latin-1 capitals, a subset in every version
    (r"(\p{Lu}\.){1,10}", r"(?:[A-Z\u00c0-\u00d6\u00d8-\u00de]\.){1,10}"),
    # \p{Cc} inside a negated class is exactly the control characters
    (r"[^\p{Cc}]+", r"[^\x00-\x1f\x7f-\x9f]+"),
    # an escaped hyphen and sign inside a class keep their meaning
    (r"(Z|[+\-]\d{2})", r"(?:Z|[+\-][0-9]{2})"),
    # XSD's dot excludes both line ends (and the separator)
    ("a.b", r"a[^\n\r\x00]b"),
]

REFUSED = [
    # "^" is a literal in XSD but an anchor in Python
    "^a",
    # "$" likewise
    "a$",
    # \w means something else in each language
    r"\w+",
    # XSD name classes have no Python counterpart
    r"\i\c*",
    # class subtraction exists only in XSD
    "[a-z-[aeiou]]",
    # any other category than the three translated
    r"\p{Ll}",
]


@pytest.mark.parametrize(("xsd", "python"), TRANSLATIONS)
def test_translation(xsd: str, python: str) -> None:
    """Each construct the schema uses is translated to the same or a stricter one."""
    assert translate(xsd) == python


@pytest.mark.parametrize("xsd", REFUSED)
def test_unknown_constructs_are_refused(xsd: str) -> None:
    """A construct the translation does not know raises instead of guessing."""
    with pytest.raises(PatternError):
        translate(xsd)


def test_every_value_element_has_a_pattern() -> None:
    """Every element of simple content in the schema is covered by the shortcut."""
    assert set(field_patterns()) == vocabulary() - CONTAINERS


def test_patterns_follow_the_schema() -> None:
    """Every XSD pattern appears translated, so the shortcut follows schema edits."""
    root = read_xsd(WAGE_REPORT_XSD).getroot()
    xsd_patterns = {translate(p.get("value", "")) for p in root.iter(f"{XS}pattern")}

    assert xsd_patterns <= set(field_patterns().values())


def test_samples_take_the_shortcut() -> None:
    """A clean sample is accepted by the lenient schema and the Python patterns."""
    root = etree.fromstring(sample_bytes(50), new_parser())

    accepted = lenient_wage_report_schema().validate(root)
    rows = list(trusted_rows(root, 1))

    assert accepted
    assert len(rows) == 50
    assert all(values == record_values(record) for record, values in rows)


def replace_first(tag: str, value: bytes) -> Callable[[bytes], bytes]:
    """A change that gives the first *tag* element the raw content *value*."""
    pattern = re.compile(rb"<" + tag.encode() + rb">[^<]*</" + tag.encode() + rb">")

    def change(data: bytes) -> bytes:
        element = b"<%s>%s</%s>" % (tag.encode(), value, tag.encode())
        return pattern.sub(lambda _: element, data, count=1)

    return change


HOSTILE = [
    # Arabic-Indic digits: \d in XSD, not [0-9]
    ("Bsn", "٩٩٩٩٩٨٨٣٣".encode()),
    # full-width digits in an amount
    ("GrossWage", "\uff11\uff12.\uff10\uff10".encode()),
    # white space around a decimal: collapsed by XSD before its pattern
    ("GrossWage", b" 12.00 "),
    # white space around a date
    ("BirthDate", b" 1980-01-01"),
    # a date with a zone: xs:date allows it, the pattern does not
    ("PaymentDate", b"2026-03-01Z"),
    # a five-digit year
    ("PaymentDate", b"12026-03-01"),
    # a sign and a leading zero
    ("NetPaid", b"+012.00"),
    # minus zero: the pattern allows it
    ("OtherNetDeductions", b"-0.00"),
    # ten integer digits
    ("GrossWage", b"1234567890.00"),
    # a value split by a CDATA section
    ("Surname", b"Jan<![CDATA[sen]]>"),
    # a character reference to a C1 control character
    ("Surname", b"Jan&#x85;sen"),
    # a tab in a name
    ("Surname", b"Jan&#9;sen"),
    # an entity reference that expands to a plain character
    ("Surname", b"Jan&amp;sen"),
    # an empty element where only the pattern demands content
    ("Initials", b""),
    # initials with a Latin-1 capital
    ("Initials", "Ö.J.".encode()),
    # a title-case letter (category Lt, not Lu)
    ("Initials", "ǅ.".encode()),
    # a Greek capital: Lu in XSD, outside the shortcut's subset
    ("Initials", "Ω.".encode()),
    # a record id that starts with a dot
    ("RecordId", b".R1"),
    # a municipality code in lower case
    ("MunicipalityCode", b"gm0599"),
    # a period kind the enumeration does not know
    ("PeriodKind", b"Week"),
    # a creation time without offset
    ("CreatedAt", b"2026-03-16T08:00:00"),
    # a creation time with seven decimals
    ("CreatedAt", b"2026-03-16T08:00:00.1234567Z"),
    # a message id in upper case: the pattern allows it
    ("MessageId", b"0F8FAD5B-D9CB-469F-A165-70867728950E"),
    # a KvK number with a space
    ("KvkNumber", b"1234 678"),
]


def same_findings(folder: Path, data: bytes) -> None:
    """Assert that the shortcut changes no finding on either path."""
    path = write(folder, data)
    for streaming in (False, True):
        quick = validate_file(path, FULL_CONTEXT, streaming=streaming)
        checked = validate_file(path, FULL_CONTEXT, streaming=streaming, shortcut=False)
        assert quick.to_dict() == checked.to_dict(), (streaming, checked.codes)


@pytest.mark.parametrize(
    ("tag", "value"), HOSTILE, ids=[f"{t}-{i}" for i, (t, _) in enumerate(HOSTILE)]
)
def test_hostile_values_give_the_published_schema_findings(
    tmp_path: Path, tag: str, value: bytes
) -> None:
    """Values at the edges of a pattern get exactly the findings of the full schema."""
    data = replace_first(tag, value)(sample_bytes(6))
    assert data != sample_bytes(6)

    same_findings(tmp_path, data)


VALUE_TAGS = ["Bsn", "GrossWage", "BirthDate", "Surname", "Initials", "RecordId"]
VALUE_TEXT = st.text(
    alphabet=st.characters(
        blacklist_categories=["Cs"], blacklist_characters=["<", "&", "\x00"]
    ),
    max_size=14,
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(tag=st.sampled_from(VALUE_TAGS), text=VALUE_TEXT)
def test_any_value_gives_the_published_schema_findings(
    tmp_path: Path, tag: str, text: str
) -> None:
    """Whatever a value holds, the shortcut and the full schema agree."""
    data = replace_first(tag, text.encode("utf-8", "surrogatepass"))(sample_bytes(3))

    try:
        etree.fromstring(data, new_parser())
    except etree.XMLSyntaxError:
        return  # not XML at all (a forbidden character): no schema involved

    same_findings(tmp_path, data)


def test_record_slots_follow_the_schema() -> None:
    """The slots the rules index are the Record's children in the schema's order."""
    root = read_xsd(WAGE_REPORT_XSD).getroot()
    record = root.find(f"{XS}complexType[@name='Record']")
    assert record is not None

    names = tuple(e.get("name") for e in record.iter(f"{XS}element"))

    assert names == SLOT_NAMES


def test_late_refusal_leaves_no_trace_of_the_fast_pass(tmp_path: Path) -> None:
    """A refused value in the last record undoes what earlier records reported."""
    data = sample_bytes(30, inject="BSN-ELEVEN-TEST")
    last = data.rindex(b"<Initials>") + len(b"<Initials>")
    data = data[:last] + "Ω.".encode() + data[data.index(b"</Initials>", last) :]

    same_findings(tmp_path, data)
    result = validate_file(write(tmp_path, data), FULL_CONTEXT)
    assert result.codes == ["BSN-ELEVEN-TEST"]
    assert result.record_count == 30

    # Three more eleven-test failures, past the cap: the fast pass truncates.
    data = re.sub(rb"<Bsn>[0-9]{9}</Bsn>", b"<Bsn>123456789</Bsn>", data, count=3)
    capped = dataclasses.replace(FULL_CONTEXT, max_findings=2)
    quick, checked = (
        validate_file(write(tmp_path, data), capped, shortcut=shortcut)
        for shortcut in (True, False)
    )
    assert quick.truncated
    assert quick.to_dict() == checked.to_dict()


def test_preserved_white_space_keeps_values_in_place(tmp_path: Path) -> None:
    """White space kept by xml:space between a record's fields shifts no value."""
    data = sample_bytes(200, inject="AMOUNT-TAX-ABOVE-TAXABLE")
    data = data.replace(b"<WageReport ", b'<WageReport xml:space="preserve" ', 1)

    same_findings(tmp_path, data)
    result = validate_file(write(tmp_path, data), FULL_CONTEXT, streaming=True)
    assert "AMOUNT-TAX-ABOVE-TAXABLE" in result.codes


def test_trusted_rows_match_record_values_in_every_layout() -> None:
    """The one-pass reading gives each record the values read child by child."""
    root = etree.fromstring(sample_bytes(200), new_parser())
    assert lenient_wage_report_schema().validate(root)

    rows = list(trusted_rows(root, 1))

    optional = (PREFIX, EMPLOYMENT_END, CORRECTS)
    layouts = {tuple(bool(v[slot]) for slot in optional) for _, v in rows if v}
    assert len(layouts) >= 4
    assert all(values == record_values(record) for record, values in rows)


DECIMAL_PATTERNS = [
    # the schema's amounts and hours
    (r"-?(0|[1-9][0-9]{0,8})\.[0-9]{2}", True),
    (r"-?(0|[1-9][0-9]{0,3})\.[0-9]{2}", True),
    # a point first, and an optional fraction
    (r"\.\d", True),
    (r"[+\-]?\d+(\.\d*)?", True),
    # two points
    (r"[0-9]\.[0-9]\.[0-9]", False),
    # the empty value is no decimal
    (r"[0-9]*", False),
    (r"\d+|", False),
    # a point alone, a doubled sign
    (r"\.", False),
    ("--1", False),
    # a letter in a class, a range that spans the comma, a negated class
    ("[0-9a]+", False),
    ("[,-/]+", False),
    ("[^a]", False),
    # any character, and a category that holds more than ASCII digits
    (".+", False),
    (r"\p{Nd}+", False),
]


@pytest.mark.parametrize(("pattern", "within"), DECIMAL_PATTERNS)
def test_within_decimal_follows_the_literal(pattern: str, within: bool) -> None:
    """A pattern is found within xs:decimal exactly when all its values are."""
    assert within_decimal(pattern) is within


WITHIN = [p for p, within in DECIMAL_PATTERNS if within]
DECIMAL = re.compile(r"[+\-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")


@settings(max_examples=100, deadline=None)
@given(data=st.data(), pattern=st.sampled_from(WITHIN))
def test_values_of_patterns_within_decimal_are_decimals(
    data: st.DataObject, pattern: str
) -> None:
    """Whatever a pattern found within xs:decimal accepts is a decimal literal."""
    value = data.draw(st.from_regex(translate(pattern), fullmatch=True))

    assert DECIMAL.fullmatch(value)
