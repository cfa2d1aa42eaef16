"""The live dashboard, the public "three publicities" board, status lookups and the JSON API.

One aiohttp application (the framework the chat webhooks already use), server-rendered
Jinja2 pages, no front-end build and no scripts. Entry points:

* ``build_web_app(app)`` / ``setup_web(aiohttp_app, app)`` / ``WebServer`` (``hotline.web.app``);
* ``create_signin_link(uow, deps, person)`` for the bot's ``/web`` command (``signin``);
* ``status_url(settings, ref, check_code)`` for the reporter's confirmation (``links``).
"""

from hotline.links import status_url
from hotline.services.signin import create_signin_link

__all__ = ["create_signin_link", "status_url"]
