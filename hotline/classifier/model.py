"""The report classifier: TF-IDF (words and characters, on folded text) + logistic regression
+ a few keyword rules, with a temperature fitted by cross-validation so confidence means something.

Why this and not a neural model: it trains in about a second on a laptop-sized corpus, needs no
download, is deterministic, and character n-grams make it tolerant of typos and of Vietnamese
typed without diacritics. Why the temperature: the raw scale of a regularised linear model's
scores says little (here they come out too flat); scaling them so that predictions on held-out
folds have the lowest log-loss makes "0.55" mean roughly "right a bit more than half the time",
which is what the chat's "offer the top three below the threshold" rule needs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.linear_model import LogisticRegression

from hotline.classifier.corpus import Example, load_corpus, load_vague
from hotline.classifier.features import Featurizer
from hotline.classifier.focus import features_text
from hotline.classifier.fold import fold, has_content
from hotline.classifier.memory import CorrectionMemory
from hotline.classifier.rules import DEFAULT_RULES, Rule, RuleSet
from hotline.taxonomy import FALLBACK_CATEGORY, Taxonomy, load_taxonomy

#: Bump when features, model or rules change: part of the cache key, so old caches are not used.
MODEL_VERSION = "3"
#: Inverse regularisation of the logistic regression (chosen by grouped cross-validation on the
#: corpus; accuracy is flat from 5 to 50).
C = 10.0
#: Same-category examples whose word vectors are at least this similar (cosine) are one group in
#: cross-validation: the corpus has the same report typed with and without diacritics, and
#: letting one predict the other would make held-out scores look surer than they are.
GROUP_SIMILARITY = 0.5
#: Corrections are few and authoritative: each counts as this many corpus examples.
EXTRA_WEIGHT = 2.0
#: Confidence given to ``other`` for input with no letters at all (emoji, punctuation, blank):
#: below any sensible threshold, so the chat offers choices instead of guessing.
EMPTY_CONFIDENCE = 0.2
#: Used when there are too few examples to fit a temperature (a tiny operator taxonomy); the
#: value the shipped corpus gives.
DEFAULT_TEMPERATURE = 0.4
#: Repeat a long report's main ask in its features (see ``focus``).
MAIN_ASK = True
_FOLDS = 3


def _features_text(text: str | None, folded: str) -> str:
    return features_text(text, folded) if MAIN_ASK else folded
_SEED = 0


@dataclass(frozen=True)
class Classification:
    """One classified report: the best category, its probability and every category ranked."""

    category: str
    confidence: float
    candidates: tuple[tuple[str, float], ...]

    def top(self, n: int = 3) -> list[str]:
        """The ``n`` best category codes (what the chat offers as buttons)."""
        return [code for code, _ in self.candidates[:n]]

    def is_confident(self, threshold: float) -> bool:
        return self.confidence >= threshold


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def _logistic(tol: float = 1e-4) -> LogisticRegression:
    # newton-cg: same optimum as lbfgs, several times faster on these sparse features.
    return LogisticRegression(C=C, max_iter=1000, solver="newton-cg", tol=tol)


def _linear(model: LogisticRegression) -> tuple[np.ndarray, np.ndarray]:
    """Weights as (n_features, n_classes) and intercepts, also for a two-class model (which
    scikit-learn stores as one column)."""
    coef, intercept = model.coef_, model.intercept_
    if coef.shape[0] == 1:
        coef = np.vstack([-coef[0] / 2, coef[0] / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
    return np.ascontiguousarray(coef.T, dtype=np.float64), np.asarray(intercept, dtype=np.float64)


def _logits(model: LogisticRegression, features: csr_matrix) -> np.ndarray:
    coef_t, intercept = _linear(model)
    return np.asarray(features @ coef_t) + intercept


def settings_signature(rules: Sequence[Rule] = DEFAULT_RULES) -> str:
    """Everything besides the data that shapes a trained model, for the cache key: a changed
    constant, rule or abbreviation can then never be served a model trained before the change."""
    import sklearn

    from hotline.classifier import features, memory
    from hotline.classifier.fold import ABBREVIATIONS, MAX_CHARS

    return repr((MODEL_VERSION, sklearn.__version__, C, GROUP_SIMILARITY, EXTRA_WEIGHT,
                 EMPTY_CONFIDENCE, MAIN_ASK, _FOLDS, _SEED, MAX_CHARS, sorted(ABBREVIATIONS.items()),
                 tuple(rules), features.CHAR_MIN_N, features.CHAR_MAX_N, features.CHAR_MIN_DF,
                 memory.MIN_SIMILARITY, memory.BOOST))


class Classifier:
    """A fitted classifier; immutable after training, so one instance can serve every request.

    Prediction uses plain numpy on the fitted weights (no scikit-learn call): that is what keeps
    one report well under a millisecond.
    """

    def __init__(
        self,
        *,
        codes: Sequence[str],
        featurizer: Featurizer,
        model: LogisticRegression,
        temperature: float,
        rules: Sequence[Rule],
        fingerprint: str = "",
        n_examples: int = 0,
        memory: CorrectionMemory | None = None,
    ) -> None:
        self.codes = tuple(codes)
        self.fingerprint = fingerprint
        self.n_examples = n_examples
        self.temperature = temperature
        self._featurizer = featurizer
        self._labels = tuple(str(c) for c in model.classes_)
        self._coef_t, self._intercept = _linear(model)
        self._rules_spec = tuple(rules)
        self._rules = RuleSet(rules, self._labels)
        self._to_codes = np.array([self.codes.index(label) for label in self._labels])
        self._empty = _empty_distribution(self.codes)
        self._memory = memory if memory is not None and len(memory) else None

    # pickling (the model cache) keeps the rule spec, not compiled regexes
    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        del state["_rules"]
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._rules = RuleSet(self._rules_spec, self._labels)

    @property
    def labels(self) -> tuple[str, ...]:
        """The categories the model was trained on (a subset of ``codes`` only for an operator's
        taxonomy that has categories without examples)."""
        return self._labels

    def _logits(self, folded: Sequence[str]) -> np.ndarray:
        """Temperature-scaled model scores, plus the correction memory's boosts."""
        if len(folded) == 1:  # the chat path: gather a few weight rows, no sparse matrix
            indices, values = self._featurizer.row(folded[0])
            scores = ((values @ self._coef_t[indices]) + self._intercept)[np.newaxis, :]
            scores = scores / self.temperature
            if self._memory is not None:
                scores = scores + self._memory.boosts_one(indices, values)
            return scores
        features = self._featurizer.transform(folded)
        scores = (np.asarray(features @ self._coef_t) + self._intercept) / self.temperature
        if self._memory is not None:
            scores = scores + self._memory.boosts(features)
        return scores

    def probabilities(self, texts: Sequence[str | None]) -> np.ndarray:
        """Rows of probabilities over ``codes`` (columns in taxonomy order)."""
        folded = [fold(text) for text in texts]
        out = np.zeros((len(folded), len(self.codes)))
        live = [i for i, text in enumerate(folded) if has_content(text)]
        if live:
            live_folded = [folded[i] for i in live]
            read = [_features_text(texts[i], folded[i]) for i in live]
            logits = self._logits(read) + self._rules.boosts(live_folded)
            out[np.ix_(live, self._to_codes)] = _softmax(logits)
        if len(live) < len(folded):
            out[[i for i, text in enumerate(folded) if not has_content(text)]] = self._empty
        return out

    def classify(self, text: str | None) -> Classification:
        return self.classify_many([text])[0]

    def classify_many(self, texts: Iterable[str | None]) -> list[Classification]:
        batch = list(texts)
        if not batch:
            return []
        return [self._classification(row) for row in self.probabilities(batch)]

    def _classification(self, row: np.ndarray) -> Classification:
        # Ties (only in the empty case) keep taxonomy order, so the result is deterministic.
        order = sorted(range(len(self.codes)), key=lambda i: (-row[i], i))
        candidates = tuple((self.codes[i], float(row[i])) for i in order)
        best, confidence = candidates[0]
        return Classification(category=best, confidence=confidence, candidates=candidates)


def _empty_distribution(codes: Sequence[str]) -> np.ndarray:
    fallback = FALLBACK_CATEGORY if FALLBACK_CATEGORY in codes else codes[0]
    rest = (1.0 - EMPTY_CONFIDENCE) / max(len(codes) - 1, 1)
    row = np.full(len(codes), rest)
    row[codes.index(fallback)] = EMPTY_CONFIDENCE if len(codes) > 1 else 1.0
    return row


def training_examples(
    extra_examples: Sequence[Example] = (), taxonomy: Taxonomy | None = None,
    corpus: Sequence[Example] | None = None,
) -> tuple[list[Example], list[float]]:
    """Corpus + extras restricted to the taxonomy's categories, with sample weights.

    A correction replaces a corpus example with the same folded text: the coordinator's label is
    the newer truth. Unknown labels (a category an operator removed) are dropped, not fatal.
    ``corpus`` replaces the shipped corpus (cross-validation and learning curves train on parts).
    """
    codes = set((taxonomy or load_taxonomy()).codes)
    base = load_corpus() if corpus is None else corpus
    merged: dict[str, tuple[str, str, float]] = {}
    for text, label, weight in [*((t, lab, 1.0) for t, lab in base),
                                *((t, lab, EXTRA_WEIGHT) for t, lab in extra_examples)]:
        folded = fold(text)
        if label in codes and has_content(folded):
            merged.pop(folded, None)
            merged[folded] = (text, label, weight)
    examples = [(text, label) for text, label, _ in merged.values()]
    weights = [weight for _, _, weight in merged.values()]
    return examples, weights


def near_duplicate_groups(word_features: csr_matrix, y: np.ndarray) -> np.ndarray:
    """Group ids joining same-label examples that are near-paraphrases of each other."""
    similar = (word_features @ word_features.T).tocoo()
    keep = (similar.data >= GROUP_SIMILARITY) & (y[similar.row] == y[similar.col])
    graph = csr_matrix((np.ones(int(keep.sum())), (similar.row[keep], similar.col[keep])),
                       shape=similar.shape)
    _, groups = connected_components(graph, directed=False)
    return groups


def group_folds(y: np.ndarray, groups: np.ndarray, n_folds: int, seed: int = _SEED) -> np.ndarray:
    """Fold number per example: whole groups per fold, each label spread evenly, seeded.

    (sklearn's StratifiedGroupKFold does the same but takes most of a second on this corpus.)
    """
    rng = np.random.default_rng(seed)
    fold_of = np.zeros(len(y), dtype=int)
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        label_groups = list(dict.fromkeys(groups[members].tolist()))
        counts = np.zeros(n_folds, dtype=int)
        for group in rng.permutation(np.array(label_groups)).tolist():
            in_group = members[groups[members] == group]
            target = int(np.argmin(counts))
            fold_of[in_group] = target
            counts[target] += len(in_group)
    return fold_of


def fit_temperature(logits: np.ndarray, y: np.ndarray, boosts: np.ndarray) -> float:
    """The temperature that minimises held-out log-loss (rules included, as at prediction)."""

    def loss(log_t: float) -> float:
        probs = _softmax(logits / math.exp(log_t) + boosts)
        return float(-np.mean(np.log(probs[np.arange(len(y)), y] + 1e-12)))

    result = minimize_scalar(loss, bounds=(math.log(0.05), math.log(20.0)), method="bounded")
    return float(math.exp(result.x))


def train_classifier(
    extra_examples: Sequence[Example] = (),
    taxonomy: Taxonomy | None = None,
    *,
    rules: Sequence[Rule] = DEFAULT_RULES,
    fingerprint: str = "",
    corpus: Sequence[Example] | None = None,
) -> Classifier:
    """Train on the shipped corpus plus ``extra_examples`` (coordinator corrections).

    Deterministic: the same data gives the same model (seeded folds, deterministic solver).
    """
    taxonomy = taxonomy or load_taxonomy()
    examples, weights = training_examples(extra_examples, taxonomy, corpus)
    labels = sorted({label for _, label in examples})
    if len(labels) < 2:
        raise ValueError("the classifier needs examples of at least two categories")
    folded = [fold(text) for text, _ in examples]
    read = [_features_text(text, f) for (text, _), f in zip(examples, folded, strict=True)]
    vague = [_features_text(v, f) for v, f in ((v, fold(v)) for v in load_vague()) if has_content(f)]
    n = len(folded)
    y = np.searchsorted(labels, [label for _, label in examples])
    # Each vague text once per label, the weight shared: its target is the uniform distribution.
    all_y = np.concatenate([y, np.tile(np.arange(len(labels)), len(vague))])
    all_weights = np.concatenate([weights, np.full(len(vague) * len(labels), 1.0 / len(labels))])
    all_folded = read + [text for text in vague for _ in labels]

    featurizer = Featurizer.fit(all_folded)
    # float32: the solver runs several times faster on it, to the same optimum for our purposes.
    features = featurizer.transform(all_folded).astype(np.float32)

    # Held-out scores for the temperature (vague texts stay in every training fold). The
    # featuriser is shared across folds (its idf barely moves): training stays near a second.
    groups = near_duplicate_groups(featurizer.word_block(features[:n]), y)
    fold_of = np.concatenate([group_folds(y, groups, _FOLDS), np.full(len(all_y) - n, -1)])
    held_out = np.zeros((n, len(labels)))
    usable = np.zeros(n, dtype=bool)
    for k in range(_FOLDS):
        train_idx, test_idx = np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)
        if len(test_idx) == 0 or len(np.unique(all_y[train_idx])) < 2:
            continue
        fold_model = _logistic(tol=1e-3).fit(features[train_idx], all_y[train_idx],
                                             sample_weight=all_weights[train_idx])
        held = np.full((len(test_idx), len(labels)), -1e3)
        held[:, fold_model.classes_] = _logits(fold_model, features[test_idx])
        held_out[test_idx] = held
        # A label the fold never saw cannot be predicted: it says nothing about the scale.
        usable[test_idx] = np.isin(y[test_idx], fold_model.classes_)
    temperature = DEFAULT_TEMPERATURE
    if usable.sum() >= 30:
        boosts = RuleSet(rules, labels).boosts([folded[i] for i in np.flatnonzero(usable)])
        temperature = fit_temperature(held_out[usable], y[usable], boosts)

    model = _logistic().fit(features, np.array(labels)[all_y], sample_weight=all_weights)
    memory = _memory(extra_examples, featurizer, labels)
    return Classifier(codes=taxonomy.codes, featurizer=featurizer, model=model,
                      temperature=temperature, rules=rules, fingerprint=fingerprint, memory=memory,
                      n_examples=n)


def _memory(
    corrections: Sequence[Example], featurizer: Featurizer, labels: Sequence[str]
) -> CorrectionMemory | None:
    """The corrections (usable ones: a known label, some letters) as a correction memory."""
    column = {label: i for i, label in enumerate(labels)}
    kept = [(fold(text), text, label) for text, label in corrections if label in column]
    kept = [(folded, text, label) for folded, text, label in kept if has_content(folded)]
    if not kept:
        return None
    rows = featurizer.transform([_features_text(text, folded) for folded, text, _ in kept])
    return CorrectionMemory(rows, [column[label] for _, _, label in kept], len(labels))
