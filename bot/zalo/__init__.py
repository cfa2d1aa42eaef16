"""Zalo channels: the Zalo Bot Platform (``zalo_bot``) and a Zalo Official Account (``zalo_oa``).

Both feed the same engine through ``hotline.messages.InboundEvent`` and are fed by the same
outbox through ``bot.delivery.ChannelSender``; which ones run is decided by configuration
(``bot.zalo.setup``). Neither has Telegram's HTML: texts are sent as plain text, cut at 2000
characters on line boundaries.

- Bot Platform: ``bot_api`` (HTTP client), ``bot_mapping`` (update -> event), ``bot_intake``
  (long polling and webhook), ``bot_sender``.
- Official Account: ``oa_api`` (message and OAuth clients), ``oa_tokens`` (rotating token pair
  in the database), ``oa_mapping`` (webhook event -> event), ``oa_intake`` (signed webhook),
  ``oa_sender``, ``contacts`` (follow/unfollow).
- Shared: ``common`` (plain text, splitting, redaction), ``inbound`` (fast webhook answers,
  per-chat order), ``choices`` (numbered choices over ``bot.numbered``), ``setup`` (which
  channels run, from configuration).
"""
