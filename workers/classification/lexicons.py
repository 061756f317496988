"""Editable rule layer: lexicons per category and for urgency.

Domain experts keep ``lexicons/<category>.txt`` and ``lexicons/urgent.txt`` as plain text, one
word or phrase per line, ``#`` for comments. Entries are lemmatised with the same normaliser as
appeals, so «нет горячей воды» in a file matches «горячей воды нет уже третий день».

Why this matching rule: a phrase matches when all its lemmas occur within a short window, in
any order. Russian word order is free, so strict adjacency would miss most real phrasings,
while a window keeps «нет» from pairing with a noun three sentences away.
A line ``A & B`` matches when both parts match anywhere in the text: it expresses conditions
such as "no heating" *and* "frost". A part written ``!C`` must NOT occur («нет свет & !подъезд»:
a dark staircase is not a power outage).

Category hit counts become model features. Urgency hits, calm hits and the urgency *cue*
lexicons (``cue_*.txt``: past/resolved, planned works, hypotheticals, "happening now / to
vulnerable people", habitual / recurring wording) are features of the urgency model: each known
urgency/calm entry has its own learned weight, and the total hit counts carry any entry an
expert adds after training.

Every file is read at load time and must be UTF-8; a missing file, a file in another encoding
or a line that cannot mean what it says (an empty condition around ``&``, ``!`` conditions
only, a condition with no word in it such as «112», regular-expression or wildcard syntax
such as «(нет|без)» or «отключ*») is an error naming the file and line, not
a lexicon that silently lost rules.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .normalize import lemmatize

__all__ = [
    "CATEGORIES",
    "CUE_NAMES",
    "LEGACY_CUE_NAMES",
    "LEXICON_DIR",
    "Lexicon",
    "LexiconSet",
    "lexicon_files",
    "load_lexicon",
    "load_lexicons",
    "parse_lexicon_lines",
]

CATEGORIES: tuple[str, ...] = (
    "housing_utilities", "roads", "transport", "landscaping", "healthcare", "education",
    "social", "ecology", "connectivity", "safety", "trade_services", "other",
)

LEXICON_DIR = Path(__file__).with_name("lexicons")
#: Urgency cue lexicons (``lexicons/cue_<name>.txt``), in feature order. New cues are appended:
#: a model records the cues it was trained with (:attr:`.features.Featurizer.cue_names`, a
#: prefix of this tuple), so older models keep their columns.
CUE_NAMES: tuple[str, ...] = ("past", "planned", "hypo", "now", "habitual")
#: The cues of models trained before ``habitual`` (urgency rework #6) was added.
LEGACY_CUE_NAMES: tuple[str, ...] = CUE_NAMES[:4]
#: Regular-expression and wildcard syntax, which a line may not contain (:meth:`Lexicon.add`).
_REGEX_CHARS = frozenset("|*()[]{}\\?+^$")
_WINDOW_SLACK = 3  # extra tokens allowed between the lemmas of one phrase
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Entry:
    """One line of a lexicon: one or more phrases (``&``), each a tuple of lemmas."""

    raw: str
    parts: tuple[tuple[str, ...], ...]
    negated: tuple[tuple[str, ...], ...] = ()


@dataclass(slots=True)
class Lexicon:
    """A named lexicon with an index from a phrase's anchor lemma to its entries (fast lookup)."""

    name: str
    entries: list[_Entry] = field(default_factory=list)
    _index: dict[str, list[tuple[int, tuple[str, ...]]]] = field(default_factory=dict)

    def add(self, raw: str) -> None:
        """Add one line (comments already stripped).

        Raises ``ValueError`` saying what is wrong with a line that cannot mean what its
        writer meant: an empty condition around ``&`` (a trailing ``&`` was ignored, so a line
        cut to «нет свет &» fired on every «нет света»), a condition with no word the
        classifier reads («112»: digits and punctuation are dropped), or only negated
        conditions (``!подъезд`` alone can never match), or regular-expression / wildcard
        syntax (``| * ( ) [ ] { } \\ ? + ^ $``: a line is words). Such lines used to be skipped
        or half-read without a word.
        """
        bad = sorted(set(raw) & _REGEX_CHARS)
        if bad:
            # «(нет|без) свет» required all three words, «отключ* свет» never fired: the
            # characters are dropped as punctuation (review of session 18).
            raise ValueError(f"{' '.join(bad)} in a line: lexicon lines are words, not regular "
                             "expressions; write one line per alternative and whole words")
        parts: list[tuple[str, ...]] = []
        negated: list[tuple[str, ...]] = []
        for piece in (p.strip() for p in raw.split("&")):
            neg = piece.startswith("!")
            words = piece[1:].strip() if neg else piece
            if not words:
                raise ValueError("an empty condition before or after '&'" if not neg
                                 else "'!' with no word after it")
            lemmas = tuple(lemmatize(words))
            if not lemmas:
                raise ValueError(f"{piece!r} has no word the classifier reads (digits and "
                                 "punctuation are dropped)")
            (negated if neg else parts).append(lemmas)
        if not parts:
            raise ValueError("only negated conditions ('!…'): a line needs a word that must "
                             "occur")
        idx = len(self.entries)
        self.entries.append(_Entry(raw, tuple(parts), tuple(negated)))
        anchor = parts[0]
        self._index.setdefault(anchor[0], []).append((idx, anchor))

    def matches(
        self, lemmas: Sequence[str], positions: dict[str, list[int]] | None = None
    ) -> list[str]:
        """Raw text of every entry found in ``lemmas`` (each counted once)."""
        return [e.raw for e in self.match_entries(lemmas, positions)]

    def match_entries(
        self, lemmas: Sequence[str], positions: dict[str, list[int]] | None = None
    ) -> list[_Entry]:
        """Every entry found in ``lemmas`` (each counted once), as parsed entries."""
        if positions is None:
            positions = _positions(lemmas)
        found: list[_Entry] = []
        seen: set[int] = set()
        for lem in positions:
            for idx, _anchor in self._index.get(lem, ()):
                if idx in seen:
                    continue
                entry = self.entries[idx]
                if all(_phrase_in(p, positions) for p in entry.parts) and not any(
                    _phrase_in(n, positions) for n in entry.negated
                ):
                    seen.add(idx)
                    found.append(entry)
        return found

    def count(self, lemmas: Sequence[str], positions: dict[str, list[int]] | None = None) -> int:
        """Number of distinct entries matched: the feature value the model sees."""
        return len(self.matches(lemmas, positions))

    def __len__(self) -> int:
        return len(self.entries)


def _positions(lemmas: Sequence[str]) -> dict[str, list[int]]:
    pos: dict[str, list[int]] = {}
    for i, lem in enumerate(lemmas):
        pos.setdefault(lem, []).append(i)
    return pos


def _phrase_in(phrase: tuple[str, ...], positions: dict[str, list[int]]) -> bool:
    """All lemmas of ``phrase`` present within a window of len(phrase)+slack tokens: some
    position of the first lemma has a position of every other lemma less than the window
    width away.

    ``positions`` lists are ascending (as :func:`_positions` builds them), so one pointer per
    other lemma walks forward as the first lemma's position grows: linear in the positions.
    Comparing every pair was quadratic: a 40,000-character text repeating «нет» and «вода»
    far apart took seconds per phrase (review of session 16).
    """
    if len(phrase) == 1:
        return phrase[0] in positions
    lists = []
    for lem in phrase:
        p = positions.get(lem)
        if p is None:
            return False
        lists.append(p)
    width = len(phrase) + _WINDOW_SLACK
    others = lists[1:]
    ptr = [0] * len(others)
    for start in lists[0]:
        for i, other in enumerate(others):
            j, n = ptr[i], len(other)
            while j < n and other[j] <= start - width:  # too far behind, now and later
                j += 1
            ptr[i] = j
            if j == n or other[j] >= start + width:
                break
        else:
            return True
    return False


def entry_matches(entry: _Entry, positions: dict[str, list[int]]) -> bool:
    """The test :meth:`Lexicon.matches` applies to one entry whose anchor lemma is present."""
    return all(_phrase_in(p, positions) for p in entry.parts) and not any(
        _phrase_in(n, positions) for n in entry.negated
    )


def parse_lexicon_lines(name: str, lines: Iterable[str], source: str | None = None) -> Lexicon:
    """Build a lexicon from text lines: ``#`` starts a comment, blank lines are ignored.

    A malformed line raises :class:`.dataio.DataError` naming ``source`` (default: the
    lexicon's name) and the line number, so the expert who edited the file can fix it.
    """
    from .dataio import DataError

    lex = Lexicon(name)
    for lineno, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if text:
            try:
                lex.add(text)
            except ValueError as exc:
                raise DataError(f"{source or name}:{lineno}: {exc}; fix or remove the line "
                                "(see lexicons.py for the syntax)") from None
    return lex


def load_lexicon(path: Path) -> Lexicon:
    """Load one lexicon file; its stem is the lexicon name (a category code or ``urgent``).

    The file must be UTF-8 (a byte-order mark is allowed): a file saved in another encoding
    by a Windows editor raises :class:`.dataio.DataError` naming it and the first bad line
    (it ended as a ``UnicodeDecodeError`` blamed on the model file).
    """
    from .dataio import DataError

    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{path}:{line}: not UTF-8 (byte 0x{data[exc.start]:02x}); save the "
                        "file as UTF-8") from None
    return parse_lexicon_lines(path.stem, text.splitlines(), source=str(path))


@dataclass(slots=True)
class LexiconSet:
    """All category lexicons plus the urgency lexicon, loaded from one directory."""

    categories: dict[str, Lexicon]
    urgent: Lexicon
    calm: Lexicon
    cues: dict[str, Lexicon] = field(default_factory=dict)

    def category_counts(self, lemmas: Sequence[str]) -> list[int]:
        """Hit counts in the fixed order of :data:`CATEGORIES` (a feature vector)."""
        positions = _positions(lemmas)
        return [
            self.categories[c].count(lemmas, positions) if c in self.categories else 0
            for c in CATEGORIES
        ]

    def urgent_hits(self, lemmas: Sequence[str]) -> list[str]:
        """Urgency phrases found in the text (empty list: no rule fired)."""
        return self.urgent.matches(lemmas)

    def calm_hits(self, lemmas: Sequence[str]) -> list[str]:
        """Phrases that mark a non-emergency framing (a planned outage notice, a past event)."""
        return self.calm.matches(lemmas)

    def cue_counts(self, lemmas: Sequence[str],
                   positions: dict[str, list[int]] | None = None) -> list[int]:
        """Hit counts of the urgency cue lexicons, in :data:`CUE_NAMES` order."""
        if positions is None:
            positions = _positions(lemmas)
        return [self.cues[c].count(lemmas, positions) if c in self.cues else 0
                for c in CUE_NAMES]


    def slots(self) -> list[Lexicon | None]:
        """Every lexicon in one fixed order: :data:`CATEGORIES`, ``urgent``, ``calm``, then
        :data:`CUE_NAMES` (``None`` where a file is missing)."""
        return [*(self.categories.get(c) for c in CATEGORIES), self.urgent, self.calm,
                *(self.cues.get(c) for c in CUE_NAMES)]

    def signature(self) -> tuple[tuple[int, int], ...]:
        """Changes whenever an entry is added or a lexicon replaced (invalidates caches)."""
        return tuple((id(lx), len(lx.entries)) if lx is not None else (0, 0)
                     for lx in self.slots())


def lexicon_files() -> list[str]:
    """Names of the files :func:`load_lexicons` reads, in :meth:`LexiconSet.slots` order."""
    return [*(f"{c}.txt" for c in CATEGORIES), "urgent.txt", "calm.txt",
            *(f"cue_{c}.txt" for c in CUE_NAMES)]


def load_lexicons(directory: Path | None = None) -> LexiconSet:
    """Load ``<category>.txt``, ``urgent.txt``, ``calm.txt`` and ``cue_*.txt``; all required.

    A missing file raises :class:`.dataio.DataError` naming every missing one: a deleted or
    renamed ``urgent.txt`` used to load as an empty lexicon, silently switching the urgency
    rules off. So does any other ``*.txt`` in the directory, with the nearest expected name:
    it was ignored. The number of rules of each lexicon is logged (info), so an edit that lost
    most of a file shows at worker start.
    """
    from .dataio import DataError

    d = Path(directory) if directory is not None else LEXICON_DIR
    expected = lexicon_files()
    unknown = sorted(p.name for p in d.glob("*.txt") if p.name not in expected)
    if unknown:
        # A misnamed «housing_utilites.txt» or an added «urgent_extra.txt» was read by nobody
        # while its author believed its rules were live (review of session 18).
        hints = []
        for name in unknown:
            near = difflib.get_close_matches(name, expected, n=1, cutoff=0.6)
            hints.append(f"{name} (did you mean {near[0]}?)" if near else name)
        raise DataError(f"{d}: unknown lexicon file(s) {', '.join(hints)}; the classifier reads "
                        f"only {', '.join(expected)}: rename the file or move its lines into "
                        "one of them")
    missing = [name for name in expected if not (d / name).is_file()]
    if missing:
        raise DataError(f"{d}: missing lexicon file(s) {', '.join(missing)}; restore them (a "
                        "file of comments only, for a lexicon meant to be empty)")
    cats = {c: load_lexicon(d / f"{c}.txt") for c in CATEGORIES}
    urgent = load_lexicon(d / "urgent.txt")
    calm = load_lexicon(d / "calm.txt")
    cues = {c: load_lexicon(d / f"cue_{c}.txt") for c in CUE_NAMES}
    lexicons = LexiconSet(cats, urgent, calm, cues)
    _log.info("lexicons loaded from %s, rules per lexicon: %s", d,
              ", ".join(f"{lx.name} {len(lx)}" for lx in lexicons.slots() if lx is not None))
    return lexicons
