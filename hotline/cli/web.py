"""``hotline web``: serve the dashboard, the public board, status pages and the JSON API.

The same application ``hotline run`` mounts beside the chat webhooks; this command serves it
alone (polling-mode bots, or a separate web worker against the same database). ``--link
PERSON_ID`` prints a one-time sign-in link for someone who has no chat at hand (an operator
at the server), exactly what ``/web`` in the bot would send.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

import typer

from hotline.cli.common import console, opened_app, run_async
from hotline.errors import HotlineError


def web(
    host: str | None = typer.Option(None, help="address to listen on (default HOTLINE_WEBHOOK_HOST)"),
    port: int | None = typer.Option(None, min=0, max=65535,
                                    help="port (default HOTLINE_WEBHOOK_PORT)"),
    link: int | None = typer.Option(None, "--link", help="print a sign-in link for this person id and exit"),
) -> None:
    """Serve the web dashboard and the public board (Ctrl-C to stop)."""
    from hotline.config import load_settings

    settings = load_settings()
    listen_host = host or settings.webhook_host
    listen_port = settings.webhook_port if port is None else port

    if link is not None:
        run_async(lambda: _print_link(link))
        return

    async def _serve() -> None:
        from hotline.web.app import WebServer

        async with opened_app(settings) as hotline:
            server = WebServer(hotline, listen_host, listen_port)
            await server.start()
            console.print(f"web on {server.url}  (public board: {server.url}/board)",
                          highlight=False, markup=False)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, stop.set)
            try:
                await stop.wait()
            finally:
                await server.stop()

    run_async(_serve)


async def _print_link(person_id: int) -> None:
    from hotline.domain.ids import MAX_ROW_ID
    from hotline.services.signin import create_signin_link

    async with opened_app() as hotline:
        async with hotline.uow() as uow:
            in_range = 1 <= person_id <= MAX_ROW_ID  # a bigger number would overflow the driver
            person = await uow.people.get(person_id) if in_range else None
            if person is None or not person.active:
                raise HotlineError(f"no active person with id {person_id}")
            url = await create_signin_link(uow, hotline, person)
            await uow.commit()
    console.print(url, highlight=False, markup=False, soft_wrap=True)
