"""Loading the classifier: train on first use, optionally keep the fitted model in a directory.

The cache key is a hash of everything the model is made from (corpus, vague texts, corrections,
taxonomy codes, model settings, scikit-learn version), so a stale model is never served: change
any of them and the next load retrains. ``retrain`` also leaves a snapshot of the corrections it
used next to the model, so a bot process started later (which has no database query of its own
here) loads the model the coordinator's corrections produced.

The cache holds pickles: point ``HOTLINE_CLASSIFIER_CACHE_DIR`` only at a directory that only the
operator can write.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import tempfile
from collections.abc import Sequence
from pathlib import Path

from hotline.classifier.corpus import Example, corpus_text, fingerprint, parse_jsonl, vague_text
from hotline.classifier.model import Classifier, settings_signature, train_classifier
from hotline.errors import ConfigError
from hotline.taxonomy import Taxonomy, load_taxonomy

log = logging.getLogger(__name__)

CORRECTIONS_SNAPSHOT = "corrections.jsonl"
_MODEL_PREFIX = "classifier-"
_MODEL_SUFFIX = ".pkl"


def cache_key(extra_examples: Sequence[Example], taxonomy: Taxonomy) -> str:
    return fingerprint(list(extra_examples), settings_signature(), corpus_text(), vague_text(),
                       ",".join(taxonomy.codes))


def model_path(cache_dir: Path, key: str) -> Path:
    return cache_dir / f"{_MODEL_PREFIX}{key[:32]}{_MODEL_SUFFIX}"


def read_snapshot(cache_dir: Path) -> list[Example]:
    """The corrections the last ``retrain`` used (none if it never ran or the file is unreadable)."""
    file = cache_dir / CORRECTIONS_SNAPSHOT
    try:
        return parse_jsonl(file.read_text("utf-8"), source=str(file))
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        log.warning("ignoring unreadable corrections snapshot %s: %s", file, exc)
        return []


def _atomic_write(path: Path, data: bytes) -> None:
    """Write via a temporary file and rename, so a reader (another worker) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load_cached(path: Path, key: str) -> Classifier | None:
    try:
        with path.open("rb") as handle:
            model = pickle.load(handle)
    except FileNotFoundError:
        return None
    except Exception as exc:  # a truncated or foreign file: retrain rather than fail
        log.warning("ignoring unreadable classifier cache %s: %s", path, exc)
        return None
    if not isinstance(model, Classifier) or model.fingerprint != key:
        return None
    return model


def save_classifier(classifier: Classifier, cache_dir: Path) -> Path:
    """Write the model under its key and remove models of other keys (they can never be used)."""
    path = model_path(cache_dir, classifier.fingerprint)
    _atomic_write(path, pickle.dumps(classifier, protocol=pickle.HIGHEST_PROTOCOL))
    for old in cache_dir.glob(f"{_MODEL_PREFIX}*{_MODEL_SUFFIX}"):
        if old != path:
            old.unlink(missing_ok=True)
    return path


def load_classifier(
    cache_dir: Path | str | None = None,
    taxonomy: Taxonomy | None = None,
    extra_examples: Sequence[Example] | None = None,
) -> Classifier:
    """A trained classifier: from the cache when its key matches, else trained (about a second).

    ``extra_examples=None`` means "the corrections of the last retrain" (read from the cache
    directory); pass a sequence to train on exactly those. A cache that cannot be written is
    logged and skipped: classification must not fail because of a read-only disk.
    """
    taxonomy = taxonomy or load_taxonomy()
    directory = Path(cache_dir) if cache_dir is not None else None
    if extra_examples is None:
        extra_examples = read_snapshot(directory) if directory is not None else []
    key = cache_key(extra_examples, taxonomy)
    if directory is not None:
        cached = _load_cached(model_path(directory, key), key)
        if cached is not None:
            return cached
    classifier = train_classifier(extra_examples, taxonomy, fingerprint=key)
    if directory is not None:
        try:
            save_classifier(classifier, directory)
        except OSError as exc:
            log.warning("classifier cache %s not written: %s", directory, exc)
    return classifier


def retrain(
    corrections: Sequence[Example], cache_dir: Path | str | None, taxonomy: Taxonomy | None = None
) -> tuple[Classifier, Path | None]:
    """Train on corpus + corrections and, with a cache directory, make it the model every process
    loads from now on (snapshot of the corrections + the fitted model). Returns the model path."""
    taxonomy = taxonomy or load_taxonomy()
    key = cache_key(corrections, taxonomy)
    classifier = train_classifier(corrections, taxonomy, fingerprint=key)
    if cache_dir is None:
        return classifier, None
    directory = Path(cache_dir)
    try:
        lines = "".join(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n"
                        for text, label in corrections)
        _atomic_write(directory / CORRECTIONS_SNAPSHOT, lines.encode("utf-8"))
        return classifier, save_classifier(classifier, directory)
    except OSError as exc:
        raise ConfigError(f"classifier cache directory {directory} cannot be written: "
                          f"{exc.strerror or exc}") from None
