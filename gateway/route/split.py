"""Splitting a wage report into one municipality report per municipality.

The report is streamed with ``lxml.etree.iterparse`` and each ``Record`` is
copied, unchanged and in the wage-report namespace, into the document of its
municipality, which is written incrementally with ``etree.xmlfile``. Memory
stays bounded by the size of one record whatever the size of the report: every
element is cleared once copied, and earlier siblings are dropped from the tree.

The report has been validated before it comes here (the validator rejects a
DOCTYPE, so no entity can be expanded); the parser is still built without
entity resolution, DTD loading or network access.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from gateway.errors import ValidationError

WAGE_REPORT_NS = "urn:loonbrug:wage-report:v1"
MUNICIPALITY_REPORT_NS = "urn:loonbrug:municipality-report:v1"

_HEADER = f"{{{WAGE_REPORT_NS}}}Header"
_RECORD = f"{{{WAGE_REPORT_NS}}}Record"
_NSMAP: dict[Any, str] = {None: MUNICIPALITY_REPORT_NS}

# Called with (municipality code, BSN) for every record copied.
RecordHook = Callable[[str, str], None]


@dataclass(frozen=True)
class Provenance:
    """Where the records came from, written into every document's envelope."""

    message_id: str
    received_at: str
    upload_sha256: str
    signer_fingerprint: str


@dataclass(frozen=True)
class SenderFacts:
    """The sender block of the report's header."""

    name: str
    kvk: str
    payroll_tax_number: str


def _wr(name: str) -> str:
    return f"{{{WAGE_REPORT_NS}}}{name}"


def _mr(name: str) -> str:
    return f"{{{MUNICIPALITY_REPORT_NS}}}{name}"


def _sender(header: Any) -> SenderFacts:
    sender = header.find(_wr("Sender"))
    if sender is None:
        raise ValidationError("the report header has no sender")
    return SenderFacts(
        name=sender.findtext(_wr("Name"), ""),
        kvk=sender.findtext(_wr("KvkNumber"), ""),
        payroll_tax_number=sender.findtext(_wr("PayrollTaxNumber"), ""),
    )


def envelope(
    provenance: Provenance, sender: SenderFacts, code: str, record_count: int
) -> etree._Element:
    """The ``Envelope`` element of one municipality's document."""
    root = etree.Element(_mr("Envelope"), nsmap=_NSMAP)
    etree.SubElement(root, _mr("OriginalMessageId")).text = provenance.message_id
    block = etree.SubElement(root, _mr("Sender"))
    etree.SubElement(block, _mr("Name")).text = sender.name
    etree.SubElement(block, _mr("KvkNumber")).text = sender.kvk
    etree.SubElement(block, _mr("PayrollTaxNumber")).text = sender.payroll_tax_number
    etree.SubElement(root, _mr("ReceivedAt")).text = provenance.received_at
    etree.SubElement(root, _mr("UploadSha256")).text = provenance.upload_sha256
    etree.SubElement(
        root, _mr("SignerFingerprint")
    ).text = provenance.signer_fingerprint
    etree.SubElement(root, _mr("MunicipalityCode")).text = code
    etree.SubElement(root, _mr("RecordCount")).text = str(record_count)
    return root


class _Documents:
    """The open municipality documents, one incremental writer each."""

    def __init__(self, stack: ExitStack, folder: Path) -> None:
        self.stack = stack
        self.folder = folder
        self.writers: dict[str, Any] = {}
        self.paths: dict[str, Path] = {}

    def open_all(
        self, provenance: Provenance, sender: SenderFacts, counts: Mapping[str, int]
    ) -> None:
        for code, count in sorted(counts.items()):
            path = self.folder / f"{code}.xml"
            handle = self.stack.enter_context(path.open("wb"))
            writer = self.stack.enter_context(etree.xmlfile(handle, encoding="utf-8"))
            writer.write_declaration()
            self.stack.enter_context(
                writer.element(_mr("MunicipalityReport"), nsmap=_NSMAP)
            )
            writer.write(envelope(provenance, sender, code, count))
            self.writers[code] = writer
            self.paths[code] = path

    def write(self, code: str, record: Any) -> bool:
        writer = self.writers.get(code)
        if writer is None:
            return False
        writer.write(record, with_tail=False)
        return True


def _release(element: Any) -> None:
    """Free a handled element and everything parsed before it."""
    element.clear(keep_tail=False)
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]


def split_report(
    source: Path,
    folder: Path,
    provenance: Provenance,
    counts: Mapping[str, int],
    on_record: RecordHook,
) -> dict[str, Path]:
    """Write one municipality report per code in *counts* into *folder*.

    *counts* holds the number of records per municipality found by validation,
    which the envelope states before the records follow; records of a
    municipality not in *counts* are skipped (a redo after a crash writes only
    the documents still missing). Returns the document of each code.
    """
    parser_options: dict[str, Any] = {
        "events": ("end",),
        "tag": (_HEADER, _RECORD),
        "resolve_entities": False,
        "load_dtd": False,
        "no_network": True,
    }
    with ExitStack() as stack:
        documents = _Documents(stack, folder)
        try:
            for _, element in etree.iterparse(str(source), **parser_options):
                if element.tag == _HEADER:
                    documents.open_all(provenance, _sender(element), counts)
                else:
                    code = element.findtext(_wr("MunicipalityCode"), "")
                    if documents.write(code, element):
                        on_record(code, element.findtext(_wr("Bsn"), ""))
                _release(element)
        except etree.LxmlError as exc:
            raise ValidationError(
                f"the report cannot be split ({type(exc).__name__})"
            ) from exc
        return dict(documents.paths)
