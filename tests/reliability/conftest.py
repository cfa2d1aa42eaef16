"""The reliability suite's end-of-run summary (see ``tally``)."""

from __future__ import annotations

import pytest

from tests.reliability.tally import summary_line


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    line = summary_line()
    if line is not None:
        terminalreporter.write_sep("-", "reliability summary")
        terminalreporter.write_line(line)
