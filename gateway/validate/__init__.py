"""Validation of wage reports: hardened parsing, XSD, domain rules, findings.

::

    from gateway.validate import validate_file, ValidationContext
    result = validate_file(path, ValidationContext(known_municipalities=codes))
    if not result.valid:
        for finding in result.findings: ...
"""

from gateway.validate.context import SenderContext, ValidationContext, ValidationResult
from gateway.validate.document import validate_file
from gateway.validate.findings import Finding, Severity

__all__ = [
    "Finding",
    "SenderContext",
    "Severity",
    "ValidationContext",
    "ValidationResult",
    "validate_file",
]
