"""Tests of splitting a wage report per municipality."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
from lxml import etree

from gateway.route.split import Provenance, split_report
from gateway.sample import generate_report

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
WR = "{urn:loonbrug:wage-report:v1}"
MR = "{urn:loonbrug:municipality-report:v1}"
PROVENANCE = Provenance(
    message_id="0b8f5a3e-58a4-4c3e-9d43-1d1b4f2b6a10",
    received_at="2026-03-02T09:30:00+00:00",
    upload_sha256="ab" * 32,
    signer_fingerprint="0123456789ABCDEF0123456789ABCDEF01234567",
)


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    """The municipality report schema."""
    return etree.XMLSchema(etree.parse(str(SCHEMAS / "municipality-report-v1.xsd")))


def _records_by_code(report: Path) -> dict[str, list[bytes]]:
    found: dict[str, list[bytes]] = collections.defaultdict(list)
    for record in etree.parse(str(report)).getroot().iter(f"{WR}Record"):
        record.tail = None
        found[record.findtext(f"{WR}MunicipalityCode")].append(
            etree.tostring(record, method="c14n")
        )
    return found


def _split(tmp_path: Path, records: int) -> tuple[dict[str, Path], Path, list]:
    report = tmp_path / "report.xml"
    report.write_bytes(generate_report(records=records, seed=7))
    counts = {code: len(r) for code, r in _records_by_code(report).items()}
    folder = tmp_path / "split"
    folder.mkdir()
    routed: list[tuple[str, str]] = []
    documents = split_report(
        report, folder, PROVENANCE, counts, lambda c, b: routed.append((c, b))
    )
    return documents, report, routed


def test_each_municipality_gets_exactly_its_own_records(tmp_path: Path) -> None:
    """Every record lands, unchanged, in its own municipality's document only."""
    documents, report, _ = _split(tmp_path, 40)

    expected = _records_by_code(report)
    assert set(documents) == set(expected)
    for code, document in documents.items():
        assert _records_by_code(document) == {code: expected[code]}


def test_documents_are_valid_municipality_reports(
    tmp_path: Path, schema: etree.XMLSchema
) -> None:
    """Each document validates against municipality-report-v1.xsd."""
    documents, _, _ = _split(tmp_path, 25)

    for document in documents.values():
        tree = etree.parse(str(document))
        assert schema.validate(tree), schema.error_log


def test_envelope_states_provenance_and_count(tmp_path: Path) -> None:
    """The envelope carries the message, sender, hash, signer and record count."""
    documents, report, _ = _split(tmp_path, 12)
    header_sender = etree.parse(str(report)).getroot().find(f"{WR}Header/{WR}Sender")

    for code, document in documents.items():
        envelope = etree.parse(str(document)).getroot().find(f"{MR}Envelope")
        assert envelope.findtext(f"{MR}OriginalMessageId") == PROVENANCE.message_id
        assert envelope.findtext(f"{MR}MunicipalityCode") == code
        assert envelope.findtext(f"{MR}UploadSha256") == PROVENANCE.upload_sha256
        assert envelope.findtext(f"{MR}Sender/{MR}KvkNumber") == header_sender.findtext(
            f"{WR}KvkNumber"
        )
        count = int(envelope.findtext(f"{MR}RecordCount"))
        assert count == len(_records_by_code(document)[code])


def test_hook_sees_every_record_with_its_municipality(tmp_path: Path) -> None:
    """The record hook is called once per record with its code and BSN."""
    _, report, routed = _split(tmp_path, 30)

    root = etree.parse(str(report)).getroot()
    expected = [
        (r.findtext(f"{WR}MunicipalityCode"), r.findtext(f"{WR}Bsn"))
        for r in root.iter(f"{WR}Record")
    ]
    assert routed == expected
