"""Validating one wage-report file: hardened parse, schema, domain rules.

Two ways through the same checks, chosen by size:

- up to :data:`TREE_LIMIT` bytes the file is parsed whole and validated against
  the schema in one call (fastest for the many small weekly reports);
- larger files are streamed: the ``Header`` and the ``Record`` elements are
  taken out of the tree as soon as they end, validated against the fragment
  schema (records a few dozen at a time), checked by the domain rules and
  dropped, so memory stays flat whatever the size. The root's sequence (one
  Header, then Records, nothing else) is checked here.

Either way the schema check is made in two steps: first the lenient schema
(the published one without its patterns) with the patterns checked in Python,
which is several times cheaper (see :mod:`.patterns`); only when that step
refuses anything is the published schema run, and its findings reported. The
findings are therefore always the published schema's own.

Every finding is collected, up to the context's ``max_findings``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from lxml import etree

from gateway.errors import ValidationError
from gateway.validate.context import ValidationContext, ValidationResult
from gateway.validate.fields import (
    MUNICIPALITY,
    Row,
    record_values,
    trusted_rows,
    values_match,
)
from gateway.validate.findings import Finding, FindingList, Severity
from gateway.validate.hardening import (
    CHUNK_BYTES,
    ELEMENT_LIMIT,
    PROLOG_LIMIT,
    ElementStream,
    ElementTooLarge,
    WellFormedFeed,
    check_prolog,
    check_well_formed,
    doctype_finding,
    has_doctype,
    log_entries,
    new_parser,
    root_tag,
    source_line,
    syntax_findings,
)
from gateway.validate.rules import RuleBook
from gateway.validate.scanner import record_scanner
from gateway.validate.schemas import (
    BATCH_NAME,
    WAGE_REPORT_NS,
    Place,
    fragment_schema,
    lenient_fragment_schema,
    lenient_wage_report_schema,
    local_name,
    schema_findings,
    wage_report_schema,
)

TREE_LIMIT = 2 * 1024 * 1024
HEADER_PATH = "/WageReport/Header"
# Records validated per schema call while streaming: one call per record costs
# more in set-up than in validation.
BATCH_RECORDS = 64

_NS = "{" + WAGE_REPORT_NS + "}"
ROOT = _NS + "WageReport"
HEADER = _NS + "Header"
RECORD = _NS + "Record"
BATCH = _NS + BATCH_NAME
_RECORD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,63}")
_MUNICIPALITY = re.compile(r"GM[0-9]{4}")
_MUNICIPALITY_TAG = _NS + "MunicipalityCode"
_XSI = "{http://www.w3.org/2001/XMLSchema-instance}"
_HEADER_END = b"</Header>"
_RECORD_END = b"</Record>"
_ROOT_END = b"</WageReport>"
_TOO_LARGE_ELEMENT = Finding(
    "XML-LIMIT",
    Severity.ERROR,
    f"an element (or text between elements) is larger than {ELEMENT_LIMIT} bytes; "
    "a Header or Record is never that large",
)


def validate_file(
    path: Path,
    context: ValidationContext | None = None,
    *,
    streaming: bool | None = None,
    shortcut: bool = True,
) -> ValidationResult:
    """Validate the wage report at *path*; findings, never exceptions, for bad XML.

    *streaming* forces one of the two ways through (tests compare them); None
    chooses by size. *shortcut* False skips the lenient schema (see
    :mod:`.patterns`) and always validates against the published one; the
    findings are the same either way, which the tests check. Raises
    ValidationError only when the file cannot be read.
    """
    context = context or ValidationContext()
    size = _size(path)
    findings = FindingList(context.max_findings)
    result = ValidationResult(findings=findings.items)
    whole = not (size > TREE_LIMIT if streaming is None else streaming)
    problem = _size_finding(size, context)
    if problem is None:
        data = _read(path, None if whole else PROLOG_LIMIT)
        problem = check_prolog(data[:PROLOG_LIMIT], complete=size <= PROLOG_LIMIT)
    if problem is not None:
        findings.add(problem)
        return _finish(result, findings)
    run = _Run(context, findings, result, shortcut=shortcut)
    if whole:
        run.whole(data)
    else:
        run.stream(path, data)
    return _finish(result, findings)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as exc:
        raise ValidationError(f"{path.name}: cannot be read ({exc.strerror})") from exc


def _read(path: Path, limit: int | None = None) -> bytes:
    try:
        with path.open("rb") as file:
            return file.read() if limit is None else file.read(limit)
    except OSError as exc:
        raise ValidationError(f"{path.name}: cannot be read ({exc.strerror})") from exc


def _finish(result: ValidationResult, findings: FindingList) -> ValidationResult:
    result.truncated = findings.truncated
    return result


def _size_finding(size: int, context: ValidationContext) -> Finding | None:
    if size == 0:
        return Finding("XML-EMPTY", Severity.ERROR, "the file is empty")
    if context.max_bytes is not None and size > context.max_bytes:
        return Finding(
            "XML-TOO-LARGE",
            Severity.ERROR,
            f"the file is larger than the limit of {context.max_bytes} bytes",
        )
    return None


def _record_id(record: etree._Element) -> str | None:
    text = record.findtext(_NS + "RecordId")
    return text if text is not None and _RECORD_ID.fullmatch(text) else None


def _new_batch() -> etree._Element:
    # None is lxml's key for the default namespace; the stubs do not know it.
    return etree.Element(BATCH, nsmap={None: WAGE_REPORT_NS})  # type: ignore[dict-item]


def _record_path(number: int) -> str:
    return f"/WageReport/Record[{number}]"


def _named_path(element: etree._Element, top: etree._Element, top_path: str) -> str:
    names: list[str] = []
    node: etree._Element | None = element
    while node is not None and node is not top:
        names.append(local_name(node) or "*")
        node = node.getparent()
    return top_path + "".join(f"/{n}" for n in reversed(names))


class _Run:
    """One validation: the findings so far and the rules' memory."""

    def __init__(
        self,
        context: ValidationContext,
        findings: FindingList,
        result: ValidationResult,
        *,
        shortcut: bool = True,
    ) -> None:
        self.context = context
        self.shortcut = shortcut
        self.findings = findings
        self.result = result
        self.rules = RuleBook(context)
        self.header_seen = False
        self.header_ok = False
        self.fragment_schema = fragment_schema()
        self.lenient_fragment_schema = lenient_fragment_schema()
        self.batch = _new_batch()
        self.batch_first = 1

    def add_all(self, findings: list[Finding]) -> None:
        for finding in findings:
            self.findings.add(finding)

    # Whole-document path ---------------------------------------------------

    def whole(self, data: bytes) -> None:
        """Parse *data* in memory, validate it in one call, then apply the rules."""
        if self.shortcut and self._scanned(data):
            return
        parser = new_parser()
        try:
            root = etree.fromstring(data, parser)
        except etree.XMLSyntaxError as exc:
            self.add_all(syntax_findings(log_entries(parser.error_log), _position(exc)))
            return
        if not self._root_ok(root):
            return
        if not (self.shortcut and self._trusted_walk(root)):
            self._checked_walk(root)

    def _scanned(self, data: bytes) -> bool:
        """Validate a report in the plain form without its tree (see :mod:`.scanner`).

        False, with every trace of the pass undone, when the report is not in
        that form or a value is refused: the tree is then read instead.
        """
        start = self._plain_start(data)
        if start is None:
            return False
        header, text = start
        self._accept_header(header)
        tree = _LazyTree(data)
        number = 0
        for number, values in enumerate(record_scanner().rows(text, 0), 1):
            if values is None:
                break
            self._scanned_record(tree, number, values)
        else:
            if number:  # the schema asks for at least one Record
                return True
        self._restart()
        return False

    def _plain_start(self, data: bytes) -> tuple[etree._Element, str] | None:
        """The valid Header of a well-formed report, and the text after it.

        The document is checked by the hardened parser without building a
        tree; None when it is not well-formed or its start is not plain (see
        :meth:`_plain_header`).
        """
        end = data.find(_HEADER_END)
        if end < 0 or not check_well_formed(data):
            return None
        end += len(_HEADER_END)
        header = self._plain_header(data[:end])
        if header is None:
            return None
        try:
            return header, data[end:].decode("utf-8")
        except UnicodeDecodeError:
            return None

    def _plain_header(self, start: bytes) -> etree._Element | None:
        """The valid Header that *start*, a report up to the Header's end, holds.

        *start* is parsed as a document of its own, whose root must be the
        report's and hold the Header alone. None when anything is not so.
        """
        try:
            head = etree.fromstring(start + _ROOT_END, new_parser())
        except etree.XMLSyntaxError:
            return None
        return head[0] if self._plain_head(head) else None

    def _plain_head(self, head: etree._Element) -> bool:
        """Whether the report's start holds its root, a valid Header, and no more."""
        # The root's sequence is one Header and at least one Record.
        if head.tag != ROOT or has_doctype(head) or head.attrib or head.text:
            return False
        if len(head) != 1 or head[0].tag != HEADER:
            return False
        header = head[0]
        return bool(self.lenient_fragment_schema.validate(header)) and values_match(
            header
        )

    def _scanned_record(
        self, tree: _LazyTree, number: int, values: tuple[str, ...]
    ) -> None:
        """Count a record read from the text, and apply the rules to it."""
        self._count(values[MUNICIPALITY])
        problems = self.rules.record_problems(values)
        if problems:
            # The Header is the root's first child, so record n is child n.
            found = self.rules.placed(tree.root()[number], values, number, problems)
            self.add_all(found)

    def _trusted_walk(self, root: etree._Element) -> bool:
        """Apply the rules on the word of the lenient schema and the patterns.

        The records are checked and their rules applied in one pass. False when
        the lenient schema or a pattern refuses anything, with every trace of the
        pass undone: only the published schema may then speak.
        """
        if not lenient_wage_report_schema().validate(root) or not values_match(root[0]):
            return False
        self._accept_header(root[0])
        for number, (record, values) in enumerate(trusted_rows(root, 1), 1):
            if values is None:
                self._restart()
                return False
            self._trusted_record(record, number, values)
        return True

    def _accept_header(self, header: etree._Element) -> None:
        """Apply the header rules to a Header the schema vouched for."""
        self.add_all(self.rules.check_header(header, HEADER_PATH))
        self.header_ok = True
        self.result.message_id = self.rules.header.message_id

    def _restart(self) -> None:
        """Forget the findings, counts and rules' memory of the run so far."""
        self.findings.clear()
        self.result.message_id = None
        self.result.record_count = 0
        self.result.records_per_municipality.clear()
        self.rules = RuleBook(self.context)
        self.header_ok = False

    def _checked_walk(self, root: etree._Element) -> None:
        """Validate against the published schema, report, then apply the rules."""
        schema = wage_report_schema()
        locator = _TreeLocator(root)
        if not schema.validate(root):
            entries = log_entries(schema.error_log)
            self.add_all(schema_findings(entries, locator))
        self._walk(root, locator)

    def _walk(self, root: etree._Element, locator: _TreeLocator) -> None:
        number = 0
        for child in root.iterchildren(HEADER, RECORD):
            passed = locator.passed(child)
            if child.tag == HEADER:
                if passed and number == 0 and not self.header_ok:
                    self.add_all(self.rules.check_header(child, HEADER_PATH))
                    self.header_ok = True
                continue
            number += 1
            self._record(child, number, record_values(child) if passed else None)
        self.result.message_id = (
            self.rules.header.message_id if self.header_ok else None
        )

    def _record(
        self, record: etree._Element, number: int, values: list[str] | None
    ) -> None:
        """Count the record, and apply the rules when the schema vouched for it.

        *values* are the record's values (see :mod:`.fields`), None when the
        record failed the schema.
        """
        if values is not None:
            self._trusted_record(record, number, values)
            return
        self.result.record_count += 1
        code = record.findtext(_MUNICIPALITY_TAG)
        if code is not None and _MUNICIPALITY.fullmatch(code):
            counts = self.result.records_per_municipality
            counts[code] = counts.get(code, 0) + 1

    def _count(self, code: str) -> None:
        """Count a record for the municipality with *code*."""
        result = self.result
        result.record_count += 1
        counts = result.records_per_municipality
        counts[code] = counts.get(code, 0) + 1

    def _trusted_record(
        self, record: etree._Element, number: int, values: list[str]
    ) -> None:
        """Count a record the schema vouched for, and apply the rules to it."""
        self._count(values[MUNICIPALITY])
        findings = self.rules.check_record(record, values, number)
        if findings:
            self.add_all(findings)

    def _root_ok(self, root: etree._Element) -> bool:
        if has_doctype(root):
            self.findings.add(doctype_finding(None, None))
            return False
        if root.tag == ROOT:
            return True
        self._not_a_report(source_line(root))
        return False

    def _not_a_report(self, line: int | None) -> None:
        self.findings.add(
            Finding(
                "XML-ROOT",
                Severity.ERROR,
                "the document is not a wage report: its root must be WageReport in "
                f"namespace {WAGE_REPORT_NS}",
                line=line,
            )
        )

    # Streaming path --------------------------------------------------------

    def stream(self, path: Path, head: bytes) -> None:
        """Validate a large file element by element, keeping memory flat."""
        if self.shortcut and self._scanned_stream(path):
            return
        tag = root_tag(head)
        if tag is not None and tag != ROOT:
            self._not_a_report(None)
            return
        stream = ElementStream(path, (HEADER, RECORD))
        try:
            self._consume(iter(stream))
        except etree.XMLSyntaxError as exc:
            entries = log_entries(stream.error_log)
            self.add_all(syntax_findings(entries, _position(exc)))
        except ElementTooLarge:
            self.findings.add(_TOO_LARGE_ELEMENT)
        except OSError as exc:
            raise ValidationError(
                f"{path.name}: cannot be read ({exc.strerror})"
            ) from exc

    def _scanned_stream(self, path: Path) -> bool:
        """Validate a large plain report piece by piece, without any tree.

        As :meth:`_scanned`, on pieces of the file that end after a record's
        end tag, so that memory stays flat. Only a report without a finding
        on its records is validated so: to place a finding the file is read
        again on the tree's path. False, with every trace of the pass undone,
        when anything is not so.
        """
        feed = WellFormedFeed()
        try:
            with path.open("rb") as file:
                done = self._scan_pieces(file, feed)
        except OSError:
            done = False  # the tree's path reports what it cannot read
        if done and feed.close():
            return True
        self._restart()
        return False

    def _scan_pieces(self, file: BinaryIO, feed: WellFormedFeed) -> bool:
        rest = self._scan_head(file, feed)
        if rest is None:
            return False
        number = 0
        while True:
            piece = file.read(CHUNK_BYTES)
            if piece and not feed.feed(piece):
                return False
            rest += piece
            cut = len(rest) if not piece else rest.rfind(_RECORD_END) + len(_RECORD_END)
            if piece and cut < len(_RECORD_END):
                if len(rest) > ELEMENT_LIMIT:
                    return False
                continue  # no record ends in what was read so far
            try:
                text = rest[:cut].decode("utf-8")
            except UnicodeDecodeError:
                return False
            rest = rest[cut:]
            for values in record_scanner().rows(text, 0, last=not piece):
                number += 1
                if values is None or not self._clean_record(values):
                    return False
            if not piece:
                return number > 0  # the schema asks for at least one Record

    def _scan_head(self, file: BinaryIO, feed: WellFormedFeed) -> bytes | None:
        """Check the report's start up to its Header's end; what was read after it."""
        buffer = b""
        while (end := buffer.find(_HEADER_END)) < 0:
            piece = file.read(CHUNK_BYTES)
            if not piece or len(buffer) > ELEMENT_LIMIT or not feed.feed(piece):
                return None
            buffer += piece
        end += len(_HEADER_END)
        header = self._plain_header(buffer[:end])
        if header is None:
            return None
        self._accept_header(header)
        return buffer[end:]

    def _clean_record(self, values: tuple[str, ...]) -> bool:
        """Count a record read from the text; False if the rules find anything."""
        self._count(values[MUNICIPALITY])
        return not self.rules.record_problems(values)

    def _consume(self, elements: Iterator[etree._Element]) -> None:
        root: etree._Element | None = None
        number = 0
        for element in elements:
            if element.getparent() is not root or root is None:
                parent = element.getparent()
                if parent is None or parent.getparent() is not None:
                    continue  # nested: its container's schema check reports it
                root = parent
                if not self._root_ok(root):
                    return
            if element.getprevious() is not None:
                self._drop_strays(root, element)
            if element.tail is not None:
                self._check_tail(element)
            if element.tag == RECORD:
                number += 1
                self._stream_record(element, number)
            else:
                self._flush()
                self._stream_header(element)
                del root[0]
        self._flush()
        self._stream_end(root, number)

    def _stream_header(self, header: etree._Element) -> None:
        path = HEADER_PATH
        if self.header_seen or self.result.record_count:
            self._structure(header, path, "Header must come once, before any Record")
            return
        self.header_seen = True
        if self._fragment_valid(header, path):
            self.header_ok = True
            self.add_all(self.rules.check_header(header, path))
            self.result.message_id = self.rules.header.message_id

    def _stream_record(self, record: etree._Element, number: int) -> None:
        """Move a finished record into the batch (out of the tree being parsed)."""
        if not self.header_seen:
            path = _record_path(number)
            self._structure(record, path, "a Record comes before the Header")
            self.header_seen = True
        if not len(self.batch):
            self.batch_first = number
        self.batch.append(record)
        if len(self.batch) >= BATCH_RECORDS:
            self._flush()

    def _flush(self) -> None:
        """Validate the batched records in one call, then apply the rules."""
        batch = self.batch
        if not len(batch):
            return
        self.batch = _new_batch()
        rows = self._trusted_batch(batch) if self.shortcut else None
        if rows is not None:
            for number, (record, values) in enumerate(rows, self.batch_first):
                self._record(record, number, values)
            return
        locator = _TreeLocator(batch, self.batch_first)
        if not self.fragment_schema.validate(batch):
            entries = log_entries(self.fragment_schema.error_log)
            self.add_all(schema_findings(entries, locator))
        for offset, record in enumerate(batch):
            passed = locator.passed(record)
            self._record(
                record,
                self.batch_first + offset,
                record_values(record) if passed else None,
            )

    def _trusted_batch(self, batch: etree._Element) -> list[Row] | None:
        """The batch's records and values, if the lenient schema and patterns pass.

        Read in full before any rule runs, so that a refusal leaves no trace.
        """
        if not self.lenient_fragment_schema.validate(batch):
            return None
        rows = []
        for row in trusted_rows(batch):
            if row[1] is None:
                return None
            rows.append(row)
        return rows

    def _fragment_valid(self, header: etree._Element, path: str) -> bool:
        lenient = self.lenient_fragment_schema
        if self.shortcut and lenient.validate(header) and values_match(header):
            return True
        schema = self.fragment_schema
        if schema.validate(header):
            return True

        def locate(node_path: str | None) -> Place:
            node = _relative(header, node_path)
            named = None if node is None else _named_path(node, header, path)
            return Place(node, named, None)

        self.add_all(schema_findings(log_entries(schema.error_log), locate))
        return False

    def _drop_strays(self, root: etree._Element, element: etree._Element) -> None:
        while len(root) and root[0] is not element:
            stray = root[0]
            if isinstance(stray.tag, str):
                self._structure(
                    stray, "/WageReport/*", "an element is not expected here"
                )
            del root[0]

    def _check_tail(self, element: etree._Element) -> None:
        if element.tail is not None and element.tail.strip():
            self._structure(
                element, "/WageReport", "text is not allowed between elements"
            )

    def _stream_end(self, root: etree._Element | None, records: int) -> None:
        if root is None:
            self.findings.add(
                Finding(
                    "XML-ROOT",
                    Severity.ERROR,
                    "the document holds no Header or Record of a wage report",
                )
            )
            return
        for stray in root:
            if isinstance(stray.tag, str):
                self._structure(
                    stray, "/WageReport/*", "an element is not expected here"
                )
        if any(not str(k).startswith(_XSI) for k in root.attrib):
            self._structure(
                root, "/WageReport", "WageReport has an attribute that is not allowed"
            )
        if not self.header_seen:
            self._structure(root, "/WageReport", "the report has no Header")
        if records == 0:
            self._structure(root, "/WageReport", "the report has no Record")

    def _structure(self, element: etree._Element, path: str, message: str) -> None:
        self.findings.add(
            Finding(
                "SCHEMA-STRUCTURE",
                Severity.ERROR,
                message,
                line=source_line(element),
                path=path,
                record_id=_record_id(element) if element.tag == RECORD else None,
            )
        )


class _LazyTree:
    """A document's tree, parsed when first asked for (to place a finding)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.parsed: etree._Element | None = None

    def root(self) -> etree._Element:
        if self.parsed is None:
            self.parsed = etree.fromstring(self.data, new_parser())
        return self.parsed


class _TreeLocator:
    """Places schema errors below *root* and remembers which children failed.

    *root* is the document's root, or a batch of records whose first is record
    number *first_record* of the report.

    An error it cannot place makes every Header and Record count as failed, so
    the rules never run on a record the schema did not vouch for.
    """

    def __init__(self, root: etree._Element, first_record: int = 1) -> None:
        self.root = root
        self.first_record = first_record
        self.failed: set[etree._Element] = set()
        self.unplaced = False

    def passed(self, container: etree._Element) -> bool:
        """Whether no schema error lies inside *container*."""
        return not self.unplaced and container not in self.failed

    def __call__(self, node_path: str | None) -> Place:
        node = _relative(self.root, node_path)
        if node is None:
            self.unplaced = True
            return Place(None, None, None)
        container = node
        while (parent := container.getparent()) is not None and parent is not self.root:
            container = parent
        if container is self.root:
            return Place(node, "/WageReport", None)
        self.failed.add(container)
        if container.tag == HEADER:
            return Place(node, _named_path(node, container, HEADER_PATH), None)
        if container.tag != RECORD:
            return Place(node, "/WageReport/*", None)
        before = sum(1 for _ in container.itersiblings(RECORD, preceding=True))
        top = _record_path(self.first_record + before)
        return Place(node, _named_path(node, container, top), _record_id(container))


_PREFIXED_STEP = re.compile(r"/[A-Za-z_][\w.-]*:([A-Za-z_][\w.-]*)(\[\d+\])?")


def _relative(top: etree._Element, node_path: str | None) -> etree._Element | None:
    """The node at libxml2's positional *node_path*, taking ``/*`` to be *top*."""
    if not node_path or not node_path.startswith("/*"):
        return None
    # libxml2 names prefixed elements ("/xi:include[1]"); find them by local name.
    steps = _PREFIXED_STEP.sub(
        lambda m: f"/*[local-name()='{m.group(1)}']{m.group(2) or ''}", node_path[2:]
    )
    try:
        found = top.xpath("." + steps) if steps else [top]
    except etree.XPathError:
        return None
    if isinstance(found, list) and found and isinstance(found[0], etree._Element):
        return found[0]
    return None


def _position(exc: etree.XMLSyntaxError) -> tuple[int, int]:
    line, column = exc.position
    return line or 1, column or 1
