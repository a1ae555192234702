"""The receipt an intermediary gets back for every upload.

A receipt (``schemas/receipt-v1.xsd``) states the outcome, which upload it
answers (name, SHA-256, size, time received), the message id when the upload
could be read that far, the records accepted per municipality and every
finding. The pipeline signs the XML built here; findings never quote personal
data, so the receipt carries none beyond the upload's own name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from gateway.validate.findings import Finding

RECEIPT_NS = "urn:loonbrug:receipt:v1"
_NAME_LIMIT = 255
_NSMAP: dict[Any, str] = {None: RECEIPT_NS}


@dataclass(frozen=True)
class ReceiptFacts:
    """Everything a receipt says."""

    outcome: str
    upload_name: str
    upload_sha256: str
    upload_size: int
    received_at: str
    message_id: str | None = None
    accepted: Mapping[str, int] = field(default_factory=dict)
    findings: Sequence[Finding] = ()
    truncated: bool = False


def _r(name: str) -> str:
    return f"{{{RECEIPT_NS}}}{name}"


def printable(text: str) -> str:
    """*text* with every character XML 1.0 cannot carry replaced by '?'."""
    return "".join(
        c
        if c in "\t\n\r" or (" " <= c <= "\ud7ff") or ("\ue000" <= c <= "\ufffd")
        else "?"
        for c in text
    )


def _finding(parent: etree._Element, finding: Finding) -> None:
    element = etree.SubElement(parent, _r("Finding"))
    element.set("code", finding.code)
    element.set("severity", str(finding.severity))
    if finding.line is not None:
        element.set("line", str(finding.line))
    if finding.column is not None:
        element.set("column", str(finding.column))
    if finding.path is not None:
        element.set("path", printable(finding.path))
    if finding.record_id is not None:
        element.set("recordId", printable(finding.record_id))
    element.text = printable(finding.message)


def receipt_xml(facts: ReceiptFacts) -> bytes:
    """The receipt document for *facts*, as UTF-8 XML."""
    root = etree.Element(_r("Receipt"), nsmap=_NSMAP)
    etree.SubElement(root, _r("Outcome")).text = facts.outcome
    upload = etree.SubElement(root, _r("Upload"))
    name = printable(facts.upload_name)[:_NAME_LIMIT] or "?"
    etree.SubElement(upload, _r("Name")).text = name
    etree.SubElement(upload, _r("Sha256")).text = facts.upload_sha256
    etree.SubElement(upload, _r("Size")).text = str(facts.upload_size)
    etree.SubElement(upload, _r("ReceivedAt")).text = facts.received_at
    if facts.message_id:
        etree.SubElement(root, _r("MessageId")).text = facts.message_id
    accepted = etree.SubElement(root, _r("Accepted"))
    for code, count in sorted(facts.accepted.items()):
        etree.SubElement(accepted, _r("Municipality"), code=code, records=str(count))
    findings = etree.SubElement(root, _r("Findings"))
    if facts.truncated:
        findings.set("truncated", "true")
    for finding in facts.findings:
        _finding(findings, finding)
    return bytes(
        etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    )
