"""Signed checkpoints of the audit trail.

A checkpoint states "line *seq* of the trail has hash *hash*" and is signed
with the gateway's own OpenPGP key. It is written as one armored, signed
file per checkpoint, ``checkpoints/checkpoint-<seq>.asc`` beside the trail,
and copied to ``audit.checkpoint_copy_dir`` when that is set (another disk, a
mail-drop folder): someone who can rewrite the trail and its checkpoints on one
disk still cannot reach the copies. Verification accepts only signatures made
by the configured gateway key.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from gateway.errors import AuditError, CryptoError
from gateway.spool import write_atomically

FOLDER = "checkpoints"


class Signer(Protocol):
    """The part of :class:`gateway.pgp.OpenPgp` that signs."""

    def sign(self, data: bytes, *, signer: str, armor: bool = True) -> bytes:
        """An inline-signed message holding *data*."""
        ...


class Verifier(Protocol):
    """The part of :class:`gateway.pgp.OpenPgp` that checks signatures."""

    def verify(self, data: bytes) -> tuple[bytes, str]:
        """The signed content and the signer's primary fingerprint."""
        ...


@dataclass(frozen=True)
class Checkpoint:
    """The trail's state at one line: its sequence number, hash and place."""

    seq: int
    hash: str
    time: str
    file: str
    line: int

    def to_bytes(self) -> bytes:
        """The checkpoint as canonical JSON, the content that gets signed."""
        text = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return text.encode("ascii")

    @classmethod
    def from_bytes(cls, data: bytes) -> Checkpoint:
        """Parse signed content back into a checkpoint."""
        try:
            values = json.loads(data)
            return cls(
                seq=int(values["seq"]),
                hash=str(values["hash"]),
                time=str(values["time"]),
                file=str(values["file"]),
                line=int(values["line"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise AuditError("checkpoint content is not a checkpoint") from exc

    @property
    def file_name(self) -> str:
        """The name of this checkpoint's signed file."""
        return f"checkpoint-{self.seq:012d}.asc"


def write(
    folder: Path,
    checkpoint: Checkpoint,
    signer: Signer,
    fingerprint: str,
    copy_dir: Path | None,
) -> Path:
    """Sign *checkpoint*, write it under *folder* and copy it to *copy_dir*."""
    signed = signer.sign(checkpoint.to_bytes(), signer=fingerprint, armor=True)
    target_dir = folder / FOLDER
    target_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = target_dir / checkpoint.file_name
    write_atomically(target, signed)
    if copy_dir is not None:
        try:
            copy_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            shutil.copyfile(target, copy_dir / f".{target.name}.part")
            (copy_dir / f".{target.name}.part").replace(copy_dir / target.name)
        except OSError as exc:
            raise AuditError(f"cannot copy checkpoint to {copy_dir}") from exc
    return target


@dataclass(frozen=True)
class CheckpointFile:
    """A checkpoint read back from disk, or why it could not be trusted."""

    path: Path
    checkpoint: Checkpoint | None
    problem: str | None


def read(path: Path, verifier: Verifier, fingerprint: str) -> CheckpointFile:
    """Read and check one signed checkpoint file."""
    try:
        content, signer = verifier.verify(path.read_bytes())
    except OSError:
        return CheckpointFile(path, None, "cannot be read")
    except CryptoError:
        return CheckpointFile(path, None, "signature does not verify")
    if signer.upper() != fingerprint.upper():
        return CheckpointFile(path, None, f"signed by {signer}, not the gateway key")
    try:
        checkpoint = Checkpoint.from_bytes(content)
    except AuditError:
        return CheckpointFile(path, None, "signed content is not a checkpoint")
    if path.name != checkpoint.file_name:
        return CheckpointFile(path, None, "file name does not match its content")
    return CheckpointFile(path, checkpoint, None)


def read_all(
    folders: list[Path], verifier: Verifier, fingerprint: str
) -> list[CheckpointFile]:
    """Every checkpoint file in *folders*, checked, ordered by name."""
    found: list[Path] = []
    for folder in folders:
        if folder.is_dir():
            found += sorted(folder.glob("checkpoint-*.asc"))
    return [read(path, verifier, fingerprint) for path in found]
