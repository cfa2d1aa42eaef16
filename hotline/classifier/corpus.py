"""The shipped training corpus and labelled JSONL files (``{"text": ..., "label": ...}`` a line).

The corpus is ours, written from the taxonomy's scope column; the evaluation set in
``shared/eval`` is never read here, so training can never see it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path

from hotline.errors import InvalidInput

CORPUS_RESOURCE = "corpus/train.jsonl"
#: Reports that say nothing about their category ("we have a problem, please help"): trained
#: towards a uniform distribution so that vague reports get low confidence, not a random guess.
VAGUE_RESOURCE = "corpus/vague.jsonl"

Example = tuple[str, str]


def corpus_text() -> str:
    """The raw corpus file (also what the model cache key is computed from)."""
    return resources.files("hotline.data").joinpath(CORPUS_RESOURCE).read_text("utf-8")


def vague_text() -> str:
    return resources.files("hotline.data").joinpath(VAGUE_RESOURCE).read_text("utf-8")


def load_vague() -> list[str]:
    """Texts with no category signal (one ``{"text": ...}`` object a line)."""
    texts: list[str] = []
    for line in vague_text().splitlines():
        if line.strip():
            texts.append(str(json.loads(line)["text"]))
    return texts


def load_corpus() -> list[Example]:
    """The shipped training examples, in file order (order matters for determinism)."""
    return parse_jsonl(corpus_text(), source="built-in corpus")


def parse_jsonl(text: str, *, source: str, known_labels: Iterable[str] | None = None) -> list[Example]:
    """Parse labelled JSONL; any bad line is one sentence naming the file and line number."""
    known = set(known_labels) if known_labels is not None else None
    examples: list[Example] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise InvalidInput(f"{source}, line {number}: not valid JSON") from None
        if not isinstance(row, dict):
            raise InvalidInput(f"{source}, line {number}: expected an object with text and label")
        label, item = row.get("label"), row.get("text")
        if not isinstance(item, str) or not isinstance(label, str):
            raise InvalidInput(f"{source}, line {number}: 'text' and 'label' must both be strings")
        if known is not None and label not in known:
            raise InvalidInput(f"{source}, line {number}: unknown label {label!r}")
        examples.append((item, label))
    return examples


def read_labelled_file(path: Path, known_labels: Iterable[str] | None = None) -> list[Example]:
    """A labelled JSONL file from disk (``classify --eval``)."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"file {path} does not exist") from None
    except IsADirectoryError:
        raise InvalidInput(f"{path} is a directory, not a JSONL file") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"file {path} is not UTF-8 text") from None
    except OSError as exc:
        raise InvalidInput(f"file {path} cannot be read: {exc.strerror}") from None
    examples = parse_jsonl(text, source=str(path), known_labels=known_labels)
    if not examples:
        raise InvalidInput(f"file {path} has no labelled examples")
    return examples


def fingerprint(examples: Sequence[Example], *parts: str) -> str:
    """Stable hash of the training data (and model settings): the cache key."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\x00")
    for text, label in examples:
        digest.update(label.encode("utf-8"))
        digest.update(b"\x1f")
        digest.update(text.encode("utf-8"))
        digest.update(b"\x1e")
    return digest.hexdigest()
