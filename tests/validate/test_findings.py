"""Tests of findings: their places, their wording, and what they never say."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.errors import ValidationError
from gateway.validate import Severity, ValidationContext, validate_file
from gateway.validate.findings import Finding, FindingList
from tests.support.reports import FULL_CONTEXT, TODAY, sample_bytes, write

# Values that must never come back in a finding, planted where the schema
# rejects them (lxml's own messages would quote every one of them).
PLANTED = [
    (b"<Bsn>", b"<Bsn>12345678"),  # a BSN one digit short
    (b"<Surname>", b"<Surname>Geheimnaam\t"),  # a name with a control character
    (b"<GrossWage>", b"<GrossWage>98765.4"),  # an amount with one decimal
    (b"<BirthDate>", b"<BirthDate>1971-02-30x"),  # an impossible birth date
    (b"<Initials>", b"<Initials>qq"),  # lower-case initials
    (b"<Record>", b'<Record secret="Zorgvuldig">'),  # an attribute value
    (b"</Initials>", b"</Initials><Pietersen>1</Pietersen>"),  # a name as a tag
]
FORBIDDEN = [
    "12345678",
    "Geheimnaam",
    "98765",
    "1971-02-30",
    "qq",
    "Zorgvuldig",
    "Pietersen",
]


def planted_report() -> bytes:
    """A sample with every planted value, each in its own record."""
    head, *records = sample_bytes(len(PLANTED) * 2).split(b"<Record>")
    chunks = [b"<Record>" + record for record in records]
    for n, (old, new) in enumerate(PLANTED):
        chunks[n] = chunks[n].replace(old, new, 1)
    return head + b"".join(chunks)


@pytest.mark.parametrize("streaming", [False, True], ids=["tree", "stream"])
def test_findings_never_echo_values(tmp_path: Path, streaming: bool) -> None:
    """Schema findings name fields and forms, never the rejected values."""
    result = validate_file(
        write(tmp_path, planted_report()), FULL_CONTEXT, streaming=streaming
    )

    text = json.dumps(result.to_dict())
    assert len(result.findings) >= len(PLANTED)
    for value in FORBIDDEN:
        assert value not in text, value


@pytest.mark.parametrize("streaming", [False, True], ids=["tree", "stream"])
def test_every_error_is_collected_with_its_place(
    tmp_path: Path, streaming: bool
) -> None:
    """All findings of a document come back, each with line, path and record id."""
    result = validate_file(
        write(tmp_path, planted_report()), FULL_CONTEXT, streaming=streaming
    )

    records = {f.record_id for f in result.findings}
    assert len(records) == len(PLANTED)
    for finding in result.findings:
        assert finding.line is not None
        assert finding.path is not None and finding.path.startswith(
            "/WageReport/Record["
        )


def test_tree_and_stream_agree(tmp_path: Path) -> None:
    """Both ways through a document find the same things in the same places."""
    path = write(tmp_path, planted_report())

    tree = validate_file(path, FULL_CONTEXT, streaming=False)
    stream = validate_file(path, FULL_CONTEXT, streaming=True)

    def key(f: Finding) -> tuple[object, ...]:
        return (f.code, f.line, f.path, f.record_id)

    assert sorted(map(key, tree.findings)) == sorted(map(key, stream.findings))


def test_cap_truncates_and_keeps_an_error(tmp_path: Path) -> None:
    """At the cap, findings stop, the result says so, and stays invalid."""
    data = sample_bytes(30).replace(b"<Bsn>9", b"<Bsn>8")
    context = ValidationContext(today=TODAY, max_findings=5)

    result = validate_file(write(tmp_path, data), context)

    assert len(result.findings) == 5
    assert result.truncated
    assert not result.valid


def test_warnings_alone_do_not_hide_an_error() -> None:
    """When warnings fill the list, a later error still takes the last place."""
    findings = FindingList(2)
    for _ in range(3):
        findings.add(Finding("W", Severity.WARNING, "w"))
    findings.add(Finding("E", Severity.ERROR, "e"))

    assert [f.code for f in findings.items] == ["W", "E"]
    assert findings.truncated


def test_describe_and_to_dict() -> None:
    """A finding prints as file:line:column and serialises without empty places."""
    finding = Finding("BSN-ELEVEN-TEST", Severity.ERROR, "m", line=3, record_id="R1")

    assert finding.describe("r.xml") == "r.xml:3: error BSN-ELEVEN-TEST: m [record R1]"
    assert finding.to_dict() == {
        "code": "BSN-ELEVEN-TEST",
        "severity": "error",
        "message": "m",
        "line": 3,
        "record_id": "R1",
    }


def test_too_large_file(tmp_path: Path) -> None:
    """A file over max_bytes is refused before it is parsed."""
    context = ValidationContext(today=TODAY, max_bytes=1000)

    result = validate_file(write(tmp_path, sample_bytes(5)), context)

    assert result.codes == ["XML-TOO-LARGE"]


def test_unreadable_file_raises(tmp_path: Path) -> None:
    """A missing file is an I/O problem, not a finding."""
    with pytest.raises(ValidationError):
        validate_file(tmp_path / "missing.xml")
