"""Classifier speed: texts/s in batches and single-text latency (p50/p99), plus training time.

Baseline, measured in the same run: a bare scikit-learn pipeline (word 1-2-gram TF-IDF on the raw
lowercased text + the same logistic regression) trained on the same corpus, with no folding, no
character n-grams, no rules and no temperature. The ratio shows what folding, character n-grams
and rules cost; the accuracy columns (dev set, if present, as typed and stripped of diacritics)
show what they buy.
Usage: python bench/bench_classifier.py [N_TEXTS] [--json FILE]
Targets: >= 2,000 texts/s batched, p99 < 5 ms for one text.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline

from bench.common import Result, machine, pop_json_arg, print_table, write_results
from hotline.classifier import train_classifier
from hotline.classifier.corpus import load_corpus, parse_jsonl
from hotline.classifier.fold import strip_diacritics
from hotline.classifier.model import C

DEV_SET = Path(__file__).resolve().parents[2] / "shared" / "eval" / "blockers_dev.jsonl"
#: Our own dev set in writer styles the first corpus lacked (never trained on).
FRESH_DEV = Path(__file__).resolve().parents[1] / "tests" / "data" / "classifier" / "fresh_dev.jsonl"
BATCH = 256


def _texts(n: int) -> list[str]:
    """N report-like texts: corpus texts, shuffled, some stripped of diacritics, some doubled."""
    rng = random.Random(7)
    corpus = [text for text, _ in load_corpus()]
    out = []
    for _ in range(n):
        text = rng.choice(corpus)
        if rng.random() < 0.3:
            text = strip_diacritics(text)
        if rng.random() < 0.2:
            text = text + " " + rng.choice(corpus)
        out.append(text)
    return out


def _baseline() -> Pipeline:
    corpus = load_corpus()
    pipeline = make_pipeline(
        TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, lowercase=True),
        LogisticRegression(C=C, max_iter=1000, solver="newton-cg"),
    )
    return pipeline.fit([t for t, _ in corpus], [label for _, label in corpus])


def _throughput(predict_many: Callable[[Sequence[str]], object], texts: list[str]) -> tuple[float, float]:
    """Texts per wall-clock second and per second of this thread's CPU time."""
    predict_many(texts[:BATCH])  # warm
    started, started_cpu = time.perf_counter(), time.thread_time()
    for i in range(0, len(texts), BATCH):
        predict_many(texts[i : i + BATCH])
    return (len(texts) / (time.perf_counter() - started),
            len(texts) / (time.thread_time() - started_cpu))


def _p99(samples: list[float]) -> float:
    samples = sorted(samples)
    return samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def _latencies_ms(predict_one: Callable[[str], object], texts: list[str]) -> tuple[float, float, float]:
    """Wall-clock p50 and p99, and the p99 of the process's own CPU time: on a shared 2-core box
    the wall p99 mostly measures how often the scheduler preempts us, the CPU p99 what we cost."""
    for text in texts[:50]:
        predict_one(text)
    wall, cpu = [], []
    for text in texts:
        started, started_cpu = time.perf_counter(), time.thread_time()
        predict_one(text)
        cpu.append((time.thread_time() - started_cpu) * 1000)
        wall.append((time.perf_counter() - started) * 1000)
    return statistics.median(wall), _p99(wall), _p99(cpu)


def _accuracy(predict_many: Callable[[Sequence[str]], Sequence[str]],
              examples: list[tuple[str, str]]) -> str:
    if not examples:
        return "n/a"
    predicted = predict_many([t for t, _ in examples])
    right = sum(p == gold for p, (_, gold) in zip(predicted, examples, strict=True))
    return f"{right / len(examples):.3f}"


def main() -> None:
    json_path = pop_json_arg()
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {machine()}; load average {load:.2f}; {n} texts, batches of {BATCH}")
    texts = _texts(n)
    singles = texts[:2000]
    huge = ("Hệ thống của sở bị tấn công bằng mã độc, dữ liệu bị mã hoá. " * 400)[:20_000]

    started = time.perf_counter()
    ours = train_classifier()
    ours_train = time.perf_counter() - started
    started = time.perf_counter()
    base = _baseline()
    base_train = time.perf_counter() - started

    dev = parse_jsonl(DEV_SET.read_text("utf-8"), source=str(DEV_SET)) if DEV_SET.is_file() else []
    dev_plain = [(strip_diacritics(t), label) for t, label in dev]
    fresh = parse_jsonl(FRESH_DEV.read_text("utf-8"), source=str(FRESH_DEV)) if FRESH_DEV.is_file() else []
    fresh_plain = [(strip_diacritics(t), label) for t, label in fresh]

    def ours_many(batch: Sequence[str]) -> list[str]:
        return [r.category for r in ours.classify_many(batch)]

    def base_many(batch: Sequence[str]) -> list[str]:
        return [str(label) for label in base.predict(list(batch))]

    rows = []
    figures = {}
    for name, many, one, train_s in (
        ("ours (fold + word/char TF-IDF + LR + rules)", ours_many, ours.classify, ours_train),
        ("baseline (raw word TF-IDF + LR)", base_many, lambda t: base.predict_proba([t]), base_train),
    ):
        rate, rate_cpu = _throughput(many, texts)
        p50, p99, p99_cpu = _latencies_ms(one, singles)
        started = time.perf_counter()
        one(huge)
        huge_ms = (time.perf_counter() - started) * 1000
        figures[name] = (rate, rate_cpu, p50, p99, p99_cpu)
        rows.append([name, f"{train_s:.2f}", f"{rate:,.0f}", f"{rate_cpu:,.0f}", f"{p50:.2f}", f"{p99:.2f}",
                     f"{p99_cpu:.2f}", f"{huge_ms:.1f}", _accuracy(many, dev),
                     _accuracy(many, dev_plain), _accuracy(many, fresh), _accuracy(many, fresh_plain)])
    print_table("classifier speed", ["model", "train s", "texts/s batched", "texts/CPU-s batched",
                                     "p50 ms", "p99 ms",
                                     "p99 CPU ms", "20k chars ms", "dev top-1",
                                     "dev top-1 no diacritics", "fresh dev top-1",
                                     "fresh dev top-1 no diacritics"], rows)
    (o_rate, o_cpu_rate, o_p50, o_p99, o_cpu_p99), (b_rate, b_cpu_rate, b_p50, b_p99, _) = (
        figures.values())
    print(f"ratio ours/baseline: throughput {o_rate / b_rate:.2f}x (CPU {o_cpu_rate / b_cpu_rate:.2f}x), "
          f"p50 latency {o_p50 / b_p50:.2f}x, p99 latency {o_p99 / b_p99:.2f}x")
    wall_ok = o_rate >= 2000 and o_p99 < 5
    cpu_ok = o_cpu_rate >= 2000 and o_cpu_p99 < 5
    print(f"targets (>= 2,000 texts/s batched, p99 < 5 ms): wall clock {'met' if wall_ok else 'NOT met'}, "
          f"CPU time {'met' if cpu_ok else 'NOT met'}"
          + ("" if load < 1.5 else f" (load average {load:.1f} on {os.cpu_count()} cores: wall figures "
             "include time spent waiting for a CPU)"))
    base = "bare sklearn pipeline (word TF-IDF + LR)"
    note = f"{n:,} texts, load average {load:.1f}"
    write_results(json_path, [
        Result("classifier", "-", "texts/s batched", o_rate, "texts/s", b_rate, baseline_label=base,
               target=">= 2,000", met=o_rate >= 2000, note=note),
        Result("classifier", "-", "texts/CPU-s batched", o_cpu_rate, "texts/s", b_cpu_rate,
               baseline_label=base, target=">= 2,000", met=o_cpu_rate >= 2000, note=note),
        Result("classifier", "-", "p99 one text", o_p99, "ms", b_p99, baseline_label=base,
               target="< 5", met=o_p99 < 5, note=note),
        Result("classifier", "-", "p99 one text, CPU", o_cpu_p99, "ms", None, target="< 5",
               met=o_cpu_p99 < 5, note=note),
    ])


if __name__ == "__main__":
    main()
