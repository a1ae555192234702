"""Benchmark of wage-report validation against xmllint as the baseline.

Prints, from one run on this machine:

- fifty-record reports validated per second in one process (schema and domain
  rules), and ``xmllint --stream --schema`` on the same files: one xmllint
  process is given all the files at once, so its start-up and its schema
  compilation happen once per round and are spread over the files (the figure
  printed as "start-up" shows what that costs per process; our own process is
  started once and compiles its schemas within the timed loop);
- MB/s and peak RSS for one large report (100 MB, or 20 MB with ``--quick``),
  each measured in a child process so the figures are that process's own,
  start-up included on both sides, again against ``xmllint --stream --schema``.

Every rate is given per second of clock time and per second of CPU time: the
CPU figure is what to compare when other work shares the machine.

Targets: at least 1,000 fifty-record reports per second; the large report at no
less than half of xmllint's MB/s, with a peak RSS under 100 MB.

    .venv/bin/python bench/validate.py [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Timing:
    """Work done, and the wall and CPU seconds it took."""

    work: float
    wall: float
    cpu: float

    def rates(self) -> tuple[float, float]:
        """Work per wall second and per CPU second."""
        return self.work / self.wall, self.work / self.cpu


def _reports_per_second(paths: list[Path], seconds: float) -> Timing:
    context = ValidationContext(today=TODAY)
    done = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        for path in paths:
            if not validate_file(path, context).valid:
                raise SystemExit(f"{path} unexpectedly invalid")
        done += len(paths)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return Timing(done, wall, cpu)


def _xmllint(paths: list[Path]) -> list[str]:
    return [
        "xmllint",
        "--stream",
        "--noout",
        "--schema",
        str(WAGE_REPORT_XSD),
        *map(str, paths),
    ]


def _high_water_mb(pid: int) -> float:
    """The process's peak resident set so far (VmHWM), 0 once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _child(command: list[str], work: float) -> tuple[Timing, float]:
    """Timing and peak RSS (MB) of one child process doing *work*.

    The peak is read from /proc while the child runs: ``ru_maxrss`` of a
    child would include the pages it shared with this process before exec.
    The CPU time is the growth of this process's children's total.
    """
    start, cpu_start = time.perf_counter(), _children_cpu()
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    peak = 0.0
    while True:
        peak = max(peak, _high_water_mb(process.pid))
        try:
            status = process.wait(timeout=0.02)
            break
        except subprocess.TimeoutExpired:
            continue
    if status != 0:
        raise SystemExit(f"{command[0]} failed on the benchmark file")
    wall, cpu = time.perf_counter() - start, _children_cpu() - cpu_start
    return Timing(work, wall, cpu), peak


def _xmllint_reports_per_second(paths: list[Path], rounds: int) -> Timing:
    runs = [_child(_xmllint(paths), len(paths))[0] for _ in range(rounds)]
    return Timing(
        sum(r.work for r in runs), sum(r.wall for r in runs), sum(r.cpu for r in runs)
    )


def _xmllint_start_up(path: Path, rounds: int) -> Timing:
    """Seconds of one xmllint process on one small file: mostly start-up."""
    runs = [_child(_xmllint([path]), 1)[0] for _ in range(rounds)]
    return Timing(
        rounds, min(r.wall for r in runs) * rounds, min(r.cpu for r in runs) * rounds
    )


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


def _compare(label: str, ours: Timing, theirs: Timing, target: str) -> None:
    (our_wall, our_cpu), (their_wall, their_cpu) = ours.rates(), theirs.rates()
    print(
        f"{label:24} loonbrug {our_wall:7.1f}/s wall {our_cpu:7.1f}/s cpu | "
        f"xmllint {their_wall:7.1f}/s wall {their_cpu:7.1f}/s cpu | "
        f"ratio {our_wall / their_wall:4.2f} wall {our_cpu / their_cpu:4.2f} cpu"
        f"   (target {target})"
    )


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
        _compare("50-record reports", ours, theirs, ">= 1000/s, loonbrug")
        start_up = _xmllint_start_up(paths[0], 5)
        print(
            f"{'':24} xmllint start-up, schema and one report per process: "
            f"{1000 * start_up.wall / start_up.work:.1f} ms wall "
            f"{1000 * start_up.cpu / start_up.work:.1f} ms cpu "
            f"(paid once per {len(paths)} reports above)"
        )
        large = _large_report(folder, megabytes)
        size_mb = large.stat().st_size / 1e6
        our_run, our_rss = _child(_validate_in_child(large), size_mb)
        lint_run, lint_rss = _child(_xmllint([large]), size_mb)
        _compare(
            f"{size_mb:.0f} MB report, MB",
            our_run,
            lint_run,
            "ratio >= 0.5, start-up in",
        )
        print(
            f"{size_mb:.0f} MB report peak RSS  loonbrug {our_rss:6.1f} MB | "
            f"xmllint {lint_rss:6.1f} MB   (target < 100 MB)"
        )


if __name__ == "__main__":
    main()
