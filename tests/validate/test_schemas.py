"""Tests of the XSDs, cross-checked with a second implementation (xmlschema)."""

from __future__ import annotations

import pytest
import xmlschema
from lxml import etree

from gateway.validate.schemas import (
    MUNICIPALITY_REPORT_XSD,
    RECEIPT_XSD,
    WAGE_REPORT_XSD,
    municipality_report_schema,
    receipt_schema,
    wage_report_schema,
)
from tests.support.reports import sample_bytes

MUNICIPALITY_REPORT = """<?xml version="1.0" encoding="UTF-8"?>
<MunicipalityReport xmlns="urn:loonbrug:municipality-report:v1">
  <Envelope>
    <OriginalMessageId>0f8fad5b-d9cb-469f-a165-70867728950e</OriginalMessageId>
    <Sender>
      <Name>Uitzendbureau Voorbeeld B.V.</Name>
      <KvkNumber>12345678</KvkNumber>
      <PayrollTaxNumber>123456782L01</PayrollTaxNumber>
    </Sender>
    <ReceivedAt>2026-03-16T08:00:00Z</ReceivedAt>
    <UploadSha256>{sha}</UploadSha256>
    <SignerFingerprint>{fpr}</SignerFingerprint>
    <MunicipalityCode>GM0599</MunicipalityCode>
    <RecordCount>1</RecordCount>
  </Envelope>
  {record}
</MunicipalityReport>
"""

RECEIPT = """<?xml version="1.0" encoding="UTF-8"?>
<Receipt xmlns="urn:loonbrug:receipt:v1">
  <Outcome>rejected</Outcome>
  <Upload>
    <Name>week11.xml.gpg</Name>
    <Sha256>{sha}</Sha256>
    <Size>1234</Size>
    <ReceivedAt>2026-03-16T08:00:00+01:00</ReceivedAt>
  </Upload>
  <MessageId>0f8fad5b-d9cb-469f-a165-70867728950e</MessageId>
  <Accepted/>
  <Findings truncated="false">
    <Finding code="BSN-ELEVEN-TEST" severity="error" line="18"
             path="/WageReport/Record[1]/Bsn" recordId="R1">the BSN fails</Finding>
    <Finding code="XML-DOCTYPE" severity="error">a DOCTYPE is not allowed</Finding>
  </Findings>
</Receipt>
"""


def both_accept(
    xsd: object, lxml_schema: etree.XMLSchema, data: bytes
) -> tuple[bool, bool]:
    """Whether lxml and xmlschema each accept *data*."""
    other = xmlschema.XMLSchema(str(xsd))
    return lxml_schema.validate(etree.fromstring(data)), other.is_valid(data.decode())


def municipality_report() -> bytes:
    """A municipality report holding one sample record."""
    record = sample_bytes(1).decode().split("<Record>")[1].split("</Record>")[0]
    text = MUNICIPALITY_REPORT.format(
        sha="a" * 64,
        fpr="B" * 40,
        record=f'<Record xmlns="urn:loonbrug:wage-report:v1">{record}</Record>',
    )
    return text.encode()


def test_sample_is_valid_for_both_implementations() -> None:
    """A sample wage report passes lxml and xmlschema alike."""
    assert both_accept(WAGE_REPORT_XSD, wage_report_schema(), sample_bytes(30)) == (
        True,
        True,
    )


@pytest.mark.parametrize(
    ("element", "value"),
    [
        ("GrossWage", "12.5"),  # one decimal
        ("GrossWage", "012.50"),  # leading zero
        ("GrossWage", "+12.50"),  # explicit plus
        ("GrossWage", "1,234.50"),  # thousands separator
        ("HoursPaid", "38"),  # no decimals
        ("CreatedAt", "2026-03-16T08:00:00"),  # no offset
        ("PeriodStart", "2026-03-09Z"),  # a date with a zone
        ("Initials", "J.P"),  # last initial without full stop
        ("MunicipalityCode", "GM599"),  # three digits
        ("PayrollTaxNumber", "123456782L1"),  # one-digit subnumber
        ("PeriodKind", "year"),  # not a period kind
        ("MessageId", "not-a-uuid"),  # not a UUID
    ],
)
def test_bad_forms_are_refused_by_both(element: str, value: str) -> None:
    """Each malformed value is rejected by lxml and by xmlschema."""
    root = etree.fromstring(sample_bytes(2))
    target = root.xpath(f"//*[local-name()='{element}']")[0]
    target.text = value
    data = etree.tostring(root)

    assert both_accept(WAGE_REPORT_XSD, wage_report_schema(), data) == (False, False)


def test_municipality_report_schema() -> None:
    """A municipality report with a copied record passes both implementations."""
    data = municipality_report()
    assert both_accept(MUNICIPALITY_REPORT_XSD, municipality_report_schema(), data) == (
        True,
        True,
    )


def test_receipt_schema() -> None:
    """A receipt with findings passes both implementations."""
    data = RECEIPT.format(sha="c" * 64).encode()
    assert both_accept(RECEIPT_XSD, receipt_schema(), data) == (True, True)


def test_receipt_refuses_unknown_outcome() -> None:
    """Outcome is accepted or rejected, nothing else."""
    data = RECEIPT.format(sha="c" * 64).replace("rejected", "maybe").encode()
    assert both_accept(RECEIPT_XSD, receipt_schema(), data) == (False, False)
