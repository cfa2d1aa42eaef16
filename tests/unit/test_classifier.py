"""The report classifier: folding, the result contract, robustness, calibration, corpus hygiene,
the dev-set targets and the model cache. The model is trained once per module (about a second)."""

from __future__ import annotations

import copy
import json
import math
import pickle
import time
import unicodedata
from dataclasses import FrozenInstanceError
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.classifier import Classification, Classifier, evaluate, fold, load_classifier, train_classifier
from hotline.classifier import cache as cache_module
from hotline.classifier.corpus import load_corpus, load_vague, parse_jsonl
from hotline.classifier.evaluate import score
from hotline.classifier.fold import strip_diacritics
from hotline.classifier.rules import DEFAULT_RULES, RuleSet
from hotline.errors import InvalidInput
from hotline.taxonomy import load_taxonomy

REPO_ROOT = Path(__file__).resolve().parents[2]
DEV_SET = REPO_ROOT.parent / "shared" / "eval" / "blockers_dev.jsonl"
CODES = load_taxonomy().codes
THRESHOLD = 0.55  # Settings.classifier_threshold default


@pytest.fixture(scope="module")
def clf() -> Classifier:
    return train_classifier()


def _dev_examples() -> list[tuple[str, str]]:
    if not DEV_SET.is_file():
        pytest.skip(f"dev set not present at {DEV_SET}")
    return parse_jsonl(DEV_SET.read_text("utf-8"), source=str(DEV_SET))


# --- folding -----------------------------------------------------------------------------------


def test_fold_maps_diacritics_and_plain_typing_to_the_same_text() -> None:
    assert fold("Kho bạc từ chối thanh toán") == fold("kho bac tu choi thanh toan")
    assert fold("ĐỀ NGHỊ ĐẦU TƯ") == "de nghi dau tu"
    assert fold("Đắk Lắk, Điện Biên") == "dak lak dien bien"


def test_fold_is_the_same_for_composed_and_decomposed_unicode() -> None:
    text = "Cơ sở dữ liệu quốc gia về dân cư"
    assert fold(unicodedata.normalize("NFD", text)) == fold(unicodedata.normalize("NFC", text))


def test_fold_expands_chat_abbreviations_and_normalises_numbers_and_punctuation() -> None:
    assert fold("csdl ko dc chia se!!!") == "co so du lieu khong duoc chia se"
    assert fold("UBND xã; DN  (30%)") == "uy ban nhan dan xa doanh nghiep 0"
    assert fold("R&D\tcenter\n") == "r&d center"


@pytest.mark.parametrize("text", [None, "", "   \n\t", "🙂🚀🔥", "?!...,;", "\x00\x07"])
def test_fold_of_contentless_input_is_empty(text: str | None) -> None:
    assert fold(text) == ""


def test_fold_cuts_huge_input() -> None:
    assert len(fold("a " * 50_000)) <= 3000


@given(st.text(max_size=400))
@settings(max_examples=200, deadline=None)
def test_fold_ignores_diacritics_for_any_text(text: str) -> None:
    folded = fold(text)
    assert fold(strip_diacritics(text)) == folded
    assert folded == folded.strip() and "  " not in folded
    assert all(ch.isascii() for ch in folded)


# --- the result contract -----------------------------------------------------------------------


def _check_contract(result: Classification) -> None:
    codes = [code for code, _ in result.candidates]
    scores = [s for _, s in result.candidates]
    assert sorted(codes) == sorted(CODES)
    assert scores == sorted(scores, reverse=True)
    assert math.isclose(sum(scores), 1.0, abs_tol=1e-6)
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert result.category == codes[0]
    assert result.confidence == scores[0]


def test_classification_lists_every_category_ranked_and_summing_to_one(clf: Classifier) -> None:
    result = clf.classify("Kho bạc từ chối thanh toán khối lượng hoàn thành của dự án")
    _check_contract(result)
    assert result.category == "funding"
    assert result.top(3)[0] == "funding" and len(result.top(3)) == 3
    with pytest.raises(FrozenInstanceError):
        result.category = "legal"  # type: ignore[misc]


def test_classify_many_matches_classify(clf: Classifier) -> None:
    texts = ["Website bị tấn công DDoS", "xin chao", "", "Our patent has been pending for years"]
    batch = clf.classify_many(texts)
    assert [r.category for r in batch] == [clf.classify(t).category for t in texts]
    for one, many in zip(batch, (clf.classify(t) for t in texts), strict=True):
        assert math.isclose(one.confidence, many.confidence, rel_tol=1e-9)
    assert clf.classify_many([]) == []


# --- robustness --------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\n\t ", "🙂🙂🙂", "👍", "?!...", "---", None])
def test_contentless_input_is_other_with_low_confidence(clf: Classifier, text: str | None) -> None:
    result = clf.classify(text)
    _check_contract(result)
    assert result.category == "other"
    assert result.confidence < THRESHOLD


@given(st.text(max_size=300))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_text_gets_a_well_formed_classification(clf: Classifier, text: str) -> None:
    _check_contract(clf.classify(text))


def test_huge_input_is_classified_quickly(clf: Classifier) -> None:
    text = "Hệ thống của sở bị tấn công bằng mã độc tống tiền, dữ liệu bị mã hóa. " * 300
    assert len(text) > 20_000
    clf.classify(text)  # warm
    started = time.perf_counter()
    result = clf.classify(text)
    assert time.perf_counter() - started < 0.5
    _check_contract(result)
    assert result.category == "security"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("KHO BAC TU CHOI THANH TOAN TIEN TAM UNG", "funding"),
        ("kho bac tu choi thah toan tien tam ugn", "funding"),  # typos
        ("Website cua So bi Tan Cong, bi thay giao dien", "security"),
        ("csdl dan cu chua chia se cho xa, du lieu sai nhieu", "data"),
    ],
)
def test_mixed_case_and_typos(clf: Classifier, text: str, expected: str) -> None:
    assert clf.classify(text).category == expected


# --- categories and boundaries (fresh sentences, not in the corpus) ----------------------------

BOUNDARY_CASES = [
    ("security", "Danh sách khách hàng kèm số căn cước của công ty bị lộ lọt ra ngoài, đang bị rao bán."),
    ("security", "du lieu ca nhan cua benh nhan bi lo ra ngoai, nghi bi hack"),
    ("security", "Our citizen registry was breached and personal records leaked online."),
    ("data", "Sở Y tế chưa được chia sẻ dữ liệu tiêm chủng từ hệ thống của bộ."),
    ("data", "du lieu ho tich cua xa chua dong bo voi csdl quoc gia, nhieu ban ghi sai"),
    ("data", "The ministry still refuses to share its enterprise data with our province."),
    ("procurement", "Gói thầu thuê dịch vụ phần mềm quản lý bệnh viện chưa lựa chọn được nhà thầu."),
    ("procurement", "ko biet to chuc dau thau thue dich vu cntt the nao cho dung"),
    ("procurement", "How should we run the tender to rent a cloud platform?"),
    ("funding", "Đã ký hợp đồng thuê dịch vụ phần mềm nhưng chưa có kinh phí để thanh toán tiền thuê."),
    ("funding", "kho bac ko chiu thanh toan tien thue phan mem vi chua co du toan"),
    ("funding", "We rent the software but the Treasury will not release the monthly payment."),
    ("authority", "Sau khi hợp nhất tỉnh, chưa rõ sở nào có thẩm quyền cấp giấy phép này."),
    ("authority", "sap nhap tinh xong ko biet co quan nao co tham quyen giai quyet"),
    ("authority", "After the provinces merged, nobody knows which department is competent to approve."),
    ("workforce", "Lương của cán bộ phụ trách chuyển đổi số ở xã quá thấp, nhiều người bỏ việc."),
    ("workforce", "luong can bo xa thap qua, ko ai muon lam cntt"),
    ("workforce", "Pay for our commune IT staff is so low that people quit."),
    ("other", "Cho hỏi khi nào họp tổ công tác?"),
    ("other", "thanks ad nhe"),
    ("other", "What's the phone number of the working group?"),
    ("legal", "Chưa có khung pháp lý cho hoạt động sandbox công nghệ tài chính."),
    ("procedure", "Thủ tục cấp phép vẫn bắt nộp bản giấy dù đã nộp trực tuyến."),
    ("infrastructure", "Xã vùng sâu chưa có sóng di động và internet."),
    ("innovation", "Thủ tục đăng ký sáng chế quá lâu, doanh nghiệp chờ 4 năm."),
]


@pytest.mark.parametrize(("expected", "text"), BOUNDARY_CASES)
def test_boundary_cases_route_to_the_right_category(clf: Classifier, expected: str, text: str) -> None:
    result = clf.classify(text)
    assert result.category == expected, result.candidates[:3]
    assert result.confidence >= THRESHOLD


VAGUE = [
    "cần hỗ trợ gấp",
    "vướng mắc kéo dài chưa được xử lý",
    "The issue from last month is still not fixed.",
    "Please look into this matter urgently.",
    "Tình hình triển khai chậm, nhiều việc chưa làm được.",
]


def test_vague_reports_get_low_confidence(clf: Classifier) -> None:
    confidences = [clf.classify(text).confidence for text in VAGUE]
    assert all(c < THRESHOLD for c in confidences), confidences


def test_rules_add_to_the_model_instead_of_replacing_it() -> None:
    rules = RuleSet(DEFAULT_RULES, CODES)
    boosts = rules.boosts([fold("he thong bi tan cong ransomware"), fold("cam on nhieu"),
                           fold("cam on " + "bao cao tinh hinh giai ngan von " * 5)])
    assert boosts[0, CODES.index("security")] > 0
    assert boosts[1, CODES.index("other")] > 0
    assert boosts[2, CODES.index("other")] == 0  # a long report ending in thanks is not "other"
    assert boosts[2, CODES.index("funding")] > 0


# --- training: determinism, corrections --------------------------------------------------------


def test_training_is_deterministic(clf: Classifier) -> None:
    again = train_classifier()
    texts = ["Nhà thầu chưa được thanh toán", "xin chao", "hệ thống cũ không tương thích"]
    assert again.temperature == clf.temperature
    assert np.array_equal(again.probabilities(texts), clf.probabilities(texts))


def test_corrections_are_learned_and_kept_for_later_loads(clf: Classifier, tmp_path: Path) -> None:
    from hotline.classifier import retrain

    phrase = "zorblax quarkum vexillo"
    corrections = [(f"{phrase} {i}", "innovation") for i in range(6)]
    corrections.append(("một nội dung bất kỳ", "no-such-category"))  # an operator removed it
    before = clf.classify(phrase)
    assert before.category != "innovation" or before.confidence < 0.5

    model, path = retrain(corrections, tmp_path)
    assert model.classify(phrase).category == "innovation"
    assert set(model.labels) == set(CODES)
    assert model.n_examples == clf.n_examples + 1  # numbers fold alike: one text after dedup
    assert path is not None and path.is_file()
    assert (tmp_path / "corrections.jsonl").is_file()

    loaded = load_classifier(cache_dir=tmp_path)  # no corrections given: the snapshot is used
    assert loaded.fingerprint == model.fingerprint
    assert loaded.classify(phrase).category == "innovation"
    assert len(list(tmp_path.glob("classifier-*.pkl"))) == 1


def test_an_operator_taxonomy_is_respected() -> None:
    """Categories are configuration: the model covers exactly the operator's codes, including a
    new one known only from corrections and one with no examples at all (score 0, still listed)."""
    import tomllib
    from importlib import resources

    from hotline.taxonomy import parse_taxonomy

    data = tomllib.loads(resources.files("hotline.data").joinpath("taxonomy.toml").read_text("utf-8"))
    kept = {code: data["categories"][code] for code in ("security", "other")}
    kept["ai"] = {**data["categories"]["innovation"], "name_en": "Artificial intelligence"}
    kept["empty"] = {**data["categories"]["legal"], "name_en": "Nothing yet"}
    taxonomy = parse_taxonomy({"groups": data["groups"], "categories": kept})
    model = train_classifier([("mô hình ngôn ngữ lớn tiếng Việt", "ai"),
                              ("huấn luyện mô hình ngôn ngữ lớn", "ai")], taxonomy)
    assert set(model.labels) == {"security", "other", "ai"}
    result = model.classify("mo hinh ngon ngu lon")
    assert result.category == "ai"
    assert [code for code, _ in result.candidates][-1] == "empty"
    assert dict(result.candidates)["empty"] == 0.0
    assert model.classify("website bị tấn công ddos").category == "security"


# --- calibration (meaningful confidence) --------------------------------------------------------


def test_temperature_is_fitted_and_sane(clf: Classifier) -> None:
    assert 0.05 < clf.temperature < 20


def test_clear_reports_are_confident_and_vague_ones_are_not(clf: Classifier) -> None:
    clear = [text for _, text in BOUNDARY_CASES]
    clear_conf = np.mean([clf.classify(t).confidence for t in clear])
    vague_conf = np.mean([clf.classify(t).confidence for t in VAGUE])
    assert clear_conf > 0.85
    assert vague_conf < 0.45


# --- the corpus ---------------------------------------------------------------------------------

_ENGLISH = {"is", "are", "was", "our", "we", "not", "of", "and", "for", "has", "have", "with",
            "there", "please", "this", "but", "been", "from", "they", "their", "it", "its",
            "still", "which", "who", "what", "how", "you", "my", "the", "can", "does"}


def _style(text: str) -> str:
    if text != strip_diacritics(text):
        return "vi"
    words = set(fold(text, expand=False).split())
    return "en" if len(words & _ENGLISH) >= 2 else "vi_plain"


def test_corpus_covers_every_category_in_three_styles() -> None:
    corpus = load_corpus()
    assert len(corpus) >= 700
    for code in CODES:
        texts = [t for t, label in corpus if label == code]
        assert len(texts) >= 60, code
        styles = [_style(t) for t in texts]
        for style in ("vi", "vi_plain", "en"):
            assert styles.count(style) >= 15, (code, style)
    assert {label for _, label in corpus} == set(CODES)


def test_corpus_has_no_duplicates_after_folding() -> None:
    folded = [fold(t) for t, _ in load_corpus()]
    assert len(folded) == len(set(folded))
    assert all(fold(t) for t in load_vague())


def _tokens(text: str) -> set[str]:
    return set(fold(text).split())


def test_no_dev_set_text_is_in_the_training_data() -> None:
    dev = _dev_examples()
    training = [t for t, _ in load_corpus()] + load_vague()
    training_folded = {fold(t) for t in training}
    training_tokens = [_tokens(t) for t in training]
    for text, _ in dev:
        assert fold(text) not in training_folded, text
        dev_tokens = _tokens(text)
        for tokens in training_tokens:
            union = dev_tokens | tokens
            jaccard = len(dev_tokens & tokens) / len(union) if union else 0.0
            assert jaccard <= 0.8, text


# --- dev-set targets ----------------------------------------------------------------------------


def test_dev_set_accuracy_targets(clf: Classifier) -> None:
    dev = _dev_examples()
    report = evaluate(clf, dev)
    assert report.top1 >= 0.90, report.as_dict()
    assert report.top3 >= 0.98, report.as_dict()


def test_dev_set_without_diacritics_scores_within_three_points(clf: Classifier) -> None:
    dev = _dev_examples()
    plain = [(strip_diacritics(text), label) for text, label in dev]
    assert all(t.isascii() for t, _ in plain)
    with_marks, without = evaluate(clf, dev), evaluate(clf, plain)
    assert abs(with_marks.top1 - without.top1) <= 0.03
    assert abs(with_marks.top3 - without.top3) <= 0.03


# --- evaluation arithmetic ---------------------------------------------------------------------


def _fixed(category: str, second: str) -> Classification:
    rest = [c for c in CODES if c not in (category, second)]
    share = 0.2 / len(rest)
    return Classification(category, 0.6, ((category, 0.6), (second, 0.2),
                                          *((c, share) for c in rest)))


def test_score_computes_top1_top3_macro_f1_and_confusion() -> None:
    predictions = [_fixed("legal", "data"), _fixed("legal", "data"), _fixed("data", "legal"),
                   _fixed("other", "security")]
    labels = ["legal", "data", "data", "security"]
    report = score(predictions, labels, CODES)
    assert report.top1 == 0.5
    assert report.top3 == 1.0
    assert report.confusion["data"]["legal"] == 1
    assert report.per_category["legal"].precision == 0.5
    assert report.per_category["data"].recall == 0.5
    # legal F1 2/3, data F1 2/3, security 0, other 0 (predicted, never true)
    assert math.isclose(report.macro_f1, (2 / 3 + 2 / 3) / 4)
    assert json.loads(json.dumps(report.as_dict()))["top1"] == 0.5


def test_parse_jsonl_names_the_bad_line() -> None:
    with pytest.raises(InvalidInput, match="line 2: not valid JSON"):
        parse_jsonl('{"text": "a", "label": "legal"}\n{oops\n', source="f")
    with pytest.raises(InvalidInput, match="line 1: unknown label 'nope'"):
        parse_jsonl('{"text": "a", "label": "nope"}\n', source="f", known_labels=CODES)
    with pytest.raises(InvalidInput, match="must both be strings"):
        parse_jsonl('{"text": 3, "label": "legal"}\n', source="f")


# --- the model cache ---------------------------------------------------------------------------


@pytest.fixture
def fake_training(clf: Classifier, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Cache mechanics without retraining: 'training' returns the module's model re-keyed."""
    calls: list[str] = []

    def _train(extra: object = (), taxonomy: object = None, *, fingerprint: str = "") -> Classifier:
        calls.append(fingerprint)
        model = copy.copy(clf)
        model.fingerprint = fingerprint
        return model

    monkeypatch.setattr(cache_module, "train_classifier", _train)
    return calls


def test_cache_is_written_reused_and_keyed_by_the_training_data(
    tmp_path: Path, fake_training: list[str]
) -> None:
    first = load_classifier(cache_dir=tmp_path)
    assert len(fake_training) == 1
    assert len(list(tmp_path.glob("classifier-*.pkl"))) == 1

    again = load_classifier(cache_dir=tmp_path)
    assert len(fake_training) == 1  # from the cache
    assert again.fingerprint == first.fingerprint
    assert np.array_equal(again.probabilities(["xin chao"]), first.probabilities(["xin chao"]))

    # Different training data, different key: the cached model is not used, and is replaced.
    other = load_classifier(cache_dir=tmp_path, extra_examples=[("văn bản mới", "legal")])
    assert len(fake_training) == 2
    assert other.fingerprint != first.fingerprint
    assert len(list(tmp_path.glob("classifier-*.pkl"))) == 1


def test_corrupt_cache_is_replaced(tmp_path: Path, fake_training: list[str]) -> None:
    first = load_classifier(cache_dir=tmp_path)
    (path,) = tmp_path.glob("classifier-*.pkl")
    path.write_bytes(b"not a pickle")
    second = load_classifier(cache_dir=tmp_path)
    assert len(fake_training) == 2
    assert second.fingerprint == first.fingerprint
    assert isinstance(pickle.loads(path.read_bytes()), Classifier)


def test_unwritable_cache_does_not_break_classification(tmp_path: Path, fake_training: list[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    model = load_classifier(cache_dir=blocker / "sub")  # its parent is a file: cannot be created
    assert model.classify("xin chào").category == "other"


def test_pickled_model_classifies_like_the_original(clf: Classifier) -> None:
    restored = pickle.loads(pickle.dumps(clf))
    texts = ["Website bị tấn công", "cam on", "🙂"]
    assert np.array_equal(restored.probabilities(texts), clf.probabilities(texts))
