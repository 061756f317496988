"""A misspelt town name or one typed with a Latin look-alike letter is still the town
(routing fixes, D4).

«в Барнуле», «в Борнауле», «в Новоалтайсе» and «в Барнаyле» (a Latin y) named no place: the
table matched exact forms only.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from workers.routing import RouteInput, Router, RoutingRules

CORPUS = Path(__file__).resolve().parents[2] / "workers" / "classification" / "corpus"


def municipality(router: Router, text: str) -> str | None:
    return router.route(RouteInput("a", "22", "roads", text=text)).municipality


@pytest.mark.parametrize(("text", "expected"), [
    ("в Барнуле яма на дороге", "barnaul"),
    ("в Борнауле яма", "barnaul"),
    ("в Барнаулле яма", "barnaul"),
    ("админы Барналу вы вообще видите это", "barnaul"),  # two letters swapped
    ("в Новоалтайсе яма", "novoaltaysk"),
    ("АДМНИЫ РУБЦОВКС ВЫ ВООБЩЕ ВИДИТЕ ЭТО", "rubtsovsk"),
    ("в Барнаyле яма", "barnaul"),  # Latin y
    ("в Бийcке яма", "biysk"),  # Latin c: a 5-letter word, folded, not a typo
    ("г. Нoвoалтайск", "novoaltaysk"),  # Latin o twice
])
def test_a_misspelt_town_is_the_town(router: Router, text: str, expected: str) -> None:
    assert municipality(router, text) == expected


@pytest.mark.parametrize("text", [
    "в Бийку у моста сброс из трубы",  # the river Бийка: too short for a typo
    "барнаулка вышла из берегов",  # the river Барнаулка: a dictionary word
    "Barnaul yama",  # a Latin word stays Latin
])
def test_no_typo_reading_for_short_or_known_words(router: Router, text: str) -> None:
    assert municipality(router, text) is None


def test_homoglyphs_fold_only_mixed_script_words() -> None:
    from workers.routing.gazetteer import fold_homoglyphs

    assert fold_homoglyphs("в Барнаyле, Barnaul") == "в Барнауле, Barnaul"
    assert fold_homoglyphs("нет воды") == "нет воды"


def test_typo_reading_turns_no_corpus_word_into_a_place(demo_rules: RoutingRules) -> None:
    """Every word of 6+ letters of the classifier corpus, alone: only real misspellings of
    towns read as places that their exact forms did not give."""
    gaz = demo_rules.regions["22"].gazetteer
    exact = gaz._first  # the forms the table knows exactly
    words: set[str] = set()
    for path in sorted(CORPUS.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                words.update(w.lower() for w in re.findall(r"[А-Яа-яЁё]{6,}",
                                                           json.loads(line)["text"]))
    assert len(words) > 5000
    new_places = {w: gaz.find(w) for w in words if w.replace("ё", "е") not in exact}
    assert {w: m for w, m in new_places.items() if m is not None} == {
        "нвоалтайск": "novoaltaysk",
        "алейсск": "aleysk",
        "рубцовкс": "rubtsovsk",
        "зраинск": "zarinsk",
        "барналу": "barnaul",
    }
