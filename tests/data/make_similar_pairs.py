"""Build the labelled pair sets for ``hotline similar --eval`` from similar_problems.toml.

Run from the repository root: ``python tests/data/make_similar_pairs.py``. Deterministic (seeded),
so the committed JSONL files can be rebuilt and compared. Variants derived here are the ones
reporters produce without thinking: the text typed without diacritics, and typos (two letters
swapped or one dropped in some words); the other wordings are written out in the TOML file.
"""

from __future__ import annotations

import itertools
import json
import random
import tomllib
import unicodedata
from pathlib import Path

HERE = Path(__file__).parent


def no_diacritics(text: str) -> str:
    text = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(ch for ch in text if unicodedata.category(ch) != "Mn")


def typos(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    for i, word in enumerate(words):
        if len(word) >= 4 and word.isalpha() and rng.random() < 0.3:
            j = rng.randrange(1, len(word) - 1)
            words[i] = (word[:j] + word[j + 1] + word[j] + word[j + 2:] if rng.random() < 0.5
                        else word[:j] + word[j + 1:])
    return " ".join(words)


def variants(problem: dict[str, str]) -> dict[str, str]:
    rng = random.Random(problem["id"])
    return {
        "vi": problem["vi"], "short": problem["short"], "en": problem["en"],
        "vi_nd": no_diacritics(problem["vi"]).lower(),
        "short_nd": no_diacritics(problem["short"]).lower(),
        "typo": typos(no_diacritics(problem["vi"]).lower(), rng),
    }


POSITIVE = [("vi", "en", "en-vi"), ("vi", "short_nd", "short-long,no-diacritics"),
            ("short", "en", "short-long,en-vi"), ("typo", "vi", "typos,no-diacritics"),
            ("vi_nd", "en", "en-vi,no-diacritics")]
NEGATIVE = [("vi", "vi"), ("short_nd", "vi"), ("en", "vi"), ("short", "short"), ("typo", "en")]


def build(problems: list[dict[str, str]], split: str, seed: int) -> list[dict[str, object]]:
    chosen = [p for p in problems if p["split"] == split]
    forms = {p["id"]: variants(p) for p in chosen}
    positives = [{"a": forms[p["id"]][x], "b": forms[p["id"]][y], "same": True, "why": why,
                  "problem": p["id"]} for p in chosen for x, y, why in POSITIVE]
    rng = random.Random(seed)
    hard = [(p, q) for p, q in itertools.combinations(chosen, 2) if p["category"] == q["category"]]
    negatives = [{"a": forms[p["id"]][x], "b": forms[q["id"]][y], "same": False,
                  "why": f"same category ({p['category']}), different problem",
                  "problem": f"{p['id']}|{q['id']}"}
                 for p, q in hard for x, y in NEGATIVE]
    if len(negatives) < len(positives):
        # Too few same-category problems in this split: fill with other problems, nearest first
        # by shared canonical category group (still a different problem).
        others = [(p, q) for p, q in itertools.combinations(chosen, 2) if p["category"] != q["category"]]
        rng.shuffle(others)
        for p, q in others:
            x, y = rng.choice(NEGATIVE)
            negatives.append({"a": forms[p["id"]][x], "b": forms[q["id"]][y], "same": False,
                              "why": "different problem, other category",
                              "problem": f"{p['id']}|{q['id']}"})
            if len(negatives) >= len(positives):
                break
    rng.shuffle(negatives)
    pairs = positives + negatives[: len(positives)]
    rng.shuffle(pairs)
    return pairs


def main() -> None:
    problems = tomllib.loads((HERE / "similar_problems.toml").read_text("utf-8"))["problem"]
    for split, seed in (("tune", 1), ("heldout", 2)):
        pairs = build(problems, split, seed)
        with (HERE / f"similar_pairs_{split}.jsonl").open("w", encoding="utf-8") as out:
            for pair in pairs:
                out.write(json.dumps(pair, ensure_ascii=False) + "\n")
        same = sum(1 for p in pairs if p["same"])
        print(f"{split}: {len(pairs)} pairs ({same} same, {len(pairs) - same} different)")


if __name__ == "__main__":
    main()
