"""Throughput benchmark: appeals/s classified on one core, batched.

Two figures. ``familiar``: texts drawn from the shipped corpus and made unique (a numbered
suffix), so nearly every word is one the per-token caches have seen. ``unseen``: the same
texts, each with one typo in a word and a made-up surname and street appended (seeded, so every
run classifies the same texts), which is what a fresh appeal looks like: its new words go
through the spelling fix and pymorphy3's guess. The first figure alone overstated the rate a
worker keeps on real appeals (review: half of it with one typo per text, less with names).
Run: ``python -m workers.classification.bench`` or ``appeals classify bench``.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

__all__ = ["UNSEEN_SEED", "run_bench", "unseen_texts"]

_CORPUS = Path(__file__).with_name("corpus")
#: Seed of the typos and made-up names of the ``unseen`` texts.
UNSEEN_SEED = 20261127
_SYLLABLES = ("ба", "ко", "ри", "ну", "ле", "то", "вер", "ски", "да", "мо", "ган", "лин", "тур",
              "ше", "ка", "зо", "ми", "ры", "пе", "стро", "жи", "хав", "гу", "чен")
_LETTERS = "абвгдежзийклмнопрстуфхцчшщыьэюя"
_WORD_RE = re.compile(r"[а-яё]{5,}")


def _texts(n: int) -> list[str]:
    base: list[str] = []
    for name in ("train.jsonl", "test.jsonl"):
        p = _CORPUS / name
        if p.exists():
            base.extend(orjson.loads(line)["text"] for line in p.read_bytes().splitlines() if line)
    if not base:
        base = ["В доме нет отопления, на улице -30, дети мерзнут"]
    return [f"{base[i % len(base)]} №{i}" for i in range(n)]


def _typo(word: str, rnd: random.Random) -> str:
    j = rnd.randrange(1, len(word) - 1)
    op = rnd.randrange(3)
    if op == 0:
        return word[:j] + word[j + 1:]  # dropped letter
    if op == 1:
        return word[:j] + word[j + 1] + word[j] + word[j + 2:]  # swapped neighbours
    return word[:j] + rnd.choice(_LETTERS) + word[j + 1:]  # wrong letter


def _name(rnd: random.Random) -> str:
    return "".join(rnd.choice(_SYLLABLES) for _ in range(rnd.randint(2, 4))).capitalize()


def unseen_texts(texts: Sequence[str], seed: int = UNSEEN_SEED) -> list[str]:
    """``texts``, each with one typo in a word of five letters or more and a made-up surname and
    street appended: words the caches have not seen, the same ones on every run."""
    rnd = random.Random(seed)
    out: list[str] = []
    for i, text in enumerate(texts):
        words = list(_WORD_RE.finditer(text))
        if words:
            m = rnd.choice(words)
            text = text[:m.start()] + _typo(m.group(), rnd) + text[m.end():]
        out.append(f"{text} Заявитель {_name(rnd)}ов, ул. {_name(rnd)}ская, {i % 200 + 1}")
    return out


def _timed(clf: Any, texts: Sequence[str], batch_size: int) -> dict[str, Any]:
    n = len(texts)
    t1 = time.perf_counter()
    c1 = time.process_time()
    for i in range(0, n, batch_size):
        clf.classify_batch(texts[i : i + batch_size])
    dt = time.perf_counter() - t1
    cpu = time.process_time() - c1
    # Wall time is what a worker gets on a free core; CPU time is what the classifier costs
    # whatever else runs on the machine (the figure the tests' floor uses).
    return {"seconds": round(dt, 3), "appeals_per_s": round(n / dt),
            "cpu_seconds": round(cpu, 3), "appeals_per_cpu_s": round(n / max(cpu, 1e-9)),
            "mean_chars": round(sum(map(len, texts)) / max(n, 1))}


def run_bench(n: int = 20_000, batch_size: int = 256, model: str | None = None,
              *, unseen: bool = True) -> dict[str, Any]:
    """Load time (cold, in this process) and steady throughput over ``n`` familiar texts (the
    top-level figures) and, with ``unseen``, over ``n`` texts with new words (key ``unseen``)."""
    t0 = time.perf_counter()
    from .classifier import load_classifier

    clf = load_classifier(model)
    load_s = time.perf_counter() - t0
    texts = _texts(n)
    clf.classify_batch(texts[:batch_size])  # warm the per-token caches with one batch
    res: dict[str, Any] = {"n": n, "batch_size": batch_size}
    res.update(_timed(clf, texts, batch_size))
    res.update(load_s=round(load_s, 3), model_version=clf.version)
    if unseen:
        # After the familiar pass, as in a worker: the corpus vocabulary is cached, the typos
        # and names are not.
        res["unseen"] = {"seed": UNSEEN_SEED,
                         **_timed(clf, unseen_texts(texts), batch_size)}
    return res


if __name__ == "__main__":
    print(orjson.dumps(run_bench()).decode())
