"""Weekly digests and monthly reports (SPEC §7), rebuilt from the ticket event log.

``data`` loads, ``compute`` counts (pure), ``render``/``chart``/``export`` present, ``send``
queues once per (audience, period), ``schedule`` is what the scheduler calls.
"""

from hotline.digests.compute import Rules, compute_digest, group_view, reporter_view
from hotline.digests.data import build_digest, build_digest_with_inputs, load_inputs, rules_for
from hotline.digests.model import Digest, GroupDigest, ReporterDigest
from hotline.digests.period import (
    Period,
    date_range,
    last_complete_month,
    last_complete_week,
    parse_month,
    parse_week,
)
from hotline.digests.schedule import send_scheduled_digests
from hotline.digests.send import Audience, SendResult, parse_audience, send_digest

__all__ = [
    "Audience",
    "Digest",
    "GroupDigest",
    "Period",
    "ReporterDigest",
    "Rules",
    "SendResult",
    "build_digest",
    "build_digest_with_inputs",
    "compute_digest",
    "date_range",
    "group_view",
    "last_complete_month",
    "last_complete_week",
    "load_inputs",
    "parse_audience",
    "parse_month",
    "parse_week",
    "reporter_view",
    "rules_for",
    "send_digest",
    "send_scheduled_digests",
]
