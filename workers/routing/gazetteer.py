"""Find the municipality an appeal is about from free Russian text.

Why a table of forms: citizens write «в Бийске», «Бийского района», «г.Барнаул»,
«Камне-на-Оби», «новоалтайский водоканал». Lemmatising every token of every appeal with
pymorphy3 costs tens of microseconds per token; instead we inflect the (few hundred)
gazetteer names *once*, at rule load, into a dict ``token tuple -> municipality``, and
matching an appeal is a regex tokenisation plus dict lookups (well over 10,000 texts/s).

Matching is longest-first at each position, earliest position wins, so «Бийского района»
(the district) beats «бийского» (the city adjective) and «Камень-на-Оби» is one match. In a place
field (metadata, address) every match counts and a settlement named by its name beats a district
in either order: addresses name the district before the town («Алтайский край, Рубцовский
район, г. Рубцовск» is Рубцовск, «Заринский район, г. Заринск» is Заринск).
Names flagged ``ambiguous`` (a town called «Яровое» vs «яровое» = spring crops) only match
when capitalised in the original text or after «г.»/«город». A word in capitals («ПОСЕЯЛИ
ЯРОВОЕ») says nothing about capitalisation, so it counts as lower case. The flag covers a
whole municipality; ``ambiguous_names`` flags single names of one (the village «Сростки» of
the Бийский район vs «оголённые сростки проводов», wire splices), the same way. An ambiguous
district name («Центральный район», Barnaul's, but every town has one) is weak evidence even
capitalised: it counts only when no other listed place is named in the same field («в
Центральном районе Бийска» is Biysk).

A city adjective followed by «район»/«р-н»/«округ»/«муниципальный район»/«муниципальный округ»
(«Заринский район», «в Алейском районе», «в Заринском округе»; not «городской округ», which is
the town), also in the plural after other districts' adjectives («в Бийском и Смоленском
районах»: the first counts, like the earliest mention), names a district. Known districts have
their own (longer) entries, also with «округ» and «муниципальный район/округ» («Бийского
муниципального района»); any other such mention is a district the rules do not know, and it ends
the search with no match: never the city of the same name, nor a later place in the text (where
people travel to, see below). :meth:`Gazetteer.lookup` tells that outcome apart
(:data:`UNLISTED_DISTRICT`) so that routing also stops there instead of searching the next field
(metadata, then address, subject and text): «Заринский район» in the address says the place is
outside every listed municipality, whatever town the text mentions. In a place field (metadata,
address) the same holds for any district or settlement named explicitly that matches no entry
(«Тальменский район», «р.п. Тальменка»): a field that says where the problem is and names no
listed place rules every listed place out.

A misspelt town («в Барнуле», «в Борнауле», «в Новоалтайсе») or one typed with a Latin
look-alike letter («Барнаyл», Latin y) is still the town: Latin look-alikes in a word that mixes
both scripts are made Cyrillic first, and a word of 6+ letters that no dictionary knows, one
letter (inserted, deleted, replaced, or two swapped) away from a settlement name form of 6+
letters of exactly one municipality, is read as that form. Never an adjective, a district or
an ambiguous name, and never a shorter word («в Бийку» is the river Бийка, not Бийск).

Adjective forms (``adjectives:``, «бийский», «бийская»...) are also street names («ул.
Бийская», «Каменская ул.») and surnames («Заринский Иван Петрович»). So an adjective next to a
street word, or a capitalised adjective next to a first name, patronymic or initial, is
skipped, and so is one right after a settlement word («с. Славгородское», «в селе
Славгородском»: a village of that name, not the town; in a place field an explicit unlisted
settlement, as above, and so is an adjective after an unlisted «Немецкий национальный район»);
otherwise it counts like a name, earliest mention first. (A rule that let any name
anywhere beat an adjective sent «В Алейской ЦРБ … приходится ездить в Барнаул» to Barnaul:
the institution names the place, the later town is where people travel.) A bare adjective,
one with no noun it qualifies, stands for a noun left out, as often «улица» as anything: after
«на»/«по» a bare feminine one is a street («На Алейской в Барнауле прорвало трубу»), and
elsewhere it is weak evidence, used only when no name of a listed place follows in the same
field («Возле Алейской нет воды, г. Барнаул»). A capitalised bare adjective with no preposition
(or «г.») before it is not a place at all but a surname: «Мой сосед Каменский завалил двор
снегом», «Учитель Алейская унижает детей» (a place is said with a preposition: «в Алейском»;
a body is named in quotes: МО МВД России «Славгородский»).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final, Literal

_TOKEN_RE = re.compile(r"[0-9A-Za-zА-Яа-яЁё]+")
_CASES = ("nomn", "gent", "datv", "accs", "ablt", "loct")
_FROZEN_AFTER = frozenset({"на", "под", "у", "в", "над"})
"""In «Камень-на-Оби» only the words before the preposition decline."""
_CITY_MARKERS = frozenset({"г", "гор", "город", "города", "городе", "городу", "городом"})
_DISTRICT_WORD_ABBREVIATIONS = (("р", "н"), ("р", "на"), ("р", "не"), ("р", "ну"), ("р", "ном"))


def _declined(*stems_and_endings: tuple[str, tuple[str, ...]]) -> frozenset[str]:
    return frozenset(stem + end for stem, ends in stems_and_endings for end in ends)


_MASC = ("", "а", "у", "ом", "е", "ы", "ов", "ам", "ами", "ах")
_STREET_WORDS = frozenset(
    {"ул", "пр", "просп", "пер", "бул", "пл", "мкр", "мкрн", "ш", "шоссе"}
) | _declined(
    ("улиц", ("а", "ы", "е", "у", "ей", "ею", "", "ам", "ами", "ах")),
    ("проспект", _MASC),
    ("переул", ("ок", "ка", "ку", "ком", "ке", "ки", "ков", "кам", "ками", "ках")),
    ("бульвар", _MASC),
    ("тракт", _MASC),
    ("проезд", _MASC),
    ("площад", ("ь", "и", "ью", "ей", "ям", "ями", "ях")),
    ("микрорайон", _MASC),
)
"""Words (normalised tokens) that make a neighbouring adjective a street name."""
_STREET_ABBREVIATION_WORDS = frozenset(
    {"ул", "пр", "просп", "пер", "бул", "пл", "мкр", "мкрн", "ш"})
"""Those written with a dot («ул.»): only after these may a dot stand before the adjective."""
_STREET_ABBREVIATIONS = frozenset({("пр", "т"), ("пр", "кт"), ("б", "р"), ("пр", "д")})
"""Hyphenated abbreviations the tokenizer splits: «пр-т», «пр-кт», «б-р», «пр-д»."""
_PATRONYMIC_RE = re.compile(r"(?:ович|евич|овна|евна|ична)$")
_STREET_GAP_RE = re.compile(r"[\s.]*")
_NAME_GAP_RE = re.compile(r"\s+")
_HOUSE_GAP_RE = re.compile(r",?\s+|,")


def normalize_token(token: str) -> str:
    """Lower-case and fold «ё» to «е» (people write both)."""
    return token.lower().replace("ё", "е")


def tokenize(text: str) -> list[str]:
    """Raw tokens: letters/digits; hyphens, dots and spaces all separate words."""
    return _TOKEN_RE.findall(text)


def place_key(name: str) -> tuple[str, ...]:
    """A name or form as the gazetteer keys it: normalised tokens («Сростки» → ``("сростки",)``)."""
    return tuple(normalize_token(t) for t in tokenize(name))


@lru_cache(maxsize=1)
def _morph() -> Any:
    """One shared analyzer: loading the dictionary is the expensive part."""
    import pymorphy3

    return pymorphy3.MorphAnalyzer()


@lru_cache(maxsize=4096)
def _word_forms(word: str, case: str | None) -> tuple[str, ...]:
    """Forms of ``word`` in ``case`` (or all its singular/own-number forms if None).

    Keeps the number (and, for adjectives, the gender) of the dictionary parse, so
    «Бийск» never yields the plural «бийсков» and «Яровое» stays neuter.
    """
    morph = _morph()
    parses = morph.parse(word)
    # Names are given in the nominative: prefer a parse whose dictionary form *is* the
    # name (guards against the predictor's guesses for unknown villages), place names first.
    nominative = [
        p
        for p in parses
        if p.tag.POS in {"NOUN", "ADJF"} and "nomn" in p.tag and p.normal_form == word
    ]
    parse = (
        next((p for p in nominative if "Geox" in p.tag), None)
        or next(iter(nominative), None)
        or next((p for p in parses if "Geox" in p.tag), None)
        or parses[0]
    )
    tag = parse.tag
    if tag.POS not in {"NOUN", "ADJF"}:
        return (normalize_token(word),)
    keep: set[str] = set()
    if tag.number:
        keep.add(tag.number)
    if tag.POS == "ADJF" and tag.gender and case is not None:
        keep.add(tag.gender)
    if case is not None:
        inflected = parse.inflect(keep | {case})
        if inflected is None:
            return (normalize_token(word),)
        forms = {inflected.word}
        if case == "loct":  # «в лесу»-style second locative, harmless when absent
            loc2 = parse.inflect(keep | {"loc2"})
            if loc2 is not None:
                forms.add(loc2.word)
        return tuple(sorted(normalize_token(f) for f in forms))
    forms = {
        f.word
        for f in parse.lexeme
        if f.tag.POS == tag.POS and (tag.POS == "ADJF" or f.tag.number == tag.number)
    }
    forms.add(word.lower())
    return tuple(sorted(normalize_token(f) for f in forms))


def name_forms(name: str) -> set[tuple[str, ...]]:
    """Token tuples for every case of a (possibly multi-word) settlement name."""
    words = [normalize_token(w) for w in tokenize(name)]
    if not words:
        return set()
    frozen_from = next((i for i, w in enumerate(words) if i > 0 and w in _FROZEN_AFTER), None)
    head = words if frozen_from is None else words[:frozen_from]
    tail = () if frozen_from is None else tuple(words[frozen_from:])
    result: set[tuple[str, ...]] = {tuple(words)}
    for case in _CASES:
        variants: list[tuple[str, ...]] = [()]
        for w in head:
            variants = [(*v, f) for v in variants for f in _word_forms(w, case)]
        result.update(v + tail for v in variants)
    return result


_ACRONYM_RE = re.compile(r"([А-ЯЁA-Z]{2,})[а-яёa-z]{1,3}")
"""An acronym with a case ending written on: «ЦУРа», «ЦУРом», «МФЦе»."""


@lru_cache(maxsize=4096)
def _lemma(token: str) -> str:
    """The pymorphy3 normal form of one raw token (first parse), «ё» folded; an acronym with
    an ending keeps its capitals («ЦУРа» is «цур»: the dictionary would guess «цура»)."""
    acronym = _ACRONYM_RE.fullmatch(token)
    if acronym is not None:
        return normalize_token(acronym.group(1))
    word = normalize_token(token)
    if not word.isalpha():
        return word
    return normalize_token(_morph().parse(word)[0].normal_form)


def name_lemmas(value: str) -> tuple[str, ...]:
    """A body's name as compared when a person wrote it: the normal form of every word, so
    «Центра управления регионом» and «Центр управления регионом» are one name (the same
    pymorphy3 dictionary the classifier lemmatises with). Case, «ё», quotes and punctuation
    are ignored."""
    return tuple(_lemma(t) for t in tokenize(value))


@lru_cache(maxsize=4096)
def _is_given_name(word: str) -> bool:
    """A first name, a patronymic («Иван», «Петровича») or an initial («И»)."""
    if len(word) == 1:
        return word.isalpha()
    low = normalize_token(word)
    if _PATRONYMIC_RE.search(low):  # also patronymics the dictionary does not know
        return True
    return any("Name" in p.tag or "Patr" in p.tag for p in _morph().parse(low))


def _capitalised(word: str) -> bool:
    """«Яровое» yes; «яровое» and «ЯРОВОЕ» (all capitals carry no signal) no."""
    return word[:1].isupper() and not (len(word) > 1 and word.isupper())


@lru_cache(maxsize=1)
def _district_words() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """Forms of «район» (singular and plural), of «муниципальный» and «национальный» (the
    krai's «Немецкий национальный район»), and of «округ»."""

    def forms(*words: str) -> frozenset[str]:
        return frozenset(f for w in words for f in _word_forms(w, None))

    # The plural of «округ» spelt out: «округа» parses as the noun «округа» (neighbourhood).
    okrug_plural = {"округа", "округов", "округам", "округами", "округах"}
    return (forms("район", "районы"), forms("муниципальный", "национальный"),
            forms("округ", "округа") | okrug_plural)


def _district_word_at(norm: list[str], j: int) -> bool:
    """Does «район», «р-н», «р-на»..., «округ» or «муниципальный/национальный район/округ»
    start at token ``j``? Not «городской округ»: that is a town («Рубцовский городской
    округ»), while a municipal okrug is written «Рубцовский округ» as often as in full."""
    if j >= len(norm):
        return False
    rayon, municipal, okrug = _district_words()
    if norm[j] in rayon or norm[j] in okrug:
        return True
    if norm[j] in municipal:
        return j + 1 < len(norm) and (norm[j + 1] in rayon or norm[j + 1] in okrug)
    return tuple(norm[j : j + 2]) in _DISTRICT_WORD_ABBREVIATIONS


@lru_cache(maxsize=1)
def _settlement_words() -> tuple[frozenset[str], frozenset[str]]:
    """Forms of the settlement words written out («село», «посёлке»...), of «городской»."""

    def forms(*words: str) -> frozenset[str]:
        return frozenset(f for w in words for f in _word_forms(w, None))

    written = forms("село", "посёлок", "деревня", "станица", "хутор", "город") | {
        "рп", "пгт", "зато", "поселок", "пос", "дер", "гор"}
    return written, forms("городской")


@lru_cache(maxsize=1)
def _village_words() -> frozenset[str]:
    """The settlement words of :func:`_settlement_words` that name no town («село», «пос»)."""
    written, _ = _settlement_words()
    town = frozenset(_word_forms("город", None)) | _CITY_MARKERS
    return written - town


_SETTLEMENT_ABBREVIATIONS = frozenset(
    {("р", "п"), ("п", "г", "т"), ("н", "п"), ("с",), ("п",), ("д",), ("г",), ("х",), ("ст",)}
)
"""Dotted abbreviations («р.п.», «с.», «д.»): a dot must follow, or «с»/«д» is a preposition or
«дом» («вход с торца», «д. 5»)."""
_DOT_GAP_RE = re.compile(r"\.\s*")


def _settlement_before(
    text: str, norm: list[str], spans: list[tuple[int, int]], i: int
) -> bool:
    """Does a village word or a dotted abbreviation («с.», «село», «пос.», «д.», «х.»)
    stand right before token ``i``? Then the word there names a settlement of its own
    («с. Славгородское», «в селе Славгородском»), never the town its adjective is of."""
    if i >= 1 and norm[i - 1] in _village_words() and (
        _NAME_GAP_RE.fullmatch(text, spans[i - 1][1], spans[i][0])
        or _DOT_GAP_RE.fullmatch(text, spans[i - 1][1], spans[i][0])
    ):
        return True
    for length in (3, 2, 1):
        k = i - length
        if k < 0:
            continue
        abbr = tuple(norm[k:i])
        if abbr in _SETTLEMENT_ABBREVIATIONS and abbr != ("г",):
            return _DOT_GAP_RE.fullmatch(text, spans[i - 1][1], spans[i][0]) is not None
    return False


def _unlisted_district_before(raw: list[str], norm: list[str], i: int) -> bool:
    """Is there an explicit «<adjective> район / национальный район / муниципальный округ»
    among the tokens before ``i`` (one no entry matched, or the lookup would have stopped
    there)?"""
    return any(
        _district_word_at(norm[:i], k + 1) and raw[k].isalpha() and _place_adjective(norm[k])
        for k in range(i - 1)
    )


@lru_cache(maxsize=4096)
def _place_adjective(word: str) -> bool:
    """«тальменский», «центральный»; not «нашем», «этом», «первом» (pronoun, ordinal)."""
    return any(
        p.tag.POS == "ADJF" and "Apro" not in p.tag and "Anum" not in p.tag
        for p in _morph().parse(word)
    )


def _names_a_place(text: str, raw: list[str], norm: list[str], *, strict: bool) -> bool:
    """Does a field name a place explicitly: «<adjective> район / муниципальный район /
    муниципальный округ / городской округ», or a settlement word and a name («р.п. Тальменка»,
    «с. Луговое», «ЗАТО Сибирский»)? ``strict``: the name must be capitalised.

    Only place fields ask this (metadata, address): in free text a village is as often where
    somebody travelled as where the problem is.
    """
    written, city_okrug = _settlement_words()
    _, _, okrug = _district_words()
    n = len(norm)
    spans: list[tuple[int, int]] | None = None

    def is_name(j: int) -> bool:
        word = raw[j]
        return len(word) > 1 and word.isalpha() and (not strict or word[:1].isupper())

    for i in range(n):
        nxt = i + 1
        if (
            _district_word_at(norm, nxt)
            or (nxt + 1 < n and norm[nxt] in city_okrug and norm[nxt + 1] in okrug)
        ) and raw[i].isalpha() and _place_adjective(norm[i]):
            return True
        if norm[i] in written and nxt < n and is_name(nxt):
            return True
        for length in (3, 2, 1):
            j = i + length
            if j >= n or tuple(norm[i:j]) not in _SETTLEMENT_ABBREVIATIONS:
                continue
            if spans is None:
                spans = [m.span() for m in _TOKEN_RE.finditer(text)]
            if text.startswith(".", spans[j - 1][1]) and is_name(j):
                return True
    return False


def adjective_forms(adjective: str) -> set[tuple[str, ...]]:
    """All forms of an adjective («барнаульский» → «барнаульского», «барнаульской»...)."""
    return {(f,) for f in _word_forms(normalize_token(adjective), None)}


def district_forms(adjective: str) -> set[tuple[str, ...]]:
    """«Бийский район», «Бийский округ», «Бийский муниципальный район» and «Бийский
    муниципальный округ» in every case, plus the «р-н» abbreviations (a district that became
    a municipal okrug keeps being written every way)."""
    adj = normalize_token(adjective)
    result: set[tuple[str, ...]] = set()
    for case in _CASES:
        for a in _word_forms(adj, case):
            for r in (*_word_forms("район", case), *_word_forms("округ", case)):
                result.add((a, r))
            for m in _word_forms("муниципальный", case):
                for r in (*_word_forms("район", case), *_word_forms("округ", case)):
                    result.add((a, m, r))
    masc_forms = {a for case in _CASES for a in _word_forms(adj, case)}
    for a in masc_forms:
        for abbr in _DISTRICT_WORD_ABBREVIATIONS:
            result.add((a, *abbr))
    return result


class UnlistedDistrict:
    """The type of :data:`UNLISTED_DISTRICT` (one instance)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNLISTED_DISTRICT"


UNLISTED_DISTRICT: Final = UnlistedDistrict()
"""What :meth:`Gazetteer.lookup` returns for a district the rules do not list («Заринский
район»), or in a place field any place they do not list («р.п. Тальменка»): a place was
named, and it is no listed municipality (``None`` means no place found)."""


@dataclass(frozen=True, slots=True)
class GazetteerEntry:
    municipality: str
    ambiguous: bool
    adjective: bool = False
    """Only an adjective form («бийская»): weaker evidence, see the module docstring."""
    adjectival: bool = False
    """An adjective form, perhaps also a name form («заринском»: of Заринск and заринский)."""
    weak: bool = False
    """Weak evidence: counts only when no other listed place is named in the same field.
    An ambiguous district name («Центральный район»: downtown of any town) says nothing
    when the field names a town too («в Центральном районе Бийска»)."""
    district: bool = False
    """A district's name with its district word («Бийский район», «Центральный р-н»)."""


_TYPO_MIN = 6
"""Only words and settlement name forms this long are matched with a typo: one letter is too
much of a shorter word. «в Бийку» (5 letters) is the river Бийка, not «в Бийску»; so «в
Бийсе» is not read as «в Бийске» either."""
_TYPO_CACHE = 65536


def _typo_index(
    table: Mapping[tuple[str, ...], GazetteerEntry],
) -> dict[str, tuple[str, ...]]:
    """Single-word settlement name forms by themselves and by each of their one-letter
    deletions (a symmetric-deletion index: a word one edit from a form shares a key with it).

    Only names: never an adjective (also a surname, a street), a district (the adjective is the
    name), an ambiguous name (an ordinary word) or a weak one.
    """
    index: dict[str, set[str]] = {}
    for key, entry in table.items():
        if len(key) != 1 or entry.adjectival or entry.ambiguous or entry.district or entry.weak:
            continue
        form = key[0]
        if len(form) < _TYPO_MIN or not form.isalpha():
            continue
        index.setdefault(form, set()).add(form)
        for k in range(len(form)):
            index.setdefault(form[:k] + form[k + 1 :], set()).add(form)
    return {k: tuple(sorted(v)) for k, v in index.items()}


def _one_edit(a: str, b: str) -> bool:
    """Are ``a`` and ``b`` different by exactly one inserted, deleted or replaced letter, or
    two neighbours swapped?"""
    if a == b:
        return False
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    p = 0
    while p < min(la, lb) and a[p] == b[p]:
        p += 1
    if la == lb:
        if a[p + 1 :] == b[p + 1 :]:
            return True  # replaced
        return p + 1 < la and a[p] == b[p + 1] and a[p + 1] == b[p] and a[p + 2 :] == b[p + 2 :]
    if la > lb:
        return a[p + 1 :] == b[p:]
    return a[p:] == b[p + 1 :]


@lru_cache(maxsize=4096)
def _known_word(word: str) -> bool:
    """Is ``word`` in the pymorphy3 dictionary? Then it is a word, not a misspelt town."""
    return bool(_morph().word_is_known(word))


_LATIN_RE = re.compile(r"[A-Za-z]")
_CYRILLIC_RE = re.compile(r"[А-Яа-яЁё]")
_WORD_RE = re.compile(r"[A-Za-zА-Яа-яЁё]+")
_HOMOGLYPHS = str.maketrans("AaBCcEeHKkMOoPpTXxYy", "АаВСсЕеНКкМОоРрТХхУу")


def fold_homoglyphs(text: str) -> str:
    """Latin letters that look Cyrillic («Барнаyл» with a Latin y, «Бийcк» with a Latin c)
    made Cyrillic, in words that mix the two scripts only (a Latin word stays Latin). The
    text keeps its length, so token positions stay valid."""
    if not _LATIN_RE.search(text):
        return text

    def fold(m: re.Match[str]) -> str:
        word = m.group(0)
        if _LATIN_RE.search(word) and _CYRILLIC_RE.search(word):
            return word.translate(_HOMOGLYPHS)
        return word

    return _WORD_RE.sub(fold, text)


_Kind = Literal["settlement", "district", "other"]
"""What a match in a place field names: a settlement by its name («г. Рубцовск», «Рубцовск»,
«с. Сростки»), a district («Рубцовский район», an unlisted «Заринский район»), or a town by
its adjective («Бийская ЦРБ»)."""


def _place_field_choice(
    hits: list[tuple[str | UnlistedDistrict, _Kind]],
) -> str | UnlistedDistrict:
    """The place a field names, from all its matches in order.

    An address names the district before the town as often as after it («Алтайский край,
    Рубцовский район, г. Рубцовск»): the settlement is the narrower statement, so a district
    gives way to any settlement named in the same field, whatever the order (the district
    «Рубцовский район» surrounds the city okrug of Рубцовск; «Заринский район, г. Заринск» is
    Заринск, not an unlisted district). Otherwise the earliest match wins.
    """
    if any(kind == "settlement" for _, kind in hits):
        return next(hit for hit, kind in hits if kind != "district")
    return hits[0][0]


class GazetteerConflict(ValueError):
    """The same written form would name two municipalities: the rules must disambiguate."""


class Gazetteer:
    """Immutable ``token tuple -> municipality`` table with longest-match lookup."""

    __slots__ = ("_first", "_fuzzy", "_fuzzy_seen", "_max_len", "_table")

    def __init__(self, table: Mapping[tuple[str, ...], GazetteerEntry]) -> None:
        self._table = dict(table)
        self._first = frozenset(k[0] for k in self._table)
        self._max_len = max((len(k) for k in self._table), default=0)
        self._fuzzy = _typo_index(self._table)
        self._fuzzy_seen: dict[str, str | None] = {}

    @classmethod
    def build(cls, specs: Iterable[tuple[str, Mapping[str, Any]]]) -> Gazetteer:
        """Build from ``(municipality_id, spec)`` where spec has names/adjectives/forms.

        ``ambiguous`` flags every name and form of the municipality; ``ambiguous_names``
        only the listed ``names``/``forms`` (with every case of a listed name), for a place
        whose other names are not ordinary words («Сростки» is also «сростки проводов»).

        Raises :class:`GazetteerConflict` naming both municipalities and the form.
        """
        table: dict[tuple[str, ...], GazetteerEntry] = {}
        for mun_id, spec in specs:
            ambiguous = bool(spec.get("ambiguous", False))
            ambiguous_names = {place_key(n) for n in spec.get("ambiguous_names") or ()}
            keys: set[tuple[str, ...]] = set()
            # Keys some unflagged name, form, district or adjective gives: they stay
            # unambiguous even when an ``ambiguous_names`` entry gives them too.
            plain: set[tuple[str, ...]] = set()
            for name in spec.get("names") or ():
                forms = name_forms(name)
                keys |= forms
                if place_key(name) not in ambiguous_names:
                    plain |= forms
            for adj in spec.get("district_of") or ():
                forms = district_forms(adj)
                keys |= forms
                plain |= forms
            for form in spec.get("forms") or ():
                tokens = place_key(form)
                if tokens:
                    keys.add(tokens)
                    if tokens not in ambiguous_names:
                        plain.add(tokens)
            adjectives: set[tuple[str, ...]] = set()
            for adj in spec.get("adjectives") or ():
                adjectives |= adjective_forms(adj)
            plain |= adjectives
            for key in keys | adjectives:
                other = table.get(key)
                if other is not None and other.municipality != mun_id:
                    raise GazetteerConflict(
                        f"form {' '.join(key)!r} names both municipalities "
                        f"{other.municipality!r} and {mun_id!r}"
                    )
                flagged = ambiguous or key not in plain
                district = any(_district_word_at(list(key), j) for j in range(1, len(key)))
                table[key] = GazetteerEntry(
                    mun_id, flagged, key not in keys, key in adjectives, flagged and district,
                    district,
                )
        return cls(table)

    def __len__(self) -> int:
        return len(self._table)

    def find(self, text: str | None, *, strict: bool = True) -> str | None:
        """The municipality ``text`` is about, or None (also for an unlisted district).

        The earliest (longest) mention: a name, form, district or adjective, skipping an
        adjective that is part of a street name or a person's name.

        ``strict=False`` drops the capitalisation requirement of ambiguous names: used for
        intake metadata, where the field itself says the value is a place.
        """
        found = self.lookup(text, strict=strict)
        return found if isinstance(found, str) else None

    def lookup(
        self, text: str | None, *, strict: bool = True, place_field: bool = False
    ) -> str | UnlistedDistrict | None:
        """Like :meth:`find`, but a district the rules do not list is
        :data:`UNLISTED_DISTRICT` rather than None: the search must end there.

        ``place_field``: ``text`` is where the problem is (intake metadata, the address), so
        any place it names explicitly and no entry matches («Тальменский район», «р.п.
        Тальменка») is :data:`UNLISTED_DISTRICT` too. A listed place anywhere in the field
        still wins («ул. Попова, 5, Индустриальный район, г. Барнаул» is Barnaul).
        """
        if text:
            text = fold_homoglyphs(text)
        found = self._lookup(text, strict, place_field)
        if found is None and place_field and text:
            raw = tokenize(text)
            if _names_a_place(text, raw, [normalize_token(t) for t in raw], strict=strict):
                return UNLISTED_DISTRICT
        return found

    def _lookup(
        self, text: str | None, strict: bool, place_field: bool = False
    ) -> str | UnlistedDistrict | None:
        """The earliest match (see the module docstring); in a place field every match is
        collected, and a settlement named there beats a district named there whatever the
        order (:func:`_place_field_choice`)."""
        if not text or not self._table:
            return None
        raw = tokenize(text)
        norm = [normalize_token(t) for t in raw]
        first = self._first
        if self._fuzzy:
            for i, word in enumerate(norm):
                if word not in first and len(word) >= _TYPO_MIN:
                    fixed = self._typo_fix(word)
                    if fixed is not None:
                        norm[i] = fixed
        table = self._table
        n = len(norm)
        spans: list[tuple[int, int]] | None = None
        weak: str | None = None  # the first weak match, kept unless a name follows
        hits: list[tuple[str | UnlistedDistrict, _Kind]] = []  # place fields only
        next_free = 0  # in a place field, the first token after the last match
        for i in range(n):
            if i < next_free or norm[i] not in first:
                continue
            hit: str | UnlistedDistrict | None = None
            kind: _Kind = "other"
            width = 1
            for length in range(min(self._max_len, n - i), 0, -1):
                entry = table.get(tuple(norm[i : i + length]))
                if entry is None:
                    continue
                if (
                    entry.ambiguous
                    and strict
                    and not (_capitalised(raw[i]) or (i > 0 and norm[i - 1] in _CITY_MARKERS))
                ):
                    continue
                if entry.adjective:
                    if spans is None:  # only texts with an adjective candidate pay for this
                        spans = [m.span() for m in _TOKEN_RE.finditer(text)]
                    if _street_or_person(text, raw, norm, spans, i):
                        break
                    if _settlement_before(text, norm, spans, i):
                        # «с. Славгородское» is a village (of the Немецкий национальный
                        # район), not Славгород: in a place field the explicit settlement is
                        # then an unlisted place (see :meth:`lookup`), in free text no place.
                        break
                    if place_field and _unlisted_district_before(raw, norm, i):
                        hit, kind = UNLISTED_DISTRICT, "district"
                        break
                if entry.adjectival:
                    if spans is None:
                        spans = [m.span() for m in _TOKEN_RE.finditer(text)]
                    if _district_follows(text, norm, spans, i, i + length):
                        # A district, not the city of that name: the listed district of that
                        # adjective («Бийском … районах»), else one the rules do not list.
                        hit, kind = self._district(norm[i]) or UNLISTED_DISTRICT, "district"
                        break
                bare = (
                    entry.adjective
                    and spans is not None
                    and _bare_adjective(text, raw, norm, spans, i)
                )
                if (
                    bare
                    and spans is not None
                    and _capitalised(raw[i])
                    and not _place_word_before(norm, i)
                    and not _quoted(text, spans, i)
                ):
                    # «Мой сосед Каменский», «Учитель Алейская унижает детей»: a surname.
                    break
                if entry.weak or bare:
                    weak = weak or entry.municipality
                    break
                if weak is not None and entry.adjective:
                    break  # only a name outweighs weak evidence
                hit, width = entry.municipality, length
                kind = "district" if entry.district else (
                    "other" if entry.adjective else "settlement")
                break
            else:
                # No entry: a listed district's adjective with a plural district word or
                # before coordinated ones («в Ленинском и Индустриальном районах»).
                district = self._district(norm[i])
                if district is not None:
                    if spans is None:
                        spans = [m.span() for m in _TOKEN_RE.finditer(text)]
                    if _district_follows(text, norm, spans, i, i + 1):
                        hit, kind = district, "district"
            if hit is None:
                continue
            if not place_field:
                return hit
            hits.append((hit, kind))
            next_free = i + width
        if hits:
            return _place_field_choice(hits)
        return weak

    def _typo_fix(self, word: str) -> str | None:
        """The settlement name form ``word`` is one typo away from («барнуле» → «барнауле»),
        when exactly one place has such a form and ``word`` is no dictionary word; else None.
        Remembered per word (a bounded cache: appeals repeat their words)."""
        seen = self._fuzzy_seen
        try:
            return seen[word]  # one lookup: another thread may clear the cache meanwhile
        except KeyError:
            pass
        fixed: str | None = None
        if word.isalpha():
            candidates = set(self._fuzzy.get(word, ()))
            for k in range(len(word)):
                candidates.update(self._fuzzy.get(word[:k] + word[k + 1 :], ()))
            forms = sorted(f for f in candidates if _one_edit(word, f))
            places = {self._table[(f,)].municipality for f in forms}
            if len(places) == 1 and not _known_word(word):
                fixed = forms[0]
        if len(seen) >= _TYPO_CACHE:
            seen.clear()
        seen[word] = fixed
        return fixed

    def _district(self, adjective: str) -> str | None:
        """The municipality listed as the district of ``adjective`` (any case), if any.

        An ambiguous entry does not count («Центральный район» of Barnaul is also the
        downtown of any town): only its own forms, capitalised, name it.
        """
        rayon, _, okrug = _district_words()
        for word in rayon | okrug:
            entry = self._table.get((adjective, word))
            if entry is not None and not entry.adjective and not entry.ambiguous:
                return entry.municipality
        return None


_COORDINATORS = frozenset({"и", "или"})
_COMMA_GAP_RE = re.compile(r"\s*,\s*")
_COORDINATED_MAX = 5
"""Adjectives looked through in «Бийском, Смоленском, … и Заринском районах»."""


def _district_follows(
    text: str, norm: list[str], spans: list[tuple[int, int]], i: int, j: int
) -> bool:
    """Does a district word («район», «районах», «р-н»...) follow the adjective at token
    ``i`` (ending before ``j``), directly or after coordinated adjectives: «в Бийском и
    Смоленском районах», «Бийский, Смоленский районы»?

    Only a singular adjective starts a coordination (each district has its own): «бийские
    и новые районы» are districts of the city.
    """
    if _district_word_at(norm, j):
        return True
    if not _singular_adjective(norm[i]):
        return False
    n = len(norm)
    for _ in range(_COORDINATED_MAX):
        if j < n and norm[j] in _COORDINATORS:
            j += 1
        elif not (j < n and _COMMA_GAP_RE.fullmatch(text, spans[j - 1][1], spans[j][0])):
            return False
        if j >= n or not _singular_adjective(norm[j]):
            return False
        j += 1
        if _district_word_at(norm, j):
            return True
    return False


@lru_cache(maxsize=4096)
def _singular_adjective(word: str) -> bool:
    """«смоленском», «других»: a full adjective that can be singular."""
    return any(p.tag.POS == "ADJF" and p.tag.number == "sing" for p in _morph().parse(word))


_CASE_OF = {"loc2": "loct", "gen2": "gent", "acc2": "accs", "voct": "nomn"}
_STREET_PREPOSITIONS = frozenset({"на", "по"})
"""«на Алейской», «по Бийской»: where people say which street, the street word left out."""
_ADJECTIVES_BEFORE_NOUN = 3
"""Adjectives looked through to the noun: «Алейской центральной районной больнице»."""


@lru_cache(maxsize=8192)
def _agrees(adjective: str, noun: str) -> bool:
    """Can ``adjective`` qualify ``noun`` (one case, number and, singular, gender)?"""
    morph = _morph()
    nouns = [p.tag for p in morph.parse(noun) if p.tag.POS == "NOUN" and "Abbr" not in p.tag]
    for a in morph.parse(adjective):
        tag = a.tag
        if tag.POS != "ADJF":
            continue
        for n in nouns:
            if _CASE_OF.get(n.case, n.case) != tag.case or n.number != tag.number:
                continue
            if tag.number == "plur" or n.gender is None or n.gender == tag.gender or "ms-f" in n:
                return True
    return False


@lru_cache(maxsize=4096)
def _adjective_word(word: str) -> bool:
    return any(p.tag.POS == "ADJF" for p in _morph().parse(word))


def _bare_adjective(
    text: str, raw: list[str], norm: list[str], spans: list[tuple[int, int]], i: int
) -> bool:
    """Is the adjective at token ``i`` without a noun it qualifies («на Алейской в Барнауле»,
    not «Алейская ЦРБ», «Алейской центральной больнице»)? Such an adjective stands for a
    noun left out: as often a street as a town."""
    n = len(norm)
    j = i + 1
    for _ in range(_ADJECTIVES_BEFORE_NOUN + 1):
        if j >= n or not _NAME_GAP_RE.fullmatch(text, spans[j - 1][1], spans[j][0]):
            return True
        word = raw[j]
        if len(word) > 1 and word.isupper() and word.isalpha():  # «ЦРБ», «ТЭЦ», «МФЦ»
            return False
        if _agrees(norm[i], norm[j]):
            return False
        if not _adjective_word(norm[j]):
            return True
        j += 1
    return True


@lru_cache(maxsize=1024)
def _preposition(word: str) -> bool:
    """«в», «на», «из», «возле», «около», «под»...: the first parse is a preposition."""
    return _morph().parse(word)[0].tag.POS == "PREP"


def _place_word_before(norm: list[str], i: int) -> bool:
    """Does a preposition or «г.»/«город» stand right before token ``i``? A place is said
    with one («в Алейском», «возле Алейской», «из Каменского»); a capitalised adjective
    without one and without a noun is said of a person: «Мой сосед Каменский», «Участковый
    Каменский не реагирует», «Каменский завалил двор снегом»."""
    return i >= 1 and (norm[i - 1] in _CITY_MARKERS or _preposition(norm[i - 1]))


_OPENING_QUOTES = frozenset("«\"“„'")


def _quoted(text: str, spans: list[tuple[int, int]], i: int) -> bool:
    """Does an opening quote stand right before token ``i``? «МО МВД России «Славгородский»»
    names a body by its town, a surname is not quoted."""
    start = spans[i][0]
    return start > 0 and text[start - 1] in _OPENING_QUOTES


@lru_cache(maxsize=4096)
def _feminine_singular(word: str) -> bool:
    return any(
        p.tag.POS == "ADJF" and p.tag.gender == "femn" and p.tag.number == "sing"
        for p in _morph().parse(word)
    )


def _street_or_person(
    text: str, raw: list[str], norm: list[str], spans: list[tuple[int, int]], i: int
) -> bool:
    """Is the adjective at token ``i`` part of a street name or a person's (sur)name?"""

    def gap(a: int, b: int, pattern: re.Pattern[str]) -> bool:
        """Only ``pattern`` (spaces, dots) between the end of token a and the start of b."""
        return pattern.fullmatch(text, spans[a][1], spans[b][0]) is not None

    n = len(norm)
    # «на Алейской», «по Бийской»: a street («улица» is feminine) named without its word.
    if (
        i >= 1
        and norm[i - 1] in _STREET_PREPOSITIONS
        and gap(i - 1, i, _NAME_GAP_RE)
        and _feminine_singular(norm[i])
        and _bare_adjective(text, raw, norm, spans, i)
    ):
        return True
    # «ул. Бийская», «улице Бийской», «пр-т Бийский». A dot may follow an abbreviation only:
    # «Нет проезда. Заринская администрация молчит» is a sentence end, not a street.
    if i >= 1 and norm[i - 1] in _STREET_WORDS:
        dotted = norm[i - 1] in _STREET_ABBREVIATION_WORDS
        if gap(i - 1, i, _STREET_GAP_RE if dotted else _NAME_GAP_RE):
            return True
    if (
        i >= 2
        and (norm[i - 2], norm[i - 1]) in _STREET_ABBREVIATIONS
        and gap(i - 1, i, _STREET_GAP_RE)
    ):
        return True
    # «Бийская ул.», «Бийский тракт», «Каменский пр-т»
    if i + 1 < n and norm[i + 1] in _STREET_WORDS and gap(i, i + 1, _NAME_GAP_RE):
        return True
    # An address without the street word: «Бийская, 12», «Алейская 5»
    if i + 1 < n and raw[i + 1][:1].isdigit() and gap(i, i + 1, _HOUSE_GAP_RE):
        return True
    if not raw[i][:1].isupper():
        return False
    # «Заринский Иван Петрович», «Заринская И. П.», «Иван Петрович Заринский»
    if (
        i + 1 < n
        and raw[i + 1][:1].isupper()
        and gap(i, i + 1, _NAME_GAP_RE)
        and _is_given_name(raw[i + 1])
    ):
        return True
    return (
        i >= 1
        and raw[i - 1][:1].isupper()
        and gap(i - 1, i, _NAME_GAP_RE)
        and len(raw[i - 1]) > 1
        and _is_given_name(raw[i - 1])
    )
