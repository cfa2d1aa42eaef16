"""HTTP clients for a Zalo Official Account: the Open API v3 message endpoint and OAuth v4.

Messages: ``POST {api}/v3.0/oa/message/cs`` with the access token in an ``access_token`` header
and ``{"recipient": {"user_id": ...}, "message": {...}}``. Failures come back as HTTP 200 with
``{"error": <negative code>, "message": ...}``; success is ``error: 0`` with
``data.message_id``. ``ZaloOAError`` carries the code; the sender decides what it means.

Tokens: ``POST {oauth}/v4/oa/access_token`` as a form (``refresh_token``, ``app_id``,
``grant_type=refresh_token``) with the *app* secret in a ``secret_key`` header. Success is
``{"access_token", "refresh_token", "expires_in": "90000"}`` (seconds, sent as a string);
failure is ``{"error": -14014, "error_name", "error_reason", "error_description"}``, sometimes
with HTTP 200, so the body decides, not the status.

No token or secret ever appears in an exception message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout

from bot import jsonbody
from bot.zalo.common import ZaloTransportError, redact

SEND_PATH = "/v3.0/oa/message/cs"
TOKEN_PATH = "/v4/oa/access_token"


class ZaloOAError(Exception):
    """``error != 0`` from the Open API."""

    def __init__(self, error: int, message: str) -> None:
        super().__init__(f"{error}: {message}")
        self.error = error
        self.message = message


class ZaloHTTPError(Exception):
    """An answer that is not the API's JSON (proxy error page, 5xx)."""

    def __init__(self, status: int, snippet: str) -> None:
        super().__init__(f"HTTP {status}: {snippet}")
        self.status = status


class ZaloOAuthError(Exception):
    """The token endpoint refused: an invalid, used or expired refresh token, a wrong secret."""

    def __init__(self, error: int | None, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description


@dataclass(frozen=True)
class TokenGrant:
    access_token: str
    refresh_token: str
    expires_in: int  # seconds


class _JsonClient:
    def __init__(self, *, session: ClientSession | None, timeout: float) -> None:
        self.timeout = timeout
        self._session = session
        self._owns_session = session is None

    async def _get_session(self) -> ClientSession:
        if self._session is None or self._session.closed:
            self._session = ClientSession()
            self._owns_session = True
        return self._session

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def _post(self, url: str, *, secrets: tuple[str, ...], **kwargs: Any) -> Any:
        session = await self._get_session()
        try:
            async with session.post(url, timeout=ClientTimeout(total=self.timeout), **kwargs) as response:
                raw = await response.read()
                status = response.status
        except ClientError as error:
            raise ZaloTransportError(redact(f"{type(error).__name__}: {error}", *secrets)) from None
        try:
            body = jsonbody.parse(raw)
        except ValueError:
            snippet = redact(raw[:200].decode("utf-8", "replace"), *secrets)
            raise ZaloHTTPError(status, snippet) from None
        if not isinstance(body, dict):
            raise ZaloHTTPError(status, "unexpected answer shape")
        if status >= 500:
            raise ZaloHTTPError(status, redact(str(body)[:200], *secrets))
        return body


def _code(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


class ZaloOAClient(_JsonClient):
    """Sends consultation ("cs") messages; the access token is passed per call."""

    def __init__(
        self, api_url: str = "https://openapi.zalo.me", *, session: ClientSession | None = None,
        timeout: float = 30.0,
    ) -> None:
        super().__init__(session=session, timeout=timeout)
        self.api_url = api_url.rstrip("/")

    async def send(self, access_token: str, user_id: str, message: dict[str, Any]) -> dict[str, Any]:
        """Send one message; return ``data`` (with ``message_id``) or raise ``ZaloOAError``."""
        body = await self._post(
            self.api_url + SEND_PATH,
            secrets=(access_token,),
            json={"recipient": {"user_id": user_id}, "message": message},
            headers={"access_token": access_token},
        )
        error = _code(body.get("error"))
        if error is None:
            raise ZaloHTTPError(200, "answer without an error code")
        if error != 0:
            raise ZaloOAError(error, redact(str(body.get("message") or "error"), access_token))
        data = body.get("data")
        return data if isinstance(data, dict) else {}


class ZaloOAuthClient(_JsonClient):
    """Exchanges a refresh token for a new access/refresh pair (the old refresh token dies)."""

    def __init__(
        self, oauth_url: str = "https://oauth.zaloapp.com", *, session: ClientSession | None = None,
        timeout: float = 15.0,
    ) -> None:
        super().__init__(session=session, timeout=timeout)
        self.oauth_url = oauth_url.rstrip("/")

    async def refresh(self, *, app_id: str, app_secret: str, refresh_token: str) -> TokenGrant:
        body = await self._post(
            self.oauth_url + TOKEN_PATH,
            secrets=(app_secret, refresh_token),
            data={"refresh_token": refresh_token, "app_id": app_id, "grant_type": "refresh_token"},
            headers={"secret_key": app_secret},
        )
        access, refresh = body.get("access_token"), body.get("refresh_token")
        error = _code(body.get("error"))
        if (error not in (None, 0)) or not isinstance(access, str) or not isinstance(refresh, str) \
                or not access or not refresh:
            description = next(
                (str(body[k]) for k in ("error_description", "error_reason", "error_name", "message")
                 if body.get(k)),
                "no token in the answer",
            )
            raise ZaloOAuthError(error, redact(description, app_secret, refresh_token))
        expires_in = _code(body.get("expires_in"))
        return TokenGrant(access, refresh, expires_in if expires_in and expires_in > 0 else 90000)
