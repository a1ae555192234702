"""Findings: what the validator says about a document.

A finding has a stable code (documented in docs/findings.md), a severity, a
message, and where it applies: line and column in the file, a path of element
names (``/WageReport/Record[3]/Bsn``) and the record id. Messages are written by
us, never copied from a parser: a finding must not quote a BSN, a name, a birth
date or an amount, because findings travel in receipts and logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    """How bad a finding is: an error rejects the document, a warning does not."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    """One thing wrong with a document, and where."""

    code: str
    severity: Severity
    message: str
    line: int | None = None
    column: int | None = None
    path: str | None = None
    record_id: str | None = None

    def to_dict(self) -> dict[str, object]:
        """The finding as a JSON-ready mapping; absent places are left out."""
        data: dict[str, object] = {
            "code": self.code,
            "severity": str(self.severity),
            "message": self.message,
        }
        places = {
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "record_id": self.record_id,
        }
        data.update({k: v for k, v in places.items() if v is not None})
        return data

    def describe(self, file_name: str) -> str:
        """One line for people: ``file:line:column: severity code: message [id]``."""
        place = file_name
        if self.line is not None:
            place += f":{self.line}"
            if self.column is not None:
                place += f":{self.column}"
        text = f"{place}: {self.severity} {self.code}: {self.message}"
        if self.path is not None:
            text += f" at {self.path}"
        if self.record_id is not None:
            text += f" [record {self.record_id}]"
        return text


class FindingList:
    """Collects findings up to a cap and remembers whether more were dropped."""

    def __init__(self, limit: int) -> None:
        self.limit = max(limit, 1)
        self.items: list[Finding] = []
        self.truncated = False
        self.has_error = False

    def add(self, finding: Finding) -> None:
        """Keep *finding*, or note the truncation when the cap is reached.

        When the cap is reached by warnings alone, the first error still takes
        the last place, so a truncated list never hides that a document is invalid.
        """
        is_error = finding.severity is Severity.ERROR
        if len(self.items) < self.limit:
            self.items.append(finding)
        else:
            self.truncated = True
            if not (is_error and not self.has_error):
                return
            self.items[-1] = finding
        self.has_error = self.has_error or is_error

    def clear(self) -> None:
        """Forget every finding, as if none had been added."""
        self.items.clear()
        self.truncated = False
        self.has_error = False

    @property
    def full(self) -> bool:
        """Whether the cap has been reached."""
        return len(self.items) >= self.limit
