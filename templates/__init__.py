"""Jinja2 templates and message catalogues; a package only so they ship inside the wheel."""

from pathlib import Path

TEMPLATES_DIR = Path(__file__).resolve().parent
LOCALES_DIR = TEMPLATES_DIR / "locales"
