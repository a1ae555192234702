"""The hardened XML front door: prolog checks and a parser that trusts nothing.

Before libxml2 sees a byte, :func:`check_prolog` reads the start of the file and
refuses what a wage report never needs: any encoding but UTF-8 (including UTF-16
and UTF-32 byte order marks), and any DOCTYPE. Refusing the DOCTYPE up front
means no DTD, no internal subset and no entity declaration ever reaches the
parser, which closes billion-laughs, quadratic blow-up, external and parameter
entities in one place.

The parser itself is configured as a second line: no entity substitution, no DTD
loading, no network, no huge-tree mode, so libxml2's own limits apply (nesting
deeper than 256 levels, text nodes over 10 MB). XInclude is never processed (we
never call it), and the schema is always ours, so schemaLocation hints in a
document are never followed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, cast

from lxml import etree

from gateway.validate.findings import Finding, Severity

PROLOG_LIMIT = 64 * 1024  # more prolog than this is not a wage report
# No Header or Record comes near this size; a larger element is refused while
# streaming, which bounds the memory a single element can take.
ELEMENT_LIMIT = 1024 * 1024
CHUNK_BYTES = 64 * 1024

_UTF8_BOM = b"\xef\xbb\xbf"
# Byte order marks, and the first bytes of "<" in encodings without one.
_FOREIGN_BOMS = (
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\x00<", "UTF-32"),
    (b"<\x00\x00\x00", "UTF-32"),
    (b"\xfe\xff", "UTF-16"),
    (b"\xff\xfe", "UTF-16"),
    (b"\x00<", "UTF-16"),
    (b"<\x00", "UTF-16"),
)
_DECLARATION = re.compile(rb"<\?xml[ \t\r\n][^>]*?\?>")
_ENCODING = re.compile(
    rb"""encoding[ \t\r\n]*=[ \t\r\n]*["']([A-Za-z0-9._-]{1,40})["']"""
)
_SPACE = b" \t\r\n"


def _place(head: bytes, offset: int) -> tuple[int, int]:
    line = head.count(b"\n", 0, offset) + 1
    column = offset - (head.rfind(b"\n", 0, offset) + 1) + 1
    return line, column


def _encoding_finding(head: bytes) -> Finding | None:
    for bom, name in _FOREIGN_BOMS:
        if head.startswith(bom):
            return Finding(
                "XML-ENCODING",
                Severity.ERROR,
                f"the file is encoded as {name}; wage reports must be UTF-8",
                line=1,
                column=1,
            )
    declaration = _DECLARATION.match(head.removeprefix(_UTF8_BOM))
    if declaration is None or b"encoding" not in declaration.group(0):
        return None
    encoding = _ENCODING.search(declaration.group(0))
    if encoding is not None and encoding.group(1).lower() in (b"utf-8", b"utf8"):
        return None
    return Finding(
        "XML-ENCODING",
        Severity.ERROR,
        "the XML declaration names an encoding other than UTF-8",
        line=1,
        column=1,
    )


def _skip_misc(head: bytes, offset: int) -> int | None:
    """The offset after whitespace, comments and processing instructions."""
    while True:
        while offset < len(head) and head[offset] in _SPACE:
            offset += 1
        for opener, closer in ((b"<!--", b"-->"), (b"<?", b"?>")):
            if head.startswith(opener, offset):
                end = head.find(closer, offset + len(opener))
                if end < 0:
                    return None
                offset = end + len(closer)
                break
        else:
            return offset


def check_prolog(head: bytes, *, complete: bool) -> Finding | None:
    """A finding for the start of a file, or None when parsing may begin.

    *head* is the first :data:`PROLOG_LIMIT` bytes; *complete* says whether it is
    the whole file.
    """
    encoding = _encoding_finding(head)
    if encoding is not None:
        return encoding
    start = len(_UTF8_BOM) if head.startswith(_UTF8_BOM) else 0
    declaration = _DECLARATION.match(head, start)
    offset = _skip_misc(head, declaration.end() if declaration else start)
    if offset is None or offset >= len(head):
        if complete:
            return None  # the parser reports the truncated prolog precisely
        return Finding(
            "XML-LIMIT",
            Severity.ERROR,
            f"the document's prolog is longer than {PROLOG_LIMIT} bytes",
            line=1,
            column=1,
        )
    line, column = _place(head, offset)
    if head.startswith(b"<!DOCTYPE", offset):
        return doctype_finding(line, column)
    if head[offset] != ord("<"):
        # Not XML as a UTF-8 parser would read it; refusing here also keeps
        # libxml2 from guessing another encoding (EBCDIC, UCS-4) by itself.
        return Finding(
            "XML-MALFORMED",
            Severity.ERROR,
            "no XML document found (the file does not start with markup)",
            line=line,
            column=column,
        )
    return None


def doctype_finding(line: int | None, column: int | None) -> Finding:
    """The finding for a DOCTYPE, wherever it was noticed."""
    return Finding(
        "XML-DOCTYPE",
        Severity.ERROR,
        "a DOCTYPE is not allowed: DTDs and entity declarations are refused",
        line=line,
        column=column,
    )


def has_doctype(element: etree._Element) -> bool:
    """Whether the element's document carries a DOCTYPE (defence in depth)."""
    return element.getroottree().docinfo.internalDTD is not None


# The options every parser of untrusted XML here is made with: no entities, no
# DTD, no network, libxml2's own limits; the tree ones keep elements only.
_HARDENED: dict[str, Any] = {
    "resolve_entities": False,
    "load_dtd": False,
    "dtd_validation": False,
    "no_network": True,
    "huge_tree": False,
    "collect_ids": False,
}
_TREE: dict[str, Any] = {
    "remove_blank_text": True,  # fewer nodes: faster to build and to validate
    "remove_comments": True,  # a record's children are then elements only
    "remove_pis": True,
}


def new_parser() -> etree.XMLParser:
    """A fresh hardened parser (fresh, so its error log is this document's own)."""
    return etree.XMLParser(**_HARDENED, **_TREE)


class _NoTree:
    """A parser target without handlers: libxml2 checks the document, builds nothing."""

    def close(self) -> None:
        return None


def check_well_formed(data: bytes) -> bool:
    """Whether the hardened parser reads *data* without an error.

    No tree is built, which takes about half the time of a parse; a caller that
    needs findings or elements parses again with :func:`new_parser`. Without a
    tree libxml2 reports namespace errors (an undeclared prefix) but does not
    stop for them, so they count here as the tree parser counts them.
    """
    # lxml calls only the handlers a target has; the stubs ask for all of them.
    parser = etree.XMLParser(**_HARDENED, target=cast("etree.ParserTarget", _NoTree()))
    try:
        etree.fromstring(data, parser)
    except etree.XMLSyntaxError:
        return False
    error = etree.ErrorLevels.ERROR
    return all(entry.level < error for entry in parser.error_log)


class WellFormedFeed:
    """:func:`check_well_formed` for a document given piece by piece."""

    def __init__(self) -> None:
        self.parser = etree.XMLParser(
            **_HARDENED, target=cast("etree.ParserTarget", _NoTree())
        )
        self.broken = False

    def feed(self, data: bytes) -> bool:
        """Read on; False once the document is found not well-formed."""
        if not self.broken:
            try:
                self.parser.feed(data)
            except etree.XMLSyntaxError:
                self.broken = True
        return not self.broken

    def close(self) -> bool:
        """Whether the whole document was well-formed."""
        if not self.feed(b""):
            return False
        try:
            self.parser.close()
        except etree.XMLSyntaxError:
            return False
        error = etree.ErrorLevels.ERROR
        return all(entry.level < error for entry in self.parser.feed_error_log)


class ElementTooLarge(Exception):  # noqa: N818 - a signal, caught by the validator
    """Raised by :class:`ElementStream` when one element grows past its limit."""


class ElementStream:
    """Feeds a file to a hardened pull parser and yields chosen elements' ends.

    A wage report is a long row of small elements, so no Header or Record may
    take more than :data:`ELEMENT_LIMIT` bytes: past that the stream raises
    :class:`ElementTooLarge`. This keeps memory flat even for a hostile file
    whose one element (or one stray subtree) would otherwise fill the tree.
    """

    def __init__(self, path: Path, tags: tuple[str, ...]) -> None:
        self.path = path
        self.parser = etree.XMLPullParser(
            events=("end",), tag=tags, **_HARDENED, **_TREE
        )

    @property
    def error_log(self) -> etree._ListErrorLog:
        """The parser's errors, after an XMLSyntaxError."""
        return self.parser.feed_error_log

    def __iter__(self) -> Iterator[etree._Element]:
        """Every chosen element, as soon as it ends. Raises XMLSyntaxError."""
        since_last = 0
        with self.path.open("rb") as file:
            while chunk := file.read(CHUNK_BYTES):
                self.parser.feed(chunk)
                since_last += len(chunk)
                for _, element in self.parser.read_events():
                    since_last = 0
                    if isinstance(element, etree._Element):
                        yield element
                if since_last > ELEMENT_LIMIT:
                    raise ElementTooLarge
        self.parser.close()
        for _, element in self.parser.read_events():
            if isinstance(element, etree._Element):
                yield element


def root_tag(head: bytes) -> str | None:
    """The root element's tag, read from the first bytes of a document."""
    parser = etree.XMLPullParser(events=("start",), **_HARDENED)
    try:
        parser.feed(head)
        for _, element in parser.read_events():
            if isinstance(element, etree._Element) and isinstance(element.tag, str):
                return element.tag
            return None
    except etree.XMLSyntaxError:
        return None
    return None


def source_line(element: etree._Element) -> int | None:
    """The element's line in the file, when libxml2 knows it."""
    line: object = element.sourceline  # the stubs type this oddly
    return line if isinstance(line, int) and line > 0 else None


def log_entries(log: etree._ListErrorLog) -> list[etree._LogEntry]:
    """The entries of an lxml error log as a list."""
    return [entry for entry in cast("Iterable[etree._LogEntry]", log)]


def syntax_findings(
    entries: Iterable[etree._LogEntry], fallback: tuple[int, int] = (1, 1)
) -> list[Finding]:
    """Findings for libxml2 parse errors; our own wording, never the parser's.

    libxml2 messages can quote bytes of the document, so only the error type and
    the position are used.
    """
    findings: list[Finding] = []
    for entry in entries:
        finding = _syntax_finding(entry.type_name, entry.line, entry.column)
        if finding not in findings:
            findings.append(finding)
    return findings or [_syntax_finding("ERR_DOCUMENT_EMPTY", *fallback)]


def _syntax_finding(type_name: str, line: int, column: int) -> Finding:
    code, message = _SYNTAX_WORDING.get(type_name, ("XML-MALFORMED", ""))
    if not message:
        detail = type_name.removeprefix("ERR_").replace("_", " ").lower()
        message = f"the document is not well-formed XML ({detail})"
    return Finding(
        code, Severity.ERROR, message, line=line or None, column=column or None
    )


_SYNTAX_WORDING = {
    "ERR_RESOURCE_LIMIT": (
        "XML-LIMIT",
        "the document exceeds a parser limit (nesting deeper than 256 levels, "
        "a text or attribute over 10 MB, or a name too long)",
    ),
    "ERR_INVALID_ENCODING": (
        "XML-ENCODING",
        "the document contains bytes that are not valid UTF-8",
    ),
    "ERR_UNSUPPORTED_ENCODING": ("XML-ENCODING", "the encoding is not supported"),
    "ERR_DOCUMENT_EMPTY": (
        "XML-MALFORMED",
        "no XML document found (empty, or not XML at all)",
    ),
    "ERR_UNDECLARED_ENTITY": (
        "XML-ENTITY",
        "an entity reference is not allowed: entities are never expanded",
    ),
}
