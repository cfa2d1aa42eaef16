"""Domain rules: plain Python, no I/O, so they test fast and exhaustively."""
