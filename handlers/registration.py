"""First contact: /start, language choice, the reporter's first-time profile, and /lang.

A person who simply writes their problem before registering keeps it: the text (and any
attachments) rides along in the conversation data, and the report flow continues as soon as
the profile is complete, so nobody has to type their problem twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any

from handlers.context import Context, stale
from handlers.router import Prompt, Router, Step
from hotline.domain import payloads as P
from hotline.domain.enums import OrgKind
from hotline.domain.reports import has_words
from hotline.errors import InvalidInput
from hotline.i18n import LANGUAGES
from hotline.services import people

REG_LANG = "reg_lang"
REG_ORG = "reg_org"
REG_KIND = "reg_kind"
REG_TAX = "reg_tax"
REG_NAME = "reg_name"

#: What happens once the profile is saved, given the conversation data (``pending``, ``then``);
#: the report flow passes it in (``handlers.engine.build_router``), so this module needs no
#: import of it.
AfterRegistration = Callable[[Context, dict[str, Any]], Awaitable[None]]

#: Typed answers accepted instead of a button press (channels without buttons, habits).
_LANG_WORDS = {"vi": "vi", "tiếng việt": "vi", "tieng viet": "vi", "vietnamese": "vi",
               "en": "en", "english": "en", "tiếng anh": "en", "tieng anh": "en"}
_KIND_WORDS = {
    OrgKind.ENTERPRISE: ("enterprise", "company", "business", "doanh nghiệp", "doanh nghiep",
                         "công ty", "cong ty"),
    OrgKind.MINISTRY: ("ministry", "agency", "bộ", "bo", "ngành", "cơ quan", "co quan"),
    OrgKind.LOCALITY: ("locality", "province", "địa phương", "dia phuong", "tỉnh", "tinh"),
    OrgKind.OTHER: ("other", "khác", "khac"),
}


def _lang_alias(text: str) -> str | None:
    lang = _LANG_WORDS.get(" ".join(text.lower().split()))
    return P.build(P.LANG, lang) if lang else None


def _kind_alias(text: str) -> str | None:
    lowered = " ".join(text.lower().split())
    for kind, words in _KIND_WORDS.items():
        if lowered == kind.value or lowered in words:
            return P.build(P.ORG_KIND, kind.value)
    return None


def _carry(ctx: Context) -> dict[str, Any]:
    """What the registration steps pass along: answers so far and the pending report."""
    keep = ("org", "kind", "tax", "pending", "then")
    return {k: v for k, v in ctx.data.items() if k in keep}


def cancel_row(ctx: Context) -> list[Any]:
    return [ctx.button("engine.btn.cancel", P.build(P.CANCEL))]


async def set_language(ctx: Context, lang: str) -> None:
    if lang not in LANGUAGES:
        raise InvalidInput("unsupported language", key="error.bad_language",
                           languages=", ".join(LANGUAGES))
    if ctx.person is not None:
        await people.set_language(ctx.uow, ctx.person, lang)
    data = ctx.data
    data["lang"] = lang
    ctx.conv.data = data
    ctx.lang = lang


def language_buttons(ctx: Context) -> list[list[Any]]:
    return [[ctx.button("engine.btn.lang_vi", P.build(P.LANG, "vi")),
             ctx.button("engine.btn.lang_en", P.build(P.LANG, "en"))]]


# --- /start and language ----------------------------------------------------------------------


async def start(ctx: Context, _arg: str) -> None:
    if ctx.person is not None:
        ctx.say("engine.welcome_back", name=ctx.person.display_name)
        return
    ctx.set_step(REG_LANG)
    await prompt_lang(ctx)


async def begin(ctx: Context, *, pending: dict[str, Any] | None = None,
                then: str | None = None) -> None:
    """Start the profile questions straight away (language stays as guessed; /lang changes it)."""
    data: dict[str, Any] = {}
    if pending:
        data["pending"] = pending
    if then:
        data["then"] = then
    ctx.set_step(REG_ORG, **data)
    ctx.say("engine.register_first")
    await prompt_org(ctx)


async def prompt_lang(ctx: Context) -> None:
    ctx.say("engine.welcome", buttons=language_buttons(ctx))


async def lang_button(ctx: Context, arg: str) -> None:
    if arg not in LANGUAGES:
        raise stale()
    await set_language(ctx, arg)
    if ctx.step == REG_LANG:
        ctx.set_step(REG_ORG, **_carry(ctx))
        await prompt_org(ctx)
    else:
        ctx.say("engine.language_set")


async def lang_command(ctx: Context, arg: str) -> None:
    code = arg.strip().lower()
    if not code:
        ctx.say("engine.choose_language", buttons=language_buttons(ctx))
        return
    await set_language(ctx, _LANG_WORDS.get(code, code))
    if ctx.step == REG_LANG:
        ctx.set_step(REG_ORG, **_carry(ctx))  # the router asks the next question
    else:
        ctx.say("engine.language_set")


# --- profile ----------------------------------------------------------------------------------


async def prompt_org(ctx: Context) -> None:
    ctx.say("engine.ask_org", buttons=[cancel_row(ctx)])


async def handle_org(ctx: Context, text: str) -> None:
    if not text:
        raise InvalidInput("empty", key="error.empty_text")
    if not has_words(text):
        raise InvalidInput("no words", key="engine.org_need_words")
    name = people.clean_name(text, "organisation name")
    ctx.set_step(REG_KIND, **(_carry(ctx) | {"org": name}))
    await prompt_kind(ctx)


async def prompt_kind(ctx: Context) -> None:
    kinds = [ctx.button(f"org_kind.{k.value}", P.build(P.ORG_KIND, k.value)) for k in OrgKind]
    ctx.say("engine.ask_kind", org=ctx.data.get("org", ""),
            buttons=[kinds[:2], kinds[2:], cancel_row(ctx)])


async def kind_button(ctx: Context, arg: str) -> None:
    if ctx.step != REG_KIND or arg not in {k.value for k in OrgKind}:
        raise stale()
    await _kind_chosen(ctx, OrgKind(arg))


async def _kind_chosen(ctx: Context, kind: OrgKind) -> None:
    ctx.set_step(REG_TAX, **(_carry(ctx) | {"kind": kind.value}))
    await prompt_tax(ctx)


async def prompt_tax(ctx: Context) -> None:
    ctx.say("engine.ask_tax", buttons=[[ctx.button("engine.btn.skip", P.build(P.SKIP, "tax"))],
                                       cancel_row(ctx)])


async def handle_tax(ctx: Context, text: str) -> None:
    tax = people.clean_tax_code(text)
    if tax is None:
        raise InvalidInput("empty", key="error.bad_tax_code")
    ctx.set_step(REG_NAME, **(_carry(ctx) | {"tax": tax}))
    await prompt_name(ctx)


async def prompt_name(ctx: Context) -> None:
    rows = []
    if ctx.contact.display_name:
        rows.append([ctx.button("engine.btn.use_name", P.build(P.SKIP, "name"),
                                name=ctx.contact.display_name)])
    rows.append(cancel_row(ctx))
    ctx.say("engine.ask_name", buttons=rows)


async def handle_name(ctx: Context, text: str, *, after: AfterRegistration) -> None:
    if not has_words(text):
        raise InvalidInput("no words", key="engine.name_need_words")
    await _finish(ctx, people.clean_name(text, "name"), after)


async def skip_button(ctx: Context, arg: str, *, after: AfterRegistration,
                      other_skips: Mapping[str, Prompt]) -> None:
    """Skip buttons of the profile; other areas' skips (the rating comment) come in
    ``other_skips`` from whoever wires the router, so this module imports none of them."""
    if arg == "tax" and ctx.step == REG_TAX:
        ctx.set_step(REG_NAME, **(_carry(ctx) | {"tax": None}))
        await prompt_name(ctx)
    elif arg == "name" and ctx.step == REG_NAME and ctx.contact.display_name:
        await _finish(ctx, ctx.contact.display_name, after)
    elif arg in other_skips:
        await other_skips[arg](ctx)
    else:
        raise stale()


async def _finish(ctx: Context, contact_name: str, after: AfterRegistration) -> None:
    data = ctx.data
    if "org" not in data or "kind" not in data:
        raise stale()
    ctx.person = await people.register_reporter(
        ctx.uow, ctx.app, ctx.contact,
        organisation_name=data["org"], kind=OrgKind(data["kind"]), contact_name=contact_name,
        tax_code=data.get("tax"), language=ctx.lang,
    )
    ctx.clear_step()
    ctx.say("engine.registered", name=ctx.person.display_name, org=data["org"])
    await after(ctx, data)


def register(router: Router, *, after: AfterRegistration,
             other_skips: Mapping[str, Prompt] | None = None) -> None:
    """``after(ctx, data)`` continues once the profile is saved (``data`` carries what the
    person was doing: a pending report, or ``then``); ``other_skips`` maps other areas' skip
    buttons to their handlers."""
    skips = dict(other_skips or {})
    router.command("start", start)
    router.command("lang", lang_command, keeps_step=True)
    router.button(P.LANG, lang_button)
    router.button(P.ORG_KIND, kind_button)
    router.button(P.SKIP, partial(skip_button, after=after, other_skips=skips))
    router.step(REG_LANG, Step.choice(prompt_lang, frozenset({P.LANG}), alias=_lang_alias))
    router.step(REG_ORG, Step(handle_org, prompt_org))
    router.step(REG_KIND, Step.choice(prompt_kind, frozenset({P.ORG_KIND}), alias=_kind_alias))
    router.step(REG_TAX, Step(handle_tax, prompt_tax, frozenset({P.SKIP})))
    router.step(REG_NAME, Step(partial(handle_name, after=after), prompt_name, frozenset({P.SKIP})))
