"""Tests of the root's structure on both paths, and of memory on a large file."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.sample import write_report
from gateway.validate import validate_file
from tests.support.reports import FULL_CONTEXT, TODAY, sample_bytes, write

HEADER_END = b"</Header>"
FIRST_RECORD = b"<Record>"


def moved_header(data: bytes) -> bytes:
    """The report with its Header after the first Record."""
    start, end = data.index(b"<Header>"), data.index(HEADER_END) + len(HEADER_END)
    header, rest = data[start:end], data[:start] + data[end:]
    after = rest.index(b"</Record>") + len(b"</Record>")
    return rest[:after] + header + rest[after:]


def without_records(data: bytes) -> bytes:
    """The report with its Header and no Record."""
    return data[: data.index(FIRST_RECORD)] + b"</WageReport>"


STRUCTURES = [
    # an element the schema does not know between two records
    ("stray-element", lambda d: d.replace(b"</Record>", b"</Record><Note>x</Note>", 1)),
    # text directly inside the root
    ("text-in-root", lambda d: d.replace(b"</Record>", b"</Record>loose text", 1)),
    # the Header after a Record
    ("header-late", moved_header),
    # no Record at all
    ("no-records", without_records),
    # a second Header
    (
        "two-headers",
        lambda d: d.replace(
            FIRST_RECORD,
            d[d.index(b"<Header>") : d.index(HEADER_END) + 9] + FIRST_RECORD,
            1,
        ),
    ),
    # a Record nested inside a Record
    ("nested-record", lambda d: d.replace(b"</NetPaid>", b"</NetPaid><Record/>", 1)),
    # an attribute on the root
    ("root-attribute", lambda d: d.replace(b"<WageReport ", b'<WageReport id="1" ', 1)),
]


@pytest.mark.parametrize("streaming", [False, True], ids=["tree", "stream"])
@pytest.mark.parametrize(
    "change", [c for _, c in STRUCTURES], ids=[n for n, _ in STRUCTURES]
)
def test_root_structure(
    tmp_path: Path, change: Callable[[bytes], bytes], streaming: bool
) -> None:
    """Every break of the root's sequence is a structure finding on both paths."""
    data = change(sample_bytes(4))

    result = validate_file(write(tmp_path, data), FULL_CONTEXT, streaming=streaming)

    assert "SCHEMA-STRUCTURE" in result.codes, result.codes
    assert not result.valid


def test_comments_and_instructions_are_harmless(tmp_path: Path) -> None:
    """Comments and processing instructions between records are allowed."""
    data = sample_bytes(4).replace(b"</Record>", b"</Record><!-- c --><?pi x?>")

    for streaming in (False, True):
        result = validate_file(write(tmp_path, data), FULL_CONTEXT, streaming=streaming)
        assert result.valid, result.codes


def test_large_report_streams(tmp_path: Path) -> None:
    """A report over the tree limit is streamed and counted in full."""
    path = tmp_path / "large.xml"
    with path.open("wb") as out:
        write_report(out, records=4000, seed=2, today=TODAY)

    result = validate_file(path, FULL_CONTEXT)

    assert result.valid
    assert result.record_count == 4000


def _peak_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return 0.0
    lines = [line for line in status.splitlines() if line.startswith("VmHWM:")]
    return int(lines[0].split()[1]) / 1024 if lines else 0.0


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.skipif(os.environ.get("LOONBRUG_SLOW") != "1", reason="LOONBRUG_SLOW=1")
def test_100_mb_report_stays_under_100_mb(tmp_path: Path) -> None:
    """Validating a 100 MB report in a child process peaks under 100 MB RSS."""
    path = tmp_path / "large.xml"
    with path.open("wb") as out:
        write_report(out, records=145_000, seed=3, today=TODAY)
    assert path.stat().st_size > 100_000_000
    code = (
        "import sys; from pathlib import Path;"
        "from gateway.validate import validate_file;"
        "sys.exit(0 if validate_file(Path(sys.argv[1])).valid else 1)"
    )

    process = subprocess.Popen([sys.executable, "-c", code, str(path)])
    peak = 0.0
    while True:
        peak = max(peak, _peak_mb(process.pid))
        try:
            status = process.wait(timeout=0.05)
            break
        except subprocess.TimeoutExpired:
            continue

    assert status == 0
    assert 0 < peak < 100


@pytest.mark.parametrize("streaming", [False, True], ids=["tree", "stream"])
def test_comment_before_header_keeps_the_rules(tmp_path: Path, streaming: bool) -> None:
    """A comment before the Header does not stop the header-based rules."""
    data = sample_bytes(4, inject="EMPLOYMENT-OUTSIDE-PERIOD")
    data = data.replace(b"<Header>", b"<!-- exported by payroll -->\n  <Header>", 1)

    result = validate_file(write(tmp_path, data), FULL_CONTEXT, streaming=streaming)

    assert result.codes == ["EMPLOYMENT-OUTSIDE-PERIOD"]


def test_oversized_element_is_refused_while_streaming(tmp_path: Path) -> None:
    """A Record of megabytes is refused before it can fill memory."""
    filler = b"<Note/>" * 300_000  # about 2 MB of small elements in one record
    data = sample_bytes(3).replace(b"</NetPaid>", b"</NetPaid>" + filler, 1)

    result = validate_file(write(tmp_path, data), FULL_CONTEXT, streaming=True)

    assert result.codes == ["XML-LIMIT"]


@pytest.mark.parametrize("streaming", [False, True], ids=["tree", "stream"])
def test_comments_inside_records_do_not_shift_fields(
    tmp_path: Path, streaming: bool
) -> None:
    """Comments between a record's fields change nothing the rules see."""
    data = sample_bytes(6, inject="AMOUNT-TAX-ABOVE-TAXABLE")
    data = data.replace(b"<Surname>", b"<!-- c --><?pi x?><Surname>")

    result = validate_file(write(tmp_path, data), FULL_CONTEXT, streaming=streaming)

    assert result.codes == ["AMOUNT-TAX-ABOVE-TAXABLE"]
