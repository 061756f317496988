"""`classify bench` reports the rate on appeals with new words too, and the spelling fix's
prefix pruning changes no correction."""

from __future__ import annotations

import json
import random

import pytest

from workers.classification import cli, normalize
from workers.classification.bench import _texts, unseen_texts
from workers.classification.normalize import tokenize


def test_unseen_texts_bring_new_words_the_same_on_every_run() -> None:
    """The bench timed corpus texts plus «№i»: every word cached, twice the rate a stream of
    appeals with typos and names gets."""
    familiar = _texts(400)
    seen = {t for text in _texts(8000) for t in tokenize(text)}
    unseen = unseen_texts(familiar)
    assert unseen == unseen_texts(familiar)
    assert len(unseen) == len(familiar) and all(u != f for u, f in zip(unseen, familiar,
                                                                       strict=True))
    new_words = [len(set(tokenize(u)) - seen) for u in unseen]
    assert sum(n >= 2 for n in new_words) >= 0.9 * len(unseen), new_words


def test_the_bench_prints_both_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["classify", "bench", "--n", "300", "--batch-size", "100"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["appeals_per_s"] > 0 and res["n"] == 300
    assert res["unseen"]["appeals_per_s"] > 0 and res["unseen"]["seed"] > 0
    assert res["unseen"]["mean_chars"] > res["mean_chars"]


def _spell_fix_without_pruning(token: str) -> str:
    """:func:`normalize.spell_fix` as it was before the prefix pruning (every candidate looked
    up): the reference the pruned one must agree with."""
    known = normalize._MORPH.word_is_known
    if (len(token) < 5 or len(token) > normalize.MAX_SPELL_FIX_LETTERS or known(token)):
        return token
    n = len(token)
    cands = [token[:i] + token[i + 1:] for i in range(n)]
    cands += [token[:i] + token[i + 1] + token[i] + token[i + 2:] for i in range(n - 1)]
    cands += [token[:i] + normalize._VOWEL_ALT[ch] + token[i + 1:]
              for i, ch in enumerate(token) if ch in normalize._VOWEL_ALT]
    cands += [token[:i] + a + token[i:] for i in range(1, n) for a in normalize._ALPHABET]
    cands += [token[:i] + a + token[i + 1:] for i in range(1, n)
              for a in normalize._KEY_NEIGHBOURS.get(token[i], "")]
    return next((c for c in cands if known(c)), token)


def test_pruned_spelling_fix_corrects_as_before() -> None:
    rnd = random.Random(3)
    words = sorted({t for text in _texts(3000) for t in tokenize(text) if len(t) >= 5})
    tokens = set(words[:: max(1, len(words) // 600)])
    for w in list(tokens):
        j = rnd.randrange(1, len(w) - 1)
        tokens |= {w[:j] + w[j + 1:], w[:j] + w[j + 1] + w[j] + w[j + 2:],
                   w[:j] + rnd.choice(normalize._ALPHABET) + w[j:],
                   w[:j] + rnd.choice(normalize._ALPHABET) + w[j + 1:]}
    syllables = ["ба", "ко", "ри", "ле", "вер", "ски", "ган", "тур", "е", "ё", "ше"]
    tokens |= {"".join(rnd.choice(syllables) for _ in range(rnd.randint(3, 6)))
               for _ in range(500)}
    tokens |= {"отапление", "сосуоьки", "леддяные", "ёлочка", "елочкаа", "Ковербаов"}
    # Capitalised and upper-case tokens are pruned too (on their lower-case spelling).
    tokens |= {t.capitalize() for t in sorted(tokens)[::7]} | {t.upper() for t in
                                                                 sorted(tokens)[::11]}
    fixed = 0
    for t in sorted(tokens):
        want = _spell_fix_without_pruning(t)
        assert normalize.spell_fix(t) == want, t
        fixed += want != t
    assert fixed > 500  # the set holds corrections, not only words left alone


def test_the_fast_dictionary_test_answers_as_pymorphy3() -> None:
    """:func:`normalize.spell_fix` looks candidates up with a membership test of the DAWG
    where pymorphy3's fuzzy ``word_is_known`` is not needed; the answers must not change."""
    rnd = random.Random(5)
    words = sorted({t for text in _texts(2000) for t in tokenize(text)})
    sample = words[:: max(1, len(words) // 400)]
    probes = set(sample) | {w.upper() for w in sample[::5]} | {w.capitalize() for w in sample[::3]}
    probes |= {w[:-1] + rnd.choice(normalize._ALPHABET) for w in sample if len(w) > 3}
    probes |= {"ёлка", "елка", "ЕЛКА", "еж", "ёж", "всё", "все", "ЁЖ", "ежик", "ёжик",
               "dom", "İstanbul", ""}
    answers = {w: normalize._MORPH.word_is_known(w) for w in sorted(probes)}
    assert {w: normalize._KNOWN(w) for w in answers} == answers
    assert sum(answers.values()) > 300 and not all(answers.values())
    assert normalize._KNOWN("елка") and normalize._KNOWN("ЕЛКА")  # the «ё» reading is kept
