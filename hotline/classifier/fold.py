"""Text folding: one canonical form for Vietnamese typed with or without diacritics, and English.

Chat users type "ko dc cap von" as often as "không được cấp vốn"; folding both to the same
ASCII tokens means the model learns one feature where it would otherwise need two, and a report
typed without diacritics scores the same as the same report typed properly.
"""

from __future__ import annotations

import unicodedata

#: Reports longer than this are cut before folding: the gist of a report is at its start, and
#: the cut keeps a 20,000-character paste as fast as a chat line.
MAX_CHARS = 3000

# Chat abbreviations that are unambiguous in hotline reports (folded form -> folded expansion).
# Ambiguous ones ("dk" = dang ky or dieu kien, "tt" = thong tu or trung tam) are left alone;
# character n-grams still see them.
ABBREVIATIONS: dict[str, str] = {
    "ko": "khong",
    "k": "khong",
    "khg": "khong",
    "hok": "khong",
    "dc": "duoc",
    "j": "gi",
    "r": "roi",
    "vs": "voi",
    "ntn": "nhu the nao",
    "dn": "doanh nghiep",
    "dns": "doanh nghiep",
    "csdl": "co so du lieu",
    "ubnd": "uy ban nhan dan",
    "cntt": "cong nghe thong tin",
    "cds": "chuyen doi so",
    "tthc": "thu tuc hanh chinh",
    "dvc": "dich vu cong",
    "dvctt": "dich vu cong truc tuyen",
    "attt": "an toan thong tin",
    "bhxh": "bao hiem xa hoi",
    "bhyt": "bao hiem y te",
    "cbcc": "can bo cong chuc",
    "cbccvc": "can bo cong chuc vien chuc",
    "nd": "nghi dinh",
    "qd": "quyet dinh",
    "qppl": "quy pham phap luat",
    "sdt": "so dien thoai",
    "mst": "ma so thue",
    "khcn": "khoa hoc cong nghe",
    "kh&cn": "khoa hoc cong nghe",
    "shtt": "so huu tri tue",
    "dlcn": "du lieu ca nhan",
    "hs": "ho so",
    "vb": "van ban",
    "cv": "cong van",
    "tk": "tai khoan",
    "kb": "kho bac",
    "kbnn": "kho bac nha nuoc",
    "lcnt": "lua chon nha thau",
    "hsmt": "ho so moi thau",
    "hsdt": "ho so du thau",
    "ptn": "phong thi nghiem",
    "mxh": "mang xa hoi",
    "cccd": "can cuoc cong dan",
    "ttdt": "thong tin dien tu",
    "gplx": "giay phep lai xe",
    "dkkd": "dang ky kinh doanh",
    "ngs": "ngan sach",
    "nsnn": "ngan sach nha nuoc",
    "qlvb": "quan ly van ban",
    "hcc": "hanh chinh cong",
    "pls": "please",
    "plz": "please",
    "thx": "thanks",
}

# Every byte that is not a lowercase letter, a digit or "&" (as in "r&d") becomes a space.
_KEEP = b"abcdefghijklmnopqrstuvwxyz0123456789&"
_BYTE_TABLE = bytes(b if b in _KEEP else ord(" ") for b in range(256))


def strip_diacritics(text: str) -> str:
    """Vietnamese letters to their base ASCII letter (đ -> d, ư -> u, ế -> e).

    Characters with no ASCII base (emoji, other scripts) are dropped; folding would drop them
    anyway, and ``encode("ascii", "ignore")`` keeps the whole thing at C speed.
    """
    text = text.replace("đ", "d").replace("Đ", "D")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def fold(text: str | None, *, expand: bool = True) -> str:
    """Canonical form for features: lowercase ASCII words, numbers as ``0``, abbreviations expanded.

    Total on any input (``None``, emoji, control characters): the worst case is ``""``.
    """
    if not text:
        return ""
    raw = text[:MAX_CHARS].replace("đ", "d").replace("Đ", "D")
    ascii_bytes = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").lower()
    tokens = ascii_bytes.translate(_BYTE_TABLE).decode("ascii").split()
    out = []
    for token in tokens:
        if token.isdigit():
            token = "0"
        elif expand:
            token = ABBREVIATIONS.get(token, token)
        out.append(token)
    return " ".join(out)


def has_content(folded: str) -> bool:
    """Whether folding left any letter: empty, emoji-only and punctuation-only input has none."""
    return any("a" <= ch <= "z" for ch in folded)
