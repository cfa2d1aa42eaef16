"""The similarity rule: what makes two wordings of one problem meet, and what keeps different
problems apart. The held-out pair set guards the figures reported in bench/RESULTS.md."""

from __future__ import annotations

import json
import subprocess
import sys
import unicodedata
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from hotline.config import Settings
from hotline.similarity.evaluate import evaluate, read_pairs
from hotline.similarity.score import profile, profile_of, similarity, similarity_of, upper_bound
from hotline.similarity.text import anchors, canonical, fold

DATA = Path(__file__).resolve().parents[1] / "data"


def strip_marks(text: str) -> str:
    text = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(ch for ch in text if unicodedata.category(ch) != "Mn")


@given(st.text(alphabet="aăâbcdđeêghiklmnoôơpqrstuưvxyàáảãạầấẩẫậềếểễệờớởỡợ ĐÂ0123456789/,.", max_size=80))
def test_a_report_typed_without_diacritics_has_the_same_canonical_form(text: str) -> None:
    assert canonical(text) == canonical(strip_marks(text))
    assert fold(fold(text)) == fold(text)


def test_english_and_vietnamese_domain_terms_meet() -> None:
    assert canonical("Decree") == canonical("nghị định")
    assert canonical("State Treasury") == canonical("Kho bạc nhà nước")
    assert "co so du lieu" in canonical("CSDL dân cư")


def test_decree_numbers_are_anchors() -> None:
    assert anchors("Nghị định 13/2023/NĐ-CP") == anchors("Decree 13/2023") == frozenset({"13/2023"})


def test_same_problem_in_other_words_scores_above_a_different_problem_of_its_category() -> None:
    original = "Kho bạc yêu cầu nộp bản giấy chứng từ thanh toán dù đã ký số, chậm giải ngân"
    same = "kho bac van doi chung tu giay du da ky so nen cham giai ngan"
    other = "Định mức xây dựng dự toán cho nhiệm vụ chuyển đổi số quá thấp"
    threshold = Settings(_env_file=None).similar_threshold  # type: ignore[call-arg]
    assert similarity_of(original, same) >= threshold > similarity_of(original, other)


def test_held_out_pairs_meet_the_targets_at_the_chat_threshold() -> None:
    result = evaluate(read_pairs(DATA / "similar_pairs_heldout.jsonl"),
                      Settings(_env_file=None).similar_threshold)  # type: ignore[call-arg]
    assert result.n >= 150
    assert result.precision >= 0.90 and result.recall >= 0.70


def test_the_pair_sets_are_rebuilt_identically_and_share_no_problem() -> None:
    tune = [json.loads(x) for x in (DATA / "similar_pairs_tune.jsonl").read_text("utf-8").splitlines()]
    held = [json.loads(x) for x in (DATA / "similar_pairs_heldout.jsonl").read_text("utf-8").splitlines()]
    ids = lambda rows: {part for r in rows for part in r["problem"].split("|")}  # noqa: E731
    assert not ids(tune) & ids(held)
    assert sum(r["same"] for r in held) * 2 == len(held)


def test_eval_cli_prints_the_figures_as_json() -> None:
    script = Path(sys.executable).with_name("hotline")
    out = subprocess.run([str(script), "similar", "--eval",
                          str(DATA / "similar_pairs_heldout.jsonl"), "--json"],
                         capture_output=True, text=True, check=True)
    figures = json.loads(out.stdout)
    assert set(figures) == {"n", "auc", "threshold", "precision", "recall"}


def test_the_bound_a_search_skips_by_is_never_below_the_score() -> None:
    # A search leaves out the character pieces of candidates whose bound is below the threshold:
    # exact only if the bound is never below the real score.
    pairs = read_pairs(DATA / "similar_pairs_tune.jsonl") + read_pairs(DATA / "similar_pairs_heldout.jsonl")
    for pair in pairs:
        a, b = profile(pair.a), profile(pair.b)
        bare = profile_of(canonical(pair.b).split(), anchors(pair.b), chars=False)
        assert upper_bound(a, bare) >= similarity(a, b) - 1e-12
