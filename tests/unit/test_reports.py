"""What a report is, and the register reporters are addressed in (issue 18).

``hotline.domain.reports`` decides whether a message may become a ticket; the catalogue test
keeps the Vietnamese bot on one register for reporters: the formal "quý vị" owed to an
organisation, never the familiar "bạn" (which working-group colleagues use among themselves).
"""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from handlers import choices
from hotline.domain.reports import EXAMPLE_EN, EXAMPLE_VI, fold, has_words, is_report
from hotline.i18n import catalogue
from hotline.messages import Button

REAL = [
    "Chưa có nghị định hướng dẫn Luật Dữ liệu",
    "Chua co nghi dinh huong dan Luat Du lieu",
    "No decree guides the Data Law yet",
    "Mạng truyền số liệu chuyên dùng bị gián đoạn",
    "Thủ tục cấp phép thử nghiệm có kiểm soát (sandbox) kéo dài 6 tháng",
    EXAMPLE_VI,
    EXAMPLE_EN,
]
NOT = ["0", "5", "7", "14\n4", "👍👍👍", "ok", "OK ok", "test test test", "1 2 3 4 5 6 7 8",
       "HL-2026-000002", "???", "Gửi", "hủy", "xin chào", "", "   "]


def test_real_reports_pass() -> None:
    assert all(is_report(text) for text in REAL)


def test_stray_input_does_not() -> None:
    assert not any(is_report(text) for text in NOT)


@given(st.text(alphabet=st.characters(categories=["Nd", "P", "S", "Zs"]), max_size=200))
def test_digits_punctuation_and_emoji_are_never_reports(text: str) -> None:
    assert not is_report(text)
    assert not has_words(text)


@given(st.sampled_from(REAL), st.text(alphabet="0123456789 👍.", max_size=10))
def test_a_report_with_a_number_or_emoji_is_still_a_report(text: str, noise: str) -> None:
    assert is_report(f"{text} {noise}")


def test_worded_answers() -> None:
    assert has_words("Có") and has_words("FPT") and has_words("Bộ Y tế")
    assert not has_words("7") and not has_words("👍") and not has_words("0101234567")


def test_fold_ignores_case_and_diacritics() -> None:
    assert fold("Gửi Phản Ánh") == fold("gui phan anh") == "gui phan anh"
    assert fold("Đổi lĩnh vực") == "doi linh vuc"


def test_choices_by_number_or_label() -> None:
    buttons = [Button("✅ Gửi phản ánh", "rfile:a"), Button("✏️ Đổi lĩnh vực", "rchange:a"),
               Button("✖ Hủy", "cancel:")]
    assert choices.pick("2", buttons) == buttons[1]
    assert choices.pick("[3]", buttons) == buttons[2]
    assert choices.pick("gui phan anh", buttons) == buttons[0]
    assert choices.pick("HỦY!", buttons) == buttons[2]
    for stray in ("0", "4", "14", "👍", "ok", "gửi", ""):
        assert choices.pick(stray, buttons) is None
    assert choices.pick("2", buttons, by_number=False) is None
    assert choices.range_text(1) == "1" and choices.range_text(5) == "1–5"


#: Messages addressed to working-group members, leads, coordinators and leaders, who are
#: colleagues: "bạn" is right there. Every other Vietnamese message may reach a reporter.
STAFF_ONLY = {
    "engine.staff_idle", "engine.joined", "engine.joined_group", "engine.queue_mine",
    "engine.acknowledged", "engine.claimed", "engine.ask_ext_date", "engine.help_member",
    "engine.help_leader", "tickets.assigned_to_you",
}
_FAMILIAR = re.compile(r"\bbạn\b", re.IGNORECASE)


def test_reporters_are_addressed_as_quy_vi_throughout() -> None:
    vi = catalogue("vi")
    familiar = {key for key, text in vi.items() if _FAMILIAR.search(text)}
    assert familiar <= STAFF_ONLY, sorted(familiar - STAFF_ONLY)
    assert STAFF_ONLY <= set(vi)  # the list names real messages
    mixed = [key for key, text in vi.items()
             if _FAMILIAR.search(text) and "quý vị" in text.lower()]
    assert mixed == []
    reporter_keys = [k for k in vi if k.startswith("engine.") and "quý vị" in vi[k].lower()]
    assert len(reporter_keys) >= 15  # the reporter's flow does speak formally
