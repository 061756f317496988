"""Normalisation: the same word must reach the model whatever its form, case or decoration."""

from __future__ import annotations

import pytest

from workers.classification.normalize import (
    FROST_TOKEN,
    char_ngrams,
    lemma,
    lemmatize,
    normalize_text,
    stem,
    tokenize,
)


def test_inflected_forms_share_a_lemma() -> None:
    assert lemmatize("отопления") == lemmatize("отоплением") == ["отопление"]
    assert lemmatize("батареи батарею батареями") == ["батарея"] * 3
    assert lemmatize("дети детей") == ["ребенок", "ребенок"]


def test_yo_folded_and_caps_ignored() -> None:
    assert normalize_text("Ёлка ЁЖ") == "елка еж"
    assert lemmatize("ТЕЧЁТ") == lemmatize("течет")
    assert lemmatize("ОТОПЛЕНИЯ НЕТ") == lemmatize("отопления нет")


def test_emoji_and_punctuation_stripped() -> None:
    assert tokenize("Нет воды!!! 😡😡 #Барнаул, @админ...") == ["нет", "воды", "барнаул", "админ"]
    assert tokenize("😡🤬👎") == []
    assert tokenize("") == []


def test_elongated_letters_collapsed() -> None:
    assert lemmatize("ПОМОГИТЕЕЕЕ") == lemmatize("помогите")


def test_latin_lookalikes_and_transliteration() -> None:
    # Latin «o» and «a» inside a Cyrillic word (a common copy-paste/keyboard artefact).
    assert lemmatize("вoдa") == ["вода"]
    assert lemmatize("net sveta") == ["нет", "свет"]
    assert lemmatize("otoplenie") == ["отопление"]


def test_frost_marker() -> None:
    assert FROST_TOKEN in lemmatize("на улице -30°")
    assert FROST_TOKEN in lemmatize("минус 27 за окном")
    assert FROST_TOKEN not in lemmatize("дом 12-25")


def test_lemma_cache_and_stem() -> None:
    lemma.cache_clear()
    lemma("ямами")
    lemma("ямами")
    assert lemma.cache_info().hits >= 1
    assert stem("отопления") == stem("отоплением")


def test_char_ngrams_padded() -> None:
    grams = char_ngrams("яма")
    assert " ям" in grams and "ма " in grams and " яма " in grams


def test_a_token_longer_than_any_word_is_not_spell_checked(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    """The one-edit candidates grow with the square of a token's length: one 20,000-letter
    token took 108 s to classify and held up its partition (review of session 15)."""
    from workers.classification import normalize as n

    calls: list[str] = []
    known = n._MORPH.word_is_known
    monkeypatch.setattr(n._MORPH, "word_is_known", lambda w: calls.append(w) or known(w))
    long = "ы" * (n.MAX_SPELL_FIX_LETTERS + 1)
    assert n.spell_fix(long) == long
    assert calls == []
    assert n.spell_fix("отапление") == "отопление"  # a real typo is still corrected
    assert calls
