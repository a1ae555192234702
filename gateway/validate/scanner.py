"""Reading a plain report's records straight from its text, on the schema's terms.

Nearly every report arrives in one plain form: each Record written out as
elements holding text, with no comment, reference, CDATA section, processing
instruction or attribute anywhere among the records. For that form one regular
expression, built from the schema, reads a record's values from the document's
text and checks them against the schema at once. That is cheaper than asking
lxml for every element of the parsed tree and then running the lenient schema
over it (see :mod:`.patterns`), and the validator tries it first.

The expression accepts a subset of what the schema accepts, never more:

- tags are written out literally, without attributes, prefixes or
  namespace declarations, in the order and number the schema's sequence
  allows; only XML white space stands between them;
- a value matches its type's pattern translated with ``verbatim`` (so it holds
  no ``<``, ``&`` or carriage return), behind look-aheads for ``minLength`` and
  ``maxLength`` and for the lexical form of its base type (unless the pattern
  keeps to that form: :func:`~.patterns.within_decimal`); ``xs:date`` values
  must also be days of the calendar (:meth:`RecordScanner.rows`);
- any other facet or base type raises :class:`PatternError` when the scanner is
  built, so an edit of the schema cannot slip past.

And what it reads is what the parser read. The caller hands over text that the
hardened parser accepted as a well-formed wage report whose Header (the
document root's first child) the schema has accepted, and asks for the records
from the Header's end tag on. The scan must then cover the rest of the text
record by record, up to the root's end tag and white space. Such text holds no
markup but the literal tags, so the records read are exactly the root's
children after the Header, with exactly the values libxml2 read: no reference
to expand, no line end to normalise. It also holds no second ``</Header>``,
which is why the first one in the text is the Header's own end.

On any doubt :meth:`RecordScanner.rows` yields None and the validator reads the
tree instead, whose findings are the published schema's. The values come in the
slots of :mod:`.fields`, a container's slot holding its first child's value.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
import re
from collections.abc import Iterator
from dataclasses import dataclass

from lxml import etree

from gateway.validate.fields import SLOT_NAMES
from gateway.validate.patterns import PatternError, translate, within_decimal
from gateway.validate.schemas import WAGE_REPORT_XSD, read_xsd

_XS = "{http://www.w3.org/2001/XMLSchema}"
_SPACE = "[ \\t\\r\\n]*"
# The lexical forms of the base types, checked by looking ahead to the value's
# end (the "<" of its end tag). Dates only in the form Python's calendar checks.
_LEXICAL = {
    "xs:string": "",
    "xs:decimal": "[+\\-]?(?:[0-9]+(?:\\.[0-9]*)?|\\.[0-9]+)",
    "xs:date": "[0-9]{4}-[0-9]{2}-[0-9]{2}",
}
_KNOWN_FACETS = frozenset({"pattern", "minLength", "maxLength"})
_ANY_VALUE = "[^<&\\r]*"


@dataclass(frozen=True)
class _Leaf:
    """An element of simple content in a record, as the scanner checks it."""

    name: str
    expression: str  # the value, as one capturing group or none
    base: str


class RecordScanner:
    """The expression for one record, and the check that follows its match."""

    def __init__(self, record: str, days: tuple[int, ...]) -> None:
        self.record = re.compile(record)
        self.end = re.compile(f"{_SPACE}</WageReport>{_SPACE}")
        if len(days) < 2:  # an itemgetter of one slot answers a value, not a tuple
            raise PatternError("a Record with fewer than two dates is not provided for")
        # The xs:date values of a record, all at once (see rows).
        self.days = operator.itemgetter(*days)

    def rows(
        self, text: str, start: int, *, last: bool = True
    ) -> Iterator[tuple[str, ...] | None]:
        """Each record's values from *start* on (just past ``</Header>``).

        Yields None, and stops, at the first place where the text is not in
        the plain form or a value fails a check; the caller then forgets
        every row yielded before. A scan that reaches the root's end tag and
        the end of the text has covered every record. With *last* False the
        text is a piece that ends with a record's end tag, and the scan must
        end there.
        """
        match, days, known = self.record.match, self.days, _KNOWN_DAYS
        position = start
        while found := match(text, position):
            values = found.groups("")
            if not known.issuperset(days(values)) and not _all_days(days(values)):
                yield None
                return
            yield values
            position = found.end()
        if not (self.end.fullmatch(text, position) if last else position == len(text)):
            yield None


# Day texts seen to be days of the calendar, and "" for an absent optional date
# (a present one is never empty). Payment and period days repeat from record to
# record, so the calendar is rarely asked; the set is emptied when it grows large.
_KNOWN_DAYS = {""}
_KNOWN_DAYS_LIMIT = 100_000


def _all_days(texts: tuple[str, ...]) -> bool:
    """Whether every YYYY-MM-DD text is a day of the calendar, remembering those."""
    if len(_KNOWN_DAYS) > _KNOWN_DAYS_LIMIT:
        _KNOWN_DAYS.clear()
        _KNOWN_DAYS.add("")
    for text in texts:
        if text in _KNOWN_DAYS:
            continue
        try:
            dt.date.fromisoformat(text)
        except ValueError:
            return False
        _KNOWN_DAYS.add(text)
    return True


@functools.cache
def record_scanner() -> RecordScanner:
    """The scanner for the wage-report schema's Record, built once."""
    return scanner_for(read_xsd(WAGE_REPORT_XSD).getroot())


def scanner_for(root: etree._Element) -> RecordScanner:
    """The scanner for the Record of the schema whose ``xs:schema`` is *root*."""
    simple = {s.get("name"): s for s in root.iter(f"{_XS}simpleType")}
    complex_ = {c.get("name"): c for c in root.iter(f"{_XS}complexType")}
    parts: list[str] = []
    days: list[int] = []
    names: list[str] = []
    for element in _sequence(complex_["Record"]):
        name, kind = _name(element), element.get("type", "")
        if kind in simple:
            leaf = _leaf(name, simple[kind], capture=True)
            if leaf.base == "xs:date":
                days.append(len(names))
            content = leaf.expression
        elif kind in complex_:
            content = _SPACE + "".join(
                _element(_leaf(_name(child), simple[child.get("type", "")], index == 0))
                for index, child in enumerate(_sequence(complex_[kind]))
            )
        else:
            raise PatternError(f"Record's element {name} has an unknown type")
        names.append(name)
        parts.append(_occurrence(element, f"<{name}>{content}</{name}>{_SPACE}"))
    if tuple(names) != SLOT_NAMES:
        raise PatternError("Record's sequence differs from the validator's slots")
    return RecordScanner(
        f"{_SPACE}<Record>{_SPACE}{''.join(parts)}</Record>", tuple(days)
    )


def _sequence(complex_type: etree._Element) -> list[etree._Element]:
    """The elements of a complex type made of one plain sequence, in order."""
    children = [c for c in complex_type if isinstance(c.tag, str)]
    if len(children) != 1 or children[0].tag != f"{_XS}sequence":
        raise PatternError(f"type {complex_type.get('name')} is not one sequence")
    elements = [c for c in children[0] if isinstance(c.tag, str)]
    if any(
        e.tag != f"{_XS}element" or e.get("maxOccurs", "1") != "1" for e in elements
    ):
        raise PatternError(f"type {complex_type.get('name')} has other particles")
    return elements


def _name(element: etree._Element) -> str:
    name = element.get("name")
    if name is None:
        raise PatternError("an element of Record is declared by reference")
    return name


def _occurrence(element: etree._Element, text: str) -> str:
    minimum = element.get("minOccurs", "1")
    if minimum not in ("0", "1"):
        raise PatternError(f"element {element.get('name')} has minOccurs {minimum}")
    return text if minimum == "1" else f"(?:{text})?"


def _element(leaf: _Leaf) -> str:
    if leaf.base == "xs:date":
        raise PatternError(f"element {leaf.name} needs checks a container lacks")
    return f"<{leaf.name}>{leaf.expression}</{leaf.name}>{_SPACE}"


def _leaf(name: str, simple: etree._Element, capture: bool) -> _Leaf:
    restriction = simple.find(f"{_XS}restriction")
    base = "" if restriction is None else restriction.get("base", "")
    if restriction is None or base not in _LEXICAL:
        raise PatternError(f"type {simple.get('name')} has a base the scanner lacks")
    facets: dict[str, str] = {}
    for facet in restriction:
        kind = etree.QName(facet).localname
        if kind not in _KNOWN_FACETS or kind in facets:
            raise PatternError(f"type {simple.get('name')} has a {kind} facet")
        facets[kind] = facet.get("value", "")
    pattern = facets.get("pattern")
    value = _ANY_VALUE if pattern is None else translate(pattern, verbatim=True)
    # Looking ahead to the end tag's "<": a value never holds one.
    lengths = ""
    if "minLength" in facets or "maxLength" in facets:
        shortest, longest = facets.get("minLength", "0"), facets.get("maxLength", "")
        lengths = f"(?=[^<]{{{int(shortest)},{longest and int(longest)}}}<)"
    group = "(" if capture else "(?:"
    lexical = _LEXICAL[base]
    # A pattern that keeps to the lexical form needs no look-ahead for it.
    within = lexical == value or (
        base == "xs:decimal" and pattern is not None and within_decimal(pattern)
    )
    form = f"(?={lexical}<)" if lexical and not within else ""
    return _Leaf(name, f"{form}{lengths}{group}{value})", base)
