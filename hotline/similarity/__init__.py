"""Similarity of blocker reports: the same problem written in other words.

``text`` turns a report into canonical tokens (no diacritics, English domain terms mapped onto
their Vietnamese equivalents, acronyms expanded); ``score`` compares two reports. Both are pure.
The persisted term index lives in ``storage.similarity`` and the search that respects which
tickets may be suggested in ``hotline.services.similarity``.
"""

from hotline.similarity.score import Profile, profile, similarity
from hotline.similarity.text import canonical, terms

__all__ = ["Profile", "canonical", "profile", "similarity", "terms"]
