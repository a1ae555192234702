"""Tests of ``loonbrug validate`` and ``loonbrug sample`` run as processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.sample import DEFAULT_SENDER

SECRET = "CLI-SECRET-CONTENT-31c7"

CONFIG = """
[gateway]
key_fingerprint = "{fpr}"

[[intermediary]]
id = "flexwerk-zuid"
name = "Flexwerk Zuid B.V."
kvk = "{kvk}"
loonheffingennummer = "{tax}"
signing_keys = ["{fpr}"]
municipalities = ["GM0599", "GM0344"]

[[municipality]]
id = "rotterdam"
code = "GM0599"
name = "Rotterdam"
encryption_key = "{fpr}"

[[municipality]]
id = "utrecht"
code = "GM0344"
name = "Utrecht"
encryption_key = "{fpr}"

[[municipality]]
id = "groningen"
code = "GM0014"
name = "Groningen"
encryption_key = "{fpr}"
"""


def loonbrug(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m gateway`` with *args* and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A configuration with one intermediary authorised for two of three codes."""
    path = tmp_path / "loonbrug.toml"
    path.write_text(
        CONFIG.format(fpr="A" * 40, kvk="87654321", tax="876543219L01"),
        encoding="utf-8",
    )
    return path


def test_sample_then_validate_exits_zero(tmp_path: Path) -> None:
    """A 50-record sample validates: exit status 0."""
    sample = loonbrug("sample", "--records", "50", "--seed", "1", cwd=tmp_path)
    (tmp_path / "r.xml").write_text(sample.stdout, encoding="utf-8")

    result = loonbrug("validate", "r.xml", cwd=tmp_path)

    assert sample.returncode == 0
    assert result.returncode == 0, result.stdout + result.stderr
    assert "r.xml: valid, 50 record(s)" in result.stdout


def test_changed_bsn_digit_exits_one_naming_the_eleven_test(tmp_path: Path) -> None:
    """One changed BSN digit: exit status 1 and the eleven-test's code."""
    report = loonbrug("sample", "--records", "50", "--seed", "1", cwd=tmp_path).stdout
    start = report.index("<Bsn>") + len("<Bsn>")
    digit = str((int(report[start + 4]) + 1) % 10)
    broken = report[: start + 4] + digit + report[start + 5 :]
    (tmp_path / "r.xml").write_text(broken, encoding="utf-8")

    result = loonbrug("validate", "r.xml", cwd=tmp_path)

    assert result.returncode == 1
    assert "BSN-ELEVEN-TEST" in result.stdout
    assert report[start : start + 9] not in result.stdout
    assert broken[start : start + 9] not in result.stdout


def test_doctype_with_external_entity_exits_one_silently(tmp_path: Path) -> None:
    """A DOCTYPE with an external entity: exit 1, nothing of the target printed."""
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET, encoding="utf-8")
    report = loonbrug("sample", "--records", "50", "--seed", "1", cwd=tmp_path).stdout
    declaration, rest = report.split("\n", 1)
    doctype = f'<!DOCTYPE WageReport [<!ENTITY x SYSTEM "{secret.as_uri()}">]>'
    hostile = f"{declaration}\n{doctype}\n" + rest.replace(
        "<Surname>", "<Surname>&x;", 1
    )
    (tmp_path / "r.xml").write_text(hostile, encoding="utf-8")

    human = loonbrug("validate", "r.xml", cwd=tmp_path)
    machine = loonbrug("validate", "--json", "r.xml", cwd=tmp_path)

    assert human.returncode == machine.returncode == 1
    assert "XML-DOCTYPE" in human.stdout
    for output in (human.stdout, human.stderr, machine.stdout, machine.stderr):
        assert SECRET not in output
        assert "secret.txt" not in output


def test_json_output(tmp_path: Path) -> None:
    """--json prints one object per file with its findings and counts."""
    loonbrug(
        "sample",
        "--records",
        "7",
        "--inject",
        "AMOUNT-NEGATIVE",
        "-o",
        "bad.xml",
        cwd=tmp_path,
    )
    loonbrug("sample", "--records", "7", "-o", "good.xml", cwd=tmp_path)

    result = loonbrug("validate", "--json", "good.xml", "bad.xml", cwd=tmp_path)

    files = json.loads(result.stdout)["files"]
    assert result.returncode == 1
    assert [f["valid"] for f in files] == [True, False]
    assert files[1]["findings"][0]["code"] == "AMOUNT-NEGATIVE"
    assert files[0]["record_count"] == 7


def test_missing_file_exits_two(tmp_path: Path) -> None:
    """An unreadable file is an I/O error: exit status 2."""
    result = loonbrug("validate", "nothing.xml", cwd=tmp_path)

    assert result.returncode == 2
    assert "nothing.xml" in result.stderr


def test_usage_errors_exit_two(tmp_path: Path) -> None:
    """Bad command lines exit with status 2."""
    assert loonbrug("validate", cwd=tmp_path).returncode == 2
    assert (
        loonbrug("validate", "--intermediary", "x", "r.xml", cwd=tmp_path).returncode
        == 2
    )
    assert loonbrug("sample", "--inject", "NO-SUCH-RULE", cwd=tmp_path).returncode == 2
    assert loonbrug("sample", "--records", "0", cwd=tmp_path).returncode == 2


def test_config_sender_and_authorisations(tmp_path: Path, config: Path) -> None:
    """With -c and --intermediary, samples use that sender and pass as its upload."""
    loonbrug(
        "sample",
        "-c",
        str(config),
        "--intermediary",
        "flexwerk-zuid",
        "-o",
        "r.xml",
        cwd=tmp_path,
    )
    text = (tmp_path / "r.xml").read_text(encoding="utf-8")

    result = loonbrug(
        "validate",
        "-c",
        str(config),
        "--intermediary",
        "flexwerk-zuid",
        "r.xml",
        cwd=tmp_path,
    )

    assert result.returncode == 0, result.stdout
    assert "<KvkNumber>87654321</KvkNumber>" in text
    assert "GM0014" not in text


def test_config_catches_foreign_sender_and_municipality(
    tmp_path: Path, config: Path
) -> None:
    """The default sample is not this intermediary's, and names GM0014."""
    loonbrug("sample", "--records", "30", "-o", "r.xml", cwd=tmp_path)

    result = loonbrug(
        "validate",
        "-c",
        str(config),
        "--intermediary",
        "flexwerk-zuid",
        "r.xml",
        cwd=tmp_path,
    )

    assert result.returncode == 1
    assert "SENDER-MISMATCH" in result.stdout
    assert "MUNICIPALITY-NOT-AUTHORISED" in result.stdout
    assert DEFAULT_SENDER.kvk not in result.stdout


def test_config_injection_uses_an_unauthorised_known_code(
    tmp_path: Path, config: Path
) -> None:
    """--inject MUNICIPALITY-NOT-AUTHORISED picks a code the gateway knows."""
    args = ("-c", str(config), "--intermediary", "flexwerk-zuid")
    loonbrug(
        "sample",
        *args,
        "--inject",
        "MUNICIPALITY-NOT-AUTHORISED",
        "-o",
        "r.xml",
        cwd=tmp_path,
    )

    result = loonbrug("validate", *args, "--json", "r.xml", cwd=tmp_path)

    codes = [f["code"] for f in json.loads(result.stdout)["files"][0]["findings"]]
    assert codes == ["MUNICIPALITY-NOT-AUTHORISED"]


def test_list_injections(tmp_path: Path) -> None:
    """--list-injections names every rule that can be broken on purpose."""
    result = loonbrug("sample", "--list-injections", cwd=tmp_path)

    assert result.returncode == 0
    assert "BSN-ELEVEN-TEST" in result.stdout
    assert "XML-DOCTYPE" in result.stdout
