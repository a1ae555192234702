"""Upload throughput of Loonbrug's SFTP server against OpenSSH's, same client.

Both servers are started on loopback in the same run and fed by the stock
OpenSSH ``sftp`` client in batch mode:

- one large file (100 MB, ``--quick``: 20 MB), MB/s;
- many small files (500 of 4 KB, ``--quick``: 100), files/s, in rounds that
  alternate between the two servers (``--rounds``, 5), each side's median
  round counting;
- what creating a file costs on the disk under test, before and after those
  rounds: information that says whether the run was a normal one (see
  ``creation_cost``).

The OpenSSH baseline is ``sshd`` with its ``sftp-server`` subsystem when an
``sshd`` is installed (Debian's openssh-server) and can be started here (it
needs /run/sshd when run as root); otherwise ``sftp -D
/usr/lib/openssh/sftp-server``, which talks to the server over a pipe with no
SSH transport at all (no encryption, no MAC): a much harder baseline, printed
as such. Targets: the large upload within 1.3 times
OpenSSH's time, the small files no slower than OpenSSH.

Run: ``.venv/bin/python bench/sftp.py [--quick] [--rounds N] [--cipher C]``;
by default the client negotiates with each server on its own (OpenSSH picks
chacha20-poly1305, which paramiko lacks, so Loonbrug gets aes128-ctr).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway import logs
from tests.support.sftp import RunningServer, make_key, start_server

SFTP_SERVER = "/usr/lib/openssh/sftp-server"
SSHD = "/usr/sbin/sshd"


def client_options(key: Path) -> list[str]:
    """Options for the stock client: only this key, no host key checks."""
    return [
        "-F",
        "/dev/null",
        "-i",
        str(key),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "IdentityAgent=none",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
    ]


def run_batch(command: list[str], batch: Path, lines: list[str]) -> float:
    """Run one sftp batch and return its wall time in seconds.

    The client's output goes to a file, not a pipe: the client echoes every
    command, and reading a pipe would wake this process, which also hosts
    Loonbrug's server, once per file.
    """
    batch.write_text("\n".join(lines) + "\n")
    output = batch.with_suffix(".out")
    with output.open("w") as sink:
        started = time.perf_counter()
        result = subprocess.run(
            [*command[:1], "-b", str(batch), *command[1:]],
            stdout=sink,
            stderr=subprocess.STDOUT,
            check=False,
        )
        elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"sftp failed: {output.read_text().strip()[-500:]}")
    return elapsed


@contextmanager
def openssh(work: Path, key: Path, extra: list[str]) -> Iterator[tuple[list[str], str]]:
    """The sftp command for an OpenSSH baseline, and a description of it."""
    obstacle = _sshd_obstacle()
    if obstacle is None:
        with _sshd(work, key, extra) as command:
            if command:
                yield command, "sshd + sftp-server (same SSH transport costs)"
                return
        obstacle = f"{SSHD} started but did not let the client in"
    yield (
        ["sftp", "-D", SFTP_SERVER],
        f"sftp -D sftp-server (pipe, NO SSH transport), because {obstacle}",
    )


def _sshd_obstacle() -> str | None:
    """Why the sshd baseline cannot run here, or None when it can."""
    # sftp-server has a package of its own: it can be there without sshd.
    if not os.access(SSHD, os.X_OK):
        return f"{SSHD} is missing (Debian: apt-get install openssh-server)"
    if os.geteuid() == 0 and not Path("/run/sshd").is_dir():
        return "sshd run as root needs the folder /run/sshd (mkdir /run/sshd)"
    return None


@contextmanager
def _sshd(work: Path, key: Path, extra: list[str]) -> Iterator[list[str] | None]:
    host_key = work / "sshd_host_key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", host_key], check=True
    )
    authorized = work / "authorized_keys"
    shutil.copy(key.with_suffix(".pub"), authorized)
    port = 20000 + os.getpid() % 20000
    config = work / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
        f"AuthorizedKeysFile {authorized}\nStrictModes no\nUsePAM no\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\nPidFile none\n"
        f"Subsystem sftp {SFTP_SERVER}\n"
    )
    process = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(config)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        user = (
            os.environ.get("USER")
            or subprocess.check_output(["id", "-un"], text=True).strip()
        )
        options = [*client_options(key), *extra]
        command = ["sftp", *options, "-P", str(port), f"{user}@127.0.0.1"]
        yield command if _reachable(command, work) else None
    finally:
        process.terminate()
        process.wait()


def _reachable(command: list[str], work: Path) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            run_batch(command, work / "probe", ["pwd"])
            return True
        except SystemExit:
            time.sleep(0.1)
    return False


def main() -> None:
    """Run the benchmark and print figures and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 MB and 100 files")
    parser.add_argument(
        "--cipher",
        help="make the client use this cipher with both servers "
        "(default: what the client negotiates with each)",
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help="small-file rounds per server (5)"
    )
    args = parser.parse_args()
    extra = ["-o", f"Ciphers={args.cipher}"] if args.cipher else []
    megabytes, count = (20, 100) if args.quick else (100, 500)
    logs.configure(json_lines=True, level=logging.WARNING)

    with tempfile.TemporaryDirectory(prefix="loonbrug-bench-") as raw:
        work = Path(raw)
        big = work / "big.bin"
        big.write_bytes(os.urandom(megabytes * 1024 * 1024))
        (work / "small").mkdir()
        small = [work / "small" / f"report-{n:04}.gpg" for n in range(count)]
        for path in small:
            path.write_bytes(os.urandom(4096))

        server = start_server(work / "ours", max_upload_bytes=2 * big.stat().st_size)
        key = work / "openssh_client"
        make_key(key)
        try:
            with openssh(work, key, extra) as (command, baseline):
                sides = [_ours(server, extra), _theirs(command, work)]
                figures = measure(sides, big, small, work, max(args.rounds, 1))
        finally:
            server.stop()

    _report(megabytes, count, figures, baseline)


@dataclass
class Side:
    """One server under test: the client command and where its uploads land."""

    command: list[str]
    remote: str
    local: Path


@dataclass
class Figures:
    """Seconds measured for each side: connecting, the large upload, each round."""

    connect: list[float] = field(default_factory=list)
    large: list[float] = field(default_factory=list)
    small: list[list[float]] = field(default_factory=lambda: [[], []])
    flushed: float = 0.0
    creation: list[float] = field(default_factory=list)


def measure(
    sides: list[Side], big: Path, small: list[Path], work: Path, rounds: int
) -> Figures:
    """Every measurement, the two servers taking turns.

    The machine's speed drifts, and the disk still writes back one phase's
    data during the next. So the servers alternate round by round, each going
    first in every other round, every upload starts once the disk has settled
    (``sync``), and the report takes the median round of each side.
    """
    figures = Figures()
    for side in sides:
        pwd = [run_batch(side.command, work / "batch-pwd", ["pwd"]) for _ in range(3)]
        figures.connect.append(min(pwd))
    for side in sides:
        os.sync()
        lines = [f"put {big} {side.remote}/big.gpg"]
        figures.large.append(run_batch(side.command, work / "batch-large", lines))
        check_arrived(side.local, {"big.gpg": big.stat().st_size})
        (side.local / "big.gpg").unlink()
    figures.creation.append(creation_cost(work / "creation", "before"))
    for number in range(rounds):
        # Each server goes first in every other round.
        order = [0, 1] if number % 2 == 0 else [1, 0]
        for index in order:
            seconds = _small_round(sides[index], small, work, number)
            figures.small[index].append(seconds)
    # OpenSSH asked for the durability Loonbrug always gives: information only.
    figures.flushed = _small_round(sides[1], small, work, rounds, "put -f")
    figures.creation.append(creation_cost(work / "creation", "after"))
    return figures


def creation_cost(folder: Path, tag: str, count: int = 200) -> float:
    """Microseconds to create one empty file in *folder* right now.

    Both servers create a file per upload: OpenSSH while its client waits,
    Loonbrug ahead, on a background thread. On ext4 without a journal, which
    will not reuse an inode freed in the last minutes, creation is many times
    slower soon after mass deletions (a test run, the previous benchmark's
    clean-up), and that moves the small-file ratio; this figure says which
    case a run was in. The files stay, so as to free no inode.
    """
    folder.mkdir(exist_ok=True)
    started = time.perf_counter()
    for number in range(count):
        os.close(os.open(folder / f"{tag}-{number}", os.O_CREAT | os.O_EXCL, 0o600))
    return (time.perf_counter() - started) / count * 1e6


def _small_round(
    side: Side, small: list[Path], work: Path, number: int, put: str = "put"
) -> float:
    """Seconds for one round of small files, checked on arrival.

    The files stay: removing them would make the next round's file creations
    slower on some file systems (ext4 without a journal passes over inodes
    freed in the last few seconds), which OpenSSH, creating each file while
    its client waits, would feel more than Loonbrug, which makes them ahead.
    """
    os.sync()
    names = [f"r{number}-{path.name}" for path in small]
    lines = [
        f"{put} {path} {side.remote}/{name}"
        for path, name in zip(small, names, strict=True)
    ]
    seconds = run_batch(side.command, work / "batch-small", lines)
    check_arrived(side.local, dict.fromkeys(names, 4096))
    return seconds


def _ours(server: RunningServer, extra: list[str]) -> Side:
    account = "uitzender-noord"
    command = [
        "sftp",
        *server.ssh_options(account),
        *extra,
        "-P",
        str(server.service.port),
        f"{account}@127.0.0.1",
    ]
    return Side(command, "/inbox", server.spool / "inbox" / account)


def _theirs(command: list[str], work: Path) -> Side:
    folder = work / "theirs"
    folder.mkdir()
    return Side(command, str(folder), folder)


def check_arrived(folder: Path, expected: dict[str, int]) -> None:
    """Every uploaded file is there with its full size (a benchmark that loses
    data would measure nothing)."""
    # Hidden names are the server's ready upload slots, not uploads.
    found = {
        p.name: p.stat().st_size for p in folder.iterdir() if not p.name.startswith(".")
    }
    if any(found.get(name) != size for name, size in expected.items()):
        raise SystemExit(f"uploads missing or short in {folder}")


def _report(megabytes: int, count: int, figures: Figures, baseline: str) -> None:
    ours, theirs = figures.small
    rounds = len(ours)
    print(f"baseline: {baseline}")
    print(
        f"times include connecting; 'net' subtracts each side's connect time; "
        f"small files: median of {rounds} alternating rounds"
    )
    print(f"{'':18}{'Loonbrug':>14}{'OpenSSH':>14}{'ratio':>7}{'net':>7}  target")
    connect = figures.connect
    print(f"{'connect + login':18}{connect[0]:>12.3f} s{connect[1]:>12.3f} s")
    large = (figures.large[0], figures.large[1])
    _line(f"{megabytes} MB upload", megabytes, "MB/s", large, connect, 1.3)
    middle = (statistics.median(ours), statistics.median(theirs))
    _line(f"{count} small files", count, "files/s", middle, connect, 1.0)
    each = ", ".join(f"{a / b:.2f}" for a, b in zip(ours, theirs, strict=True))
    print(f"small-file time ratio of each round: {each}")
    print(
        f"{count} small files, OpenSSH with 'put -f' (fsync per file, the durability "
        f"Loonbrug gives): {count / figures.flushed:.1f} files/s, "
        f"time ratio {middle[0] / figures.flushed:.2f} (information, no target)"
    )
    before, after = figures.creation
    print(
        f"creating a file on this disk: {before:.0f} us before the small-file rounds, "
        f"{after:.0f} us after (information: slow creation costs OpenSSH more)"
    )


def _line(
    label: str,
    amount: int,
    unit: str,
    seconds: tuple[float, float],
    connect: list[float],
    target: float,
) -> None:
    ours, theirs = seconds
    ratio = ours / theirs
    net = (ours - connect[0]) / max(theirs - connect[1], 1e-6)
    verdict = "met" if ratio <= target else "MISSED"
    print(
        f"{label:18}{amount / ours:>8.1f} {unit:<5}"
        f"{amount / theirs:>8.1f} {unit:<5}{ratio:>7.2f}{net:>7.2f}"
        f"  <= {target}x {verdict}"
    )


if __name__ == "__main__":
    main()
