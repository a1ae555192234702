"""The audit trail's file format and the auditor's tools built on it.

:mod:`~gateway.audit_tools.chain` defines the line format and hash chain,
:mod:`~gateway.audit_tools.checkpoints` the signed checkpoints, and the other
modules read the trail without ever writing to it: verification, queries,
reports, the Logboek Dataverwerkingen export and the processing register.
"""
