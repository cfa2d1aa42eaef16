"""The Official Account webhook: signature first, then a fast 200, then the engine.

Zalo signs each delivery: ``X-ZEvent-Signature: mac=<hex>`` where the hex is
``sha256(app_id + raw body + timestamp + OA secret key)``, the timestamp being the event's own
``timestamp`` field. The MAC is computed over the raw bytes as received -- re-serialising the
JSON would change them -- and compared in constant time. A missing or wrong signature, or an
event for another app, is a 403 and nothing is read further, queued or stored.

Some deployments also send the timestamp in an ``X-ZEvent-Timestamp`` header; a MAC over that
value is accepted too (both require the secret). The header may come without the ``mac=``
prefix. An optional ``max_age`` refuses old events; it is off by default because Zalo re-delivers
a failed event for up to about two hours with its original timestamp, and the engine's
de-duplication on ``msg_id`` already makes a replay harmless.

Zalo expects the answer within two seconds and never redelivers what it got a 200 for. In
``hotline run`` an accepted event is recorded in the inbox (``bot.inbox``) before the 200, or
answered 503 when it cannot be stored within the window (Zalo retries), and processed from
there in chat order. A stand-alone app (``oa_webhook_app``) hands it to an ``InboundWorker``
instead. Follow/unfollow update the contact directly (``contacts``), not through the engine.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta

from aiohttp import web

from bot import jsonbody
from bot.inbox import InboxWorker, submit_or_record
from bot.zalo.common import EventHandler, as_str
from bot.zalo.inbound import InboundWorker
from bot.zalo.oa_mapping import FollowChange, event_to_inbound
from hotline.clock import Clock

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-ZEvent-Signature"
TIMESTAMP_HEADER = "X-ZEvent-Timestamp"
MAX_BODY = 256 * 1024

FollowHook = Callable[[FollowChange], Awaitable[object]]


def compute_mac(app_id: str, raw: bytes, timestamp: str, secret: str) -> str:
    """Zalo's webhook MAC: hex sha256 over app id, raw body, timestamp and OA secret key."""
    signed = app_id.encode("utf-8") + raw + timestamp.encode("utf-8") + secret.encode("utf-8")
    return hashlib.sha256(signed).hexdigest()


def signature_header(app_id: str, raw: bytes, timestamp: str, secret: str) -> str:
    return f"mac={compute_mac(app_id, raw, timestamp, secret)}"


def verify_signature(presented: str | None, raw: bytes, *, app_id: str, secret: str,
                     timestamps: list[str]) -> bool:
    if not presented or not secret or not app_id:
        return False
    value = presented.strip()
    if value.lower().startswith("mac="):
        value = value[4:].strip()
    value = value.lower().encode("ascii", "replace")
    matched = False
    for timestamp in timestamps:
        expected = compute_mac(app_id, raw, timestamp, secret).encode("ascii")
        # No early exit: every candidate is compared, in constant time.
        matched = hmac.compare_digest(value, expected) | matched
    return matched


#: ``"timestamp": "1700000000000"`` (or a bare number) in the raw body; the first few only.
_TIMESTAMP = re.compile(rb'"timestamp"\s*:\s*"?(\d{1,20})"?')
_MAX_TIMESTAMPS = 4


def raw_timestamps(raw: bytes) -> list[str]:
    """Candidate event timestamps read from the raw body without parsing it (the signature
    covers one of them); a handful at most, so a body full of them costs nothing."""
    found: list[str] = []
    for match in _TIMESTAMP.finditer(raw):
        found.append(match.group(1).decode("ascii"))
        if len(found) == _MAX_TIMESTAMPS:
            break
    return found


def _millis(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


class OAWebhook:
    """The request handler; mount with ``add_oa_webhook_route`` or ``oa_webhook_app``."""

    def __init__(
        self,
        *,
        app_id: str,
        secret: str,
        worker: InboundWorker | InboxWorker,
        on_follow: FollowHook | None = None,
        clock: Clock | None = None,
        max_age: timedelta | None = None,
    ) -> None:
        if not app_id or not secret:
            raise ValueError("the OA webhook needs the app id and the OA secret key")
        self.app_id = app_id
        self.secret = secret
        self.worker = worker
        self.on_follow = on_follow
        self.clock = clock
        self.max_age = max_age
        self.refused = 0
        self.accepted = 0

    def _refuse(self, reason: str, request: web.Request) -> web.Response:
        self.refused += 1
        log.warning("zalo oa webhook refused (%s) from %s", reason, request.remote)
        return web.json_response({"error": -1, "message": "forbidden"}, status=403)

    async def handle(self, request: web.Request) -> web.Response:
        presented = request.headers.get(SIGNATURE_HEADER)
        if not presented:
            return self._refuse("no signature", request)
        if request.content_length is not None and request.content_length > MAX_BODY:
            return web.json_response({"error": -1, "message": "too large"}, status=413)
        raw = await request.content.read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            return web.json_response({"error": -1, "message": "too large"}, status=413)
        # The signature is checked before the body is parsed: the timestamp it covers is read
        # from the raw bytes, so nobody without the OA secret key gets the parser to work.
        timestamps = [*raw_timestamps(raw), request.headers.get(TIMESTAMP_HEADER) or ""]
        timestamps = [t for t in dict.fromkeys(timestamps) if t]
        if not verify_signature(
            presented, raw, app_id=self.app_id, secret=self.secret, timestamps=timestamps
        ):
            return self._refuse("bad signature", request)
        try:
            payload = jsonbody.parse(raw, max_bytes=MAX_BODY)
        except jsonbody.BadBody as bad:
            log.warning("zalo oa webhook: signed body refused (%s)", bad.reason)
            return web.json_response({"error": -1, "message": "bad request"}, status=400)
        if not isinstance(payload, dict):
            log.warning("zalo oa webhook: signed body is not an object")
            return web.json_response({"error": -1, "message": "bad request"}, status=400)
        if as_str(payload.get("app_id")) not in (None, self.app_id):
            return self._refuse("event for another app", request)
        if self.max_age is not None and self.clock is not None:
            sent_ms = _millis(as_str(payload.get("timestamp")) or request.headers.get(TIMESTAMP_HEADER))
            age_ms = self.clock.now().timestamp() * 1000 - sent_ms if sent_ms is not None else None
            if age_ms is None or age_ms > self.max_age.total_seconds() * 1000:
                return self._refuse("event too old or undated", request)
        self.accepted += 1
        mapped = event_to_inbound(payload)
        if isinstance(mapped, FollowChange):
            if self.on_follow is not None:
                try:
                    await self.on_follow(mapped)
                except Exception:
                    log.exception("zalo oa: follow/unfollow of %s not recorded", mapped.user_id)
                    return web.json_response({"error": -1, "message": "retry later"}, status=500)
        elif mapped is not None and not await submit_or_record(self.worker, mapped, raw):
            # Not stored within Zalo's window: a non-2xx answer makes Zalo deliver it again.
            return web.json_response({"error": -1, "message": "retry later"}, status=503)
        return web.json_response({"error": 0, "message": "Success"})


def add_oa_webhook_route(app: web.Application, *, path: str, webhook: OAWebhook) -> None:
    app.router.add_post(path, webhook.handle)


def oa_webhook_app(
    *,
    path: str,
    app_id: str,
    secret: str,
    handler: EventHandler,
    on_follow: FollowHook | None = None,
    worker: InboundWorker | None = None,
    clock: Clock | None = None,
    max_age: timedelta | None = None,
) -> tuple[web.Application, OAWebhook]:
    """A stand-alone aiohttp app for the OA webhook; drains its worker on shutdown."""
    worker = worker or InboundWorker(handler)
    webhook = OAWebhook(app_id=app_id, secret=secret, worker=worker, on_follow=on_follow,
                        clock=clock, max_age=max_age)
    app = web.Application(client_max_size=MAX_BODY)
    add_oa_webhook_route(app, path=path, webhook=webhook)

    async def _drain(_app: web.Application) -> None:
        await worker.drain()

    app.on_shutdown.append(_drain)
    return app, webhook
