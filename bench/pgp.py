"""Benchmark of gateway.pgp against plain gpg processes, in the same run.

Measures, for a 36 KB report: OpenPgp.decrypt_verify and OpenPgp.sign_encrypt
(one gpg process each, through python-gnupg) against the same work done by
running ``gpg`` directly with subprocess, which is the floor for any adapter
that shells out to gpg. Prints milliseconds per operation and the ratio.

Run: .venv/bin/python bench/pgp.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from gateway.pgp import OpenPgp

REPORT_SIZE = 36 * 1024


def _timed(action: Callable[[], object], rounds: int) -> float:
    """Median milliseconds of *action* over *rounds* runs, after one warm-up."""
    action()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def _plain_gpg(home: Path, *args: str) -> None:
    base = ["gpg", "--homedir", str(home), "--batch", "--yes", "--trust-model"]
    subprocess.run(
        [*base, "always", *args],
        check=True,
        capture_output=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory(prefix="lb-bench-", dir="/tmp") as scratch:
        folder = Path(scratch)
        gateway = OpenPgp(folder / "gw")
        partner = OpenPgp(folder / "pa")
        try:
            _run(folder, gateway, partner, rounds)
        finally:
            gateway.close()
            partner.close()


def _run(folder: Path, gateway: OpenPgp, partner: OpenPgp, rounds: int) -> None:
    own = gateway.generate_key("Bench gateway")
    other = partner.generate_key("Bench partner")
    gateway.import_keys(partner.export_public(other))
    partner.import_keys(gateway.export_public(own))
    report = folder / "report.xml"
    report.write_bytes(os.urandom(REPORT_SIZE // 2).hex().encode())
    upload = folder / "upload.gpg"
    partner.sign_encrypt(report, upload, recipient=own, signer=other)
    out = folder / "out.xml"
    sent = folder / "sent.gpg"
    home = gateway.gpg_home

    figures = {
        "decrypt_verify": (
            _timed(
                lambda: gateway.decrypt_verify(upload, out, max_output=10**7), rounds
            ),
            _timed(
                lambda: _plain_gpg(home, "-o", str(out), "--decrypt", str(upload)),
                rounds,
            ),
        ),
        "sign_encrypt": (
            _timed(
                lambda: gateway.sign_encrypt(report, sent, recipient=other, signer=own),
                rounds,
            ),
            _timed(
                lambda: _plain_gpg(
                    home, "-u", own, "-r", other, "-o", str(sent), "-se", str(report)
                ),
                rounds,
            ),
        ),
    }
    print(f"36 KB report, median of {rounds} rounds (ms per operation)")
    print(f"{'operation':<16}{'OpenPgp':>10}{'plain gpg':>12}{'ratio':>8}")
    for name, (ours, plain) in figures.items():
        print(f"{name:<16}{ours:>10.1f}{plain:>12.1f}{ours / plain:>8.2f}")


if __name__ == "__main__":
    main()
