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

# Conversation-flow verbs of the chat engine (handlers/). Draft buttons carry the draft's nonce
# so a button from an abandoned draft cannot file a newer one.
LANG = "lang"  # arg: vi | en
ORG_KIND = "kind"  # arg: enterprise | ministry | locality | other
SKIP = "skip"  # arg: which optional answer is skipped (tax, name, comment)
CANCEL = "cancel"
DRAFT_FILE = "rfile"  # arg: nonce
DRAFT_PICK = "rpick"  # arg: nonce.category
DRAFT_UNSURE = "runsure"  # arg: nonce -> coordinator triage
DRAFT_CHANGE = "rchange"  # arg: nonce -> show every category
SIMILAR_FOLLOW = "sfollow"  # arg: nonce.ref -> "this is my problem": follow that ticket
SIMILAR_FILE = "sfile"  # arg: nonce -> "no, file mine"
DRAFT_ADD = "radd"  # arg: nonce -> type details to add
DRAFT_ADD_YES = "raddok"  # arg: nonce -> add the typed details
DRAFT_ADD_NO = "raddno"  # arg: nonce -> back to the draft unchanged
RATE_OPEN = "rateo"  # arg: ref -> the stars (rate, or change a rating)
REASSIGN_GROUP = "reag"  # arg: ref.group_code (coordinators: pick the group first)
REASSIGN_TO = "reato"  # arg: ref.person_id
RECATEGORISE = "recat"  # arg: ref -> category buttons
RECATEGORISE_TO = "recatto"  # arg: ref.category
PRIORITY = "prio"  # arg: ref -> priority buttons
PRIORITY_SET = "prioset"  # arg: ref.priority
REJECT = "rej"  # arg: ref -> reason step


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


def build_pair(verb: str, first: object, second: object) -> str:
    """Two arguments in one payload (``rate:HL-2026-000001.5``); neither may contain a dot."""
    return build(verb, f"{first}.{second}")


def split_pair(arg: str) -> tuple[str, str]:
    """Inverse of ``build_pair``; a payload without exactly two parts is stale or forged."""
    first, sep, second = arg.partition(".")
    if not sep or not first or not second or "." in second:
        raise InvalidInput("malformed button payload", key="error.stale_button")
    return first, second
