"""The data subjects of a wage report that may break any rule: its BSNs.

A rejected report is still personal data the gateway received and keeps for a
while (``rejected/``), so a data-subject access request must find it (AVG
article 15). The pipeline therefore records keyed pseudonyms of the BSNs of a
rejected report, and this module reads them out of a report the validator
refused.

It reads with the validator's hardened streaming parser (no DTD, no entities,
no network, element size capped) and only as far as the document is
well-formed: past a syntax error or an oversized element it stops, keeping what
it found. It never judges the report and yields only values that have a BSN's
form (nine digits, as the schema's ``Bsn`` type), whatever else the document
holds there: anything else is not an identifier a person could ask about.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from lxml import etree

from gateway.validate.fields import XML_SPACE
from gateway.validate.hardening import ElementStream, ElementTooLarge
from gateway.validate.schemas import WAGE_REPORT_NS

_RECORD = "{" + WAGE_REPORT_NS + "}Record"
_BSN = "{" + WAGE_REPORT_NS + "}Bsn"
_BSN_FORM = re.compile(r"[0-9]{9}")


def record_bsns(path: Path) -> Iterator[str]:
    """Every BSN-shaped value of a ``Record``'s ``Bsn`` in the report at *path*."""
    stream = ElementStream(path, (_RECORD,))
    try:
        yield from _bsns(iter(stream))
    except etree.XMLSyntaxError:
        # The records that ended before the error are still queued.
        queued = (e for _, e in stream.parser.read_events())
        yield from _bsns(e for e in queued if isinstance(e, etree._Element))
    except (ElementTooLarge, OSError):
        return


def _bsns(records: Iterator[etree._Element]) -> Iterator[str]:
    for record in records:
        bsn = (record.findtext(_BSN) or "").strip(XML_SPACE)
        if _BSN_FORM.fullmatch(bsn):
            yield bsn
        _forget(record)


def _forget(record: etree._Element) -> None:
    # Drop what has been read, so memory stays flat whatever the file's size.
    record.clear()
    parent = record.getparent()
    while parent is not None and record.getprevious() is not None:
        del parent[0]
