"""Benchmark of wage-report validation against xmllint as the baseline.

Prints, from one run on this machine:

- fifty-record reports validated per second in one process (schema and domain
  rules), and ``xmllint --stream --schema`` on the same files in one process;
- MB/s and peak RSS for one large report (100 MB, or 20 MB with ``--quick``),
  each measured in a child process with ``os.wait4`` so the figure is that
  process's own, again against ``xmllint --stream --schema``.

Targets: at least 1,000 fifty-record reports per second; the large report at no
less than half of xmllint's MB/s, with a peak RSS under 100 MB.

    .venv/bin/python bench/validate.py [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

from gateway.sample import write_report
from gateway.validate import ValidationContext, validate_file
from gateway.validate.schemas import WAGE_REPORT_XSD

TODAY = dt.date.today()
RECORD_BYTES = 730  # about one sample record


def _small_reports(folder: Path, count: int) -> list[Path]:
    paths = []
    for seed in range(count):
        path = folder / f"small-{seed}.xml"
        with path.open("wb") as out:
            write_report(out, records=50, seed=seed, today=TODAY)
        paths.append(path)
    return paths


def _reports_per_second(paths: list[Path], seconds: float) -> float:
    context = ValidationContext(today=TODAY)
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for path in paths:
            if not validate_file(path, context).valid:
                raise SystemExit(f"{path} unexpectedly invalid")
        done += len(paths)
    return done / (time.perf_counter() - start)


def _xmllint(paths: list[Path]) -> list[str]:
    return [
        "xmllint",
        "--stream",
        "--noout",
        "--schema",
        str(WAGE_REPORT_XSD),
        *map(str, paths),
    ]


def _child(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process.

    posix_spawn, unlike fork, does not copy this process's pages into the child,
    so the child's ``ru_maxrss`` is its own.
    """
    quiet = [
        (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
    ]
    start = time.perf_counter()
    pid = os.posix_spawnp(command[0], command, os.environ, file_actions=quiet)
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command[0]} failed on the benchmark file")
    return elapsed, usage.ru_maxrss / 1024


def _xmllint_reports_per_second(paths: list[Path], rounds: int) -> float:
    elapsed = sum(_child(_xmllint(paths))[0] for _ in range(rounds))
    return rounds * len(paths) / elapsed


def _large_report(folder: Path, megabytes: int) -> Path:
    path = folder / "large.xml"
    with path.open("wb") as out:
        write_report(
            out, records=megabytes * 1024 * 1024 // RECORD_BYTES, seed=7, today=TODAY
        )
    return path


def _validate_in_child(path: Path) -> list[str]:
    code = (
        "import sys, datetime as dt; from pathlib import Path;"
        "from gateway.validate import ValidationContext, validate_file;"
        "r = validate_file(Path(sys.argv[1]),"
        " ValidationContext(today=dt.date.fromisoformat(sys.argv[2])));"
        "sys.exit(0 if r.valid else 1)"
    )
    return [sys.executable, "-c", code, str(path), TODAY.isoformat()]


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller, faster run")
    args = parser.parse_args()
    small_count, seconds, megabytes = (50, 2.0, 20) if args.quick else (200, 5.0, 100)
    with tempfile.TemporaryDirectory(prefix="loonbrug-bench-") as tmp:
        folder = Path(tmp)
        paths = _small_reports(folder, small_count)
        ours = _reports_per_second(paths, seconds)
        theirs = _xmllint_reports_per_second(paths, 3)
        print(
            f"50-record reports/s  loonbrug {ours:8.0f}   xmllint {theirs:8.0f}"
            f"   ratio {ours / theirs:5.2f}   (target >= 1000)"
        )
        large = _large_report(folder, megabytes)
        size_mb = large.stat().st_size / 1e6
        our_time, our_rss = _child(_validate_in_child(large))
        lint_time, lint_rss = _child(_xmllint([large]))
        print(
            f"{size_mb:.0f} MB report MB/s     loonbrug {size_mb / our_time:8.1f}"
            f"   xmllint {size_mb / lint_time:8.1f}"
            f"   ratio {lint_time / our_time:5.2f}   (target >= 0.5)"
        )
        print(
            f"{size_mb:.0f} MB report peak RSS loonbrug {our_rss:6.1f} MB"
            f"   xmllint {lint_rss:6.1f} MB   (target < 100 MB)"
        )


if __name__ == "__main__":
    main()
