"""Routes one inbound event to one small handler: a command, a button verb, or the current step.

The tables are filled by each area module's ``register`` function (common, registration,
reporter, staff, coordinator), so the engine holds no module-level state and every handler
stays a short function that reads like the conversation it implements.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from handlers import choices
from handlers.context import IDLE, Context, stale
from hotline.domain import payloads as P
from hotline.errors import HotlineError, InvalidInput
from hotline.messages import Button

Handler = Callable[[Context, str], Awaitable[None]]
Prompt = Callable[[Context], Awaitable[None]]


@dataclass(frozen=True)
class Command:
    handler: Handler
    #: Commands such as /help and /lang leave the current flow where it was.
    keeps_step: bool = False


@dataclass(frozen=True)
class Step:
    """One question of a multi-message flow, stored in ``conversations.step``.

    ``handle`` takes a typed answer; a step without one is a choice prompt (``Step.choice``):
    typed text must name one of the buttons its prompt offers (see ``handlers.choices``).
    """

    handle: Handler | None
    prompt: Prompt
    #: Button verbs that answer this step (any other button first leaves the step).
    buttons: frozenset[str] = frozenset()
    #: Run when the user moves on without answering (e.g. keep a rating given without comment).
    leave: Prompt | None = None
    #: A choice step's answer to photos or documents sent without a caption (else refused).
    attach: Prompt | None = None
    #: A choice step's other words for its choices (typed text -> payload, or None).
    alias: Callable[[str], str | None] | None = None

    @classmethod
    def choice(cls, prompt: Prompt, buttons: frozenset[str], *, leave: Prompt | None = None,
               attach: Prompt | None = None,
               alias: Callable[[str], str | None] | None = None) -> Step:
        """A question answered only by one of its buttons (tapped, numbered or named) or a
        command; anything else re-asks it with the valid range."""
        return cls(None, prompt, buttons, leave, attach, alias)


@dataclass
class Router:
    commands: dict[str, Command] = field(default_factory=dict)
    buttons: dict[str, Handler] = field(default_factory=dict)
    steps: dict[str, Step] = field(default_factory=dict)
    idle: Handler | None = None
    unsupported: Prompt | None = None

    def command(self, name: str, handler: Handler, *, keeps_step: bool = False) -> None:
        self.commands[name] = Command(handler, keeps_step)

    def button(self, verb: str, handler: Handler) -> None:
        self.buttons[verb] = handler

    def step(self, name: str, step: Step) -> None:
        self.steps[name] = step

    async def dispatch(self, ctx: Context) -> None:
        event = ctx.event
        if event.kind == "unsupported":
            assert self.unsupported is not None
            await self.unsupported(ctx)
            await self.reprompt(ctx)
            return
        if event.kind == "button":
            await self._button(ctx)
            return
        text = event.text or ""
        limit = ctx.app.settings.max_message_chars
        if len(text) > limit:
            raise InvalidInput("message too long", key="error.text_too_long", limit=limit)
        text = text.strip()
        if text.startswith("/"):
            await self._command(ctx, text)
            return
        if not text and not event.attachments:
            raise InvalidInput("empty message", key="error.empty_text")
        step = self.current_step(ctx)
        if step is not None and step.handle is None:
            await self._choose(ctx, step, text)
        elif step is not None:
            await step.handle(ctx, text)
        else:
            number = choices.number_of(text)
            if number is not None and event.menu_size:  # a numbered menu is on screen
                raise choices.refuse_number(number, event.menu_size)
            assert self.idle is not None
            await self.idle(ctx, text)

    async def offered(self, ctx: Context, step: Step) -> list[Button]:
        """The buttons ``step``'s prompt shows now (asked of the prompt itself, so the choices
        accepted are always exactly the choices shown)."""
        scratch = replace(ctx, replies=[])
        await step.prompt(scratch)
        return choices.offered(scratch.replies)

    async def _choose(self, ctx: Context, step: Step, text: str) -> None:
        """A typed answer at a choice prompt: a button press by number or label, or refused."""
        if not text and ctx.event.attachments and step.attach is not None:
            await step.attach(ctx)
            return
        buttons = await self.offered(ctx, step)
        # On a numbered channel a number in range was already turned into its press at intake
        # (the menu may number several messages); one that reaches here named no line of it.
        button = choices.pick(text, buttons, by_number=not ctx.event.menu_size)
        payload = button.payload if button is not None else None
        if payload is None and step.alias is not None:
            payload = step.alias(text)
        if payload is None or payload not in {b.payload for b in buttons}:
            raise choices.refuse(len(buttons))
        ctx.event = replace(ctx.event, kind="button", payload=payload, text=None,
                            attachments=())
        await self._button(ctx)

    def current_step(self, ctx: Context) -> Step | None:
        """The step the caller is in; an unknown name (older release) counts as idle."""
        if ctx.step == IDLE:
            return None
        return self.steps.get(ctx.step)

    async def leave_step(self, ctx: Context) -> None:
        step = self.current_step(ctx)
        if step is not None and step.leave is not None:
            await step.leave(ctx)
        if ctx.step != IDLE:
            ctx.clear_step()

    async def cancel(self, ctx: Context) -> None:
        """/cancel and the cancel button: leave any flow; nothing half-done is kept."""
        step = self.current_step(ctx)
        if ctx.step == IDLE:
            ctx.say("engine.nothing_to_cancel")
            return
        await self.leave_step(ctx)
        if step is None or step.leave is None:  # a leave hook says what it kept
            ctx.say("engine.cancelled")

    async def _command(self, ctx: Context, text: str) -> None:
        head, _, rest = text.partition(" ")
        if "\n" in head:  # "/add\nlong text" typed on a phone
            head, _, more = head.partition("\n")
            rest = (more + " " + rest).strip()
        name = head[1:].split("@", 1)[0].lower()  # "/status@HotlineBot" in group chats
        if name == "cancel":
            await self.cancel(ctx)
            return
        command = self.commands.get(name)
        if command is None:
            raise HotlineError(f"unknown command /{name[:20]}", key="engine.unknown_command")
        if not command.keeps_step:
            await self.leave_step(ctx)
        await command.handler(ctx, rest.strip())
        if command.keeps_step:
            await self.reprompt(ctx)  # /help or /lang in the middle of a flow: ask again

    async def _button(self, ctx: Context) -> None:
        payload = P.parse(ctx.event.payload)
        if payload.verb == P.CANCEL:
            await self.cancel(ctx)
            return
        handler = self.buttons.get(payload.verb)
        if handler is None:
            raise stale()
        step = self.current_step(ctx)
        if step is not None and payload.verb not in step.buttons:
            await self.leave_step(ctx)
        await handler(ctx, payload.arg)

    async def reprompt(self, ctx: Context) -> None:
        step = self.current_step(ctx)
        if step is not None:
            await step.prompt(ctx)
