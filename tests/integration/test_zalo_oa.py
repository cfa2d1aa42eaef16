"""Zalo Official Account adapter against the fake OA platform over real HTTP on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.zalo.contacts import set_contact_active
from bot.zalo.inbound import InboundWorker
from bot.zalo.oa_api import ZaloOAClient, ZaloOAuthClient
from bot.zalo.oa_intake import compute_mac, oa_webhook_app, verify_signature
from bot.zalo.oa_mapping import FollowChange, event_to_inbound
from bot.zalo.oa_sender import ZaloOASender
from bot.zalo.oa_tokens import TOKEN_KEY, OATokenManager, TokenState
from hotline.clock import ManualClock
from hotline.config import Settings
from hotline.deps import App
from hotline.messages import Button, OutboundMessage
from hotline.services.app import open_app
from storage.models import Contact, InboundUpdate, KeyValue
from tests.fakes.zalo_helpers import Recorder, serve
from tests.fakes.zalo_oa_api import APP_ID, APP_SECRET, OA_SECRET_KEY, FakeZaloOAServer

pytest_plugins = ["tests.fakes.zalo_fixtures"]

USER = "6142494823123456789"
PATH = "/zalo/oa/webhook"


def manager(app: App, server: FakeZaloOAServer, oauth: ZaloOAuthClient, *, refresh: str,
            access: str | None = None, **kw: object) -> OATokenManager:
    return OATokenManager(app, oauth, app_id=APP_ID, app_secret=APP_SECRET,
                          seed_refresh_token=refresh, seed_access_token=access, **kw)  # type: ignore[arg-type]


@pytest.fixture
async def clients(zalo_oa_server: FakeZaloOAServer) -> AsyncIterator[tuple[ZaloOAClient, ZaloOAuthClient]]:
    api = ZaloOAClient(zalo_oa_server.base_url, timeout=5)
    oauth = ZaloOAuthClient(zalo_oa_server.base_url, timeout=5)
    try:
        yield api, oauth
    finally:
        await api.close()
        await oauth.close()


@pytest.fixture
def seed(zalo_oa_server: FakeZaloOAServer) -> tuple[str, str]:
    return zalo_oa_server.issue_tokens()


@pytest.fixture
def tokens(app: App, zalo_oa_server: FakeZaloOAServer, clients, seed) -> OATokenManager:
    access, refresh = seed
    return manager(app, zalo_oa_server, clients[1], refresh=refresh, access=access)


@pytest.fixture
def sender(clients, tokens: OATokenManager) -> ZaloOASender:
    return ZaloOASender(clients[0], tokens, rate_limit_backoff=42.0, timeout=2.0)


def message(text: str, **kw: object) -> OutboundMessage:
    return OutboundMessage(channel="zalo_oa", chat_id=USER, text=text, **kw)  # type: ignore[arg-type]


# --- webhook signature --------------------------------------------------------------------------


def test_mac_is_sha256_of_app_id_raw_body_timestamp_and_oa_secret() -> None:
    import hashlib

    raw = b'{"event_name":"user_send_text","timestamp":"1699003881354"}'
    expected = hashlib.sha256(b"app" + raw + b"1699003881354" + b"secret").hexdigest()
    assert compute_mac("app", raw, "1699003881354", "secret") == expected
    for header in (f"mac={expected}", expected, f"MAC={expected.upper()}", f" mac={expected} "):
        assert verify_signature(header, raw, app_id="app", secret="secret", timestamps=["1699003881354"])
    for header in (None, "", "mac=", f"mac={expected[:-1]}0", expected + "00"):
        assert not verify_signature(header, raw, app_id="app", secret="secret", timestamps=["1699003881354"])
    assert not verify_signature(expected, raw + b" ", app_id="app", secret="secret",
                                timestamps=["1699003881354"])


@pytest.fixture
async def webhook(app: App, zalo_oa_server: FakeZaloOAServer):
    recorder = Recorder()

    async def on_follow(change: FollowChange) -> None:
        await set_contact_active(app, "zalo_oa", change.user_id, change.active)

    web_app, hook = oa_webhook_app(path=PATH, app_id=APP_ID, secret=OA_SECRET_KEY, handler=recorder,
                                   on_follow=on_follow)
    async with serve(web_app) as base:
        yield base + PATH, recorder, hook


async def test_signed_events_are_accepted_with_or_without_the_mac_prefix(
    webhook, zalo_oa_server: FakeZaloOAServer
) -> None:
    url, recorder, hook = webhook
    for prefix in (True, False):
        status, body, _ = await zalo_oa_server.push_event(url, zalo_oa_server.text_event(USER, "xin chào"),
                                                          prefix=prefix)
        assert status == 200 and '"error": 0' in body
    await hook.worker.drain()
    assert [(e.kind, e.text, e.user_id, e.chat_id) for e in recorder.events] == [
        ("message", "xin chào", USER, USER)] * 2


async def test_a_bad_or_missing_signature_is_refused_and_changes_nothing(
    app: App, webhook, zalo_oa_server: FakeZaloOAServer
) -> None:
    url, recorder, hook = webhook
    async with app.uow() as uow:
        uow.session.add(Contact(channel="zalo_oa", external_id=USER, chat_id=USER, active=True,
                                created_at=app.clock.now()))
        await uow.commit()
    attacks: dict[str, dict[str, object]] = {
        "missing": {"signed": False},
        "wrong_secret": {"secret": "not-the-oa-secret"},
        "tampered": {"tamper": True},
        "garbage": {"signature": "mac=" + "0" * 64},
        "other_app": {},
    }
    for attack, options in attacks.items():
        unfollow = zalo_oa_server.follow_event(USER, follow=False)  # would deactivate the contact
        text = zalo_oa_server.text_event(USER, "hi")
        if attack == "other_app":  # well signed, but for another app
            unfollow, text = (dict(e, app_id="1111111111111111111") for e in (unfollow, text))
        for event in (unfollow, text):
            status, _, _ = await zalo_oa_server.push_event(url, event, **options)  # type: ignore[arg-type]
            assert status == 403, attack
    await hook.worker.drain()
    assert recorder.calls == 0 and hook.refused == 2 * len(attacks)
    async with app.uow() as uow:
        contact = await uow.people.contact("zalo_oa", USER)
        assert contact is not None and contact.active
        assert (await uow.session.execute(select(InboundUpdate))).first() is None


async def test_unfollow_deactivates_the_contact_and_follow_brings_it_back(
    app: App, webhook, zalo_oa_server: FakeZaloOAServer
) -> None:
    url, recorder, _ = webhook
    async with app.uow() as uow:
        uow.session.add(Contact(channel="zalo_oa", external_id=USER, chat_id=USER, active=True,
                                created_at=app.clock.now()))
        await uow.commit()
    assert (await zalo_oa_server.push_event(url, zalo_oa_server.follow_event(USER, follow=False)))[0] == 200
    async with app.uow() as uow:
        assert not (await uow.people.contact("zalo_oa", USER)).active  # type: ignore[union-attr]
    assert (await zalo_oa_server.push_event(url, zalo_oa_server.follow_event(USER)))[0] == 200
    assert (await zalo_oa_server.push_event(url, zalo_oa_server.follow_event("stranger")))[0] == 200
    async with app.uow() as uow:
        assert (await uow.people.contact("zalo_oa", USER)).active  # type: ignore[union-attr]
        assert await uow.people.contact("zalo_oa", "stranger") is None
    assert recorder.calls == 0  # not conversation turns


async def test_zalo_gets_its_answer_within_two_seconds_while_a_slow_engine_runs(
    zalo_oa_server: FakeZaloOAServer,
) -> None:
    slow = Recorder(delay=2.1)
    worker = InboundWorker(slow, budget=0.5)
    web_app, _ = oa_webhook_app(path=PATH, app_id=APP_ID, secret=OA_SECRET_KEY, handler=slow, worker=worker)
    async with serve(web_app) as base:
        event = zalo_oa_server.text_event(USER, "chậm")
        status, _, took = await zalo_oa_server.push_event(base + PATH, event)
        assert status == 200 and took < 1.0
        assert slow.events == []
        await worker.drain()
    assert [e.text for e in slow.events] == ["chậm"]


async def test_a_duplicate_msg_id_is_processed_once(webhook, zalo_oa_server: FakeZaloOAServer) -> None:
    url, recorder, hook = webhook
    event = zalo_oa_server.text_event(USER, "một lần thôi", msg_id="cb31dff1c39642cc1b83")
    for _ in range(3):
        assert (await zalo_oa_server.push_event(url, event))[0] == 200
    await hook.worker.drain()
    assert [e.update_id for e in recorder.events] == ["cb31dff1c39642cc1b83"]
    assert hook.worker.duplicates == 2


# --- mapping -----------------------------------------------------------------------------------


def test_images_files_stickers_and_button_payloads_map(zalo_oa_server: FakeZaloOAServer) -> None:
    server = zalo_oa_server
    image = event_to_inbound(server.image_event(USER, text="ảnh hiện trường"))
    assert image.kind == "message" and image.text == "ảnh hiện trường"  # type: ignore[union-attr]
    assert image.attachments[0].kind == "photo"  # type: ignore[union-attr]
    doc = event_to_inbound(server.file_event(USER, name="cong-van.pdf"))
    assert doc.attachments[0].kind == "document" and doc.attachments[0].file_name == "cong-van.pdf"  # type: ignore[union-attr]
    assert event_to_inbound(server.sticker_event(USER)).kind == "unsupported"  # type: ignore[union-attr]
    press = event_to_inbound(server.text_event(USER, "ack:HL-2026-000001"))
    assert (press.kind, press.payload, press.text) == ("button", "ack:HL-2026-000001", None)  # type: ignore[union-attr]
    typed = event_to_inbound(server.text_event(USER, "ack: HL-2026-000001 please"))
    assert typed.kind == "message"  # type: ignore[union-attr]
    assert event_to_inbound(server.follow_event(USER)) == FollowChange(USER, True)
    oa_echo = dict(server.text_event(USER, "x"), event_name="oa_send_text")
    assert event_to_inbound(oa_echo) is None
    assert event_to_inbound({"event_name": "user_send_text", "sender": {}, "message": {}}) is None
    assert event_to_inbound([1, 2]) is None


# --- sending -----------------------------------------------------------------------------------


async def test_text_goes_out_plain_with_template_buttons(
    sender: ZaloOASender, zalo_oa_server: FakeZaloOAServer
) -> None:
    buttons = ((Button("Tiếp nhận", "ack:HL-2026-000001"), Button("Từ chối", "rej:HL-2026-000001")),)
    result = await sender.send(message("<b>Phiếu mới</b>\nHL-2026-000001 &amp; chi tiết", buttons=buttons))
    [sent] = zalo_oa_server.sent(USER)
    assert result.ok and result.message_id == sent.message_id
    assert sent.text == "Phiếu mới\nHL-2026-000001 & chi tiết"
    assert sent.buttons == [
        {"title": "Tiếp nhận", "type": "oa.query.hide", "payload": "ack:HL-2026-000001"},
        {"title": "Từ chối", "type": "oa.query.hide", "payload": "rej:HL-2026-000001"},
    ]


async def test_a_3000_character_reply_arrives_as_two_messages_in_order_buttons_on_the_last(
    sender: ZaloOASender, zalo_oa_server: FakeZaloOAServer
) -> None:
    text = "\n".join(f"{i:03d} hồ sơ đang chờ bổ sung giấy tờ của doanh nghiệp" for i in range(100))[:3000]
    result = await sender.send(message(text, buttons=((Button("Xem", "open:HL-2026-000002"),),)))
    first, second = zalo_oa_server.sent(USER)
    assert result.ok and len(first.text) <= 2000 and len(second.text) <= 2000  # type: ignore[arg-type]
    assert f"{first.text}\n{second.text}" == text.rstrip()
    assert first.buttons == [] and [b["payload"] for b in second.buttons] == ["open:HL-2026-000002"]


async def test_too_many_buttons_become_numbered_choices(
    app: App, clients, tokens: OATokenManager, zalo_oa_server: FakeZaloOAServer
) -> None:
    from bot import numbered
    from bot.zalo.choices import NumberedMenus

    sender = ZaloOASender(clients[0], tokens, menus=NumberedMenus(app))
    buttons = tuple((Button(f"Nhóm {i}", f"reag:HL-2026-000003.g{i}"),) for i in range(7))
    assert (await sender.send(message("Chọn nhóm:", buttons=buttons))).ok
    [sent] = zalo_oa_server.sent(USER)
    assert sent.buttons == [] and sent.text.splitlines()[1:3] == ["  [1] Nhóm 0", "  [2] Nhóm 1"]  # type: ignore[union-attr]
    async with app.uow() as uow:
        assert len(await numbered.remembered(uow, "zalo_oa", USER)) == 7


async def test_an_expired_token_is_refreshed_once_and_the_message_still_goes_out(
    app: App, sender: ZaloOASender, tokens: OATokenManager, zalo_oa_server: FakeZaloOAServer, seed
) -> None:
    access, refresh = seed
    assert (await sender.send(message("trước"))).ok
    zalo_oa_server.expire_access_token(access)
    result = await sender.send(message("sau khi hết hạn"))
    assert result.ok, result.error
    assert zalo_oa_server.successful_refreshes == 1 and len(zalo_oa_server.oauth_calls) == 1
    call = zalo_oa_server.oauth_calls[0]
    assert call.form == {"refresh_token": refresh, "app_id": APP_ID, "grant_type": "refresh_token"}
    assert call.secret_key == APP_SECRET
    first, second = zalo_oa_server.sent(USER)
    assert first.access_token == access and second.access_token != access
    stored = await tokens.current()
    assert stored is not None and stored.refresh_token == zalo_oa_server.refresh_token != refresh
    assert stored.access_token == second.access_token
    assert stored.expires_at == app.clock.now() + timedelta(seconds=90000)


async def test_a_rotated_refresh_token_survives_a_restart(
    app: App, settings: Settings, clock: ManualClock, clients, zalo_oa_server: FakeZaloOAServer, seed
) -> None:
    access, refresh = seed
    first = manager(app, zalo_oa_server, clients[1], refresh=refresh, access=access)
    zalo_oa_server.expire_access_token(access)
    assert (await ZaloOASender(clients[0], first).send(message("một"))).ok
    rotated = zalo_oa_server.refresh_token
    assert rotated != refresh and refresh in zalo_oa_server.spent_refresh_tokens
    zalo_oa_server.expire_all_access_tokens()

    # A new process on the same database, with the same (now spent) seed in its environment.
    restarted = await open_app(settings, clock, create_tables=False, sync_groups=False)
    try:
        second = manager(restarted, zalo_oa_server, clients[1], refresh=refresh, access=access)
        assert (await second.current()).refresh_token == rotated  # type: ignore[union-attr]
        assert (await ZaloOASender(clients[0], second).send(message("hai"))).ok
    finally:
        await restarted.close()
    assert [c.form["refresh_token"] for c in zalo_oa_server.oauth_calls] == [refresh, rotated]
    assert zalo_oa_server.successful_refreshes == 2


async def test_a_newly_configured_refresh_token_replaces_the_stored_pair(
    app: App, clients, zalo_oa_server: FakeZaloOAServer, seed
) -> None:
    access, refresh = seed
    old = manager(app, zalo_oa_server, clients[1], refresh=refresh, access=access)
    assert await old.access_token() == access
    new_access, new_refresh = zalo_oa_server.issue_tokens()  # the operator re-authorised the OA
    again = manager(app, zalo_oa_server, clients[1], refresh=new_refresh, access=new_access)
    assert await again.access_token() == new_access
    assert (await again.current()).refresh_token == new_refresh  # type: ignore[union-attr]


async def test_two_workers_refreshing_at_once_call_the_endpoint_once(
    app: App, settings: Settings, clock: ManualClock, clients, zalo_oa_server: FakeZaloOAServer, seed
) -> None:
    access, refresh = seed
    other_app = await open_app(settings, clock, create_tables=False, sync_groups=False)
    oauth2 = ZaloOAuthClient(zalo_oa_server.base_url, timeout=5)
    try:
        one = manager(app, zalo_oa_server, clients[1], refresh=refresh, access=access)
        two = manager(other_app, zalo_oa_server, oauth2, refresh=refresh, access=access)
        assert await one.access_token() == access  # seeds the row
        zalo_oa_server.delay_oauth(0.3)
        a, b = await asyncio.gather(one.refresh(access), two.refresh(access))
    finally:
        await oauth2.close()
        await other_app.close()
    assert a == b != access
    assert len(zalo_oa_server.oauth_calls) == 1 and zalo_oa_server.successful_refreshes == 1


async def test_the_token_is_refreshed_ahead_of_expiry(
    app: App, clock: ManualClock, sender: ZaloOASender, tokens: OATokenManager,
    zalo_oa_server: FakeZaloOAServer,
) -> None:
    zalo_oa_server.expire_all_access_tokens()
    assert (await sender.send(message("1"))).ok  # refused seed token -> refreshed
    assert zalo_oa_server.successful_refreshes == 1
    clock.advance(hours=23)
    assert (await sender.send(message("2"))).ok
    assert zalo_oa_server.successful_refreshes == 1  # 2 h left: fine
    clock.advance(minutes=90)
    assert await tokens.refresh_if_due()  # 30 min left < 1 h margin
    assert (await sender.send(message("3"))).ok
    assert zalo_oa_server.successful_refreshes == 2
    assert len(zalo_oa_server.send_calls) == 4  # the refused one, then three that went out


async def test_rate_limit_backs_off_without_retrying_here(
    sender: ZaloOASender, zalo_oa_server: FakeZaloOAServer
) -> None:
    zalo_oa_server.fail_next(-32)
    result = await sender.send(message("x"))
    assert (result.status, result.retry_after) == ("retry_after", 42.0) and result.retryable
    assert len(zalo_oa_server.send_calls) == 1 and zalo_oa_server.sent(USER) == []
    assert (await sender.send(message("x"))).ok  # the dispatcher's later retry


async def test_outside_the_messaging_window_is_undeliverable_and_never_retried(
    sender: ZaloOASender, zalo_oa_server: FakeZaloOAServer
) -> None:
    for calls, code in enumerate((-213, -230, -232), start=1):
        zalo_oa_server.fail_user(USER, code)
        result = await sender.send(message("x\n" * 1500))  # two pieces: stops at the first
        assert result.status == "blocked" and not result.retryable
        assert "undeliverable" in (result.error or "") and str(code) in (result.error or "")
        assert len(zalo_oa_server.send_calls) == calls and zalo_oa_server.oauth_calls == []


async def test_transport_failures_are_transient(
    clients, tokens: OATokenManager, zalo_oa_server: FakeZaloOAServer
) -> None:
    sender = ZaloOASender(clients[0], tokens, timeout=0.4)
    zalo_oa_server.fail_http(502)
    assert (await sender.send(message("x"))).status == "transient"
    zalo_oa_server.hang(3.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert (await sender.send(message("x"))).status == "transient"
    assert loop.time() - started < 1.5
    zalo_oa_server.fail_next(-201, message="recipient is invalid")
    assert (await sender.send(message("x"))).status == "permanent"


async def test_a_token_refused_again_after_refresh_waits_for_the_operator(
    sender: ZaloOASender, tokens: OATokenManager, zalo_oa_server: FakeZaloOAServer, seed
) -> None:
    zalo_oa_server.expire_access_token(seed[0])
    zalo_oa_server.fail_next(-216, times=5)  # even the fresh token is refused
    result = await sender.send(message("x"))
    assert result.status == "transient" and "after refresh" in (result.error or "")
    assert zalo_oa_server.successful_refreshes == 1  # refreshed once, not in a loop


async def test_a_failed_refresh_keeps_the_message_and_leaks_no_secret(
    sender: ZaloOASender, zalo_oa_server: FakeZaloOAServer, seed
) -> None:
    access, refresh = seed
    zalo_oa_server.expire_access_token(access)
    zalo_oa_server.fail_next_oauth(-14014, reason="Invalid refresh token")
    result = await sender.send(message("x"))
    assert result.status == "transient" and "refresh failed" in (result.error or "")
    for secret in (access, refresh, APP_SECRET):
        assert secret not in (result.error or "")
    assert zalo_oa_server.sent(USER) == []


async def test_no_stored_pair_and_no_seed_is_a_clear_configuration_error(app: App, clients) -> None:
    from hotline.errors import ConfigError

    bare = OATokenManager(app, clients[1], app_id=APP_ID, app_secret=APP_SECRET)
    with pytest.raises(ConfigError, match="HOTLINE_ZALO_OA_REFRESH_TOKEN"):
        await bare.access_token()
    async with app.uow() as uow:
        assert await uow.session.get(KeyValue, TOKEN_KEY) is None


def test_token_state_round_trips() -> None:
    from datetime import UTC, datetime

    state = TokenState("a", "r", datetime(2026, 12, 7, tzinfo=UTC), seed="s", refreshed_at=None)
    assert TokenState.from_json(state.to_json()) == state
