"""What the validator is told about a document, and what it answers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from gateway.config import Intermediary
from gateway.validate.findings import Finding, Severity


@dataclass(frozen=True)
class SenderContext:
    """The intermediary that uploaded the document, as the configuration knows it."""

    kvk: str
    payroll_tax_number: str
    authorised_municipalities: frozenset[str]

    @classmethod
    def from_intermediary(cls, intermediary: Intermediary) -> SenderContext:
        """The context for an intermediary of the configuration."""
        return cls(
            kvk=intermediary.kvk,
            payroll_tax_number=intermediary.payroll_tax_number,
            authorised_municipalities=intermediary.municipalities,
        )


@dataclass(frozen=True)
class ValidationContext:
    """What the gateway knows beyond the document itself.

    Rules that need a piece of context are skipped when it is None: without
    ``known_municipalities`` any well-formed municipality code is accepted, and
    without ``sender`` neither the header's sender nor the authorisations are
    checked. ``today`` pins the date for the plausibility rules (tests, replays).
    ``max_bytes`` caps the file's size; None leaves only the parser's own limits.
    """

    known_municipalities: frozenset[str] | None = None
    sender: SenderContext | None = None
    today: dt.date | None = None
    max_findings: int = 1000
    max_bytes: int | None = None


@dataclass
class ValidationResult:
    """The verdict on one document."""

    findings: list[Finding] = field(default_factory=list)
    message_id: str | None = None
    record_count: int = 0
    records_per_municipality: dict[str, int] = field(default_factory=dict)
    truncated: bool = False

    @property
    def valid(self) -> bool:
        """Whether no finding is an error (warnings do not reject)."""
        return all(f.severity is not Severity.ERROR for f in self.findings)

    @property
    def codes(self) -> list[str]:
        """The distinct finding codes, in order of first appearance."""
        return list(dict.fromkeys(f.code for f in self.findings))

    def to_dict(self) -> dict[str, object]:
        """The result as a JSON-ready mapping."""
        return {
            "valid": self.valid,
            "message_id": self.message_id,
            "record_count": self.record_count,
            "records_per_municipality": dict(self.records_per_municipality),
            "truncated": self.truncated,
            "findings": [f.to_dict() for f in self.findings],
        }
