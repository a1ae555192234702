"""A partner's own settings for ``loonbrug send`` and ``loonbrug fetch``.

One small TOML file per partner, kept on the partner's side; paths in it are
relative to the file::

    host = "gateway.example.nl"
    port = 2222
    account = "uitzender-noord"
    ssh_key = "id_ed25519"                  # the partner's SSH private key
    host_key = "ssh-ed25519 AAAA..."        # the gateway's host key, pinned
    known_hosts = "known_hosts"             # optional: for the sftp command
    gnupg_home = "gnupg"                    # own secret key, gateway's public key
    fingerprint = "0123...CDEF"             # the partner's own OpenPGP key
    gateway_fingerprint = "4567...89AB"     # the gateway's OpenPGP key

``host_key`` is an OpenSSH public key (a ``known_hosts`` line works, host field
and all) or its fingerprint as ``ssh-keygen -l`` prints it (``SHA256:...``).
:func:`write_partner_config` is the only code that writes this file, so the
loader and the writer cannot drift apart.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from gateway.errors import ConfigError

_FINGERPRINT = re.compile(r"^[0-9A-F]{40}$")
_REQUIRED = (
    "host",
    "port",
    "account",
    "ssh_key",
    "host_key",
    "gnupg_home",
    "fingerprint",
    "gateway_fingerprint",
)
_OPTIONAL = ("known_hosts",)


@dataclass(frozen=True)
class PartnerConfig:
    """How one partner reaches the gateway, with every path made absolute."""

    path: Path
    host: str
    port: int
    account: str
    ssh_key: Path
    host_key: str
    gnupg_home: Path
    fingerprint: str
    gateway_fingerprint: str
    known_hosts: Path | None = None


def load_partner(path: Path) -> PartnerConfig:
    """Read and check the partner configuration at *path*."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such partner configuration") from exc
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read as TOML: {exc}") from exc
    problems = _problems(data)
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems))
    base = path.parent.resolve()
    known_hosts = data.get("known_hosts")
    return PartnerConfig(
        path=path.resolve(),
        host=data["host"],
        port=data["port"],
        account=data["account"],
        ssh_key=base / data["ssh_key"],
        host_key=data["host_key"],
        gnupg_home=base / data["gnupg_home"],
        fingerprint=_normal(data["fingerprint"]),
        gateway_fingerprint=_normal(data["gateway_fingerprint"]),
        known_hosts=base / known_hosts if known_hosts else None,
    )


def _problems(data: dict[str, Any]) -> list[str]:
    problems = [f"{key} is required" for key in _REQUIRED if key not in data]
    problems += [
        f"{key}: unknown key" for key in sorted(set(data) - {*_REQUIRED, *_OPTIONAL})
    ]
    for key in (*_REQUIRED, *_OPTIONAL):
        wanted, what = (int, "a whole number") if key == "port" else (str, "text")
        if key in data and not isinstance(data[key], wanted):
            problems.append(f"{key} must be {what}")
    for key in ("fingerprint", "gateway_fingerprint"):
        if isinstance(data.get(key), str) and not _FINGERPRINT.match(
            _normal(data[key])
        ):
            problems.append(f"{key} is not a full 40-digit fingerprint")
    return problems


def _normal(fingerprint: str) -> str:
    return fingerprint.replace(" ", "").upper()


def write_partner_config(
    path: Path,
    *,
    host: str,
    port: int,
    account: str,
    ssh_key: str,
    host_key: str,
    gnupg_home: str,
    fingerprint: str,
    gateway_fingerprint: str,
    known_hosts: str | None = None,
) -> PartnerConfig:
    """Write a partner configuration (paths relative to *path*) and load it back."""
    settings: dict[str, Any] = {
        "host": host,
        "port": port,
        "account": account,
        "ssh_key": ssh_key,
        "host_key": host_key,
        "gnupg_home": gnupg_home,
        "fingerprint": fingerprint,
        "gateway_fingerprint": gateway_fingerprint,
    }
    if known_hosts:
        settings["known_hosts"] = known_hosts
    header = (
        f"# How {account} reaches the Loonbrug gateway (loonbrug send / fetch).\n"
        "# Paths are relative to this file.\n\n"
    )
    path.write_text(header + tomli_w.dumps(settings), encoding="utf-8")
    return load_partner(path)
