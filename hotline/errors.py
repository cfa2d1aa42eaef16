"""Errors that reach users carry a catalogue key, so every channel can say them in the user's language."""

from __future__ import annotations

from typing import Any


class HotlineError(Exception):
    """Base for expected, user-explainable failures (bad input, forbidden action).

    ``key`` names a message in ``templates/locales/<lang>/*.toml``; ``params`` fill it.
    ``str(error)`` is an English sentence for logs and the CLI.
    """

    key: str = "error.generic"

    def __init__(self, message: str, *, key: str | None = None, **params: Any) -> None:
        super().__init__(message)
        if key is not None:
            self.key = key
        self.params = params


class NotFound(HotlineError):
    key = "error.not_found"


class Forbidden(HotlineError):
    key = "error.forbidden"


class InvalidInput(HotlineError):
    key = "error.invalid_input"


class ConfigError(HotlineError):
    key = "error.config"
