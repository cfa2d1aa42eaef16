"""Routes blocker reports (Vietnamese with or without diacritics, English) to a taxonomy category.

``load_classifier()`` once per process, then ``classify(text)``: the category, a calibrated
confidence and every category ranked, so the chat can offer the top three when unsure.
"""

from hotline.classifier.cache import load_classifier, retrain
from hotline.classifier.evaluate import EvalReport, evaluate
from hotline.classifier.fold import fold
from hotline.classifier.model import Classification, Classifier, train_classifier

__all__ = [
    "Classification",
    "Classifier",
    "EvalReport",
    "evaluate",
    "fold",
    "load_classifier",
    "retrain",
    "train_classifier",
]
