"""Benchmark of the pipeline against a plain shell script doing the same work.

Part one: REPORTS wage reports of RECORDS records over three municipalities,
signed and encrypted by an intermediary, go (a) through
``bench/pipeline_baseline.sh``, which decrypts, validates, splits, signs and
encrypts per municipality and signs a receipt one upload after the other the
way an administrator would script it, and (b) through ``loonbrug run``: they
are published in the inbox at once and the clock stops at the last receipt.
Both run over the same files in the same run; the ratio of throughputs is
printed. Target: the daemon at least twice the script's throughput.

Part two: one report of about BIG megabytes through a freshly started daemon:
time to its receipt, throughput, and the daemon's peak resident memory
(``VmHWM`` of the daemon process; gpg runs in child processes of its own).
Target: under 150 MB.

Usage: ``python bench/pipeline.py [--quick] [--reports N] [--big-mb N]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import tomli_w

from gateway.config import Config, load
from gateway.demo import create_sandbox
from gateway.pgp import gpg_home, stop_agent
from gateway.sample import SampleSender, generate_report, write_report

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT = "uitzender-noord"
MUNICIPALITIES = ("GM0599", "GM0344", "GM0014")


def _gpg(home: Path, *args: str, data: bytes | None = None) -> bytes:
    command = ["gpg", "--homedir", str(gpg_home(home)), "--batch", "--no-tty"]
    done = subprocess.run(
        [*command, "--trust-model", "always", *args],
        input=data,
        capture_output=True,
        check=True,
    )
    return done.stdout


def _seal_args(config: Config) -> list[str]:
    signer = config.intermediaries[ACCOUNT].signing_keys[0]
    recipient = config.gateway.key_fingerprint
    return ["--local-user", signer, "--sign", "--encrypt", "--recipient", recipient]


def _prepare(folder: Path, workers: int) -> Config:
    sandbox = create_sandbox(folder / "demo")
    data = tomllib.loads(sandbox.config_path.read_text(encoding="utf-8"))
    data.setdefault("sftp", {})["enabled"] = False
    data["gateway"].update({"workers": workers, "rescan_seconds": 5})
    sandbox.config_path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return load(sandbox.config_path)


def _make_uploads(config: Config, staging: Path, count: int, records: int) -> None:
    home = config.path.parent / "partners" / ACCOUNT / "gnupg"
    sender = SampleSender.from_intermediary(config.intermediaries[ACCOUNT])
    staging.mkdir()

    def make(n: int) -> None:
        report = generate_report(
            records=records,
            seed=n,
            sender=sender,
            municipalities=MUNICIPALITIES,
            message_id=str(uuid.uuid4()),
        )
        sealed = _gpg(home, *_seal_args(config), data=report)
        (staging / f"report-{n:04d}.xml.gpg").write_bytes(sealed)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(make, range(count)))


def _children_cpu() -> float:
    """CPU seconds used so far by finished child processes and theirs."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run_baseline(config: Config, staging: Path, out: Path) -> float:
    keys = [f"{m.code}={m.encryption_key}" for m in config.municipalities.values()]
    started = time.perf_counter()
    subprocess.run(
        [
            str(ROOT / "bench" / "pipeline_baseline.sh"),
            str(config.gateway.gnupg_home),
            config.gateway.key_fingerprint,
            str(ROOT / "schemas" / "wage-report-v1.xsd"),
            str(staging),
            str(out),
            *keys,
        ],
        check=True,
    )
    return time.perf_counter() - started


class _Daemon:
    """``loonbrug run`` as a child process."""

    def __init__(self, config: Config, log: Path) -> None:
        self.log = log
        with log.open("ab") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway", "run", "-c", str(config.path)],
                stdout=sink,
                stderr=sink,
            )
        _await(lambda: '"daemon.started"' in log.read_text(), 60, "daemon start")

    def peak_rss_mb(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(x for x in status.splitlines() if x.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024

    def own_cpu(self) -> float:
        """CPU seconds of the daemon process itself (its gpg runs excluded)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")")[-1]
        utime, stime = fields.split()[11:13]
        return (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(120)


def _await(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.02)


def _publish(config: Config, staging: Path) -> tuple[list[Path], list[Path]]:
    """Copy uploads into the inbox under hidden names; the final names."""
    inbox = config.gateway.spool / "inbox" / ACCOUNT
    hidden, final = [], []
    for source in sorted(staging.iterdir()):
        target = inbox / f".{source.name}.part"
        shutil.copyfile(source, target)
        hidden.append(target)
        final.append(inbox / source.name)
    return hidden, final


def _run_daemon(config: Config, staging: Path, log: Path) -> tuple[float, float, float]:
    """Seconds to the last receipt, peak RSS (MB), CPU seconds of the daemon."""
    daemon = _Daemon(config, log)
    hidden, final = _publish(config, staging)
    own = daemon.own_cpu()
    receipts = config.gateway.spool / "receipts" / ACCOUNT
    started = time.perf_counter()
    for source, target in zip(hidden, final, strict=True):
        os.rename(source, target)
    wanted = {f"{target.name}.receipt.asc" for target in final}
    _await(lambda: wanted <= set(os.listdir(receipts)), 3600, "receipts")
    elapsed = time.perf_counter() - started
    rss, own = daemon.peak_rss_mb(), daemon.own_cpu() - own
    daemon.stop()
    return elapsed, rss, own


def _outcomes(config: Config) -> dict[str, int]:
    with sqlite3.connect(config.ledger_path) as db:
        rows = db.execute("SELECT outcome, count(*) FROM uploads GROUP BY outcome")
        return {str(outcome): int(n) for outcome, n in rows}


def _big_report(config: Config, folder: Path, megabytes: int) -> tuple[Path, int]:
    sender = SampleSender.from_intermediary(config.intermediaries[ACCOUNT])
    per_record = len(generate_report(records=200, seed=1, sender=sender)) / 200
    records = int(megabytes * 1024 * 1024 / per_record)
    plain = folder / "big.xml"
    with plain.open("wb") as handle:
        write_report(
            handle,
            records=records,
            seed=7,
            sender=sender,
            municipalities=MUNICIPALITIES,
        )
    staging = folder / "big-staging"
    staging.mkdir()
    sealed = staging / "big.xml.gpg"
    home = config.path.parent / "partners" / ACCOUNT / "gnupg"
    _gpg(home, *_seal_args(config), "--output", str(sealed), str(plain))
    return staging, records


def main() -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 reports, 10 MB")
    parser.add_argument("--reports", type=int, default=500)
    parser.add_argument("--records", type=int, default=50)
    parser.add_argument("--big-mb", type=int, default=100)
    parser.add_argument(
        "--workers", type=int, default=4, help="the daemon's default: two per core"
    )
    args = parser.parse_args()
    if args.quick:
        args.reports, args.big_mb = 50, 10
    folder = Path(tempfile.mkdtemp(prefix="loonbrug-bench-"))
    try:
        return _bench(folder, args)
    finally:
        for home in (folder / "demo").glob("**/gnupg"):
            stop_agent(home)
        shutil.rmtree(folder, ignore_errors=True)


def _bench(folder: Path, args: argparse.Namespace) -> int:
    config = _prepare(folder, args.workers)
    staging = folder / "staging"
    _make_uploads(config, staging, args.reports, args.records)
    print(
        f"batch: {args.reports} reports x {args.records} records over "
        f"{len(MUNICIPALITIES)} municipalities, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f} (other work competes for the cores)"
    )
    cpu = _children_cpu()
    script = _run_baseline(config, staging, folder / "baseline")
    script_cpu, cpu = _children_cpu() - cpu, _children_cpu()
    print(
        f"  baseline script : {script:8.1f} s  {args.reports / script:7.1f} reports/s"
        f"  CPU {script_cpu / args.reports * 1000:.0f} ms/report"
    )
    daemon, rss, own = _run_daemon(config, staging, folder / "daemon.log")
    daemon_cpu = _children_cpu() - cpu
    print(
        f"  loonbrug daemon : {daemon:8.1f} s  {args.reports / daemon:7.1f} reports/s"
        f"  CPU {daemon_cpu / args.reports * 1000:.0f} ms/report"
        f" ({own / args.reports * 1000:.0f} in the daemon, the rest in gpg)"
        f"  {args.workers} workers, peak RSS {rss:.0f} MB"
    )
    print(f"  ratio           : {script / daemon:8.2f}x  (target >= 2)")
    print(f"  outcomes        : {_outcomes(config)}")
    big, records = _big_report(config, folder, args.big_mb)
    upload_mb = next(big.iterdir()).stat().st_size / 1024 / 1024
    elapsed, rss, _ = _run_daemon(config, big, folder / "daemon-big.log")
    print(
        f"big report: {args.big_mb} MB plaintext, {records} records, "
        f"{upload_mb:.1f} MB upload"
    )
    print(f"  time to receipt : {elapsed:8.1f} s  {args.big_mb / elapsed:.2f} MB/s")
    print(f"  daemon peak RSS : {rss:8.0f} MB  (target < 150 MB)")
    print(f"  outcomes        : {_outcomes(config)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
