"""Normalisation: the same word must reach the model whatever its form, case or decoration."""

from __future__ import annotations

import unicodedata

import orjson
import pytest

from workers.classification import normalize
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


@pytest.mark.parametrize("text", [
    "на улице -35, батареи холодные", "минус 30", "-25°", "мороз −30 а отопления нет",
    "на улице - 35 градусов", "ночью до -30гр", "температура: -30", "18, -5 на улице",
    "−18 град", "15.01 -35 градусов, батареи холодные", "12.01.2026 -38°",
    "в 7:00 -32 градуса, батарея холодная", "с утра 7:00 -32 градуса", "12 января 2026 -38°",
])
def test_negative_temperatures_are_frost(text: str) -> None:
    assert FROST_TOKEN in tokenize(text)


@pytest.mark.parametrize(("text", "without_number"), [
    ("15.01 -35 градусов, батареи холодные", "-35 градусов, батареи холодные"),
    ("Сегодня 12.01.2026 -38°, нет отопления", "Сегодня -38°, нет отопления"),
    ("в 7:00 -32 градуса, батарея холодная", "в -32 градуса, батарея холодная"),
    ("с утра 7:00 -32 градуса", "с утра -32 градуса"),
])
def test_minus_glued_to_a_temperature_after_a_date_or_time_is_frost(
        text: str, without_number: str) -> None:
    # A date or a time does not start a temperature range, so the minus glued to the degrees
    # after it is a sign: the range rule of session 16 swallowed it and these were not urgent.
    # The temperature is marked whole, its unit included, as without the date or time.
    assert tokenize(text) == tokenize(without_number)
    assert tokenize(text).count(FROST_TOKEN) == 1


@pytest.mark.parametrize("text", [
    "в квартире 17 - 18 градусов", "В домах 10 - 12 по улице Ленина плохо убирают подъезды",
    "Поликлиника принимает с 8:00 - 14:00", "Автобусы 25 - 27 ходят раз в час",
    "Мой телефон 8 913 555 - 12 - 34.", "8 (3852) 55 - 12 - 34", "в квартире 17 -18 градусов",
    "в квартире +18 - 20 градусов", "18° - 20°", "на улице - 35", "с 8:00 -14:00",
    "10-12 градусов", "17 - 18 градусов", "+18 -20°", "в комнате 20,5 -22 градуса",
])
def test_ranges_times_and_phones_are_not_frost(text: str) -> None:
    # A spaced dash after a number or a time is a range or a phone number, and a spaced dash
    # with no degree unit after it is punctuation: none of them is a negative temperature (they
    # made ordinary appeals urgent).
    assert FROST_TOKEN not in tokenize(text)
    assert tokenize(text) == tokenize(text.replace("-", " "))


def test_hostile_numbers_and_dashes_are_marked_in_one_pass() -> None:
    # Many number-and-dash candidates: the result only (the pattern's parts are bounded).
    text = "1:" * 20_000 + " - " + "-1 " * 5_000 + "12 - " * 5_000
    assert tokenize(text).count(FROST_TOKEN) == 5_000
    assert tokenize("15.01.2026 -35° " * 5_000).count(FROST_TOKEN) == 5_000


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
    known = n._KNOWN
    monkeypatch.setattr(n, "_KNOWN", lambda w: calls.append(w) or known(w))
    long = "ы" * (n.MAX_SPELL_FIX_LETTERS + 1)
    assert n.spell_fix(long) == long
    assert calls == []
    assert n.spell_fix("отапление") == "отопление"  # a real typo is still corrected
    assert calls


#: :data:`.normalize.MAX_SPELL_FIXES` and :data:`.normalize.MAX_TOKENS` (literal, so these
#: tests fail by their assertions, not by an import, on code without the budget).
_BUDGET = 20
_MAX_TOKENS = 1000


def _fresh_unknown_words(n: int) -> list[str]:
    """``n`` distinct random Cyrillic words no cache has seen (uuid-seeded)."""
    import random
    import uuid

    rng = random.Random(uuid.uuid4().int)
    letters = "бвгджзклмнпрстфхцчшщ"
    return ["".join(rng.choice(letters) for _ in range(12)) for _ in range(n)]


def test_a_text_of_unknown_words_gets_at_most_the_budget_of_corrections(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Each correction costs up to ~450 dictionary look-ups: 20 texts of 20,000 characters of
    random words took 11 s and a batch held the routing worker's event loop for minutes
    (review of session 18). Counts calls, both on the inference path and in :func:`analyse`."""
    from workers.classification import normalize as n
    from workers.classification.classifier import DEFAULT_MODEL_PATH, Classifier, read_artifact
    from workers.classification.features import analyse
    from workers.classification.lexicons import load_lexicons

    fresh = Classifier(read_artifact(DEFAULT_MODEL_PATH), load_lexicons())
    calls: list[str] = []
    real = n.spell_fix
    monkeypatch.setattr(n, "spell_fix", lambda w: calls.append(w) or real(w))
    words = _fresh_unknown_words(3 * _BUDGET)
    text = "Прорвало трубу " + " ".join(words)
    res = fresh.classify(text)
    assert 0 < len(set(calls) & set(words)) <= _BUDGET
    assert res.category == "housing_utilities"
    calls.clear()
    words = _fresh_unknown_words(3 * _BUDGET)
    doc = analyse(" ".join(words))
    assert 0 < len(set(calls) & set(words)) <= _BUDGET
    # Past the budget an unknown word is its own lemma.
    assert doc.lemmas[-1] == doc.tokens[-1]


def test_the_budget_is_per_text_and_a_repeat_of_a_corrected_word_stays_corrected() -> None:
    from workers.classification import normalize as n

    assert n.MAX_SPELL_FIXES == _BUDGET
    toks = ["отапление", *_fresh_unknown_words(_BUDGET + 5), "отапление"]
    mask = n.spell_fix_mask(toks)
    assert mask[0] and mask[-1]
    assert sum(not m for m in mask) == 6
    assert all(n.spell_fix_mask(["отапление"]))


def test_only_the_first_max_tokens_of_a_text_are_classified() -> None:
    from workers.classification import normalize as n
    from workers.classification.classifier import load_classifier
    from workers.classification.features import analyse

    enc = load_classifier().featurizer._encoder()
    long = "ямы на дороге " * _MAX_TOKENS + "пахнет газом"
    assert enc.ids_of_texts([long, "яма"])[1] == [_MAX_TOKENS, 1]
    assert len(analyse(long).tokens) == _MAX_TOKENS
    glued = ",".join(["яма"] * (2 * _MAX_TOKENS))  # one whitespace chunk
    assert enc.ids_of_texts([glued])[1] == [_MAX_TOKENS]
    assert n.MAX_TOKENS == _MAX_TOKENS


@pytest.mark.parametrize("mark", ["\u0301", "\u0300", "\u00ad", "\u200b", "\u200c", "\u200d",
                                  "\u2060", "\ufeff"])
def test_stress_marks_and_invisible_characters_do_not_split_words(mark: str) -> None:
    """The token pattern read them as separators: «све́та» was «све» + «та» (review of
    session 18)."""
    from workers.classification.normalize import chunk_tokens, split_chunks

    text = f"Нет све{mark}та во всём до{mark}ме, Га{mark}зом пахнет"
    expected = ["нет", "света", "во", "всем", "доме", "газом", "пахнет"]
    assert tokenize(text) == expected
    assert [t for c in split_chunks(text) for t in chunk_tokens(c)] == expected


def test_decomposed_letters_are_one_letter() -> None:
    import unicodedata

    text = "Всё ещё нет горячей воды"
    assert tokenize(unicodedata.normalize("NFD", text)) == tokenize(text)


def test_a_stressed_power_cut_is_urgent() -> None:
    from workers.classification.classifier import load_classifier

    res = load_classifier().classify("Нет све\u0301та во всём до\u0301ме")
    assert res.urgent and res.category == "housing_utilities"


@pytest.mark.parametrize(("text", "expected"), [
    ("ПAXHET ГAЗOM B ПOДЪEЗДE", ["пахнет", "газом", "в", "подъезде"]),
    ("HET CBETA BO BCЁM ДOME", ["нет", "света", "во", "всем", "доме"]),
    ("ПРOPBAЛO TPУБУ", ["прорвало", "трубу"]),
])
def test_caps_latin_look_alikes_b_h_m_t_are_repaired(text: str, expected: list[str]) -> None:
    """Capital B H M T look like В Н М Т; only «aceopxyk» were mapped, after lower-casing
    (review of session 18)."""
    from workers.classification.normalize import chunk_tokens, split_chunks

    assert tokenize(text) == expected
    assert [t for c in split_chunks(text) for t in chunk_tokens(c)] == expected


def test_lower_case_b_h_m_t_and_latin_words_are_left_alone() -> None:
    # Lower-case b h m t do not look like в н м т; «OK» stays a Latin word; «°C» is Celsius.
    assert tokenize("гaзom") == ["газоm"]
    assert tokenize("OK, спасибо") == ["хорошо", "спасибо"]
    assert tokenize("до +17 °C в квартире") == ["до", "c", "в", "квартире"]
    assert tokenize("HET света") == ["нет", "света"]
    assert tokenize("HELLO WORLD") == ["hello", "world"]  # no Cyrillic: left as it is


def test_caps_look_alike_emergencies_are_urgent() -> None:
    from workers.classification.classifier import load_classifier

    c = load_classifier()
    assert c.classify("ПAXHET ГAЗOM B ПOДЪEЗДE").urgent
    assert c.classify("HET CBETA BO BCЁM ДOME").urgent


# -- _clean's fast path (review of today's commit 305589e: the NFD + NFC passes made every
# non-ASCII text a third slower to classify) ------------------------------------------------

def _full_clean(text: str) -> str:
    """:func:`normalize._clean` as 305589e wrote it: NFD, the deletions, NFC, for every
    non-ASCII text."""
    if text.isascii():
        return text
    return unicodedata.normalize(
        "NFC", unicodedata.normalize("NFD", text).translate(normalize._INVISIBLE))


def _corpus_texts() -> list[str]:
    """Every text of the training corpus and of the test sets (the ``.tsv`` files' fields)."""
    from tests.classification.conftest import CORPUS

    texts: list[str] = []
    for path in sorted(CORPUS.rglob("*")):
        if path.suffix == ".jsonl":
            texts += [orjson.loads(line)["text"] for line in path.read_bytes().splitlines()
                      if line.strip()]
        elif path.suffix == ".tsv":
            texts += [f for line in path.read_text("utf-8").splitlines() for f in line.split("\t")]
    return texts


#: Texts the fast path must hand to the full one: precomposed letters whose NFD holds U+0300
#: or U+0301 lose the mark (é, ѓ, ѐ, ќ, ѝ, Greek tonos, ǘ), stress marks and invisible
#: characters are deleted, decomposed and non-NFC texts are composed.
TRICKY = [
    "Кафе «Café» на углу", "ѓ ѐ ќ ѝ Ѓ Ѐ Ќ Ѝ", "ά έ ΐ ǘ ǽ ḗ ṓ", "Нет све\u0301та во всём до\u0301ме",
    "Га\u00adзом пахнет", "не\u200bт св\u200cе\u200dта\u2060\ufeff", "ии\u0306 decomposed й",
    "е\u0308лка", "Å\u030a", "\u212b ангстрем", "a\u0323\u0302 порядок меток", "Ѐ\u0301",
    "обычный текст без меток", "смешанный ёжик й", "",
]


def test_the_fast_path_gives_the_full_paths_text_for_the_whole_corpus() -> None:
    texts = _corpus_texts()
    assert len(texts) > 20_000
    assert [t for t in texts if normalize._clean(t) != _full_clean(t)] == []
    assert [t for t in TRICKY if normalize._clean(t) != _full_clean(t)] == []
    assert normalize._clean("Café") == "Cafe" and normalize._clean("ѓ ќ ѝ ѐ") == "г к и е"


def test_every_letter_with_a_deleted_mark_in_its_decomposition_takes_the_full_path() -> None:
    """The fast path's character set is exact: no single character of Unicode that the full
    path changes is left as it is."""
    changed = [chr(c) for c in range(0x110000)
               if not 0xD800 <= c <= 0xDFFF and _full_clean(chr(c)) != chr(c)]
    assert len(changed) > 250
    assert [c for c in changed if normalize._clean(c) == c] == []


def test_a_text_in_nfc_with_nothing_to_delete_skips_the_normalisation(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = unicodedata.normalize

    def counting(form: str, text: str) -> str:
        calls.append(form)
        return real(form, text)

    plain = [t for t in _corpus_texts() if not t.isascii() and _full_clean(t) == t][:3000]
    assert len(plain) == 3000
    monkeypatch.setattr(unicodedata, "normalize", counting)
    assert [normalize._clean(t) for t in plain] == plain
    assert calls == [], "the NFD + NFC passes ran for texts they leave as they are"
