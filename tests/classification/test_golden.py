"""Behavioural lock: the classifier's outputs on a fixed set of texts must not drift.

``data/golden_outputs.jsonl.gz`` holds, for every text of the held-out split (``test.jsonl``),
the fresh held-out sets (``test_fresh*.jsonl``), the training corpus and ~1,500 deterministic
perturbations of them (case, typos, Latin look-alikes, transliteration, shuffled/joined/cut
texts, frost marks, garbage), the category, urgency flag, confidence and top-3 produced by the
classifier *before* the inference speed-ups. Any change in featurisation, lexicon matching or
scoring that alters a result fails here — performance work must keep every output.

If the model is retrained on purpose (new ``model_version``), regenerate the file with::

    .venv/bin/python -m tests.classification.test_golden --regenerate

and review the diff of the evaluation report, not of this file.
"""

from __future__ import annotations

import gzip
import json
import random
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from workers.classification import Classification, Classifier, load_classifier

DATA = Path(__file__).resolve().parent / "data" / "golden_outputs.jsonl.gz"
CORPUS = Path(__file__).resolve().parents[2] / "workers" / "classification" / "corpus"
TOL = 1e-9
SEED = 20_240_601


def _corpus_texts() -> list[tuple[str, str]]:
    """(source, text) for held-out, fresh and training files, in a fixed order, deduplicated."""
    names = ["test.jsonl", *sorted(p.name for p in CORPUS.glob("test_fresh*.jsonl")),
             "train.jsonl"]
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for name in names:
        for raw in (CORPUS / name).read_text(encoding="utf-8").splitlines():
            if raw.strip():
                text = json.loads(raw)["text"]
                if text not in seen:
                    seen.add(text)
                    out.append((name, text))
    return out


_LOOKALIKE = str.maketrans("аеорсхук", "aeopcxyk")
_TO_LATIN = {"а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ж": "zh", "з": "z",
             "и": "i", "й": "j", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p",
             "р": "r", "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch",
             "ш": "sh", "щ": "shch", "ы": "y", "э": "e", "ю": "yu", "я": "ya", "ь": "", "ъ": ""}


def _typo(word: str, rng: random.Random) -> str:
    if len(word) < 4:
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(4)
    if kind == 0:
        return word[:i] + word[i + 1 :]
    if kind == 1:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == 2:
        return word[:i] + word[i] + word[i:]
    return word[:i] + rng.choice("абвгдеклмнопрст") + word[i + 1 :]


def _perturbations(base: Sequence[str], n: int) -> list[str]:
    """Deterministic unseen variants: new tokens (typos, translit) and new combinations."""
    rng = random.Random(SEED)
    out: list[str] = []
    garbage = ["", "   ", "😡😡😡", "!!!???", "asdfgh qwerty", "12345", "ааааааа", "ъыъ ьь",
               "-30", "минус 25", "не не не", "газ", "Газ!!!", "нет", "ok pls", "wifi 4g lte",
               "ПАХНЕТ ГАЗОМ", "ыва ыва ывапр", "xyz ЖЖЖ 🙂 №5"]
    out.extend(garbage)
    while len(out) < n:
        t = rng.choice(base)
        words = t.split()
        kind = rng.randrange(10)
        if kind == 0:
            s = t.upper()
        elif kind == 1:
            s = " ".join(_typo(w, rng) if rng.random() < 0.3 else w for w in words)
        elif kind == 2:
            s = " ".join(w.translate(_LOOKALIKE) if rng.random() < 0.3 else w for w in words)
        elif kind == 3:
            s = "".join(_TO_LATIN.get(ch, ch) for ch in t.lower())
        elif kind == 4:
            s = t + " " + rng.choice(base)
        elif kind == 5:
            rng.shuffle(words)
            s = " ".join(words)
        elif kind == 6:
            s = " ".join(words[: rng.randrange(1, max(2, len(words)))])
        elif kind == 7:
            s = t + rng.choice([" на улице -25°", " минус 30", " −18 градусов", " -5гр", " -40!"])
        elif kind == 8:
            i = rng.randrange(len(words) + 1)
            s = " ".join([*words[:i], rng.choice(["не", "ни", "уже не", "вчера"]), *words[i:]])
        else:
            s = " ".join(w * 2 if rng.random() < 0.1 else w for w in words)
        out.append(s)
    return out


def golden_texts() -> list[tuple[str, str]]:
    corpus = _corpus_texts()
    held_out = [t for src, t in corpus if src.startswith("test")]
    return corpus + [("perturbed", t) for t in _perturbations(held_out, 1500)]


def _record(src: str, text: str, r: Classification) -> dict[str, object]:
    return {"src": src, "text": text, "category": r.category, "urgent": r.urgent,
            "confidence": r.confidence, "top3": [[c, p] for c, p in r.top3],
            "model_version": r.model_version}


def regenerate() -> int:
    clf = load_classifier()
    items = golden_texts()
    results = clf.classify_batch([t for _, t in items])
    DATA.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(DATA, "wt", encoding="utf-8", compresslevel=9) as fh:
        for (src, text), r in zip(items, results, strict=True):
            fh.write(json.dumps(_record(src, text, r), ensure_ascii=False) + "\n")
    print(f"wrote {len(items)} expectations to {DATA}")
    return 0


def _load() -> list[dict[str, object]]:
    with gzip.open(DATA, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


@pytest.fixture(scope="module")
def golden() -> list[dict[str, object]]:
    return _load()


def _check(expected: Sequence[dict[str, object]], got: Sequence[Classification]) -> None:
    assert len(got) == len(expected)
    bad: list[str] = []
    for e, r in zip(expected, got, strict=True):
        top3 = e["top3"]
        assert isinstance(top3, list)
        ok = (r.category == e["category"] and r.urgent == e["urgent"]
              and abs(r.confidence - float(e["confidence"])) <= TOL  # type: ignore[arg-type]
              and len(r.top3) == len(top3)
              and all(c == ec and abs(p - ep) <= TOL
                      for (c, p), (ec, ep) in zip(r.top3, top3, strict=True)))
        if not ok:
            bad.append(f"{e['text']!r}: expected {e['category']}/{e['urgent']}/"
                       f"{e['confidence']} {top3}, got {r.category}/{r.urgent}/"
                       f"{r.confidence} {r.top3}")
    assert not bad, f"{len(bad)} of {len(expected)} outputs drifted:\n" + "\n".join(bad[:20])


def test_golden_set_covers_held_out_and_fresh(golden: list[dict[str, object]]) -> None:
    srcs = {str(e["src"]) for e in golden}
    assert {"test.jsonl", "test_fresh.jsonl", "train.jsonl", "perturbed"} <= srcs
    assert len(golden) > 4000


def test_golden_model_version(clf: Classifier, golden: list[dict[str, object]]) -> None:
    assert {e["model_version"] for e in golden} == {clf.version}, (
        "model retrained: regenerate with `python -m tests.classification.test_golden "
        "--regenerate`")


@pytest.mark.parametrize("batch_size", [256, 1024, 100_000])
def test_outputs_identical_to_golden(clf: Classifier, golden: list[dict[str, object]],
                                     batch_size: int) -> None:
    texts = [str(e["text"]) for e in golden]
    got: list[Classification] = []
    for i in range(0, len(texts), batch_size):
        got.extend(clf.classify_batch(texts[i : i + batch_size]))
    _check(golden, got)


def test_single_and_odd_batches_identical_to_golden(
    clf: Classifier, golden: list[dict[str, object]]
) -> None:
    # Results must not depend on what else is in the batch: singles, batches of 7 and a
    # fresh classifier instance (cold caches) over the held-out split and the perturbations.
    subset = [e for e in golden if e["src"] != "train.jsonl"]
    texts = [str(e["text"]) for e in subset]
    _check(subset[:300], [clf.classify(t) for t in texts[:300]])
    got: list[Classification] = []
    for i in range(0, len(texts), 7):
        got.extend(clf.classify_batch(texts[i : i + 7]))
    _check(subset, got)
    from workers.classification.classifier import DEFAULT_MODEL_PATH, read_artifact

    fresh = Classifier(read_artifact(DEFAULT_MODEL_PATH))
    _check(subset, fresh.classify_batch(texts))


if __name__ == "__main__":
    if "--regenerate" in sys.argv[1:]:
        raise SystemExit(regenerate())
    print(__doc__)
