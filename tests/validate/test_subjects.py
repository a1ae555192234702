"""Tests of reading the BSNs of a report the validator may have refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.validate.subjects import record_bsns
from tests.support.reports import sample_bytes, write

BSN_ELEMENT = re.compile(rb"<Bsn>([0-9]{9})</Bsn>")


def _bsns(data: bytes) -> list[str]:
    return [m.decode() for m in BSN_ELEMENT.findall(data)]


def test_every_records_bsn_is_read_in_order(tmp_path: Path) -> None:
    """A clean report yields the BSN of each record, in the document's order."""
    data = sample_bytes(40)

    assert list(record_bsns(write(tmp_path, data))) == _bsns(data)


def test_a_bsn_failing_the_eleven_test_is_still_read(tmp_path: Path) -> None:
    """The report is not judged: a wrong BSN still names someone who may ask."""
    data = sample_bytes(10, inject="BSN-ELEVEN-TEST")

    assert list(record_bsns(write(tmp_path, data))) == _bsns(data)


def test_reading_stops_at_a_syntax_error_keeping_what_came_before(
    tmp_path: Path,
) -> None:
    """Records after a break in the XML are not guessed at."""
    data = sample_bytes(10)
    cut = data.index(b"<Record>", data.index(b"<Record>") + 1)
    broken = data[:cut] + b"<Record><<" + data[cut:]

    assert list(record_bsns(write(tmp_path, broken))) == _bsns(data)[:1]


@pytest.mark.parametrize(
    ("value", "read"),
    [
        (b" 999990019 ", "999990019"),  # white space the schema would collapse
        (b"99999001", None),  # eight digits: no BSN
        (b"Jansen", None),  # a name in the wrong field is never an identifier
        (b"", None),  # empty
    ],
)
def test_only_values_of_a_bsns_form_are_read(
    tmp_path: Path, value: bytes, read: str | None
) -> None:
    """Whatever else stands in a Bsn element is left out."""
    data = sample_bytes(1)
    data = BSN_ELEMENT.sub(b"<Bsn>" + value + b"</Bsn>", data)

    assert list(record_bsns(write(tmp_path, data))) == ([read] if read else [])


def test_a_doctype_with_entities_expands_nothing(tmp_path: Path) -> None:
    """A hostile prolog neither expands entities nor reads a local file."""
    data = sample_bytes(2).replace(
        b"<WageReport",
        b'<!DOCTYPE WageReport [<!ENTITY x SYSTEM "file:///etc/hostname">]>\n'
        b"<WageReport",
        1,
    )
    data = data.replace(b"<Bsn>", b"<Bsn>&x;", 1)

    assert list(record_bsns(write(tmp_path, data))) == _bsns(data)


def test_a_file_that_is_not_xml_yields_nothing(tmp_path: Path) -> None:
    """Binary garbage, as a failed decryption might leave, gives no subjects."""
    path = tmp_path / "garbage.xml"
    path.write_bytes(bytes(range(256)) * 64)

    assert list(record_bsns(path)) == []
