"""Tests of ``audit verify``: every kind of tampering is caught and located."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.audit_tools import chain
from gateway.audit_tools.checkpoints import Checkpoint
from gateway.audit_tools.verify import Verdict, verify
from gateway.cli import main
from gateway.config import Config
from gateway.pgp import OpenPgp
from tests.support.audit import (
    START,
    Clock,
    Keys,
    audit_keys,
    open_log,
    pgp,
    write_config,
)

__all__ = ["audit_keys", "pgp"]

DAY1 = "audit-2026-03-02.jsonl"
DAY2 = "audit-2026-03-03.jsonl"


@pytest.fixture
def config(tmp_path: Path, audit_keys: Keys, pgp: OpenPgp) -> Config:
    """A trail over two days: 6 lines on the first, 7 on the second.

    Day 1: events at seq 1-4, checkpoint.written (5), event (6).
    Day 2: events at seq 7-12, checkpoint.written at close (13).
    """
    config = write_config(tmp_path / "gw", audit_keys)
    clock = Clock(START, step=timedelta(minutes=1))
    log = open_log(config, pgp, clock)
    for n in range(4):
        log.emit("upload.claimed", upload_id=f"u{n}", account="a", file="f", size=n)
    log.checkpoint()
    log.emit("message.archived", upload_id="u0", account="a", file="f")
    clock.now += timedelta(days=1)
    for n in range(6):
        log.emit("delivery.downloaded", account="m", file=f"x{n}", size=n)
    log.close()
    return config


def _check(config: Config, pgp: OpenPgp) -> Verdict:
    return verify(
        config.audit.dir,
        pgp,
        config.gateway.key_fingerprint,
        copy_dir=config.audit.checkpoint_copy_dir,
        settle_seconds=0,
    )


def _lines(config: Config, name: str) -> list[bytes]:
    return (config.audit.dir / name).read_bytes().splitlines(keepends=True)


def _store(config: Config, name: str, lines: list[bytes]) -> None:
    (config.audit.dir / name).write_bytes(b"".join(lines))


def _edit(config: Config, name: str, change: Callable[[list[bytes]], None]) -> None:
    lines = _lines(config, name)
    change(lines)
    _store(config, name, lines)


def _record(line: bytes) -> dict[str, object]:
    return dict(json.loads(line))


def _encode(record: dict[str, object]) -> bytes:
    return chain.canonical(record) + b"\n"


def _rechain(
    config: Config, name: str, start: int, change: Callable[[dict], None]
) -> None:
    """Change line *start* of *name* and recompute every hash after it, as an
    attacker who knows the format would (only the checkpoints stop this)."""
    names = [p.name for p in chain.trail_files(config.audit.dir)]
    previous: str | None = None
    for file in names[names.index(name) :]:
        lines = _lines(config, file)
        first = start if file == name else 0
        for index in range(first, len(lines)):
            record = _record(lines[index])
            if index == start and file == name:
                change(record)
            if previous is not None:
                record["prev"] = previous
            record["hash"] = chain.line_hash(record)
            previous = str(record["hash"])
            lines[index] = _encode(record)
        _store(config, file, lines)


def _forged_line(config: Config, name: str, after: int) -> bytes:
    """A well-formed line with a correct hash, claiming to follow line *after*."""
    before = _record(_lines(config, name)[after])
    record = dict(before, event="upload.claimed", fields={"upload_id": "forged"})
    record["seq"], record["prev"] = int(before["seq"]) + 1, before["hash"]
    record["hash"] = chain.line_hash(record)
    return _encode(record)


def _sign_as(pgp: OpenPgp, signer: str, point: Checkpoint) -> bytes:
    return pgp.sign(point.to_bytes(), signer=signer)


def _checkpoint_files(config: Config) -> list[Path]:
    folders = [config.audit.dir / "checkpoints", config.audit.checkpoint_copy_dir]
    return sorted(p for f in folders if f for p in f.glob("*.asc"))


@dataclass(frozen=True)
class Tampering:
    """One way to tamper with the trail and where verify must point."""

    name: str
    act: Callable[[Config, OpenPgp, Keys], None]
    file: str | None
    line: int | None
    words: str


CASES = [
    # One character of a middle line's value changed: its hash no longer fits.
    Tampering(
        "edited value",
        lambda c, p, k: _edit(
            c,
            DAY1,
            lambda ls: ls.__setitem__(2, ls[2].replace(b'"size":2', b'"size":3')),
        ),
        file=DAY1,
        line=3,
        words="hash does not match",
    ),
    # One character changed so the line is no longer JSON at all.
    Tampering(
        "broken json",
        lambda c, p, k: _edit(c, DAY1, lambda ls: ls.__setitem__(1, b"[" + ls[1][1:])),
        file=DAY1,
        line=2,
        words="not a valid audit record",
    ),
    # A middle line deleted: the next line's sequence number jumps.
    Tampering(
        "deleted line",
        lambda c, p, k: _edit(c, DAY2, lambda ls: ls.pop(2)),
        file=DAY2,
        line=3,
        words="1 line(s) missing",
    ),
    # A forged line inserted with a correct hash of its own.
    Tampering(
        "inserted line",
        lambda c, p, k: _edit(
            c, DAY1, lambda ls: ls.insert(2, _forged_line(c, DAY1, 1))
        ),
        file=DAY1,
        line=4,
        words="inserted or moved",
    ),
    # Two neighbouring lines swapped.
    Tampering(
        "reordered lines",
        lambda c, p, k: _edit(c, DAY2, lambda ls: ls.insert(1, ls.pop(2))),
        file=DAY2,
        line=2,
        words="missing",
    ),
    # An empty line slipped in between two records.
    Tampering(
        "blank line",
        lambda c, p, k: _edit(c, DAY1, lambda ls: ls.insert(3, b"\n")),
        file=DAY1,
        line=4,
        words="not a valid audit record",
    ),
    # The tail cut off at a line boundary: the last checkpoint lies beyond it.
    Tampering(
        "cut tail",
        lambda c, p, k: _edit(c, DAY2, lambda ls: ls.__delitem__(slice(4, None))),
        file=DAY2,
        line=4,
        words="cut off",
    ),
    # The tail cut in the middle of a line: a torn last line.
    Tampering(
        "torn tail",
        lambda c, p, k: _edit(c, DAY2, lambda ls: ls.__setitem__(-1, ls[-1][:40])),
        file=DAY2,
        line=7,
        words="torn last line",
    ),
    # The newest day's file removed altogether.
    Tampering(
        "deleted day",
        lambda c, p, k: (c.audit.dir / DAY2).unlink(),
        file=DAY1,
        line=6,
        words="cut off",
    ),
    # The oldest day's file removed: the trail starts in the middle.
    Tampering(
        "deleted first day",
        lambda c, p, k: (c.audit.dir / DAY1).unlink(),
        file=DAY2,
        line=1,
        words="6 line(s) missing",
    ),
    # A line moved to the end of the previous day's file, order kept.
    Tampering(
        "line moved to another day",
        lambda c, p, k: _move_first_line_back(c),
        file=DAY1,
        line=7,
        words="file's day",
    ),
    # A time set back, every later hash recomputed by the attacker.
    Tampering(
        "time set back and rechained",
        lambda c, p, k: _rechain(
            c, DAY1, 3, lambda r: r.__setitem__("time", "2026-03-02T08:00:00.000000Z")
        ),
        file=DAY1,
        line=4,
        words="time goes back",
    ),
    # A value changed and every later hash recomputed: the signed checkpoint
    # no longer matches.
    Tampering(
        "edited and rechained",
        lambda c, p, k: _rechain(c, DAY1, 1, lambda r: r.__setitem__("event", "x.y")),
        file=DAY1,
        line=5,
        words="signed checkpoint",
    ),
    # Tail cut and the local checkpoint files deleted: the off-site copy remains.
    Tampering(
        "cut tail and local checkpoints removed",
        lambda c, p, k: (
            _edit(c, DAY2, lambda ls: ls.__delitem__(slice(2, None))),
            shutil.rmtree(c.audit.dir / "checkpoints"),
        ),
        file=DAY2,
        line=2,
        words="cut off",
    ),
    # A checkpoint replaced by one signed with a key that is not the gateway's.
    Tampering(
        "checkpoint signed by a stranger",
        lambda c, p, k: _resign(c, p, k.stranger),
        file=None,
        line=None,
        words="not the gateway key",
    ),
    # A checkpoint file overwritten with garbage.
    Tampering(
        "checkpoint garbage",
        lambda c, p, k: _checkpoint_files(c)[0].write_bytes(b"not a signature"),
        file=None,
        line=None,
        words="signature does not verify",
    ),
    # Every copy of a checkpoint announced in the trail deleted.
    Tampering(
        "checkpoint deleted everywhere",
        lambda c, p, k: [
            f.unlink() for f in _checkpoint_files(c) if "000005" in f.name
        ],
        file=DAY1,
        line=5,
        words="checkpoint for seq 5 is missing",
    ),
]


def _move_first_line_back(config: Config) -> None:
    day2 = _lines(config, DAY2)
    _store(config, DAY1, [*_lines(config, DAY1), day2[0]])
    _store(config, DAY2, day2[1:])


def _resign(config: Config, pgp: OpenPgp, signer: str) -> None:
    for path in _checkpoint_files(config):
        content, _ = pgp.verify(path.read_bytes())
        path.write_bytes(_sign_as(pgp, signer, Checkpoint.from_bytes(content)))


def test_an_untouched_trail_verifies(config: Config, pgp: OpenPgp) -> None:
    """The fixture's trail is clean, with both checkpoints found."""
    verdict = _check(config, pgp)

    assert verdict.clean, verdict.problems
    assert (verdict.lines, verdict.last_seq) == (13, 13)
    assert (verdict.checkpoints, verdict.last_checkpoint) == (2, 13)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_tampering_is_caught_and_located(
    config: Config, pgp: OpenPgp, audit_keys: Keys, case: Tampering
) -> None:
    """Each tampering makes verify fail and name the first bad line."""
    case.act(config, pgp, audit_keys)

    verdict = _check(config, pgp)

    assert not verdict.clean
    problems = [str(p) for p in verdict.problems]
    hit = [p for p in verdict.problems if case.words in p.message]
    assert hit, problems
    if case.file is not None:
        assert (hit[0].file, hit[0].line) == (case.file, case.line), problems
        assert verdict.problems[0] == hit[0], problems


def test_the_command_exits_0_when_intact(
    config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    """``loonbrug audit verify`` says the trail is intact and exits 0."""
    status = main(["audit", "verify", "-c", str(config.path)])

    assert status == 0
    assert "audit trail intact" in capsys.readouterr().out


def test_the_command_names_the_line_and_exits_1(
    config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    """A deleted line makes the command exit 1 and print where."""
    _edit(config, DAY1, lambda ls: ls.pop(1))

    status = main(["audit", "verify", "-c", str(config.path)])

    out = capsys.readouterr().out
    assert status == 1
    assert f"TAMPERED: {DAY1} line 2: sequence jumps from 1 to 3" in out


def test_the_command_prints_json(
    config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --json the verdict is machine-readable."""
    status = main(["audit", "verify", "-c", str(config.path), "--json"])

    assert status == 0
    assert json.loads(capsys.readouterr().out)["clean"] is True


def test_a_missing_configuration_exits_2(tmp_path: Path) -> None:
    """A configuration that cannot be read is a usage error, not a verdict."""
    assert main(["audit", "verify", "-c", str(tmp_path / "none.toml")]) == 2


def test_an_empty_trail_is_clean(
    tmp_path: Path, audit_keys: Keys, pgp: OpenPgp
) -> None:
    """A gateway that never wrote a line has nothing to hide."""
    config = write_config(tmp_path / "gw", audit_keys)

    assert _check(config, pgp).clean
