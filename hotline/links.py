"""Absolute URLs the bot puts into chat messages (sign-in links, public status links).

Chat messages leave the server, so links must be absolute; they are built from
``HOTLINE_PUBLIC_BASE_URL`` (what a reverse proxy exposes) and fall back to the address the
server listens on, which is right for a laptop demo and wrong for production -- the docs say
to set the base URL.
"""

from __future__ import annotations

from urllib.parse import quote

from hotline.config import Settings

SIGNIN_PATH = "/signin/"
STATUS_PATH = "/status/"


def base_url(settings: Settings) -> str:
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/")
    host = settings.webhook_host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{settings.webhook_port}"


def signin_url(settings: Settings, token: str) -> str:
    return f"{base_url(settings)}{SIGNIN_PATH}{quote(token, safe='')}"


def status_path(ref: str, check_code: str) -> str:
    return f"{STATUS_PATH}{quote(ref, safe='')}/{quote(check_code, safe='')}"


def status_url(settings: Settings, ref: str, check_code: str) -> str:
    """The link a reporter's confirmation carries: the ref plus its check code, so that
    knowing (or guessing) a sequential ref is not enough to look a ticket up."""
    return base_url(settings) + status_path(ref, check_code)
