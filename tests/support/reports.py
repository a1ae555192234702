"""Building and editing wage reports in tests of the validator."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lxml import etree

from gateway.sample import (
    DEFAULT_MUNICIPALITIES,
    DEFAULT_SENDER,
    OUTSIDE_MUNICIPALITY,
    generate_report,
)
from gateway.validate import SenderContext, ValidationContext

TODAY = dt.date(2026, 3, 18)  # a Wednesday; sample periods end on 2026-03-15
NS = "urn:loonbrug:wage-report:v1"
W = {"w": NS}

# The context of an upload by the sample's default sender, as the daemon builds it.
FULL_CONTEXT = ValidationContext(
    known_municipalities=frozenset(DEFAULT_MUNICIPALITIES) | {OUTSIDE_MUNICIPALITY},
    sender=SenderContext(
        kvk=DEFAULT_SENDER.kvk,
        payroll_tax_number=DEFAULT_SENDER.payroll_tax_number,
        authorised_municipalities=frozenset(DEFAULT_MUNICIPALITIES),
    ),
    today=TODAY,
)


def sample_bytes(records: int = 20, seed: int = 1, **options: Any) -> bytes:
    """A sample report made as if today were :data:`TODAY`."""
    return generate_report(records=records, seed=seed, today=TODAY, **options)


def write(folder: Path, data: bytes, name: str = "report.xml") -> Path:
    """Write *data* to a file in *folder* and return its path."""
    path = folder / name
    path.write_bytes(data)
    return path


def edited(data: bytes, change: Callable[[etree._Element], None]) -> bytes:
    """*data* parsed, changed by *change* (given the root), and serialised again."""
    root = etree.fromstring(data)
    change(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def set_text(xpath: str, text: str) -> Callable[[etree._Element], None]:
    """A change that sets the text of the first element at *xpath* (prefix w:)."""

    def change(root: etree._Element) -> None:
        element = root.xpath(xpath, namespaces=W)[0]
        element.text = text

    return change


def first_plain_record(root: etree._Element) -> etree._Element:
    """The first record that is not a correction."""
    return root.xpath("w:Record[not(w:Corrects)]", namespaces=W)[0]
