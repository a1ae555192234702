"""Routing: one document per municipality, and the receipt for the sender.

:mod:`gateway.route.split` streams an accepted wage report into one
municipality report per municipality it concerns; :mod:`gateway.route.receipt`
builds the receipt XML. Both only produce plaintext in the upload's work folder;
encryption, signing and the move into the spool belong to the pipeline.
"""

from __future__ import annotations

RECEIPT_SUFFIX = ".receipt.asc"


def outbox_name(message_id: str, municipality_code: str) -> str:
    """The outbox file name of one message for one municipality.

    The name depends only on the message, so a redo after a crash replaces the
    file instead of adding a second copy under another name.
    """
    return f"{message_id.lower()}.{municipality_code}.xml.gpg"


def receipt_name(upload_name: str) -> str:
    """The receipt file name for an upload, named after it."""
    return f"{upload_name}{RECEIPT_SUFFIX}"
