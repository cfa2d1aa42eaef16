"""Routes one inbound event to one small handler: a command, a button verb, or the current step.

The tables are filled by each area module's ``register`` function (common, registration,
reporter, staff, coordinator), so the engine holds no module-level state and every handler
stays a short function that reads like the conversation it implements.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from handlers.context import IDLE, Context, stale
from hotline.domain import payloads as P
from hotline.errors import HotlineError, InvalidInput

Handler = Callable[[Context, str], Awaitable[None]]
Prompt = Callable[[Context], Awaitable[None]]


@dataclass(frozen=True)
class Command:
    handler: Handler
    #: Commands such as /help and /lang leave the current flow where it was.
    keeps_step: bool = False


@dataclass(frozen=True)
class Step:
    """One question of a multi-message flow, stored in ``conversations.step``."""

    handle: Handler
    prompt: Prompt
    #: Button verbs that answer this step (any other button first leaves the step).
    buttons: frozenset[str] = frozenset()
    #: Run when the user moves on without answering (e.g. keep a rating given without comment).
    leave: Prompt | None = None


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
        if step is not None:
            await step.handle(ctx, text)
        else:
            assert self.idle is not None
            await self.idle(ctx, text)

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
