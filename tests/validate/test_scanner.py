"""Tests of the plain-form path: records read from the text, same findings."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
from lxml import etree

from gateway.validate import validate_file
from gateway.validate.context import ValidationResult
from gateway.validate.document import _Run
from gateway.validate.fields import CORRECTS, EMPLOYMENT_END, PREFIX, record_values
from gateway.validate.findings import FindingList
from gateway.validate.hardening import CHUNK_BYTES, check_well_formed, new_parser
from gateway.validate.patterns import PatternError, translate
from gateway.validate.scanner import record_scanner, scanner_for
from gateway.validate.schemas import WAGE_REPORT_XSD, read_xsd
from tests.support.reports import FULL_CONTEXT, sample_bytes, write

XS = "{http://www.w3.org/2001/XMLSchema}"


def takes_plain_path(data: bytes) -> bool:
    """Whether the validator reads *data*'s records from the text.

    White-box on purpose: the findings must not tell the two paths apart, so
    only the run itself can say which one it took.
    """
    findings = FindingList(FULL_CONTEXT.max_findings)
    run = _Run(FULL_CONTEXT, findings, ValidationResult(findings=findings.items))
    return run._scanned(data)


def streams_plain_path(path: Path) -> bool:
    """Whether the validator streams the report at *path* without any tree."""
    findings = FindingList(FULL_CONTEXT.max_findings)
    run = _Run(FULL_CONTEXT, findings, ValidationResult(findings=findings.items))
    return run._scanned_stream(path)


def same_findings(folder: Path, data: bytes) -> ValidationResult:
    """Assert that every shortcut changes no finding; the plain path's result."""
    path = write(folder, data)
    results = []
    for streaming in (False, True):
        quick = validate_file(path, FULL_CONTEXT, streaming=streaming)
        checked = validate_file(path, FULL_CONTEXT, streaming=streaming, shortcut=False)
        assert quick.to_dict() == checked.to_dict(), (streaming, checked.codes)
        results.append(quick)
    return results[0]


def test_rows_are_the_values_of_the_tree_in_every_layout() -> None:
    """Each record read from the text has the values the tree gives it."""
    data = sample_bytes(200)
    text = data.decode()
    start = text.index("</Header>") + len("</Header>")
    root = etree.fromstring(data, new_parser())

    rows = list(record_scanner().rows(text[start:], 0))

    assert None not in rows
    assert [list(r) for r in rows if r] == [record_values(r) for r in root[1:]]
    optional = (PREFIX, EMPLOYMENT_END, CORRECTS)
    assert len({tuple(bool(r[s]) for s in optional) for r in rows if r}) >= 4


def test_samples_take_the_plain_path() -> None:
    """A generated report, clean or with a rule broken, is read from its text."""
    assert takes_plain_path(sample_bytes(50))
    assert takes_plain_path(sample_bytes(50, inject="BSN-ELEVEN-TEST"))


def with_crlf(data: bytes) -> bytes:
    return data.replace(b"\n", b"\r\n")


def between_records(insert: bytes, index: int = 3) -> object:
    def change(data: bytes) -> bytes:
        at = [m.end() for m in re.finditer(rb"</Record>", data)][index]
        return data[:at] + insert + data[at:]

    return change


def replace_first(old: bytes, new: bytes) -> object:
    def change(data: bytes) -> bytes:
        assert old in data
        return data.replace(old, new, 1)

    return change


def value_of(tag: bytes, value: bytes) -> object:
    """A change that gives the first *tag* element the raw content *value*."""
    pattern = re.compile(b"<" + tag + b">[^<]*<")
    return lambda data: pattern.sub(b"<" + tag + b">" + value + b"<", data, count=1)


def surname(value: bytes) -> object:
    return value_of(b"Surname", value)


PLAIN_CHANGES = [
    # Windows line ends: white space the expression allows; lines still count
    ("crlf", with_crlf),
    # lone carriage returns between elements, which the parser reads as line ends
    ("lone-cr", lambda data: data.replace(b"\n", b"\r")),
    # a surname of exactly the longest length
    ("surname-200", surname(b"J" * 200)),
]

TREE_CHANGES = [
    # a comment between records: markup the expression does not read
    ("comment-between", between_records(b"<!-- a note -->")),
    # a comment inside a record
    ("comment-inside", replace_first(b"<Bsn>", b"<!-- x --><Bsn>")),
    # a comment before the report that holds a Header's end tag
    (
        "fake-end-before",
        replace_first(b"<WageReport", b"<!-- </Header> --><WageReport"),
    ),
    # a comment inside the Header that holds its end tag
    (
        "fake-end-inside",
        replace_first(b"<MessageId>", b"<!-- </Header> --><MessageId>"),
    ),
    # a processing instruction between records
    ("pi-between", between_records(b"<?note x?>")),
    # a comment after the root
    ("comment-after", lambda data: data + b"<!-- end -->"),
    # a CDATA section in a value
    ("cdata", surname(b"Jan<![CDATA[sen]]>")),
    # a character reference in a value
    ("reference", surname(b"Jans&#233;n")),
    # an attribute on a record: the schema refuses it
    ("attribute", replace_first(b"<Record>", b'<Record kind="x">')),
    # a prefixed record in the report's own namespace: the schema accepts it
    (
        "prefixed",
        lambda data: re.sub(
            rb"<Record>(.*?)</Record>",
            lambda m: (
                b'<w:Record xmlns:w="urn:loonbrug:wage-report:v1">'
                + re.sub(rb"<(/?)([A-Z])", rb"<\1w:\2", m.group(1))
                + b"</w:Record>"
            ),
            data,
            count=1,
            flags=re.DOTALL,
        ),
    ),
    # a record in another namespace
    ("foreign-ns", replace_first(b"<Record>", b'<Record xmlns="urn:other">')),
    # white space inside a tag
    ("space-in-tag", replace_first(b"<Bsn>", b"<Bsn >")),
    # an empty optional element, written both ways
    ("empty-prefix", replace_first(b"<Surname>", b"<SurnamePrefix/><Surname>")),
    (
        "empty-prefix-2",
        replace_first(b"<Surname>", b"<SurnamePrefix></SurnamePrefix><Surname>"),
    ),
    # a day the calendar lacks: the pattern allows it, xs:date does not
    (
        "february-30",
        value_of(b"BirthDate", b"1990-02-30"),
    ),
    # year zero, which XSD 1.0 does not have
    (
        "year-0",
        value_of(b"PaymentDate", b"0000-03-01"),
    ),
    # a surname one character too long, and a prefix likewise
    ("surname-201", surname(b"J" * 201)),
    (
        "prefix-11",
        replace_first(
            b"<Surname>", b"<SurnamePrefix>abcdefghijk</SurnamePrefix><Surname>"
        ),
    ),
    # a tab written as itself in a name
    ("tab", surname(b"Jan\tsen")),
    # an attribute on the root
    (
        "root-attribute",
        replace_first(
            b"<WageReport ",
            b'<WageReport xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            b'xsi:schemaLocation="urn:x http://example.invalid/x.xsd" ',
        ),
    ),
    # text between the root's start and the Header
    ("root-text", replace_first(b"<Header>", b"stray<Header>")),
    # a Header with an attribute
    ("header-attribute", replace_first(b"<Header>", b'<Header a="1">')),
    # a second Header after the records
    (
        "second-header",
        lambda data: data.replace(
            b"</WageReport>",
            data[data.index(b"<Header>") : data.index(b"</Header>") + 9]
            + b"</WageReport>",
        ),
    ),
    # no record at all
    (
        "no-records",
        lambda data: re.sub(rb"<Record>.*</Record>", b"", data, flags=re.DOTALL),
    ),
    # an element the schema does not know, after the last record
    (
        "stray-element",
        replace_first(b"</WageReport>", b"<Extra>1</Extra></WageReport>"),
    ),
    # a record cut short: well-formed, but the sequence is incomplete
    ("no-net", lambda data: re.sub(rb"<NetPaid>[^<]*</NetPaid>", b"", data, count=1)),
]


@pytest.mark.parametrize(
    ("name", "change"), PLAIN_CHANGES, ids=[n for n, _ in PLAIN_CHANGES]
)
def test_plain_variants_are_read_from_the_text(
    tmp_path: Path, name: str, change: object
) -> None:
    """Variants still in the plain form take that path, with the same findings."""
    data = change(sample_bytes(8, inject="BSN-ELEVEN-TEST"))  # type: ignore[operator]

    assert takes_plain_path(data), name
    result = same_findings(tmp_path, data)
    assert result.codes == ["BSN-ELEVEN-TEST"]


@pytest.mark.parametrize(
    ("name", "change"), TREE_CHANGES, ids=[n for n, _ in TREE_CHANGES]
)
def test_other_forms_are_read_from_the_tree(
    tmp_path: Path, name: str, change: object
) -> None:
    """Anything outside the plain form falls back, and the findings are the schema's."""
    data = change(sample_bytes(8, inject="BSN-ELEVEN-TEST"))  # type: ignore[operator]

    assert not takes_plain_path(data), name
    same_findings(tmp_path, data)


def test_findings_on_crlf_lines_name_the_parser_lines(tmp_path: Path) -> None:
    """Line numbers of findings found on the plain path are the parser's lines."""
    data = with_crlf(sample_bytes(12, inject="BSN-ELEVEN-TEST"))
    root = etree.fromstring(data, new_parser())
    bsn_lines = {b.sourceline for b in root.iter("{urn:loonbrug:wage-report:v1}Bsn")}

    result = validate_file(write(tmp_path, data), FULL_CONTEXT)

    assert [f.line for f in result.findings if f.code == "BSN-ELEVEN-TEST"]
    assert all(f.line in bsn_lines for f in result.findings)


def test_undeclared_prefix_is_not_well_formed() -> None:
    """Without a tree libxml2 only reports a namespace error; it still counts."""
    assert check_well_formed(b"<a><b/></a>")
    assert not check_well_formed(b"<x:a/>")
    assert not check_well_formed(b"<a><b></a>")


@pytest.mark.parametrize(
    "pattern",
    [
        # a literal "<" would be read as the start of a tag
        "a<b",
        # a class that admits "<" (its range spans it)
        "[ -z]+",
        # a class with a carriage return, which the parser reads as a line end
        "[\r]",
    ],
)
def test_verbatim_translation_refuses_what_the_text_cannot_hold(pattern: str) -> None:
    with pytest.raises(PatternError):
        translate(pattern, verbatim=True)


def test_verbatim_translation_keeps_markup_out_of_negated_classes() -> None:
    value = re.compile(translate(r"[^\p{Cc}]+", verbatim=True))

    assert value.fullmatch("van der Berg")
    assert not value.fullmatch("a<b") and not value.fullmatch("a&amp;b")


def schema_with(change: object) -> etree._Element:
    root = copy.deepcopy(read_xsd(WAGE_REPORT_XSD).getroot())
    change(root)  # type: ignore[operator]
    return root


def _restriction(root: etree._Element, name: str) -> etree._Element:
    found = root.find(f"{XS}simpleType[@name='{name}']/{XS}restriction")
    assert found is not None
    return found


def _record_element(root: etree._Element, name: str) -> etree._Element:
    found = root.find(
        f"{XS}complexType[@name='Record']/{XS}sequence/{XS}element[@name='{name}']"
    )
    assert found is not None
    return found


def _add_facet(kind: str, value: str, type_name: str = "Bsn") -> object:
    def change(root: etree._Element) -> None:
        etree.SubElement(_restriction(root, type_name), f"{XS}{kind}", value=value)

    return change


def _set(name: str, attribute: str, value: str) -> object:
    def change(root: etree._Element) -> None:
        _record_element(root, name).set(attribute, value)

    return change


def _rebase(type_name: str, base: str) -> object:
    def change(root: etree._Element) -> None:
        _restriction(root, type_name).set("base", base)

    return change


SCHEMA_EDITS = [
    # a facet the scanner does not check
    ("enumeration", _add_facet("enumeration", "999999999")),
    ("total-digits", _add_facet("totalDigits", "5", "Amount")),
    # an element that may repeat
    ("max-occurs", _set("Surname", "maxOccurs", "2")),
    # an element that must come twice
    ("min-occurs", _set("Surname", "minOccurs", "2")),
    # a base type whose lexical form the scanner does not know
    ("date-time", _rebase("Day", "xs:dateTime")),
    # a renamed element: the validator's slots no longer fit
    ("renamed", _set("Surname", "name", "FamilyName")),
]


@pytest.mark.parametrize(
    ("name", "edit"), SCHEMA_EDITS, ids=[n for n, _ in SCHEMA_EDITS]
)
def test_schema_edits_the_scanner_cannot_follow_are_refused(
    name: str, edit: object
) -> None:
    """A schema change the scanner would not honour stops it being built."""
    scanner_for(read_xsd(WAGE_REPORT_XSD).getroot())  # the published one builds

    with pytest.raises(PatternError):
        scanner_for(schema_with(edit))


def test_large_plain_reports_stream_without_a_tree(tmp_path: Path) -> None:
    """A report of many pieces is read piece by piece from its text."""
    data = sample_bytes(400)
    assert len(data) > 4 * CHUNK_BYTES  # records straddle the pieces' ends

    assert streams_plain_path(write(tmp_path, data))
    result = same_findings(tmp_path, data)
    assert result.valid and result.record_count == 400


@pytest.mark.parametrize(
    "change",
    [
        # a finding on the last record: placed by reading the file's tree
        lambda data: (
            data[: data.rindex(b"<Bsn>") + 5]
            + b"123456789"
            + data[data.rindex(b"</Bsn>") :]
        ),
        # a comment among the last records, in the file's last piece
        lambda data: data.replace(b"</WageReport>", b"<!-- x --></WageReport>"),
        # a record cut short in the middle of the file
        lambda data: data.replace(b"<NetPaid>", b"<NetPad>", 1).replace(
            b"</NetPaid>", b"</NetPad>", 1
        ),
        # a file that ends inside a record
        lambda data: data[: data.rindex(b"<Surname>")],
    ],
    ids=["finding-last", "comment-last", "unknown-middle", "cut-off"],
)
def test_large_reports_outside_the_plain_form_stream_on_the_tree(
    tmp_path: Path, change: object
) -> None:
    """Anything the piecewise reading does not vouch for is read again."""
    data = change(sample_bytes(400))  # type: ignore[operator]

    assert not streams_plain_path(write(tmp_path, data))
    same_findings(tmp_path, data)
