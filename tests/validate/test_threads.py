"""Tests that validations running in parallel threads keep their findings apart."""

from __future__ import annotations

import threading
from pathlib import Path

from gateway.validate import ValidationResult, validate_file
from tests.support.reports import FULL_CONTEXT, sample_bytes, write


def test_parallel_validations_do_not_mix_findings(tmp_path: Path) -> None:
    """Two threads, one valid and one invalid report: each sees only its own."""
    good = write(tmp_path, sample_bytes(200), "good.xml")
    bad = write(tmp_path, sample_bytes(200).replace(b"<Bsn>", b"<Bsn>1", 3), "bad.xml")
    results: dict[str, list[ValidationResult]] = {"good": [], "bad": []}

    def validate(name: str, path: Path) -> None:
        for _ in range(30):
            results[name].append(validate_file(path, FULL_CONTEXT))

    threads = [
        threading.Thread(target=validate, args=("good", good)),
        threading.Thread(target=validate, args=("bad", bad)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert all(r.valid and not r.findings for r in results["good"])
    assert all(
        r.codes == ["SCHEMA-VALUE"] and len(r.findings) == 3 for r in results["bad"]
    )
