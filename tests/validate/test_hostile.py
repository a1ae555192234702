"""Hostile XML: every case is refused with a finding, quickly, touching nothing.

Each case may point at a loopback port whose listening socket the test owns (no
connection may arrive), at a FIFO (opening it for reading would block forever,
so finishing at all proves it was never opened) and at a file whose content
must never appear in a finding.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from lxml import etree

from gateway.validate import ValidationContext, validate_file
from gateway.validate.hardening import has_doctype, new_parser
from tests.support.reports import TODAY, sample_bytes

SECRET = "LOCAL-FILE-CONTENT-7f3a9c"


@dataclass(frozen=True)
class Targets:
    """Things a hostile document may try to reach."""

    url: str  # http URL of a loopback socket nobody answers
    fifo: str  # file URL of a FIFO
    secret: str  # file URL of a file holding SECRET


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A listening loopback socket; the test checks that nobody connected."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server
    server.close()


@pytest.fixture
def targets(tmp_path: Path, listener: socket.socket) -> Targets:
    """URLs of the listener, a FIFO and a secret file."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    port = listener.getsockname()[1]
    return Targets(f"http://127.0.0.1:{port}/x", fifo.as_uri(), secret.as_uri())


def _report_with_prolog(prolog: str) -> bytes:
    data = sample_bytes(2)
    declaration, rest = data.split(b"\n", 1)
    return declaration + b"\n" + prolog.encode() + b"\n" + rest


def _laughs(t: Targets) -> bytes:
    entities = ['<!ENTITY lol "lol">'] + [
        f'<!ENTITY lol{n} "{("&lol" + (str(n - 1) if n > 1 else "") + ";") * 10}">'
        for n in range(1, 10)
    ]
    return _report_with_prolog(f"<!DOCTYPE WageReport [{''.join(entities)}]>")


def _quadratic(t: Targets) -> bytes:
    big = "A" * 100_000
    data = _report_with_prolog(f'<!DOCTYPE WageReport [<!ENTITY a "{big}">]>')
    return data.replace(b"<Surname>", b"<Surname>" + b"&a;" * 1000, 1)


def _entity_to(url: str) -> Callable[[Targets], bytes]:
    def build(t: Targets) -> bytes:
        target = getattr(t, url)
        data = _report_with_prolog(
            f'<!DOCTYPE WageReport [<!ENTITY x SYSTEM "{target}">]>'
        )
        return data.replace(b"<Surname>", b"<Surname>&x;", 1)

    return build


def _parameter_entities(t: Targets) -> bytes:
    return _report_with_prolog(
        f'<!DOCTYPE WageReport [<!ENTITY % p SYSTEM "{t.url}"> %p;'
        f'<!ENTITY % f SYSTEM "{t.secret}">]>'
    )


def _external_dtd(t: Targets) -> bytes:
    return _report_with_prolog(f'<!DOCTYPE WageReport SYSTEM "{t.url}">')


def _xinclude(t: Targets) -> bytes:
    include = (
        f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="{t.secret}" '
        'parse="text"/>'
        f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="{t.url}"/>'
    )
    return sample_bytes(2).replace(b"</Surname>", b"</Surname>" + include.encode(), 1)


def _foreign_root(t: Targets) -> bytes:
    return (
        '<?xml version="1.0"?>\n<Invoice xmlns="urn:example:other" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xsi:schemaLocation="urn:example:other {t.url}"><Total>1</Total></Invoice>'
    ).encode()


def _deep(t: Targets) -> bytes:
    return (
        b'<WageReport xmlns="urn:loonbrug:wage-report:v1">'
        + b"<a>" * 10_000
        + b"</a>" * 10_000
        + b"</WageReport>"
    )


def _huge_text(t: Targets) -> bytes:
    data = sample_bytes(2)
    return data.replace(b"<Surname>", b"<Surname>" + b"x" * 50_000_000, 1)


def _declared_latin1(t: Targets) -> bytes:
    return sample_bytes(2).replace(b'encoding="UTF-8"', b'encoding="ISO-8859-1"', 1)


def _latin1_bytes(t: Targets) -> bytes:
    return sample_bytes(2).replace(b"<Surname>", "<Surname>Müller".encode("latin-1"), 1)


def _utf16(t: Targets) -> bytes:
    text = sample_bytes(2).decode().replace('encoding="UTF-8"', 'encoding="UTF-16"')
    return text.encode("utf-16")


def _garbage(t: Targets) -> bytes:
    return bytes((n * 7919) % 256 for n in range(4096))


def _ebcdic(t: Targets) -> bytes:
    return sample_bytes(2).decode().encode("cp500")


def _ucs4(t: Targets) -> bytes:
    return sample_bytes(2).decode().replace('encoding="UTF-8"', "").encode("utf-32-be")


def _odd_encoding_name(t: Targets) -> bytes:
    return sample_bytes(2).replace(b'encoding="UTF-8"', b'encoding="UTF 8!"', 1)


def _long_prolog(t: Targets) -> bytes:
    comment = "<!--" + "x" * 70_000 + "-->"
    return _report_with_prolog(comment + f'<!DOCTYPE WageReport SYSTEM "{t.url}">')


def _undeclared_entity(t: Targets) -> bytes:
    return sample_bytes(2).replace(b"<Surname>", b"<Surname>&x;", 1)


CASES: list[tuple[str, Callable[[Targets], bytes], str]] = [
    # billion laughs: ten levels of ten-fold entity expansion
    ("billion-laughs", _laughs, "XML-DOCTYPE"),
    # quadratic blow-up: one 100 kB entity referenced a thousand times
    ("quadratic-blowup", _quadratic, "XML-DOCTYPE"),
    # external entity to a local file (the secret) and to a FIFO
    ("entity-local-file", _entity_to("secret"), "XML-DOCTYPE"),
    ("entity-fifo", _entity_to("fifo"), "XML-DOCTYPE"),
    # external entity to an http URL on the loopback listener
    ("entity-http", _entity_to("url"), "XML-DOCTYPE"),
    # parameter entities fetched and expanded inside the DTD
    ("parameter-entities", _parameter_entities, "XML-DOCTYPE"),
    # an external DTD on the loopback listener
    ("external-dtd", _external_dtd, "XML-DOCTYPE"),
    # XInclude of the secret file and of the listener: never processed
    ("xinclude", _xinclude, "SCHEMA-STRUCTURE"),
    # a foreign root whose schemaLocation points at the listener
    ("foreign-root-schema-location", _foreign_root, "XML-ROOT"),
    # 10,000 nested elements
    ("deep-nesting", _deep, "XML-LIMIT"),
    # a single 50 MB text node
    ("huge-text-node", _huge_text, "XML-LIMIT"),
    # an encoding declaration other than UTF-8
    ("declared-latin-1", _declared_latin1, "XML-ENCODING"),
    # declared UTF-8 but holding Latin-1 bytes
    ("latin-1-bytes", _latin1_bytes, "XML-ENCODING"),
    # a UTF-16 file with its byte order mark
    ("utf-16", _utf16, "XML-ENCODING"),
    # an empty file
    ("empty", lambda t: b"", "XML-EMPTY"),
    # binary garbage
    ("garbage", _garbage, "XML-MALFORMED"),
    # EBCDIC, which libxml2 would otherwise detect and decode by itself
    ("ebcdic", _ebcdic, "XML-MALFORMED"),
    # UCS-4 without a byte order mark
    ("ucs-4", _ucs4, "XML-ENCODING"),
    # an encoding name that is not a name at all
    ("odd-encoding-name", _odd_encoding_name, "XML-ENCODING"),
    # a DOCTYPE hidden behind a prolog longer than the scanner reads
    ("long-prolog", _long_prolog, "XML-LIMIT"),
    # an entity reference without any DOCTYPE
    ("undeclared-entity", _undeclared_entity, "XML-ENTITY"),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("streaming", [False, True], ids=["tree", "stream"])
@pytest.mark.parametrize(
    ("build", "code"), [(b, c) for _, b, c in CASES], ids=[n for n, _, _ in CASES]
)
def test_hostile_document_is_refused(
    tmp_path: Path,
    targets: Targets,
    listener: socket.socket,
    build: Callable[[Targets], bytes],
    code: str,
    streaming: bool,
) -> None:
    """The case yields its finding, no connection, and no trace of the secret."""
    path = tmp_path / "hostile.xml"
    path.write_bytes(build(targets))

    result = validate_file(path, ValidationContext(today=TODAY), streaming=streaming)

    assert not result.valid
    assert code in result.codes, result.codes
    assert SECRET not in json.dumps(result.to_dict())
    with pytest.raises(BlockingIOError):
        listener.accept()


def test_parsed_doctype_is_caught_too() -> None:
    """Behind the prolog check, a parsed DOCTYPE is still recognised."""
    root = etree.fromstring(b'<!DOCTYPE a SYSTEM "x.dtd"><a/>', new_parser())

    assert has_doctype(root)
    assert not has_doctype(etree.fromstring(b"<a/>", new_parser()))
