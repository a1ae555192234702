"""Tests for gateway.checkconfig and ``loonbrug check-config``."""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from gateway.checkconfig import Problem, Severity, check
from gateway.cli import main
from gateway.config import (
    AuditSettings,
    GatewaySettings,
    Retention,
    SftpSettings,
    load,
)
from gateway.demo import Sandbox, create_sandbox
from tests.support.pgp import GpgLab

Change = Callable[[dict[str, Any]], None]


@dataclass
class Keys:
    """Extra public keys, most with a defect, known to the sandbox's gateway."""

    expired: str
    revoked: str
    sign_only: str
    expiring: str
    plain: str
    subkey: str


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    """A sandbox whose configuration the tests vary."""
    return create_sandbox(tmp_path_factory.mktemp("check") / "sandbox")


@pytest.fixture(scope="module")
def keys(sandbox: Sandbox) -> Iterator[Keys]:
    """Defective keys, imported into the sandbox's gateway home."""
    lab = GpgLab(sandbox.folder / "lab")
    gateway = sandbox.folder / "gnupg"
    home = lab.home("defects")
    expired = lab.new_key(home, "Expired", expire="1d", faked_time="20240101T000000")
    revoked = lab.new_key(home, "Revoked")
    lab.gpg(home, "--quick-gen-key", "Sign Only", "ed25519", "sign", "1y")
    sign_only = _fingerprints(lab, home, "Sign Only")[0]
    expiring = lab.new_key(home, "Expiring", expire="10d")
    plain = lab.new_key(home, "Plain")
    for fingerprint in (expired, revoked, sign_only, expiring, plain):
        lab.copy_public(home, fingerprint, gateway)
    lab.gpg(gateway, "--import", data=lab.revocation(home, revoked))
    subkey = _fingerprints(lab, home, "Plain")[1]
    yield Keys(expired, revoked, sign_only, expiring, plain, subkey)
    lab.close()


def _fingerprints(lab: GpgLab, home: Path, uid: str) -> list[str]:
    listing = lab.gpg(home, "--with-colons", "--list-keys", uid).decode()
    return [line.split(":")[9] for line in listing.splitlines() if line[:4] == "fpr:"]


def _variant(sandbox: Sandbox, name: str, change: Change) -> Path:
    """A copy of the sandbox configuration with *change* applied."""
    data = tomllib.loads(sandbox.config_path.read_text("utf-8"))
    change(data)
    path = sandbox.folder / f"{name}.toml"
    path.write_text(tomli_w.dumps(data), "utf-8")
    return path


def _places(problems: list[Problem]) -> set[tuple[Severity, str]]:
    return {(p.severity, p.place) for p in problems}


def _set(section: str, index: int | None, key: str, value: object) -> Change:
    def change(data: dict[str, Any]) -> None:
        table = data[section] if index is None else data[section][index]
        table[key] = value

    return change


def _share_signing_key(data: dict[str, Any]) -> None:
    data["intermediary"][1]["signing_keys"] = data["intermediary"][0]["signing_keys"]


ERROR, WARNING = Severity.ERROR, Severity.WARNING
CASES: list[tuple[str, Callable[[Keys], Change], tuple[Severity, str]]] = [
    # a setting the loader does not know
    (
        "unknown key",
        lambda k: _set("gateway", None, "colour", "blue"),
        (ERROR, "gateway.colour"),
    ),
    # the gateway's own key is not in its home
    (
        "gateway key missing",
        lambda k: _set("gateway", None, "key_fingerprint", "A" * 40),
        (ERROR, "gateway.key_fingerprint"),
    ),
    # the gateway's key is a partner's public key: no secret to decrypt with
    (
        "gateway key without secret",
        lambda k: _set("gateway", None, "key_fingerprint", k.plain),
        (ERROR, "gateway.key_fingerprint"),
    ),
    # a pinned signing key the gateway does not have
    (
        "partner key missing",
        lambda k: _set("intermediary", 0, "signing_keys", ["B" * 40]),
        (ERROR, "intermediary[1].signing_keys[1]"),
    ),
    # a pinned signing key that has expired
    (
        "expired key",
        lambda k: _set("intermediary", 1, "signing_keys", [k.expired]),
        (ERROR, "intermediary[2].signing_keys[1]"),
    ),
    # a municipality key that was revoked
    (
        "revoked key",
        lambda k: _set("municipality", 2, "encryption_key", k.revoked),
        (ERROR, "municipality[3].encryption_key"),
    ),
    # a municipality key that can only sign, so nothing can be encrypted to it
    (
        "key cannot encrypt",
        lambda k: _set("municipality", 0, "encryption_key", k.sign_only),
        (ERROR, "municipality[1].encryption_key"),
    ),
    # a subkey fingerprint where the primary key's belongs
    (
        "subkey named",
        lambda k: _set("municipality", 1, "encryption_key", k.subkey),
        (ERROR, "municipality[2].encryption_key"),
    ),
    # one signing key pinned for two intermediaries: either could pose as the other
    (
        "signing key shared",
        lambda k: _share_signing_key,
        (ERROR, "intermediary[2].signing_keys[1]"),
    ),
    # an SSH key line that is not base64
    (
        "ssh key unparsable",
        lambda k: _set("intermediary", 0, "ssh_keys", ["ssh-ed25519 AAAA!!!! x"]),
        (ERROR, "intermediary[1].ssh_keys[1]"),
    ),
    # an SSH key file that does not exist
    (
        "ssh key file missing",
        lambda k: _set("municipality", 0, "ssh_keys", ["keys/absent.pub"]),
        (ERROR, "municipality[1].ssh_keys[1]"),
    ),
    # the GnuPG home does not exist
    (
        "gnupg home missing",
        lambda k: _set("gateway", None, "gnupg_home", "nowhere"),
        (ERROR, "gateway.gnupg_home"),
    ),
    # the pseudonym key file does not exist
    (
        "pseudonym key missing",
        lambda k: _set("audit", None, "pseudonym_key", "keys/absent.key"),
        (ERROR, "audit.pseudonym_key"),
    ),
    # a key that expires in ten days is only a warning
    (
        "key expiring soon",
        lambda k: _set("municipality", 2, "encryption_key", k.expiring),
        (WARNING, "municipality[3].encryption_key"),
    ),
]


@pytest.mark.parametrize(
    ("name", "make_change", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_check_reports_each_problem_at_its_place(
    sandbox: Sandbox,
    keys: Keys,
    name: str,
    make_change: Callable[[Keys], Change],
    expected: tuple[Severity, str],
) -> None:
    """Each broken setting is reported once, with its severity and place."""
    path = _variant(sandbox, name.replace(" ", "-"), make_change(keys))

    problems = check(path)

    assert _places(problems) == {expected}


def test_a_fresh_sandbox_has_no_problem(sandbox: Sandbox) -> None:
    """The unchanged sandbox configuration passes."""
    assert check(sandbox.config_path) == []


def test_every_problem_is_reported_together(sandbox: Sandbox, keys: Keys) -> None:
    """Several problems in one file are all reported in one run."""

    def change(data: dict[str, Any]) -> None:
        data["intermediary"][0]["signing_keys"] = [keys.expired]
        data["municipality"][0]["encryption_key"] = keys.revoked
        data["municipality"][1]["ssh_keys"] = ["ssh-ed25519 ???"]

    problems = check(_variant(sandbox, "several", change))

    assert _places(problems) == {
        (ERROR, "intermediary[1].signing_keys[1]"),
        (ERROR, "municipality[1].encryption_key"),
        (ERROR, "municipality[2].ssh_keys[1]"),
    }


def test_check_config_command_exit_status(
    sandbox: Sandbox, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 0 when clean or only warnings, 1 on errors, 2 for an unreadable file."""
    warning_only = _variant(
        sandbox, "warn", _set("municipality", 2, "encryption_key", keys.expiring)
    )
    broken = _variant(
        sandbox, "broken", _set("intermediary", 0, "signing_keys", [keys.expired])
    )

    statuses = [
        main(["check-config", "-c", str(path)])
        for path in (sandbox.config_path, warning_only, broken)
    ]
    missing = main(["check-config", "-c", str(sandbox.folder / "absent.toml")])

    out = capsys.readouterr().out
    assert statuses == [0, 0, 1]
    assert missing == 2
    assert "warning: municipality[3].encryption_key: key " in out
    assert "error: intermediary[1].signing_keys[1]: key " in out


def test_check_never_creates_the_gnupg_home(sandbox: Sandbox) -> None:
    """Checking a configuration with a missing home leaves it missing."""
    path = _variant(sandbox, "nohome", _set("gateway", None, "gnupg_home", "ghost"))

    check(path)

    assert not (load(path).gateway.gnupg_home).exists()


REPO = Path(__file__).resolve().parent.parent
SECTIONS = {
    "gateway": GatewaySettings,
    "retention": Retention,
    "sftp": SftpSettings,
    "audit": AuditSettings,
}


def test_example_configuration_loads_and_shows_every_setting() -> None:
    """config/example.toml loads and sets every setting the loader knows."""
    path = REPO / "config" / "example.toml"
    data = tomllib.loads(path.read_text("utf-8"))

    config = load(path)

    for section, settings in SECTIONS.items():
        assert set(data[section]) == {f.name for f in fields(settings)}, section
    assert len(config.intermediaries) == 1
    assert len(config.municipalities) == 2


def test_operations_guide_documents_every_setting() -> None:
    """docs/operations.md has a row for every setting of every section."""
    guide = (REPO / "docs" / "operations.md").read_text("utf-8")

    for settings in SECTIONS.values():
        for setting in fields(settings):
            assert f"| `{setting.name}` |" in guide, setting.name
