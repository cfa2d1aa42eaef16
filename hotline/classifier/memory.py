"""Coordinator corrections remembered as they are, so the next near-identical report follows them.

A correction is also a (doubly weighted) training example, but one example among a thousand-odd
moves a regularised linear model only a little: the coordinator who has just recategorised
"fishing-boat tracker shows the wrong position" sees the same kind of report misrouted again the
next day. The memory adds to a category's score in proportion to how close a new report is to a
report the coordinator filed under that category (cosine similarity of the same TF-IDF features
the model reads), from ``MIN_SIMILARITY`` up. Far-off reports get nothing, so a correction cannot
drag unrelated reports along; with no corrections the memory is empty and costs nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.sparse import csr_matrix

#: Below this cosine similarity a correction says nothing about a new report.
MIN_SIMILARITY = 0.35
#: Logit added at similarity 1 (scaled linearly down to 0 at ``MIN_SIMILARITY``): an identical
#: report follows the coordinator's category unless the model is extremely sure otherwise.
BOOST = 6.0


class CorrectionMemory:
    """Feature rows of the corrections and the label column of each."""

    def __init__(self, features: csr_matrix, label_columns: Sequence[int], width: int) -> None:
        # Each of the featuriser's two blocks is L2-normalised, so a row's norm is sqrt(2).
        self._rows = csr_matrix(features, dtype=np.float64) / 2.0
        self._columns = np.asarray(label_columns, dtype=np.int64)
        self._width = width

    def __len__(self) -> int:
        return len(self._columns)

    def _from_similarity(self, similarity: np.ndarray) -> np.ndarray:
        """(n_texts, n_corrections) similarities to (n_texts, width) logit boosts (best match per
        label, so ten identical corrections weigh no more than one)."""
        strength = np.clip((similarity - MIN_SIMILARITY) / (1.0 - MIN_SIMILARITY), 0.0, 1.0) * BOOST
        out = np.zeros((similarity.shape[0], self._width))
        for column in np.unique(self._columns):
            out[:, column] = strength[:, self._columns == column].max(axis=1)
        return out

    def boosts(self, features: csr_matrix) -> np.ndarray:
        similarity = np.asarray((features @ self._rows.T).todense())
        return self._from_similarity(similarity)

    def boosts_one(self, indices: np.ndarray, values: np.ndarray) -> np.ndarray:
        """The same for one text given as its non-zero feature columns and values."""
        similarity = np.asarray(self._rows[:, indices] @ values).reshape(1, -1)
        return self._from_similarity(similarity)
