"""``scorelab audit``: the exact error of a diffusers scheduler, and its conformance certificate.

* ``law``: a run's exact affine law on a Gaussian target, read by probing;
* ``compare``: a scheduler's error beside scorelab's samplers on the same noise levels;
* ``driver``: any scheduler driven through its public API, with the exact model;
* ``ladder``: the step ladder, the fitted order and the limit error;
* ``checks``: the conformance checks, each ``{id, passed, detail}``;
* ``certificate``: the certificate (JSON, self-contained HTML) and ``certify``.
"""

from .certificate import Certificate
from .certify import certify, parse_steps
from .checks import Check
from .compare import Audit, AuditRow, audit, comparable, default_samplers, figure
from .law import NotAffine, probe_affine

__all__ = [
    "Audit",
    "AuditRow",
    "Certificate",
    "Check",
    "NotAffine",
    "audit",
    "certify",
    "comparable",
    "default_samplers",
    "figure",
    "parse_steps",
    "probe_affine",
]
