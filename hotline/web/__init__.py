"""The live dashboard, the public "three publicities" board, status lookups and the JSON API.

One aiohttp application (the framework the chat webhooks already use), server-rendered
Jinja2 pages, no front-end build and no scripts. Entry points:

* ``build_web_app(app)`` / ``setup_web(aiohttp_app, app)`` / ``WebServer`` (``hotline.web.app``);

The bot's ``/web`` sign-in link (``hotline.services.signin``) and the reporter's status link
(``hotline.links``) live below this package, so chat handlers never import the web.
"""
