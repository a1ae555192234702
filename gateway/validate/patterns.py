"""The wage-report schema's patterns, checked by Python instead of libxml2.

libxml2 runs an XSD pattern through its own regular-expression automaton, and
for a fifty-record report those checks cost more than the rest of the schema
validation together. So the validator first validates against a *lenient*
schema, the published one with every ``xs:pattern`` facet removed (structure,
base types, lengths and enumerations still checked by libxml2), and then
checks each value against its pattern here. A document is accepted only when
both agree; on any doubt the caller validates against the published schema and
reports its findings, so findings never depend on this shortcut.

For that the Python patterns must accept no value the XSD pattern refuses. They
are translated from the XSD itself, never written twice, and where XSD and
Python regular expressions differ the translation is stricter:

- ``\\d`` (any Unicode decimal digit in XSD) becomes ``[0-9]``;
- ``\\p{Lu}`` becomes the upper-case letters of ASCII and Latin-1, a subset of
  the category in every Unicode version;
- ``\\p{Cc}`` becomes U+0000-U+001F and U+007F-U+009F, which is exactly the
  category (fixed by Unicode's stability policy);
- the value is matched as it stands in the document: where XSD would first
  collapse white space (dates, decimals), none is accepted here.

Any construct the translation does not know raises :class:`PatternError` when
the module is first used, so a new pattern in the schema cannot slip past.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator

from lxml import etree

from gateway.validate.schemas import WAGE_REPORT_XSD, read_xsd

_XS = "{http://www.w3.org/2001/XMLSchema}"
# The separator of a record's values when they are matched in one go. XML 1.0
# text can never contain U+0000, and no translated class admits it.
SEPARATOR = "\x00"
_ANY_TEXT = "[^\\x00]*"

_PIECE = re.compile(r"\\p\{[A-Za-z]+\}|\\.|\{[0-9]+(?:,[0-9]+)?\}|\[\^?|.", re.DOTALL)
_LITERAL = re.compile(r"[A-Za-z0-9 _,:;'\"/=#%@!`<>-]")
# Inside a class, a single character other than these means itself in both
# languages (Python reserves doubled &, ~ and | for set operations).
_CLASS_SPECIAL = frozenset("\\[^&~|")
_CLASS_ESCAPES = {
    "\\p{Cc}": "\\x00-\\x1f\\x7f-\\x9f",
    "\\d": "0-9",
    "\\p{Lu}": "A-Z\\u00c0-\\u00d6\\u00d8-\\u00de",
}
_ESCAPES = {
    "\\d": "[0-9]",
    "\\p{Lu}": "[A-Z\\u00c0-\\u00d6\\u00d8-\\u00de]",
    "\\.": "\\.",
    "\\-": "\\-",
}
_SYNTAX = frozenset(")|?*+")
# The characters of a document's text that the parser does not read as they are
# written: "<" and "&" start markup and references, and line ends with "\r" are
# read as "\n". First as they are, then as they go into a class.
_NOT_VERBATIM = "<&\r"
_NOT_VERBATIM_IN_CLASS = "<&\\r"


class PatternError(Exception):
    """An XSD pattern uses a construct the translation does not handle."""


def translate(pattern: str, *, verbatim: bool = False) -> str:
    """A Python regular expression accepting a subset of the XSD *pattern*.

    Matched with ``fullmatch`` (XSD patterns are anchored at both ends).
    *verbatim* also keeps out ``<``, ``&`` and carriage returns, so that the
    expression can read a value straight from a document's text (see
    :mod:`.scanner`): what it accepts there is the text the parser reads.
    """
    return "".join(_translated_pieces(pattern, verbatim))


def _translated_pieces(pattern: str, verbatim: bool = False) -> Iterator[str]:
    in_class: list[str] = []  # the class being translated, if any
    for piece in _PIECE.findall(pattern):
        if in_class:
            in_class.append(_class_piece(piece, pattern))
            if piece == "]":
                yield _closed_class(in_class, pattern, verbatim)
                in_class = []
        elif piece.startswith("["):
            negated = verbatim and piece == "[^"
            in_class = [piece + (_NOT_VERBATIM_IN_CLASS if negated else "")]
        elif piece in _ESCAPES:
            yield _ESCAPES[piece]
        elif piece == ".":
            # XSD's "." excludes both line ends
            yield "[^\\n\\r\\x00" + ("<&" if verbatim else "") + "]"
        elif verbatim and piece in _NOT_VERBATIM:
            raise PatternError(f"pattern {pattern!r} has a literal {piece!r}")
        elif piece == "(":
            yield "(?:"  # nothing is captured, and groups that capture cost more
        elif piece in _SYNTAX or piece.startswith("{") or _LITERAL.fullmatch(piece):
            yield piece
        else:
            raise PatternError(f"pattern construct {piece!r} is not translated")


def _closed_class(pieces: list[str], pattern: str, verbatim: bool) -> str:
    text = "".join(pieces)
    if verbatim and any(re.fullmatch(text, c) for c in _NOT_VERBATIM):
        raise PatternError(f"a class in {pattern!r} admits {_NOT_VERBATIM!r}")
    return text


def _class_piece(piece: str, pattern: str) -> str:
    if piece in _CLASS_ESCAPES:
        return _CLASS_ESCAPES[piece]
    if piece in ("\\.", "\\-", "]") or (
        len(piece) == 1 and piece not in _CLASS_SPECIAL
    ):
        return piece
    raise PatternError(f"class construct {piece!r} in {pattern!r} is not translated")


@functools.cache
def field_patterns() -> dict[str, str]:
    """The translated pattern of every simple-content element, by local name.

    An element whose type has no pattern (an enumeration) accepts any text here;
    the lenient schema checks it in full.
    """
    root = read_xsd(WAGE_REPORT_XSD).getroot()
    by_type = {
        simple.get("name"): _type_pattern(simple)
        for simple in root.iter(f"{_XS}simpleType")
    }
    fields: dict[str, str] = {}
    for element in root.iter(f"{_XS}element"):
        name, kind = element.get("name"), element.get("type")
        if name is None or kind not in by_type:
            continue
        if fields.setdefault(name, by_type[kind]) != by_type[kind]:
            raise PatternError(f"element {name} has two types with different patterns")
    return fields


def _type_pattern(simple: etree._Element) -> str:
    restriction = simple.find(f"{_XS}restriction")
    if restriction is None or not restriction.get("base", "").startswith("xs:"):
        raise PatternError(f"type {simple.get('name')} is not a restriction of xs:*")
    patterns = restriction.findall(f"{_XS}pattern")
    if len(patterns) > 1:
        raise PatternError(f"type {simple.get('name')} has more than one pattern")
    return translate(patterns[0].get("value", "")) if patterns else _ANY_TEXT


@functools.cache
def value_pattern(name: str) -> re.Pattern[str]:
    """The compiled pattern for the values of the element called *name*."""
    return re.compile(field_patterns()[name])


@functools.cache
def sequence_pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    """One pattern for the values of *names* in order, joined by :data:`SEPARATOR`.

    A name without a pattern of its own (a container such as ``Corrects``) must
    have an empty value.
    """
    patterns = field_patterns()
    return re.compile(
        SEPARATOR.join(f"(?:{patterns[n]})" if n in patterns else "" for n in names)
    )


# Whether a pattern's values are all xs:decimal literals, (\+|-)?([0-9]+(\.[0-9]*)?
# |\.[0-9]+) (XML Schema part 2, 3.2.3.1), is decided by running the pattern over
# that literal's automaton. A character matters to the automaton only as one of
# these kinds: a digit, ".", "+", "-", or anything else ("x"); the states are
# numbered as in _DECIMAL_MOVES, and a move it lacks leads nowhere (-1).
_KINDS = frozenset("d.+-x")
_DECIMAL_MOVES = {
    (0, "d"): 2,  # start
    (0, "+"): 1,
    (0, "-"): 1,
    (0, "."): 5,
    (1, "d"): 2,  # after the sign
    (1, "."): 5,
    (2, "d"): 2,  # integer digits
    (2, "."): 3,
    (3, "d"): 4,  # a point after digits
    (4, "d"): 4,  # fraction digits
    (5, "d"): 6,  # a point first
    (6, "d"): 6,  # its fraction digits
}
_DECIMAL_ENDS = frozenset({2, 3, 4, 6})
_States = frozenset[int]
_Step = Callable[[_States], _States]


def within_decimal(pattern: str) -> bool:
    """Whether every value the XSD *pattern* accepts is an ``xs:decimal`` literal.

    Exact for what it can read, and False for anything it cannot: a caller that
    gets False keeps checking the literal itself.
    """
    pieces = _PIECE.findall(pattern)
    try:
        step, end = _alternatives(pieces, 0)
    except (PatternError, ValueError):
        return False
    return end == len(pieces) and step(frozenset({0})) <= _DECIMAL_ENDS


def _alternatives(pieces: list[str], at: int) -> tuple[_Step, int]:
    branches = []
    while True:
        branch, at = _branch(pieces, at)
        branches.append(branch)
        if at == len(pieces) or pieces[at] != "|":
            break
        at += 1

    def step(states: _States) -> _States:
        return frozenset().union(*(branch(states) for branch in branches))

    return step, at


def _branch(pieces: list[str], at: int) -> tuple[_Step, int]:
    steps = []
    while at < len(pieces) and pieces[at] not in ("|", ")"):
        atom, at = _atom(pieces, at)
        (least, most), at = _quantity(pieces, at)
        steps.append(_repeated(atom, least, most))

    def step(states: _States) -> _States:
        for each in steps:
            states = each(states)
        return states

    return step, at


def _atom(pieces: list[str], at: int) -> tuple[_Step, int]:
    piece = pieces[at]
    if piece == "(":
        step, at = _alternatives(pieces, at + 1)
        if at == len(pieces) or pieces[at] != ")":
            raise PatternError("unbalanced group")
        return step, at + 1
    if piece in ("[", "[^"):
        close = pieces.index("]", at + 1)
        kinds = _KINDS if piece == "[^" else _class_kinds(pieces[at + 1 : close])
        return _moves(kinds), close + 1
    if piece in _SYNTAX or piece.startswith("{"):
        raise PatternError(f"{piece!r} where a character belongs")
    return _moves(_kinds(piece)), at + 1


def _quantity(pieces: list[str], at: int) -> tuple[tuple[int, int | None], int]:
    piece = pieces[at] if at < len(pieces) else ""
    counts: dict[str, tuple[int, int | None]] = {
        "?": (0, 1),
        "*": (0, None),
        "+": (1, None),
    }
    if piece in counts:
        return counts[piece], at + 1
    if piece.startswith("{") and len(piece) > 1:
        least, _, most = piece[1:-1].partition(",")
        return (int(least), int(most or least)), at + 1
    return (1, 1), at


def _repeated(step: _Step, least: int, most: int | None) -> _Step:
    def repeated(states: _States) -> _States:
        for _ in range(least):
            states = step(states)
        reached, count = states, least
        # Each further repetition may stop there; stop once nothing new comes.
        while most is None or count < most:
            states, count = step(states), count + 1
            if states <= reached:
                break
            reached |= states
        return reached

    return repeated


def _moves(kinds: frozenset[str]) -> _Step:
    def step(states: _States) -> _States:
        return frozenset(_DECIMAL_MOVES.get((s, k), -1) for s in states for k in kinds)

    return step


def _kinds(piece: str) -> frozenset[str]:
    """The kinds of character one piece outside a class matches."""
    if piece == "\\d":
        return frozenset("d")
    if len(piece) == 2 and piece[0] == "\\" and piece[1] in ".+-":
        return frozenset(piece[1])
    if piece.startswith("\\") or piece == ".":
        return _KINDS  # any other escape: assume every kind
    return frozenset(_kind(piece))


def _kind(char: str) -> str:
    return "d" if char in "0123456789" else char if char in ".+-" else "x"


def _class_kinds(members: list[str]) -> frozenset[str]:
    """The kinds of character a positive class with these pieces matches."""
    kinds: set[str] = set()
    at = 0
    while at < len(members):
        first = members[at]
        if at + 2 < len(members) and members[at + 1] == "-" and len(first) == 1:
            kinds |= _range_kinds(first, members[at + 2])
            at += 3
            continue
        kinds |= _kinds(first)
        at += 1
    return frozenset(kinds)


def _range_kinds(low: str, high: str) -> set[str]:
    if len(high) != 1:
        return set(_KINDS)
    inside = [c for c in "0123456789.+-" if low <= c <= high]
    kinds = {_kind(c) for c in inside}
    if ord(high) - ord(low) + 1 > len(inside):
        kinds.add("x")
    return kinds
