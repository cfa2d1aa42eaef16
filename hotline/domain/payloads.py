"""Button payloads: short, self-describing ``verb:argument`` strings.

They travel through chat platforms and come back from users' devices, so they are parsed
strictly and never trusted: the engine re-checks the caller's role and the ticket's state on
every press (a stale or forged payload gets a clear answer and changes nothing).
Telegram limits callback data to 64 bytes; every payload here stays far below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hotline.errors import InvalidInput

MAX_PAYLOAD_BYTES = 64
_PAYLOAD_RE = re.compile(r"^([a-z_]{1,16}):([A-Za-z0-9_.\-]{0,40})$")

# Verbs used by services and escalation messages (the engine may add its own flow verbs).
ACK = "ack"
UPDATE = "upd"
ASK_INFO = "ask"
ANSWER = "ans"
RESOLVE = "res"
CONFIRM = "cfm"
REOPEN = "rop"
RATE = "rate"
EXTEND = "ext"
EXT_APPROVE = "exok"
EXT_REFUSE = "exno"
CLAIM = "claim"
REASSIGN = "rea"
TRIAGE = "tri"
OPEN = "open"


@dataclass(frozen=True)
class Payload:
    verb: str
    arg: str


def build(verb: str, arg: object = "") -> str:
    payload = f"{verb}:{arg}"
    if len(payload.encode()) > MAX_PAYLOAD_BYTES or not _PAYLOAD_RE.match(payload):
        raise ValueError(f"invalid button payload {payload!r}")
    return payload


def parse(raw: str | None) -> Payload:
    if not raw or len(raw.encode()) > MAX_PAYLOAD_BYTES:
        raise InvalidInput("malformed button payload", key="error.stale_button")
    match = _PAYLOAD_RE.match(raw)
    if not match:
        raise InvalidInput("malformed button payload", key="error.stale_button")
    return Payload(verb=match.group(1), arg=match.group(2))
