"""Fixtures shared by the whole suite.

``no_personal_data_left`` runs around the whole session: at its end it scans
every log, audit and report file the suite wrote under pytest's base temporary
folder, and every test's captured standard error and log output, for BSNs and
the sample reports' surnames (see :mod:`tests.support.privacy`). Any hit fails
the session: personal data must never reach a log or an audit event.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.pgp import stop_agent
from tests.support.privacy import Hit, find_in_sections, find_in_tree

_captured_hits: list[Hit] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Scan what each test phase printed to standard error or logged."""
    _captured_hits.extend(find_in_sections(report.sections, report.nodeid))


@pytest.fixture(scope="session", autouse=True)
def no_personal_data_left(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[None]:
    """Fail the session if personal data turned up in any log or audit file."""
    yield
    hits = _captured_hits + find_in_tree(tmp_path_factory.getbasetemp())
    if hits:
        listing = "\n  ".join(str(hit) for hit in hits[:50])
        pytest.fail(f"personal data found in {len(hits)} place(s):\n  {listing}")


@pytest.fixture(scope="session", autouse=True)
def no_gpg_agent_left(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Stop every gpg-agent started for a GnuPG home the suite created.

    Daemons killed on purpose (crash tests) and subprocesses cannot stop the
    agents of their homes themselves; this sweeps them all at the end.
    """
    yield
    for keyring in tmp_path_factory.getbasetemp().rglob("pubring.kbx"):
        stop_agent(keyring.parent)
