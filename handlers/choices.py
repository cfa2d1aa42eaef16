"""Choice prompts: a question answered by picking one of its buttons, by tap, number or label.

The one home of the guard every choice prompt gets (SPEC: "a prompt that offers choices accepts
a choice or a command; anything else re-asks"). A step registered with ``Step.choice`` has no
text handler: the router asks the step's own prompt which buttons it offers right now, turns a
typed number ("2", "2.", "[2]") or a typed label ("gửi phản ánh", "Send") into that button press
-- verified like any tap -- and refuses anything else with the valid range, re-asking the
question. Nothing typed at such a prompt can reach a report, a ticket or a draft.

A new prompt gets all of this by being registered as a choice step; nothing here knows a flow.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from hotline.domain.reports import fold
from hotline.errors import InvalidInput
from hotline.messages import Button, OutboundMessage

_NUMBER = re.compile(r"^\s*\[?\s*(\d{1,3})\s*[.)\]]?\s*$")
_NOT_WORD = re.compile(r"[^\w]+")


def number_of(text: str | None) -> int | None:
    """``"2"``, ``" 2 "``, ``"2."``, ``"2)"`` and ``"[2]"`` are choice numbers; a tax code is not."""
    if not text:
        return None
    match = _NUMBER.match(text)
    return int(match.group(1)) if match else None


def label_key(text: str) -> str:
    """What a label is compared by: no case, diacritics, emoji or punctuation."""
    return " ".join(_NOT_WORD.sub(" ", fold(text)).split())


def offered(replies: Sequence[OutboundMessage]) -> list[Button]:
    """The buttons of ``replies`` in the order they are shown (and numbered)."""
    return [button for message in replies for row in message.buttons for button in row]


def pick(text: str, buttons: Sequence[Button], *, by_number: bool = True) -> Button | None:
    """The button ``text`` names, by its number (1-based, when ``by_number``) or its label."""
    number = number_of(text)
    if number is not None:
        return buttons[number - 1] if by_number and 1 <= number <= len(buttons) else None
    key = label_key(text)
    if not key:
        return None
    found = [b for b in buttons if label_key(b.label) == key]
    return found[0] if len(found) == 1 else None


def range_text(count: int) -> str:
    """"1" for a single choice, "1–4" for four."""
    return "1" if count <= 1 else f"1–{count}"


def refuse(count: int) -> InvalidInput:
    """The answer to anything that is not one of ``count`` choices nor a command."""
    return InvalidInput("not one of the choices", key="error.choose_one", range=range_text(count))


def refuse_number(number: int, count: int) -> InvalidInput:
    """A number typed against a numbered menu (console, Zalo) that has no such line."""
    return InvalidInput("no such choice", key="error.choose_number", number=number,
                        range=range_text(count))
