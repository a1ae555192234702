"""Loonbrug: a secure gateway for weekly wage reports.

Intermediaries (staffing agencies) upload signed and encrypted wage reports; the
gateway verifies, validates and routes each municipality's records, and only those,
to that municipality's outbox, and answers every upload with a receipt.
"""

__version__ = "0.1.0"
