"""Finding personal data where it must never be: logs and audit files.

A BSN is recognised as nine digits, standing alone (no letter or digit on
either side, so pieces of SHA-256 hex, pseudonyms, UUIDs and loonheffingen-
nummers like ``123456782L01`` do not count), that pass the eleven-test. Names
are the surnames :mod:`gateway.sample` draws from, as whole words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from gateway import sample
from gateway.validate.numbers import is_valid_bsn

_NINE_DIGITS = re.compile(r"(?<![0-9A-Za-z])[0-9]{9}(?![0-9A-Za-z])")
_SCANNED_SUFFIXES = (".jsonl", ".log", ".html")
_ARMOR_BEGIN = "-----BEGIN PGP"
_ARMOR_END = "-----END PGP"


def sample_surnames() -> frozenset[str]:
    """Every surname gateway.sample can put in a report."""
    return frozenset(name for _prefix, name in sample._SURNAMES)


_SURNAME = re.compile(
    r"\b(?:" + "|".join(sorted(map(re.escape, sample_surnames()))) + r")\b"
)


@dataclass(frozen=True)
class Hit:
    """Personal data found at a place; the value itself is not kept."""

    place: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.place} line {self.line}: {self.what}"


def find_in_text(text: str, place: str) -> Iterator[Hit]:
    """BSN-like numbers and sample surnames in *text*, outside armored blocks."""
    in_armor = False
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith(_ARMOR_BEGIN):
            in_armor = True
        if not in_armor:
            if any(is_valid_bsn(m.group()) for m in _NINE_DIGITS.finditer(line)):
                yield Hit(place, number, "a number that passes the BSN eleven-test")
            if _SURNAME.search(line):
                yield Hit(place, number, "a surname of the sample reports")
        if line.startswith(_ARMOR_END):
            in_armor = False


def scanned_files(root: Path) -> Iterator[Path]:
    """Log, audit and report files under *root*, and plain files in receipts."""
    for path in root.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        if (
            path.suffix in _SCANNED_SUFFIXES
            or "stderr" in path.name
            or "receipts" in path.parts
        ):
            yield path


def find_in_tree(root: Path) -> list[Hit]:
    """Every hit in the files :func:`scanned_files` picks under *root*."""
    hits: list[Hit] = []
    for path in scanned_files(root):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        hits += find_in_text(text, str(path.relative_to(root)))
    return hits


def find_in_sections(sections: Iterable[tuple[str, str]], test: str) -> list[Hit]:
    """Hits in a test's captured standard error and log output."""
    hits: list[Hit] = []
    for title, content in sections:
        if "stderr" in title or "log" in title:
            hits += find_in_text(content, f"{test} ({title})")
    return hits
