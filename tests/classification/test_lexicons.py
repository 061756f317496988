"""Lexicon files: comments, phrases in any order, conjunctions and negations."""

from __future__ import annotations

import logging
import random
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workers.classification.dataio import DataError
from workers.classification.lexicons import (
    _WINDOW_SLACK,
    CATEGORIES,
    CUE_NAMES,
    LEXICON_DIR,
    _phrase_in,
    _positions,
    load_lexicon,
    load_lexicons,
    parse_lexicon_lines,
)
from workers.classification.normalize import lemmatize


def test_shipped_lexicons_cover_every_category() -> None:
    lex = load_lexicons()
    for c in CATEGORIES:
        assert len(lex.categories[c]) >= 10, c
    assert len(lex.urgent) >= 30
    assert (LEXICON_DIR / "urgent.txt").exists()


def test_comments_and_blank_lines_ignored(tmp_path: Path) -> None:
    p = tmp_path / "roads.txt"
    p.write_text("# header\n\nяма  # inline comment\nоткрытый люк\n", encoding="utf-8")
    lex = load_lexicon(p)
    assert lex.name == "roads"
    assert [e.raw for e in lex.entries] == ["яма", "открытый люк"]


def test_phrase_matches_inflected_and_reordered() -> None:
    lex = parse_lexicon_lines("x", ["нет горячей воды"])
    assert lex.matches(lemmatize("Горячей воды нет уже неделю"))
    assert lex.matches(lemmatize("НЕТ ГОРЯЧЕЙ ВОДЫ"))
    far = "нет " + "слово " * 10 + "горячей воды"
    assert not lex.matches(lemmatize(far))


def test_conjunction_and_negation() -> None:
    lex = parse_lexicon_lines("urgent", ["нет отопление & мороз", "нет свет & !подъезд"])
    assert lex.matches(lemmatize("Отопления нет. На улице -30°"))
    assert not lex.matches(lemmatize("Отопления нет, в квартире +17"))
    assert lex.matches(lemmatize("В доме нет света"))
    assert not lex.matches(lemmatize("Нет света в подъезде"))


def test_urgent_rules_fire_on_clear_emergencies() -> None:
    lex = load_lexicons()
    for text in ("В подъезде сильно пахнет газом", "Нас затопило, вода течет с потолка",
                 "на дороге открытый люк", "Отопления нет, на улице минус 35"):
        assert lex.urgent_hits(lemmatize(text)), text
    assert not lex.urgent_hits(lemmatize("Прошу сделать перерасчет за отопление"))


POWER_CUTS = ("Во всём квартале отключили электричество",
              "Отключение электроэнергии во всем микрорайоне уже 10 часов",
              "Авария на подстанции, весь район без света",
              "Нам отключили свет, в квартире маленький ребенок",
              "Отключение электроснабжения в доме с утра")
PLANNED_CUTS = ("Плановое отключение электроэнергии 12 марта с 9 до 17",
                "Завтра будет отключено электричество в нашем доме",
                "В связи с ремонтом сетей будет отключен свет с 10 до 15",
                "Опубликуйте график отключений электроэнергии",
                "Завтра отключат электроэнергию, предупредите жителей",
                "Висит объявление об отключении электроэнергии",
                "Профилактические работы, отключение света с 10 до 12",
                "Прошу сделать перерасчет за отключение электроэнергии")


def test_urgent_rules_fire_on_a_power_cut() -> None:
    # DESIGN §3 lists an outage as urgent; «отключили электричество», «отключение
    # электроэнергии» and «без света» fired no rule (only «отключить электроснабжение», «нет
    # электричество»), and the model alone called them not urgent.
    lex = load_lexicons()
    for text in POWER_CUTS:
        assert lex.urgent_hits(lemmatize(text)), text


def test_urgent_rules_leave_planned_and_announced_power_cuts_alone() -> None:
    lex = load_lexicons()
    for text in PLANNED_CUTS:
        assert not lex.urgent_hits(lemmatize(text)), text
    # recurring cuts are a complaint for the normal queue (the guide's habitual rule)
    assert not lex.urgent_hits(lemmatize("Частые отключения электроэнергии в СНТ"))
    # light in common areas and streets is not a house's power
    for text in ("Отключили свет в подъезде, темно", "Весь подъезд без света, лампочки не горят",
                 "Уличное освещение отключили, фонари не горят"):
        assert not lex.urgent_hits(lemmatize(text)), text
    # an address with «улица» does not veto a house's outage
    assert lex.urgent_hits(lemmatize("На улице Ленина отключили свет во всем доме"))


def test_habitual_cue_marks_recurring_wording() -> None:
    # Urgency rework #6: the guide's rule on recurring hazards («постоянно», «каждую ночь»,
    # «каждую весну», «по ночам» alone is not urgent) as a cue lexicon.
    lex = load_lexicons()
    k = CUE_NAMES.index("habitual")
    for text in ("в бесхозном доме постоянно возгорания", "каждую ночь драки и стрельба",
                 "свалку за селом каждую весну поджигают", "завод по ночам выбрасывает дым",
                 "жгут мусор регулярно, из года в год"):
        assert lex.cue_counts(lemmatize(text))[k] > 0, text
    for text in ("опять горит, дым прямо сейчас", "горячей воды нет уже месяц"):
        assert lex.cue_counts(lemmatize(text))[k] == 0, text


def test_lexicon_not_in_utf8_names_the_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "roads.txt"
    p.write_bytes(b"# roads\n" + "яма на дороге\n".encode("cp1251"))
    with pytest.raises(DataError, match=rf"^{re.escape(str(p))}:2: not UTF-8"):
        load_lexicon(p)


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    p = tmp_path / "roads.txt"
    p.write_bytes(b"\xef\xbb\xbf" + "яма\n".encode())
    assert [e.raw for e in load_lexicon(p).entries] == ["яма"]


@pytest.mark.parametrize(("line", "msg"), [
    ("нет свет &", "empty condition"),
    ("& мороз", "empty condition"),
    ("нет свет && мороз", "empty condition"),
    ("нет свет & !", "'!' with no word"),
    ("!подъезд", "only negated conditions"),
    ("!подъезд & !двор", "only negated conditions"),
    ("112", "no word the classifier reads"),
    ("нет свет & !112", "no word the classifier reads"),
    # Regex / wildcard syntax meant something else: «(нет|без) свет» needed all three words,
    # «отключ* свет» never fired (review of session 18).
    ("(нет|без) свет", "not regular expressions"),
    ("отключ* свет", "not regular expressions"),
    (r"нет\s+воды", "not regular expressions"),
    ("газ[а-я]", "not regular expressions"),
    ("^пожар$", "not regular expressions"),
    ("свет?", "not regular expressions"),
    ("вод{1,2}", "not regular expressions"),
])
def test_malformed_line_names_file_and_line(tmp_path: Path, line: str, msg: str) -> None:
    # These were skipped or half-read in silence: a trailing '&' dropped the conditions after
    # it, so «нет свет &» fired on every text with «нет света».
    p = tmp_path / "urgent.txt"
    p.write_text(f"# rules\nзапах газа\n{line}  # edited\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{re.escape(str(p))}:3: .*{re.escape(msg)}"):
        load_lexicon(p)


def test_negation_with_a_space_after_the_mark_still_reads(tmp_path: Path) -> None:
    lex = parse_lexicon_lines("urgent", ["нет свет & ! подъезд"])
    assert lex.entries[0].negated == (("подъезд",),)


def test_missing_lexicon_file_is_an_error(tmp_path: Path) -> None:
    # A deleted urgent.txt loaded as an empty lexicon: no urgency rule fired, and nothing said so.
    d = tmp_path / "lexicons"
    shutil.copytree(LEXICON_DIR, d)
    (d / "urgent.txt").unlink()
    (d / "cue_now.txt").unlink()
    with pytest.raises(DataError, match=r"missing lexicon file\(s\) urgent\.txt, cue_now\.txt"):
        load_lexicons(d)


def test_rule_counts_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="workers.classification.lexicons"):
        lex = load_lexicons()
    (rec,) = [r for r in caplog.records if r.name == "workers.classification.lexicons"]
    assert rec.levelno == logging.INFO
    assert f"urgent {len(lex.urgent)}," in rec.getMessage()
    assert f"roads {len(lex.categories['roads'])}," in rec.getMessage()


def _phrase_in_brute_force(phrase: tuple[str, ...], positions: dict[str, list[int]]) -> bool:
    """The definition: some position of the first lemma has one of every other lemma less
    than the window width away (the former implementation, pair by pair)."""
    if any(lem not in positions for lem in phrase):
        return False
    width = len(phrase) + _WINDOW_SLACK
    return any(all(any(abs(q - start) < width for q in positions[lem]) for lem in phrase[1:])
               for start in positions[phrase[0]])


@pytest.mark.parametrize("seed", range(40))
def test_phrase_window_equals_the_brute_force_definition(seed: int) -> None:
    rng = random.Random(seed)
    vocab = ["а", "б", "в", "г", "д"][: rng.randint(1, 5)]
    for _ in range(50):
        lemmas = [rng.choice(vocab) for _ in range(rng.randint(0, 40))]
        phrase = tuple(rng.choice(vocab) for _ in range(rng.randint(1, 4)))
        pos = _positions(lemmas)
        assert _phrase_in(phrase, pos) == _phrase_in_brute_force(phrase, pos), (lemmas, phrase)


class _CountingList(list[int]):
    """A positions list that counts element reads."""

    reads = 0

    def __getitem__(self, i: Any) -> Any:
        _CountingList.reads += 1
        return super().__getitem__(i)

    def __iter__(self) -> Iterator[int]:
        for i in range(len(self)):
            yield self[i]


@pytest.mark.parametrize("near_at_end", [False, True])
def test_phrase_window_reads_each_position_a_bounded_number_of_times(near_at_end: bool) -> None:
    # «нет» n times, then «вода» n times: every pair was compared, n² (a 40,000-character
    # text took seconds); now every position is read a few times at most.
    n = 2_000
    lemmas = ["нет"] * n + ["ы"] * 7 + ["вода"] * n + (["нет"] if near_at_end else [])
    pos = {lem: _CountingList(p) for lem, p in _positions(lemmas).items()}
    _CountingList.reads = 0
    assert _phrase_in(("нет", "вода"), pos) is near_at_end
    assert _CountingList.reads <= 4 * len(lemmas)
    assert parse_lexicon_lines("x", ["нет воды"]).count(lemmas) == int(near_at_end)


def test_a_misnamed_or_extra_lexicon_file_is_an_error(tmp_path: Path) -> None:
    """A file the classifier does not read was ignored in silence (review of session 18)."""
    d = tmp_path / "lexicons"
    shutil.copytree(LEXICON_DIR, d)
    (d / "housing_utilities.txt").rename(d / "housing_utilites.txt")
    with pytest.raises(DataError, match=r"unknown lexicon file\(s\) housing_utilites\.txt "
                                        r"\(did you mean housing_utilities\.txt\?\)"):
        load_lexicons(d)
    (d / "housing_utilites.txt").rename(d / "housing_utilities.txt")
    (d / "urgent_extra.txt").write_text("пожар\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"unknown lexicon file\(s\) urgent_extra\.txt \(did "
                                        r"you mean urgent\.txt\?\)"):
        load_lexicons(d)
    (d / "urgent_extra.txt").unlink()
    (d / "notes.md").write_text("not a lexicon\n", encoding="utf-8")  # other kinds of file
    assert len(load_lexicons(d).urgent) > 0
