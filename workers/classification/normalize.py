"""Russian text normalisation for appeal classification.

Appeals arrive as caps-locked social-media posts with emoji, as formal letters and as operator
summaries with typos. The classifier must see the same token for «ОТОПЛЕНИЯ», «отопление» and
«otoplenie», so this module lower-cases, folds ё→е, strips emoji and punctuation, repairs
Latin look-alike letters inside Cyrillic words, transliterates Latin words that turn out to be
known Russian words, and lemmatises with pymorphy3 (real morphology, not suffix rules).

Lemmatisation is the hot path: a per-token cache makes it a dict lookup for every word seen
before, which is what keeps batched classification at thousands of appeals per second.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import cast

import pymorphy3

__all__ = [
    "FROST_TOKEN",
    "MAX_SPELL_FIXES",
    "MAX_TOKENS",
    "char_ngrams",
    "chunk_tokens",
    "lemma",
    "lemmatize",
    "morph_tag",
    "needs_spell_fix",
    "normalize_text",
    "spell_fix",
    "spell_fix_mask",
    "split_chunks",
    "stem",
    "tokenize",
]

#: Pseudo-lemma emitted for a negative temperature («-25°», «минус 30»): frost is an urgency cue.
FROST_TOKEN = "мороз"

_LATIN_LOOKALIKE = str.maketrans("aceopxyk", "асеорхук")
_TRANSLIT = (
    ("shch", "щ"), ("sch", "щ"), ("zh", "ж"), ("kh", "х"), ("ts", "ц"), ("ch", "ч"),
    ("sh", "ш"), ("yu", "ю"), ("ju", "ю"), ("ya", "я"), ("ja", "я"), ("yo", "е"),
    ("a", "а"), ("b", "б"), ("v", "в"), ("g", "г"), ("d", "д"), ("e", "е"), ("z", "з"),
    ("i", "и"), ("y", "ы"), ("j", "й"), ("k", "к"), ("l", "л"), ("m", "м"), ("n", "н"),
    ("o", "о"), ("p", "п"), ("r", "р"), ("s", "с"), ("t", "т"), ("u", "у"), ("f", "ф"),
    ("h", "х"), ("c", "ц"), ("w", "в"), ("x", "кс"), ("q", "к"),
)
# Common Latin spellings in posts whose letter-by-letter transliteration is not a known word.
_LATIN_WORDS = {
    "wifi": "вайфай", "wi": "вай", "fi": "фай", "internet": "интернет", "tv": "тв",
    "net": "нет", "pls": "пожалуйста", "plz": "пожалуйста", "ok": "хорошо",
    "lte": "интернет", "4g": "интернет", "3g": "интернет",
}

_DEGREE = r"(?:°c?|градус\w*|град\b|гр\b)"
#: A negative temperature: «минус 30», a minus glued to one or two digits («-25», «−30°»), or a
#: minus, a space and one or two digits *with* a degree unit («- 35 градусов»). A spaced dash
#: without a unit is punctuation («на улице - 35» is rare, «дом 10 - 12» is common).
#: The ``skip`` alternative matches a number or a time followed by a dash — the start of a
#: range or a phone number («17 - 18 градусов», «с 8:00 - 14:00», «Автобусы 25 - 27»,
#: «555 - 12 - 34») — so that dash is consumed as it is and never read as a sign: those turned
#: ordinary appeals urgent (review of session 16). A dash glued to one or two digits and a
#: degree unit (``temp``) is a range only after a temperature («17 -18 градусов»); after a date,
#: a time or a longer number («15.01 -35 градусов», «в 7:00 -32 градуса», «2026 -38°») it is
#: a minus sign (:func:`_mark_frost`; review of session 17). The number's parts are bounded, so
#: a hostile run of «1:1:1:…» costs linear time.
_FROST_RE = re.compile(
    r"(?P<skip>(?<![\w\-−–])\+?\(?(?P<num>\d+(?:[:.,]\d+){0,2})\)?(?:°c?)?\s*(?P<dash>[-−–])"
    r"(?P<temp>\d{1,2}(?![\d\-])\s*" + _DEGREE + r")?)"
    r"|(?:минус|min)\s*\d{1,2}(?!\d)"
    r"|(?<![\w\-−–])[-−–](?:\d{1,2}(?![\d\-])(?:\s*" + _DEGREE + r")?"
    r"|\s\d{1,2}(?![\d\-])\s*" + _DEGREE + r")"
)
#: A number that can start a temperature range: one or two digits, maybe one decimal digit.
_TEMPERATURE_RE = re.compile(r"\d{1,2}(?:[.,]\d)?")
_FROST_MARK = " " + FROST_TOKEN + " "


def _mark_frost(m: re.Match[str]) -> str:
    """Replacement of :data:`_FROST_RE`: the frost token, or a range's dash left as it is.

    A ``skip`` match followed by a glued negative temperature with its unit keeps its number and
    marks the temperature, exactly as the sign alternative would have without the number, unless
    the number is itself a temperature (then the dash is a range's).
    """
    if m.group("skip") is None:
        return _FROST_MARK
    if m.group("temp") is None or _TEMPERATURE_RE.fullmatch(m.group("num")):
        return m.group(0)
    return m.group(0)[: m.start("dash") - m.start()] + _FROST_MARK


_TOKEN_RE = re.compile(r"[^\W\d_]+", re.UNICODE)
_REPEAT_RE = re.compile(r"(\w)\1{2,}")
_CYR_RE = re.compile(r"[а-я]")
_LAT_RE = re.compile(r"[a-z]")

_MORPH = pymorphy3.MorphAnalyzer()


#: Deleted before anything else: stress marks (U+0300, U+0301: «све́та», kept by intake's NFC
#: because no precomposed Cyrillic letter carries them) and invisible format characters (soft
#: hyphen, zero-width space / non-joiner / joiner, word joiner, BOM). The token pattern reads
#: them as separators, so «све́та» became «све» + «та» and a soft hyphen split «Га­зом»: the
#: emergency words were lost (review of session 18).
_INVISIBLE = dict.fromkeys(map(ord, "\u0300\u0301\u00ad\u200b\u200c\u200d\u2060\ufeff"))


def _full_path_chars() -> re.Pattern[str]:
    """The characters that make :func:`_clean` change a text in NFC: :data:`_INVISIBLE`, and
    every letter whose canonical decomposition holds U+0300 or U+0301 (é, ѓ, ѐ, ќ, ѝ, Greek
    tonos: NFD exposes the mark, which is then deleted, so «café» becomes «cafe»). Read from
    this Python's Unicode tables (~0.2 s at import), so a newer Unicode version stays exact."""
    marks = ("\u0300", "\u0301")
    chars = {chr(c) for c in _INVISIBLE}
    for code in range(sys.maxunicode + 1):
        ch = chr(code)
        if unicodedata.decomposition(ch) and any(
                m in unicodedata.normalize("NFD", ch) for m in marks):
            chars.add(ch)
    return re.compile("[" + "".join(map(re.escape, sorted(chars))) + "]")


_FULL_PATH_RE = _full_path_chars()


def _clean(text: str) -> str:
    """:data:`_INVISIBLE` deleted and the text in NFC (a decomposed «й» is one letter again).

    Decomposed first: NFC alone would compose «е» + U+0300 into «ѐ» and «г» + U+0301 into «ѓ»,
    letters no Russian word has.

    A text already in NFC with none of :data:`_FULL_PATH_RE`'s characters is returned as it
    is: NFD, a translation that deletes nothing and NFC give that text back, and the three
    passes made every non-ASCII text (nearly all: they are Russian) a third slower to
    classify (review of today's commit 305589e)."""
    if text.isascii():
        return text
    if _FULL_PATH_RE.search(text) is None and unicodedata.is_normalized("NFC", text):
        return text
    return unicodedata.normalize(
        "NFC", unicodedata.normalize("NFD", text).translate(_INVISIBLE))


#: Capital Latin letters drawn like capital Cyrillic ones. In lower case only «aceopxyk» still
#: look alike (:data:`_LATIN_LOOKALIKE`): «b h m t» do not look like «в н м т», so caps text
#: («ПAXHET ГAЗOM B ПOДЪEЗДE», «HET CBETA») is repaired before lower-casing, while the case
#: is still known (review of session 18).
_CAPS_LOOKALIKE = str.maketrans("ABCEHKMOPTXY", "АВСЕНКМОРТХУ")
_CAPS_LAT_RE = re.compile(r"[ABCEHKMOPTXY]")
_ANY_CYR_RE = re.compile(r"[А-Яа-яЁё]")
_CAPS_WORD_RE = re.compile(r"[ABCEHKMOPTXY]+")


def _caps_word(m: re.Match[str]) -> str:
    """A letter run with capital look-alikes: mapped if it mixes scripts, or if it is all such
    capitals, not one of :data:`_LATIN_WORDS` («OK»), and the mapped word is a Russian word
    pymorphy3 knows («HET», «BO»). Of single letters only «B» (the preposition «в»): «°C» is
    Celsius and «5A» a building letter."""
    w = m.group(0)
    if _CAPS_LAT_RE.search(w) is None:
        return w
    if _ANY_CYR_RE.search(w) is not None:
        return w.translate(_CAPS_LOOKALIKE)
    if ((len(w) > 1 or w == "B") and _CAPS_WORD_RE.fullmatch(w)
            and w.lower() not in _LATIN_WORDS):
        c = w.translate(_CAPS_LOOKALIKE)
        if _MORPH.word_is_known(c.lower()):
            return c
    return w


def _repair_caps(text: str) -> str:
    """:func:`_caps_word` on every letter run of a text that has Cyrillic letters and capital
    look-alikes (others are returned as they are, at the cost of two searches)."""
    if _CAPS_LAT_RE.search(text) is None or _ANY_CYR_RE.search(text) is None:
        return text
    return _TOKEN_RE.sub(_caps_word, text)


def normalize_text(text: str) -> str:
    """Lower-case, fold ё→е, mark frost and collapse «ААААА» so caps and emphasis don't matter."""
    if not text:
        return ""
    s = _repair_caps(_clean(text)).lower().replace("ё", "е")
    s = _FROST_RE.sub(_mark_frost, s)
    return _REPEAT_RE.sub(r"\1", s)


@lru_cache(maxsize=262_144)
def _fix_token(tok: str) -> str:
    """Repair one raw lower-case token: look-alike Latin letters, transliterated words."""
    has_cyr = _CYR_RE.search(tok) is not None
    has_lat = _LAT_RE.search(tok) is not None
    if has_cyr and has_lat:
        return tok.translate(_LATIN_LOOKALIKE)
    if has_lat and not has_cyr:
        if tok in _LATIN_WORDS:
            return _LATIN_WORDS[tok]
        cyr = tok
        for lat, ru in _TRANSLIT:
            cyr = cyr.replace(lat, ru)
        if _LAT_RE.search(cyr) is None and len(cyr) > 2 and _MORPH.word_is_known(cyr):
            return cyr
        return tok
    return tok


def tokenize(text: str) -> list[str]:
    """Split into letter-only tokens (digits, emoji, punctuation dropped) after normalisation."""
    return [_fix_token(t) for t in _TOKEN_RE.findall(normalize_text(text))]


# Every frost match contains one of these, so a text without them skips the regex (exact).
_FROST_TRIGGERS = ("-", "−", "–", "min", "минус")


def split_chunks(text: str) -> list[str]:
    """The fast path of :func:`tokenize`, part 1: lower-cased, ё-folded, frost-marked text split
    on whitespace. ``tokenize(t) == [x for c in split_chunks(t) for x in chunk_tokens(c)]``.

    Why that holds: tokens are runs of letters and whitespace is never a letter, so no token
    spans two chunks; the «ААААА» collapse only shortens runs of one repeated character, which
    lie inside one token (letters) or inside one separator (digits, ``_``), so collapsing each
    token equals collapsing the text. Frost marking spans whitespace («минус 30») and stays
    on the whole text, before the split, exactly as in :func:`normalize_text`.
    """
    if not text:
        return []
    s = _repair_caps(_clean(text)).lower().replace("ё", "е")
    for trig in _FROST_TRIGGERS:
        if trig in s:
            s = _FROST_RE.sub(_mark_frost, s)
            break
    return s.split()


def chunk_tokens(chunk: str) -> list[str]:
    """The fast path of :func:`tokenize`, part 2: the tokens of one chunk of
    :func:`split_chunks` (callers cache this per chunk)."""
    return [_fix_token(_collapse(t)) for t in _TOKEN_RE.findall(chunk)]


@lru_cache(maxsize=65_536)
def _collapse(token: str) -> str:
    return _REPEAT_RE.sub(r"\1", token)


_ALPHABET = "абвгдежзийклмнопрстуфхцчшщъыьэюя"
_VOWEL_ALT = {"о": "а", "а": "о", "е": "и", "и": "е", "я": "е", "ы": "и", "э": "е"}
_ROWS = ("йцукенгшщзхъ", "фывапролджэ", "ячсмитьбю")


def _neighbours() -> dict[str, str]:
    """Letters next to each other on the ЙЦУКЕН keyboard (same row and the rows around)."""
    pos = {ch: (r, c) for r, row in enumerate(_ROWS) for c, ch in enumerate(row)}
    out: dict[str, str] = {}
    for ch, (r, c) in pos.items():
        out[ch] = "".join(o for o, (r2, c2) in pos.items()
                          if o != ch and abs(r2 - r) <= 1 and -1 <= c2 - c <= 1)
    return out


_KEY_NEIGHBOURS = _neighbours()


#: Longer tokens are no word to correct («превысокомногорассмотрительствующий» has 35
#: letters). The candidates grow with the square of the length: one 20,000-letter token took
#: 108 s to classify and held up its partition (review of session 15).
MAX_SPELL_FIX_LETTERS = 40


def _prefix_test() -> Callable[[str], bool]:
    """``test(p)``: does some dictionary word start with ``p`` (exactly as spelt)?

    Through the DAWG of either backend pymorphy3 may run on (the C one's
    ``has_keys_with_prefix``, the pure-Python one's ``follow_bytes``); a backend with neither
    says yes to everything, which only gives up :func:`_word_prefix_len`'s saving."""
    words = _MORPH.dictionary.words
    has_prefix = getattr(words, "has_keys_with_prefix", None)
    if callable(has_prefix):
        return cast("Callable[[str], bool]", has_prefix)
    dct = getattr(words, "dct", None)
    if dct is not None and hasattr(dct, "follow_bytes") and hasattr(dct, "ROOT"):
        return lambda p: dct.follow_bytes(p.encode("utf-8"), dct.ROOT) is not None
    return lambda p: True


_HAS_PREFIX = _prefix_test()


def _word_prefix_len(token: str) -> int:
    """Length of ``token``'s longest beginning that begins a dictionary word, reading an «е» as
    «е» or «ё», as pymorphy3's ``word_is_known`` does.

    Why: a correction candidate that keeps ``token[:i]`` with ``i`` beyond it cannot be a
    word, so :func:`spell_fix` need not look it up. A made-up surname or street name («Ковербаов»)
    tried all ~37 insertions and key neighbours at every position, a thousand look-ups in
    the end refused: on appeals naming a new person the bench ran at half its rate or less."""
    live = [""]
    for i, ch in enumerate(token):
        nxt = [p + ch for p in live if _HAS_PREFIX(p + ch)]
        if ch == "е":
            nxt += [p + "ё" for p in live if _HAS_PREFIX(p + "ё")]
        if not nxt:
            return i
        live = nxt
    return len(token)


def _known_test() -> Callable[[str], bool]:
    """``known(w)``: pymorphy3's ``word_is_known(w)``, with the same answers, at less than
    half its cost.

    Why: a correction may look up a hundred candidates, and on appeals with new words
    (typos, surnames, street names) these look-ups were a third of the classifier's time.
    ``word_is_known`` goes through two Python layers to the fuzzy ``similar_keys`` for every
    word; only a word holding a letter with substitutes (Russian «е», which the dictionary may
    hold as «ё») needs the fuzzy search, any other is one membership test of the DAWG."""
    words = _MORPH.dictionary.words
    subs = _MORPH.char_substitutes
    fuzzy = "".join(sorted(k.decode("utf-8") for k in (subs or {})))
    if len(fuzzy) != 1 or not hasattr(words, "similar_keys"):
        return _MORPH.word_is_known

    def known(word: str) -> bool:
        w = word.lower()
        if fuzzy in w:
            return bool(words.similar_keys(w, subs))
        return w in words

    return known


_KNOWN = _known_test()


def spell_fix(token: str) -> str:
    """One-edit correction of a word pymorphy3 does not know, else the token unchanged.

    Appeals are typed fast on phones: doubled/dropped/swapped letters and unstressed vowels
    («леддяные», «сосуоьки», «отапление»). Candidates are tried cheapest-first — delete a
    letter, swap neighbours, swap an unstressed vowel, insert a letter, hit a neighbouring key — and
    the first dictionary word wins. Short or already-known tokens are left alone. Candidates
    that cannot be words are skipped (:func:`_word_prefix_len`), which changes no correction.
    """
    if len(token) < 5 or len(token) > MAX_SPELL_FIX_LETTERS or _KNOWN(token):
        return token
    known = _KNOWN
    n = len(token)
    low = token.lower()
    # Every candidate below keeps token[:i], i the position it edits: past the longest
    # beginning of token that begins a dictionary word (_word_prefix_len) the candidate is no
    # word and is not looked up. (A token whose lower-casing changes its length, e.g. with
    # «İ», is not pruned.)
    reach = min(n, _word_prefix_len(low) + 1) if len(low) == n else n
    for i in range(reach):  # extra letter
        c = token[:i] + token[i + 1 :]
        if known(c):
            return c
    for i in range(min(reach, n - 1)):  # swapped neighbours
        c = token[:i] + token[i + 1] + token[i] + token[i + 2 :]
        if known(c):
            return c
    for i, ch in enumerate(token[:reach]):  # unstressed vowel
        alt = _VOWEL_ALT.get(ch)
        if alt and known(c := token[:i] + alt + token[i + 1 :]):
            return c
    for i in range(1, reach):  # dropped letter (not at the start: too ambiguous)
        for a in _ALPHABET:
            if known(c := token[:i] + a + token[i:]):
                return c
    for i in range(1, reach):  # neighbouring key
        for a in _KEY_NEIGHBOURS.get(token[i], ""):
            if known(c := token[:i] + a + token[i + 1 :]):
                return c
    return token


#: Distinct unknown words of one text that get a spelling fix (:func:`spell_fix`) and
#: pymorphy3's guessed lemma; later unknown words of that text are taken as written. A
#: correction costs up to ~450 dictionary look-ups (a 12-letter word) and a guess about as much
#: as all other features of the word, so a hostile 20,000-character text of random words took
#: 0.56 s and a batch of them held the routing worker's event loop for minutes (review of
#: session 18). No text of the corpus has more than 5 unknown words, so the budget changes no
#: training feature; a real appeal with 20 typos is rare enough that its 21st may stay as typed.
MAX_SPELL_FIXES = 20
#: Tokens of one text that are classified; the rest is left out. An appeal states its subject
#: early, and no corpus text has more than 91 tokens, so this changes no training feature; it
#: bounds the per-token cost (features of each new word) of a hostile 20,000-character text
#: of short random words (review of session 18).
MAX_TOKENS = 1000


@lru_cache(maxsize=262_144)
def needs_spell_fix(token: str) -> bool:
    """Whether ``token`` is a word pymorphy3 does not know, which :func:`lemma` would correct
    or guess (a Cyrillic token of two letters or more): the words :data:`MAX_SPELL_FIXES`
    counts."""
    return (len(token) >= 2 and _CYR_RE.search(token) is not None
            and not _MORPH.word_is_known(token))


class SpellBudget:
    """One text's spelling-fix budget: the first :data:`MAX_SPELL_FIXES` distinct unknown
    words may be corrected (a repeat of a corrected word is corrected too), later ones not.
    The one rule behind :func:`spell_fix_mask` (training) and the encoder (inference), so the
    two cannot count differently."""

    __slots__ = ("_fixed",)

    def __init__(self) -> None:
        self._fixed: set[str] = set()

    def allow(self, token: str) -> bool:
        """May ``token``, the text's next one, be spell-corrected?"""
        if not needs_spell_fix(token) or token in self._fixed:
            return True
        if len(self._fixed) >= MAX_SPELL_FIXES:
            return False
        self._fixed.add(token)
        return True


def spell_fix_mask(tokens: Sequence[str]) -> list[bool]:
    """Per token of one text: may it be spell-corrected? (:class:`SpellBudget`)"""
    budget = SpellBudget()
    return [budget.allow(t) for t in tokens]


@lru_cache(maxsize=65_536)
def _first_parse(token: str) -> pymorphy3.analyzer.Parse:
    """pymorphy3's first parse of a token after :func:`spell_fix` (shared by :func:`lemma` and
    :func:`morph_tag`, so a new word is spell-checked and parsed once)."""
    return _MORPH.parse(spell_fix(token))[0]


@lru_cache(maxsize=262_144)
def lemma(token: str, fix: bool = True) -> str:
    """The pymorphy3 normal form of one token (first parse), ё folded; cached because it's hot.

    Unknown words first get a one-edit spelling fix (:func:`spell_fix`), so a typo'd
    «сосуоьки» still reaches the lexicons as «сосулька». With ``fix`` false (the text's
    budget is spent, :func:`spell_fix_mask`) an unknown word is its own lemma: pymorphy3's
    guess for an unknown word costs as much again as the rest of its features.
    """
    if len(token) < 2 or _CYR_RE.search(token) is None:
        return token
    if not fix and needs_spell_fix(token):
        return token.replace("ё", "е")
    return str(_first_parse(token).normal_form).replace("ё", "е")


def morph_tag(token: str, fix: bool = True) -> str:
    """The grammatical tag of :func:`lemma`'s parse as text («VERB,perf,intr plur,past,indc»);
    empty for tokens :func:`lemma` leaves alone (one letter, no Cyrillic, an unknown word past
    the text's spelling budget)."""
    if len(token) < 2 or _CYR_RE.search(token) is None or (not fix and needs_spell_fix(token)):
        return ""
    return str(_first_parse(token).tag)


def lemmatize(text: str) -> list[str]:
    """Text → list of lemmas; the representation used by the word features and the lexicons."""
    toks = tokenize(text)
    return [lemma(t, m) for t, m in zip(toks, spell_fix_mask(toks), strict=True)]


_STEMMER = None


def stem(token: str) -> str:
    """Snowball Russian stem: a coarser key used where the lemma of a typo'd word is unreliable."""
    global _STEMMER
    if _STEMMER is None:
        import snowballstemmer

        _STEMMER = snowballstemmer.stemmer("russian")
    return str(_STEMMER.stemWord(token))


@lru_cache(maxsize=262_144)
def char_ngrams(token: str) -> tuple[str, ...]:
    """Character 3–5-grams of one token padded with spaces (sklearn's ``char_wb``), cached.

    Computing them per token and caching is equivalent to ``analyzer="char_wb"`` on the joined
    text but avoids re-slicing every word of every appeal, which dominates transform time.
    Typos («отапление», «атопление») still share most n-grams with the correct word.
    """
    w = f" {token} "
    n_len = len(w)
    out: list[str] = []
    for n in (3, 4, 5):
        if n_len < n:
            if n == 3:
                out.append(w)
            break
        out.extend(w[i : i + n] for i in range(n_len - n + 1))
    return tuple(out)
