"""Splitting long outbound texts into pieces a chat API accepts.

Telegram rejects a message longer than 4096 characters (1024 for a caption) with
``400 Bad Request: message is too long`` and counts characters in UTF-16 code units, so an
emoji counts twice. The engine writes whole messages (a ticket list can be long); the channel
adapters cut them here, preferring line boundaries so a list never breaks mid-item.

Texts are in Telegram's HTML subset. A cut never falls inside a tag (``<a href="...">``) or an
entity (``&amp;``), and every piece is balanced on its own: tags still open at a cut are closed
at the end of the piece and reopened, with their attributes, at the start of the next one --
Telegram parses each message separately and refuses unbalanced markup.

Lengths are measured on the raw markup, which is never shorter than the text Telegram counts
after parsing entities, so a piece that fits here always fits there.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable
from dataclasses import dataclass

TELEGRAM_MESSAGE_LIMIT = 4096
TELEGRAM_CAPTION_LIMIT = 1024

# A start or end tag of the HTML subset (attributes are kept verbatim for reopening).
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)(\s[^<>]*)?>")
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z][a-zA-Z0-9]{0,31});")


def utf16_length(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (astral characters count twice)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


@dataclass(frozen=True, slots=True)
class _Token:
    raw: str
    tag: str | None = None  # lower-cased tag name for tags, None for text and entities
    closing: bool = False

    @property
    def visible(self) -> bool:
        return self.tag is None and not self.raw.isspace()


def _tokenize(text: str, html: bool) -> list[_Token]:
    if not html:
        return [_Token(ch) for ch in text]
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "<" and (m := _TAG.match(text, i)):
            tokens.append(_Token(m.group(0), m.group(2).lower(), bool(m.group(1))))
            i = m.end()
        elif ch == "&" and (m := _ENTITY.match(text, i)):
            tokens.append(_Token(m.group(0)))
            i = m.end()
        else:
            tokens.append(_Token(ch))
            i += 1
    return tokens


def _apply(stack: tuple[_Token, ...], token: _Token) -> tuple[_Token, ...]:
    """The open-tag stack after ``token``; stray end tags are ignored rather than trusted."""
    if token.tag is None:
        return stack
    if not token.closing:
        return (*stack, token)
    for depth in range(len(stack) - 1, -1, -1):
        if stack[depth].tag == token.tag:
            return stack[:depth]
    return stack


def _closers(stack: tuple[_Token, ...]) -> str:
    return "".join(f"</{t.tag}>" for t in reversed(stack))


def split_message(
    text: str,
    limit: int = TELEGRAM_MESSAGE_LIMIT,
    *,
    html: bool = True,
    length: Callable[[str], int] = utf16_length,
) -> list[str]:
    """Cut ``text`` into pieces of at most ``limit`` (as measured by ``length``).

    Preference for the cut: at the last line break that fits, else at the last space, else
    anywhere between characters (never inside a tag or entity, never right after a start
    tag). Whitespace at a cut is dropped. Pass ``html=False`` for plain-text channels so
    ``<`` is just a character. Returns ``[]`` for an empty text.
    """
    if limit < 1:
        raise ValueError("limit must be positive")
    if not text:
        return []
    if length(text) <= limit:
        return [text]

    tokens = _tokenize(text, html)
    sizes = [length(t.raw) for t in tokens]
    pieces: list[str] = []
    stack: tuple[_Token, ...] = ()
    i = 0
    while i < len(tokens):
        prefix = "".join(t.raw for t in stack)
        used = length(prefix)
        local = stack
        closing = length(_closers(local))
        has_visible = False
        # Best cut after a newline / after a space / anywhere: (token index, stack there).
        cut_line = cut_space = cut_any = None
        j = i
        while j < len(tokens):
            token = tokens[j]
            if token.tag is None:
                after, after_closing = local, closing
            else:
                after = _apply(local, token)
                after_closing = length(_closers(after))
            if used + sizes[j] + after_closing > limit:
                break
            used += sizes[j]
            local, closing = after, after_closing
            has_visible = has_visible or token.visible
            j += 1
            if has_visible and not (token.tag and not token.closing):
                # Never cut right after a start tag: the piece would end in an empty element.
                if token.raw == "\n":
                    cut_line = (j, local)
                elif token.raw.isspace():
                    cut_space = (j, local)
                else:
                    cut_any = (j, local)
        if j == len(tokens):
            piece = prefix + "".join(t.raw for t in tokens[i:])
            if piece.strip():
                pieces.append(piece)
            break
        # The token that did not fit may itself be the boundary: cut just before it.
        if has_visible and tokens[j].raw.isspace():
            if tokens[j].raw == "\n":
                cut_line = (j, local)
            else:
                cut_space = (j, local)
        cut = cut_line or cut_space or cut_any
        if cut is None:
            raise ValueError(f"cannot split: the open tags alone nearly fill the {limit}-character limit")
        end, end_stack = cut
        body = "".join(t.raw for t in tokens[i:end]).rstrip()
        pieces.append(prefix + body + _closers(end_stack))
        stack = end_stack
        i = end
        while i < len(tokens) and tokens[i].raw.isspace():  # whitespace at a cut goes
            i += 1
    return pieces


def strip_tags(text: str) -> str:
    """Plain text from the HTML subset, keeping line breaks.

    ``hotline.i18n.plain`` uses ``Markup.striptags``, which folds all whitespace into single
    spaces -- fine for a one-line label, wrong for a ticket list that is sent as plain text
    after Telegram refused its markup.
    """
    return html_lib.unescape(_TAG.sub("", text))
