"""A few strong keyword rules, added to the model's scores rather than replacing them.

Why rules at all: some phrases decide the category on their own ("ransomware" is a security
incident however the rest of the report reads), and a small corpus cannot always teach that
from one or two examples. Why additive: a report that says "ransomware" *and* is clearly about
paying the contractor who cleaned it up should still be able to win for the model's category.
Phrases are matched on folded text (see ``fold``), so one spelling covers diacritics or none.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Rule:
    """Add ``boost`` to ``category``'s logit when any phrase occurs as whole words.

    ``max_tokens`` limits a rule to short messages: "cam on" ends many real reports, but a
    six-word "thanks, all sorted" message is a thank-you.
    """

    category: str
    boost: float
    phrases: tuple[str, ...]
    max_tokens: int | None = None

    def pattern(self) -> re.Pattern[str]:
        alternatives = "|".join(re.escape(p) for p in sorted(self.phrases, key=len, reverse=True))
        return re.compile(rf"\b(?:{alternatives})\b")


DEFAULT_RULES: tuple[Rule, ...] = (
    Rule("security", 2.0, (
        "tan cong mang", "bi tan cong", "ransomware", "ma doc", "ma hoa du lieu", "lo lot",
        "ro ri du lieu", "ddos", "hacker", "tin tac", "bi hack", "xam nhap", "phishing",
        "cyber attack", "cyberattack", "data leak", "data breach", "leaked", "malware",
        "spyware", "cap do an toan", "cap do attt", "security level", "tien chuoc", "ransom",
    )),
    Rule("other", 2.5, (
        "xin chao", "chao ban", "chao anh", "chao chi", "chao buoi sang", "hello", "hi", "alo",
        "good morning", "cam on", "thank you", "thanks", "lich hop", "hop giao ban", "may gio",
        "what time", "meeting", "so dien thoai", "phone number", "dau moi lien he", "contact",
        "huong dan su dung", "how do i", "test", "testing", "gui nham", "wrong message",
    ), max_tokens=14),
    Rule("funding", 1.0, (
        "kho bac", "giai ngan", "tam ung", "giao von", "dinh muc chi", "treasury", "disburse",
        "disbursement", "disbursed", "spending norm", "spending norms", "advance payment",
    )),
    Rule("procurement", 1.0, (
        "dau thau", "goi thau", "lua chon nha thau", "chi dinh thau", "ho so moi thau",
        "tender", "bidding", "contractor selection", "direct contracting",
    )),
    Rule("innovation", 1.0, (
        "sang che", "khoi nghiep", "startup", "start up", "chuyen giao cong nghe",
        "so huu tri tue", "patent", "intellectual property", "technology transfer", "spin off",
    )),
    Rule("authority", 1.0, (
        "tham quyen", "phan cap", "uy quyen", "phan quyen", "delegate", "delegation",
        "decentralise", "decentralize", "competence", "competent",
    )),
    Rule("workforce", 1.0, (
        "bien che", "phu cap", "headcount", "allowance", "salary", "salaries", "ky nang so",
        "digital skills",
    )),
    Rule("legal", 1.0, (
        "co so phap ly", "khung phap ly", "hanh lang phap ly", "khoang trong phap ly", "sandbox",
        "legal basis", "legal framework", "legal gap",
    )),
    Rule("procedure", 1.0, (
        "mot cua", "ban giay", "ban sao chung thuc", "khai mot lan", "chi khai 0 lan",
        "once only", "one stop", "paper copies", "paper copy",
    )),
    Rule("data", 1.0, (
        "chia se du lieu", "co so du lieu quoc gia", "dung du sach song", "lam sach du lieu",
        "data sharing", "share data", "shared data", "national database",
    )),
    Rule("infrastructure", 1.0, (
        "trung tam du lieu", "data centre", "data center", "song dien thoai", "song di dong",
        "cap quang", "duong truyen", "khong tuong thich", "incompatible", "mobile coverage",
    )),
)


class RuleSet:
    """Compiled rules: folded texts in, a matrix of logit boosts out."""

    def __init__(self, rules: Sequence[Rule], labels: Sequence[str]) -> None:
        index = {label: i for i, label in enumerate(labels)}
        # Rules for categories the model does not know (an operator's taxonomy) are skipped.
        self._compiled = [(index[r.category], r.boost, r.pattern(), r.max_tokens)
                          for r in rules if r.category in index]
        self._width = len(labels)

    def boosts(self, folded: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(folded), self._width))
        for row, text in enumerate(folded):
            n_tokens = text.count(" ") + 1 if text else 0
            for column, boost, pattern, max_tokens in self._compiled:
                if max_tokens is not None and n_tokens > max_tokens:
                    continue
                if pattern.search(text):
                    out[row, column] += boost
        return out
