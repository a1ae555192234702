"""Tests that validations running in parallel threads keep their findings apart."""

from __future__ import annotations

import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
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


# A fresh process whose eight threads all compile the schemas at the same moment,
# as the daemon's workers do at start-up; exit 1 if any compile failed.
_FIRST_COMPILES = """
import sys, threading
from gateway.validate import schemas
barrier = threading.Barrier(8)
failed = []
def compile_all():
    barrier.wait()
    try:
        schemas.wage_report_schema()
        schemas.lenient_wage_report_schema()
        schemas.fragment_schema()
        schemas.lenient_fragment_schema()
    except Exception as exc:
        failed.append(exc)
threads = [threading.Thread(target=compile_all) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
sys.exit(1 if failed else 0)
"""


def test_threads_compiling_at_once_in_a_fresh_process_all_succeed() -> None:
    """libxml2's first schema compiles race unless serialised; none may fail.

    Without the lock about one fresh process in ten failed, so twenty are run.
    """
    command = [sys.executable, "-c", _FIRST_COMPILES]

    with ThreadPoolExecutor(max_workers=2) as pool:
        codes = list(
            pool.map(
                lambda _: subprocess.run(command, check=False).returncode, range(20)
            )
        )

    assert codes == [0] * 20
