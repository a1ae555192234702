"""The XSDs in ``schemas/``, compiled once per thread, and schema errors as findings.

Besides the three published schemas, the validator compiles a *fragment* schema:
the wage-report schema with ``Header`` declared as a global element too, so a
streaming validation can check each ``Header`` and ``Record`` subtree on its own
and report the line of every error (libxml2's streaming validator reports none).
The root's own sequence (one Header, then Records) is checked by the caller.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from gateway.errors import ValidationError
from gateway.validate.findings import Finding, Severity
from gateway.validate.hardening import new_parser

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"

WAGE_REPORT_NS = "urn:loonbrug:wage-report:v1"
MUNICIPALITY_REPORT_NS = "urn:loonbrug:municipality-report:v1"
RECEIPT_NS = "urn:loonbrug:receipt:v1"

WAGE_REPORT_XSD = SCHEMA_DIR / "wage-report-v1.xsd"
MUNICIPALITY_REPORT_XSD = SCHEMA_DIR / "municipality-report-v1.xsd"
RECEIPT_XSD = SCHEMA_DIR / "receipt-v1.xsd"

_XS = "{http://www.w3.org/2001/XMLSchema}"
BATCH_NAME = "Batch"


def read_xsd(path: Path) -> etree._ElementTree:
    """The XSD at *path* as a tree, read with the hardened parser."""
    try:
        return etree.parse(str(path), new_parser())
    except (OSError, etree.XMLSyntaxError) as exc:
        raise ValidationError(f"schema {path.name} cannot be read") from exc


def _compile(document: etree._ElementTree, name: str) -> etree.XMLSchema:
    try:
        return etree.XMLSchema(document)
    except etree.XMLSchemaParseError as exc:
        raise ValidationError(f"schema {name} does not compile") from exc


# A compiled schema keeps the errors of its last validation in one error log,
# and lxml validates without holding the GIL: two threads sharing one schema
# would read each other's errors. Each thread therefore compiles its own.
_per_thread = threading.local()
# Compiling, unlike validating, must not run in two threads at once: libxml2
# sets up its table of built-in types on first use without a lock, and two
# workers compiling at start-up broke that table for the whole process ("the
# given type is not a built-in type" on every later compile; seen under the
# crash test's restarts). Each thread compiles each schema once, so the wait
# is rare and short.
_compiling = threading.Lock()


def _per_thread_schema(
    name: str, build: Callable[[], etree.XMLSchema]
) -> etree.XMLSchema:
    schemas: dict[str, etree.XMLSchema] = _per_thread.__dict__.setdefault("schemas", {})
    if name not in schemas:
        with _compiling:
            schemas[name] = build()
    return schemas[name]


def wage_report_schema() -> etree.XMLSchema:
    """The wage-report schema as published (this thread's copy)."""
    return _per_thread_schema("wage-report", _build_wage_report)


def fragment_schema() -> etree.XMLSchema:
    """The wage-report schema with Header and a batch of Records as roots.

    ``Batch`` exists only inside the validator: the streaming path moves a few
    dozen finished records into one and validates them in a single call.
    """
    return _per_thread_schema("fragment", _build_fragment)


def lenient_wage_report_schema() -> etree.XMLSchema:
    """The wage-report schema without its ``xs:pattern`` facets (see :mod:`.patterns`).

    A document it accepts is valid only once its values also match the patterns.
    """
    return _per_thread_schema("wage-report-lenient", _build_lenient_wage_report)


def lenient_fragment_schema() -> etree.XMLSchema:
    """The fragment schema without its ``xs:pattern`` facets."""
    return _per_thread_schema("fragment-lenient", _build_lenient_fragment)


def municipality_report_schema() -> etree.XMLSchema:
    """The schema of the documents municipalities receive (this thread's copy)."""
    return _per_thread_schema("municipality-report", _build_municipality_report)


def receipt_schema() -> etree.XMLSchema:
    """The schema of receipts (this thread's copy)."""
    return _per_thread_schema("receipt", _build_receipt)


def _build_wage_report() -> etree.XMLSchema:
    return _compile(read_xsd(WAGE_REPORT_XSD), WAGE_REPORT_XSD.name)


def _build_lenient_wage_report() -> etree.XMLSchema:
    return _compile(_without_patterns(read_xsd(WAGE_REPORT_XSD)), WAGE_REPORT_XSD.name)


def _build_fragment() -> etree.XMLSchema:
    return _compile(_with_fragments(read_xsd(WAGE_REPORT_XSD)), WAGE_REPORT_XSD.name)


def _build_lenient_fragment() -> etree.XMLSchema:
    document = _without_patterns(_with_fragments(read_xsd(WAGE_REPORT_XSD)))
    return _compile(document, WAGE_REPORT_XSD.name)


def _without_patterns(document: etree._ElementTree) -> etree._ElementTree:
    for pattern in list(document.getroot().iter(f"{_XS}pattern")):
        parent = pattern.getparent()
        if parent is not None:
            parent.remove(pattern)
    return document


def _with_fragments(document: etree._ElementTree) -> etree._ElementTree:
    root = document.getroot()
    etree.SubElement(root, f"{_XS}element", name="Header", type="Header")
    batch = etree.SubElement(root, f"{_XS}element", name=BATCH_NAME)
    sequence = etree.SubElement(
        etree.SubElement(batch, f"{_XS}complexType"), f"{_XS}sequence"
    )
    etree.SubElement(
        sequence, f"{_XS}element", ref="Record", minOccurs="0", maxOccurs="unbounded"
    )
    return document


def _build_municipality_report() -> etree.XMLSchema:
    return _compile(read_xsd(MUNICIPALITY_REPORT_XSD), MUNICIPALITY_REPORT_XSD.name)


def _build_receipt() -> etree.XMLSchema:
    return _compile(read_xsd(RECEIPT_XSD), RECEIPT_XSD.name)


@functools.cache
def vocabulary() -> frozenset[str]:
    """Every element name the wage-report schema declares.

    Only these names are ever repeated in a finding: a name the sender invented
    could carry anything.
    """
    root = read_xsd(WAGE_REPORT_XSD).getroot()
    return frozenset(e.get("name", "") for e in root.iter(f"{_XS}element")) - {""}


_AMOUNT = "an amount in euro with exactly two decimals, such as 1234.50"
_DATE = "a date written as YYYY-MM-DD"
_NAME = "1 to 200 characters, no control characters"
FORMATS = {
    "MessageId": "a UUID such as 0f8fad5b-d9cb-469f-a165-70867728950e",
    "CreatedAt": "a date and time with its offset, such as 2026-01-05T09:30:00+01:00",
    "Name": _NAME,
    "KvkNumber": "8 digits",
    "PayrollTaxNumber": "9 digits, the letter L and 2 digits",
    "PeriodKind": "one of week, four-weeks, month",
    "PeriodStart": _DATE,
    "PeriodEnd": _DATE,
    "RecordId": "1 to 64 letters, digits, '.', '_' or '-', starting with a letter "
    "or digit",
    "MunicipalityCode": "GM followed by 4 digits",
    "Bsn": "9 digits",
    "BirthDate": _DATE,
    "SurnamePrefix": "1 to 10 characters, no control characters",
    "Surname": _NAME,
    "Initials": "capital letters each followed by a full stop, such as J.P.",
    "EmploymentStart": _DATE,
    "EmploymentEnd": _DATE,
    "PaymentDate": _DATE,
    "HoursPaid": "hours with exactly two decimals, such as 38.00",
    "GrossWage": _AMOUNT,
    "TaxableWage": _AMOUNT,
    "SocialInsuranceWage": _AMOUNT,
    "WageTaxWithheld": _AMOUNT,
    "HolidayAllowancePaid": _AMOUNT,
    "OtherNetAdditions": _AMOUNT,
    "OtherNetDeductions": _AMOUNT,
    "NetPaid": _AMOUNT,
}

# libxml2 error types about a value rather than about the document's shape.
_VALUE_ERRORS = re.compile(
    r"SCHEMAV_CVC_(PATTERN|DATATYPE|ENUMERATION|[A-Z]*LENGTH|"
    r"TOTAL_DIGITS|FRACTION_DIGITS|M[AI]N[IE]X|TYPE_3)"
)
_ATTRIBUTE_ERRORS = re.compile(r"SCHEMAV_CVC_(COMPLEX_TYPE_3|COMPLEX_TYPE_4|AU|ATTR)")
_EXPECTED = re.compile(r"\{" + re.escape(WAGE_REPORT_NS) + r"\}([A-Za-z]{1,40})")


@dataclass(frozen=True)
class Place:
    """Where a schema error is: element, readable path, record id."""

    element: etree._Element | None
    path: str | None
    record_id: str | None


def local_name(element: etree._Element) -> str | None:
    """The element's name if the schema knows it, else None (never echoed)."""
    tag = element.tag
    if not isinstance(tag, str) or not tag.startswith("{" + WAGE_REPORT_NS + "}"):
        return None
    name = tag[len(WAGE_REPORT_NS) + 2 :]
    return name if name in vocabulary() or name == "WageReport" else None


def _expected(message: str) -> str:
    if "Expected is" not in message:
        return ""
    tail = message.split("Expected is", 1)[1]
    names = [n for n in _EXPECTED.findall(tail) if n in vocabulary()]
    return f"; expected: {', '.join(dict.fromkeys(names))}" if names else ""


def _wording(entry: etree._LogEntry, name: str | None) -> tuple[str, str]:
    what = name or "an element the schema does not know"
    kind = entry.type_name
    if _VALUE_ERRORS.match(kind):
        form = FORMATS.get(name or "", "the form the schema requires")
        return "SCHEMA-VALUE", f"{what} does not have the required form: {form}"
    if _ATTRIBUTE_ERRORS.match(kind):
        return "SCHEMA-STRUCTURE", f"{what} has an attribute that is not allowed"
    if "Missing child" in entry.message:
        return "SCHEMA-STRUCTURE", f"{what} is incomplete{_expected(entry.message)}"
    if "not expected" in entry.message:
        return (
            "SCHEMA-STRUCTURE",
            f"{what} is not expected here{_expected(entry.message)}",
        )
    if kind.startswith("SCHEMAV_CVC_COMPLEX_TYPE_2"):
        return "SCHEMA-STRUCTURE", f"{what} must not contain text"
    detail = kind.removeprefix("SCHEMAV_").replace("_", " ").lower()
    return "SCHEMA-STRUCTURE", f"{what} does not match the schema ({detail})"


def schema_finding(entry: etree._LogEntry, place: Place) -> Finding:
    """A finding for one libxml2 schema error, in our words.

    libxml2's own messages quote the offending value (a BSN, a name, an amount),
    so they are never passed on; only the error type, the element's name when the
    schema declares it, and the names the schema expected are used.
    """
    name = local_name(place.element) if place.element is not None else None
    code, message = _wording(entry, name)
    return Finding(
        code,
        Severity.ERROR,
        message,
        line=entry.line or None,
        column=entry.column or None,
        path=place.path,
        record_id=place.record_id,
    )


def schema_findings(
    entries: Iterable[etree._LogEntry], locate: Callable[[str | None], Place]
) -> list[Finding]:
    """Findings for every schema error, located by *locate* (libxml2 node path)."""
    return [schema_finding(e, locate(e.path)) for e in entries]
