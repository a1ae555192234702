"""Tests that every finding code the validator can emit is documented."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
CODE = re.compile(
    r'"((?:XML|SCHEMA|BSN|PAYROLL|SENDER|PERIOD|DATE|RECORD|BIRTH|'
    r'EMPLOYMENT|AMOUNT|HOURS|CORRECTION|MUNICIPALITY)-[A-Z0-9-]+)"'
)


def test_every_code_is_in_the_findings_document() -> None:
    """Each code string in gateway/validate appears in docs/findings.md."""
    source = "".join(
        p.read_text(encoding="utf-8")
        for p in (ROOT / "gateway" / "validate").glob("*.py")
    )
    document = (ROOT / "docs" / "findings.md").read_text(encoding="utf-8")

    codes = set(CODE.findall(source))
    assert len(codes) >= 25
    for code in sorted(codes):
        assert f"`{code}`" in document, code
