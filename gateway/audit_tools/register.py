"""``audit register``: the records of processing (GDPR art. 30) from the config.

Article 30 asks every controller and processor to keep a record of each
processing activity: its purpose, the categories of data subjects and of
personal data, the recipients, the time limits for erasure and the security
measures. The gateway's part of that record follows from its configuration
(who sends, who receives, how long files are kept), so it is built from it
rather than kept by hand beside it, where it would drift.
"""

from __future__ import annotations

from typing import Any

from gateway.audit_tools.logboek import PROCESSING_ACTIVITY
from gateway.config import Config, Retention

AUDIT_ACTIVITY = "urn:loonbrug:processing-activity:audit-trail"


def _days(days: int) -> str:
    return "kept until removed by the operator" if days == 0 else f"{days} days"


def _retention(retention: Retention) -> dict[str, str]:
    return {
        "uploads as received (encrypted), after acceptance": _days(
            retention.archive_days
        ),
        "rejected uploads (encrypted)": _days(retention.rejected_days),
        "receipts (signed, no personal data)": _days(retention.receipts_days),
        "outbox files (encrypted), after download": _days(retention.delivered_days),
        "outbox files not downloaded": "kept; overdue warning after "
        f"{retention.pickup_warning_hours} hours",
        "plaintext while processing": "deleted when the upload is processed",
    }


def _exchange(config: Config) -> dict[str, Any]:
    return {
        "id": PROCESSING_ACTIVITY,
        "name": "Passing weekly wage data from intermediaries to municipalities",
        "purpose": (
            "Municipalities offset the earnings of people on social assistance "
            "against their benefit in the same month (Participatiewet)."
        ),
        "legal_basis": [
            "GDPR art. 6(1)(c): legal obligation",
            "Participatiewet art. 64: duty of third parties to inform the municipality",
            "Wet SUWI, chapter 5: data processing in work and income",
        ],
        "data_subjects": ["flex workers paid by the intermediaries"],
        "data_categories": [
            "BSN",
            "name and date of birth",
            "employment period, hours and wages",
        ],
        "sources": [
            {"account": i.id, "name": i.name, "kvk": i.kvk}
            for i in config.intermediaries.values()
        ],
        "recipients": [
            {"account": m.id, "name": m.name, "code": m.code}
            for m in config.municipalities.values()
        ],
        "transfers_outside_eea": "none",
        "retention": _retention(config.retention),
        "security": [
            "OpenPGP encryption and signatures end to end; SFTP with public keys",
            "each municipality receives only its own residents' records",
            "plaintext only in a private work folder, removed after processing",
            "tamper-evident audit trail with signed checkpoints",
        ],
    }


def _audit() -> dict[str, Any]:
    return {
        "id": AUDIT_ACTIVITY,
        "name": "Audit trail of the exchange",
        "purpose": (
            "Accountability (GDPR art. 5(2)) and answering data-subject access "
            "requests (GDPR art. 15)."
        ),
        "legal_basis": ["GDPR art. 6(1)(c) with art. 5(2) and art. 32"],
        "data_subjects": ["flex workers paid by the intermediaries"],
        "data_categories": ["keyed pseudonym of the BSN (HMAC-SHA256)"],
        "sources": [{"account": "loonbrug", "name": "the gateway itself"}],
        "recipients": ["auditors and the privacy officer of the operator"],
        "transfers_outside_eea": "none",
        "retention": {"audit trail": "kept until removed by the operator"},
        "security": [
            "no BSN, name or amount in clear; the pseudonym key is kept apart",
            "hash chain and signed checkpoints, copied off the machine",
        ],
    }


def build(config: Config) -> list[dict[str, Any]]:
    """The register entries for the gateway as configured."""
    return [_exchange(config), _audit()]


def _item(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    return str(value)


def as_text(entries: list[dict[str, Any]]) -> str:
    """The entries as readable text, one block per processing activity."""
    lines: list[str] = []
    for entry in entries:
        lines += [entry["name"], f"  id: {entry['id']}"]
        for key, value in entry.items():
            if key in {"id", "name"}:
                continue
            title = key.replace("_", " ")
            if isinstance(value, list):
                lines.append(f"  {title}:")
                lines += [f"    - {_item(v)}" for v in value]
            elif isinstance(value, dict):
                lines.append(f"  {title}:")
                lines += [f"    - {k}: {v}" for k, v in value.items()]
            else:
                lines.append(f"  {title}: {value}")
        lines.append("")
    return "\n".join(lines)
