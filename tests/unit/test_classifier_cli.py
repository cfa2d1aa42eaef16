"""``hotline classify``: one report, ``--eval``, ``--json``, ``--retrain`` and one-sentence errors.

The command is registered on a small Typer app here, as the integrator registers it on the main
one. A module-wide cache directory means only the first invocation trains.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from hotline.cli.classify import classify

REPO_ROOT = Path(__file__).resolve().parents[2]
DEV_SET = REPO_ROOT.parent / "shared" / "eval" / "blockers_dev.jsonl"

Runner = Callable[..., Result]

app = typer.Typer()
app.command("classify")(classify)


@app.command("version")
def _version() -> None:  # a second command keeps "classify" a subcommand, as in the main app
    """Unused."""


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("classifier-cache")


@pytest.fixture
def run(cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Runner:
    monkeypatch.setenv("HOTLINE_CLASSIFIER_CACHE_DIR", str(cache_dir))
    monkeypatch.setenv("HOTLINE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.delenv("HOTLINE_TAXONOMY_FILE", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env file is read

    def _run(*args: str) -> Result:
        return CliRunner().invoke(app, ["classify", *args])

    return _run


def _assert_one_sentence_error(result: Result, fragment: str) -> None:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert fragment in lines[0]
    assert "Traceback" not in result.output


def test_classify_text_prints_category_names_confidence_and_top3(run: Runner) -> None:
    result = run("Cổng thông tin của sở bị tấn công mạng, giao diện bị thay đổi")
    assert result.exit_code == 0, result.output
    assert "security" in result.stdout
    assert "An toàn, an ninh mạng" in result.stdout
    assert "Cyber and information security" in result.stdout
    assert "confidence" in result.stdout
    assert "top 3" in result.stdout


def test_classify_json_is_one_object(run: Runner) -> None:
    result = run("--json", "kho bac tu choi thanh toan")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["category"] == "funding"
    assert data["name_en"] == "Funding and disbursement"
    assert 0 <= data["confidence"] <= 1
    assert len(data["candidates"]) == 11
    assert data["candidates"][0]["category"] == "funding"


def test_empty_text_is_other_and_unsure(run: Runner) -> None:
    data = json.loads(run("--json", "🙂").stdout)
    assert data["category"] == "other"
    assert data["confident"] is False


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_eval_prints_accuracy_table_and_confusion(run: Runner, tmp_path: Path) -> None:
    file = _write(tmp_path / "set.jsonl", [
        json.dumps({"text": "Kho bạc từ chối thanh toán", "label": "funding"}, ensure_ascii=False),
        json.dumps({"text": "xin chào", "label": "other"}, ensure_ascii=False),
        "",
        json.dumps({"text": "Website bị tấn công DDoS", "label": "security"}, ensure_ascii=False),
    ])
    result = run("--eval", str(file))
    assert result.exit_code == 0, result.output
    assert "3 examples: top-1 accuracy 1.000, top-3 accuracy 1.000, macro-F1 1.000" in result.stdout
    assert "per category" in result.stdout and "confusion" in result.stdout

    data = json.loads(run("--eval", str(file), "--json").stdout)
    assert data["top1"] == 1.0 and data["top3"] == 1.0 and data["macro_f1"] == 1.0
    assert data["per_category"]["funding"]["support"] == 1
    assert data["confusion"]["security"]["security"] == 1


def test_eval_on_the_dev_set_meets_the_targets(run: Runner) -> None:
    if not DEV_SET.is_file():
        pytest.skip(f"dev set not present at {DEV_SET}")
    result = run("--eval", str(DEV_SET), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["top1"] >= 0.90
    assert data["top3"] >= 0.98
    assert set(data) >= {"top1", "top3", "macro_f1", "per_category", "confusion"}


@pytest.mark.parametrize(
    ("lines", "fragment"),
    [
        (['{"text": "a", "label": "legal"}', "{not json"], "line 2: not valid JSON"),
        (['{"text": "a", "label": "astrology"}'], "line 1: unknown label 'astrology'"),
        (['["text", "label"]'], "line 1: expected an object"),
        (['{"text": "a"}'], "line 1: 'text' and 'label' must both be strings"),
        ([""], "has no labelled examples"),
    ],
)
def test_bad_eval_file_is_one_sentence(
    run: Runner, tmp_path: Path, lines: list[str], fragment: str
) -> None:
    _assert_one_sentence_error(run("--eval", str(_write(tmp_path / "bad.jsonl", lines))), fragment)


def test_missing_eval_file_is_one_sentence(run: Runner, tmp_path: Path) -> None:
    _assert_one_sentence_error(run("--eval", str(tmp_path / "nope.jsonl")), "does not exist")
    _assert_one_sentence_error(run("--eval", str(tmp_path)), "is a directory")


def test_nothing_to_do_or_both_is_one_sentence(run: Runner, tmp_path: Path) -> None:
    _assert_one_sentence_error(run(), "nothing to do")
    _assert_one_sentence_error(run("some text", "--eval", str(tmp_path / "x.jsonl")), "not both")


def _store_corrections(db_url: str, rows: list[tuple[str, str]]) -> None:
    from storage.db import create_engine, create_schema, make_sessionmaker
    from storage.models import LabelledExample

    async def _go() -> None:
        engine = create_engine(db_url)
        await create_schema(engine)
        async with make_sessionmaker(engine)() as session:
            for text, label in rows:
                session.add(LabelledExample(text=text, label=label, source="correction",
                                            created_at=datetime(2026, 1, 5, tzinfo=UTC)))
            await session.commit()
        await engine.dispose()

    asyncio.run(_go())


def test_retrain_uses_corrections_writes_the_cache_and_evaluates(
    run: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "retrained"
    monkeypatch.setenv("HOTLINE_CLASSIFIER_CACHE_DIR", str(cache))
    _store_corrections(f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}", [
        *((f"zorblax quarkum vexillo {i}", "innovation") for i in range(6)),
        ("một nội dung cũ", "retired-category"),
    ])
    file = _write(tmp_path / "set.jsonl", [json.dumps({"text": "zorblax quarkum", "label": "innovation"})])

    result = run("--retrain", "--eval", str(file), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["retrained"]["corrections"] == 6
    assert data["retrained"]["corrections_skipped"] == 1
    assert data["retrained"]["examples"] > 900
    assert data["top1"] == 1.0
    assert list(cache.glob("classifier-*.pkl")) and (cache / "corrections.jsonl").is_file()

    # Later loads (the bot, a plain classify) use the retrained model without retraining.
    after = json.loads(run("--json", "zorblax quarkum vexillo").stdout)
    assert after["category"] == "innovation"

    text_result = run("--retrain")
    assert text_result.exit_code == 0, text_result.output
    assert "retrained on" in text_result.stdout and "6 coordinator corrections" in text_result.stdout
