"""The command line reads like a well-made Typer tool (issue 18): help shows flags as flags and
describes every option; invite codes say their valid range and their validity in local time;
an unknown group or role lists the valid ones; the demo's closing hint survives a pipe."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from hotline.cli.demo import print_summary
from hotline.cli.main import app as cli
from hotline.demo.run import DemoSummary
from hotline.errors import HotlineError


def _commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            found += _commands(sub, (*path, name))
    return found


def test_every_help_shows_flags_as_flags_and_describes_every_option() -> None:
    root = typer.main.get_command(cli)
    runner = CliRunner()
    paths = _commands(root)
    assert len(paths) > 10
    for path in paths:
        result = runner.invoke(cli, [*path, "--help"], env={"COLUMNS": "120"})
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.output, path
    for path in paths[1:]:
        command = root
        for name in path:
            command = command.commands[name]  # type: ignore[attr-defined]
        for param in command.params:
            assert getattr(param, "help", None), (path, param.name)


def test_tickets_list_category_is_described() -> None:
    result = CliRunner().invoke(cli, ["tickets", "list", "--help"], env={"COLUMNS": "120"})
    assert "--category" in result.output and "category code" in result.output


@pytest.fixture
def env(tmp_path: Path, classifier_cache: Path) -> dict[str, str]:
    return {"HOTLINE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
            "HOTLINE_CLASSIFIER_CACHE_DIR": str(classifier_cache), "COLUMNS": "200"}


@pytest.mark.parametrize("hours", ["-5", "0", "721"])
def test_invite_hours_outside_1_to_720_are_refused(env: dict[str, str], hours: str) -> None:
    result = CliRunner().invoke(cli, ["invite", "leader", "--hours", hours], env=env)
    assert result.exit_code == 2
    assert "--hours" in result.output


def test_invite_says_its_range_and_local_validity(env: dict[str, str]) -> None:
    runner = CliRunner()
    assert "1 to 720 hours" in runner.invoke(cli, ["invite", "--help"], env=env).output
    result = runner.invoke(cli, ["invite", "leader", "--hours", "1"], env=env)
    assert result.exit_code == 0, result.output
    assert "Asia/Ho_Chi_Minh" in result.output and "UTC" not in result.output


def test_unknown_group_and_role_list_what_is_valid(env: dict[str, str]) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["invite", "member", "data"], env=env)
    assert isinstance(result.exception, HotlineError)
    assert "unknown group 'data'" in str(result.exception) and "mps" in str(result.exception)
    result = runner.invoke(cli, ["invite", "boss"], env=env)
    assert "member, lead, coordinator, leader, admin" in str(result.exception)
    result = runner.invoke(cli, ["tickets", "list", "--category", "foo"], env=env)
    assert "categories:" in str(result.exception) and "data" in str(result.exception)


def test_demo_hint_stays_whole_when_piped(tmp_path: Path) -> None:
    database = tmp_path / ("a-rather-long-folder-name-for-the-demo-output" * 2) / "hotline.db"
    summary = DemoSummary(out_dir=database.parent, database=database, files=[], rows=[],
                          seconds=1.0)
    out = io.StringIO()
    print_summary(Console(file=out, width=80, force_terminal=False), summary)
    command = f"HOTLINE_DATABASE_URL=sqlite+aiosqlite:///{database} hotline tickets list"
    assert command in out.getvalue()
