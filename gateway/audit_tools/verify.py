"""Verification of the audit trail: chain, order, checkpoints.

Walks every daily file oldest first and checks, line by line, that each line
is a well-formed record whose hash matches its content, whose sequence number
follows the previous one, whose ``prev`` is the previous line's hash, whose time
does not go back and falls on the day its file is named after. Then it checks
the signed checkpoints: each must carry a valid signature by the gateway key,
match the hash of the line it names, and no checkpoint may lie beyond the end
of the trail (which would mean the tail was cut off).

The walk stops at the first broken line: everything after it no longer links,
so reporting it too would only bury the line that matters.

The limit of a hash chain: someone who can write the trail can recompute every
hash after a change. Only lines up to the last checkpoint whose signed copy is
out of their reach (``audit.checkpoint_copy_dir``) are beyond such a rewrite.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.audit_tools import chain, checkpoints
from gateway.audit_tools.checkpoints import Checkpoint, Verifier


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the trail, at a file and line where known."""

    message: str
    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        if self.file is None:
            return self.message
        place = self.file if self.line is None else f"{self.file} line {self.line}"
        return f"{place}: {self.message}"


@dataclass
class Verdict:
    """What :func:`verify` found."""

    files: int = 0
    lines: int = 0
    last_seq: int = 0
    checkpoints: int = 0
    last_checkpoint: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """The verdict as JSON-ready data."""
        return {
            "clean": self.clean,
            "files": self.files,
            "lines": self.lines,
            "last_seq": self.last_seq,
            "checkpoints": self.checkpoints,
            "last_checkpoint": self.last_checkpoint,
            "problems": [
                {"file": p.file, "line": p.line, "message": p.message}
                for p in self.problems
            ],
            "notes": self.notes,
        }


class _BrokenLineError(Exception):
    """Stops the walk at the first broken line."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


class _Walk:
    """The state carried from line to line while walking the chain."""

    def __init__(self, signed: dict[int, Checkpoint]) -> None:
        self.signed = signed
        self.seq = 0
        self.hash = chain.GENESIS
        self.time: Any = None
        self.place: tuple[str, int] | None = None
        self.damaged: chain.RawLine | None = None
        self.announced: dict[int, tuple[str, int]] = {}
        self.failed: set[int] = set()
        self.notes: list[str] = []
        self.lines = 0

    def line(self, raw: chain.RawLine, last_in_trail: bool) -> None:
        self.lines += 1
        if not raw.terminated:
            what = "torn last line" if last_in_trail else "line without its newline"
            raise _BrokenLineError(Problem(f"{what} (unfinished write)", *_where(raw)))
        record = raw.parse()
        if record is None:
            self._damage(raw)
            return
        if self.damaged is not None:
            self._recovery(self.damaged, record)
        self._check(raw, record)
        self._remember(raw, record)

    def _damage(self, raw: chain.RawLine) -> None:
        if self.damaged is not None:
            raise _BrokenLineError(_not_a_record(self.damaged))
        self.damaged = raw

    def _recovery(self, damaged: chain.RawLine, record: dict[str, Any]) -> None:
        fields = record["fields"]
        names_it = (
            record["event"] == "audit.recovered"
            and fields.get("file") == damaged.path.name
            and fields.get("offset") == damaged.offset
        )
        if not names_it:
            raise _BrokenLineError(_not_a_record(damaged))
        self.notes.append(
            f"{damaged.path.name} line {damaged.number}: torn line (byte offset "
            f"{damaged.offset}) left by a crash, recovered at seq {record['seq']}"
        )
        self.damaged = None

    def _check(self, raw: chain.RawLine, record: dict[str, Any]) -> None:
        where = _where(raw)
        seq = record["seq"]
        if chain.line_hash(record) != record["hash"]:
            raise _BrokenLineError(
                Problem("content changed: hash does not match", *where)
            )
        if seq > self.seq + 1:
            gap = seq - self.seq - 1
            message = f"sequence jumps from {self.seq} to {seq}: {gap} line(s) missing"
            raise _BrokenLineError(Problem(message, *where))
        if seq <= self.seq:
            message = f"sequence number {seq} after {self.seq}: line inserted or moved"
            raise _BrokenLineError(Problem(message, *where))
        if record["prev"] != self.hash:
            message = "does not link to the line before (prev hash differs)"
            raise _BrokenLineError(Problem(message, *where))
        self._check_time(raw, record)
        signed = self.signed.get(seq)
        if signed is not None and signed.hash != record["hash"]:
            message = f"differs from signed checkpoint {signed.file_name}"
            raise _BrokenLineError(Problem(message, *where))

    def _check_time(self, raw: chain.RawLine, record: dict[str, Any]) -> None:
        moment = chain.parse_time(record["time"])
        if self.time is not None and moment < self.time:
            raise _BrokenLineError(Problem("time goes back", *_where(raw)))
        if moment.date() != chain.file_day(raw.path):
            raise _BrokenLineError(
                Problem("time is not on the file's day", *_where(raw))
            )
        self.time = moment

    def _remember(self, raw: chain.RawLine, record: dict[str, Any]) -> None:
        self.seq, self.hash = record["seq"], record["hash"]
        self.place = _where(raw)
        if record["event"] == "checkpoint.written":
            self.announced[record["seq"]] = _where(raw)
        elif record["event"] == "checkpoint.failed":
            seq = record["fields"].get("seq")
            if isinstance(seq, int):
                self.failed.add(seq)


def _where(raw: chain.RawLine) -> tuple[str, int]:
    return raw.path.name, raw.number


def _not_a_record(raw: chain.RawLine) -> Problem:
    return Problem("not a valid audit record", *_where(raw))


def verify(
    folder: Path,
    verifier: Verifier,
    fingerprint: str,
    *,
    copy_dir: Path | None = None,
    settle_seconds: float = 1.0,
) -> Verdict:
    """Check the trail in *folder* and its checkpoints; see the module doc."""
    verdict = Verdict()
    signed = _signed(folder, copy_dir, verifier, fingerprint, verdict)
    files = chain.trail_files(folder)
    verdict.files = len(files)
    if files:
        _settle(files[-1], settle_seconds)
    walk = _Walk(signed)
    try:
        _walk_files(walk, files)
        _check_end(walk, signed, verdict)
    except _BrokenLineError as broken:
        verdict.problems.insert(0, broken.problem)
    verdict.lines, verdict.last_seq, verdict.notes = walk.lines, walk.seq, walk.notes
    return verdict


def _signed(
    folder: Path,
    copy_dir: Path | None,
    verifier: Verifier,
    fingerprint: str,
    verdict: Verdict,
) -> dict[int, Checkpoint]:
    """The trustworthy checkpoints by sequence number; problems into *verdict*."""
    folders = [folder / checkpoints.FOLDER]
    if copy_dir is not None:
        folders.append(copy_dir)
    signed: dict[int, Checkpoint] = {}
    for found in checkpoints.read_all(folders, verifier, fingerprint):
        if found.checkpoint is None:
            problem = found.problem or "unusable"
            verdict.problems.append(Problem(f"checkpoint {problem}", str(found.path)))
            continue
        known = signed.setdefault(found.checkpoint.seq, found.checkpoint)
        if known.hash != found.checkpoint.hash:
            message = "checkpoint disagrees with another copy of itself"
            verdict.problems.append(Problem(message, str(found.path)))
    verdict.checkpoints = len(signed)
    verdict.last_checkpoint = max(signed, default=0)
    return signed


def _settle(path: Path, seconds: float) -> None:
    """Give a line the daemon is writing right now a moment to finish."""
    deadline = time.monotonic() + seconds
    while not _ends_whole(path) and time.monotonic() < deadline:
        time.sleep(0.05)


def _ends_whole(path: Path) -> bool:
    with path.open("rb") as handle:
        size = handle.seek(0, 2)
        if size == 0:
            return True
        handle.seek(size - 1)
        return handle.read(1) == b"\n"


def _walk_files(walk: _Walk, files: list[Path]) -> None:
    for index, path in enumerate(files):
        lines = chain.raw_lines(path)
        current = next(lines, None)
        while current is not None:
            following = next(lines, None)
            last = following is None and index == len(files) - 1
            walk.line(current, last)
            current = following
    if walk.damaged is not None:
        raise _BrokenLineError(_not_a_record(walk.damaged))


def _check_end(walk: _Walk, signed: dict[int, Checkpoint], verdict: Verdict) -> None:
    """Checks that need the whole walk: a cut tail, a missing checkpoint."""
    last_signed = max(signed, default=0)
    if last_signed > walk.seq:
        file, line = walk.place or (None, None)
        message = (
            f"trail ends at seq {walk.seq} but checkpoint seq {last_signed} "
            "was signed: lines were cut off after this line"
        )
        raise _BrokenLineError(Problem(message, file, line))
    for seq, (file, line) in sorted(walk.announced.items()):
        if seq not in signed and seq not in walk.failed:
            message = f"checkpoint for seq {seq} is missing"
            verdict.problems.append(Problem(message, file, line))
