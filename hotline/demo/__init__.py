"""The scripted demo behind ``hotline demo`` (README's first command)."""
