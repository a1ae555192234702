"""Tests of the pipeline, end to end with real gpg, SQLite and files."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from gateway.audit import MemoryAudit
from gateway.config import Config
from gateway.demo import create_sandbox
from gateway.ledger import Ledger, State
from gateway.pgp import OpenPgp
from gateway.pipeline import Pipeline
from gateway.pseudonym import Pseudonymiser
from gateway.sample import SampleSender, generate_report
from tests.support.messages import (
    delivery_path,
    drop,
    gpg,
    open_signed,
    partner_home,
    read_receipt,
    report_for,
    seal,
    stop_partner_agents,
    tune_config,
)
from tests.support.pagecache import dirty_pages

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
WR = "{urn:loonbrug:wage-report:v1}"
NOORD = "uitzender-noord"
ZUID = "flexwerk-zuid"


@dataclasses.dataclass
class World:
    """A sandbox, its configuration and a pipeline working on it."""

    folder: Path
    config: Config
    pipeline: Pipeline
    audit: MemoryAudit
    ledger: Ledger

    def run(self, account: str, name: str, data: bytes) -> None:
        """Drop an upload into the inbox and take it through the pipeline."""
        path = drop(self.config, account, name, data)
        assert self.pipeline.process(account, path) is not None


def make_pipeline(config: Config, audit: MemoryAudit, ledger: Ledger) -> Pipeline:
    """A pipeline over *config* with the sandbox's keys and pseudonym key."""
    return Pipeline(
        config,
        ledger=ledger,
        pgp=OpenPgp(config.gateway.gnupg_home),
        audit=audit,
        pseudonymiser=Pseudonymiser.load(config.audit.pseudonym_key),
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One sandbox shared by the module; every test uses its own messages."""
    sandbox = create_sandbox(tmp_path_factory.mktemp("pipeline") / "demo")
    config = tune_config(sandbox.config_path)
    audit = MemoryAudit()
    ledger = Ledger(config.ledger_path)
    yield World(
        sandbox.folder, config, make_pipeline(config, audit, ledger), audit, ledger
    )
    ledger.close()
    stop_partner_agents(sandbox.folder, config)


def _schema(name: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMAS / name)))


def _codes_in(xml: bytes) -> list[str]:
    root = etree.fromstring(xml)
    return [r.findtext(f"{WR}MunicipalityCode") for r in root.iter(f"{WR}Record")]


@pytest.mark.parametrize(("account", "seed"), [(NOORD, 10), (ZUID, 11)])
def test_happy_path_delivers_each_municipality_only_its_records(
    world: World, account: str, seed: int
) -> None:
    """Each municipality decrypts its own file and finds only its own records."""
    report = report_for(world.config, account, seed=seed, records=30)
    world.run(
        account,
        f"happy-{account}.xml.gpg",
        seal(world.folder, world.config, account, report),
    )

    receipt = read_receipt(
        world.folder, world.config, account, f"happy-{account}.xml.gpg"
    )
    assert receipt.outcome == "accepted", receipt.xml
    assert receipt.signer == world.config.gateway.key_fingerprint
    assert _schema("receipt-v1.xsd").validate(etree.fromstring(receipt.xml))
    expected = world.config.intermediaries[account].municipalities
    assert set(receipt.accepted) == expected
    municipality_schema = _schema("municipality-report-v1.xsd")
    for code, count in receipt.accepted.items():
        municipality = world.config.municipality_by_code(code)
        path = delivery_path(world.config, receipt.message_id or "", code)
        opened = open_signed(partner_home(world.folder, municipality.id), path)
        assert opened.signer == world.config.gateway.key_fingerprint
        assert opened.signatures == 1
        assert _codes_in(opened.content) == [code] * count
        assert municipality_schema.validate(etree.fromstring(opened.content))


def test_municipality_cannot_open_another_municipality_file(world: World) -> None:
    """A file for Rotterdam is encrypted to Rotterdam's key alone."""
    report = report_for(world.config, NOORD, seed=12)
    world.run(NOORD, "private.xml.gpg", seal(world.folder, world.config, NOORD, report))
    receipt = read_receipt(world.folder, world.config, NOORD, "private.xml.gpg")
    path = delivery_path(world.config, receipt.message_id or "", "GM0599")

    done = gpg(partner_home(world.folder, "utrecht"), "--decrypt", str(path))

    assert done.returncode != 0


def test_upload_ends_archived_with_work_folder_empty(world: World) -> None:
    """An accepted upload is archived as received and its work folder is gone."""
    sealed = seal(
        world.folder, world.config, NOORD, report_for(world.config, NOORD, seed=13)
    )
    world.run(NOORD, "archived.xml.gpg", sealed)

    spool = world.config.gateway.spool
    archived = list((spool / "archive" / NOORD).glob("*.archived.xml.gpg"))
    assert [p.read_bytes() for p in archived] == [sealed]
    assert list((spool / "work").iterdir()) == []
    assert all(u.state == State.DONE for u in world.ledger.uploads())


def test_same_file_twice_is_a_duplicate(world: World) -> None:
    """The same bytes under another name are rejected as a duplicate upload."""
    sealed = seal(
        world.folder, world.config, NOORD, report_for(world.config, NOORD, seed=14)
    )
    world.run(NOORD, "first.xml.gpg", sealed)

    world.run(NOORD, "again.xml.gpg", sealed)

    receipt = read_receipt(world.folder, world.config, NOORD, "again.xml.gpg")
    assert (receipt.outcome, receipt.codes) == ("rejected", ["DUPLICATE-UPLOAD"])


def test_a_waiting_receipt_is_never_replaced_by_a_later_upload_of_its_name(
    world: World,
) -> None:
    """A retry under the same name gets a receipt of its own beside the first."""
    sealed = seal(
        world.folder, world.config, NOORD, report_for(world.config, NOORD, seed=31)
    )
    world.run(NOORD, "retry.xml.gpg", sealed)

    world.run(NOORD, "retry.xml.gpg", sealed)

    first = read_receipt(world.folder, world.config, NOORD, "retry.xml.gpg")
    folder = world.config.gateway.spool / "receipts" / NOORD
    (later,) = folder.glob("retry.xml.gpg.*.receipt.asc")
    upload_id = later.name.removeprefix("retry.xml.gpg.").removesuffix(".receipt.asc")
    second = read_receipt(
        world.folder, world.config, NOORD, f"retry.xml.gpg.{upload_id}"
    )
    assert first.outcome == "accepted"
    assert (second.outcome, second.codes) == ("rejected", ["DUPLICATE-UPLOAD"])
    assert world.ledger.get(upload_id) is not None


def test_a_fetched_receipt_frees_its_name(world: World) -> None:
    """Once the intermediary removed a receipt, the next upload of that name uses it."""
    report = report_for(world.config, NOORD, seed=32)
    world.run(NOORD, "weekly.xml.gpg", seal(world.folder, world.config, NOORD, report))
    folder = world.config.gateway.spool / "receipts" / NOORD
    (folder / "weekly.xml.gpg.receipt.asc").unlink()

    world.run(NOORD, "weekly.xml.gpg", seal(world.folder, world.config, NOORD, report))

    receipt = read_receipt(world.folder, world.config, NOORD, "weekly.xml.gpg")
    assert (receipt.outcome, receipt.codes) == ("rejected", ["DUPLICATE-MESSAGE"])
    assert list(folder.glob("weekly.xml.gpg.*")) == [
        folder / "weekly.xml.gpg.receipt.asc"
    ]


def test_same_message_id_twice_is_a_duplicate(world: World) -> None:
    """A message id sent before, freshly encrypted, is a duplicate message."""
    report = report_for(world.config, NOORD, seed=15)
    world.run(NOORD, "m1.xml.gpg", seal(world.folder, world.config, NOORD, report))

    world.run(NOORD, "m2.xml.gpg", seal(world.folder, world.config, NOORD, report))

    first = read_receipt(world.folder, world.config, NOORD, "m1.xml.gpg")
    second = read_receipt(world.folder, world.config, NOORD, "m2.xml.gpg")
    assert first.outcome == "accepted"
    assert (second.outcome, second.codes) == ("rejected", ["DUPLICATE-MESSAGE"])
    assert second.message_id == first.message_id


def test_message_id_of_another_intermediary_is_refused(world: World) -> None:
    """An intermediary cannot reuse (and so overwrite) another's message id."""
    message_id = "5f0c6a52-1b0e-4c55-8f36-3c0c3a4d9e21"
    noord = report_for(world.config, NOORD, seed=16, message_id=message_id)
    zuid = report_for(world.config, ZUID, seed=16, message_id=message_id)
    world.run(
        NOORD, "shared-id.xml.gpg", seal(world.folder, world.config, NOORD, noord)
    )

    world.run(ZUID, "shared-id.xml.gpg", seal(world.folder, world.config, ZUID, zuid))

    receipt = read_receipt(world.folder, world.config, ZUID, "shared-id.xml.gpg")
    assert (receipt.outcome, receipt.codes) == ("rejected", ["MESSAGE-ID-CONFLICT"])


def test_invalid_report_is_rejected_whole(world: World) -> None:
    """One bad record rejects the whole report: nothing is routed."""
    report = report_for(world.config, NOORD, seed=17, inject="BSN-ELEVEN-TEST")
    world.run(NOORD, "invalid.xml.gpg", seal(world.folder, world.config, NOORD, report))

    receipt = read_receipt(world.folder, world.config, NOORD, "invalid.xml.gpg")
    assert receipt.outcome == "rejected"
    assert "BSN-ELEVEN-TEST" in receipt.codes
    assert receipt.accepted == {}
    for code in ("GM0599", "GM0344", "GM0014"):
        assert not delivery_path(world.config, receipt.message_id or "", code).exists()
    rejected = world.config.gateway.spool / "rejected" / NOORD
    assert list(rejected.glob("*.invalid.xml.gpg"))


def test_the_claim_flushes_an_upload_that_was_never_flushed(world: World) -> None:
    """An upload left by a server that never flushes (OpenSSH's sftp-server on
    the same spool) is on the disk once claimed: from then on the ledger
    promises it, whatever happens to the machine."""
    sealed = seal(
        world.folder, world.config, NOORD, report_for(world.config, NOORD, seed=33)
    )
    path = drop(world.config, NOORD, "unflushed.xml.gpg", sealed)
    with path.open("rb") as handle:
        if not dirty_pages(handle.fileno()):
            pytest.skip("this kernel or file system does not report dirty pages")

    job = world.pipeline.claim(NOORD, path)

    assert job is not None
    with job.upload.open("rb") as handle:
        assert dirty_pages(handle.fileno()) == 0
    upload = world.ledger.get(job.upload_id)
    assert upload is not None
    world.pipeline.resume(upload)
    receipt = read_receipt(world.folder, world.config, NOORD, "unflushed.xml.gpg")
    assert receipt.outcome == "accepted"


def test_upload_over_the_size_cap_is_refused(world: World) -> None:
    """An upload larger than max_upload_bytes is refused before decryption."""
    settings = dataclasses.replace(world.config.gateway, max_upload_bytes=100)
    small = dataclasses.replace(world.config, gateway=settings)
    pipeline = make_pipeline(small, world.audit, world.ledger)
    sealed = seal(
        world.folder, world.config, NOORD, report_for(world.config, NOORD, seed=18)
    )
    path = drop(small, NOORD, "big.xml.gpg", sealed)

    pipeline.process(NOORD, path)

    receipt = read_receipt(world.folder, world.config, NOORD, "big.xml.gpg")
    assert receipt.codes == ["UPLOAD-TOO-LARGE"]


def test_unexpected_failure_becomes_an_internal_error_receipt(world: World) -> None:
    """A municipality key missing from the key ring fails the upload, not the daemon."""
    missing = "0" * 40
    municipalities = {
        account: dataclasses.replace(m, encryption_key=missing)
        if m.code == "GM0599"
        else m
        for account, m in world.config.municipalities.items()
    }
    broken = dataclasses.replace(world.config, municipalities=municipalities)
    pipeline = make_pipeline(broken, world.audit, world.ledger)
    report = report_for(world.config, NOORD, seed=19)
    path = drop(
        broken, NOORD, "broken.xml.gpg", seal(world.folder, world.config, NOORD, report)
    )

    pipeline.process(NOORD, path)

    receipt = read_receipt(world.folder, world.config, NOORD, "broken.xml.gpg")
    assert (receipt.outcome, receipt.codes) == ("rejected", ["INTERNAL-ERROR"])
    for code in ("GM0599", "GM0344", "GM0014"):
        assert not delivery_path(world.config, receipt.message_id or "", code).exists()
    assert list((world.config.gateway.spool / "rejected" / NOORD).glob("*.broken.*"))


def test_audit_events_carry_pseudonyms_and_no_personal_data(world: World) -> None:
    """Records appear in audit events only as pseudonyms, never as BSNs."""
    report = report_for(world.config, NOORD, seed=20, records=25)
    bsns = set(re.findall(rb"<Bsn>(\d{9})</Bsn>", report))
    world.run(NOORD, "audited.xml.gpg", seal(world.folder, world.config, NOORD, report))
    receipt = read_receipt(world.folder, world.config, NOORD, "audited.xml.gpg")

    text = json.dumps(world.audit.events)
    assert not any(bsn.decode() in text for bsn in bsns)
    routed = [
        e
        for e in world.audit.events
        if e["event"] == "records.routed" and e["message_id"] == receipt.message_id
    ]
    pseudonymiser = Pseudonymiser.load(world.config.audit.pseudonym_key)
    subjects = {s for e in routed for s in e["subjects"]}  # type: ignore[union-attr]
    assert subjects == {pseudonymiser.pseudonym(b.decode()) for b in bsns}


def test_large_report_is_routed_in_batches_of_pseudonyms(world: World) -> None:
    """More than 1000 records of one municipality give several routed events."""
    report = generate_report(
        records=2100,
        seed=21,
        sender=SampleSender.from_intermediary(world.config.intermediaries[NOORD]),
        municipalities=["GM0599"],
    )
    world.run(NOORD, "batched.xml.gpg", seal(world.folder, world.config, NOORD, report))
    receipt = read_receipt(world.folder, world.config, NOORD, "batched.xml.gpg")

    sizes = [
        len(e["subjects"])  # type: ignore[arg-type]
        for e in world.audit.events
        if e["event"] == "records.routed" and e["message_id"] == receipt.message_id
    ]
    assert sizes == [1000, 1000, 100]
    assert receipt.accepted == {"GM0599": 2100}
