"""Routing: one document per municipality, and the receipt for the sender.

:mod:`gateway.route.split` streams an accepted wage report into one
municipality report per municipality it concerns; :mod:`gateway.route.receipt`
builds the receipt XML. Both only produce plaintext in the upload's work folder;
encryption, signing and the move into the spool belong to the pipeline.
"""

from __future__ import annotations

import hashlib

RECEIPT_SUFFIX = ".receipt.asc"
_NAME_MAX = 255
_SHORTENED = 200


def outbox_name(message_id: str, municipality_code: str) -> str:
    """The outbox file name of one message for one municipality.

    The name depends only on the message, so a redo after a crash replaces the
    file instead of adding a second copy under another name.
    """
    return f"{message_id.lower()}.{municipality_code}.xml.gpg"


def receipt_name(upload_name: str) -> str:
    """The receipt file name for an upload, named after it.

    A name too long for the file system once the suffix is added (255 bytes)
    is shortened and given a hash of the full name, so it stays unique.
    """
    name = f"{upload_name}{RECEIPT_SUFFIX}"
    if len(name.encode()) <= _NAME_MAX:
        return name
    digest = hashlib.sha256(upload_name.encode()).hexdigest()[:16]
    short = upload_name.encode()[:_SHORTENED].decode(errors="ignore")
    return f"{short}-{digest}{RECEIPT_SUFFIX}"
